"""Reads of SLA plans: which plan a new ticket gets."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings

from helpdesk.config import config
from helpdesk.lib.memo import VersionedMap, VersionedMemo

from .duedates import Calendar, hours
from .models import Holiday, Period, PriorityTarget, Schedule, ScheduleException, SLAPlan

if TYPE_CHECKING:
    from routing.models import Department, HelpTopic
    from tickets.models import Priority


def sla_default() -> SLAPlan | None:
    """The default plan of the settings screen, else the one named by HELPDESK_DEFAULT_SLA;
    either only when it exists and is active."""
    chosen = config().default_sla
    if chosen is not None:
        return _active(chosen.pk)
    name = settings.HELPDESK_DEFAULT_SLA
    if not name:
        return None
    plan = next((plan for plan in _PLANS.get().values() if plan.name == name), None)
    return copy.copy(plan) if plan is not None else None


def _active_plans() -> dict[int, SLAPlan]:
    return {
        plan.pk: plan for plan in SLAPlan.objects.filter(is_active=True).select_related("schedule")
    }


def _priority_targets() -> dict[tuple[int, int], tuple[timedelta, timedelta]]:
    return {
        (plan_id, priority_id): (hours(first_response), hours(resolution))
        for plan_id, priority_id, first_response, resolution in PriorityTarget.objects.values_list(
            "plan_id", "priority_id", "first_response_hours", "resolution_hours"
        )
    }


# Every new ticket reads its plan, its targets and its calendar: kept per process
# (helpdesk.lib.memo). Holidays added in bulk send no signal: `sla.services` invalidates.
_PLANS = VersionedMemo("sla.active_plans", _active_plans).watch(SLAPlan, Schedule)
_TARGETS = VersionedMemo("sla.priority_targets", _priority_targets).watch(PriorityTarget)
CALENDARS: VersionedMap[int, Calendar] = VersionedMap("sla.calendars").watch(
    Schedule, Period, Holiday, ScheduleException
)


def _active(plan_id: int | None) -> SLAPlan | None:
    if plan_id is None:
        return None
    plan = _PLANS.get().get(plan_id)
    return copy.copy(plan) if plan is not None else None


def plan_targets(plan: SLAPlan, priority: Priority | None) -> tuple[timedelta, timedelta]:
    """The plan's (first response, resolution) targets, for `priority` when the plan sets
    targets per priority."""
    if priority is not None:
        found = _TARGETS.get().get((plan.pk, priority.pk))
        if found is not None:
            return found
    return hours(plan.first_response_hours), hours(plan.resolution_hours)


def plan_calendar(plan: SLAPlan | None) -> Calendar:
    """The business hours of the plan's schedule (calendar time without one); shared by the
    callers of a process, not to be changed."""
    if plan is None or plan.schedule_id is None:
        return Calendar()
    return CALENDARS.get(plan.schedule_id, lambda: Calendar.for_schedule(plan.schedule))


def sla_for(*, help_topic: HelpTopic | None, department: Department | None) -> SLAPlan | None:
    """The plan for a ticket of this topic and department: the topic's wins over the
    department's, which wins over the default; inactive plans are passed over."""
    for owner in (help_topic, department):
        plan = _active(owner.sla_id) if owner is not None else None
        if plan is not None:
            return plan
    return sla_default()
