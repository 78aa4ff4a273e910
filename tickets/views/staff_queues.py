"""The staff dashboard and the ticket queues under /scp/tickets/.

The queue page is one paginated table; its filters, sort links and pages are plain GET links
and forms, which htmx turns into swaps of the table partial (`_partials/queue_table.html`).
Bulk actions are a plain POST that calls the ticket services once per ticket and reports
each refusal.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template import engines
from django.template.loader import get_template
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import get_language, gettext_lazy, ngettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts import permissions
from accounts.decorators import agent_required
from accounts.models import User
from helpdesk.lib import querycache
from helpdesk.lib.fragments import fragment
from routing.models import Department, Team

from .. import queues
from ..forms import FastSelect
from ..models import TicketStatus
from ..selectors import ticket_list_for_user
from ..services import ticket_assign, ticket_status_set, ticket_transfer

TABLE_ID = "queue-table"

# The table's columns: (sort key, heading). The sort keys are `queues.SORTS`.
COLUMNS = [
    ("number", gettext_lazy("Number")),
    ("subject", gettext_lazy("Subject")),
    ("customer", gettext_lazy("Customer")),
    ("department", gettext_lazy("Department")),
    ("priority", gettext_lazy("Priority")),
    ("status", gettext_lazy("Status")),
    ("assignee", gettext_lazy("Assigned to")),
    ("updated", gettext_lazy("Last update")),
    ("due", gettext_lazy("Due")),
]


# --- dashboard ------------------------------------------------------------------------------


@agent_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    counts = queues.dashboard_counts(user=request.user)
    activity = queues.activity_for(user=request.user)
    return render(
        request,
        "tickets/staff/dashboard.html",
        {
            "counts": counts,
            "activity": activity,
            "activity_days": queues.ACTIVITY_DAYS,
            "nav_active": "dashboard",
        },
    )


# --- queues ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Heading:
    key: str
    label: str
    next_sort: str
    aria_sort: str


def _headings(sort: str | None) -> list[Heading]:
    parsed = queues.sort_parse(sort)
    headings = []
    for key, label in COLUMNS:
        if parsed and parsed[0] == key:
            descending = parsed[1]
            next_sort = key if descending else f"-{key}"
            aria = "descending" if descending else "ascending"
        else:
            next_sort, aria = key, ""
        headings.append(Heading(key, str(label), next_sort, aria))
    return headings


def _queue_nav(request: HttpRequest, lookups: queues.Lookups) -> dict[str, Any]:
    """The fixed queues, and the departments and help topics the agent can open queues for."""
    scope = permissions.agent_scope(request.user)
    department_ids = None if scope is None else set(scope.roles_by_department)
    departments = [
        (f"department-{pk}", name)
        for pk, name in lookups.named(lookups.departments)
        if department_ids is None or pk in department_ids
    ]
    topics = [
        (f"topic-{pk}", name)
        for pk, name in lookups.named([t for t in lookups.help_topics if t.is_active])
    ]
    return {
        "fixed": [(queue.slug, queue.label) for queue in queues.QUEUES.values()],
        "departments": departments,
        "help_topics": topics,
    }


def _select(name: str, choices: list[tuple[int, str]]) -> str:
    widget = FastSelect(choices=[("", "—"), *choices])
    return widget.render(name, None, {"id": f"bulk-{name}"})


def _bulk_selects(lookups: queues.Lookups) -> dict[str, str]:
    """The bulk actions' pickers: every active agent, team and department, every status.
    The same on every page: kept with the lookups (per process, until one of them changes)."""
    if lookups.bulk_html is None:
        lookups.bulk_html = _bulk_selects_render(lookups)
    return lookups.bulk_html


def _bulk_selects_render(lookups: queues.Lookups) -> dict[str, str]:
    active = {department.pk for department in lookups.departments if department.is_active}
    departments = [(pk, name) for pk, name in lookups.named(lookups.departments) if pk in active]
    return {
        "agent": _select("agent", [(agent.pk, agent.name) for agent in lookups.agents]),
        "team": _select("team", [(team.pk, team.name) for team in lookups.teams if team.is_active]),
        "status": _select("status", [(status.pk, status.name) for status in lookups.statuses]),
        "department": _select("department", departments),
    }


@agent_required
@require_GET
def queue(request: HttpRequest, queue: str = queues.DEFAULT_QUEUE) -> HttpResponse:
    lookups = queues.queue_lookups()
    current = queues.queue_get(queue, lookups)
    if current is None:
        raise Http404("No such queue.")
    form = queues.QueueFilterForm(request.GET or None, lookups=lookups)
    filters = form.filters()
    per_page = filters.get("per_page") or queues.PAGE_SIZES[0]

    def load() -> tuple[int, int, list[Any]]:
        tickets = queues.queue_list(current, user=request.user, filters=filters, lookups=lookups)
        # The page's ids first, then its rows (see `queues.tickets_rows`).
        ids = Paginator(querycache.CachedPages(tickets.values_list("pk", flat=True)), per_page)
        page = ids.get_page(request.GET.get("page"))
        rows = queues.tickets_rows(page.object_list, user=request.user, attach=False)
        return page.paginator.count, page.number, rows

    # The page as a whole (its count, number and rows) until ticket data changes: keyed by
    # the queue, every GET parameter, what the agent may see and the queues' definitions.
    key = (
        queue,
        request.path,  # the default queue answers at two addresses; links keep the one used
        sorted(request.GET.lists()),
        permissions.visibility_key(request.user),
        queues.lookups_token(),
    )
    count, number, rows = querycache.remember("queue page", key, load)
    page = querycache.known_page(count, number, rows, per_page)
    context = {
        "queue": current,
        "page": page,
        "filter_form": form,
        "filters_active": form.active_count,
        "headings": _headings(filters.get("sort")),
        "table_id": TABLE_ID,
        "search_query": filters.get("q", ""),
        "current_sort": filters.get("sort", ""),
        "nav_active": "tickets",
    }
    if (
        request.htmx
        and request.htmx.target == TABLE_ID
        and not request.htmx.history_restore_request
    ):
        queues.rows_attach(page.object_list)
        rows_render(page.object_list)
        response = render(request, "tickets/staff/_partials/queue_table.html", context)
    else:

        def render_content(extra: dict[str, Any]) -> str:
            queues.rows_attach(page.object_list)
            rows_render(page.object_list)
            content = {
                **context,
                "queue_nav": _queue_nav(request, lookups),
                "bulk": _bulk_selects(lookups),
                **extra,
            }
            return get_template(CONTENT_TEMPLATE).render(content, request)

        # The page below the header, kept with the same key as its rows (its navigation,
        # filters and bulk pickers come from the lookups and the agent's scope).
        context["content_html"] = fragment(request, "queue content", key, render_content)
        response = render(request, "tickets/staff/queue.html", context)
    # The same URL answers the whole page or the table alone: caches must tell them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


CONTENT_TEMPLATE = "tickets/staff/_partials/queue_content.html"


# --- rows -----------------------------------------------------------------------------------

ROW_TEMPLATE = "tickets/staff/queue_row.jinja"
# A row shows times relative to now ("5 minutes ago", "due in 2 hours"): its key holds the
# current minute, so a kept row is at most a minute behind the clock.
ROW_CACHE_SECONDS = 120


def _row_key(ticket: Any, minute: str) -> str:
    """Everything a row shows, so that a change of any of it (the ticket, its customer's or
    assignee's name, its status or priority) makes a new key."""
    status, priority = ticket.status, ticket.priority
    parts = (
        ticket.pk,
        ticket.number,
        ticket.subject,
        ticket.is_answered,
        ticket.is_overdue,
        ticket.updated_at,
        ticket.due_at,
        ticket.closed_at,
        ticket.due_override_at,
        ticket.sla_paused_at,
        status.name,
        status.state,
        priority.name,
        priority.urgency,
        ticket.department.name,
        ticket.user.get_full_name(),
        ticket.assignee.get_full_name() if ticket.assignee_id else "",
        ticket.team.name if ticket.team_id else "",
        minute,
        get_language(),
        timezone.get_current_timezone_name(),
    )
    return "helpdesk:queue-row:" + hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


def rows_render(tickets: list[Any]) -> None:
    """Set `ticket.row_html` on each ticket: its table row, from the cache when the same row
    was rendered in the last minute (rows are the same for every agent)."""
    minute = timezone.now().strftime("%Y%m%d%H%M")
    keys = {ticket.pk: _row_key(ticket, minute) for ticket in tickets}
    kept = cache.get_many(list(keys.values()))
    template = engines["jinja2"].get_template(ROW_TEMPLATE)
    fresh = {}
    for ticket in tickets:
        key = keys[ticket.pk]
        html = kept.get(key)
        if html is None:
            html = fresh[key] = template.render({"ticket": ticket})
        ticket.row_html = mark_safe(html)  # noqa: S308 - the row template's escaped output
    if fresh:
        cache.set_many(fresh, ROW_CACHE_SECONDS)


# --- bulk actions ---------------------------------------------------------------------------

BULK_LIMIT = max(queues.PAGE_SIZES)


class TicketNumbersField(forms.Field):
    """The ticket numbers ticked in the table (`tickets=123456&tickets=234567`)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[str]:
        values = value if isinstance(value, list | tuple) else [value] if value else []
        return list(dict.fromkeys(str(v).strip().lstrip("#") for v in values if str(v).strip()))

    def validate(self, value: list[str]) -> None:
        if not value:
            raise ValidationError(_("Select at least one ticket."), code="required")
        if len(value) > BULK_LIMIT:
            raise ValidationError(
                _("Select at most %(limit)d tickets at a time.") % {"limit": BULK_LIMIT}
            )
        if any(len(number) > 32 for number in value):
            raise ValidationError(_("That is not a ticket number."))


class BulkForm(forms.Form):
    ACTIONS = [
        ("assign", gettext_lazy("Assign")),
        ("status", gettext_lazy("Change status")),
        ("transfer", gettext_lazy("Transfer")),
    ]

    tickets = TicketNumbersField(label=gettext_lazy("Tickets"))
    action = forms.ChoiceField(label=gettext_lazy("Action"), choices=ACTIONS)
    agent = forms.ModelChoiceField(
        label=gettext_lazy("Agent"),
        queryset=User.objects.filter(is_active=True, agent__is_active=True),
        required=False,
    )
    team = forms.ModelChoiceField(
        label=gettext_lazy("Team"), queryset=Team.objects.filter(is_active=True), required=False
    )
    status = forms.ModelChoiceField(
        label=gettext_lazy("Status"), queryset=TicketStatus.objects.all(), required=False
    )
    department = forms.ModelChoiceField(
        label=gettext_lazy("Department"),
        queryset=Department.objects.filter(is_active=True),
        required=False,
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        action = data.get("action")
        if action == "assign" and not (data.get("agent") or data.get("team")):
            self.add_error("agent", _("Choose an agent or a team to assign the tickets to."))
        elif action == "status" and not data.get("status"):
            self.add_error("status", _("Choose the new status."))
        elif action == "transfer" and not data.get("department"):
            self.add_error("department", _("Choose the department to transfer the tickets to."))
        return data


def _apply(action: str, ticket: Any, by: User, data: dict[str, Any]) -> None:
    if action == "assign":
        ticket_assign(ticket=ticket, by=by, agent=data.get("agent"), team=data.get("team"))
    elif action == "status":
        ticket_status_set(ticket=ticket, by=by, status=data["status"])
    else:
        ticket_transfer(ticket=ticket, by=by, department=data["department"])


def _reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return str(error) or _("You may not do this.")


def bulk_apply(*, user: User, data: dict[str, Any]) -> tuple[int, list[tuple[str, str]]]:
    """Apply one action to each ticket through its service, each in its own transaction:
    one refusal never undoes the others. Returns (changed, [(number, reason), ...])."""
    numbers = data["tickets"]
    found = {t.number: t for t in ticket_list_for_user(user=user).filter(number__in=numbers)}
    changed, refused = 0, []
    for number in numbers:
        ticket = found.get(number)
        if ticket is None:
            refused.append((number, _("no such ticket")))
            continue
        try:
            _apply(data["action"], ticket, user, data)
        except (ValidationError, PermissionDenied) as error:
            refused.append((number, _reason(error)))
        else:
            changed += 1
    return changed, refused


def _back(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("tickets_staff:queue_default")


@agent_required
@require_POST
def bulk(request: HttpRequest) -> HttpResponse:
    form = BulkForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(_back(request))
    changed, refused = bulk_apply(user=request.user, data=form.cleaned_data)
    summary = ngettext("%(count)d ticket changed", "%(count)d tickets changed", changed) % {
        "count": changed
    }
    if refused:
        details = "; ".join(f"#{number} {reason}" for number, reason in refused)
        summary += ", " + _("%(count)d refused: %(details)s") % {
            "count": len(refused),
            "details": details,
        }
        (messages.warning if changed else messages.error)(request, summary)
    else:
        messages.success(request, summary + ".")
    return redirect(_back(request))


urlpatterns = [
    path("", queue, name="queue_default"),
    path("q/<slug:queue>/", queue, name="queue"),
    path("bulk/", bulk, name="bulk"),
]
