"""The scheduled jobs: overdue marking, escalation, alerts, auto-close, and running them
twice at once."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection

from mailgate.models import OutboundMessage, TemplateCode
from sla import jobs
from sla.signals import tickets_auto_closed, tickets_overdue
from tests.accounts.factories import agent_user
from tests.sla.factories import SLAPlanFactory
from tests.tickets.factories import closed_status, open_ticket, priority, status
from tickets import services
from tickets.models import EventAction, ThreadEvent, Ticket, TicketLock

pytestmark = pytest.mark.django_db

OPENED = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def events(ticket, action):
    return list(ticket.thread.events.filter(action=action))


@pytest.fixture
def plan(department):
    plan = SLAPlanFactory(first_response_hours=Decimal(2), resolution_hours=Decimal(8))
    department.sla = plan
    department.save()
    return plan


@pytest.fixture
def opened(department, plan):
    """Open tickets at OPENED; they are due at OPENED + 2 h."""

    def opened(**fields):
        with time_machine.travel(OPENED, tick=False):
            return open_ticket(department=department, **fields)

    return opened


class TestOverdue:
    def test_marks_tickets_past_due_and_records_one_event_each(self, opened):
        late, on_time = opened(), opened()
        Ticket.objects.filter(pk=on_time.pk).update(due_at=OPENED + timedelta(days=1))
        result = jobs.overdue_check(now=OPENED + timedelta(hours=3))
        assert result.marked == [late.pk]
        late.refresh_from_db()
        on_time.refresh_from_db()
        assert late.is_overdue and not on_time.is_overdue
        [event] = events(late, EventAction.OVERDUE)
        assert event.actor is None and event.data["due_at"] == late.due_at.isoformat()

    def test_a_second_run_changes_nothing(self, opened):
        ticket = opened()
        jobs.overdue_check(now=OPENED + timedelta(hours=3))
        assert jobs.overdue_check(now=OPENED + timedelta(hours=4)).marked == []
        assert len(events(ticket, EventAction.OVERDUE)) == 1

    def test_skips_paused_and_closed_tickets(self, opened, agent):
        paused, closed = opened(), opened()
        services.ticket_status_set(ticket=paused, by=agent, status=status("Waiting on Customer"))
        services.ticket_status_set(ticket=closed, by=agent, status=closed_status())
        assert jobs.overdue_check(now=OPENED + timedelta(days=30)).marked == []

    def test_a_due_date_set_by_hand_is_kept_while_paused(self, opened, agent):
        ticket = opened()
        services.ticket_status_set(ticket=ticket, by=agent, status=status("Waiting on Customer"))
        services.ticket_due_override_set(
            ticket=ticket, by=agent, due_at=datetime.now(UTC) + timedelta(hours=1)
        )
        assert jobs.overdue_check(now=datetime.now(UTC) + timedelta(hours=2)).marked == [ticket.pk]

    def test_alerts_the_assigned_agent_after_commit(
        self, opened, department, django_capture_on_commit_callbacks
    ):
        agent = agent_user(department=department)
        ticket = opened(assignee=agent, by=agent)
        with django_capture_on_commit_callbacks(execute=True):
            jobs.overdue_check(now=OPENED + timedelta(hours=3))
        alert = OutboundMessage.objects.get(ticket=ticket, template=TemplateCode.OVERDUE_ALERT)
        assert alert.recipient == agent.email

    def test_a_plan_without_alerts_sends_none(
        self, opened, plan, department, django_capture_on_commit_callbacks
    ):
        plan.disable_alerts = True
        plan.save()
        agent = agent_user(department=department)
        ticket = opened(assignee=agent, by=agent)
        with django_capture_on_commit_callbacks(execute=True):
            result = jobs.overdue_check(now=OPENED + timedelta(hours=3))
        assert result.marked == [ticket.pk] and result.alerted == []
        assert not OutboundMessage.objects.filter(template=TemplateCode.OVERDUE_ALERT).exists()

    def test_announces_the_marked_tickets_after_commit(
        self, opened, django_capture_on_commit_callbacks
    ):
        ticket = opened()
        received = []
        tickets_overdue.connect(
            lambda **kw: received.append(kw["ticket_ids"]), weak=False, dispatch_uid="test"
        )
        try:
            with django_capture_on_commit_callbacks(execute=True):
                jobs.overdue_check(now=OPENED + timedelta(hours=3))
        finally:
            tickets_overdue.disconnect(dispatch_uid="test")
        assert received == [[ticket.pk]]

    def test_a_new_due_date_ahead_clears_overdue(self, opened, agent):
        ticket = opened()
        jobs.overdue_check(now=OPENED + timedelta(hours=3))
        services.ticket_due_override_set(
            ticket=ticket, by=agent, due_at=datetime.now(UTC) + timedelta(days=2)
        )
        ticket.refresh_from_db()
        assert not ticket.is_overdue and ticket.overdue_at is None


class TestEscalation:
    def test_raises_the_priority_one_step_when_the_plan_escalates(self, opened, plan):
        plan.escalate_on_overdue = True
        plan.save()
        normal, high, emergency = (
            opened(priority=priority(name)) for name in ("Normal", "High", "Emergency")
        )
        result = jobs.overdue_check(now=OPENED + timedelta(hours=3))
        for ticket in (normal, high, emergency):
            ticket.refresh_from_db()
        assert (normal.priority.name, high.priority.name, emergency.priority.name) == (
            "High",
            "Emergency",
            "Emergency",
        )
        assert sorted(result.escalated) == sorted([normal.pk, high.pk])
        [event] = events(normal, EventAction.OVERDUE)
        assert event.data["escalated"] == {"from": "Normal", "to": "High"}
        assert "escalated" not in events(emergency, EventAction.OVERDUE)[0].data

    def test_does_not_escalate_without_the_flag_nor_twice(self, opened, plan):
        ticket = opened(priority=priority("Normal"))
        jobs.overdue_check(now=OPENED + timedelta(hours=3))
        ticket.refresh_from_db()
        assert ticket.priority.name == "Normal"
        plan.escalate_on_overdue = True
        plan.save()
        jobs.overdue_check(now=OPENED + timedelta(hours=4))
        ticket.refresh_from_db()
        assert ticket.priority.name == "Normal"


class TestAutoClose:
    @pytest.fixture
    def resolved(self, opened, agent):
        def resolved(at=OPENED):
            ticket = opened()
            with time_machine.travel(at, tick=False):
                services.ticket_status_set(ticket=ticket, by=agent, status=status("Resolved"))
            return ticket

        return resolved

    def test_closes_tickets_resolved_for_the_set_number_of_days(self, resolved, settings):
        settings.HELPDESK_AUTO_CLOSE_DAYS = 14
        old, recent = resolved(), resolved(at=OPENED + timedelta(days=5))
        closed = jobs.auto_close(now=OPENED + timedelta(days=15))
        assert closed == [old.pk]
        old.refresh_from_db()
        recent.refresh_from_db()
        assert old.status.name == "Closed" and recent.status.name == "Resolved"
        [event] = events(old, EventAction.AUTO_CLOSED)
        assert event.data == {"from": "Resolved", "to": "Closed", "days": 14}

    def test_a_customer_reply_resets_the_clock(self, resolved, agent, settings):
        settings.HELPDESK_AUTO_CLOSE_DAYS = 14
        ticket = resolved()
        with time_machine.travel(OPENED + timedelta(days=10), tick=False):
            services.ticket_message_add(ticket=ticket, user=ticket.user, body="Still broken")
        with time_machine.travel(OPENED + timedelta(days=11), tick=False):
            services.ticket_status_set(ticket=ticket, by=agent, status=status("Resolved"))
        assert jobs.auto_close(now=OPENED + timedelta(days=15)) == []
        assert jobs.auto_close(now=OPENED + timedelta(days=26)) == [ticket.pk]

    def test_leaves_closed_and_open_tickets_alone(self, opened, agent, settings):
        open_one, closed_one = opened(), opened()
        services.ticket_status_set(ticket=closed_one, by=agent, status=closed_status())
        assert jobs.auto_close(now=datetime.now(UTC) + timedelta(days=400)) == []
        assert not ThreadEvent.objects.filter(action=EventAction.AUTO_CLOSED).exists()
        assert open_one.thread.events.count() == 1

    def test_zero_days_turns_it_off(self, resolved, settings):
        settings.HELPDESK_AUTO_CLOSE_DAYS = 0
        resolved()
        assert jobs.auto_close(now=OPENED + timedelta(days=400)) == []

    def test_a_second_run_changes_nothing_and_it_is_announced(
        self, resolved, settings, django_capture_on_commit_callbacks
    ):
        ticket = resolved()
        received = []
        tickets_auto_closed.connect(
            lambda **kw: received.append(kw["ticket_ids"]), weak=False, dispatch_uid="test"
        )
        try:
            with django_capture_on_commit_callbacks(execute=True):
                jobs.auto_close(now=OPENED + timedelta(days=20))
                jobs.auto_close(now=OPENED + timedelta(days=21))
        finally:
            tickets_auto_closed.disconnect(dispatch_uid="test")
        assert received == [[ticket.pk]]
        assert len(events(ticket, EventAction.AUTO_CLOSED)) == 1


class TestLocks:
    def test_an_agent_holds_the_lock_and_a_colleague_is_told(self, department, agent):
        ticket = open_ticket(department=department)
        colleague = agent_user(department=department, user__name="Robin")
        services.ticket_lock_acquire(ticket=ticket, by=agent)
        with pytest.raises(Exception) as error:
            services.ticket_lock_acquire(ticket=ticket, by=colleague)
        assert "is working on this ticket" in str(error.value)
        assert services.ticket_lock_release(ticket=ticket, by=agent)
        assert services.ticket_lock_acquire(ticket=ticket, by=colleague).agent == colleague

    def test_an_expired_lock_is_taken_over_and_cleared_by_the_job(self, department, agent):
        ticket, other = open_ticket(department=department), open_ticket(department=department)
        colleague = agent_user(department=department)
        with time_machine.travel(datetime.now(UTC) - timedelta(hours=1), tick=False):
            services.ticket_lock_acquire(ticket=ticket, by=agent, minutes=3)
            services.ticket_lock_acquire(ticket=other, by=agent, minutes=3)
        assert services.ticket_lock_acquire(ticket=ticket, by=colleague).agent == colleague
        assert jobs.ticket_locks_clear() == 1
        assert list(TicketLock.objects.values_list("ticket", flat=True)) == [ticket.pk]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
class TestConcurrentRuns:
    def _twice_at_once(self, job):
        barrier = threading.Barrier(2)
        errors = []

        def run():
            try:
                barrier.wait()
                job()
            except Exception as error:  # pragma: no cover - reported below
                errors.append(error)
            finally:
                connection.close()

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []

    def test_two_overdue_checks_at_once_mark_each_ticket_once(self, department):
        plan = SLAPlanFactory(escalate_on_overdue=True)
        department.sla = plan
        department.save()
        with time_machine.travel(OPENED, tick=False):
            tickets = [open_ticket(department=department) for _ in range(5)]
        self._twice_at_once(lambda: jobs.overdue_check(now=OPENED + timedelta(hours=3)))
        for ticket in tickets:
            [event] = events(ticket, EventAction.OVERDUE)
            assert event.data["escalated"] == {"from": "Normal", "to": "High"}
            ticket.refresh_from_db()
            assert ticket.priority.name == "High"

    def test_two_auto_closes_at_once_close_each_ticket_once(self, department, settings):
        settings.HELPDESK_AUTO_CLOSE_DAYS = 1
        agent = agent_user(department=department)
        with time_machine.travel(OPENED, tick=False):
            tickets = [open_ticket(department=department) for _ in range(5)]
            for ticket in tickets:
                services.ticket_status_set(ticket=ticket, by=agent, status=status("Resolved"))
        self._twice_at_once(lambda: jobs.auto_close(now=OPENED + timedelta(days=2)))
        for ticket in tickets:
            assert len(events(ticket, EventAction.AUTO_CLOSED)) == 1
