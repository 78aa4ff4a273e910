"""Who gets a department's tickets: automatic assignment and the department's flags."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import close_old_connections, connection

from routing.models import AutoAssign, Department
from tests.accounts.factories import AgentFactory, agent_user, role
from tests.routing.factories import DepartmentFactory, TeamFactory
from tests.tickets.factories import closed_status, open_ticket
from tickets import services
from tickets.models import EventAction, Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk():
    return DepartmentFactory(name="Desk")


def assigned_event(ticket):
    return ticket.thread.events.get(action=EventAction.ASSIGNED)


class TestRoundRobin:
    def test_tickets_go_to_each_agent_in_turn(self, desk):
        desk.auto_assign = AutoAssign.ROUND_ROBIN
        desk.save()
        agents = [agent_user(department=desk) for _ in range(3)]
        got = [open_ticket(department=desk).assignee for _ in range(7)]
        assert got == [*agents, *agents, agents[0]]
        event = assigned_event(Ticket.objects.first())
        assert event.actor is None and event.data["reason"] == "round-robin in Desk"

    def test_agents_away_inactive_or_without_access_are_skipped(self, desk):
        desk.auto_assign = AutoAssign.ROUND_ROBIN
        desk.save()
        working = agent_user(department=desk)
        AgentFactory(department=desk, on_vacation=True)
        AgentFactory(department=desk, is_active=False)
        disabled = AgentFactory(department=desk)
        disabled.user.is_active = False
        disabled.user.save()
        AgentFactory(department=DepartmentFactory())  # no access to the desk
        helper = agent_user(department=DepartmentFactory(), extended={desk: role("All Access")})
        got = {open_ticket(department=desk).assignee for _ in range(4)}
        assert got == {working, helper}

    def test_primary_only_leaves_out_extended_members(self, desk):
        desk.auto_assign, desk.assign_primary_only = AutoAssign.ROUND_ROBIN, True
        desk.save()
        primary = agent_user(department=desk)
        agent_user(department=DepartmentFactory(), extended={desk: role("All Access")})
        assert {open_ticket(department=desk).assignee for _ in range(3)} == {primary}

    def test_with_nobody_available_the_ticket_stays_unassigned_and_says_why(self, desk):
        desk.auto_assign = AutoAssign.ROUND_ROBIN
        desk.save()
        AgentFactory(department=desk, on_vacation=True)
        ticket = open_ticket(department=desk)
        assert ticket.assignee is None
        created = ticket.thread.events.get(action=EventAction.CREATED)
        assert created.data["unassigned"] == "no available agent in Desk"

    def test_the_cursor_survives_an_agent_leaving(self, desk):
        desk.auto_assign = AutoAssign.ROUND_ROBIN
        desk.save()
        first, second, third = (AgentFactory(department=desk) for _ in range(3))
        assert open_ticket(department=desk).assignee == first.user
        assert open_ticket(department=desk).assignee == second.user
        second.on_vacation = True
        second.save()
        assert open_ticket(department=desk).assignee == third.user
        assert open_ticket(department=desk).assignee == first.user


class TestLeastOpen:
    def test_the_agent_with_fewest_open_tickets_gets_the_next(self, desk):
        desk.auto_assign = AutoAssign.LEAST_OPEN
        desk.save()
        other_department = DepartmentFactory()
        busy = agent_user(department=desk, extended={other_department: role("All Access")})
        idle = agent_user(department=desk)
        for _ in range(2):  # busy's workload counts whatever the department
            open_ticket(department=other_department, by=busy, assignee=busy)
        ticket = open_ticket(department=desk)
        assert ticket.assignee == idle
        assert assigned_event(ticket).data["reason"] == "fewest open tickets in Desk (0)"
        assert [open_ticket(department=desk).assignee for _ in range(3)] == [idle, busy, idle]

    def test_closed_tickets_do_not_count(self, desk):
        desk.auto_assign = AutoAssign.LEAST_OPEN
        desk.save()
        first, _second = agent_user(department=desk), agent_user(department=desk)
        ticket = open_ticket(department=desk)
        assert ticket.assignee == first
        services.ticket_status_set(ticket=ticket, by=first, status=closed_status())
        assert open_ticket(department=desk).assignee == first

    def test_agents_on_vacation_get_nothing(self, desk):
        desk.auto_assign = AutoAssign.LEAST_OPEN
        desk.save()
        AgentFactory(department=desk, on_vacation=True)
        working = agent_user(department=desk)
        assert {open_ticket(department=desk).assignee for _ in range(3)} == {working}


class TestNoAutoAssignment:
    def test_none_leaves_new_tickets_unassigned(self, desk):
        agent_user(department=desk)
        ticket = open_ticket(department=desk)
        assert ticket.assignee is None
        assert not ticket.thread.events.filter(action=EventAction.ASSIGNED).exists()

    def test_a_ticket_already_given_to_a_team_is_not_auto_assigned(self, desk):
        desk.auto_assign = AutoAssign.ROUND_ROBIN
        desk.save()
        agent = agent_user(department=desk)
        ticket = open_ticket(department=desk, by=agent, team=TeamFactory())
        assert ticket.assignee is None and ticket.team is not None


def open_concurrently(department: Department, count: int) -> list[BaseException]:
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def work():
        try:
            barrier.wait()
            open_ticket(department=department)
        except BaseException as error:
            errors.append(error)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("strategy", [AutoAssign.ROUND_ROBIN, AutoAssign.LEAST_OPEN])
def test_tickets_opened_at_once_are_spread_evenly(strategy):
    desk = DepartmentFactory(auto_assign=strategy)
    agents = [agent_user(department=desk) for _ in range(4)]
    assert open_concurrently(desk, count=8) == []
    counts = [Ticket.objects.filter(assignee=agent).count() for agent in agents]
    assert counts == [2, 2, 2, 2]


class TestDepartmentFlags:
    def test_members_only_refuses_agents_of_other_departments(self, desk):
        agent = agent_user(department=desk)
        ticket = open_ticket(department=desk)
        outsider = agent_user(department=DepartmentFactory())
        with pytest.raises(ValidationError) as error:
            services.ticket_assign(ticket=ticket, by=agent, agent=outsider)
        assert "cannot work on tickets of Desk" in error.value.message_dict["agent"][0]

    def test_without_members_only_any_active_agent_may_be_assigned(self, desk):
        desk.assign_members_only = False
        desk.save()
        ticket = open_ticket(department=desk)
        boss = agent_user(department=desk)
        outsider = agent_user(department=DepartmentFactory())
        services.ticket_assign(ticket=ticket, by=boss, agent=outsider)
        ticket.refresh_from_db()
        assert ticket.assignee == outsider
        from accounts.permissions import can

        assert can(outsider, "ticket.view", ticket)  # they reach it through the assignment
        customer = ticket.user
        with pytest.raises(ValidationError):
            services.ticket_assign(ticket=ticket, by=boss, agent=customer)

    def test_primary_only_refuses_extended_members(self, desk):
        desk.assign_primary_only = True
        desk.save()
        boss = agent_user(department=desk)
        helper = agent_user(department=DepartmentFactory(), extended={desk: role("All Access")})
        ticket = open_ticket(department=desk)
        with pytest.raises(ValidationError) as error:
            services.ticket_assign(ticket=ticket, by=boss, agent=helper)
        assert "Only agents of Desk itself" in error.value.message_dict["agent"][0]
        with pytest.raises(ValidationError):
            services.ticket_claim(ticket=ticket, by=helper)
        services.ticket_assign(ticket=ticket, by=helper, agent=boss)  # helper may still assign

    def test_a_reply_claims_the_ticket_unless_the_department_says_no(self, desk, settings):
        settings.HELPDESK_AUTO_CLAIM_ON_REPLY = True
        agent = agent_user(department=desk)
        ticket = open_ticket(department=desk)
        services.ticket_reply(ticket=ticket, by=agent, body="On it.")
        ticket.refresh_from_db()
        assert ticket.assignee == agent

        other = DepartmentFactory(disable_claim_on_reply=True)
        agent = agent_user(department=other)
        ticket = open_ticket(department=other)
        services.ticket_reply(ticket=ticket, by=agent, body="On it.")
        ticket.refresh_from_db()
        assert ticket.assignee is None
        assert not ticket.thread.events.filter(action=EventAction.CLAIMED).exists()

    def test_an_extended_member_replying_in_a_primary_only_department_does_not_claim(
        self, desk, settings
    ):
        settings.HELPDESK_AUTO_CLAIM_ON_REPLY = True
        desk.assign_primary_only = True
        desk.save()
        helper = agent_user(department=DepartmentFactory(), extended={desk: role("All Access")})
        ticket = open_ticket(department=desk)
        services.ticket_reply(ticket=ticket, by=helper, body="Looking.")
        ticket.refresh_from_db()
        assert ticket.assignee is None


class TestReopen:
    @pytest.fixture
    def assigned(self, desk):
        agent = agent_user(department=desk)
        ticket = open_ticket(department=desk)
        services.ticket_assign(ticket=ticket, by=agent, agent=agent)
        services.ticket_status_set(ticket=ticket, by=agent, status=closed_status())
        return ticket, agent

    def test_a_reopened_ticket_goes_back_to_its_agent(self, assigned):
        ticket, agent = assigned
        services.ticket_message_add(ticket=ticket, user=ticket.user, body="Broken again")
        ticket.refresh_from_db()
        assert ticket.assignee == agent

    def test_an_agent_on_vacation_is_not_given_the_reopened_ticket(self, assigned):
        ticket, agent = assigned
        agent.agent.on_vacation = True
        agent.agent.save()
        services.ticket_message_add(ticket=ticket, user=ticket.user, body="Broken again")
        ticket.refresh_from_db()
        assert ticket.assignee is None
        event = ticket.thread.events.get(action=EventAction.REOPENED)
        assert event.data["released"] == agent.get_full_name()

    def test_the_department_may_disable_reassignment_on_reopen(self, assigned, desk):
        ticket, _agent = assigned
        desk.disable_auto_assign_on_reopen = True
        desk.save()
        services.ticket_message_add(ticket=ticket, user=ticket.user, body="Broken again")
        ticket.refresh_from_db()
        assert ticket.assignee is None

    def test_an_unassigned_ticket_goes_to_the_agent_who_replied_last(self, desk):
        agent = agent_user(department=desk)
        ticket = open_ticket(department=desk)
        services.ticket_reply(ticket=ticket, by=agent, body="Done.", status=closed_status())
        ticket.refresh_from_db()
        if ticket.assignee_id:  # claimed by the reply
            services.ticket_release(ticket=ticket, by=agent)
            ticket.refresh_from_db()
        assert ticket.assignee is None
        services.ticket_message_add(ticket=ticket, user=ticket.user, body="Not done")
        ticket.refresh_from_db()
        assert ticket.assignee == agent
        assert ticket.thread.events.get(action=EventAction.REOPENED).data["assigned"]


class TestTransfer:
    def test_the_assignee_stays_when_the_new_department_accepts_them(self, desk):
        sales = DepartmentFactory(name="Sales")
        agent = agent_user(department=desk, extended={sales: role("All Access")})
        ticket = open_ticket(department=desk)
        services.ticket_assign(ticket=ticket, by=agent, agent=agent)
        services.ticket_transfer(ticket=ticket, by=agent, department=sales)
        ticket.refresh_from_db()
        assert ticket.assignee == agent

    def test_a_primary_only_department_releases_an_extended_member(self, desk):
        sales = DepartmentFactory(name="Sales", assign_primary_only=True)
        agent = agent_user(department=desk, extended={sales: role("All Access")})
        ticket = open_ticket(department=desk)
        services.ticket_assign(ticket=ticket, by=agent, agent=agent)
        services.ticket_transfer(ticket=ticket, by=agent, department=sales)
        ticket.refresh_from_db()
        assert ticket.assignee is None
        event = ticket.thread.events.get(action=EventAction.TRANSFERRED)
        assert event.data["released"] == agent.get_full_name()

    def test_a_department_open_to_anyone_keeps_the_assignee(self, desk):
        anyone = DepartmentFactory(assign_members_only=False)
        agent = agent_user(department=desk, extended={anyone: role("All Access")})
        other = agent_user(department=desk)
        ticket = open_ticket(department=desk)
        services.ticket_assign(ticket=ticket, by=agent, agent=other)
        services.ticket_transfer(ticket=ticket, by=agent, department=anyone)
        ticket.refresh_from_db()
        assert ticket.assignee == other

    def test_the_team_and_classification_stay(self, desk):
        from tests.routing.factories import cti

        team = TeamFactory()
        item = cti("Hardware", "Printer", "Fire")
        sales = DepartmentFactory()
        agent = agent_user(department=desk, extended={sales: role("All Access")})
        ticket = open_ticket(department=desk, by=agent, team=team, cti_item=item)
        services.ticket_transfer(ticket=ticket, by=agent, department=sales)
        ticket.refresh_from_db()
        assert (ticket.team, ticket.cti_item, ticket.cti_category) == (
            team,
            item,
            item.type.category,
        )
