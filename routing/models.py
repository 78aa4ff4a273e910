"""Where tickets go: departments, teams and help topics.

Filters, CTI and auto-assignment come with the routing issue; the seam for them is
`routing.services.draft_route`, which `tickets.services.ticket_open` calls for every channel.
"""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
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
