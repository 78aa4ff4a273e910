"""Admin screens of SLA plans and schedules, under /scp/admin/sla/ (namespace `sla_admin`),
for agents whose role holds `admin.sla`.

Plans and schedules list, archive and delete through `helpdesk.views_admin.Screen`; their
forms carry an inline formset (targets per priority, weekly hours). A schedule's page also
adds and removes holidays and exceptions and imports a country's public holidays. The
preview shows the due dates a plan gives for a chosen opening time.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts.decorators import admin_required
from helpdesk.views_admin import Screen, form_errors_apply

from . import services
from .duedates import NoBusinessHours, due_dates
from .forms import (
    HolidayForm,
    HolidayImportForm,
    PeriodFormSet,
    PreviewForm,
    PriorityTargetFormSet,
    ScheduleExceptionForm,
    ScheduleForm,
    SLAPlanForm,
)
from .models import Holiday, Schedule, ScheduleException, SLAPlan

PERMISSION = "admin.sla"
guard = admin_required(PERMISSION)


class SlaScreen(Screen):
    """A `Screen` whose URLs live in this app's namespace."""

    @property
    def urls(self) -> dict[str, str]:
        names = ["list", "create", "edit", "delete", "archive", "restore", "move"]
        return {name: f"sla_admin:{self.name}_{name}" for name in names}

    def context(self, **extra: Any) -> dict[str, Any]:
        return super().context(default_plan=settings.HELPDESK_DEFAULT_SLA or "-", **extra)


plan_screen = SlaScreen(
    name="plan",
    model=SLAPlan,
    form_class=SLAPlanForm,
    permission=PERMISSION,
    section="sla_plans",
    title=gettext_lazy("SLA plans"),
    queryset=lambda: SLAPlan.objects.select_related("schedule").order_by("name"),
    list_template="sla/plan_list.html",
    archive=True,
    url_path="plans",
)

schedule_screen = SlaScreen(
    name="schedule",
    model=Schedule,
    form_class=ScheduleForm,
    permission=PERMISSION,
    section="schedules",
    title=gettext_lazy("Schedules"),
    queryset=lambda: Schedule.objects.prefetch_related("periods", "plans").order_by("name"),
    list_template="sla/schedule_list.html",
    url_path="schedules",
)


@guard
def plan_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    plan = plan_screen.get(pk) if pk is not None else None
    form = SLAPlanForm(request.POST or None, instance=plan)
    targets = PriorityTargetFormSet(request.POST or None, instance=plan, prefix="targets")
    if request.method == "POST" and form.is_valid() and targets.is_valid():
        try:
            saved = services.plan_save(form=form, targets=targets, actor=request.user)
        except ValidationError as error:
            form_errors_apply(form, error)
        else:
            messages.success(request, _("“%(name)s” was saved.") % {"name": saved})
            return redirect("sla_admin:plan_list")
    context = plan_screen.context(form=form, targets=targets, object=plan)
    return render(request, "sla/plan_form.html", context)


@guard
def schedule_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    schedule = schedule_screen.get(pk) if pk is not None else None
    form = ScheduleForm(request.POST or None, instance=schedule)
    periods = PeriodFormSet(request.POST or None, instance=schedule, prefix="periods")
    if request.method == "POST" and form.is_valid() and periods.is_valid():
        saved = services.schedule_save(form=form, periods=periods, actor=request.user)
        messages.success(request, _("“%(name)s” was saved.") % {"name": saved})
        return redirect("sla_admin:schedule_edit", pk=saved.pk)
    return render(request, "sla/schedule_form.html", _schedule_context(schedule, form, periods))


def _schedule_context(schedule: Schedule | None, form: Any, periods: Any, **extra: Any) -> dict:
    context = schedule_screen.context(form=form, periods=periods, object=schedule)
    if schedule is not None:
        context.update(
            holidays=schedule.holidays.all(),
            exceptions=schedule.exceptions.all(),
            holiday_form=extra.pop("holiday_form", None) or HolidayForm(prefix="holiday"),
            exception_form=extra.pop("exception_form", None)
            or ScheduleExceptionForm(prefix="exception"),
            import_form=extra.pop("import_form", None) or HolidayImportForm(prefix="import"),
        )
    context.update(extra)
    return context


def _schedule_page(request: HttpRequest, schedule: Schedule, **forms: Any) -> HttpResponse:
    """The schedule page again, with a form's errors (status 400)."""
    form = ScheduleForm(instance=schedule)
    periods = PeriodFormSet(instance=schedule, prefix="periods")
    context = _schedule_context(schedule, form, periods, **forms)
    return render(request, "sla/schedule_form.html", context, status=400)


@guard
@require_POST
def holiday_add(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = get_object_or_404(Schedule, pk=pk)
    form = HolidayForm(request.POST, prefix="holiday")
    if form.is_valid():
        try:
            holiday = services.holiday_add(schedule=schedule, form=form, actor=request.user)
        except ValidationError as error:
            form_errors_apply(form, error)
        else:
            messages.success(request, _("%(holiday)s was added.") % {"holiday": holiday})
            return redirect("sla_admin:schedule_edit", pk=pk)
    return _schedule_page(request, schedule, holiday_form=form)


@guard
@require_POST
def holiday_delete(request: HttpRequest, pk: int, holiday_pk: int) -> HttpResponse:
    holiday = get_object_or_404(Holiday, pk=holiday_pk, schedule_id=pk)
    services.holiday_delete(holiday=holiday, actor=request.user)
    messages.success(request, _("%(holiday)s was removed.") % {"holiday": holiday})
    return redirect("sla_admin:schedule_edit", pk=pk)


@guard
@require_POST
def holidays_import(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = get_object_or_404(Schedule, pk=pk)
    form = HolidayImportForm(request.POST, prefix="import")
    if form.is_valid():
        try:
            added = services.holidays_import(
                schedule=schedule,
                country=form.cleaned_data["country"],
                subdivision=form.cleaned_data["subdivision"],
                year=form.cleaned_data["year"],
                actor=request.user,
            )
        except ValidationError as error:
            form_errors_apply(form, error)
        else:
            messages.success(request, _("%(count)d holidays were added.") % {"count": len(added)})
            return redirect("sla_admin:schedule_edit", pk=pk)
    return _schedule_page(request, schedule, import_form=form)


@guard
@require_POST
def exception_add(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = get_object_or_404(Schedule, pk=pk)
    form = ScheduleExceptionForm(request.POST, prefix="exception")
    if form.is_valid():
        exception = services.exception_add(schedule=schedule, form=form, actor=request.user)
        messages.success(request, _("%(exception)s was added.") % {"exception": exception})
        return redirect("sla_admin:schedule_edit", pk=pk)
    return _schedule_page(request, schedule, exception_form=form)


@guard
@require_POST
def exception_delete(request: HttpRequest, pk: int, exception_pk: int) -> HttpResponse:
    exception = get_object_or_404(ScheduleException, pk=exception_pk, schedule_id=pk)
    services.exception_delete(exception=exception, actor=request.user)
    messages.success(request, _("%(exception)s was removed.") % {"exception": exception})
    return redirect("sla_admin:schedule_edit", pk=pk)


@guard
def preview(request: HttpRequest) -> HttpResponse:
    """Pick a plan and an opening time, see when it is due (GET, so the link can be shared)."""
    # A link from a plan (?plan=3) only preselects it; the form is sent with a start time.
    data = request.GET if "start" in request.GET else None
    form = PreviewForm(data, initial={"plan": request.GET.get("plan")})
    result = None
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            dates = due_dates(data["plan"], data["start"], priority=data["priority"])
        except NoBusinessHours:
            form.add_error("plan", _("The plan's schedule has no business hours."))
        else:
            zone = data["zone"]
            result = {
                "start": data["start"],
                "first_response": dates.first_response.astimezone(zone),
                "resolution": dates.resolution.astimezone(zone),
                "zone": zone.key,
            }
    context = plan_screen.context(
        form=form, result=result, preview_url=reverse("sla_admin:preview")
    )
    status = 400 if form.is_bound and not form.is_valid() else 200
    if request.htmx:
        return render(request, "sla/_preview_result.html", context, status=status)
    return render(request, "sla/preview.html", context, status=status)


@guard
def index(request: HttpRequest) -> HttpResponse:
    return redirect("sla_admin:plan_list")
