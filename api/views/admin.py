"""REST API v1: API keys and webhooks, for admins holding `admin.api`."""

from __future__ import annotations

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework import permissions as drf_permissions
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
from ..models import Webhook, WebhookDelivery
from ..pagination import CursorPagination
from ..schema import ERRORS
from ..webhooks import delivery_redeliver, secret_generate


class CanAdministerApi(drf_permissions.BasePermission):
    def has_permission(self, request: Request, view: object) -> bool:
        return permissions.can(request.user, "admin.api")


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
        request=s.ApiKeySerializer,
        responses={201: s.ApiKeyCreatedSerializer, **ERRORS},
    )
    def create(self, request: Request) -> Response:
        serializer = s.ApiKeySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
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
        tags=["admin"], request=None, responses={200: s.ApiKeyCreatedSerializer, **ERRORS}
    )
    @action(detail=True, methods=["post"])
    def regenerate(self, request: Request, pk: str) -> Response:
        new = api_key_regenerate(api_key=self.get_object())
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
