"""The admin section's own screens (index, settings, admin log) and `Screen`, the list /
create / edit / archive / reorder / delete views the routing, people and ticket screens share.

A `Screen` names its model, form, permission and templates; `Screen.urlpatterns()` gives
its URLs (`<name>_list`, `<name>_create`, `<name>_edit`, `<name>_delete`, and, where the
model has them, `<name>_archive`, `<name>_restore`, `<name>_move`), each behind
`admin_required(permission)`. Every write goes through a service that records the admin log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.decorators import admin_required, agent_required

from .admin_menu import admin_menu_for
from .adminlog import admin_delete, admin_form_save, admin_move, admin_set_active
from .config import settings_form_instance, settings_save
from .forms_admin import LogFilterForm, SettingsForm
from .models import AdminLogEntry

PER_PAGE = 50


def error_text(error: ValidationError) -> str:
    return " ".join(str(message) for message in error.messages)


def form_errors_apply(form: forms.BaseForm, error: ValidationError) -> None:
    """Show a service's ValidationError on the form (by field where it names fields)."""
    if hasattr(error, "error_dict"):
        for name, errors in error.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, error)


def paginate(request: HttpRequest, queryset: Any, per_page: int = PER_PAGE) -> Any:
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


@dataclass
class Screen:
    name: str
    model: type[models.Model]
    form_class: type[forms.ModelForm]
    permission: str
    section: str
    title: str
    queryset: Callable[[], models.QuerySet]
    list_template: str
    form_template: str = "admin_screens/form.html"
    archive: bool = False
    delete: bool = True
    move: bool = False
    # Objects sharing `obj`'s order (same parent), in the order shown.
    siblings: Callable[[Any], models.QuerySet] | None = None
    # Where to go after a change; default: this screen's list.
    list_url_name: str = ""
    save: Callable[..., models.Model] = field(default=admin_form_save)
    # The URL path under /scp/admin/; default: the name plus "s".
    url_path: str = ""
    # Text fields the list's search box looks in (`?q=`); none: no search box.
    search_fields: tuple[str, ...] = ()
    # Called with the objects of a list page, to attach what the rows show (one query).
    decorate: Callable[[list], None] | None = None
    # Raises ValidationError when the object must stay (beyond what the database refuses).
    delete_check: Callable[[Any], None] | None = None

    @property
    def urls(self) -> dict[str, str]:
        names = ["list", "create", "edit", "delete", "archive", "restore", "move"]
        return {name: f"staff_admin:{self.name}_{name}" for name in names}

    @property
    def list_url(self) -> str:
        return reverse(self.list_url_name or self.urls["list"])

    def context(self, **extra: Any) -> dict[str, Any]:
        return {
            "screen": self,
            "admin_section": self.section,
            "nav_active": "admin",
            "verbose_name": self.model._meta.verbose_name,
            **extra,
        }

    def get(self, pk: int) -> Any:
        return get_object_or_404(self.queryset(), pk=pk)

    # --- views ---

    def list_view(self, request: HttpRequest) -> HttpResponse:
        objects = self.queryset()
        search = request.GET.get("q", "").strip()[:100]
        if search and self.search_fields:
            condition = models.Q()
            for name in self.search_fields:
                condition |= models.Q(**{f"{name}__icontains": search})
            objects = objects.filter(condition)
        page = paginate(request, objects)
        page.object_list = list(page.object_list)
        if self.decorate is not None:
            self.decorate(page.object_list)
        return render(request, self.list_template, self.context(page_obj=page, search=search))

    def form_view(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        obj = self.get(pk) if pk is not None else None
        if request.method == "POST":
            form = self.form_class(request.POST, instance=obj)
            if form.is_valid():
                try:
                    saved = self.save(form=form, actor=request.user)
                except ValidationError as error:
                    form_errors_apply(form, error)
                else:
                    messages.success(request, _("“%(name)s” was saved.") % {"name": saved})
                    return redirect(self.list_url)
        else:
            initial = {k: v for k, v in request.GET.items() if k in self.form_class.base_fields}
            form = self.form_class(instance=obj, initial=initial)
        return render(request, self.form_template, self.context(form=form, object=obj))

    def delete_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        obj = self.get(pk)
        try:
            if self.delete_check is not None:
                self.delete_check(obj)
            admin_delete(obj=obj, actor=request.user)
        except ValidationError as error:
            messages.error(request, error_text(error))
        else:
            messages.success(request, _("“%(name)s” was deleted.") % {"name": obj})
        return redirect(self.list_url)

    def active_view(self, request: HttpRequest, pk: int, *, active: bool) -> HttpResponse:
        obj = self.get(pk)
        try:
            admin_set_active(obj=obj, active=active, actor=request.user)
        except ValidationError as error:
            messages.error(request, error_text(error))
        else:
            text = _("“%(name)s” was restored.") if active else _("“%(name)s” was archived.")
            messages.success(request, text % {"name": obj})
        return redirect(self.list_url)

    def move_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        obj = self.get(pk)
        siblings = self.siblings(obj) if self.siblings else self.model._default_manager.all()
        admin_move(
            obj=obj, siblings=siblings, up=request.POST.get("direction") == "up", actor=request.user
        )
        return redirect(self.list_url)

    def urlpatterns(self) -> list:
        guard = admin_required(self.permission)
        base = self.url_path or f"{self.name}s"
        patterns = [
            path(f"{base}/new/", guard(self.form_view), name=f"{self.name}_create"),
            path(f"{base}/<int:pk>/", guard(self.form_view), name=f"{self.name}_edit"),
        ]
        if not self.list_url_name:
            patterns.append(path(f"{base}/", guard(self.list_view), name=f"{self.name}_list"))
        if self.delete:
            patterns.append(
                path(
                    f"{base}/<int:pk>/delete/",
                    guard(require_POST(self.delete_view)),
                    name=f"{self.name}_delete",
                )
            )
        if self.archive:

            def archive(request: HttpRequest, pk: int) -> HttpResponse:
                return self.active_view(request, pk, active=False)

            def restore(request: HttpRequest, pk: int) -> HttpResponse:
                return self.active_view(request, pk, active=True)

            patterns += [
                path(
                    f"{base}/<int:pk>/archive/",
                    guard(require_POST(archive)),
                    name=f"{self.name}_archive",
                ),
                path(
                    f"{base}/<int:pk>/restore/",
                    guard(require_POST(restore)),
                    name=f"{self.name}_restore",
                ),
            ]
        if self.move:
            patterns.append(
                path(
                    f"{base}/<int:pk>/move/",
                    guard(require_POST(self.move_view)),
                    name=f"{self.name}_move",
                )
            )
        return patterns


# --- The admin section's own screens ----------------------------------------------------------


@agent_required
def index(request: HttpRequest) -> HttpResponse:
    groups = admin_menu_for(request.user)
    if not groups:
        raise PermissionDenied(_("Your role does not allow this."))
    return render(request, "admin_screens/index.html", {"groups": groups, "nav_active": "admin"})


@admin_required("admin.settings")
def settings_edit(request: HttpRequest) -> HttpResponse:
    instance = settings_form_instance()
    if request.method == "POST":
        form = SettingsForm(request.POST, instance=instance)
        if form.is_valid():
            try:
                settings_save(form=form, actor=request.user)
            except ValidationError as error:
                form_errors_apply(form, error)
            else:
                messages.success(request, _("The settings were saved."))
                return redirect("staff_admin:settings")
    else:
        form = SettingsForm(instance=instance)
    return render(
        request,
        "admin_screens/settings.html",
        {
            "form": form,
            "admin_section": "settings",
            "nav_active": "admin",
            "is_saved": instance.pk is not None,
        },
    )


@admin_required("admin.settings")
def log(request: HttpRequest) -> HttpResponse:
    form = LogFilterForm(request.GET or None)
    entries = AdminLogEntry.objects.select_related("actor")
    if form.is_bound and form.is_valid():
        if form.cleaned_data["object_type"]:
            entries = entries.filter(object_type=form.cleaned_data["object_type"])
        if form.cleaned_data["actor"] is not None:
            entries = entries.filter(actor=form.cleaned_data["actor"])
    query = request.GET.copy()
    query.pop("page", None)
    page = paginate(request, entries)
    page.object_list = list(page.object_list)
    labels = dict(form.fields["object_type"].choices)
    for entry in page.object_list:
        entry.type_label = labels.get(entry.object_type, entry.object_type)
    return render(
        request,
        "admin_screens/log.html",
        {
            "form": form,
            "page_obj": page,
            "query": query.urlencode(),
            "admin_section": "log",
            "nav_active": "admin",
        },
    )


urlpatterns = [
    path("", index, name="index"),
    path("settings/", settings_edit, name="settings"),
    path("log/", log, name="log"),
]
