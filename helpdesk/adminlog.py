"""The admin log, and the plain writes of the admin screens that record into it.

Every change made on an admin screen is one `AdminLogEntry`: who, when, what (type, id and
name of the object) and, for each changed field, `[before, after]` as displayed (names of
related objects, labels of choices), with passwords and secrets masked. Screens with rules of
their own (agents, roles, filters) have services in their apps that call `admin_log_record`
themselves; the rest go through `admin_form_save`, `admin_delete`, `admin_set_active` and
`admin_move` here.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models.deletion import ProtectedError, RestrictedError
from django.utils.translation import gettext as _

from .models import AdminAction, AdminLogEntry

MASK = "••••••"
SECRET_WORDS = ("password", "secret", "token", "api_key", "key_hash", "credential")


def is_secret(name: str, field: forms.Field | None = None) -> bool:
    if field is not None and isinstance(field.widget, forms.PasswordInput):
        return True
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def display_value(value: Any) -> Any:
    """A JSON-safe, human-readable rendering of a field value."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, models.QuerySet | list | tuple | set | frozenset):
        return sorted(str(display_value(item)) for item in value)
    if isinstance(value, dict):
        return {str(key): display_value(item) for key, item in value.items()}
    return str(value)


def _field_display(field: forms.Field, value: Any) -> Any:
    """The display of a form field's initial or cleaned value: names for model choices,
    labels for choices."""
    if isinstance(field, forms.ModelMultipleChoiceField):
        if value is None:
            return []
        items = list(value)
        pks = [item.pk if isinstance(item, models.Model) else item for item in items]
        model = field.queryset.model
        return sorted(str(obj) for obj in model._base_manager.filter(pk__in=pks))
    if isinstance(field, forms.ModelChoiceField):
        if value in (None, ""):
            return None
        if isinstance(value, models.Model):
            return str(value)
        obj = field.queryset.model._base_manager.filter(pk=value).first()
        return str(obj) if obj is not None else str(value)
    if isinstance(field, forms.MultipleChoiceField) and isinstance(value, list | tuple):
        return sorted(str(item) for item in value)
    if isinstance(field, forms.ChoiceField) and not isinstance(value, bool):
        labels = {str(key): label for key, label in field.choices if not isinstance(label, list)}
        if str(value) in labels and value not in ("", None):
            return str(labels[str(value)])
    return display_value(value)


def form_changes(form: forms.BaseForm, *, creating: bool = False) -> dict[str, list[Any]]:
    """{field: [before, after]} for the fields a valid form changed. On a create form every
    filled field counts, with `None` before. Secrets appear as a mask."""
    changes: dict[str, list[Any]] = {}
    names = form.changed_data if not creating else list(form.cleaned_data)
    for name in names:
        field = form.fields.get(name)
        if field is None or name not in form.cleaned_data:
            continue
        after_raw = form.cleaned_data[name]
        if creating and after_raw in (None, "", [], False) and not isinstance(after_raw, int):
            continue
        if is_secret(name, field):
            changes[name] = [None if creating else MASK, MASK]
            continue
        before = None if creating else _field_display(field, form.initial.get(name))
        after = _field_display(field, after_raw)
        if before != after:
            changes[name] = [before, after]
    return changes


def object_snapshot(obj: models.Model, *, after: bool = False) -> dict[str, list[Any]]:
    """Every concrete field (and many-to-many) of `obj` as [value, None] — what a deletion
    removes — or [None, value] with `after`."""
    values: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if field.primary_key or is_secret(field.name):
            continue
        if field.is_relation:
            values[field.name] = display_value(getattr(obj, field.name, None))
        else:
            values[field.name] = display_value(field.value_from_object(obj))
    if obj.pk is not None:
        for field in obj._meta.many_to_many:
            values[field.name] = display_value(list(getattr(obj, field.name).all()))
    return {
        name: ([None, value] if after else [value, None])
        for name, value in values.items()
        if value not in (None, "", [])
    }


def object_type(obj: models.Model | type[models.Model]) -> str:
    return obj._meta.label_lower


def admin_log_record(
    *,
    actor: Any,
    obj: models.Model,
    action: str,
    changes: dict[str, list[Any]] | None = None,
    object_id: object = None,
) -> AdminLogEntry:
    """Record one admin change. Call it inside the transaction of the change, so a change
    that rolls back leaves no entry."""
    if action not in AdminAction.values:
        raise ValueError(f"Unknown admin action {action!r}")
    pk = object_id if object_id is not None else obj.pk
    return AdminLogEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_name=(str(getattr(actor, "email", "")) if actor is not None else "")[:254],
        action=action,
        object_type=object_type(obj),
        object_id="" if pk is None else str(pk)[:64],
        object_repr=str(obj)[:255],
        changes={key: [display_value(v) for v in pair] for key, pair in (changes or {}).items()},
    )


# --- Plain admin writes -----------------------------------------------------------------------


def _in_use_message(obj: models.Model, blocking: Iterable[models.Model]) -> str:
    counts = Counter(str(item._meta.verbose_name_plural) for item in blocking)
    used_by = ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))
    hint = (
        _(" Archive it instead.")
        if any(f.name == "is_active" for f in obj._meta.concrete_fields)
        else ""
    )
    return _("%(name)s cannot be deleted: it is used by %(used)s.%(hint)s") % {
        "name": obj,
        "used": used_by,
        "hint": hint,
    }


@transaction.atomic
def admin_form_save(*, form: forms.ModelForm, actor: Any) -> models.Model:
    """Save a valid admin ModelForm (create or update) and log what changed."""
    creating = form.instance._state.adding
    changes = form_changes(form, creating=creating)
    obj = form.save()
    if creating or changes:
        admin_log_record(
            actor=actor,
            obj=obj,
            action=AdminAction.CREATE if creating else AdminAction.UPDATE,
            changes=changes,
        )
    return obj


@transaction.atomic
def admin_delete(*, obj: models.Model, actor: Any) -> None:
    """Delete `obj`, or raise ValidationError (with the model's own message, or what still
    uses it) when something refers to it."""
    snapshot = object_snapshot(obj)
    pk = obj.pk
    try:
        with transaction.atomic():
            obj.delete()
    except (ProtectedError, RestrictedError) as error:
        blocking = getattr(error, "protected_objects", None) or getattr(
            error, "restricted_objects", ()
        )
        raise ValidationError(_in_use_message(obj, blocking)) from None
    admin_log_record(
        actor=actor, obj=obj, action=AdminAction.DELETE, changes=snapshot, object_id=pk
    )


@transaction.atomic
def admin_set_active(*, obj: models.Model, active: bool, actor: Any) -> models.Model:
    """Archive (active=False) or restore an object with an `is_active` flag."""
    before = obj.is_active  # type: ignore[attr-defined]
    if before == active:
        return obj
    obj.is_active = active  # type: ignore[attr-defined]
    obj.full_clean()
    obj.save(update_fields=["is_active"])
    admin_log_record(
        actor=actor,
        obj=obj,
        action=AdminAction.RESTORE if active else AdminAction.ARCHIVE,
        changes={"is_active": [before, active]},
    )
    return obj


@transaction.atomic
def admin_move(
    *, obj: models.Model, siblings: models.QuerySet, up: bool, actor: Any
) -> models.Model:
    """Move `obj` one place up or down among `siblings` (ordered as shown, `obj` among
    them) and renumber their `sort_order` 10, 20, 30…, so equal orders cannot stall a move."""
    ordered = list(siblings.select_for_update())
    index = next((i for i, item in enumerate(ordered) if item.pk == obj.pk), None)
    if index is None:
        raise ValueError("The object is not among its siblings.")
    other = index - 1 if up else index + 1
    if not 0 <= other < len(ordered):
        return obj
    before = ordered[index].sort_order
    ordered[index], ordered[other] = ordered[other], ordered[index]
    for position, item in enumerate(ordered, start=1):
        if item.sort_order != position * 10:
            item.sort_order = position * 10
            item.save(update_fields=["sort_order"])
    moved = ordered[other]
    admin_log_record(
        actor=actor,
        obj=moved,
        action=AdminAction.UPDATE,
        changes={"sort_order": [before, moved.sort_order]},
    )
    return moved
