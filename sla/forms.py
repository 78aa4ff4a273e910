"""Forms of the SLA admin screens: validation only."""

from __future__ import annotations

import zoneinfo
from datetime import date

import holidays as holiday_calendars
from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tickets.models import Priority

from .models import Holiday, Period, PriorityTarget, Schedule, ScheduleException, SLAPlan


def timezone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


class TimeInput(forms.TimeInput):
    input_type = "time"

    def __init__(self, attrs: dict | None = None, format: str = "%H:%M") -> None:
        super().__init__(attrs=attrs, format=format)


class DateInput(forms.DateInput):
    input_type = "date"


class SLAPlanForm(forms.ModelForm):
    class Meta:
        model = SLAPlan
        fields = [
            "name",
            "first_response_hours",
            "resolution_hours",
            "schedule",
            "is_active",
            "escalate_on_overdue",
            "disable_alerts",
            "is_transient",
            "notes",
        ]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def clean(self) -> dict:
        cleaned = super().clean()
        first, resolution = cleaned.get("first_response_hours"), cleaned.get("resolution_hours")
        if first is not None and resolution is not None and first > resolution:
            self.add_error(
                "first_response_hours", _("The first response cannot be due after the resolution.")
            )
        return cleaned


class PriorityTargetForm(forms.ModelForm):
    class Meta:
        model = PriorityTarget
        fields = ["priority", "first_response_hours", "resolution_hours"]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["priority"].queryset = Priority.objects.order_by("urgency")

    def clean(self) -> dict:
        cleaned = super().clean()
        first, resolution = cleaned.get("first_response_hours"), cleaned.get("resolution_hours")
        if first is not None and resolution is not None and first > resolution:
            self.add_error(
                "first_response_hours", _("The first response cannot be due after the resolution.")
            )
        return cleaned


class _UniquePriorities(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        seen = set()
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or form.cleaned_data.get("DELETE"):
                continue
            priority = form.cleaned_data.get("priority")
            if priority is None:
                continue
            if priority in seen:
                form.add_error("priority", _("This priority already has targets."))
            seen.add(priority)


PriorityTargetFormSet = forms.inlineformset_factory(
    SLAPlan,
    PriorityTarget,
    form=PriorityTargetForm,
    formset=_UniquePriorities,
    extra=1,
    can_delete=True,
)


class ScheduleForm(forms.ModelForm):
    timezone = forms.ChoiceField(label=_("time zone"), choices=timezone_choices)

    class Meta:
        model = Schedule
        fields = ["name", "timezone", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 2})}


class PeriodForm(forms.ModelForm):
    class Meta:
        model = Period
        fields = ["weekday", "start", "end"]
        widgets = {"start": TimeInput(), "end": TimeInput()}


PeriodFormSet = forms.inlineformset_factory(
    Schedule, Period, form=PeriodForm, extra=2, can_delete=True
)


class HolidayForm(forms.ModelForm):
    class Meta:
        model = Holiday
        fields = ["date", "name", "is_yearly"]
        widgets = {"date": DateInput()}


class ScheduleExceptionForm(forms.ModelForm):
    class Meta:
        model = ScheduleException
        fields = ["date", "start", "end", "name"]
        widgets = {"date": DateInput(), "start": TimeInput(), "end": TimeInput()}


def country_choices() -> list[tuple[str, str]]:
    """Countries the `holidays` package knows, by ISO code, named as it names them."""
    from holidays.registry import COUNTRIES

    choices = {}
    for module, (_class_name, code, *_aliases) in COUNTRIES.items():
        choices[code] = f"{module.replace('_', ' ').title()} ({code})"
    return sorted(choices.items(), key=lambda item: item[1])


class HolidayImportForm(forms.Form):
    country = forms.ChoiceField(
        label=_("country"),
        choices=country_choices,
    )
    subdivision = forms.CharField(
        label=_("region"),
        max_length=10,
        required=False,
        help_text=_("Optional state or region code, e.g. BY for Bavaria."),
    )
    year = forms.IntegerField(label=_("year"), min_value=1970, max_value=2100)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["year"].initial = date.today().year

    def clean(self) -> dict:
        cleaned = super().clean()
        country, subdivision = cleaned.get("country"), (cleaned.get("subdivision") or "").upper()
        cleaned["subdivision"] = subdivision
        if country and subdivision:
            known = holiday_calendars.list_supported_countries().get(country, [])
            if subdivision not in known:
                self.add_error(
                    "subdivision",
                    _("%(country)s has no region %(code)s. Known: %(known)s")
                    % {"country": country, "code": subdivision, "known": ", ".join(known) or "-"},
                )
        return cleaned


class PreviewForm(forms.Form):
    plan = forms.ModelChoiceField(label=_("SLA plan"), queryset=SLAPlan.objects.all())
    start = forms.DateTimeField(
        label=_("opened at"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text=_("In the plan's schedule's time zone (calendar plans: the help desk's)."),
    )
    priority = forms.ModelChoiceField(
        label=_("priority"), queryset=Priority.objects.order_by("urgency"), required=False
    )

    def clean(self) -> dict:
        cleaned = super().clean()
        plan, start = cleaned.get("plan"), cleaned.get("start")
        if plan is not None and start is not None:
            zone = zoneinfo.ZoneInfo(
                plan.schedule.timezone if plan.schedule_id else timezone.get_default_timezone_name()
            )
            cleaned["start"] = timezone.make_aware(timezone.make_naive(start), zone)
            cleaned["zone"] = zone
        return cleaned
