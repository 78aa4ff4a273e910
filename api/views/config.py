"""REST API v1: configuration and people, readable by agents and writable by admins.

Each endpoint names the permission its writes need (`admin.routing`, `admin.staff`, ...,
`user.create`, `org.edit`); `accounts.permissions.can` decides. Rows are validated as the
admin forms validate them (`full_clean`, constraints included) before they are saved, and a
row still in use cannot be deleted (409: archive it instead).
"""

from __future__ import annotations

import copy
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models, transaction
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import permissions as drf_permissions
from rest_framework import serializers, viewsets
from rest_framework.request import Request

from accounts import permissions

from ..exceptions import BodyLimitMixin, django_errors
from ..pagination import CursorPagination
from ..schema import ERRORS

WRITE_ACTIONS = {
    "create": "create",
    "update": "edit",
    "partial_update": "edit",
    "destroy": "delete",
}


class ConfigPagination(CursorPagination):
    ordering = "pk"


class AgentReadAdminWrite(drf_permissions.BasePermission):
    """Reads: any agent (or `view.read_permission`); writes: `view.write_permission`, which
    may be a dict per action ("create", "edit", "delete")."""

    message = "You may not do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not permissions.is_agent(user):
            return False
        if request.method in drf_permissions.SAFE_METHODS:
            needed = getattr(view, "read_permission", None)
            return needed is None or permissions.can(user, needed)
        needed = view.write_permission
        if isinstance(needed, dict):
            needed = needed.get(WRITE_ACTIONS.get(view.action, "edit"))
        return needed is not None and permissions.can(user, needed)


@extend_schema_field(
    {"type": "string", "pattern": r"^[0-2][0-9]:[0-5][0-9](:[0-5][0-9])?$", "example": "09:00"}
)
class WallClockTimeField(serializers.TimeField):
    """A time of day without a zone ("09:00"): business hours. OpenAPI's `time` format
    demands an offset, which a wall-clock time in a schedule's own zone has not."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("format", "%H:%M")
        super().__init__(**kwargs)


class CleanModelSerializer(serializers.ModelSerializer):
    """Runs the model's own validation (`full_clean`, constraints included) before saving,
    so the API refuses exactly what the admin forms refuse, field by field."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.TimeField: WallClockTimeField,
    }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        model = self.Meta.model
        # A copy: the real instance changes only when the serializer saves.
        instance = copy.copy(self.instance) if self.instance is not None else model()
        many = {f.name for f in model._meta.many_to_many}
        for name, value in attrs.items():
            if name not in many:
                setattr(instance, name, value)
        try:
            instance.full_clean(exclude=list(many))
        except DjangoValidationError as error:
            raise serializers.ValidationError(django_errors(error)) from None
        return attrs


def model_serializer(
    model: type[models.Model],
    fields: tuple[str, ...],
    *,
    read_only: tuple[str, ...] = (),
    write_only: tuple[str, ...] = (),
    name: str | None = None,
) -> type[serializers.ModelSerializer]:
    meta = type(
        "Meta",
        (),
        {
            "model": model,
            "fields": ("id", *fields),
            "read_only_fields": ("id", *read_only),
            "extra_kwargs": {field: {"write_only": True} for field in write_only},
        },
    )
    return type(name or f"{model.__name__}Serializer", (CleanModelSerializer,), {"Meta": meta})


class ConfigViewSet(BodyLimitMixin, viewsets.ModelViewSet):
    permission_classes = [AgentReadAdminWrite]
    pagination_class = ConfigPagination
    lookup_value_regex = r"[0-9]+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    read_permission: str | None = None
    write_permission: str | dict[str, str] = "admin.settings"

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        with transaction.atomic():
            serializer.save()

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        with transaction.atomic():
            serializer.save()


def config_viewset(
    model: type[models.Model],
    fields: tuple[str, ...],
    *,
    write_permission: str | dict[str, str],
    tag: str,
    read_only: tuple[str, ...] = ("created_at", "updated_at"),
    write_only: tuple[str, ...] = (),
    queryset: QuerySet | None = None,
    read_permission: str | None = None,
) -> type[ConfigViewSet]:
    present = {f.name for f in model._meta.get_fields()}
    fields = tuple(f for f in fields if f in present)
    read_only = tuple(f for f in read_only if f in fields)
    serializer = model_serializer(model, fields, read_only=read_only, write_only=write_only)
    plural = model._meta.verbose_name_plural
    viewset = type(
        f"{model.__name__}ViewSet",
        (ConfigViewSet,),
        {
            "__doc__": f"{str(plural).capitalize()}: readable by agents, writable by admins.",
            "queryset": queryset if queryset is not None else model.objects.all(),
            "serializer_class": serializer,
            "write_permission": write_permission,
            "read_permission": read_permission,
        },
    )
    return extend_schema_view(
        list=extend_schema(tags=[tag], responses={200: serializer(many=True), **ERRORS}),
        retrieve=extend_schema(tags=[tag], responses={200: serializer, **ERRORS}),
        create=extend_schema(tags=[tag], responses={201: serializer, **ERRORS}),
        partial_update=extend_schema(tags=[tag], responses={200: serializer, **ERRORS}),
        destroy=extend_schema(tags=[tag], responses={204: None, **ERRORS}),
    )(viewset)
