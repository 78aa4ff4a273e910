"""The help desk's run-time settings: `config()` is what code should read.

Admins change them on the settings screen (`helpdesk.models.HelpdeskSettings`, one row).
Until that row exists, every value falls back to the environment's HELPDESK_* settings, read
on each call (so tests that override Django settings keep working).

The row is kept per process while its version token in Django's cache is unchanged
(`helpdesk.lib.memo`): a save renews the token, so every process sharing the cache (Redis or
Memcached) reloads it on its next read; with the default local-memory cache another process
may see the old values for up to `memo.MAX_AGE` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction

from helpdesk.lib.memo import VersionedMemo

if TYPE_CHECKING:
    from routing.models import Department, HelpTopic
    from sla.models import SLAPlan
    from tickets.models import Priority

    from .models import HelpdeskSettings

MB = 1024 * 1024


@dataclass(frozen=True)
class Config:
    helpdesk_name: str
    default_department: Department | None
    default_priority: Priority | None
    default_sla: SLAPlan | None
    default_help_topic: HelpTopic | None
    ticket_number_format: str
    claim_on_reply: bool
    customers_can_close: bool
    require_help_topic_to_close: bool
    collaborator_visibility: str
    max_attachment_size: int  # bytes
    allowed_attachment_types: tuple[str, ...]  # lower case: ".pdf", "text/plain", "image/*"
    is_saved: bool  # False: every value comes from the environment

    def attachment_type_allowed(self, filename: str, content_type: str) -> bool:
        """Does a file of this name and MIME type pass the allowed types? Entries are
        extensions (".pdf"), MIME types ("text/plain") or MIME families ("image/*")."""
        name = (filename or "").lower()
        mime = (content_type or "").lower().split(";")[0].strip()
        for allowed in self.allowed_attachment_types:
            if allowed.startswith(".") and name.endswith(allowed):
                return True
            if allowed.endswith("/*") and mime.startswith(allowed[:-1]):
                return True
            if "/" in allowed and mime == allowed:
                return True
        return False


def settings_defaults() -> dict[str, Any]:
    """The values that apply while no admin has saved the settings."""
    from .models import CollaboratorVisibility

    size = settings.HELPDESK_MAX_ATTACHMENT_SIZE
    return {
        "helpdesk_name": settings.HELPDESK_TITLE,
        "ticket_number_format": settings.HELPDESK_TICKET_NUMBER_FORMAT,
        "claim_on_reply": settings.HELPDESK_AUTO_CLAIM_ON_REPLY,
        "customers_can_close": settings.HELPDESK_CUSTOMERS_CAN_CLOSE,
        "require_help_topic_to_close": False,
        "collaborator_visibility": CollaboratorVisibility.THREAD,
        "max_attachment_size": max(1, -(-size // MB)),  # whole MB, rounded up
        "allowed_attachment_types": "\n".join(_env_types()),
    }


def _env_types() -> list[str]:
    items = (item.strip().lower() for item in getattr(settings, "HELPDESK_ATTACHMENT_TYPES", []))
    return [item if item.startswith(".") or "/" in item else f".{item}" for item in items if item]


def settings_row() -> HelpdeskSettings | None:
    """The saved settings row with its default department, priority, SLA and help topic, or
    None before the first save; kept per process (`helpdesk.lib.memo`)."""
    return _settings_memo().get()


@cache
def _settings_memo() -> VersionedMemo[HelpdeskSettings | None]:
    from .models import HelpdeskSettings

    def load() -> HelpdeskSettings | None:
        return (
            HelpdeskSettings.objects.select_related(
                "default_department", "default_priority", "default_sla", "default_help_topic"
            )
            .filter(singleton=1)
            .first()
        )

    return VersionedMemo("helpdesk.settings", load).watch(HelpdeskSettings)


def settings_form_instance() -> HelpdeskSettings:
    """The row to edit: the saved one, or a new one holding the environment's values."""
    from .models import HelpdeskSettings

    row = HelpdeskSettings.objects.filter(singleton=1).first()
    return row if row is not None else HelpdeskSettings(**settings_defaults())


def config_invalidate() -> None:
    """Every process forgets its copy of the row (at once, and again once the current
    transaction commits)."""
    _settings_memo().invalidate()


def config() -> Config:
    row = settings_row()
    if row is None:
        values = settings_defaults()
        return Config(
            helpdesk_name=values["helpdesk_name"],
            default_department=None,
            default_priority=None,
            default_sla=None,
            default_help_topic=None,
            ticket_number_format=values["ticket_number_format"],
            claim_on_reply=values["claim_on_reply"],
            customers_can_close=values["customers_can_close"],
            require_help_topic_to_close=False,
            collaborator_visibility=values["collaborator_visibility"],
            max_attachment_size=settings.HELPDESK_MAX_ATTACHMENT_SIZE,
            allowed_attachment_types=tuple(_env_types()),
            is_saved=False,
        )
    return Config(
        helpdesk_name=row.helpdesk_name,
        default_department=row.default_department,
        default_priority=row.default_priority,
        default_sla=row.default_sla,
        default_help_topic=row.default_help_topic,
        ticket_number_format=row.ticket_number_format,
        claim_on_reply=row.claim_on_reply,
        customers_can_close=row.customers_can_close,
        require_help_topic_to_close=row.require_help_topic_to_close,
        collaborator_visibility=row.collaborator_visibility,
        max_attachment_size=row.max_attachment_size * MB,
        allowed_attachment_types=tuple(row.allowed_types or _env_types()),
        is_saved=True,
    )


def settings_save(*, form: Any, actor: Any) -> HelpdeskSettings:
    """Save the settings form (creating the row on first save), log the change and drop the
    cached copy once committed."""
    from django.core.exceptions import ValidationError
    from django.db import IntegrityError
    from django.utils.translation import gettext as _

    from .adminlog import admin_form_save

    try:
        with transaction.atomic():
            row = admin_form_save(form=form, actor=actor)
            config_invalidate()
    except IntegrityError:
        # Two admins saved the very first settings at once; the other one won.
        raise ValidationError(
            _("Someone else saved the settings meanwhile. Reload the page and try again.")
        ) from None
    return row  # type: ignore[return-value]
