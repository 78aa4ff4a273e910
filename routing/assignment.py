"""Who may be assigned a department's tickets, and automatic assignment.

Manual assignment (`agent_assignable`) follows the department's flags:
- primary members only: the agent's primary department must be this one;
- members only (the default): primary or extended access to the department;
- neither: any active agent (they reach the ticket through the assignment, with their
  primary role).

Automatic assignment (`auto_assignee`) picks only among members (primary ones when the
department says so) who are active, whose user is active, and who are not on vacation.

Concurrency: both strategies lock the department row (`select_for_update`) inside the
ticket's transaction, before the ticket is inserted, and keep it until that transaction
ends. Two tickets opened at once in
the same department are therefore assigned one after the other: round-robin reads and moves
its cursor (`Department.auto_assign_last`) under the lock, and least-open counts tickets that
the previous transaction has committed (PostgreSQL and MariaDB run READ COMMITTED here;
SQLite serialises writers with IMMEDIATE transactions). Least-open across several
departments is not serialised: an agent in two departments may get a ticket from each at
the same moment, which only makes the balance approximate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext as _

from accounts import permissions

from .models import AutoAssign, Department

if TYPE_CHECKING:
    from accounts.models import Agent, User
    from tickets.models import Ticket


def assignment_refusal(user: User, department: Department) -> str | None:
    """Why `user` may not be assigned tickets of `department`, or None when they may."""
    name = {"agent": user.get_full_name(), "department": department.name}
    if not permissions.is_agent(user):
        return _("%(agent)s is not an active agent.") % name
    if department.assign_primary_only:
        scope = permissions.agent_scope(user)
        if scope is None or scope.primary_department_id != department.pk:
            return _("Only agents of %(department)s itself may be assigned its tickets.") % name
        return None
    if department.assign_members_only and not permissions.can_be_assigned(user, department.pk):
        return _("%(agent)s cannot work on tickets of %(department)s.") % name
    return None


def agent_assignable(user: User, department: Department) -> bool:
    return assignment_refusal(user, department) is None


def agent_available(user: User, department: Department) -> bool:
    """Assignable and at work: active agent profile, not on vacation."""
    if not agent_assignable(user, department):
        return False
    agent = getattr(user, "agent", None) if user.pk else None
    return agent is None or (agent.is_active and not agent.on_vacation)


def eligible_agents(department: Department) -> QuerySet[Agent]:
    """Agents automatic assignment may pick in `department`."""
    from accounts.models import Agent, AgentDepartmentAccess

    agents = Agent.objects.filter(is_active=True, on_vacation=False, user__is_active=True)
    if department.assign_primary_only:
        return agents.filter(department=department)
    extended = AgentDepartmentAccess.objects.filter(agent=OuterRef("pk"), department=department)
    return agents.filter(Q(department=department) | Exists(extended))


def auto_assignee(department: Department) -> tuple[User | None, str]:
    """The agent the department's strategy picks for a new ticket, and why (for the event).

    Call inside the ticket's transaction and before inserting the ticket: the department
    row stays locked until the transaction ends, and on MariaDB the insert's foreign-key
    check share-locks that row, so locking it after the insert lets two openers deadlock."""
    from accounts.models import User
    from tickets.models import StatusState, Ticket

    if department.auto_assign == AutoAssign.NONE:
        return None, ""
    locked = Department.objects.select_for_update().get(pk=department.pk)
    candidates = list(eligible_agents(locked).order_by("user_id").values_list("user_id", flat=True))
    if not candidates:
        return None, _("no available agent in %(department)s") % {"department": locked.name}
    if locked.auto_assign == AutoAssign.ROUND_ROBIN:
        last = locked.auto_assign_last_id
        chosen = next((pk for pk in candidates if last is None or pk > last), candidates[0])
        Department.objects.filter(pk=locked.pk).update(auto_assign_last=chosen)
        reason = _("round-robin in %(department)s") % {"department": locked.name}
    else:
        open_counts = dict(
            Ticket.objects.filter(assignee_id__in=candidates, status__state=StatusState.OPEN)
            .values_list("assignee_id")
            .annotate(n=Count("pk"))
            .values_list("assignee_id", "n")
        )
        chosen = min(candidates, key=lambda pk: (open_counts.get(pk, 0), pk))
        reason = _("fewest open tickets in %(department)s (%(count)d)") % {
            "department": locked.name,
            "count": open_counts.get(chosen, 0),
        }
    return User.objects.get(pk=chosen), reason


def reopen_assignee(ticket: Ticket) -> User | None:
    """Who a reopened ticket goes back to: its agent, else the agent who replied last, when
    available in the ticket's department; nobody when the department disables this."""
    from tickets.models import EntryKind

    department = ticket.department
    if department.disable_auto_assign_on_reopen:
        return None
    candidate = ticket.assignee
    if candidate is None:
        last = (
            ticket.thread.entries.filter(kind=EntryKind.RESPONSE, author__isnull=False)
            .select_related("author")
            .order_by("-created_at", "-pk")
            .first()
        )
        candidate = last.author if last is not None else None
    if candidate is not None and agent_available(candidate, department):
        return candidate
    return None
