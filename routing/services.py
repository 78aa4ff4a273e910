"""Routing of a new ticket's draft: bans, filters, help topic and department defaults.

`draft_route` reads and never writes, so a rejected draft leaves no trace; `ticket_open`
calls it before it creates anything.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext as _

from helpdesk.lib.memo import (
    VersionedMemo,
    snapshot_value,
    token_get,
    token_register,
    token_renew,
)

from .filters import DraftRejected, FilterResult, filters_apply
from .models import BannedAddress, Department, Filter, FilterRule

if TYPE_CHECKING:
    from tickets.services import TicketDraft


def department_default() -> Department:
    """Where tickets go when nothing routes them: the default department of the settings
    when it is active, else the first active public top department."""
    from helpdesk.config import config

    chosen = config().default_department
    if chosen is not None:
        # Read afresh: the cached settings may predate the department's archiving.
        current = Department.objects.filter(pk=chosen.pk, is_active=True).first()
        if current is not None:
            return current
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
    if _BANNED.get().isdisjoint(candidates):
        return None
    bans = {ban.address: ban for ban in BannedAddress.objects.filter(address__in=candidates)}
    return next((bans[c] for c in candidates if c in bans), None)


def _banned_addresses() -> frozenset[str]:
    return frozenset(BannedAddress.objects.values_list("address", flat=True))


# Every mail and new ticket asks whether its sender is banned: the banned addresses and
# domains (stored lower case) are kept per process, so that only a sender who may be banned
# costs a query.
_BANNED = VersionedMemo("routing.banned_addresses", _banned_addresses).watch(BannedAddress)


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
            "filter__sla",
        )
        .order_by("filter__sort_order", "filter__pk", "pk")
    )
    filters: dict[int, Filter] = {}
    for rule in rules:
        filter_ = filters.setdefault(rule.filter_id, rule.filter)
        filter_.__dict__.setdefault("loaded_rules", []).append(rule)
        rule.filter = filter_  # one object per filter
    return list(filters.values())


# The filters as loaded, kept per process: `filters_load` costs ~9 ms (a 12-join query) for
# every new ticket. The copy is used while the stamp of the active filters (their rules'
# count and highest id, the latest filter change) and the version token in the cache (set
# anew on every save or delete of a filter or rule) are unchanged; never when this very
# transaction changed filters (it may roll back). Callers get copies whose actions'
# targets (department, team...) load afresh, so a cached filter never routes with stale rows.
FILTERS_VERSION_KEY = token_register("routing:filters:version")
_filters_memo: list[tuple[tuple[Any, ...], list[Filter]]] = []


def filters_version_bump(*args: Any, **kwargs: Any) -> None:
    token_renew(FILTERS_VERSION_KEY)
    transaction.on_commit(_filters_committed)


def _filters_committed() -> None:
    token_renew(FILTERS_VERSION_KEY)


for _model in (Filter, FilterRule):
    _uid = f"routing.filters.{_model.__name__}"
    post_save.connect(filters_version_bump, sender=_model, dispatch_uid=_uid)
    post_delete.connect(filters_version_bump, sender=_model, dispatch_uid=_uid)


def _filters_stamp() -> dict[str, Any]:
    return FilterRule.objects.filter(filter__is_active=True).aggregate(
        rules=Count("pk"), last_rule=Max("pk"), changed=Max("filter__updated_at")
    )


def filters_load_cached() -> list[Filter]:
    """`filters_load`, from the per-process copy when nothing changed.

    Where every process shares the cache (HELPDESK_SHARED_CACHE), the version token alone
    tells: filters and rules change only through saves and deletes, which renew it. With a
    per-process cache, a change made in another process shows in the stamp (one small query)."""
    version = token_get(FILTERS_VERSION_KEY)  # None with a dummy cache: no copy
    if settings.HELPDESK_SHARED_CACHE:
        stamp: dict[str, Any] = {"rules": None, "last_rule": None, "changed": None}
    else:
        # Read once per request or run of mail, as the token is where the cache is shared;
        # a change made in this process renews the token, so the stamp is read again.
        stamp = (
            snapshot_value(f"{FILTERS_VERSION_KEY}:{version}", _filters_stamp)
            if version is not None
            else _filters_stamp()
        )
        if not stamp["rules"]:
            return []
    key = (stamp["rules"], stamp["last_rule"], stamp["changed"], version)
    if _filters_memo and _filters_memo[0][0] == key and key[-1] is not None:
        filters = _filters_memo[0][1]
    else:
        filters = filters_load()
        connection = transaction.get_connection()
        changed_here = connection.in_atomic_block and any(
            callback is _filters_committed for _ids, callback, _robust in connection.run_on_commit
        )
        _filters_memo[:] = [] if changed_here else [(key, filters)]
    copies = []
    for original in filters:
        filter_ = copy.copy(original)
        filter_._state.fields_cache = {}
        filter_.__dict__["loaded_rules"] = original.__dict__.get("loaded_rules", [])
        copies.append(filter_)
    return copies


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
    item, status and extra collaborators come from the filters, else from the topic; the SLA
    plan from the filters, else the topic, else the department, else the default."""
    filters = filters_load_cached()
    result = (
        filters_apply(draft, filters, organization=_organization_name(draft))
        if filters
        else FilterResult()
    )
    if result.rejected_by is not None:
        raise DraftRejected(result.rejected_by)
    draft.routing = result
    for name in ("department", "priority", "status", "help_topic", "cti_item", "sla"):
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
    # The SLA plan: a filter's, else the topic's, else the department's, else the default
    # (HELPDESK_DEFAULT_SLA); inactive plans are passed over.
    if draft.sla is not None and not draft.sla.is_active:
        draft.sla = None
    if draft.sla is None:
        from sla.selectors import sla_for

        draft.sla = sla_for(help_topic=topic, department=department)
    draft.auto_respond = bool(
        draft.auto_respond
        and result.auto_respond
        and (topic is None or topic.auto_response)
        and department.auto_response
    )
    return draft


# --- Admin screens ----------------------------------------------------------------------------


def filter_save(*, form: Any, rules: Any, actor: Any) -> Filter:
    """Save an admin's filter form and its rules formset (both valid) in one transaction,
    and record the admin log: the filter's changed fields, and its rules before → after."""
    from helpdesk.adminlog import admin_log_record, form_changes
    from helpdesk.models import AdminAction

    with transaction.atomic():
        creating = form.instance._state.adding
        before = [] if creating else sorted(str(rule) for rule in form.instance.rules.all())
        changes = form_changes(form, creating=creating)
        filter_ = form.save()
        rules.instance = filter_
        rules.save()
        after = sorted(str(rule) for rule in filter_.rules.all())
        if before != after:
            changes["rules"] = [before, after]
        if creating or changes:
            admin_log_record(
                actor=actor,
                obj=filter_,
                action=AdminAction.CREATE if creating else AdminAction.UPDATE,
                changes=changes,
            )
    return filter_


def banned_address_save(*, form: Any, actor: Any) -> BannedAddress:
    """Save a ban from the admin screen; a new ban remembers who made it."""
    from helpdesk.adminlog import admin_form_save

    if form.instance._state.adding:
        form.instance.created_by = actor
    return admin_form_save(form=form, actor=actor)  # type: ignore[return-value]


def filters_try(draft: TicketDraft, *, organization: str = "") -> tuple[FilterResult, list]:
    """What the active filters would do with `draft`, without opening a ticket: the result,
    and each active filter with whether it matched (None: not reached, because an earlier
    filter rejected the draft or stopped the run). Reads only; the filter screen's test box."""
    filters = filters_load()
    organization = organization or _organization_name(draft)
    result = filters_apply(draft, filters, organization=organization)
    reached = True
    rows = []
    for filter_ in filters:
        matched = filter_.name in result.matched if reached else None
        rows.append((filter_, matched))
        if matched and (filter_.reject or filter_.stop_on_match):
            reached = False
    return result, rows
