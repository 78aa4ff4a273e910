"""The help desk's own rows: the admin log and the settings admins change at run time."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AdminAction(models.TextChoices):
    CREATE = "create", _("Created")
    UPDATE = "update", _("Changed")
    DELETE = "delete", _("Deleted")
    ARCHIVE = "archive", _("Archived")
    RESTORE = "restore", _("Restored")


class AdminLogEntry(models.Model):
    """One change an admin made on an admin screen: who, when, what, and before → after.

    The object is named by type, id and its name at the time, not by a foreign key: the log
    outlives what it describes (a deleted department stays in the log)."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("who"),
    )
    actor_name = models.CharField(_("who (name)"), max_length=254, blank=True)
    created_at = models.DateTimeField(_("when"), default=timezone.now)
    action = models.CharField(_("action"), max_length=8, choices=AdminAction)
    object_type = models.CharField(_("object type"), max_length=100)  # app_label.model
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    object_repr = models.CharField(_("object"), max_length=255)
    # {field: [before, after]}; secrets appear masked.
    changes = models.JSONField(_("changes"), default=dict, blank=True)

    class Meta:
        verbose_name = _("admin log entry")
        verbose_name_plural = _("admin log entries")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(action__in=AdminAction.values), name="adminlog_action_valid"
            ),
        ]
        indexes = [
            # The log screen: newest first, optionally of one object type.
            models.Index(fields=["object_type", "-created_at"], name="adminlog_type_when"),
            # The log screen filtered by who made the change.
            models.Index(fields=["actor", "-created_at"], name="adminlog_actor_when"),
            # Unfiltered, newest first.
            models.Index(fields=["-created_at"], name="adminlog_when"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.object_repr}"


class CollaboratorVisibility(models.TextChoices):
    THREAD = "thread", _("The whole public thread (every message and response)")
    OWN = "own", _("Agent responses and their own messages only")


class HelpdeskSettings(models.Model):
    """The one row of settings admins change at run time (`helpdesk.config.config()` reads
    it). Until an admin saves it, the environment's HELPDESK_* settings apply."""

    singleton = models.PositiveSmallIntegerField(default=1, unique=True, editable=False)
    helpdesk_name = models.CharField(
        _("help desk name"),
        max_length=128,
        help_text=_("Shown in page titles and in mail to customers."),
    )
    default_department = models.ForeignKey(
        "routing.Department",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("default department"),
        help_text=_("Tickets that nothing else routes go here."),
    )
    default_priority = models.ForeignKey(
        "tickets.Priority",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("default priority"),
    )
    default_sla = models.ForeignKey(
        "sla.SLAPlan",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("default SLA plan"),
    )
    default_help_topic = models.ForeignKey(
        "routing.HelpTopic",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("default help topic"),
        help_text=_("Preselected in the portal's new-ticket form."),
    )
    ticket_number_format = models.CharField(
        _("ticket number format"),
        max_length=32,
        help_text=_("Each run of # is filled with digits, e.g. ###### or TX-######."),
    )
    claim_on_reply = models.BooleanField(
        _("claim on reply"),
        default=True,
        help_text=_("An agent replying to an unassigned ticket takes it."),
    )
    customers_can_close = models.BooleanField(
        _("customers may close their own tickets"), default=True
    )
    require_help_topic_to_close = models.BooleanField(
        _("require a help topic to close"), default=False
    )
    collaborator_visibility = models.CharField(
        _("collaborators see"),
        max_length=8,
        choices=CollaboratorVisibility,
        default=CollaboratorVisibility.THREAD,
    )
    max_attachment_size = models.PositiveIntegerField(
        _("largest attachment (MB)"),
        validators=[MinValueValidator(1), MaxValueValidator(1024)],
    )
    allowed_attachment_types = models.TextField(
        _("allowed attachment types"),
        blank=True,
        help_text=_(
            "File extensions or MIME types, one per line or comma-separated "
            "(.pdf, image/*, text/plain). Empty: the server's default list."
        ),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("help desk settings")
        verbose_name_plural = _("help desk settings")
        constraints = [
            models.CheckConstraint(condition=Q(singleton=1), name="helpdesksettings_singleton"),
            models.CheckConstraint(
                condition=Q(collaborator_visibility__in=CollaboratorVisibility.values),
                name="helpdesksettings_collab_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.helpdesk_name

    @property
    def allowed_types(self) -> list[str]:
        text = (self.allowed_attachment_types or "").replace(",", "\n")
        return [item.strip().lower() for item in text.splitlines() if item.strip()]
