"""The configuration and people endpoints, one line of fields each."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Agent, Organization, Role, User
from accounts.permissions import forget_scope
from accounts.services import agent_create, user_get_by_email, user_get_or_create_by_email
from mailgate.models import EmailTemplate, Mailbox
from routing.models import (
    BannedAddress,
    Category,
    CtiItem,
    CtiType,
    Department,
    Filter,
    FilterRule,
    HelpTopic,
    Team,
)
from sla.models import Holiday, Period, PriorityTarget, Schedule, ScheduleException, SLAPlan
from tickets.models import Priority, TicketStatus

from .. import serializers as s
from ..schema import ERRORS
from .config import ConfigViewSet, config_viewset

ROUTING = "admin.routing"

DepartmentViewSet = config_viewset(
    Department,
    (
        "name",
        "parent",
        "is_active",
        "is_public",
        "manager",
        "signature",
        "sla",
        "default_priority",
        "outgoing_mailbox",
        "auto_response",
        "assign_members_only",
        "assign_primary_only",
        "disable_claim_on_reply",
        "disable_auto_assign_on_reopen",
        "auto_assign",
        "created_at",
        "updated_at",
    ),
    write_permission=ROUTING,
    tag="configuration",
)
TeamViewSet = config_viewset(
    Team,
    ("name", "lead", "is_active", "members", "created_at", "updated_at"),
    write_permission="admin.staff",
    tag="configuration",
    queryset=Team.objects.prefetch_related("members"),
)
HelpTopicViewSet = config_viewset(
    HelpTopic,
    (
        "name",
        "parent",
        "is_public",
        "is_active",
        "department",
        "priority",
        "assignee",
        "team",
        "sla",
        "auto_response",
        "sort_order",
        "created_at",
        "updated_at",
    ),
    write_permission=ROUTING,
    tag="configuration",
)
CategoryViewSet = config_viewset(
    Category, ("name", "is_active", "sort_order"), write_permission=ROUTING, tag="configuration"
)
CtiTypeViewSet = config_viewset(
    CtiType,
    ("category", "name", "is_active", "sort_order"),
    write_permission=ROUTING,
    tag="configuration",
)
CtiItemViewSet = config_viewset(
    CtiItem,
    ("type", "name", "is_active", "sort_order"),
    write_permission=ROUTING,
    tag="configuration",
)
StatusViewSet = config_viewset(
    TicketStatus,
    ("name", "state", "is_default", "waits_on_customer", "pauses_sla", "auto_close", "sort_order"),
    write_permission="admin.settings",
    tag="configuration",
)
PriorityViewSet = config_viewset(
    Priority,
    ("name", "urgency", "color", "is_default"),
    write_permission="admin.settings",
    tag="configuration",
)
FilterViewSet = config_viewset(
    Filter,
    (
        "name",
        "sort_order",
        "is_active",
        "channel",
        "match",
        "stop_on_match",
        "notes",
        "reject",
        "department",
        "priority",
        "status",
        "help_topic",
        "cti_item",
        "assignee",
        "team",
        "sla",
        "collaborator_email",
        "disable_auto_response",
        "canned_response",
        "created_at",
        "updated_at",
    ),
    write_permission=ROUTING,
    tag="configuration",
)
FilterRuleViewSet = config_viewset(
    FilterRule,
    ("filter", "field", "header", "operator", "value"),
    write_permission=ROUTING,
    tag="configuration",
)
BannedAddressViewSet = config_viewset(
    BannedAddress,
    ("address", "reason", "created_by", "created_at"),
    read_only=("created_by", "created_at"),
    write_permission="emails.banlist",
    tag="configuration",
)
MailboxViewSet = config_viewset(
    Mailbox,
    (
        "name",
        "email",
        "protocol",
        "host",
        "port",
        "security",
        "username",
        "password",
        "folder",
        "after_fetch",
        "move_to_folder",
        "batch_size",
        "department",
        "help_topic",
        "priority",
        "is_active",
        "max_failures",
        "error_count",
        "last_error",
        "last_error_at",
        "last_fetched_at",
        "created_at",
        "updated_at",
    ),
    read_only=(
        "error_count",
        "last_error",
        "last_error_at",
        "last_fetched_at",
        "created_at",
        "updated_at",
    ),
    write_only=("password",),
    write_permission="admin.email",
    tag="configuration",
)
EmailTemplateViewSet = config_viewset(
    EmailTemplate,
    ("code", "subject", "body_text", "body_html", "is_active", "updated_at"),
    read_only=("updated_at",),
    write_permission="admin.email",
    tag="configuration",
)
RoleViewSet = config_viewset(
    Role, ("name", "permissions", "notes"), write_permission="admin.staff", tag="people"
)
OrganizationViewSet = config_viewset(
    Organization,
    ("name", "share_tickets", "notes", "created_at", "updated_at"),
    write_permission={"create": "org.create", "edit": "org.edit", "delete": "org.delete"},
    tag="people",
)


@extend_schema_view(
    list=extend_schema(tags=["people"], responses={200: s.CustomerSerializer(many=True), **ERRORS}),
    retrieve=extend_schema(tags=["people"], responses={200: s.CustomerSerializer, **ERRORS}),
    create=extend_schema(tags=["people"], responses={201: s.CustomerSerializer, **ERRORS}),
    partial_update=extend_schema(tags=["people"], responses={200: s.CustomerSerializer, **ERRORS}),
    destroy=extend_schema(tags=["people"], responses={204: None, **ERRORS}),
)
class CustomerViewSet(ConfigViewSet):
    """Customers with their email addresses (agents' and admins' accounts are not here)."""

    serializer_class = s.CustomerSerializer
    queryset = (
        User.objects.filter(agent__isnull=True, is_superuser=False)
        .select_related("organization")
        .prefetch_related("emails")
    )
    read_permission = "user.dir"
    write_permission = {"create": "user.create", "edit": "user.edit", "delete": "user.delete"}

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        data = serializer.validated_data
        if user_get_by_email(email=data["email"]) is not None:
            raise serializers.ValidationError(
                {"email": ["This address already belongs to a user."]}
            )
        with transaction.atomic():
            user = user_get_or_create_by_email(email=data["email"], name=data.get("name", ""))
            for name in ("organization", "timezone", "language", "phone", "notes"):
                if name in data:
                    setattr(user, name, data[name])
            user.save()
        serializer.instance = user

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        if "email" in serializer.validated_data:
            raise serializers.ValidationError(
                {"email": ["Add or change addresses in the staff UI, with confirmation."]}
            )
        super().perform_update(serializer)


@extend_schema_view(
    list=extend_schema(tags=["people"], responses={200: s.AgentSerializer(many=True), **ERRORS}),
    retrieve=extend_schema(tags=["people"], responses={200: s.AgentSerializer, **ERRORS}),
    partial_update=extend_schema(tags=["people"], responses={200: s.AgentSerializer, **ERRORS}),
)
class AgentViewSet(ConfigViewSet):
    """Agents; admins (`admin.staff`) add them and change their department, role and flags.
    Agents are deactivated, never deleted (their work stays attributed)."""

    serializer_class = s.AgentSerializer
    queryset = Agent.objects.select_related("user").prefetch_related("teams")
    write_permission = "admin.staff"
    http_method_names = ["get", "post", "patch", "head", "options"]

    @extend_schema(request=s.AgentCreateSerializer, responses={201: s.AgentSerializer, **ERRORS})
    def create(self, request: Request) -> Response:
        serializer = s.AgentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with transaction.atomic():
            user = user_get_or_create_by_email(email=data["email"], name=data["name"])
            if Agent.objects.filter(user=user).exists():
                raise serializers.ValidationError({"email": ["This user is an agent already."]})
            agent = agent_create(
                user=user,
                department=data["department"],
                role=data["role"],
                assigned_only=data["assigned_only"],
            )
        return Response(s.AgentSerializer(agent).data, status=201)

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        super().perform_update(serializer)
        forget_scope(serializer.instance.user)


# --- SLA ------------------------------------------------------------------------------------

SLA = "admin.sla"

ScheduleViewSet = config_viewset(
    Schedule,
    ("name", "timezone", "notes", "created_at", "updated_at"),
    write_permission=SLA,
    tag="sla",
)
PeriodViewSet = config_viewset(
    Period, ("schedule", "weekday", "start", "end"), write_permission=SLA, tag="sla"
)
HolidayViewSet = config_viewset(
    Holiday, ("schedule", "date", "name", "is_yearly"), write_permission=SLA, tag="sla"
)
ScheduleExceptionViewSet = config_viewset(
    ScheduleException,
    ("schedule", "date", "start", "end", "name"),
    write_permission=SLA,
    tag="sla",
)
PriorityTargetViewSet = config_viewset(
    PriorityTarget,
    ("plan", "priority", "first_response_hours", "resolution_hours"),
    write_permission=SLA,
    tag="sla",
)
_SLAPlanViewSet = config_viewset(
    SLAPlan,
    (
        "name",
        "first_response_hours",
        "resolution_hours",
        "schedule",
        "is_active",
        "escalate_on_overdue",
        "disable_alerts",
        "is_transient",
        "notes",
        "created_at",
        "updated_at",
    ),
    write_permission=SLA,
    tag="sla",
)


class DueDatesQuerySerializer(serializers.Serializer):
    start = serializers.DateTimeField(help_text="When the ticket opens (ISO 8601).")
    priority = serializers.PrimaryKeyRelatedField(
        queryset=Priority.objects.all(), required=False, allow_null=True
    )


class DueDatesSerializer(serializers.Serializer):
    plan = serializers.IntegerField()
    start = serializers.DateTimeField()
    first_response = serializers.DateTimeField()
    resolution = serializers.DateTimeField()


class SLAPlanViewSet(_SLAPlanViewSet):
    @extend_schema(
        tags=["sla"],
        summary="The due dates this plan gives a ticket opened at `start`",
        parameters=[DueDatesQuerySerializer],
        responses={200: DueDatesSerializer, **ERRORS},
    )
    @action(detail=True, methods=["get"], url_path="due-dates", pagination_class=None)
    def due_dates(self, request: Request, pk: str) -> Response:
        from sla.duedates import NoBusinessHours, due_dates

        plan = self.get_object()
        query = DueDatesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        start = query.validated_data["start"]
        try:
            dates = due_dates(plan, start, priority=query.validated_data.get("priority"))
        except NoBusinessHours:
            raise serializers.ValidationError(
                {"plan": ["The plan's schedule has no business hours."]}
            ) from None
        except OverflowError:
            raise serializers.ValidationError({"start": ["Out of range."]}) from None
        return Response(
            DueDatesSerializer(
                {
                    "plan": plan.pk,
                    "start": start,
                    "first_response": dates.first_response,
                    "resolution": dates.resolution,
                }
            ).data
        )
