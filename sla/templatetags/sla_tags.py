"""`{% sla_due ticket as due %}`: what the due badge of a ticket shows (templates/sla/_due.html)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django import template
from django.utils import timezone

register = template.Library()

# "Due soon" from this much time before the due date.
DUE_SOON = timedelta(hours=2)


@dataclass(frozen=True)
class DueState:
    state: str  # "ok", "soon", "overdue", "paused"
    due_at: datetime
    is_override: bool

    @property
    def css_class(self) -> str:
        return f"due-{self.state}"


@register.simple_tag
def sla_due(ticket: object, now: datetime | None = None) -> DueState | None:
    """The due state of an open ticket with a due date; None otherwise. Reads the ticket's
    own fields only (no query), so queues may call it per row."""
    due_at = getattr(ticket, "due_at", None)
    if due_at is None or getattr(ticket, "closed_at", None) is not None:
        return None
    now = now or timezone.now()
    override = getattr(ticket, "due_override_at", None) is not None
    if getattr(ticket, "sla_paused_at", None) is not None and not override:
        state = "paused"
    elif getattr(ticket, "is_overdue", False) or due_at <= now:
        state = "overdue"
    elif due_at - now <= DUE_SOON:
        state = "soon"
    else:
        state = "ok"
    return DueState(state=state, due_at=due_at, is_override=override)
