"""People: users (customers and agents alike), their addresses, organizations, agents, roles.

Every email address is stored in lower case, so uniqueness is case-insensitive on every
database (a functional unique index would not exist on MariaDB).
"""

import zoneinfo

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from helpdesk.lib.bulk import row_insert
from helpdesk.lib.models import TimeStampedModel


def validate_timezone(value: str) -> None:
    if value and value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not a known time zone."), params={"value": value})


def normalize_email(address: str) -> str:
    return (address or "").strip().lower()


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **fields: object) -> "User":
        if not email:
            raise ValueError("A user needs an email address.")
        user = self.model(email=normalize_email(email), **fields)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        # Inside a run of mail: written with the run's other new rows (`inserts_deferred`).
        row_insert(user)
        row_insert(UserEmail(user=user, email=user.email, is_primary=True))
        return user

    def create_user(self, email: str, password: str | None = None, **fields: object) -> "User":
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **fields)

    def create_superuser(self, email: str, password: str | None = None, **fields: object) -> "User":
        fields["is_staff"] = True
        fields["is_superuser"] = True
        return self._create_user(email, password, **fields)

    def get_by_natural_key(self, username: str | None) -> "User":
        return self.get(email=normalize_email(username or ""))


class User(AbstractBaseUser, PermissionsMixin):
    """Anyone who logs in or writes to the help desk. Customers and agents alike.

    A customer who only ever emailed has no usable password. `is_staff` is Django's flag for
    the emergency admin site only; being an agent is having an active `Agent` profile.
    """

    email = models.EmailField(_("email address"), max_length=254, unique=True)
    name = models.CharField(_("name"), max_length=150, blank=True)
    timezone = models.CharField(
        _("time zone"), max_length=64, blank=True, validators=[validate_timezone]
    )
    language = models.CharField(_("language"), max_length=16, blank=True)
    # A phone number as people write it, extension after an "X" (osTicket's form).
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    notes = models.TextField(_("internal notes"), blank=True, help_text=_("Seen by agents only."))
    organization = models.ForeignKey(
        "accounts.Organization",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="members",
        verbose_name=_("organization"),
    )
    is_active = models.BooleanField(_("active"), default=True)
    is_staff = models.BooleanField(
        _("Django admin access"),
        default=False,
        help_text=_("Emergency access to /admin/; being an agent is a separate profile."),
    )
    created_at = models.DateTimeField(_("created"), default=now, editable=False)

    objects = UserManager()

    EMAIL_FIELD = "email"
    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.CheckConstraint(condition=Q(email=Lower("email")), name="user_email_lower"),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email

    def clean(self) -> None:
        super().clean()
        self.email = normalize_email(self.email)

    def get_full_name(self) -> str:
        return self.name or self.email

    def get_short_name(self) -> str:
        return (self.name or self.email).split(" ")[0]

    @property
    def display_name(self) -> str:
        return self.name or self.email.split("@")[0]


class UserEmail(models.Model):
    """Every address of a user, the primary one included; an address belongs to one user."""

    user = models.ForeignKey(User, models.CASCADE, related_name="emails")
    email = models.EmailField(_("email address"), max_length=254, unique=True)
    is_primary = models.BooleanField(_("primary"), default=False)
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        verbose_name = _("email address")
        verbose_name_plural = _("email addresses")
        constraints = [
            models.CheckConstraint(condition=Q(email=Lower("email")), name="useremail_lower"),
            models.UniqueConstraint(
                fields=["user"], condition=Q(is_primary=True), name="useremail_one_primary"
            ),
        ]

    def __str__(self) -> str:
        return self.email


class Organization(TimeStampedModel):
    name = models.CharField(_("name"), max_length=128, unique=True)
    share_tickets = models.BooleanField(
        _("share tickets among members"),
        default=False,
        help_text=_("Members see and follow every ticket of the organization in the portal."),
    )
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        verbose_name = _("organization")
        verbose_name_plural = _("organizations")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class OrganizationDomain(models.Model):
    """An email domain whose senders join the organization automatically."""

    organization = models.ForeignKey(Organization, models.CASCADE, related_name="domains")
    domain = models.CharField(_("domain"), max_length=253, unique=True)

    class Meta:
        verbose_name = _("email domain")
        verbose_name_plural = _("email domains")
        constraints = [
            models.CheckConstraint(condition=Q(domain=Lower("domain")), name="orgdomain_lower"),
        ]

    def __str__(self) -> str:
        return self.domain


class Role(models.Model):
    """A named set of permission keys (see `accounts.permissions.PERMISSIONS`)."""

    name = models.CharField(_("name"), max_length=64, unique=True)
    permissions = models.JSONField(_("permissions"), default=list, blank=True)
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        verbose_name = _("role")
        verbose_name_plural = _("roles")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from accounts.permissions import PERMISSIONS

        unknown = sorted(set(self.permissions or []) - set(PERMISSIONS))
        if unknown:
            raise ValidationError(
                {"permissions": _("Unknown permissions: %s") % ", ".join(unknown)}
            )

    def has(self, permission: str) -> bool:
        return permission in (self.permissions or ())


class Agent(TimeStampedModel):
    """The staff profile of a user: where they work and what they may do there."""

    user = models.OneToOneField(User, models.CASCADE, related_name="agent")
    department = models.ForeignKey(
        "routing.Department",
        models.PROTECT,
        related_name="primary_agents",
        verbose_name=_("primary department"),
    )
    role = models.ForeignKey(
        Role, models.PROTECT, related_name="primary_agents", verbose_name=_("primary role")
    )
    is_active = models.BooleanField(_("active"), default=True)
    on_vacation = models.BooleanField(
        _("on vacation"), default=False, help_text=_("Never auto-assigned; alerts are held.")
    )
    assigned_only = models.BooleanField(
        _("assigned tickets only"),
        default=False,
        help_text=_("Sees only the tickets assigned to them or to their teams."),
    )
    signature = models.TextField(_("signature"), blank=True)

    class Meta:
        verbose_name = _("agent")
        verbose_name_plural = _("agents")
        indexes = [
            # Assignment pickers and auto-assignment: active agents of a department.
            models.Index(fields=["department", "is_active"], name="agent_dept_active"),
        ]

    def __str__(self) -> str:
        return str(self.user)


class AgentDepartmentAccess(models.Model):
    """Extended access: an agent works in another department with a role of its own."""

    agent = models.ForeignKey(Agent, models.CASCADE, related_name="department_access")
    department = models.ForeignKey(
        "routing.Department", models.CASCADE, related_name="extended_agents"
    )
    role = models.ForeignKey(Role, models.PROTECT, related_name="extended_access")

    class Meta:
        verbose_name = _("extended department access")
        verbose_name_plural = _("extended department access")
        constraints = [
            models.UniqueConstraint(fields=["agent", "department"], name="agentaccess_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.agent} → {self.department} ({self.role})"


class ApiKey(TimeStampedModel):
    """A key automations send as `X-API-Key` or `Authorization: Bearer`.

    Only the SHA-256 of the key is stored; the key itself is shown once, when it is made. The
    key acts as `user` (a person, or a service account) with that user's permissions, and
    the two osTicket flags gate the osTicket-compatible endpoints."""

    name = models.CharField(_("name"), max_length=128)
    # The first characters of the key, shown in lists so people can tell keys apart.
    prefix = models.CharField(_("prefix"), max_length=16, editable=False)
    key_hash = models.CharField(_("SHA-256 of the key"), max_length=64, unique=True, editable=False)
    user = models.ForeignKey(
        User, models.CASCADE, related_name="api_keys", verbose_name=_("acts as")
    )
    is_active = models.BooleanField(_("active"), default=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    # Addresses or networks ("192.0.2.10", "10.0.0.0/8", "2001:db8::/32"); empty: any.
    allowed_ips = models.JSONField(_("allowed addresses"), default=list, blank=True)
    can_create_tickets = models.BooleanField(_("may create tickets (osTicket API)"), default=False)
    can_exec_cron = models.BooleanField(_("may run cron (osTicket API)"), default=False)
    notes = models.TextField(_("notes"), blank=True)
    created_by = models.ForeignKey(User, models.SET_NULL, null=True, blank=True, related_name="+")
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(_("last used from"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= now()
