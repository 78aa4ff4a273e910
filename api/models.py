"""Webhooks (endpoints and their delivery log) and the memory of idempotent requests."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from helpdesk.lib.models import TimeStampedModel


class WebhookEvent(models.TextChoices):
    TICKET_CREATED = "ticket.created", _("Ticket created")
    TICKET_UPDATED = "ticket.updated", _("Ticket updated")
    TICKET_STATUS_CHANGED = "ticket.status_changed", _("Ticket status changed")
    TICKET_ASSIGNED = "ticket.assigned", _("Ticket assigned")
    TICKET_CLOSED = "ticket.closed", _("Ticket closed")
    MESSAGE_RECEIVED = "message.received", _("Message received")
    RESPONSE_SENT = "response.sent", _("Response sent")
    NOTE_ADDED = "note.added", _("Internal note added")


class Webhook(TimeStampedModel):
    """An address that hears about ticket events, signed with its own secret."""

    name = models.CharField(_("name"), max_length=128)
    url = models.URLField(_("URL"), max_length=500)
    # Write-only in the API: shown once when made; signs every delivery (HMAC-SHA256).
    secret = models.CharField(_("secret"), max_length=128)
    events = models.JSONField(_("events"), default=list)
    is_active = models.BooleanField(_("active"), default=True)
    # Failed attempts in a row; a success resets it, reaching WEBHOOK_DISABLE_AFTER disables.
    failure_count = models.PositiveIntegerField(_("failures in a row"), default=0)
    disabled_at = models.DateTimeField(_("disabled"), null=True, blank=True)
    disabled_reason = models.TextField(_("why disabled"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("webhook")
        verbose_name_plural = _("webhooks")
        ordering = ["name", "pk"]
        indexes = [
            # Each ticket event looks up the active endpoints.
            models.Index(fields=["is_active"], name="webhook_active"),
        ]

    def __str__(self) -> str:
        return self.name


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    RETRYING = "retrying", _("Retrying")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")


class WebhookDelivery(models.Model):
    """One event sent (or being sent) to one endpoint, with the outcome of its last attempt."""

    webhook = models.ForeignKey(Webhook, models.CASCADE, related_name="deliveries")
    event = models.CharField(_("event"), max_length=32, choices=WebhookEvent)
    payload = models.JSONField(_("payload"))
    status = models.CharField(
        _("status"), max_length=10, choices=DeliveryStatus, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    response_status = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    response_ms = models.PositiveIntegerField(_("response time (ms)"), null=True, blank=True)
    response_excerpt = models.TextField(_("response body (start)"), blank=True)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=DeliveryStatus.values), name="delivery_status_valid"
            ),
        ]
        indexes = [
            # The delivery log of an endpoint, newest first.
            models.Index(fields=["webhook", "created_at"], name="delivery_webhook_created"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.webhook}"


class IdempotentRequest(models.Model):
    """The answer to a POST sent with an `Idempotency-Key`, replayed when it is retried."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+")
    key = models.CharField(_("Idempotency-Key"), max_length=255)
    path = models.CharField(_("path"), max_length=255)
    request_hash = models.CharField(_("SHA-256 of the request"), max_length=64)
    # Null while the first request is still being worked on.
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("idempotent request")
        verbose_name_plural = _("idempotent requests")
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotent_user_key"),
        ]

    def __str__(self) -> str:
        return self.key
