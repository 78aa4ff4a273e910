"""Emergency access for superusers; the help desk's own SLA screens are under /scp/admin/sla/."""

from django.contrib import admin

from .models import Holiday, JobRun, Period, PriorityTarget, Schedule, ScheduleException, SLAPlan


class PeriodInline(admin.TabularInline):
    model = Period
    extra = 0


class HolidayInline(admin.TabularInline):
    model = Holiday
    extra = 0


class ScheduleExceptionInline(admin.TabularInline):
    model = ScheduleException
    extra = 0


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = ["name", "timezone"]
    inlines = [PeriodInline, HolidayInline, ScheduleExceptionInline]


class PriorityTargetInline(admin.TabularInline):
    model = PriorityTarget
    extra = 0


@admin.register(SLAPlan)
class SLAPlanAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "first_response_hours",
        "resolution_hours",
        "schedule",
        "is_active",
        "escalate_on_overdue",
        "disable_alerts",
        "is_transient",
    ]
    list_filter = ["is_active"]
    inlines = [PriorityTargetInline]


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    list_display = ["name", "started_at", "finished_at", "succeeded"]
    readonly_fields = ["name", "started_at", "finished_at", "succeeded", "error"]
