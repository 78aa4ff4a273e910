"""Admin screens of canned responses, under /scp/admin/canned/ (namespace `kb_admin`).

Listing and the edit form come from `helpdesk.views_admin.Screen`; saving and deleting go
through `kb.services`, which check the template and record the admin log.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.decorators import admin_required
from helpdesk.adminlog import form_changes
from helpdesk.views_admin import Screen, error_text

from . import services
from .canned import VARIABLES
from .forms import CannedResponseForm
from .models import CannedResponse

PERMISSION = "admin.settings"
guard = admin_required(PERMISSION)


def canned_save(*, form: forms.ModelForm, actor: Any) -> CannedResponse:
    changes = form_changes(form, creating=form.instance._state.adding)
    return services.canned_response_save(
        response=form.save(commit=False), by=actor, changes=changes
    )


class CannedScreen(Screen):
    """A `Screen` whose URLs live in this app's namespace."""

    @property
    def urls(self) -> dict[str, str]:
        names = ["list", "create", "edit", "delete", "archive", "restore", "move"]
        return {name: f"kb_admin:{self.name}_{name}" for name in names}

    def context(self, **extra: Any) -> dict[str, Any]:
        variables = [f"{group}.{name}" for group, names in VARIABLES.items() for name in names]
        return super().context(variables=variables, **extra)

    def delete_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        response = self.get(pk)
        try:
            services.canned_response_delete(response=response, by=request.user)
        except ValidationError as error:
            messages.error(request, error_text(error))
        else:
            messages.success(request, _("“%(name)s” was deleted.") % {"name": response})
        return redirect(self.list_url)


canned_screen = CannedScreen(
    name="canned",
    model=CannedResponse,
    form_class=CannedResponseForm,
    permission=PERMISSION,
    section="canned",
    title=gettext_lazy("Canned responses"),
    queryset=lambda: CannedResponse.objects.select_related("department").order_by("title", "pk"),
    list_template="kb/admin/canned_list.html",
    form_template="kb/admin/canned_form.html",
    save=canned_save,
    search_fields=("title", "body"),
)
