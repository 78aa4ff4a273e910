"""Routing of a new ticket's draft. The filter engine and auto-assignment plug in here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .models import Department

if TYPE_CHECKING:
    from tickets.services import TicketDraft


def department_default() -> Department:
    """Where tickets go when nothing routes them: the first active public top department."""
    department = (
        Department.objects.filter(is_active=True, parent__isnull=True)
        .order_by("-is_public", "pk")
        .first()
    )
    if department is None:
        raise ValidationError({"department": _("No active department takes tickets.")})
    return department


def draft_route(draft: TicketDraft) -> TicketDraft:
    """Fill in where a draft goes: the help topic's defaults, then the help desk's defaults."""
    topic = draft.help_topic
    if draft.department is None and topic is not None and topic.department_id:
        draft.department = topic.department
    if draft.priority is None and topic is not None and topic.priority_id:
        draft.priority = topic.priority
    if draft.department is None:
        draft.department = department_default()
    if not draft.department.is_active:
        raise ValidationError({"department": _("This department is archived.")})
    return draft
