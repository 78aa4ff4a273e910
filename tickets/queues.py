"""Staff queues: which tickets each queue holds, the filters, and the sort orders.

Pure functions over querysets, so the staff UI and the REST API list the same tickets in the
same order. Everything starts from `accounts.permissions.visible_tickets`: a queue or filter
only ever narrows what the agent may see.

- Open, My teams, Unassigned, Overdue and Answered hold unresolved tickets (an open-state
  status); Closed holds closed and archived ones; My tickets and the per-department and
  per-help-topic queues hold every ticket but deleted ones, unresolved first.
- The default order is unresolved first, then the most urgent priority, then the oldest;
  My tickets is unresolved first, then the newest.
- Filters come from GET parameters (`QueueFilterForm`); sorting from `sort=<column>` or
  `sort=-<column>`, whitelisted in `SORTS`. Every order ends with the primary key, so pages
  never repeat or skip a row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django import forms
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    F,
    IntegerField,
    OrderBy,
    Q,
    QuerySet,
    Value,
    When,
)
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import permissions
from accounts.models import Agent, User
from helpdesk.lib import querycache
from helpdesk.lib.memo import VersionedMemo
from routing.models import Category, Department, HelpTopic, Team

from .forms import FastSelect
from .models import Priority, StatusState, ThreadEvent, Ticket, TicketStatus
from .related import related_attach

if TYPE_CHECKING:
    from django.utils.functional import Promise

# --- lookups: the small tables a queue page shows as choices -----------------------------------


@dataclass(frozen=True)
class Choice:
    pk: int
    name: str
    sort: int = 0
    parent_id: int | None = None
    extra: str = ""  # a status's state
    is_active: bool = True


@dataclass
class Lookups:
    """Statuses, priorities, departments, help topics, teams, CTI categories and agents."""

    statuses: list[Choice] = field(default_factory=list)
    priorities: list[Choice] = field(default_factory=list)
    departments: list[Choice] = field(default_factory=list)
    help_topics: list[Choice] = field(default_factory=list)
    teams: list[Choice] = field(default_factory=list)
    categories: list[Choice] = field(default_factory=list)
    agents: list[Choice] = field(default_factory=list)
    # The queue page's bulk action selects, rendered once (tickets.views.staff_queues).
    bulk_html: dict[str, str] | None = None

    def status_ids(self, *states: str) -> list[int]:
        return [status.pk for status in self.statuses if status.extra in states]

    def full_name(self, choices: list[Choice], pk: int) -> str:
        """The full name ("Parent / Child") of a department or help topic, from the loaded
        rows alone."""
        by_pk = {choice.pk: choice for choice in choices}
        names, node, seen = [], by_pk.get(pk), set()
        while node is not None and node.pk not in seen:
            seen.add(node.pk)
            names.append(node.name)
            node = by_pk.get(node.parent_id) if node.parent_id is not None else None
        return " / ".join(reversed(names))

    def named(self, choices: list[Choice]) -> list[tuple[int, str]]:
        """(pk, full name) pairs in display order."""
        pairs = [(choice.pk, self.full_name(choices, choice.pk)) for choice in choices]
        return sorted(pairs, key=lambda pair: pair[1].casefold())

    def get(self, choices: list[Choice], pk: int) -> Choice | None:
        return next((choice for choice in choices if choice.pk == pk), None)


_LOOKUP_KINDS = ("department", "status", "priority", "help_topic", "team", "category")


def _lookup_rows(
    model: type, kind: str, *, sort: str | None, tree: bool, extra: str | None
) -> QuerySet:
    """One branch of the lookups' UNION: the same seven columns from any small table."""
    return (
        model.objects.order_by()
        .annotate(
            l_kind=Value(kind, output_field=CharField()),
            l_pk=F("pk"),
            l_name=F("name"),
            l_sort=F(sort) if sort else Value(0, output_field=IntegerField()),
            l_parent=F("parent_id") if tree else Value(None, output_field=IntegerField()),
            l_extra=F(extra) if extra else Value("", output_field=CharField()),
            l_active=(
                F("is_active") if hasattr(model, "is_active") else Value(True, BooleanField())
            ),
        )
        .values_list("l_kind", "l_pk", "l_name", "l_sort", "l_parent", "l_extra", "l_active")
    )


def queue_lookups() -> Lookups:
    """Every choice a queue page offers (kept per process until one of those rows changes).
    The caller must not change the lists."""
    return _LOOKUPS.get()


def lookups_token() -> str | None:
    """The version of the lookups (part of the key of what is derived from them)."""
    return _LOOKUPS.token()


def _lookups_load() -> Lookups:
    """In two queries whatever their number: one UNION over the small tables and one for the
    agents."""
    branches = [
        _lookup_rows(Department, "department", sort=None, tree=True, extra=None),
        _lookup_rows(TicketStatus, "status", sort="sort_order", tree=False, extra="state"),
        _lookup_rows(Priority, "priority", sort="urgency", tree=False, extra=None),
        _lookup_rows(HelpTopic, "help_topic", sort="sort_order", tree=True, extra=None),
        _lookup_rows(Team, "team", sort=None, tree=False, extra=None),
        _lookup_rows(Category, "category", sort="sort_order", tree=False, extra=None),
    ]
    rows = branches[0].union(*branches[1:], all=True)
    grouped: dict[str, list[Choice]] = {kind: [] for kind in _LOOKUP_KINDS}
    for kind, pk, name, sort, parent_id, extra, is_active in rows:
        grouped[kind].append(Choice(pk, name, sort or 0, parent_id, extra or "", bool(is_active)))
    for choices in grouped.values():
        choices.sort(key=lambda choice: (choice.sort, choice.name.casefold(), choice.pk))
    agents = [
        Choice(pk, name or email)
        for pk, name, email in User.objects.filter(is_active=True, agent__is_active=True)
        .order_by("name", "email")
        .values_list("pk", "name", "email")
    ]
    return Lookups(
        statuses=grouped["status"],
        priorities=grouped["priority"],
        departments=grouped["department"],
        help_topics=grouped["help_topic"],
        teams=grouped["team"],
        categories=grouped["category"],
        agents=agents,
    )


_LOOKUPS = (
    VersionedMemo("tickets.queue_lookups", _lookups_load)
    .watch(Department, TicketStatus, Priority, HelpTopic, Team, Category, Agent)
    .watch(User, created=False)
)


# --- queues ---------------------------------------------------------------------------------

UNRESOLVED = (StatusState.OPEN,)
RESOLVED = (StatusState.CLOSED, StatusState.ARCHIVED)
NOT_DELETED = (StatusState.OPEN, StatusState.CLOSED, StatusState.ARCHIVED)


@dataclass(frozen=True)
class Queue:
    slug: str
    label: str | Promise
    # The status states the queue holds.
    states: tuple[str, ...]
    # "My tickets": unresolved first, then the newest; the others the oldest first.
    newest_first: bool = False
    department_id: int | None = None
    help_topic_id: int | None = None

    @property
    def mixes_states(self) -> bool:
        """Holds unresolved and resolved tickets, so "unresolved first" matters."""
        return StatusState.OPEN in self.states and len(self.states) > 1


QUEUES: dict[str, Queue] = {
    queue.slug: queue
    for queue in (
        Queue("open", _("Open"), UNRESOLVED),
        Queue("mine", _("My tickets"), NOT_DELETED, newest_first=True),
        Queue("teams", _("My teams"), UNRESOLVED),
        Queue("unassigned", _("Unassigned"), UNRESOLVED),
        Queue("overdue", _("Overdue"), UNRESOLVED),
        Queue("answered", _("Answered"), UNRESOLVED),
        Queue("closed", _("Closed"), RESOLVED),
    )
}
DEFAULT_QUEUE = "open"
_NODE_QUEUE = re.compile(r"^(department|topic)-(\d{1,10})$")


def queue_get(slug: str, lookups: Lookups) -> Queue | None:
    """The queue named by `slug`: a fixed one, `department-<id>` or `topic-<id>`."""
    if slug in QUEUES:
        return QUEUES[slug]
    match = _NODE_QUEUE.match(slug)
    if match is None:
        return None
    kind, pk = match[1], int(match[2])
    if kind == "department":
        if lookups.get(lookups.departments, pk) is None:
            return None
        label = lookups.full_name(lookups.departments, pk)
        return Queue(slug, label, NOT_DELETED, department_id=pk)
    if lookups.get(lookups.help_topics, pk) is None:
        return None
    label = lookups.full_name(lookups.help_topics, pk)
    return Queue(slug, label, NOT_DELETED, help_topic_id=pk)


def _state_filter(states: Iterable[str], lookups: Lookups | None) -> Q:
    # With the statuses loaded, filter on the ticket's own status column: no join, and the
    # (department, status, …) and (assignee, status) indexes apply.
    states = tuple(states)
    if lookups is not None:
        return Q(status_id__in=lookups.status_ids(*states))
    return Q(status__state__in=states)


def queue_tickets(
    queue: Queue, *, user: User, lookups: Lookups | None = None, queryset: QuerySet | None = None
) -> QuerySet[Ticket]:
    """The tickets of `queue` that `user` may see (not yet ordered)."""
    tickets = permissions.visible_tickets(user, queryset).filter(
        _state_filter(queue.states, lookups)
    )
    if queue.slug == "mine":
        tickets = tickets.filter(assignee=user)
    elif queue.slug == "teams":
        scope = permissions.agent_scope(user)
        tickets = tickets.filter(team__in=list(scope.team_ids) if scope else [])
    elif queue.slug == "unassigned":
        tickets = tickets.filter(assignee__isnull=True, team__isnull=True)
    elif queue.slug == "overdue":
        tickets = tickets.filter(is_overdue=True)
    elif queue.slug == "answered":
        tickets = tickets.filter(is_answered=True)
    if queue.department_id is not None:
        tickets = tickets.filter(department_id=queue.department_id)
    if queue.help_topic_id is not None:
        tickets = tickets.filter(help_topic_id=queue.help_topic_id)
    return tickets


# --- sorting --------------------------------------------------------------------------------

# Column → the fields it sorts by. Only these reach `order_by` (never raw user input).
SORTS: dict[str, tuple[str, ...]] = {
    "number": ("number",),
    "subject": ("subject",),
    "customer": ("user__name", "user__email"),
    "department": ("department__name",),
    "priority": ("priority__urgency",),
    "status": ("status__sort_order", "status__name"),
    "assignee": ("assignee__name", "team__name"),
    "updated": ("updated_at",),
    "due": ("due_at",),
    "created": ("created_at",),
}
# Columns that may be empty: their empty rows go last in either direction.
_NULLABLE = {"assignee__name", "team__name", "due_at"}


def sort_parse(value: str | None) -> tuple[str, bool] | None:
    """("due", True) for "-due"; None for anything not in `SORTS`."""
    if not value:
        return None
    descending = value.startswith("-")
    column = value.removeprefix("-")
    return (column, descending) if column in SORTS else None


def _rank(field_name: str, choices: list[Choice]) -> Case:
    """The position of the row's priority or status in `choices` (already in display order),
    computed from the ticket's own column: ordering by it needs no join."""
    whens = [
        When(**{field_name: choice.pk}, then=Value(rank)) for rank, choice in enumerate(choices)
    ]
    return Case(*whens, default=Value(len(choices)), output_field=IntegerField())


def tickets_order(
    tickets: QuerySet[Ticket],
    queue: Queue,
    *,
    sort: str | None = None,
    lookups: Lookups | None = None,
) -> QuerySet[Ticket]:
    """Order by the chosen column, or by the queue's default order. With the lookups loaded,
    priority and status order come from the ticket's own columns (no join)."""
    ranked: dict[str, Any] = {}
    if lookups is not None:
        ranked = {
            "priority__urgency": _rank("priority_id", lookups.priorities),
            "status__sort_order": _rank("status_id", lookups.statuses),
        }
    parsed = sort_parse(sort)
    if parsed is not None:
        column, descending = parsed
        order: list[Any] = []
        for name in SORTS[column]:
            if name == "status__name" and ranked:
                continue  # the rank already follows the statuses' order and names
            expression = ranked.get(name, F(name))
            nulls = {"nulls_last": True} if name in _NULLABLE else {}
            order.append(expression.desc(**nulls) if descending else expression.asc(**nulls))
        order.append("-pk" if descending else "pk")
        return tickets.order_by(*order)
    order = []
    if queue.mixes_states:
        unresolved = (
            Q(status_id__in=lookups.status_ids(StatusState.OPEN))
            if lookups is not None
            else Q(status__state=StatusState.OPEN)
        )
        order.append(
            OrderBy(Case(When(unresolved, then=Value(0)), default=Value(1)), descending=False)
        )
    if queue.newest_first:
        order += ["-created_at", "-pk"]
    else:
        order += [ranked.get("priority__urgency", F("priority__urgency")).asc(), "created_at", "pk"]
    return tickets.order_by(*order)


# --- filters --------------------------------------------------------------------------------

STATE_CHOICES = [
    (StatusState.OPEN.value, _("Any open status")),
    (StatusState.CLOSED.value, _("Any closed status")),
    (StatusState.ARCHIVED.value, _("Any archived status")),
]
ASSIGNEE_ME, ASSIGNEE_NONE = "me", "none"
PAGE_SIZES = (25, 50, 100)
DUE_TODAY = "today"


def _choices(pairs: Iterable[tuple[Any, Any]], empty: str | Promise) -> list[tuple[str, Any]]:
    return [("", empty), *((str(value), label) for value, label in pairs)]


class QueueFilterForm(forms.Form):
    """The queue's GET parameters. Invalid values are reported and left out of the filter."""

    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"type": "search"}),
    )
    status = forms.ChoiceField(label=_("Status"), required=False, widget=FastSelect)
    priority = forms.ChoiceField(label=_("Priority"), required=False, widget=FastSelect)
    department = forms.ChoiceField(label=_("Department"), required=False, widget=FastSelect)
    help_topic = forms.ChoiceField(label=_("Help topic"), required=False, widget=FastSelect)
    assignee = forms.ChoiceField(label=_("Assigned to"), required=False, widget=FastSelect)
    organization = forms.CharField(
        label=_("Organization"),
        required=False,
        max_length=128,
        help_text=_("Name, or part of it."),
    )
    cti_category = forms.ChoiceField(label=_("Category"), required=False, widget=FastSelect)
    due = forms.ChoiceField(
        label=_("Due"),
        required=False,
        choices=_choices([(DUE_TODAY, _("Today"))], _("Any time")),
        widget=FastSelect,
    )
    per_page = forms.TypedChoiceField(
        label=_("Rows per page"),
        required=False,
        coerce=int,
        empty_value=PAGE_SIZES[0],
        choices=[(size, size) for size in PAGE_SIZES],
        widget=FastSelect,
    )
    sort = forms.ChoiceField(required=False, widget=forms.HiddenInput)

    def __init__(self, data: Any, *, lookups: Lookups, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "filter-%s")
        super().__init__(data, **kwargs)
        fields = self.fields
        # No queue lists deleted tickets, so no filter offers their statuses.
        statuses = [(s.pk, s.name) for s in lookups.statuses if s.extra != StatusState.DELETED]
        fields["status"].choices = _choices([*STATE_CHOICES, *statuses], _("Any status"))
        fields["priority"].choices = _choices(
            ((p.pk, p.name) for p in lookups.priorities), _("Any priority")
        )
        fields["department"].choices = _choices(
            lookups.named(lookups.departments), _("Any department")
        )
        fields["help_topic"].choices = _choices(
            lookups.named(lookups.help_topics), _("Any help topic")
        )
        fields["assignee"].choices = _choices(
            [
                (ASSIGNEE_ME, _("Me")),
                (ASSIGNEE_NONE, _("Nobody")),
                *((a.pk, a.name) for a in lookups.agents),
            ],
            _("Anyone"),
        )
        fields["cti_category"].choices = _choices(
            ((c.pk, c.name) for c in lookups.categories), _("Any category")
        )
        fields["sort"].choices = [("", "")] + [
            (f"{sign}{column}", column) for column in SORTS for sign in ("", "-")
        ]

    def filters(self) -> dict[str, str]:
        """The valid, non-empty filters (an invalid one is ignored, its error shown)."""
        if not self.is_bound:
            return {}
        self.is_valid()
        return {name: value for name, value in self.cleaned_data.items() if value}

    @property
    def active_count(self) -> int:
        return len([name for name in self.filters() if name not in ("q", "sort", "per_page")])


def day_bounds(now: datetime | None = None) -> tuple[datetime, datetime]:
    """Start and end of today in the current time zone (the user's when one is activated)."""
    now = timezone.localtime(now or timezone.now())
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    # Through local midnight, whatever the day's length (daylight saving time).
    end = timezone.make_aware(datetime.combine(start.date() + timedelta(days=1), start.time()))
    return start, end


def tickets_filter(
    tickets: QuerySet[Ticket],
    filters: dict[str, str],
    *,
    user: User,
    lookups: Lookups | None = None,
) -> QuerySet[Ticket]:
    """Apply validated filters (see `QueueFilterForm.filters`); the search runs last."""
    from .search import tickets_search

    status = filters.get("status")
    if status:
        if status.isdigit():
            tickets = tickets.filter(status_id=int(status))
        else:
            tickets = tickets.filter(_state_filter([status], lookups))
    for name in ("priority", "department", "help_topic", "cti_category"):
        if filters.get(name):
            tickets = tickets.filter(**{f"{name}_id": int(filters[name])})
    assignee = filters.get("assignee")
    if assignee == ASSIGNEE_ME:
        tickets = tickets.filter(assignee=user)
    elif assignee == ASSIGNEE_NONE:
        tickets = tickets.filter(assignee__isnull=True, team__isnull=True)
    elif assignee:
        tickets = tickets.filter(assignee_id=int(assignee))
    organization = filters.get("organization", "").strip()
    if organization:
        match = Q(organization__name__icontains=organization)
        if organization.isdigit():
            match |= Q(organization_id=int(organization))
        tickets = tickets.filter(match)
    if filters.get("due") == DUE_TODAY:
        start, end = day_bounds()
        tickets = tickets.filter(due_at__gte=start, due_at__lt=end)
    if filters.get("q"):
        tickets = tickets_search(tickets, filters["q"])
    return tickets


def queue_list(
    queue: Queue,
    *,
    user: User,
    filters: dict[str, str] | None = None,
    lookups: Lookups | None = None,
) -> QuerySet[Ticket]:
    """A queue's rows, filtered and ordered, with what a row shows joined in and the large
    search document left out."""
    filters = filters or {}
    tickets = queue_tickets(queue, user=user, lookups=lookups)
    tickets = tickets_filter(tickets, filters, user=user, lookups=lookups)
    tickets = tickets_order(tickets, queue, sort=filters.get("sort"), lookups=lookups)
    return tickets.select_related(*ROW_RELATIONS).defer("search_document")


ROW_RELATIONS = ("user", "department", "status", "priority", "assignee", "team")
# What `tickets_rows` joins; the rest of ROW_RELATIONS comes from tickets.related.
ROW_PEOPLE = ("user", "assignee")
# The columns a row shows (templates tickets/staff/queue_row.jinja, sla/macros.jinja).
ROW_FIELDS = (
    "number",
    "subject",
    "is_answered",
    "is_overdue",
    "created_at",
    "updated_at",
    "due_at",
    "closed_at",
    "due_override_at",
    "sla_paused_at",
    "status_id",
    "priority_id",
    "department_id",
    "team_id",
    "user__name",
    "user__email",
    "assignee__name",
    "assignee__email",
)


def tickets_rows(ids: Iterable[int], *, user: User, attach: bool = True) -> list[Ticket]:
    """The tickets with these ids, in this order, with what a row shows joined in.

    Pages are fetched in two steps: the page's ids from `queue_list(...).values_list("pk")`
    (ticket columns only, so the database sorts narrow rows and stops at the page), then
    these rows. In one step PostgreSQL joins every matching ticket to its customer before
    sorting, which costs ten times more on a large queue. The ids may come from the query
    cache: the rows are filtered by what `user` may see again all the same."""
    ids = list(ids)
    rows = (
        permissions.visible_tickets(user)
        .filter(pk__in=ids)
        .select_related(*ROW_PEOPLE)
        .only(*ROW_FIELDS)
    )
    by_pk = {ticket.pk: ticket for ticket in rows}
    tickets = [by_pk[pk] for pk in ids if pk in by_pk]
    if attach:
        rows_attach(tickets)
    return tickets


def rows_attach(tickets: list[Ticket]) -> None:
    """Join the kept department, status, priority and team rows to queue rows."""
    related_attach(tickets, ("department", "status", "priority", "team"))


# --- the dashboard --------------------------------------------------------------------------


@dataclass
class DepartmentCounts:
    pk: int
    name: str
    open: int = 0
    unassigned: int = 0
    overdue: int = 0
    due_today: int = 0

    @property
    def queue_slug(self) -> str:
        return f"department-{self.pk}"


@dataclass
class DashboardCounts:
    mine: int = 0
    unassigned: int = 0
    overdue: int = 0
    due_today: int = 0
    open: int = 0
    departments: list[DepartmentCounts] = field(default_factory=list)


def dashboard_counts(*, user: User) -> DashboardCounts:
    """The agent's unresolved tickets counted per department in one grouped query (the totals
    are its sums), and the departments' names in a second: the departments the agent works
    in, with zeros, plus any other department their visible tickets are in."""
    start, end = day_bounds()
    unassigned = Q(assignee__isnull=True, team__isnull=True)
    rows = (
        permissions.visible_tickets(user)
        .filter(status__in=TicketStatus.objects.filter(state=StatusState.OPEN))
        .order_by()
        .values("department_id")
        .annotate(
            open=Count("pk"),
            mine=Count("pk", filter=Q(assignee=user)),
            unassigned=Count("pk", filter=unassigned),
            overdue=Count("pk", filter=Q(is_overdue=True)),
            due_today=Count("pk", filter=Q(due_at__gte=start, due_at__lt=end)),
        )
    )
    counts = DashboardCounts()
    by_department: dict[int, dict[str, int]] = {}
    for row in querycache.cached(rows, "dashboard counts", lambda: list(rows)):
        by_department[row["department_id"]] = row
        for name in ("open", "mine", "unassigned", "overdue", "due_today"):
            setattr(counts, name, getattr(counts, name) + row[name])
    scope = permissions.agent_scope(user)
    if scope is None:  # a superuser sees every department
        departments = Department.objects.filter(Q(is_active=True) | Q(pk__in=list(by_department)))
    else:
        departments = Department.objects.filter(pk__in={*scope.roles_by_department, *by_department})
    for pk, name in departments.order_by("name", "pk").values_list("pk", "name"):
        row = by_department.get(pk, {})
        counts.departments.append(
            DepartmentCounts(
                pk,
                name,
                **{key: row.get(key, 0) for key in ("open", "unassigned", "overdue", "due_today")},
            )
        )
    return counts


ACTIVITY_DAYS = 30
ACTIVITY_LIMIT = 15
# The agent's most recently updated tickets the activity list looks into.
ACTIVITY_TICKETS = 200


def activity_for(*, user: User) -> list[ThreadEvent]:
    """The latest things others (customers, agents, the system) did on tickets assigned to
    `user`: the last `ACTIVITY_LIMIT` events of the past `ACTIVITY_DAYS` days.

    Two short queries rather than one join: first the agent's `ACTIVITY_TICKETS` most
    recently updated tickets (every change through the services touches `updated_at`), then
    their recent events, which the database finds ticket by ticket through the thread's
    (thread, created_at) index. In one query PostgreSQL walks every event of the period
    backwards looking for the agent's, which takes seconds for an agent with few tickets in
    a large help desk. Tickets assigned to an agent are always visible to them
    (`permissions.visible_tickets` reaches `assignee=user` for every agent), so the first
    query needs no visibility filter."""
    # From the start of a minute, so the same query (and its cached result) serves a minute.
    since = timezone.now().replace(second=0, microsecond=0) - timedelta(days=ACTIVITY_DAYS)
    recent = (
        Ticket.objects.filter(assignee=user, updated_at__gte=since)
        .order_by("-updated_at")
        .values_list("pk", flat=True)[:ACTIVITY_TICKETS]
    )
    tickets = querycache.cached(recent, "activity tickets", lambda: list(recent))
    if not tickets:
        return []
    events = (
        ThreadEvent.objects.filter(thread__ticket__in=tickets, created_at__gte=since)
        .exclude(actor=user)
        .select_related("thread__ticket")
        .only(
            "thread__ticket",
            "action",
            "actor_name",
            "created_at",
            "thread__ticket__number",
            "thread__ticket__subject",
        )
        .order_by("-created_at", "-pk")[:ACTIVITY_LIMIT]
    )
    return querycache.cached(events, "activity", lambda: list(events))
