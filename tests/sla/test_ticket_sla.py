"""Tickets get their SLA plan and due dates, which follow transfers, priorities, pauses and
reopening; agents with the right may set the due date by hand."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import override_settings

from routing.models import RuleField, RuleOperator
from sla import services as sla_services
from sla.models import PriorityTarget, SLAPlan
from tests.accounts.factories import agent_user, role
from tests.routing.factories import DepartmentFactory, FilterFactory, HelpTopicFactory
from tests.sla.factories import ScheduleFactory, SLAPlanFactory
from tests.tickets.factories import closed_status, open_ticket, priority, status
from tickets import services
from tickets.models import EventAction

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY_9AM = datetime(2026, 11, 23, 9, 0, tzinfo=BERLIN)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


@pytest.fixture
def plan():
    return SLAPlanFactory(name="Gold", first_response_hours=Decimal(2), resolution_hours=Decimal(8))


@pytest.fixture
def clock():
    with time_machine.travel(MONDAY_9AM, tick=False) as traveller:
        yield traveller


class TestWhichPlan:
    def test_the_default_plan_applies_when_nothing_else_does(self, department, clock):
        ticket = open_ticket(department=department)
        assert ticket.sla.name == "Default SLA"
        assert ticket.first_response_due_at == MONDAY_9AM + hours(8)
        assert ticket.resolution_due_at == MONDAY_9AM + hours(48)
        assert ticket.due_at == ticket.first_response_due_at

    @override_settings(HELPDESK_DEFAULT_SLA="")
    def test_without_a_default_a_ticket_has_no_due_date(self, department):
        ticket = open_ticket(department=department)
        assert ticket.sla is None and ticket.due_at is None

    def test_the_department_plan_wins_over_the_default(self, department, plan):
        department.sla = plan
        department.save()
        assert open_ticket(department=department).sla == plan

    def test_the_topic_plan_wins_over_the_department(self, department, plan):
        department.sla = SLAPlanFactory()
        department.save()
        topic = HelpTopicFactory(department=department, sla=plan)
        assert open_ticket(help_topic=topic).sla == plan

    def test_a_filter_plan_wins_over_the_topic(self, department, plan):
        topic = HelpTopicFactory(department=department, sla=SLAPlanFactory())
        FilterFactory(sla=plan, rules=[(RuleField.SUBJECT, RuleOperator.CONTAINS, "urgent")])
        assert open_ticket(help_topic=topic, subject="Urgent: down").sla == plan

    def test_inactive_plans_are_passed_over(self, department, plan):
        topic = HelpTopicFactory(department=department, sla=SLAPlanFactory(is_active=False))
        department.sla = plan
        department.save()
        assert open_ticket(help_topic=topic).sla == plan

    def test_the_creation_event_names_the_plan(self, department, plan):
        department.sla = plan
        department.save()
        ticket = open_ticket(department=department)
        assert ticket.thread.events.get(action=EventAction.CREATED).data["sla"] == "Gold"


class TestDueDates:
    def test_business_hours_count_from_the_opening(self, department, clock):
        schedule = ScheduleFactory()
        department.sla = SLAPlanFactory(resolution_hours=Decimal(10), schedule=schedule)
        department.save()
        ticket = open_ticket(department=department)
        assert ticket.resolution_due_at == datetime(2026, 11, 24, 11, 0, tzinfo=BERLIN)

    def test_the_first_response_moves_the_due_date_to_the_resolution(
        self, department, plan, agent, clock
    ):
        department.sla = plan
        department.save()
        ticket = open_ticket(department=department)
        assert ticket.due_at == MONDAY_9AM + hours(2)
        services.ticket_reply(ticket=ticket, by=agent, body="Looking into it.")
        ticket.refresh_from_db()
        assert ticket.due_at == MONDAY_9AM + hours(8)

    def test_a_priority_with_its_own_targets_changes_the_due_dates(
        self, department, plan, agent, clock
    ):
        PriorityTarget.objects.create(
            plan=plan,
            priority=priority("Emergency"),
            first_response_hours=Decimal("0.5"),
            resolution_hours=Decimal(4),
        )
        department.sla = plan
        department.save()
        ticket = open_ticket(department=department)
        clock.shift(hours(1))
        services.ticket_priority_set(ticket=ticket, by=agent, priority=priority("Emergency"))
        ticket.refresh_from_db()
        assert ticket.first_response_due_at == MONDAY_9AM + hours(0.5)
        assert ticket.resolution_due_at == MONDAY_9AM + hours(4)

    def test_a_transfer_brings_the_new_departments_plan_to_a_transient_one(
        self, department, agent, clock
    ):
        transient = SLAPlanFactory(is_transient=True)
        department.sla = transient
        department.save()
        other = DepartmentFactory(sla=SLAPlanFactory(name="Other", resolution_hours=Decimal(3)))
        ticket = open_ticket(department=department)
        services.ticket_transfer(ticket=ticket, by=role_agent(department, other), department=other)
        ticket.refresh_from_db()
        assert ticket.sla.name == "Other"
        assert ticket.resolution_due_at == MONDAY_9AM + hours(3)
        event = ticket.thread.events.get(action=EventAction.SLA)
        assert event.data["from"] == transient.name and event.data["to"] == "Other"

    def test_a_transfer_keeps_a_fixed_plan(self, department, plan, agent):
        department.sla = plan
        department.save()
        other = DepartmentFactory(sla=SLAPlanFactory())
        ticket = open_ticket(department=department)
        services.ticket_transfer(ticket=ticket, by=role_agent(department, other), department=other)
        ticket.refresh_from_db()
        assert ticket.sla == plan

    def test_an_agent_changes_the_plan(self, department, plan, agent, clock):
        ticket = open_ticket(department=department)
        services.ticket_sla_set(ticket=ticket, by=agent, sla=plan)
        ticket.refresh_from_db()
        assert ticket.sla == plan and ticket.due_at == MONDAY_9AM + hours(2)
        with pytest.raises(ValidationError):
            services.ticket_sla_set(ticket=ticket, by=agent, sla=plan)

    def test_an_inactive_plan_cannot_be_given(self, department, agent):
        ticket = open_ticket(department=department)
        with pytest.raises(ValidationError) as error:
            services.ticket_sla_set(ticket=ticket, by=agent, sla=SLAPlanFactory(is_active=False))
        assert "sla" in error.value.message_dict


def role_agent(*departments):
    """An agent with All Access in every department given."""
    first, *others = departments
    return agent_user(department=first, extended={d: role("All Access") for d in others})


class TestPausing:
    def test_time_waiting_on_the_customer_does_not_count(self, department, plan, agent, clock):
        department.sla = plan
        department.save()
        ticket = open_ticket(department=department)
        services.ticket_reply(
            ticket=ticket, by=agent, body="Which model?", status=status("Waiting on Customer")
        )
        ticket.refresh_from_db()
        assert ticket.sla_paused_at == MONDAY_9AM
        clock.shift(hours(5))
        services.ticket_message_add(ticket=ticket, user=ticket.user, body="The LX-9")
        ticket.refresh_from_db()
        assert ticket.sla_paused_at is None
        assert ticket.sla_paused_seconds == 5 * 3600
        assert ticket.resolution_due_at == MONDAY_9AM + hours(8 + 5)

    def test_paused_time_counts_in_business_hours(self, department, agent, clock):
        department.sla = SLAPlanFactory(resolution_hours=Decimal(8), schedule=ScheduleFactory())
        department.save()
        ticket = open_ticket(department=department)
        services.ticket_status_set(ticket=ticket, by=agent, status=status("Waiting on Customer"))
        clock.shift(hours(24))  # Tuesday 09:00: eight business hours of Monday were paused
        services.ticket_status_set(ticket=ticket, by=agent, status=status("Open"))
        ticket.refresh_from_db()
        assert ticket.sla_paused_seconds == 8 * 3600
        assert ticket.resolution_due_at == datetime(2026, 11, 24, 17, 0, tzinfo=BERLIN)

    def test_reopening_starts_the_clock_again(self, department, plan, agent, clock):
        department.sla = plan
        department.save()
        ticket = open_ticket(department=department)
        services.ticket_status_set(ticket=ticket, by=agent, status=closed_status())
        clock.shift(hours(30))
        services.ticket_message_add(ticket=ticket, user=ticket.user, body="Broken again")
        ticket.refresh_from_db()
        assert ticket.resolution_due_at == MONDAY_9AM + hours(30 + 8)
        assert ticket.due_at == ticket.first_response_due_at == MONDAY_9AM + hours(32)


class TestOverride:
    def test_an_agent_sets_the_due_date_apart_from_the_computed_one(self, department, agent, clock):
        ticket = open_ticket(department=department)
        computed = ticket.due_at
        wanted = MONDAY_9AM + timedelta(days=3)
        services.ticket_due_override_set(ticket=ticket, by=agent, due_at=wanted)
        ticket.refresh_from_db()
        assert ticket.due_at == wanted and ticket.first_response_due_at == computed
        event = ticket.thread.events.get(action=EventAction.DUE_OVERRIDE)
        assert event.actor == agent and event.data["override"] is True
        services.ticket_due_override_set(ticket=ticket, by=agent, due_at=None)
        ticket.refresh_from_db()
        assert ticket.due_at == computed

    def test_a_due_date_in_the_past_is_refused(self, department, agent, clock):
        ticket = open_ticket(department=department)
        with pytest.raises(ValidationError) as error:
            services.ticket_due_override_set(ticket=ticket, by=agent, due_at=MONDAY_9AM - hours(1))
        assert "due_at" in error.value.message_dict

    def test_it_needs_its_own_permission(self, department, clock):
        limited = agent_user(department=department, role=role("Limited Access"))
        ticket = open_ticket(department=department)
        assert "ticket.due_override" not in role("Limited Access").permissions
        with pytest.raises(PermissionDenied):
            services.ticket_due_override_set(
                ticket=ticket, by=limited, due_at=MONDAY_9AM + hours(5)
            )

    def test_the_shipped_roles_that_edit_tickets_have_it(self):
        for name in ("All Access", "Expanded Access", "Administrator"):
            assert "ticket.due_override" in role(name).permissions


def test_statuses_ship_with_their_sla_behaviour():
    assert status("Waiting on Customer").pauses_sla
    assert status("Resolved").auto_close
    assert not status("Open").pauses_sla and not status("Closed").auto_close
    assert SLAPlan.objects.filter(name="Default SLA", is_active=True).exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # commits: the kept rows count
def test_due_dates_follow_holidays_imported_after_the_schedule_was_read(department):
    """Plans, targets and calendars are kept per process: a change shows at the next ticket."""
    plan = SLAPlanFactory(
        first_response_hours=Decimal(1), resolution_hours=Decimal(8), schedule=ScheduleFactory()
    )
    department.sla = plan
    department.save()
    with time_machine.travel(datetime(2026, 12, 24, 16, 0, tzinfo=BERLIN), tick=False):
        before = open_ticket(department=department)
        sla_services.holidays_import(schedule=plan.schedule, country="DE", year=2026, actor=None)
        after = open_ticket(department=department)
        PriorityTarget.objects.create(
            plan=plan,
            priority=after.priority,
            first_response_hours=Decimal(1),
            resolution_hours=Decimal(2),
        )
        urgent = open_ticket(department=department)

    # One hour on Thursday, seven on Friday; then Friday and Saturday are holidays.
    assert before.resolution_due_at == datetime(2026, 12, 25, 16, 0, tzinfo=BERLIN)
    assert after.resolution_due_at == datetime(2026, 12, 28, 16, 0, tzinfo=BERLIN)
    assert urgent.resolution_due_at == datetime(2026, 12, 28, 10, 0, tzinfo=BERLIN)
