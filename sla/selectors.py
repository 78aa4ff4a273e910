"""Reads of SLA plans: which plan a new ticket gets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings

from helpdesk.config import config

from .models import SLAPlan

if TYPE_CHECKING:
    from routing.models import Department, HelpTopic


def sla_default() -> SLAPlan | None:
    """The default plan of the settings screen, else the one named by HELPDESK_DEFAULT_SLA;
    either only when it exists and is active."""
    chosen = config().default_sla
    if chosen is not None:
        return _active(chosen.pk)
    name = settings.HELPDESK_DEFAULT_SLA
    if not name:
        return None
    return SLAPlan.objects.filter(name=name, is_active=True).first()


def _active(plan_id: int | None) -> SLAPlan | None:
    if plan_id is None:
        return None
    return SLAPlan.objects.filter(pk=plan_id, is_active=True).first()


def sla_for(*, help_topic: HelpTopic | None, department: Department | None) -> SLAPlan | None:
    """The plan for a ticket of this topic and department: the topic's wins over the
    department's, which wins over the default; inactive plans are passed over."""
    for owner in (help_topic, department):
        plan = _active(owner.sla_id) if owner is not None else None
        if plan is not None:
            return plan
    return sla_default()
