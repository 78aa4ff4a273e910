"""The only place that decides who may see and do what.

Agents get their rights from roles: the role of their primary department, or the role of an
extended department access, applies to tickets of that department; tickets an agent reaches
only through an assignment (to them or one of their teams) or a referral use the primary
role. Superusers hold every permission. Customers see their own tickets, the tickets they are
copied on, and their organization's tickets when it shares them.

Views, API views, the mail gateway and tasks ask `can()` or filter with `visible_tickets()`;
none of them compares roles or departments on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from helpdesk.lib.memo import VersionedMap

if TYPE_CHECKING:
    from accounts.models import Role, User
    from tickets.models import Ticket

PERMISSIONS: dict[str, Any] = {
    # Tickets, granted per department by the role that applies there.
    "ticket.create": _("Open tickets on behalf of customers"),
    "ticket.edit": _("Edit tickets (subject, priority, help topic, collaborators)"),
    "ticket.assign": _("Assign tickets to agents and teams"),
    "ticket.release": _("Release other agents' assignments"),
    "ticket.transfer": _("Transfer tickets to another department"),
    "ticket.refer": _("Refer tickets to agents, teams and departments"),
    "ticket.reply": _("Reply to customers"),
    "ticket.close": _("Close, resolve and archive tickets"),
    "ticket.delete": _("Delete tickets"),
    "ticket.merge": _("Merge tickets"),
    "ticket.link": _("Link tickets"),
    "ticket.markanswered": _("Mark tickets answered"),
    "ticket.due_override": _("Set a ticket's due date by hand, overriding its SLA"),
    "task.create": _("Create tasks"),
    "task.edit": _("Edit tasks"),
    "task.assign": _("Assign tasks"),
    "task.transfer": _("Transfer tasks"),
    "task.reply": _("Post to tasks"),
    "task.close": _("Close tasks"),
    "task.delete": _("Delete tasks"),
    "canned.manage": _("Manage canned responses"),
    "thread.edit": _("Edit and hide thread entries"),
    # People, knowledge base and administration, granted by the primary role.
    "user.create": _("Create customers"),
    "user.edit": _("Edit customers"),
    "user.delete": _("Delete customers"),
    "user.manage": _("Manage customer accounts (passwords, access)"),
    "user.dir": _("See the customer directory"),
    "org.create": _("Create organizations"),
    "org.edit": _("Edit organizations"),
    "org.delete": _("Delete organizations"),
    "kb.manage": _("Write and publish knowledge base articles"),
    "emails.banlist": _("Manage the ban list"),
    "visibility.agents": _("See every agent in the directory"),
    "visibility.departments": _("See every department"),
    "stats.agents": _("See agent statistics"),
    "search.all": _("Search all tickets, not only the departments they work in"),
    "admin.settings": _("Administer help desk settings"),
    "admin.staff": _("Administer agents, roles and teams"),
    "admin.routing": _("Administer departments, help topics, CTI and filters"),
    "admin.sla": _("Administer SLA plans and schedules"),
    "admin.email": _("Administer mailboxes and email templates"),
    "admin.api": _("Administer API keys and webhooks"),
}

# What a customer may do on a ticket they can see (their own, copied on, or shared).
CUSTOMER_TICKET_PERMISSIONS = frozenset({"ticket.view", "ticket.message"})


@dataclass(frozen=True)
class AgentScope:
    """Where an agent works: three queries, then kept per process (`SCOPES`)."""

    primary_department_id: int
    primary_role: Role
    roles_by_department: dict[int, Role]
    team_ids: frozenset[int] = field(default_factory=frozenset)
    assigned_only: bool = False

    def role_for(self, department_id: int) -> Role:
        return self.roles_by_department.get(department_id, self.primary_role)


# Every staff request needs its agent's scope: kept per process by user id until an agent,
# an access, a role or a team changes (the watches are set in AccountsConfig.ready).
SCOPES: VersionedMap[int, AgentScope | None] = VersionedMap("accounts.agent_scopes")


def agent_scope(user: User) -> AgentScope | None:
    """The agent profile of an active agent, or None for customers and inactive agents."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    if hasattr(user, "_agent_scope"):
        return user._agent_scope  # type: ignore[attr-defined]
    scope = SCOPES.get(user.pk, lambda: _scope_load(user))
    user._agent_scope = scope  # type: ignore[attr-defined]
    return scope


def _scope_load(user: User) -> AgentScope | None:
    from accounts.models import Agent, AgentDepartmentAccess
    from routing.models import Team

    # Three plain queries: prefetch_related's generic machinery cost more than they do.
    agent = Agent.objects.filter(user=user, is_active=True).select_related("role").first()
    if agent is None:
        return None
    accesses = AgentDepartmentAccess.objects.filter(agent=agent).select_related("role")
    roles = {access.department_id: access.role for access in accesses}
    roles[agent.department_id] = agent.role
    teams = Team.objects.filter(members=agent, is_active=True).values_list("pk", flat=True)
    return AgentScope(
        primary_department_id=agent.department_id,
        primary_role=agent.role,
        roles_by_department=roles,
        team_ids=frozenset(teams),
        assigned_only=agent.assigned_only,
    )


def visibility_key(user: User) -> tuple[object, ...]:
    """Everything `visible_tickets(user)` depends on besides the ticket data (which
    `helpdesk.lib.querycache` watches): a part of the key of results cached per user."""
    return (
        getattr(user, "pk", None),
        bool(getattr(user, "is_authenticated", False) and user.is_active),
        bool(getattr(user, "is_superuser", False)),
        getattr(user, "organization_id", None),
        SCOPES.token(),
    )


def scope_none_known(user: User) -> None:
    """`user` was just made and is nobody's agent: remember that without a query, on the
    instance and per process (making anyone an agent renews the kept scopes)."""
    SCOPES.get(user.pk, lambda: None)
    user._agent_scope = None  # type: ignore[attr-defined]


def forget_scope(user: User) -> None:
    """Drop the cached scope after the user's agent profile, access or teams changed."""
    user.__dict__.pop("_agent_scope", None)


def is_superuser(user: User) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active and user.is_superuser)


def is_agent(user: User) -> bool:
    """May use the staff UI: an active agent, or a superuser."""
    return is_superuser(user) or agent_scope(user) is not None


def visible_tickets(user: User, queryset: QuerySet[Ticket] | None = None) -> QuerySet[Ticket]:
    """The tickets `user` may see: the one rule every list, search and fetch starts from."""
    from tickets.models import Referral, StatusState, Ticket

    tickets = Ticket.objects.all() if queryset is None else queryset
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return tickets.none()
    if is_superuser(user):
        return tickets
    scope = agent_scope(user)
    if scope is not None:
        reach = Q(assignee=user) | Q(team__in=scope.team_ids)
        if not scope.assigned_only:
            reach |= Q(department__in=list(scope.roles_by_department))
        referred = Referral.objects.filter(ticket=OuterRef("pk")).filter(
            Q(agent=user)
            | Q(team__in=scope.team_ids)
            | Q(department__in=list(scope.roles_by_department))
        )
        return tickets.filter(reach | Exists(referred))
    # Customers never see deleted tickets. The tickets they collaborate on and whether their
    # organization shares are read first (one small query), so that the condition is plain
    # column tests an index answers each, not a subquery per ticket row.
    shares, collaborating = _customer_reach(user)
    reach = Q(user=user)
    if collaborating:
        reach |= Q(pk__in=collaborating)
    if shares:
        reach |= Q(organization_id=user.organization_id)
    return tickets.filter(reach).exclude(status__state=StatusState.DELETED)


def _customer_reach(user: User) -> tuple[bool, list[int]]:
    """Whether the customer's organization shares its tickets, and the ids of the tickets
    they are a collaborator on; read now, never cached (collaborators change)."""
    from django.db.models import IntegerField, Value

    from accounts.models import Organization
    from tickets.models import Collaborator

    kind = Value(0, output_field=IntegerField())
    collaborating = Collaborator.objects.filter(user=user).order_by().annotate(kind=kind)
    rows = collaborating.values_list("kind", "ticket_id")
    if user.organization_id is not None:
        organization = Organization.objects.filter(
            pk=user.organization_id, share_tickets=True
        ).order_by()
        shared = organization.annotate(kind=Value(1, output_field=IntegerField()))
        rows = rows.union(shared.values_list("kind", "pk"), all=True)
    shares, ticket_ids = False, []
    for row_kind, pk in rows:
        if row_kind == 1:
            shares = True
        else:
            ticket_ids.append(pk)
    return shares, ticket_ids


def can_view_ticket(user: User, ticket: Ticket) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if is_superuser(user):
        return True
    scope = agent_scope(user)
    if scope is not None:
        if ticket.assignee_id == user.pk or ticket.team_id in scope.team_ids:
            return True
        if not scope.assigned_only and ticket.department_id in scope.roles_by_department:
            return True
        return ticket.referrals.filter(
            Q(agent=user)
            | Q(team__in=scope.team_ids)
            | Q(department__in=list(scope.roles_by_department))
        ).exists()
    if ticket.user_id == user.pk:  # as visible_tickets says, without a query
        from tickets.models import StatusState
        from tickets.related import related_attach

        related_attach([ticket], ("status",))
        return ticket.status.state != StatusState.DELETED
    return visible_tickets(user).filter(pk=ticket.pk).exists()


def can(user: User, permission: str, obj: object = None) -> bool:
    """May `user` do `permission` (on `obj`: a ticket, a department, or nothing)?"""
    from routing.models import Department
    from tickets.models import Ticket

    if permission not in PERMISSIONS and permission not in CUSTOMER_TICKET_PERMISSIONS:
        raise ValueError(f"Unknown permission {permission!r}")
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if is_superuser(user):
        return True
    scope = agent_scope(user)

    if isinstance(obj, Ticket):
        if not can_view_ticket(user, obj):
            return False
        if scope is None:
            return _customer_can(user, permission, obj)
        if permission == "ticket.view":
            return True
        if permission == "ticket.message":
            return False  # agents respond; customer messages come from customers
        return scope.role_for(obj.department_id).has(permission)

    if scope is None:
        return False
    if isinstance(obj, Department):
        role = scope.roles_by_department.get(obj.pk)
        return role is not None and role.has(permission)
    if obj is None:
        return scope.primary_role.has(permission)
    raise TypeError(f"No permission rule for {type(obj).__name__}")


def users_with(permission: str) -> list[User]:
    """The active superusers and agents whose role grants `permission` (in any
    department): who to tell about something only they can mend, e.g. a disabled mailbox."""
    from accounts.models import User

    candidates = (
        User.objects.filter(Q(is_superuser=True) | Q(agent__is_active=True), is_active=True)
        .exclude(email="")
        .distinct()
        .order_by("pk")
    )
    from accounts.services import agent_scopes_preload

    users = list(candidates)
    agent_scopes_preload(users)
    return [user for user in users if can(user, permission)]


def _customer_can(user: User, permission: str, ticket: Ticket) -> bool:
    if permission in CUSTOMER_TICKET_PERMISSIONS:
        return True
    if permission == "ticket.close":
        from helpdesk.config import config

        return ticket.user_id == user.pk and config().customers_can_close
    return False


def can_be_assigned(agent_user: User, department_id: int) -> bool:
    """May tickets of this department be assigned to this user? Active agents with access."""
    if is_superuser(agent_user):
        return True
    scope = agent_scope(agent_user)
    return scope is not None and department_id in scope.roles_by_department
