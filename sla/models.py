"""SLA plans and the business-hours schedules their due dates are counted in.

A schedule is a time zone, weekly periods ("Mon 09:00-12:30, 13:30-17:00"), holidays (one
date, or the same date every year) and exceptions (a date with hours of its own). An SLA
plan has a first-response and a resolution target in hours, optionally per priority, and
counts them in its schedule's business hours, or in calendar hours without one.

Due dates are computed by `sla.duedates`; tickets keep them (see `sla.clock`).
"""

import zoneinfo
from datetime import time
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from helpdesk.lib.models import TimeStampedModel

# Targets: at least a minute, at most a year of hours.
TARGET_VALIDATORS = [MinValueValidator(Decimal("0.02")), MaxValueValidator(Decimal("8760"))]


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not a known time zone."), params={"value": value})


class Weekday(models.IntegerChoices):
    MONDAY = 0, _("Monday")
    TUESDAY = 1, _("Tuesday")
    WEDNESDAY = 2, _("Wednesday")
    THURSDAY = 3, _("Thursday")
    FRIDAY = 4, _("Friday")
    SATURDAY = 5, _("Saturday")
    SUNDAY = 6, _("Sunday")


class Schedule(TimeStampedModel):
    name = models.CharField(_("name"), max_length=128, unique=True)
    timezone = models.CharField(
        _("time zone"),
        max_length=64,
        default="UTC",
        validators=[validate_timezone],
        help_text=_("Business hours and holidays are in this time zone (e.g. Europe/Berlin)."),
    )
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        verbose_name = _("schedule")
        verbose_name_plural = _("schedules")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def _check_period(start: time | None, end: time | None) -> None:
    # An end of 00:00 means midnight at the end of the day (24:00).
    if start is None or end is None or end == time(0):
        return
    if start >= end:
        raise ValidationError({"end": _("The end must be after the start (00:00 = 24:00).")})


class Period(models.Model):
    """Business hours on one weekday; several per day are allowed (a lunch break)."""

    schedule = models.ForeignKey(Schedule, models.CASCADE, related_name="periods")
    weekday = models.PositiveSmallIntegerField(_("day"), choices=Weekday)
    start = models.TimeField(_("from"))
    end = models.TimeField(_("until"), help_text=_("00:00 means midnight at the end of the day."))

    class Meta:
        verbose_name = _("business hours")
        verbose_name_plural = _("business hours")
        ordering = ["weekday", "start"]
        constraints = [
            models.CheckConstraint(
                condition=Q(weekday__gte=0, weekday__lte=6), name="period_weekday_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.start:%H:%M}-{self.end:%H:%M}"

    def clean(self) -> None:
        super().clean()
        _check_period(self.start, self.end)


class Holiday(models.Model):
    """A day without business hours: one date, or the same day and month every year."""

    schedule = models.ForeignKey(Schedule, models.CASCADE, related_name="holidays")
    date = models.DateField(_("date"))
    name = models.CharField(_("name"), max_length=128, blank=True)
    is_yearly = models.BooleanField(
        _("every year"), default=False, help_text=_("Also on this day and month in other years.")
    )

    class Meta:
        verbose_name = _("holiday")
        verbose_name_plural = _("holidays")
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "date"], name="holiday_unique_date"),
        ]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {self.name}".strip()


class ScheduleException(models.Model):
    """A date with hours of its own (a late opening, a Saturday on call): on that date these
    periods replace the weekly hours and any holiday. Several rows make several periods."""

    schedule = models.ForeignKey(Schedule, models.CASCADE, related_name="exceptions")
    date = models.DateField(_("date"))
    start = models.TimeField(_("from"))
    end = models.TimeField(_("until"), help_text=_("00:00 means midnight at the end of the day."))
    name = models.CharField(_("reason"), max_length=128, blank=True)

    class Meta:
        verbose_name = _("exception")
        verbose_name_plural = _("exceptions")
        ordering = ["date", "start"]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {self.start:%H:%M}-{self.end:%H:%M}"

    def clean(self) -> None:
        super().clean()
        _check_period(self.start, self.end)


class SLAPlan(TimeStampedModel):
    name = models.CharField(_("name"), max_length=128, unique=True)
    first_response_hours = models.DecimalField(
        _("first response within (hours)"),
        max_digits=7,
        decimal_places=2,
        validators=TARGET_VALIDATORS,
    )
    resolution_hours = models.DecimalField(
        _("resolution within (hours)"),
        max_digits=7,
        decimal_places=2,
        validators=TARGET_VALIDATORS,
    )
    schedule = models.ForeignKey(
        Schedule,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="plans",
        help_text=_("Targets count business hours of this schedule; none: calendar hours."),
    )
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("Inactive plans are given to no new ticket.")
    )
    escalate_on_overdue = models.BooleanField(
        _("escalate when overdue"),
        default=False,
        help_text=_("An overdue ticket's priority is raised one step."),
    )
    disable_alerts = models.BooleanField(
        _("no overdue alerts"), default=False, help_text=_("Agents are not emailed when overdue.")
    )
    is_transient = models.BooleanField(
        _("transient"),
        default=False,
        help_text=_(
            "A transfer or a new help topic replaces this plan with the new department's or "
            "topic's plan."
        ),
    )
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        verbose_name = _("SLA plan")
        verbose_name_plural = _("SLA plans")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(first_response_hours__gt=0, resolution_hours__gt=0),
                name="slaplan_targets_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PriorityTarget(models.Model):
    """Targets of a plan for one priority, replacing the plan's own (Zendesk-style)."""

    plan = models.ForeignKey(SLAPlan, models.CASCADE, related_name="priority_targets")
    priority = models.ForeignKey("tickets.Priority", models.CASCADE, related_name="+")
    first_response_hours = models.DecimalField(
        _("first response within (hours)"),
        max_digits=7,
        decimal_places=2,
        validators=TARGET_VALIDATORS,
    )
    resolution_hours = models.DecimalField(
        _("resolution within (hours)"),
        max_digits=7,
        decimal_places=2,
        validators=TARGET_VALIDATORS,
    )

    class Meta:
        verbose_name = _("target per priority")
        verbose_name_plural = _("targets per priority")
        constraints = [
            models.UniqueConstraint(fields=["plan", "priority"], name="prioritytarget_unique"),
            models.CheckConstraint(
                condition=Q(first_response_hours__gt=0, resolution_hours__gt=0),
                name="prioritytarget_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan}: {self.priority}"


class JobRun(models.Model):
    """When each scheduled job last ran through `manage.py cron` (hosts without Celery
    beat): a job is due when its interval has passed since it last started."""

    name = models.CharField(_("job"), max_length=64, unique=True)
    started_at = models.DateTimeField(_("last started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("last finished"), null=True, blank=True)
    succeeded = models.BooleanField(_("succeeded"), default=False)
    error = models.TextField(_("last error"), blank=True)

    class Meta:
        verbose_name = _("job run")
        verbose_name_plural = _("job runs")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
