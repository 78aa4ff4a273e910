"""Admin screens of ticket statuses and priorities.

A status or priority that becomes the default takes over from the previous default in the
same transaction (the database allows one default per state, and one default priority).
The default status of a state and the default priority cannot be deleted.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from helpdesk.adminlog import admin_form_save, admin_log_record
from helpdesk.models import AdminAction
from helpdesk.views_admin import Screen

from .forms_admin import PriorityForm, StatusForm
from .models import Priority, TicketStatus


def _default_handover(model: Any, obj: Any, actor: Any, **same: Any) -> None:
    """Clear the flag on the previous default (logging it) before `obj` takes it."""
    previous = model.objects.filter(is_default=True, **same).exclude(pk=obj.pk)
    for other in previous.select_for_update():
        other.is_default = False
        other.save(update_fields=["is_default"])
        admin_log_record(
            actor=actor, obj=other, action=AdminAction.UPDATE, changes={"is_default": [True, False]}
        )


@transaction.atomic
def status_save(*, form: StatusForm, actor: Any) -> TicketStatus:
    status = form.instance
    if form.cleaned_data["is_default"]:
        _default_handover(TicketStatus, status, actor, state=form.cleaned_data["state"])
    elif status.pk is not None and form.initial.get("is_default"):
        raise ValidationError(
            {"is_default": _("Make another status of this state the default instead.")}
        )
    return admin_form_save(form=form, actor=actor)  # type: ignore[return-value]


@transaction.atomic
def priority_save(*, form: PriorityForm, actor: Any) -> Priority:
    priority = form.instance
    if form.cleaned_data["is_default"]:
        _default_handover(Priority, priority, actor)
    elif priority.pk is not None and form.initial.get("is_default"):
        raise ValidationError({"is_default": _("Make another priority the default instead.")})
    return admin_form_save(form=form, actor=actor)  # type: ignore[return-value]


def _refuse_default(obj: Any) -> None:
    if obj.is_default:
        raise ValidationError(
            _("%(name)s is a default; make another one the default first.") % {"name": obj}
        )


status = Screen(
    name="status",
    model=TicketStatus,
    form_class=StatusForm,
    permission="admin.settings",
    section="statuses",
    title=gettext_lazy("Statuses"),
    queryset=lambda: TicketStatus.objects.all(),
    list_template="admin_screens/status_list.html",
    url_path="statuses",
    move=True,
    siblings=lambda obj: TicketStatus.objects.all(),
    save=status_save,
    delete_check=_refuse_default,
)

priority = Screen(
    name="priority",
    model=Priority,
    form_class=PriorityForm,
    permission="admin.settings",
    section="priorities",
    title=gettext_lazy("Priorities"),
    queryset=lambda: Priority.objects.all(),
    list_template="admin_screens/priority_list.html",
    url_path="priorities",
    save=priority_save,
    delete_check=_refuse_default,
)

urlpatterns = [*status.urlpatterns(), *priority.urlpatterns()]
