"""What the REST API reads and writes. Every serializer lists its fields explicitly, so a
field added to a model is never exposed or writable by accident."""

from __future__ import annotations

import base64
import binascii

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Agent, ApiKey, Organization, Role, User
from routing.models import CtiItem, Department, HelpTopic, Team
from tickets.models import (
    Attachment,
    BodyFormat,
    Priority,
    StatusState,
    ThreadEntry,
    ThreadEvent,
    Ticket,
    TicketStatus,
)
from tickets.services import AttachmentUpload

from .models import Webhook, WebhookDelivery, WebhookEvent

# --- small references -----------------------------------------------------------------------


class RefSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk", read_only=True)
    name = serializers.CharField(read_only=True)


class StatusRefSerializer(RefSerializer):
    state = serializers.CharField(read_only=True)


class PersonRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk", read_only=True)
    name = serializers.CharField(read_only=True)
    email = serializers.EmailField(read_only=True)


# --- tickets --------------------------------------------------------------------------------


class TicketSerializer(serializers.ModelSerializer):
    status = StatusRefSerializer(read_only=True)
    priority = RefSerializer(read_only=True)
    department = RefSerializer(read_only=True)
    help_topic = RefSerializer(read_only=True, allow_null=True)
    assignee = PersonRefSerializer(read_only=True, allow_null=True)
    team = RefSerializer(read_only=True, allow_null=True)
    customer = PersonRefSerializer(source="user", read_only=True)

    class Meta:
        model = Ticket
        fields = (
            "id",
            "number",
            "subject",
            "status",
            "priority",
            "department",
            "help_topic",
            "assignee",
            "team",
            "customer",
            "organization_id",
            "source",
            "cti_category_id",
            "cti_type_id",
            "cti_item_id",
            "due_at",
            "is_overdue",
            "is_answered",
            "created_at",
            "updated_at",
            "closed_at",
            "last_message_at",
            "last_response_at",
        )
        read_only_fields = fields


class AttachmentInSerializer(serializers.Serializer):
    """A file in a JSON body: its name, type and base64 content."""

    name = serializers.CharField(max_length=255)
    content_type = serializers.CharField(max_length=255, required=False, allow_blank=True)
    content = serializers.CharField(help_text="The file, base64-encoded.")

    def validate_content(self, value: str) -> bytes:
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise serializers.ValidationError(_("Not valid base64.")) from None


class BodySerializer(serializers.Serializer):
    body = serializers.CharField(allow_blank=True, trim_whitespace=False, default="")
    body_format = serializers.ChoiceField(BodyFormat.choices, default=BodyFormat.MARKDOWN)
    attachments = AttachmentInSerializer(many=True, required=False, default=list)

    def uploads(self) -> list[AttachmentUpload]:
        """JSON attachments, plus files sent as multipart under `files`."""
        uploads = [
            AttachmentUpload(item["name"], item["content"], item.get("content_type", ""))
            for item in self.validated_data.get("attachments") or []
        ]
        request = self.context.get("request")
        if request is not None and hasattr(request, "FILES"):
            uploads += [
                AttachmentUpload(upload.name, upload.read(), upload.content_type or "")
                for upload in request.FILES.getlist("files")
            ]
        return uploads


class TicketCreateSerializer(BodySerializer):
    subject = serializers.CharField(max_length=255)
    body_format = serializers.ChoiceField(BodyFormat.choices, default=BodyFormat.TEXT)
    customer_email = serializers.EmailField(
        required=False, help_text="Agents: the customer (found or created by address)."
    )
    customer_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    help_topic = serializers.PrimaryKeyRelatedField(
        queryset=HelpTopic.objects.all(), required=False, allow_null=True
    )
    department = serializers.PrimaryKeyRelatedField(
        queryset=Department.objects.all(), required=False, allow_null=True
    )
    priority = serializers.PrimaryKeyRelatedField(
        queryset=Priority.objects.all(), required=False, allow_null=True
    )
    status = serializers.PrimaryKeyRelatedField(
        queryset=TicketStatus.objects.all(), required=False, allow_null=True
    )
    assignee = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.all(), required=False, allow_null=True
    )
    team = serializers.PrimaryKeyRelatedField(
        queryset=Team.objects.all(), required=False, allow_null=True
    )
    cti_item = serializers.PrimaryKeyRelatedField(
        queryset=CtiItem.objects.all(), required=False, allow_null=True
    )
    collaborators = serializers.ListField(
        child=serializers.EmailField(), required=False, default=list, max_length=50
    )
    auto_respond = serializers.BooleanField(default=True)
    alert = serializers.BooleanField(default=True)

    # Fields only agents may set; a customer's key sending them is refused, not ignored.
    AGENT_ONLY = ("customer_email", "department", "priority", "status", "assignee", "team")


class TicketUpdateSerializer(serializers.Serializer):
    subject = serializers.CharField(max_length=255, required=False)
    priority = serializers.PrimaryKeyRelatedField(queryset=Priority.objects.all(), required=False)
    status = serializers.PrimaryKeyRelatedField(queryset=TicketStatus.objects.all(), required=False)
    status_comment = serializers.CharField(required=False, allow_blank=True, default="")
    help_topic = serializers.PrimaryKeyRelatedField(
        queryset=HelpTopic.objects.all(), required=False, allow_null=True
    )
    cti_item = serializers.PrimaryKeyRelatedField(
        queryset=CtiItem.objects.all(), required=False, allow_null=True
    )
    due_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Override the SLA's due date; null removes."
    )


class ReplySerializer(BodySerializer):
    status = serializers.PrimaryKeyRelatedField(
        queryset=TicketStatus.objects.all(), required=False, allow_null=True
    )


class AssignSerializer(serializers.Serializer):
    agent = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.all(), required=False, allow_null=True
    )
    team = serializers.PrimaryKeyRelatedField(
        queryset=Team.objects.all(), required=False, allow_null=True
    )
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class ReleaseSerializer(serializers.Serializer):
    agent = serializers.BooleanField(default=True)
    team = serializers.BooleanField(default=False)
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class TransferSerializer(serializers.Serializer):
    department = serializers.PrimaryKeyRelatedField(queryset=Department.objects.all())
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class CollaboratorAddSerializer(serializers.Serializer):
    email = serializers.EmailField()
    name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")


class CollaboratorSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="user.pk", read_only=True)
    name = serializers.CharField(source="user.name", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class AttachmentSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Attachment
        fields = ("id", "name", "content_type", "size", "is_inline", "download_url")
        read_only_fields = fields

    def get_download_url(self, attachment: Attachment) -> str:
        return f"/api/v1/attachments/{attachment.pk}/download"


class EntrySerializer(serializers.ModelSerializer):
    author = PersonRefSerializer(read_only=True, allow_null=True)
    attachments = AttachmentSerializer(many=True, read_only=True)

    class Meta:
        model = ThreadEntry
        fields = (
            "id",
            "kind",
            "author",
            "poster",
            "source",
            "body",
            "body_format",
            "body_html",
            "message_id",
            "created_at",
            "attachments",
        )
        read_only_fields = fields


class EventSerializer(serializers.ModelSerializer):
    actor = PersonRefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = ThreadEvent
        fields = ("id", "action", "actor", "actor_name", "data", "created_at")
        read_only_fields = fields


MAX_ID = 2**63 - 1  # the largest primary key any of the databases stores


class TicketFilterSerializer(serializers.Serializer):
    """Query parameters of the ticket list; each given at most once."""

    ORDERINGS = ("-updated_at", "updated_at", "-created_at", "created_at", "-id", "id")

    status = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    state = serializers.ChoiceField(StatusState.choices, required=False)
    priority = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    department = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    help_topic = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    cti_category = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    cti_type = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    cti_item = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    assignee = serializers.RegexField(
        r"^(me|none|[1-9][0-9]{0,18})$",
        required=False,
        help_text="An agent's user id, `me`, or `none` (unassigned).",
    )
    team = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    organization = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    customer = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    overdue = serializers.BooleanField(required=False, allow_null=True, default=None)
    updated_since = serializers.DateTimeField(required=False)
    search = serializers.CharField(required=False, max_length=200)
    ordering = serializers.ChoiceField(
        [(o, o) for o in ORDERINGS],
        required=False,
        help_text="Default `-id` (newest first); `-updated_at` with `updated_since` to sync.",
    )
    cursor = serializers.CharField(required=False)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=100)


# --- people ---------------------------------------------------------------------------------


class CustomerSerializer(serializers.ModelSerializer):
    emails = serializers.SerializerMethodField()
    organization = serializers.PrimaryKeyRelatedField(
        queryset=Organization.objects.all(), required=False, allow_null=True
    )

    class Meta:
        model = User
        fields = (
            "id",
            "email",
            "name",
            "emails",
            "phone",
            "notes",
            "organization",
            "timezone",
            "language",
            "is_active",
            "created_at",
        )
        # Deactivating an account is access management (`user.manage`), done in the UI.
        read_only_fields = ("id", "emails", "is_active", "created_at")

    @extend_schema_field(serializers.ListField(child=serializers.EmailField()))
    def get_emails(self, user: User) -> list[str]:
        return [address.email for address in user.emails.all()]


class OrganizationSerializer(serializers.ModelSerializer):
    domains = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = ("id", "name", "share_tickets", "notes", "domains", "created_at", "updated_at")
        read_only_fields = ("id", "domains", "created_at", "updated_at")

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_domains(self, organization: Organization) -> list[str]:
        return [domain.domain for domain in organization.domains.all()]


class AgentSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.CharField(source="user.name", read_only=True)
    user_id = serializers.IntegerField(read_only=True)
    teams = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Agent
        fields = (
            "id",
            "user_id",
            "email",
            "name",
            "department",
            "role",
            "is_active",
            "on_vacation",
            "assigned_only",
            "teams",
            "created_at",
        )
        read_only_fields = ("id", "user_id", "email", "name", "teams", "created_at")


class AgentCreateSerializer(serializers.Serializer):
    email = serializers.EmailField()
    name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    department = serializers.PrimaryKeyRelatedField(queryset=Department.objects.all())
    role = serializers.PrimaryKeyRelatedField(queryset=Role.objects.all())
    assigned_only = serializers.BooleanField(default=False)


# --- API keys and webhooks ------------------------------------------------------------------


class ApiKeySerializer(serializers.ModelSerializer):
    user = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.all(), required=False, allow_null=True
    )
    allowed_ips = serializers.ListField(child=serializers.CharField(), required=False, default=list)

    class Meta:
        model = ApiKey
        fields = (
            "id",
            "name",
            "prefix",
            "user",
            "is_active",
            "expires_at",
            "allowed_ips",
            "can_create_tickets",
            "can_exec_cron",
            "notes",
            "last_used_at",
            "last_used_ip",
            "created_at",
            "revoked_at",
        )
        read_only_fields = (
            "id",
            "prefix",
            "is_active",
            "last_used_at",
            "last_used_ip",
            "created_at",
            "revoked_at",
        )


class ApiKeyUpdateSerializer(ApiKeySerializer):
    """The user a key acts as never changes: make a new key for another user."""

    user = serializers.PrimaryKeyRelatedField(read_only=True)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="Shown this once; store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = (*ApiKeySerializer.Meta.fields, "key")


class WebhookSerializer(serializers.ModelSerializer):
    events = serializers.ListField(
        child=serializers.ChoiceField(WebhookEvent.choices), allow_empty=False
    )
    secret = serializers.CharField(
        write_only=True,
        required=False,
        max_length=128,
        min_length=16,
        help_text="Signs deliveries; generated when not given, and never shown again.",
    )

    class Meta:
        model = Webhook
        fields = (
            "id",
            "name",
            "url",
            "secret",
            "events",
            "is_active",
            "failure_count",
            "disabled_at",
            "disabled_reason",
            "created_at",
            "updated_at",
        )
        read_only_fields = (
            "id",
            "failure_count",
            "disabled_at",
            "disabled_reason",
            "created_at",
            "updated_at",
        )

    def validate_url(self, value: str) -> str:
        from django.core.exceptions import ValidationError

        from .webhooks import url_check

        try:
            url_check(value)
        except ValidationError as error:
            raise serializers.ValidationError(error.message_dict["url"]) from None
        return value

    def validate_events(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(read_only=True)


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = (
            "id",
            "webhook",
            "event",
            "payload",
            "status",
            "attempts",
            "response_status",
            "response_ms",
            "response_excerpt",
            "error",
            "created_at",
            "last_attempt_at",
            "next_attempt_at",
        )
        read_only_fields = fields
