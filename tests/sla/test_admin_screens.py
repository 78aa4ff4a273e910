"""The SLA admin screens: plans with targets per priority, schedules with hours, holidays,
exceptions and the public-holiday import, and the due-date preview."""

from datetime import date, time, timedelta
from decimal import Decimal

import pytest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from helpdesk.models import AdminLogEntry
from sla.models import Holiday, Period, PriorityTarget, Schedule, ScheduleException, SLAPlan
from tests.accounts.factories import agent_user, role
from tests.sla.factories import ScheduleFactory, SLAPlanFactory
from tests.tickets.factories import open_ticket, priority
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client, department):
    user = agent_user(department=department, role=role("Administrator"))
    client.force_login(user)
    return user


def management(prefix: str, total: int = 0, initial: int = 0) -> dict[str, str]:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


class TestAccess:
    def test_agents_without_the_admin_right_get_403(self, client, department):
        client.force_login(agent_user(department=department, role=role("All Access")))
        for name in ("sla_admin:plan_list", "sla_admin:schedule_list", "sla_admin:preview"):
            assert client.get(reverse(name)).status_code == 403

    def test_visitors_are_sent_to_sign_in(self, client):
        response = client.get(reverse("sla_admin:plan_list"))
        assert response.status_code == 302 and "login" in response["Location"]

    def test_the_lists_show_plans_and_schedules(self, client, admin):
        response = client.get(reverse("sla_admin:plan_list"))
        assert response.status_code == 200 and "Default SLA" in response.content.decode()
        response = client.get(reverse("sla_admin:schedule_list"))
        assert "Office hours" in response.content.decode()


class TestPages:
    def test_the_forms_show_their_rows(self, client, admin):
        schedule = ScheduleFactory(name="Berlin")
        Holiday.objects.create(schedule=schedule, date=date(2026, 12, 25), name="Christmas")
        ScheduleException.objects.create(
            schedule=schedule, date=date(2026, 12, 19), start=time(10), end=time(14)
        )
        plan = SLAPlanFactory(name="Gold", schedule=schedule)
        PriorityTarget.objects.create(
            plan=plan,
            priority=priority("High"),
            first_response_hours=Decimal(1),
            resolution_hours=Decimal(3),
        )
        page = client.get(reverse("sla_admin:plan_edit", args=[plan.pk])).content.decode()
        assert "Targets per priority" in page and 'value="3.00"' in page
        page = client.get(reverse("sla_admin:schedule_edit", args=[schedule.pk])).content.decode()
        assert "Christmas" in page and "10:00\u201314:00" in page and 'value="09:00"' in page
        for name in ("sla_admin:plan_create", "sla_admin:schedule_create"):
            assert client.get(reverse(name)).status_code == 200


class TestPlans:
    def test_creates_a_plan_with_targets_per_priority(self, client, admin):
        data = {
            "name": "Gold",
            "first_response_hours": "1",
            "resolution_hours": "8",
            "is_active": "on",
            "escalate_on_overdue": "on",
            **management("targets", total=1),
            "targets-0-priority": priority("Emergency").pk,
            "targets-0-first_response_hours": "0.25",
            "targets-0-resolution_hours": "2",
        }
        response = client.post(reverse("sla_admin:plan_create"), data)
        assert response.status_code == 302
        plan = SLAPlan.objects.get(name="Gold")
        assert plan.escalate_on_overdue and plan.schedule is None
        target = PriorityTarget.objects.get(plan=plan)
        assert target.resolution_hours == Decimal(2)
        assert AdminLogEntry.objects.filter(object_repr="Gold").count() == 2

    def test_shows_errors_by_field(self, client, admin):
        data = {
            "name": "Bad",
            "first_response_hours": "10",
            "resolution_hours": "2",
            **management("targets"),
        }
        response = client.post(reverse("sla_admin:plan_create"), data)
        assert response.status_code == 200
        assert "cannot be due after the resolution" in response.content.decode()
        assert not SLAPlan.objects.filter(name="Bad").exists()

    def test_archives_a_plan(self, client, admin):
        plan = SLAPlanFactory()
        response = client.post(reverse("sla_admin:plan_archive", args=[plan.pk]))
        assert response.status_code == 302
        plan.refresh_from_db()
        assert not plan.is_active

    def test_archive_needs_post(self, client, admin):
        plan = SLAPlanFactory()
        assert client.get(reverse("sla_admin:plan_archive", args=[plan.pk])).status_code == 405


class TestSchedules:
    def test_creates_a_schedule_with_a_lunch_break(self, client, admin):
        data = {
            "name": "Berlin office",
            "timezone": "Europe/Berlin",
            **management("periods", total=2),
            "periods-0-weekday": "0",
            "periods-0-start": "09:00",
            "periods-0-end": "12:30",
            "periods-1-weekday": "0",
            "periods-1-start": "13:30",
            "periods-1-end": "17:00",
        }
        response = client.post(reverse("sla_admin:schedule_create"), data)
        schedule = Schedule.objects.get(name="Berlin office")
        assert response.status_code == 302
        assert list(schedule.periods.values_list("start", "end")) == [
            (time(9), time(12, 30)),
            (time(13, 30), time(17)),
        ]

    def test_refuses_a_period_ending_before_it_starts_and_an_unknown_zone(self, client, admin):
        data = {
            "name": "Bad",
            "timezone": "Mars/Olympus",
            **management("periods", total=1),
            "periods-0-weekday": "0",
            "periods-0-start": "17:00",
            "periods-0-end": "09:00",
        }
        response = client.post(reverse("sla_admin:schedule_create"), data)
        content = response.content.decode()
        assert response.status_code == 200
        assert "The end must be after the start" in content
        assert "Mars/Olympus is not one of the available choices" in content

    def test_adds_and_removes_holidays_and_exceptions(self, client, admin):
        schedule = ScheduleFactory()
        url = reverse("sla_admin:holiday_add", args=[schedule.pk])
        data = {"holiday-date": "2026-12-24", "holiday-name": "Christmas Eve"}
        assert client.post(url, data).status_code == 302
        response = client.post(url, data)
        assert response.status_code == 400 and "already a holiday" in response.content.decode()
        holiday = Holiday.objects.get(schedule=schedule)
        url = reverse("sla_admin:holiday_delete", args=[schedule.pk, holiday.pk])
        assert client.post(url).status_code == 302
        assert not Holiday.objects.exists()

        url = reverse("sla_admin:exception_add", args=[schedule.pk])
        data = {
            "exception-date": "2026-12-19",
            "exception-start": "10:00",
            "exception-end": "14:00",
            "exception-name": "Year-end Saturday",
        }
        assert client.post(url, data).status_code == 302
        exception = ScheduleException.objects.get(schedule=schedule)
        assert exception.end == time(14)

    def test_imports_public_holidays_of_a_country_and_region(self, client, admin):
        schedule = ScheduleFactory()
        Holiday.objects.create(schedule=schedule, date=date(2026, 1, 1), name="Ours")
        url = reverse("sla_admin:holidays_import", args=[schedule.pk])
        data = {"import-country": "DE", "import-subdivision": "by", "import-year": "2026"}
        assert client.post(url, data).status_code == 302
        names = dict(schedule.holidays.values_list("date", "name"))
        assert names[date(2026, 1, 1)] == "Ours"  # kept
        assert names[date(2026, 1, 6)] == "Epiphany"  # Bavaria only
        assert date(2026, 12, 25) in names

    def test_refuses_an_unknown_region(self, client, admin):
        schedule = ScheduleFactory()
        url = reverse("sla_admin:holidays_import", args=[schedule.pk])
        data = {"import-country": "DE", "import-subdivision": "XX", "import-year": "2026"}
        response = client.post(url, data)
        assert response.status_code == 400 and "has no region XX" in response.content.decode()
        assert not schedule.holidays.exists()

    def test_a_schedule_in_use_cannot_be_deleted(self, client, admin):
        schedule = ScheduleFactory()
        SLAPlanFactory(schedule=schedule)
        client.post(reverse("sla_admin:schedule_delete", args=[schedule.pk]))
        assert Schedule.objects.filter(pk=schedule.pk).exists()
        assert Period.objects.filter(schedule=schedule).count() == 5


class TestPreview:
    def test_shows_the_due_dates_in_the_schedules_time_zone(self, client, admin):
        plan = SLAPlanFactory(resolution_hours=Decimal(8), schedule=ScheduleFactory())
        response = client.get(
            reverse("sla_admin:preview"), {"plan": plan.pk, "start": "2026-11-20T16:00"}
        )
        content = response.content.decode()
        assert response.status_code == 200
        assert "Mon, 2026-11-23 16:00" in content  # resolution
        assert "Mon, 2026-11-23 10:00" in content  # first response (2 h)
        assert "Europe/Berlin" in content

    def test_a_link_from_a_plan_preselects_it(self, client, admin):
        plan = SLAPlanFactory(name="Silver")
        response = client.get(reverse("sla_admin:preview"), {"plan": plan.pk})
        assert response.status_code == 200
        assert f'<option value="{plan.pk}" selected>Silver</option>' in response.content.decode()

    def test_htmx_gets_the_result_fragment_only(self, client, admin):
        plan = SLAPlanFactory()
        response = client.get(
            reverse("sla_admin:preview"),
            {"plan": plan.pk, "start": "2026-11-20T16:00"},
            HTTP_HX_REQUEST="true",
        )
        content = response.content.decode()
        assert 'id="sla-preview-result"' in content and "<form" not in content

    def test_a_bad_start_is_a_field_error(self, client, admin):
        response = client.get(reverse("sla_admin:preview"), {"plan": "1", "start": "someday"})
        assert response.status_code == 400
        assert "Enter a valid date/time" in response.content.decode()


class TestDueBadge:
    def render(self, ticket):
        return " ".join(render_to_string("sla/_due.html", {"ticket": ticket}).split())

    def test_says_overdue_in_words(self, department):
        ticket = open_ticket(department=department)
        Ticket.objects.filter(pk=ticket.pk).update(is_overdue=True)
        ticket.refresh_from_db()
        html = self.render(ticket)
        assert "due-overdue" in html and "Overdue" in html

    def test_says_time_left_and_soon(self, department):
        ticket = open_ticket(department=department)
        assert "due-ok" in self.render(ticket) and "Due in" in self.render(ticket)
        ticket.due_at = timezone.now() + timedelta(minutes=30)
        assert "due-soon" in self.render(ticket) and "Due soon" in self.render(ticket)

    def test_is_empty_for_closed_tickets_and_says_paused(self, department):
        ticket = open_ticket(department=department)
        ticket.sla_paused_at = timezone.now()
        assert "SLA paused" in self.render(ticket)
        ticket.closed_at = timezone.now()
        assert self.render(ticket) == ""
