"""The SLA clock of one ticket: its due dates, pauses and the effective due date.

These helpers change a ticket object in memory and return the names of the fields they
changed; the ticket services (`tickets.services`) call them inside their transaction, on
the locked ticket, and save those fields with their own. Nothing here saves or records
events.

- The clock starts when the ticket opens, and again when it is reopened.
- Time in a status that pauses the SLA does not count: when the ticket leaves such a status
  the business time it spent there is added to `sla_paused_seconds`, which moves both due
  dates later by exactly that much business time.
- `due_at` (what queues sort on and the overdue job compares) is the agent's override when
  set, else the first-response due date until the first response, else the resolution due
  date (the earlier of the two while both are pending).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from tickets.models import StatusState

from .duedates import NoBusinessHours, due_dates
from .selectors import plan_calendar, plan_targets

if TYPE_CHECKING:
    from sla.models import SLAPlan
    from tickets.models import Ticket, TicketStatus

logger = logging.getLogger(__name__)

DUE_FIELDS = [
    "first_response_due_at",
    "resolution_due_at",
    "due_at",
    "is_overdue",
    "overdue_at",
]


def clock_start(ticket: Ticket) -> datetime:
    return ticket.reopened_at or ticket.created_at


def due_effective(ticket: Ticket, *, now: datetime) -> list[str]:
    """Set `due_at` from the override and the computed dates; a ticket whose new due date
    lies ahead is no longer overdue."""
    due = ticket.due_override_at
    if due is None:
        pending = [ticket.resolution_due_at]
        if ticket.first_response_at is None:
            pending.append(ticket.first_response_due_at)
        pending = [moment for moment in pending if moment is not None]
        due = min(pending) if pending else None
    ticket.due_at = due
    if ticket.is_overdue and (due is None or due > now):
        ticket.is_overdue, ticket.overdue_at = False, None
    return ["due_at", "is_overdue", "overdue_at"]


def due_compute(ticket: Ticket, *, now: datetime) -> list[str]:
    """Compute the plan's due dates from the clock's start, the priority and the paused
    time, then the effective due date."""
    first_response = resolution = None
    plan = ticket.sla
    if plan is not None:
        try:
            dates = due_dates(
                plan,
                clock_start(ticket),
                priority=ticket.priority,
                paused=timedelta(seconds=ticket.sla_paused_seconds),
                calendar=plan_calendar(plan),
                target_hours=plan_targets(plan, ticket.priority),
            )
        except NoBusinessHours:
            logger.warning("SLA plan %r: its schedule has no business hours", plan.name)
        else:
            first_response, resolution = dates.first_response, dates.resolution
    ticket.first_response_due_at, ticket.resolution_due_at = first_response, resolution
    due_effective(ticket, now=now)
    return list(DUE_FIELDS)


def on_open(ticket: Ticket, *, now: datetime) -> None:
    """A new ticket (not yet saved): its clock starts now, paused when its status pauses."""
    if ticket.status.state != StatusState.OPEN:
        return
    if ticket.status.pauses_sla:
        ticket.sla_paused_at = now
    due_compute(ticket, now=now)


def _pause_end(ticket: Ticket, *, now: datetime) -> None:
    paused_since = ticket.sla_paused_at
    if paused_since is None:
        return
    calendar = plan_calendar(ticket.sla)
    ticket.sla_paused_seconds += int(calendar.between(paused_since, now).total_seconds())
    ticket.sla_paused_at = None


def on_status_change(ticket: Ticket, *, previous: TicketStatus, now: datetime) -> list[str]:
    """The ticket (locked, in memory) moved from `previous` to `ticket.status`."""
    status = ticket.status
    if status.state != StatusState.OPEN:
        if ticket.sla_paused_at is None:
            return []
        ticket.sla_paused_at = None
        return ["sla_paused_at"]
    if previous.state != StatusState.OPEN:
        # Reopened: the clock starts again, a past override is dropped.
        ticket.sla_paused_seconds = 0
        ticket.sla_paused_at = now if status.pauses_sla else None
        if ticket.due_override_at is not None and ticket.due_override_at <= now:
            ticket.due_override_at = None
        return [
            "sla_paused_at",
            "sla_paused_seconds",
            "due_override_at",
            *due_compute(ticket, now=now),
        ]
    if status.pauses_sla and ticket.sla_paused_at is None:
        ticket.sla_paused_at = now
        return ["sla_paused_at"]
    if not status.pauses_sla and ticket.sla_paused_at is not None:
        _pause_end(ticket, now=now)
        return ["sla_paused_at", "sla_paused_seconds", *due_compute(ticket, now=now)]
    return []


def plan_set(ticket: Ticket, plan: SLAPlan | None, *, now: datetime) -> list[str]:
    """Put the ticket under another plan; the paused time so far is counted in the old
    plan's schedule, and the due dates are computed again."""
    if ticket.sla_paused_at is not None:
        _pause_end(ticket, now=now)
        ticket.sla_paused_at = now
    ticket.sla = plan
    fields = ["sla", "sla_paused_at", "sla_paused_seconds"]
    if ticket.closed_at is None:
        fields += due_compute(ticket, now=now)
    return fields


def plan_follow(ticket: Ticket, candidate: SLAPlan | None) -> SLAPlan | None:
    """The plan a transfer or a new help topic brings: `candidate` (the new department's or
    topic's plan) replaces a transient plan or no plan; a fixed plan stays. None: no change."""
    current = ticket.sla
    if candidate is None or not candidate.is_active or candidate == current:
        return None
    if current is not None and not current.is_transient:
        return None
    return candidate
