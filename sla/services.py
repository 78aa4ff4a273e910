"""Writes of the SLA admin screens (each recorded in the admin log), and `due_dates`.

Changing a plan or a schedule affects due dates computed from then on (new tickets, and
tickets recomputed by a transfer, a priority or plan change, a pause ending or a reopen);
due dates already stored are not rewritten.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import holidays as holiday_calendars
from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from helpdesk.adminlog import admin_form_save, admin_log_record, display_value
from helpdesk.models import AdminAction

from .duedates import DueDates, due_dates
from .models import Holiday, Schedule, ScheduleException, SLAPlan
from .selectors import CALENDARS

__all__ = [
    "DueDates",
    "due_dates",
    "exception_add",
    "exception_delete",
    "holiday_add",
    "holiday_delete",
    "holidays_import",
    "plan_save",
    "schedule_save",
]


def _rows(queryset: Any) -> list[str]:
    return sorted(str(obj) for obj in queryset)


def _save_with_inline(
    *, form: forms.ModelForm, inline: forms.BaseInlineFormSet, actor: Any, label: str
) -> Any:
    """Save a form and its inline formset; the inline rows' change is one log entry."""
    before = _rows(inline.get_queryset()) if form.instance.pk else []
    obj = admin_form_save(form=form, actor=actor)
    inline.instance = obj
    inline.save()
    after = _rows(inline.model.objects.filter(**{inline.fk.name: obj}))
    if before != after:
        admin_log_record(
            actor=actor,
            obj=obj,
            action=AdminAction.UPDATE,
            changes={label: [display_value(before), display_value(after)]},
        )
    return obj


@transaction.atomic
def plan_save(*, form: forms.ModelForm, targets: forms.BaseInlineFormSet, actor: Any) -> SLAPlan:
    """Create or change a plan and its targets per priority (valid form and formset)."""
    return _save_with_inline(form=form, inline=targets, actor=actor, label="targets per priority")


@transaction.atomic
def schedule_save(
    *, form: forms.ModelForm, periods: forms.BaseInlineFormSet, actor: Any
) -> Schedule:
    """Create or change a schedule and its weekly business hours (valid form and formset)."""
    return _save_with_inline(form=form, inline=periods, actor=actor, label="business hours")


def _log_child(actor: Any, schedule: Schedule, label: str, before: Any, after: Any) -> None:
    admin_log_record(
        actor=actor,
        obj=schedule,
        action=AdminAction.UPDATE,
        changes={label: [display_value(before), display_value(after)]},
    )


@transaction.atomic
def holiday_add(*, schedule: Schedule, form: forms.ModelForm, actor: Any) -> Holiday:
    holiday = form.save(commit=False)
    holiday.schedule = schedule
    if Holiday.objects.filter(schedule=schedule, date=holiday.date).exists():
        raise ValidationError({"date": _("This date is already a holiday.")})
    holiday.save()
    _log_child(actor, schedule, "holidays", None, str(holiday))
    return holiday


@transaction.atomic
def holiday_delete(*, holiday: Holiday, actor: Any) -> None:
    _log_child(actor, holiday.schedule, "holidays", str(holiday), None)
    holiday.delete()


@transaction.atomic
def holidays_import(
    *, schedule: Schedule, country: str, year: int, subdivision: str = "", actor: Any
) -> list[Holiday]:
    """Add the public holidays of a country (and region) in a year, from the `holidays`
    package, as one-off dates (their dates move from year to year); dates already holidays
    are left as they are. Returns the holidays added."""
    try:
        calendar = holiday_calendars.country_holidays(
            country, subdiv=subdivision or None, years=year
        )
    except NotImplementedError as error:
        raise ValidationError({"country": str(error)}) from None
    taken: set[date] = set(schedule.holidays.filter(date__year=year).values_list("date", flat=True))
    added = [
        Holiday(schedule=schedule, date=day, name=str(name)[:128])
        for day, name in sorted(calendar.items())
        if day not in taken
    ]
    Holiday.objects.bulk_create(added)
    CALENDARS.invalidate()  # bulk_create sends no signal
    if added:
        region = f"{country}-{subdivision}" if subdivision else country
        _log_child(
            actor,
            schedule,
            "holidays",
            None,
            f"{len(added)} public holidays of {region} in {year}",
        )
    return added


@transaction.atomic
def exception_add(*, schedule: Schedule, form: forms.ModelForm, actor: Any) -> ScheduleException:
    exception = form.save(commit=False)
    exception.schedule = schedule
    exception.save()
    _log_child(actor, schedule, "exceptions", None, str(exception))
    return exception


@transaction.atomic
def exception_delete(*, exception: ScheduleException, actor: Any) -> None:
    _log_child(actor, exception.schedule, "exceptions", str(exception), None)
    exception.delete()
