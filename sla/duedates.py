"""Due dates: adding business hours to an instant, across nights, weekends, holidays and
daylight-saving changes.

A `Calendar` is what a schedule means as instants: for each local date, the business
periods of that date (an exception's periods, else none on a holiday, else the weekday's),
turned into UTC intervals through the schedule's time zone. All arithmetic is done in UTC,
so an hour is always sixty minutes of real time: a 24x7 schedule equals calendar time even
on the days the clocks change, and 09:00-17:00 is eight hours on those days too.

A wall time that does not exist (02:30 on a spring-forward day) is read with the offset
before the change, as `zoneinfo` does (fold=0); an ambiguous one (fall-back) is its first
occurrence.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tickets.models import Priority

    from .models import Schedule, SLAPlan

# How far ahead to look for business hours before giving up (a schedule whose hours all lie
# in the past, or a target far larger than its hours allow).
HORIZON_DAYS = 366 * 30

Periods = list[tuple[time, time]]


class NoBusinessHours(ValueError):
    """The schedule has no business hours to count the target in."""


@dataclass(frozen=True)
class DueDates:
    """When a ticket opened (or reopened) at `start` is due: answered and resolved."""

    first_response: datetime
    resolution: datetime


def hours(value: Decimal | float | int) -> timedelta:
    """A target in (decimal) hours as a duration, to the second."""
    return timedelta(seconds=round(Decimal(value) * 3600))


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("Due dates need an aware datetime.")
    return moment.astimezone(UTC)


@dataclass
class Calendar:
    """Business hours as instants. `timezone=None` means calendar time: every instant counts.

    `weekly` maps a weekday (Monday 0) to its periods; `holidays` are dates without hours;
    `yearly` are (month, day) pairs without hours in any year; `exceptions` map a date to
    the periods that replace the usual ones (and any holiday) on it. A period ending at 00:00
    ends at midnight at the end of its day."""

    timezone: str | None = None
    weekly: dict[int, Periods] = field(default_factory=dict)
    holidays: set[date] = field(default_factory=set)
    yearly: set[tuple[int, int]] = field(default_factory=set)
    exceptions: dict[date, Periods] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._zone = zoneinfo.ZoneInfo(self.timezone) if self.timezone else None

    # --- building ---------------------------------------------------------------------------

    @classmethod
    def for_schedule(cls, schedule: Schedule | None) -> Calendar:
        """The calendar of a schedule (three queries), or calendar time for None."""
        if schedule is None:
            return cls()
        weekly: dict[int, Periods] = {}
        for weekday, start, end in schedule.periods.values_list("weekday", "start", "end"):
            weekly.setdefault(weekday, []).append((start, end))
        holidays: set[date] = set()
        yearly: set[tuple[int, int]] = set()
        for day, is_yearly in schedule.holidays.values_list("date", "is_yearly"):
            holidays.add(day)
            if is_yearly:
                yearly.add((day.month, day.day))
        exceptions: dict[date, Periods] = {}
        for day, start, end in schedule.exceptions.values_list("date", "start", "end"):
            exceptions.setdefault(day, []).append((start, end))
        return cls(
            timezone=schedule.timezone,
            weekly=weekly,
            holidays=holidays,
            yearly=yearly,
            exceptions=exceptions,
        )

    @property
    def is_calendar_time(self) -> bool:
        return self._zone is None

    # --- what a day holds -------------------------------------------------------------------

    def periods_on(self, day: date) -> Periods:
        """The business periods of a local date, as wall times."""
        if day in self.exceptions:
            return self.exceptions[day]
        if day in self.holidays or (day.month, day.day) in self.yearly:
            return []
        return self.weekly.get(day.weekday(), [])

    def intervals_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """The business periods of a local date as sorted, merged UTC intervals."""
        zone = self._zone
        assert zone is not None
        spans = []
        for start, end in self.periods_on(day):
            begin = datetime.combine(day, start, tzinfo=zone).astimezone(UTC)
            end_day = day + timedelta(days=1) if end == time(0) else day
            finish = datetime.combine(end_day, end, tzinfo=zone).astimezone(UTC)
            if finish > begin:
                spans.append((begin, finish))
        spans.sort()
        merged: list[tuple[datetime, datetime]] = []
        for begin, finish in spans:
            if merged and begin <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], finish))
            else:
                merged.append((begin, finish))
        return merged

    def _intervals_from(self, start: datetime) -> Iterable[tuple[datetime, datetime]]:
        """Business intervals from `start` on (clipped to it), day by day."""
        zone = self._zone
        assert zone is not None
        if not self.weekly and not any(p for p in self.exceptions.values()):
            raise NoBusinessHours("The schedule has no business hours.")
        # A period of the previous local day may run past midnight only up to it, so the
        # local date of `start` is the first day that can hold time after `start`.
        day = start.astimezone(zone).date()
        for _offset in range(HORIZON_DAYS):
            for begin, finish in self.intervals_on(day):
                if finish <= start:
                    continue
                yield max(begin, start), finish
            day += timedelta(days=1)
        raise NoBusinessHours("No business hours within the horizon.")

    # --- arithmetic -------------------------------------------------------------------------

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant `duration` of business time after `start` (UTC). A positive duration
        always ends inside business hours, or exactly at the end of a period."""
        start = _utc(start)
        if duration < timedelta(0):
            raise ValueError("A duration cannot be negative.")
        if self.is_calendar_time or duration == timedelta(0):
            return start + duration
        remaining = duration
        for begin, finish in self._intervals_from(start):
            available = finish - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        raise NoBusinessHours("No business hours within the horizon.")  # pragma: no cover

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Business time from `start` to `end` (zero when `end` is not after `start`)."""
        start, end = _utc(start), _utc(end)
        if end <= start:
            return timedelta(0)
        if self.is_calendar_time:
            return end - start
        total = timedelta(0)
        try:
            for begin, finish in self._intervals_from(start):
                if begin >= end:
                    break
                total += min(finish, end) - begin
        except NoBusinessHours:
            pass
        return total

    def is_business_time(self, moment: datetime) -> bool:
        """Is `moment` inside business hours (start included, end excluded)?"""
        moment = _utc(moment)
        if self.is_calendar_time:
            return True
        day = moment.astimezone(self._zone).date()
        for candidate in (day - timedelta(days=1), day):
            if any(begin <= moment < finish for begin, finish in self.intervals_on(candidate)):
                return True
        return False


def targets(plan: SLAPlan, priority: Priority | None = None) -> tuple[timedelta, timedelta]:
    """The plan's first-response and resolution targets, for `priority` when the plan sets
    targets per priority."""
    if priority is not None:
        row = (
            plan.priority_targets.filter(priority=priority)
            .values_list("first_response_hours", "resolution_hours")
            .first()
        )
        if row is not None:
            return hours(row[0]), hours(row[1])
    return hours(plan.first_response_hours), hours(plan.resolution_hours)


def due_dates(
    plan: SLAPlan,
    start: datetime,
    *,
    priority: Priority | None = None,
    paused: timedelta = timedelta(0),
    calendar: Calendar | None = None,
    target_hours: tuple[timedelta, timedelta] | None = None,
) -> DueDates:
    """When a ticket under `plan` that opened at `start` is due for its first response and
    its resolution. `paused` is business time the clock stood still (a status that pauses
    the SLA), which moves both due dates later. Raises `NoBusinessHours` when the plan's
    schedule has none."""
    calendar = calendar or Calendar.for_schedule(plan.schedule)
    first_response, resolution = target_hours or targets(plan, priority)
    return DueDates(
        first_response=calendar.add(start, first_response + paused),
        resolution=calendar.add(start, resolution + paused),
    )
