"""Reads of tickets, always through `accounts.permissions`."""

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import Case, Exists, F, OuterRef, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce, Concat
from django.http import Http404

from accounts import permissions
from accounts.models import Agent, AgentDepartmentAccess, User
from helpdesk.lib import querycache
from helpdesk.lib.memo import VersionedMap
from routing.models import Category, CtiItem, CtiType, Department, HelpTopic, Team
from sla.models import SLAPlan

from .models import (
    Attachment,
    Collaborator,
    EntryKind,
    Priority,
    ThreadEntry,
    ThreadEvent,
    Ticket,
    TicketStatus,
)
from .related import related_attach


def ticket_list_for_user(*, user: User) -> QuerySet[Ticket]:
    """Tickets the user may see, with what a list row shows joined in."""
    return permissions.visible_tickets(user).select_related(
        "user", "department", "status", "priority", "assignee", "team", "help_topic"
    )


def ticket_get_for_user(*, user: User, number: str) -> Ticket:
    """The ticket with this number, or 404 when it does not exist or the user may not see it
    (the two look the same, so numbers cannot be probed)."""
    ticket = ticket_list_for_user(user=user).filter(number=number).first()
    if ticket is None:
        raise Http404("No such ticket.")
    return ticket


def ticket_entries_for_user(*, ticket: Ticket, user: User) -> QuerySet[ThreadEntry]:
    """The thread as the user may read it: customers never get internal notes."""
    entries = (
        ThreadEntry.objects.filter(thread__ticket=ticket)
        .select_related("author")
        .prefetch_related("attachments")
        .order_by("created_at", "pk")
    )
    if not permissions.is_agent(user):
        entries = entries.exclude(kind=EntryKind.NOTE)
    return entries


def ticket_events(*, ticket: Ticket) -> QuerySet[ThreadEvent]:
    """The audit trail, oldest first."""
    return (
        ThreadEvent.objects.filter(thread__ticket=ticket)
        .select_related("actor")
        .order_by("created_at", "pk")
    )


def ticket_get_by_id_for_user(*, user: User, ticket_id: int) -> Ticket:
    """The ticket with this id, or 404 when it does not exist or the user may not see it."""
    ticket = ticket_list_for_user(user=user).filter(pk=ticket_id).first()
    if ticket is None:
        raise Http404("No such ticket.")
    return ticket


def attachment_get_for_user(*, user: User, attachment_id: int) -> Attachment:
    """An attachment the user may download: its ticket is visible to them, and customers
    never get the files of internal notes. 404 otherwise, so ids cannot be probed."""
    attachment = (
        Attachment.objects.select_related("entry__thread")
        .filter(pk=attachment_id, entry__thread__ticket__in=permissions.visible_tickets(user))
        .first()
    )
    if attachment is None or (
        attachment.entry.kind == EntryKind.NOTE and not permissions.is_agent(user)
    ):
        raise Http404("No such attachment.")
    return attachment


# --- the staff ticket page ------------------------------------------------------------------
# The page runs a fixed number of queries whatever the length of the thread: the ticket with
# everything its header shows, the entries, their attachments, the customer's other tickets,
# the people on the ticket, and the options of the action forms.


def ticket_get_for_page(*, user: User, number: str, cached: bool = False) -> Ticket:
    """The ticket with everything the staff ticket page's header and customer card show: one
    query joined to the people and the thread, the admin-defined rows from tickets.related,
    and its CTI item (one more query) when it has one; 404 when the user may not see it.
    With `cached` (the page, not the actions), the row comes from the query cache until
    ticket data or the user's scope change."""

    def load() -> Ticket | None:
        return (
            permissions.visible_tickets(user)
            .select_related("user", "organization", "assignee", "thread")
            .defer("search_document")
            .filter(number=number)
            .first()
        )

    ticket = _ticket_kept(user, str(number), load) if cached else load()
    if ticket is None:
        raise Http404("No such ticket.")
    related_attach([ticket])
    if ticket.cti_item_id is not None:
        ticket.cti_item = CtiItem.objects.select_related("type__category").get(
            pk=ticket.cti_item_id
        )
    return ticket


# Ticket numbers never change: the pk of each number seen, per process.
_PKS_BY_NUMBER: dict[str, int] = {}


def _ticket_kept(user: User, number: str, load: Callable[[], Ticket | None]) -> Ticket | None:
    """The ticket row kept for this user until it changes (the query cache's ticket scope)."""
    key = (number, permissions.visibility_key(user))
    pk = _PKS_BY_NUMBER.get(number)
    if pk is not None:
        ticket = querycache.remember_scoped("ticket for page", key, load, [f"ticket:{pk}"])
        if ticket is None or ticket.pk == pk:
            return ticket
    # First seen here, or the number now names another ticket (a test database's).
    ticket = load()
    if ticket is None:
        return None
    if len(_PKS_BY_NUMBER) > 100_000:
        _PKS_BY_NUMBER.clear()
    _PKS_BY_NUMBER[number] = ticket.pk
    return querycache.remember_scoped(
        "ticket for page", key, lambda: ticket, [f"ticket:{ticket.pk}"]
    )


def ticket_thread_for_page(*, ticket: Ticket, user: User, bodies: bool = True) -> list[ThreadEntry]:
    """The thread as `user` may read it, oldest first, with attachments (two queries).
    Without `bodies`, the entries' texts are left out (`entry_bodies_load` reads them)."""
    deferred = ("headers", "references") if bodies else ("headers", "references", *BODY_FIELDS)
    return list(ticket_entries_for_user(ticket=ticket, user=user).defer(*deferred))


BODY_FIELDS = ("body", "body_html")


def entry_bodies_load(entries: list[ThreadEntry]) -> None:
    """Read the texts of entries fetched without them, in one query."""
    if not entries:
        return
    rows = ThreadEntry.objects.filter(pk__in=[entry.pk for entry in entries]).values_list(
        "pk", *BODY_FIELDS
    )
    bodies = {pk: values for pk, *values in rows}
    for entry in entries:
        for name, value in zip(BODY_FIELDS, bodies.get(entry.pk, ("", "")), strict=True):
            setattr(entry, name, value)


def ticket_list_other_for_customer(*, ticket: Ticket, user: User, limit: int = 5) -> list[Ticket]:
    """The latest tickets of the same customer that `user` may see, besides this one (kept in
    the query cache until ticket data changes)."""
    others = (
        permissions.visible_tickets(user)
        .filter(user_id=ticket.user_id)
        .exclude(pk=ticket.pk)
        .select_related("status")
        .only("number", "subject", "created_at", "status__name", "status__state")
        .order_by("-created_at", "-pk")[:limit]
    )
    key = (ticket.pk, ticket.user_id, limit, permissions.visibility_key(user))
    return querycache.remember_scoped(
        "other tickets", key, lambda: list(others), [f"customer:{ticket.user_id}"]
    )


@dataclass(frozen=True)
class TicketPerson:
    user_id: int
    name: str
    email: str


def ticket_people(*, ticket: Ticket) -> tuple[list[str], list[TicketPerson]]:
    """The customer's addresses (primary first) and the collaborators, in one query (kept in
    the query cache until they change)."""
    from accounts.models import UserEmail

    addresses = (
        UserEmail.objects.filter(user_id=ticket.user_id)
        .annotate(
            p_kind=Value("email"),
            p_user=F("user_id"),
            p_name=Value(""),
            p_email=F("email"),
            p_order=Case(When(is_primary=True, then=Value(0)), default=Value(1)),
        )
        .values_list("p_kind", "p_user", "p_name", "p_email", "p_order")
    )
    collaborators = (
        Collaborator.objects.filter(ticket_id=ticket.pk)
        .annotate(
            p_kind=Value("collaborator"),
            p_user=F("user_id"),
            p_name=F("user__name"),
            p_email=F("user__email"),
            p_order=Value(2),
        )
        .values_list("p_kind", "p_user", "p_name", "p_email", "p_order")
    )
    emails: list[tuple[int, str]] = []
    people: list[TicketPerson] = []
    rows = addresses.union(collaborators, all=True)
    key = (ticket.pk, ticket.user_id)
    kept = querycache.remember_scoped("people", key, lambda: list(rows), [f"ticket:{ticket.pk}"])
    for kind, user_id, name, email, order in kept:
        if kind == "email":
            emails.append((order, email))
        else:
            people.append(TicketPerson(user_id=user_id, name=name or "", email=email))
    ordered = [email for _order, email in sorted(emails)]
    if ticket.user.email not in ordered:
        ordered.insert(0, ticket.user.email)
    people.sort(key=lambda person: (person.name or person.email).casefold())
    return ordered, people


@dataclass
class TicketActionOptions:
    """The choices of the ticket page's action forms, each a list of (pk, label)."""

    statuses: list[tuple[int, str]] = field(default_factory=list)
    status_states: dict[int, str] = field(default_factory=dict)
    priorities: list[tuple[int, str]] = field(default_factory=list)
    departments: list[tuple[int, str]] = field(default_factory=list)
    help_topics: list[tuple[int, str]] = field(default_factory=list)
    teams: list[tuple[int, str]] = field(default_factory=list)
    cti_items: list[tuple[int, str]] = field(default_factory=list)
    agents: list[tuple[int, str]] = field(default_factory=list)
    sla_plans: list[tuple[int, str]] = field(default_factory=list)
    signature: str = ""


def _tree_names(rows: list[tuple[int, str, int, int]]) -> list[tuple[int, str]]:
    """(pk, "Parent / Child") for rows of (pk, name, parent pk or 0, order), parents first."""
    by_pk = {pk: (name, parent) for pk, name, parent, _order in rows}

    def full(pk: int) -> str:
        names, seen = [], set()
        while pk in by_pk and pk not in seen:
            seen.add(pk)
            name, pk = by_pk[pk]
            names.append(name)
        return " / ".join(reversed(names))

    labelled = [(order, full(pk), pk) for pk, _name, _parent, order in rows]
    return [(pk, label) for _order, label, pk in sorted(labelled, key=lambda r: (r[0], r[1]))]


def action_options_token() -> str | None:
    """The version of the kept action options (part of the key of what is rendered from
    them)."""
    return _OPTIONS.token()


def ticket_action_options(*, ticket: Ticket, user: User) -> TicketActionOptions:
    """Everything the action forms offer: statuses, priorities, active departments, help
    topics, teams and CTI items, the agents the ticket's department accepts as assignees (see
    `routing.assignment`), and the signature of `user`. Kept per process for each department
    and agent until one of those tables changes; the caller gets its own copy."""
    department = ticket.department
    key = (
        department.pk,
        department.assign_primary_only,
        department.assign_members_only,
        user.pk,
    )
    options = _OPTIONS.get(key, lambda: _action_options_load(ticket=ticket, user=user))
    return copy.copy(options)


def _action_options_load(*, ticket: Ticket, user: User) -> TicketActionOptions:
    """In one query: a UNION of the small admin-defined tables and the agents."""
    columns = ("o_kind", "o_pk", "o_name", "o_parent", "o_extra", "o_order")

    def rows(queryset: QuerySet, kind: str, **exprs: object) -> QuerySet:
        values = {
            "o_kind": Value(kind),
            "o_pk": F("pk"),
            "o_name": F("name"),
            "o_parent": Value(0),
            "o_extra": Value(""),
            "o_order": Value(0),
        }
        values.update({f"o_{key}": value for key, value in exprs.items()})
        return queryset.order_by().annotate(**values).values_list(*columns)

    department = ticket.department
    agents = Agent.objects.filter(is_active=True, user__is_active=True)
    if department.assign_primary_only:
        agents = agents.filter(department_id=department.pk)
    elif department.assign_members_only:
        extended = AgentDepartmentAccess.objects.filter(
            agent=OuterRef("pk"), department_id=department.pk
        )
        agents = agents.filter(Q(department_id=department.pk) | Exists(extended))
    parts = [
        rows(TicketStatus.objects.all(), "status", extra=F("state"), order=F("sort_order")),
        rows(Priority.objects.all(), "priority", order=F("urgency")),
        rows(
            Department.objects.filter(is_active=True),
            "department",
            parent=Coalesce(F("parent_id"), Value(0)),
        ),
        rows(
            HelpTopic.objects.filter(is_active=True),
            "topic",
            parent=Coalesce(F("parent_id"), Value(0)),
            order=F("sort_order"),
        ),
        rows(Team.objects.filter(is_active=True), "team"),
        rows(
            CtiItem.objects.filter(
                is_active=True, type__is_active=True, type__category__is_active=True
            ),
            "cti",
            extra=Concat(F("type__category__name"), Value(" / "), F("type__name")),
        ),
        rows(agents, "agent", pk=F("user_id"), name=F("user__name"), extra=F("user__email")),
        rows(SLAPlan.objects.filter(is_active=True), "sla"),
        rows(
            Agent.objects.filter(user_id=user.pk),
            "signature",
            pk=F("user_id"),
            name=Value(""),
            extra=F("signature"),
        ),
    ]
    options = TicketActionOptions()
    departments: list[tuple[int, str, int, int]] = []
    topics: list[tuple[int, str, int, int]] = []
    statuses, priorities, teams, items, agent_rows, plans = [], [], [], [], [], []
    for kind, pk, name, parent, extra, order in parts[0].union(*parts[1:], all=True):
        if kind == "status":
            statuses.append((order, name, pk))
            options.status_states[pk] = extra
        elif kind == "priority":
            priorities.append((order, name, pk))
        elif kind == "department":
            departments.append((pk, name, parent or 0, 0))
        elif kind == "topic":
            topics.append((pk, name, parent or 0, order))
        elif kind == "team":
            teams.append((name.casefold(), pk, name))
        elif kind == "cti":
            label = f"{extra} / {name}"
            items.append((label.casefold(), pk, label))
        elif kind == "agent":
            label = name or extra
            agent_rows.append((label.casefold(), pk, label))
        elif kind == "sla":
            plans.append((name.casefold(), pk, name))
        elif kind == "signature":
            options.signature = (extra or "").strip()
    options.statuses = [(pk, name) for _order, name, pk in sorted(statuses)]
    options.priorities = [(pk, name) for _order, name, pk in sorted(priorities)]
    options.departments = _tree_names(departments)
    options.help_topics = _tree_names(topics)
    options.teams = [(pk, label) for _key, pk, label in sorted(teams)]
    options.cti_items = [(pk, label) for _key, pk, label in sorted(items)]
    options.agents = [(pk, label) for _key, pk, label in sorted(agent_rows)]
    options.sla_plans = [(pk, label) for _key, pk, label in sorted(plans)]
    return options


_OPTIONS: VersionedMap[tuple, TicketActionOptions] = (
    VersionedMap("tickets.action_options")
    .watch(
        TicketStatus,
        Priority,
        Department,
        HelpTopic,
        Team,
        Category,
        CtiType,
        CtiItem,
        Agent,
        AgentDepartmentAccess,
        SLAPlan,
    )
    .watch(User, created=False)
)
