"""The due-date arithmetic: properties over many instants and durations, and fixed cases."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sla
from sla.duedates import Calendar, NoBusinessHours
from tests.sla.factories import ScheduleFactory, SLAPlanFactory, holiday

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
ZONES = ["Europe/Berlin", "America/New_York", "UTC", "Asia/Kolkata", "Australia/Lord_Howe"]
# The days the clocks change in 2026: spring forward and fall back.
DST_DAYS = {
    "Europe/Berlin": [date(2026, 3, 29), date(2026, 10, 25)],
    "America/New_York": [date(2026, 3, 8), date(2026, 11, 1)],
}

# A busy CI machine must not fail a correct result for being slow.
no_deadline = settings(deadline=None)

ALL_DAY = {day: [(time(0), time(0))] for day in range(7)}
OFFICE = {day: [(time(9), time(12, 30)), (time(13, 30), time(17))] for day in range(5)}


def office(zone: str = "Europe/Berlin", **kwargs: object) -> Calendar:
    return Calendar(timezone=zone, weekly=OFFICE, **kwargs)


instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)
durations = st.integers(min_value=1, max_value=60 * 24 * 60).map(lambda m: timedelta(minutes=m))


@st.composite
def near_dst_change(draw: st.DrawFn) -> tuple[str, datetime]:
    """A zone and an instant within two days of one of its clock changes."""
    zone = draw(st.sampled_from(sorted(DST_DAYS)))
    day = draw(st.sampled_from(DST_DAYS[zone]))
    start = datetime.combine(day, time(0), tzinfo=ZoneInfo(zone)) - timedelta(days=1)
    offset = draw(st.integers(min_value=0, max_value=3 * 24 * 60 * 60))
    return zone, start.astimezone(UTC) + timedelta(seconds=offset)


def at_period_end(calendar: Calendar, moment: datetime) -> bool:
    local = moment.astimezone(ZoneInfo(calendar.timezone)).date()
    return any(
        finish == moment
        for day in (local - timedelta(days=1), local)
        for _begin, finish in calendar.intervals_on(day)
    )


class TestProperties:
    @no_deadline
    @given(zone=st.sampled_from(ZONES), start=instants, duration=durations)
    def test_a_24x7_schedule_counts_calendar_time(self, zone, start, duration):
        assert Calendar(timezone=zone, weekly=ALL_DAY).add(start, duration) == start + duration

    @no_deadline
    @given(case=near_dst_change(), duration=durations)
    def test_a_24x7_schedule_counts_calendar_time_across_clock_changes(self, case, duration):
        zone, start = case
        calendar = Calendar(timezone=zone, weekly=ALL_DAY)
        assert calendar.add(start, duration) == start + duration
        assert calendar.between(start, start + duration) == duration

    @no_deadline
    @given(zone=st.sampled_from(ZONES), start=instants, duration=durations)
    def test_a_due_date_falls_in_business_hours_or_at_a_periods_end(self, zone, start, duration):
        calendar = office(zone, holidays={date(2026, 12, 24)}, yearly={(1, 1), (12, 25)})
        due = calendar.add(start, duration)
        assert calendar.is_business_time(due) or at_period_end(calendar, due)

    @no_deadline
    @given(
        zone=st.sampled_from(ZONES),
        start=instants,
        first=st.integers(min_value=0, max_value=60 * 200),
        second=st.integers(min_value=0, max_value=60 * 200),
    )
    def test_adding_twice_equals_adding_the_sum(self, zone, start, first, second):
        calendar = office(zone, holidays={date(2026, 5, 1)})
        h1, h2 = timedelta(minutes=first), timedelta(minutes=second)
        assert calendar.add(calendar.add(start, h1), h2) == calendar.add(start, h1 + h2)

    @no_deadline
    @given(case=near_dst_change(), duration=durations)
    def test_business_time_to_the_due_date_is_the_target_across_clock_changes(self, case, duration):
        zone, start = case
        calendar = Calendar(
            timezone=zone,
            weekly={day: [(time(1), time(4)), (time(9), time(17))] for day in range(7)},
        )
        due = calendar.add(start, duration)
        assert calendar.between(start, due) == duration
        assert calendar.is_business_time(due) or at_period_end(calendar, due)

    @no_deadline
    @given(start=instants, duration=durations, holiday_offset=st.integers(0, 30))
    def test_holidays_are_skipped(self, start, duration, holiday_offset):
        day = start.astimezone(BERLIN).date() + timedelta(days=holiday_offset)
        plain, with_holiday = office(), office(holidays={day})
        due = with_holiday.add(start, duration)
        assert due.astimezone(BERLIN).date() != day or at_period_end(with_holiday, due)
        assert due >= plain.add(start, duration)
        morning = datetime.combine(day, time(0), tzinfo=BERLIN)
        assert with_holiday.between(morning, morning + timedelta(days=1)) == timedelta(0)


class TestFixedCases:
    def test_a_spring_forward_night_has_an_hour_less(self):
        calendar = Calendar(timezone="Europe/Berlin", weekly={6: [(time(1), time(4))]})
        start = datetime(2026, 3, 29, 1, 0, tzinfo=BERLIN)
        assert calendar.between(start, datetime(2026, 3, 29, 4, 0, tzinfo=BERLIN)) == timedelta(
            hours=2
        )
        assert calendar.add(start, timedelta(hours=2)) == datetime(2026, 3, 29, 4, tzinfo=BERLIN)

    def test_a_fall_back_night_has_an_hour_more(self):
        calendar = Calendar(timezone="America/New_York", weekly={6: [(time(0), time(4))]})
        start = datetime(2026, 11, 1, 0, 0, tzinfo=NEW_YORK)
        due = calendar.add(start, timedelta(hours=5))
        assert due == datetime(2026, 11, 1, 4, 0, tzinfo=NEW_YORK)
        assert due - start == timedelta(hours=5)

    def test_nine_to_five_is_eight_hours_on_the_day_the_clocks_change(self):
        calendar = Calendar(timezone="Europe/Berlin", weekly={6: [(time(9), time(17))]})
        start = datetime(2026, 3, 29, 9, tzinfo=BERLIN)
        assert calendar.add(start, timedelta(hours=8)) == datetime(2026, 3, 29, 17, tzinfo=BERLIN)

    def test_an_exception_replaces_the_weekly_hours_and_a_holiday(self):
        saturday = date(2026, 11, 21)
        calendar = office(exceptions={saturday: [(time(10), time(12))]}, holidays={saturday})
        start = datetime(2026, 11, 20, 16, 30, tzinfo=BERLIN)  # Friday
        due = calendar.add(start, timedelta(hours=1))
        assert due == datetime(2026, 11, 21, 10, 30, tzinfo=BERLIN)

    def test_a_schedule_without_hours_refuses_to_compute(self):
        with pytest.raises(NoBusinessHours):
            Calendar(timezone="UTC").add(datetime(2026, 1, 1, tzinfo=UTC), timedelta(hours=1))

    def test_a_naive_start_is_refused(self):
        with pytest.raises(ValueError):
            office().add(datetime(2026, 1, 1), timedelta(hours=1))


@pytest.mark.django_db
class TestPlanDueDates:
    """`sla.due_dates(plan, start)`, the function the preview and the API call."""

    FRIDAY_4PM = datetime(2026, 11, 20, 16, 0, tzinfo=BERLIN)

    def test_friday_at_four_with_eight_business_hours_is_due_monday_at_four(self):
        plan = SLAPlanFactory(
            first_response_hours=Decimal(2), resolution_hours=Decimal(8), schedule=ScheduleFactory()
        )
        dates = sla.due_dates(plan, self.FRIDAY_4PM)
        assert dates.resolution == datetime(2026, 11, 23, 16, 0, tzinfo=BERLIN)
        assert dates.first_response == datetime(2026, 11, 23, 10, 0, tzinfo=BERLIN)

    def test_a_holiday_on_monday_makes_it_a_day_later(self):
        schedule = ScheduleFactory()
        holiday(schedule, date(2026, 11, 23))
        plan = SLAPlanFactory(resolution_hours=Decimal(8), schedule=schedule)
        assert sla.due_dates(plan, self.FRIDAY_4PM).resolution == datetime(
            2026, 11, 24, 16, 0, tzinfo=BERLIN
        )

    def test_a_yearly_holiday_applies_in_later_years(self):
        schedule = ScheduleFactory()
        holiday(schedule, date(2019, 11, 23), yearly=True)
        plan = SLAPlanFactory(resolution_hours=Decimal(8), schedule=schedule)
        assert sla.due_dates(plan, self.FRIDAY_4PM).resolution.astimezone(BERLIN).day == 24

    def test_without_a_schedule_hours_are_calendar_hours(self):
        plan = SLAPlanFactory(first_response_hours=Decimal("1.5"), resolution_hours=Decimal(24))
        dates = sla.due_dates(plan, self.FRIDAY_4PM)
        assert dates.first_response == self.FRIDAY_4PM + timedelta(minutes=90)
        assert dates.resolution == self.FRIDAY_4PM + timedelta(days=1)

    def test_targets_per_priority_replace_the_plans(self):
        from sla.models import PriorityTarget
        from tests.tickets.factories import priority

        plan = SLAPlanFactory(resolution_hours=Decimal(8))
        PriorityTarget.objects.create(
            plan=plan,
            priority=priority("High"),
            first_response_hours=Decimal(1),
            resolution_hours=Decimal(4),
        )
        dates = sla.due_dates(plan, self.FRIDAY_4PM, priority=priority("High"))
        assert dates.resolution == self.FRIDAY_4PM + timedelta(hours=4)
        normal = sla.due_dates(plan, self.FRIDAY_4PM, priority=priority("Normal"))
        assert normal.resolution == self.FRIDAY_4PM + timedelta(hours=8)


def test_the_package_exposes_due_dates():
    from sla import DueDates, due_dates
    from sla.duedates import DueDates as direct_class
    from sla.duedates import due_dates as direct

    assert due_dates is direct and DueDates is direct_class
