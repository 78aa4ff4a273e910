"""Tickets, their threads (entries and the audit log), attachments and collaborators.

Rows are changed only through `tickets.services`; reads that cross relations live in
`tickets.selectors`.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from helpdesk.lib.models import TimeStampedModel


class StatusState(models.TextChoices):
    OPEN = "open", _("Open")
    CLOSED = "closed", _("Closed")
    ARCHIVED = "archived", _("Archived")
    DELETED = "deleted", _("Deleted")


class TicketStatus(models.Model):
    """An admin-defined status ("Waiting on Customer") with one of the fixed states."""

    name = models.CharField(_("name"), max_length=64, unique=True)
    state = models.CharField(_("state"), max_length=16, choices=StatusState)
    is_default = models.BooleanField(
        _("default for its state"),
        default=False,
        help_text=_("New tickets get the default open status; reopened ones too."),
    )
    waits_on_customer = models.BooleanField(
        _("waits on the customer"),
        default=False,
        help_text=_(
            "A message from the customer moves the ticket back to the default open status."
        ),
    )
    pauses_sla = models.BooleanField(
        _("pauses the SLA"),
        default=False,
        help_text=_("Time in this status does not count towards the SLA's due dates."),
    )
    auto_close = models.BooleanField(
        _("closes automatically"),
        default=False,
        help_text=_(
            "Tickets resolved with this status are closed after AUTO_CLOSE_DAYS days "
            "without a customer reply."
        ),
    )
    sort_order = models.PositiveIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("ticket status")
        verbose_name_plural = _("ticket statuses")
        ordering = ["sort_order", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=StatusState.values), name="ticketstatus_state_valid"
            ),
            models.UniqueConstraint(
                fields=["state"], condition=Q(is_default=True), name="ticketstatus_one_default"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_open(self) -> bool:
        return self.state == StatusState.OPEN


class Priority(models.Model):
    """An admin-defined priority; `urgency` orders them, 1 being the most urgent."""

    name = models.CharField(_("name"), max_length=64, unique=True)
    urgency = models.PositiveSmallIntegerField(_("urgency"), unique=True)
    color = models.CharField(_("colour"), max_length=7, default="#FFFFFF")
    is_default = models.BooleanField(_("default"), default=False)

    class Meta:
        verbose_name = _("priority")
        verbose_name_plural = _("priorities")
        ordering = ["urgency"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="priority_one_default"
            ),
            models.CheckConstraint(condition=Q(urgency__gte=1), name="priority_urgency_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class Sequence(models.Model):
    """A counter for ticket numbers (osTicket's `ost_sequence`); the row is locked to draw."""

    name = models.CharField(_("name"), max_length=64, unique=True)
    next_value = models.PositiveBigIntegerField(_("next value"), default=1)
    increment = models.PositiveIntegerField(_("increment"), default=1)
    padding = models.CharField(_("padding"), max_length=1, default="0")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("sequence")
        verbose_name_plural = _("sequences")

    def __str__(self) -> str:
        return self.name


class Source(models.TextChoices):
    WEB = "web", _("Web")
    EMAIL = "email", _("Email")
    PHONE = "phone", _("Phone")
    API = "api", _("API")
    OTHER = "other", _("Other")


class Ticket(TimeStampedModel):
    # The foreign keys with `db_index=False` lead one of the indexes in Meta, which serves
    # their lookups as well: an index of their own would only be one more to write on every
    # ticket saved.
    number = models.CharField(_("number"), max_length=32, unique=True, editable=False)
    subject = models.CharField(_("subject"), max_length=255)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        related_name="tickets",
        verbose_name=_("customer"),
        db_index=False,
    )
    organization = models.ForeignKey(
        "accounts.Organization",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="tickets",
        db_index=False,
    )
    department = models.ForeignKey(
        "routing.Department", models.PROTECT, related_name="tickets", db_index=False
    )
    help_topic = models.ForeignKey(
        "routing.HelpTopic", models.PROTECT, null=True, blank=True, related_name="tickets"
    )
    status = models.ForeignKey(TicketStatus, models.PROTECT, related_name="tickets", db_index=False)
    priority = models.ForeignKey(Priority, models.PROTECT, related_name="tickets")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_tickets",
        verbose_name=_("assigned agent"),
        db_index=False,
    )
    team = models.ForeignKey(
        "routing.Team",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="tickets",
        verbose_name=_("assigned team"),
        db_index=False,
    )
    source = models.CharField(_("source"), max_length=8, choices=Source, default=Source.WEB)
    # CTI classification: the item, with its type and category copied beside it so queues
    # filter by category without a join. Set only through `ticket_cti_set` and `ticket_open`.
    cti_category = models.ForeignKey(
        "routing.Category",
        models.PROTECT,
        null=True,
        blank=True,
        related_name="tickets",
        db_index=False,
    )
    cti_type = models.ForeignKey(
        "routing.CtiType", models.PROTECT, null=True, blank=True, related_name="tickets"
    )
    cti_item = models.ForeignKey(
        "routing.CtiItem", models.PROTECT, null=True, blank=True, related_name="tickets"
    )
    # SLA (see sla.clock): the plan, the due dates it gives, an agent's override kept apart,
    # and the business time the clock stood still in statuses that pause it. `due_at` is
    # the effective due date queues sort on and the overdue job compares: the override, else
    # the first-response due date until the first response, else the resolution due date.
    sla = models.ForeignKey(
        "sla.SLAPlan",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="tickets",
        verbose_name=_("SLA plan"),
    )
    first_response_due_at = models.DateTimeField(_("first response due"), null=True, blank=True)
    resolution_due_at = models.DateTimeField(_("resolution due"), null=True, blank=True)
    due_override_at = models.DateTimeField(_("due (set by hand)"), null=True, blank=True)
    sla_paused_at = models.DateTimeField(_("SLA paused since"), null=True, blank=True)
    sla_paused_seconds = models.PositiveIntegerField(_("SLA paused (business seconds)"), default=0)
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    is_overdue = models.BooleanField(_("overdue"), default=False)
    # Set by the overdue job when it marks the ticket (and the auto-close job when it closes
    # it): each run finds the rows it changed by its own timestamp. Not indexed: the jobs
    # read back through the indexes their UPDATE used, and an indexed column here would
    # make every such UPDATE write all of the ticket's indexes.
    overdue_at = models.DateTimeField(_("marked overdue"), null=True, blank=True)
    auto_closed_at = models.DateTimeField(_("closed automatically"), null=True, blank=True)
    is_answered = models.BooleanField(_("answered"), default=False)
    # Where the ticket was opened from: the browser's or the API client's address (or
    # the one an osTicket API client gave in `ip`).
    ip_address = models.GenericIPAddressField(_("opened from"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("closed by"),
    )
    reopened_at = models.DateTimeField(_("reopened"), null=True, blank=True)
    first_response_at = models.DateTimeField(_("first response"), null=True, blank=True)
    last_message_at = models.DateTimeField(_("last customer message"), null=True, blank=True)
    last_response_at = models.DateTimeField(_("last agent response"), null=True, blank=True)
    # What the staff search box looks through: number, subject, the customer's name and
    # addresses and the text of the entries, kept up to date by the services. PostgreSQL
    # searches it through a full-text GIN index (migration 0007); other databases use LIKE.
    search_document = models.TextField(_("search document"), blank=True, editable=False)

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        constraints = [
            models.CheckConstraint(
                condition=Q(source__in=Source.values), name="ticket_source_valid"
            ),
        ]
        indexes = [
            # Queues and the dashboard on PostgreSQL: every open ticket an agent may see is
            # read from this index alone (an index-only scan), never from the wide table
            # rows (the search document makes them several hundred bytes). Other databases
            # skip indexes with included columns; they use ticket_dept_status and friends.
            models.Index(
                fields=["status"],
                include=[
                    "id",
                    "department",
                    "assignee",
                    "team",
                    "priority",
                    "help_topic",
                    "organization",
                    "user",
                    "created_at",
                    "updated_at",
                    "due_at",
                    "is_overdue",
                    "is_answered",
                ],
                name="ticket_queue_cover",
            ),
            # Department queues: a department's tickets in a status, newest activity first.
            models.Index(fields=["department", "status", "updated_at"], name="ticket_dept_status"),
            # "My tickets" for agents: an agent's assigned tickets by status.
            models.Index(fields=["assignee", "status"], name="ticket_assignee_status"),
            # The dashboard's latest activity on my tickets.
            models.Index(fields=["assignee", "-updated_at"], name="ticket_assignee_updated"),
            # "My teams" queue.
            models.Index(fields=["team", "status"], name="ticket_team_status"),
            # Queues filtered by CTI category.
            models.Index(fields=["cti_category", "status"], name="ticket_cti_status"),
            # A customer's tickets in the portal, newest first.
            models.Index(fields=["user", "created_at"], name="ticket_user_created"),
            # An organization's shared tickets in the portal.
            models.Index(fields=["organization", "created_at"], name="ticket_org_created"),
            # Overdue scan: open tickets whose due time has passed.
            models.Index(
                fields=["due_at"], name="ticket_due_open", condition=Q(closed_at__isnull=True)
            ),
            # Auto-close: tickets in a resolved status, closed longest ago first.
            models.Index(fields=["status", "closed_at"], name="ticket_status_closed"),
            # Auto-close reading back the tickets one run closed (its UPDATE changes the
            # status, so it writes the indexes anyway).
            models.Index(fields=["auto_closed_at"], name="ticket_auto_closed"),
        ]

    def __str__(self) -> str:
        return f"#{self.number}"


class Thread(models.Model):
    """The conversation of a ticket: its entries and its events."""

    ticket = models.OneToOneField(Ticket, models.CASCADE, related_name="thread")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("thread")
        verbose_name_plural = _("threads")

    def __str__(self) -> str:
        return f"Thread of {self.ticket}"


class EntryKind(models.TextChoices):
    MESSAGE = "message", _("Message")  # from the customer (or a collaborator)
    RESPONSE = "response", _("Response")  # from an agent, sent to the customer
    NOTE = "note", _("Internal note")  # between agents, never shown to customers


class BodyFormat(models.TextChoices):
    TEXT = "text", _("Plain text")
    MARKDOWN = "markdown", _("Markdown")
    HTML = "html", _("HTML")


class ThreadEntry(TimeStampedModel):
    # Served by the entry_thread_created index.
    thread = models.ForeignKey(Thread, models.CASCADE, related_name="entries", db_index=False)
    kind = models.CharField(_("kind"), max_length=10, choices=EntryKind)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The name shown for the author as it arrived (an email's From name), kept even if the
    # user is later renamed or removed.
    poster = models.CharField(_("poster"), max_length=150, blank=True)
    source = models.CharField(_("source"), max_length=8, choices=Source, default=Source.WEB)
    # Bodies are stored as received and rendered through the one sanitiser.
    body = models.TextField(_("body"), blank=True)
    body_format = models.CharField(
        _("format"), max_length=10, choices=BodyFormat, default=BodyFormat.TEXT
    )
    # The body rendered once through the one sanitiser when the entry is written (remote
    # images blocked), so pages never re-sanitise it. Empty means "render on the fly".
    body_html = models.TextField(_("rendered body"), blank=True, editable=False)
    # Email threading: our own Message-ID on outbound entries, the sender's on inbound ones.
    message_id = models.CharField(_("Message-ID"), max_length=255, blank=True)
    in_reply_to = models.CharField(_("In-Reply-To"), max_length=255, blank=True)
    references = models.TextField(_("References"), blank=True)
    headers = models.JSONField(_("other email headers"), default=dict, blank=True)

    class Meta:
        verbose_name = _("thread entry")
        verbose_name_plural = _("thread entries")
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=EntryKind.values), name="entry_kind_valid"),
            models.CheckConstraint(
                condition=Q(body_format__in=BodyFormat.values), name="entry_format_valid"
            ),
        ]
        indexes = [
            # The ticket page: a thread's entries in order.
            models.Index(fields=["thread", "created_at"], name="entry_thread_created"),
            # Mail threading: find the entry a reply's In-Reply-To/References points at.
            models.Index(fields=["message_id"], name="entry_message_id"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.thread_id}"

    @property
    def is_internal(self) -> bool:
        return self.kind == EntryKind.NOTE


class EventAction(models.TextChoices):
    CREATED = "created", _("Created")
    MESSAGE = "message", _("Customer message")
    RESPONSE = "response", _("Response")
    NOTE = "note", _("Internal note")
    ASSIGNED = "assigned", _("Assigned")
    CLAIMED = "claimed", _("Claimed")
    RELEASED = "released", _("Released")
    TRANSFERRED = "transferred", _("Transferred")
    REFERRED = "referred", _("Referred")
    STATUS = "status", _("Status changed")
    CLOSED = "closed", _("Closed")
    REOPENED = "reopened", _("Reopened")
    PRIORITY = "priority", _("Priority changed")
    EDITED = "edited", _("Edited")
    COLLAB_ADDED = "collab_added", _("Collaborator added")
    COLLAB_REMOVED = "collab_removed", _("Collaborator removed")
    DELIVERY_FAILED = "delivery_failed", _("Delivery failed")
    CTI = "cti", _("Reclassified")
    SLA = "sla", _("SLA plan changed")
    DUE_OVERRIDE = "due_override", _("Due date set")
    OVERDUE = "overdue", _("Overdue")
    AUTO_CLOSED = "auto_closed", _("Closed automatically")


class ThreadEvent(models.Model):
    """The audit log: who did what to a ticket, when, with the details as JSON."""

    # Served by the event_thread_created index.
    thread = models.ForeignKey(Thread, models.CASCADE, related_name="events", db_index=False)
    action = models.CharField(_("action"), max_length=16, choices=EventAction)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Kept as text too, so the log still names the actor after the user is deleted.
    actor_name = models.CharField(_("actor"), max_length=150, blank=True)
    data = models.JSONField(_("details"), default=dict, blank=True)
    created_at = models.DateTimeField(_("time"), db_index=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(action__in=EventAction.values), name="event_action_valid"
            ),
        ]
        indexes = [
            # The ticket page's audit trail and the API's events list.
            models.Index(fields=["thread", "created_at"], name="event_thread_created"),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_name or 'system'}"

    @property
    def action_label(self) -> str:
        """`get_action_display()` without its hashing of every choice (a lookup per event)."""
        try:
            return str(EventAction(self.action).label)
        except ValueError:
            return self.action


def attachment_path(instance: "Attachment", filename: str) -> str:
    # Keyed by content hash: the same file attached twice is stored once, and the stored name
    # never comes from the sender.
    digest = instance.content_hash
    return f"attachments/{digest[:2]}/{digest[2:4]}/{digest}"


class Attachment(models.Model):
    entry = models.ForeignKey(ThreadEntry, models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=attachment_path, max_length=255)
    content_hash = models.CharField(_("SHA-256"), max_length=64)
    name = models.CharField(_("file name"), max_length=255)
    content_type = models.CharField(_("type"), max_length=255)
    size = models.PositiveBigIntegerField(_("size"))
    is_inline = models.BooleanField(_("inline"), default=False)
    content_id = models.CharField(_("Content-ID"), max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        indexes = [
            # Purging files that no attachment references any more.
            models.Index(fields=["content_hash"], name="attachment_hash"),
        ]

    def __str__(self) -> str:
        return self.name


class TicketLock(models.Model):
    """An agent editing a ticket (writing a reply) holds its lock for a few minutes, so a
    colleague opening it sees who is at work on it (osTicket's collision avoidance). Expired
    locks are ignored, and cleared by a scheduled job."""

    ticket = models.OneToOneField(Ticket, models.CASCADE, related_name="lock")
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+")
    expires_at = models.DateTimeField(_("expires"))
    created_at = models.DateTimeField(_("locked"), default=timezone.now)

    class Meta:
        verbose_name = _("ticket lock")
        verbose_name_plural = _("ticket locks")
        indexes = [
            # The cleanup job: locks past their expiry.
            models.Index(fields=["expires_at"], name="ticketlock_expires"),
        ]

    def __str__(self) -> str:
        return f"{self.ticket} locked by {self.agent_id}"


class Collaborator(models.Model):
    """A user copied on a ticket: they see it and their replies thread into it."""

    # Served by the unique constraint and the collaborator_user index, which they lead.
    ticket = models.ForeignKey(Ticket, models.CASCADE, related_name="collaborators", db_index=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="+", db_index=False
    )
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("collaborator")
        verbose_name_plural = _("collaborators")
        constraints = [
            models.UniqueConstraint(fields=["ticket", "user"], name="collaborator_unique"),
        ]
        indexes = [
            # Customer visibility: tickets a user is copied on.
            models.Index(fields=["user", "ticket"], name="collaborator_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.ticket}"


class Referral(models.Model):
    """A ticket shown to an agent, team or department outside its own department."""

    ticket = models.ForeignKey(Ticket, models.CASCADE, related_name="referrals")
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.CASCADE, null=True, blank=True, related_name="+"
    )
    team = models.ForeignKey("routing.Team", models.CASCADE, null=True, blank=True)
    department = models.ForeignKey("routing.Department", models.CASCADE, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(agent__isnull=False, team__isnull=True, department__isnull=True)
                    | Q(agent__isnull=True, team__isnull=False, department__isnull=True)
                    | Q(agent__isnull=True, team__isnull=True, department__isnull=False)
                ),
                name="referral_one_target",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ticket} referred to {self.agent or self.team or self.department}"
