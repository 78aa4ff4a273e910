"""Where tickets go: departments, teams, help topics, CTI, filters and banned senders.

`routing.services.draft_route` applies them to a new ticket's draft; `tickets.services.
ticket_open` calls it for every channel. The filter engine is `routing.filters`, automatic
assignment `routing.assignment`.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_domain_name, validate_email
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from helpdesk.lib.models import TimeStampedModel


class TreeMixin(models.Model):
    """Nesting for departments and help topics: shown as "Parent / Child"."""

    class Meta:
        abstract = True

    def clean(self) -> None:
        super().clean()
        node = self.parent  # type: ignore[attr-defined]
        seen = {self.pk}
        while node is not None:
            if node.pk in seen:
                raise ValidationError({"parent": _("A parent cannot be one of its own children.")})
            seen.add(node.pk)
            node = node.parent

    @property
    def full_name(self) -> str:
        names, node, seen = [], self, set()
        while node is not None and id(node) not in seen:  # a cycle, even unsaved, ends here
            seen.add(id(node))
            names.append(node.name)  # type: ignore[attr-defined]
            node = node.parent  # type: ignore[attr-defined]
        return " / ".join(reversed(names))


class AutoAssign(models.TextChoices):
    NONE = "none", _("None")
    ROUND_ROBIN = "round_robin", _("Round-robin")
    LEAST_OPEN = "least_open", _("Fewest open tickets")


class Department(TreeMixin, TimeStampedModel):
    name = models.CharField(_("name"), max_length=128)
    parent = models.ForeignKey(
        "self", models.PROTECT, null=True, blank=True, related_name="children"
    )
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("Archived departments take no new tickets.")
    )
    is_public = models.BooleanField(
        _("public"), default=True, help_text=_("Customers see the department's name.")
    )
    manager = models.ForeignKey(
        "accounts.Agent",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="managed_departments",
    )
    signature = models.TextField(_("signature"), blank=True)
    sla = models.ForeignKey(
        "sla.SLAPlan",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("SLA plan"),
        help_text=_("New tickets get this plan unless a filter or their help topic sets one."),
    )
    default_priority = models.ForeignKey(
        "tickets.Priority",
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("default priority"),
        help_text=_("New tickets get this priority when neither a filter nor the topic sets one."),
    )
    outgoing_mailbox = models.ForeignKey(
        "mailgate.Mailbox",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("outgoing mailbox"),
        help_text=_("Mail about this department's tickets is sent from here."),
    )
    auto_response = models.BooleanField(
        _("auto-response"),
        default=True,
        help_text=_("Customers get the new-ticket auto-response."),
    )
    assign_members_only = models.BooleanField(
        _("assign to members only"),
        default=True,
        help_text=_(
            "Only agents who work in the department (primary or extended access) may be "
            "assigned; otherwise any active agent may be."
        ),
    )
    assign_primary_only = models.BooleanField(
        _("assign to primary members only"),
        default=False,
        help_text=_("Only agents whose primary department this is may be assigned."),
    )
    disable_claim_on_reply = models.BooleanField(
        _("no claim on reply"),
        default=False,
        help_text=_("An agent replying to an unassigned ticket does not take it."),
    )
    disable_auto_assign_on_reopen = models.BooleanField(
        _("no auto-assignment on reopen"),
        default=False,
        help_text=_(
            "A reopened ticket is unassigned instead of going back to its agent "
            "(or the last one who replied)."
        ),
    )
    auto_assign = models.CharField(
        _("auto-assignment"), max_length=16, choices=AutoAssign, default=AutoAssign.NONE
    )
    # Round-robin's cursor: the last agent (user) it picked. Read and written under a lock
    # on this row (see routing.assignment).
    auto_assign_last = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["parent", "name"], name="department_unique_name"),
            # NULL parents are distinct to the constraint above: top-level names need their own.
            models.UniqueConstraint(
                fields=["name"], condition=Q(parent__isnull=True), name="department_unique_root"
            ),
            models.CheckConstraint(
                condition=Q(auto_assign__in=AutoAssign.values), name="department_auto_assign_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Team(TimeStampedModel):
    name = models.CharField(_("name"), max_length=128, unique=True)
    lead = models.ForeignKey(
        "accounts.Agent", models.SET_NULL, null=True, blank=True, related_name="led_teams"
    )
    members = models.ManyToManyField("accounts.Agent", related_name="teams", blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class HelpTopic(TreeMixin, TimeStampedModel):
    name = models.CharField(_("name"), max_length=128)
    parent = models.ForeignKey(
        "self", models.PROTECT, null=True, blank=True, related_name="children"
    )
    is_public = models.BooleanField(
        _("public"), default=True, help_text=_("Customers may pick it in the portal.")
    )
    is_active = models.BooleanField(_("active"), default=True)
    department = models.ForeignKey(
        Department,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="help_topics",
        help_text=_("New tickets of this topic go here (else to the default department)."),
    )
    priority = models.ForeignKey(
        "tickets.Priority",
        models.PROTECT,
        null=True,
        blank=True,
        related_name="help_topics",
        help_text=_("New tickets of this topic get this priority (else the default one)."),
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("assign to agent"),
        help_text=_("New tickets of this topic are assigned to this agent."),
    )
    team = models.ForeignKey(
        Team,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="help_topics",
        verbose_name=_("assign to team"),
        help_text=_("New tickets of this topic are assigned to this team."),
    )
    sla = models.ForeignKey(
        "sla.SLAPlan",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("SLA plan"),
        help_text=_("New tickets of this topic get this plan (before the department's)."),
    )
    auto_response = models.BooleanField(
        _("auto-response"),
        default=True,
        help_text=_("Customers get the new-ticket auto-response for this topic."),
    )
    sort_order = models.PositiveIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("help topic")
        verbose_name_plural = _("help topics")
        ordering = ["sort_order", "name"]
        constraints = [
            models.UniqueConstraint(fields=["parent", "name"], name="helptopic_unique_name"),
            models.UniqueConstraint(
                fields=["name"], condition=Q(parent__isnull=True), name="helptopic_unique_root"
            ),
        ]
        indexes = [
            # The portal's topic picker: public, active topics in order.
            models.Index(
                fields=["sort_order", "name"],
                name="helptopic_public_order",
                condition=Q(is_public=True, is_active=True),
            ),
        ]

    def __str__(self) -> str:
        return self.full_name


# --- CTI: Category → Type → Item ------------------------------------------------------------


class CtiLevel(models.Model):
    """What the three CTI levels share: a name, an order, and archiving instead of deleting
    once tickets use the level."""

    name = models.CharField(_("name"), max_length=128)
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("Archived levels are kept for old tickets only.")
    )
    sort_order = models.PositiveIntegerField(_("order"), default=0)

    # The Ticket column pointing at this level (set by each subclass).
    ticket_field = ""

    class Meta:
        abstract = True
        ordering = ["sort_order", "name"]

    def __str__(self) -> str:
        return self.name

    def tickets_using(self) -> int:
        from tickets.models import Ticket

        if self.pk is None:
            return 0
        return Ticket.objects.filter(**{self.ticket_field: self}).count()

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        used = self.tickets_using()
        if used:
            raise ValidationError(
                _(
                    "%(name)s is used by %(count)d ticket(s) and cannot be deleted; "
                    "archive it instead."
                )
                % {"name": self.full_name, "count": used}
            )
        return super().delete(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def full_name(self) -> str:
        return self.name


class Category(CtiLevel):
    ticket_field = "cti_category"

    class Meta(CtiLevel.Meta):
        verbose_name = _("CTI category")
        verbose_name_plural = _("CTI categories")
        constraints = [models.UniqueConstraint(fields=["name"], name="cticategory_unique_name")]


class CtiType(CtiLevel):
    category = models.ForeignKey(Category, models.CASCADE, related_name="types")
    ticket_field = "cti_type"

    class Meta(CtiLevel.Meta):
        verbose_name = _("CTI type")
        verbose_name_plural = _("CTI types")
        constraints = [
            models.UniqueConstraint(fields=["category", "name"], name="ctitype_unique_name")
        ]

    @property
    def full_name(self) -> str:
        return f"{self.category.name} / {self.name}"

    def clean(self) -> None:
        super().clean()
        _refuse_reparent_if_used(self, "category")


class CtiItem(CtiLevel):
    type = models.ForeignKey(CtiType, models.CASCADE, related_name="items")
    ticket_field = "cti_item"

    class Meta(CtiLevel.Meta):
        verbose_name = _("CTI item")
        verbose_name_plural = _("CTI items")
        constraints = [models.UniqueConstraint(fields=["type", "name"], name="ctiitem_unique_name")]

    @property
    def full_name(self) -> str:
        return f"{self.type.category.name} / {self.type.name} / {self.name}"

    @property
    def is_usable(self) -> bool:
        """Active at all three levels: only then may a ticket be classified under it."""
        return self.is_active and self.type.is_active and self.type.category.is_active

    def clean(self) -> None:
        super().clean()
        _refuse_reparent_if_used(self, "type")


def _refuse_reparent_if_used(level: CtiLevel, parent_field: str) -> None:
    """Tickets keep the category and type of their item (the queues filter on them), so a
    level in use stays under its parent."""
    if level.pk is None:
        return
    stored = type(level).objects.filter(pk=level.pk).values_list(f"{parent_field}_id", flat=True)
    if stored and stored[0] != getattr(level, f"{parent_field}_id") and level.tickets_using():
        raise ValidationError(
            {parent_field: _("Tickets use this level; create a new one under the other parent.")}
        )


# --- Filters --------------------------------------------------------------------------------


class FilterChannel(models.TextChoices):
    ANY = "any", _("Any channel")
    WEB = "web", _("Web")
    EMAIL = "email", _("Email")
    API = "api", _("API")
    PHONE = "phone", _("Phone")


class FilterMatch(models.TextChoices):
    ALL = "all", _("All rules")
    ANY = "any", _("Any rule")


class Filter(TimeStampedModel):
    """A ticket filter: rules over a new ticket's draft, and what to do when they match.

    The actions are columns of this row rather than rows of an action table: each action
    happens at most once per filter, the database keeps the references valid (a department
    a filter moves tickets to cannot be deleted), and the engine reads a filter in one row.
    """

    name = models.CharField(_("name"), max_length=128, unique=True)
    sort_order = models.PositiveIntegerField(_("order"), default=0)
    is_active = models.BooleanField(_("active"), default=True)
    channel = models.CharField(
        _("channel"), max_length=8, choices=FilterChannel, default=FilterChannel.ANY
    )
    match = models.CharField(_("match"), max_length=4, choices=FilterMatch, default=FilterMatch.ALL)
    stop_on_match = models.BooleanField(
        _("stop on match"), default=False, help_text=_("Later filters are not tried.")
    )
    notes = models.TextField(_("notes"), blank=True)

    # Actions.
    reject = models.BooleanField(
        _("reject"),
        default=False,
        help_text=_("No ticket, no reply: only the raw message and the log keep it."),
    )
    department = models.ForeignKey(
        Department, models.PROTECT, null=True, blank=True, related_name="+"
    )
    priority = models.ForeignKey(
        "tickets.Priority", models.PROTECT, null=True, blank=True, related_name="+"
    )
    status = models.ForeignKey(
        "tickets.TicketStatus", models.PROTECT, null=True, blank=True, related_name="+"
    )
    help_topic = models.ForeignKey(
        HelpTopic, models.PROTECT, null=True, blank=True, related_name="+"
    )
    cti_item = models.ForeignKey(
        CtiItem, models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("CTI")
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("assign to agent"),
    )
    team = models.ForeignKey(
        Team, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("team")
    )
    sla = models.ForeignKey(
        "sla.SLAPlan",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("set SLA plan"),
    )
    collaborator_email = models.EmailField(_("add collaborator"), blank=True)
    disable_auto_response = models.BooleanField(_("disable auto-response"), default=False)
    canned_response = models.ForeignKey(
        "kb.CannedResponse",
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("send canned reply"),
        help_text=_("Answered at once with this canned response, in place of the auto-response."),
    )

    ACTION_FIELDS = (
        "department",
        "priority",
        "status",
        "help_topic",
        "cti_item",
        "assignee",
        "team",
        "sla",
        "collaborator_email",
        "disable_auto_response",
        "canned_response",
    )

    class Meta:
        verbose_name = _("filter")
        verbose_name_plural = _("filters")
        ordering = ["sort_order", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(channel__in=FilterChannel.values), name="filter_channel_valid"
            ),
            models.CheckConstraint(
                condition=Q(match__in=FilterMatch.values), name="filter_match_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from tickets.models import StatusState

        super().clean()
        self.collaborator_email = (self.collaborator_email or "").strip().lower()
        if self.reject and any(getattr(self, name) for name in self.ACTION_FIELDS):
            raise ValidationError({"reject": _("A filter that rejects takes no other action.")})
        if self.status is not None and self.status.state not in (
            StatusState.OPEN,
            StatusState.CLOSED,
        ):
            raise ValidationError({"status": _("New tickets can only be open or closed.")})
        if self.canned_response is not None and not self.canned_response.is_active:
            # Refused when chosen; a filter whose response was archived later still saves
            # (and archives), it just sends nothing until an active one is chosen.
            stored = Filter.objects.filter(pk=self.pk).values_list("canned_response_id", flat=True)
            if self.pk is None or list(stored) != [self.canned_response_id]:
                raise ValidationError(
                    {"canned_response": _("This canned response is archived; choose another.")}
                )


class RuleField(models.TextChoices):
    SENDER_EMAIL = "sender_email", _("Sender's email")
    SENDER_NAME = "sender_name", _("Sender's name")
    TO = "to", _("To")
    CC = "cc", _("Cc")
    REPLY_TO = "reply_to", _("Reply-To")
    SUBJECT = "subject", _("Subject")
    BODY = "body", _("Body")
    HEADER = "header", _("Header")
    HELP_TOPIC = "help_topic", _("Help topic")
    ORGANIZATION = "organization", _("Organization")


class RuleOperator(models.TextChoices):
    EQUALS = "equals", _("equals")
    NOT_EQUALS = "not_equals", _("does not equal")
    CONTAINS = "contains", _("contains")
    NOT_CONTAINS = "not_contains", _("does not contain")
    STARTS_WITH = "starts_with", _("starts with")
    ENDS_WITH = "ends_with", _("ends with")
    MATCHES = "matches", _("matches regex")
    NOT_MATCHES = "not_matches", _("does not match regex")


RULE_VALUE_MAX = 500


class FilterRule(models.Model):
    filter = models.ForeignKey(Filter, models.CASCADE, related_name="rules")
    field = models.CharField(_("field"), max_length=16, choices=RuleField)
    header = models.CharField(
        _("header name"), max_length=128, blank=True, help_text=_("For the header field only.")
    )
    operator = models.CharField(_("operator"), max_length=16, choices=RuleOperator)
    value = models.CharField(_("value"), max_length=RULE_VALUE_MAX)

    class Meta:
        verbose_name = _("filter rule")
        verbose_name_plural = _("filter rules")
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(field__in=RuleField.values), name="filterrule_field_valid"
            ),
            models.CheckConstraint(
                condition=Q(operator__in=RuleOperator.values), name="filterrule_operator_valid"
            ),
        ]

    def __str__(self) -> str:
        field = self.header if self.field == RuleField.HEADER else self.get_field_display()
        return f"{field} {self.get_operator_display()} {self.value!r}"

    def clean(self) -> None:
        from .filters import regex_error

        super().clean()
        errors: dict[str, str] = {}
        self.header = (self.header or "").strip()
        if self.field == RuleField.HEADER and not self.header:
            errors["header"] = _("Name the header to look at.")
        if len(self.value or "") > RULE_VALUE_MAX:
            errors["value"] = _("Keep the value under %d characters.") % RULE_VALUE_MAX
        elif not self.value:
            errors["value"] = _("Give a value to compare with.")
        elif self.operator in (RuleOperator.MATCHES, RuleOperator.NOT_MATCHES):
            problem = regex_error(self.value)
            if problem:
                errors["value"] = _("This is not a valid regular expression: %s") % problem
        if errors:
            raise ValidationError(errors)


# --- Bans -----------------------------------------------------------------------------------


class BannedAddress(models.Model):
    """A banned sender: a whole address, or a domain (which bans its subdomains too)."""

    address = models.CharField(
        _("address or domain"),
        max_length=254,
        unique=True,
        help_text=_("someone@example.com, or example.com for everyone there."),
    )
    reason = models.TextField(_("reason"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("banned address")
        verbose_name_plural = _("banned addresses")
        ordering = ["address"]
        constraints = [
            # Lower case makes the unique index case-insensitive on every database.
            models.CheckConstraint(
                condition=Q(address=Lower("address")), name="bannedaddress_lower"
            ),
        ]

    def __str__(self) -> str:
        return self.address

    @property
    def is_domain(self) -> bool:
        return "@" not in self.address

    def clean(self) -> None:
        super().clean()
        address = (self.address or "").strip().lower()
        if address.startswith("*@") or address.startswith("@"):
            address = address.split("@", 1)[1]
        self.address = address
        try:
            if "@" in address:
                validate_email(address)
            else:
                validate_domain_name(address)
        except ValidationError:
            raise ValidationError(
                {"address": _("Enter an email address or a domain such as example.com.")}
            ) from None
