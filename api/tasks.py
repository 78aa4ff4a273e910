"""Celery tasks: webhook deliveries, retried with backoff."""

from datetime import timedelta

from celery import shared_task
from django.db import models

from .models import DeliveryStatus, WebhookDelivery


@shared_task
def webhook_deliver_task(delivery_id: int) -> str | None:
    """One attempt at a delivery; a failure schedules the next one (backoff) until the
    attempts run out. Safe to run twice: a delivery already delivered or given up, or whose
    endpoint was disabled, is left alone, and an attempt is claimed before it is made."""
    from .webhooks import backoff, delivery_attempt

    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None or delivery.status in (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED):
        return None
    if not delivery.webhook.is_active:
        return None
    if delivery_attempt(delivery) is None:
        return None  # another worker is making this attempt
    if delivery.status == DeliveryStatus.RETRYING:
        webhook_deliver_task.apply_async((delivery.pk,), countdown=backoff(delivery.attempts))
    return delivery.status


@shared_task
def webhook_deliveries_sweep_task() -> int:
    """Queue again the deliveries whose next attempt is due but whose queued task was lost
    (a worker restarted, the broker was flushed). Attempts are claimed, so a delivery still
    queued elsewhere is not sent twice."""
    from django.utils import timezone

    due = WebhookDelivery.objects.filter(
        status__in=(DeliveryStatus.PENDING, DeliveryStatus.RETRYING),
        webhook__is_active=True,
    ).filter(
        models.Q(next_attempt_at__lte=timezone.now() - timedelta(minutes=5))
        | models.Q(
            next_attempt_at__isnull=True, created_at__lte=timezone.now() - timedelta(minutes=5)
        )
    )
    ids = list(due.values_list("pk", flat=True)[:500])
    for pk in ids:
        webhook_deliver_task.delay(pk)
    return len(ids)


@shared_task
def idempotent_requests_purge_task() -> int:
    """Forget answers to idempotent requests after a day: retries come within minutes."""
    from django.utils import timezone

    from .models import IdempotentRequest

    deleted, _rows = IdempotentRequest.objects.filter(
        created_at__lt=timezone.now() - timedelta(days=1)
    ).delete()
    return deleted
