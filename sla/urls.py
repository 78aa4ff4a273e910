"""URLs of the SLA admin screens, included at /scp/admin/sla/."""

from django.urls import path

from . import views

app_name = "sla_admin"
urlpatterns = [
    path("", views.index, name="index"),
    path("plans/new/", views.plan_form, name="plan_create"),
    path("plans/<int:pk>/", views.plan_form, name="plan_edit"),
    *[p for p in views.plan_screen.urlpatterns() if p.name not in ("plan_create", "plan_edit")],
    path("preview/", views.preview, name="preview"),
    path("schedules/new/", views.schedule_form, name="schedule_create"),
    path("schedules/<int:pk>/", views.schedule_form, name="schedule_edit"),
    *[
        p
        for p in views.schedule_screen.urlpatterns()
        if p.name not in ("schedule_create", "schedule_edit")
    ],
    path("schedules/<int:pk>/holidays/", views.holiday_add, name="holiday_add"),
    path("schedules/<int:pk>/holidays/import/", views.holidays_import, name="holidays_import"),
    path(
        "schedules/<int:pk>/holidays/<int:holiday_pk>/delete/",
        views.holiday_delete,
        name="holiday_delete",
    ),
    path("schedules/<int:pk>/exceptions/", views.exception_add, name="exception_add"),
    path(
        "schedules/<int:pk>/exceptions/<int:exception_pk>/delete/",
        views.exception_delete,
        name="exception_delete",
    ),
]
