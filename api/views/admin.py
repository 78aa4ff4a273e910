"""REST API v1: API keys and webhooks, for admins holding `admin.api`."""

from __future__ import annotations

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework import permissions as drf_permissions
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import permissions
from accounts.api_keys import (
    allowed_ips_clean,
    api_key_create,
    api_key_regenerate,
    api_key_revoke,
)
from accounts.models import ApiKey

from .. import serializers as s
from ..exceptions import BodyLimitMixin
from ..forms_admin import ReauthForm
from ..models import Webhook, WebhookDelivery
from ..pagination import CursorPagination
from ..schema import ERRORS
from ..webhooks import delivery_redeliver, secret_generate


class CanAdministerApi(drf_permissions.BasePermission):
    def has_permission(self, request: Request, view: object) -> bool:
        return permissions.can(request.user, "admin.api")


REAUTH_HELP = (
    "The password of the signed-in admin: required when the request comes with a staff "
    "session (a browser) rather than an API key, as in the admin screens."
)


class ApiKeyCreateSerializer(s.ApiKeySerializer):
    password = serializers.CharField(
        write_only=True, required=False, trim_whitespace=False, help_text=REAUTH_HELP
    )

    class Meta(s.ApiKeySerializer.Meta):
        fields = (*s.ApiKeySerializer.Meta.fields, "password")


class ReauthSerializer(serializers.Serializer):
    password = serializers.CharField(
        write_only=True, required=False, trim_whitespace=False, help_text=REAUTH_HELP
    )


def _reauthenticate(request: Request) -> None:
    """A key is handed out to a staff session only after its admin typed their password
    again (the admin screens' rule), so a hijacked browser session cannot mint keys here
    either. Requests made with an API key are authenticated by that key alone."""
    if not isinstance(request.successful_authenticator, SessionAuthentication):
        return
    data = request.data if isinstance(request.data, dict) else {}
    password = data.get("password")
    form = ReauthForm(
        {"password": password if isinstance(password, str) else ""}, user=request.user
    )
    if not form.is_valid():
        raise serializers.ValidationError({"password": form.errors["password"]})


@extend_schema_view(
    list=extend_schema(tags=["admin"], responses={200: s.ApiKeySerializer(many=True), **ERRORS}),
    retrieve=extend_schema(tags=["admin"], responses={200: s.ApiKeySerializer, **ERRORS}),
    partial_update=extend_schema(
        tags=["admin"],
        request=s.ApiKeyUpdateSerializer,
        responses={200: s.ApiKeyUpdateSerializer, **ERRORS},
    ),
)
class ApiKeyViewSet(
    BodyLimitMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """API keys: the key is shown once, when made or regenerated."""

    permission_classes = [CanAdministerApi]
    serializer_class = s.ApiKeySerializer
    queryset = ApiKey.objects.select_related("user")
    lookup_value_regex = r"[0-9]+"
    http_method_names = ["get", "post", "patch", "head", "options"]

    @extend_schema(
        tags=["admin"],
        request=ApiKeyCreateSerializer,
        responses={201: s.ApiKeyCreatedSerializer, **ERRORS},
    )
    def create(self, request: Request) -> Response:
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        _reauthenticate(request)
        data = serializer.validated_data
        new = api_key_create(
            name=data["name"],
            user=data.get("user"),
            allowed_ips=data.get("allowed_ips"),
            can_create_tickets=data.get("can_create_tickets", False),
            can_exec_cron=data.get("can_exec_cron", False),
            expires_at=data.get("expires_at"),
            notes=data.get("notes", ""),
            by=request.user,
        )
        body = s.ApiKeyCreatedSerializer(new.api_key).data
        body["key"] = new.key
        return Response(body, status=201)

    def get_serializer_class(self) -> type:
        if self.action in ("update", "partial_update"):
            return s.ApiKeyUpdateSerializer
        return s.ApiKeySerializer

    def perform_update(self, serializer: s.ApiKeySerializer) -> None:
        if "allowed_ips" in serializer.validated_data:
            serializer.validated_data["allowed_ips"] = allowed_ips_clean(
                serializer.validated_data["allowed_ips"]
            )
        with transaction.atomic():
            serializer.save()

    @extend_schema(tags=["admin"], request=None, responses={200: s.ApiKeySerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        api_key = api_key_revoke(api_key=self.get_object())
        return Response(s.ApiKeySerializer(api_key).data)

    @extend_schema(
        tags=["admin"],
        request=ReauthSerializer,
        responses={200: s.ApiKeyCreatedSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def regenerate(self, request: Request, pk: str) -> Response:
        api_key = self.get_object()
        _reauthenticate(request)
        new = api_key_regenerate(api_key=api_key)
        body = s.ApiKeyCreatedSerializer(new.api_key).data
        body["key"] = new.key
        return Response(body)


@extend_schema_view(
    list=extend_schema(tags=["admin"], responses={200: s.WebhookSerializer(many=True), **ERRORS}),
    retrieve=extend_schema(tags=["admin"], responses={200: s.WebhookSerializer, **ERRORS}),
    partial_update=extend_schema(tags=["admin"], responses={200: s.WebhookSerializer, **ERRORS}),
    destroy=extend_schema(tags=["admin"], responses={204: None, **ERRORS}),
)
class WebhookViewSet(BodyLimitMixin, viewsets.ModelViewSet):
    """Webhook endpoints and their delivery log."""

    permission_classes = [CanAdministerApi]
    serializer_class = s.WebhookSerializer
    queryset = Webhook.objects.all()
    lookup_value_regex = r"[0-9]+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @extend_schema(tags=["admin"], responses={201: s.WebhookCreatedSerializer, **ERRORS})
    def create(self, request: Request) -> Response:
        serializer = s.WebhookSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        secret = serializer.validated_data.pop("secret", "") or secret_generate()
        hook = serializer.save(secret=secret, created_by=request.user)
        return Response(s.WebhookCreatedSerializer(hook).data, status=201)

    def perform_update(self, serializer: s.WebhookSerializer) -> None:
        extra = {}
        if serializer.validated_data.get("is_active") and not serializer.instance.is_active:
            # Turned on again by an admin: a fresh start.
            extra = {"failure_count": 0, "disabled_at": None, "disabled_reason": ""}
        serializer.save(**extra)

    @extend_schema(
        tags=["admin"], responses={200: s.WebhookDeliverySerializer(many=True), **ERRORS}
    )
    @action(detail=True, methods=["get"], pagination_class=CursorPagination)
    def deliveries(self, request: Request, pk: str) -> Response:
        hook = self.get_object()
        page = self.paginate_queryset(WebhookDelivery.objects.filter(webhook=hook))
        return self.get_paginated_response(s.WebhookDeliverySerializer(page, many=True).data)

    @extend_schema(
        tags=["admin"], request=None, responses={202: s.WebhookDeliverySerializer, **ERRORS}
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"deliveries/(?P<delivery_id>[0-9]+)/redeliver",
        url_name="redeliver",
    )
    def redeliver(self, request: Request, pk: str, delivery_id: str) -> Response:
        hook = self.get_object()
        delivery = get_object_or_404(WebhookDelivery, pk=int(delivery_id), webhook=hook)
        copy = delivery_redeliver(delivery=delivery)
        copy.refresh_from_db()
        return Response(s.WebhookDeliverySerializer(copy).data, status=202)
