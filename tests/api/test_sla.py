"""SLA plans and schedules through the API, and the due dates a plan gives."""

import pytest

from sla.models import SLAPlan
from tests.sla.factories import ScheduleFactory, SLAPlanFactory, holiday

pytestmark = pytest.mark.django_db


def test_due_dates_count_business_hours_and_skip_holidays(agent_api):
    schedule = ScheduleFactory(timezone="Europe/Berlin")  # Monday to Friday, 9 to 17
    import datetime

    holiday(schedule, datetime.date(2026, 12, 25), "Christmas")
    plan = SLAPlanFactory(schedule=schedule)  # 2 h to answer, 8 h to resolve
    # Thursday 24 December 2026, 16:00 in Berlin (15:00 UTC).
    response = agent_api.get(f"/api/v1/slas/{plan.pk}/due-dates?start=2026-12-24T15:00:00Z")
    assert response.status_code == 200, response.json()
    body = response.json()
    # One hour left on Thursday; Friday is Christmas; Monday 9:00 + 1 h = 10:00 (09:00 UTC).
    assert body["first_response"] == "2026-12-28T09:00:00Z"
    assert body["resolution"] == "2026-12-28T15:00:00Z"  # 1 h + 7 h: Monday 16:00


def test_due_dates_need_a_valid_start(agent_api):
    plan = SLAPlanFactory()
    response = agent_api.get(f"/api/v1/slas/{plan.pk}/due-dates?start=yesterday")
    assert response.status_code == 400 and "start" in response.json()["errors"]
    assert (
        agent_api.get("/api/v1/slas/999999/due-dates?start=2026-01-01T00:00:00Z").status_code == 404
    )


def test_admins_write_plans_and_schedules_agents_read(admin_api, agent_api, customer_api):
    schedule = admin_api.post(
        "/api/v1/schedules/", {"name": "Office", "timezone": "Europe/Paris"}, format="json"
    )
    assert schedule.status_code == 201, schedule.json()
    period = admin_api.post(
        "/api/v1/schedule-periods/",
        {"schedule": schedule.json()["id"], "weekday": 0, "start": "09:00", "end": "17:00"},
        format="json",
    )
    assert period.status_code == 201, period.json()
    plan = admin_api.post(
        "/api/v1/slas/",
        {
            "name": "Gold",
            "first_response_hours": "1.00",
            "resolution_hours": "4.00",
            "schedule": schedule.json()["id"],
        },
        format="json",
    )
    assert plan.status_code == 201, plan.json()
    assert SLAPlan.objects.get(name="Gold").schedule.name == "Office"
    assert agent_api.get("/api/v1/slas/").status_code == 200
    assert agent_api.post("/api/v1/slas/", {"name": "x"}, format="json").status_code == 403
    assert customer_api.get("/api/v1/slas/").status_code == 403


def test_schedule_validation_is_field_by_field(admin_api):
    bad = admin_api.post(
        "/api/v1/schedules/", {"name": "Nowhere", "timezone": "Mars/Olympus"}, format="json"
    )
    assert bad.status_code == 400 and "timezone" in bad.json()["errors"]


def test_business_hours_are_wall_clock_times(agent_api):
    schedule = ScheduleFactory()
    rows = agent_api.get("/api/v1/schedule-periods/?page_size=100").json()["results"]
    mine = [row for row in rows if row["schedule"] == schedule.pk]
    assert {(row["start"], row["end"]) for row in mine} == {("09:00", "17:00")}
