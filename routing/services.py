"""Routing of a new ticket's draft: bans, filters, help topic and department defaults.

`draft_route` reads and never writes, so a rejected draft leaves no trace; `ticket_open`
calls it before it creates anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .filters import DraftRejected, FilterResult, filters_apply
from .models import BannedAddress, Department, Filter, FilterRule

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


def sender_banned(email: str) -> BannedAddress | None:
    """The ban that covers `email`: the address itself, its domain, or a parent domain."""
    address = (email or "").strip().lower()
    local, _at, domain = address.rpartition("@")
    if not local or not domain:
        return None
    labels = domain.split(".")
    candidates = [address, *(".".join(labels[i:]) for i in range(len(labels)))]
    bans = {ban.address: ban for ban in BannedAddress.objects.filter(address__in=candidates)}
    return next((bans[c] for c in candidates if c in bans), None)


def filters_load() -> list[Filter]:
    """Active filters in order, each with its rules in `loaded_rules`: one query. A filter
    without rules never matches, so it need not be loaded."""
    rules = (
        FilterRule.objects.filter(filter__is_active=True)
        .select_related(
            "filter__department",
            "filter__priority",
            "filter__status",
            "filter__help_topic__department",
            "filter__help_topic__priority",
            "filter__cti_item__type__category",
            "filter__assignee",
            "filter__team",
        )
        .order_by("filter__sort_order", "filter__pk", "pk")
    )
    filters: dict[int, Filter] = {}
    for rule in rules:
        filter_ = filters.setdefault(rule.filter_id, rule.filter)
        filter_.__dict__.setdefault("loaded_rules", []).append(rule)
        rule.filter = filter_  # one object per filter
    return list(filters.values())


def _organization_name(draft: TicketDraft) -> str:
    from accounts.services import organization_for_email, user_get_by_email

    user = draft.user or (user_get_by_email(email=draft.email) if draft.email else None)
    if user is not None:
        return user.organization.name if user.organization_id else ""
    organization = organization_for_email(draft.email) if draft.email else None
    return organization.name if organization is not None else ""


def draft_route(draft: TicketDraft) -> TicketDraft:
    """Fill in where a draft goes: the filters first, then the help topic's defaults, then
    the department's and the help desk's. Raises `DraftRejected` when a filter rejects it.

    The draft gets `routing` (the `FilterResult`) and `auto_respond`; assignee, team, CTI
    item, status and extra collaborators come from the filters, else from the topic."""
    filters = filters_load()
    result = (
        filters_apply(draft, filters, organization=_organization_name(draft))
        if filters
        else FilterResult()
    )
    if result.rejected_by is not None:
        raise DraftRejected(result.rejected_by)
    draft.routing = result
    for name in ("department", "priority", "status", "help_topic", "cti_item"):
        if getattr(result, name) is not None:
            setattr(draft, name, getattr(result, name))
    if result.assignee is not None or result.team is not None:
        draft.assignee = result.assignee
        draft.team = result.team
    for address in result.collaborators:
        if address not in draft.collaborators:
            draft.collaborators.append(address)

    topic = draft.help_topic
    if topic is not None and result.help_topic is not None and not topic.is_active:
        raise ValidationError({"help_topic": _("This help topic is not available.")})
    if topic is not None:
        if draft.department is None and topic.department_id:
            draft.department = topic.department
        if draft.priority is None and topic.priority_id:
            draft.priority = topic.priority
        if draft.assignee is None and draft.team is None:
            draft.assignee, draft.team = topic.assignee, topic.team
    if draft.department is None:
        draft.department = department_default()
    department = draft.department
    if not department.is_active:
        raise ValidationError({"department": _("This department is archived.")})
    if draft.priority is None and department.default_priority_id:
        draft.priority = department.default_priority
    draft.auto_respond = bool(
        draft.auto_respond
        and result.auto_respond
        and (topic is None or topic.auto_response)
        and department.auto_response
    )
    return draft
