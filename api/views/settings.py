"""REST API v1: the help desk settings, one object (`helpdesk.models.HelpdeskSettings`).

Agents read them; admins holding `admin.settings` (as on the settings screen) change them.
A change is validated by the settings screen's own form and saved by
`helpdesk.config.settings_save`, so the rules, the admin log and the cache are the same.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk.config import settings_form_instance, settings_save
from helpdesk.forms_admin import SettingsForm
from helpdesk.models import HelpdeskSettings

from ..exceptions import BodyLimitMixin, django_errors
from ..schema import ERRORS
from .config import AgentReadAdminWrite

FIELDS = tuple(SettingsForm.Meta.fields)


class SettingsSerializer(serializers.ModelSerializer):
    updated_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="Null until an admin saves the settings."
    )
    is_saved = serializers.SerializerMethodField(
        help_text="False while no admin has saved the settings: the environment's apply."
    )

    class Meta:
        model = HelpdeskSettings
        fields = (*FIELDS, "is_saved", "updated_at")
        read_only_fields = ("is_saved", "updated_at")

    def get_is_saved(self, row: HelpdeskSettings) -> bool:
        return row.pk is not None


def _form_data(form: SettingsForm) -> dict[str, Any]:
    """The values the settings form shows now, as data it would be sent."""
    data: dict[str, Any] = {}
    for name in FIELDS:
        value = form[name].value()
        data[name] = "" if value is None else value
    return data


class SettingsView(BodyLimitMixin, APIView):
    """The help desk settings: agents read them, admins (`admin.settings`) change them."""

    permission_classes = [AgentReadAdminWrite]
    read_permission = None
    write_permission = "admin.settings"
    action = "update"

    @extend_schema(tags=["configuration"], responses={200: SettingsSerializer, **ERRORS})
    def get(self, request: Request) -> Response:
        return Response(SettingsSerializer(settings_form_instance()).data)

    @extend_schema(
        tags=["configuration"],
        request=SettingsSerializer,
        responses={200: SettingsSerializer, **ERRORS},
    )
    def put(self, request: Request) -> Response:
        return self._save(request, partial=False)

    @extend_schema(
        tags=["configuration"],
        request=SettingsSerializer,
        responses={200: SettingsSerializer, **ERRORS},
    )
    def patch(self, request: Request) -> Response:
        return self._save(request, partial=True)

    def _save(self, request: Request, *, partial: bool) -> Response:
        instance = settings_form_instance()
        serializer = SettingsSerializer(instance, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        # The screen's form decides what is valid: start from what it shows now, put the
        # sent values over it.
        data = _form_data(SettingsForm(instance=instance))
        for name, value in serializer.validated_data.items():
            data[name] = "" if value is None else getattr(value, "pk", value)
        form = SettingsForm(data, instance=instance)
        if not form.is_valid():
            raise DjangoValidationError(form.errors.as_data())
        try:
            row = settings_save(form=form, actor=request.user)
        except DjangoValidationError as error:
            raise serializers.ValidationError(django_errors(error)) from None
        return Response(SettingsSerializer(row).data)
