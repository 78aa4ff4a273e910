"""Webhooks: ticket events as signed JSON to the addresses admins register.

Each delivery is a POST of JSON with these headers:

* `X-Helpdesk-Event`: the event (`ticket.created`, `ticket.updated`, ...);
* `X-Helpdesk-Delivery`: the delivery's id (the same on every retry of it);
* `X-Helpdesk-Timestamp`: seconds since the epoch when this attempt was signed;
* `X-Helpdesk-Signature`: `sha256=` and the hex HMAC-SHA256, keyed with the endpoint's
  secret, of the timestamp, a dot, and the raw body (`f"{timestamp}.{body}"`). Receivers
  recompute it, compare in constant time, and refuse timestamps older than a few minutes.

A 2xx answer is success. Anything else is retried with exponential backoff up to
WEBHOOK_MAX_ATTEMPTS times; after WEBHOOK_DISABLE_AFTER failed attempts in a row the endpoint is
disabled and the admins get an email. Addresses that resolve to loopback, private, link-local,
multicast or reserved addresses (cloud metadata included) are refused unless
WEBHOOK_ALLOW_PRIVATE is set. The check runs when the URL is saved and again on every
attempt, against the addresses the name resolves to then; the attempt connects to one of
those very addresses (DNS pinning), so a rebinding DNS answer cannot slip through. Redirects
are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
from datetime import timedelta
from itertools import chain
from typing import Any
from urllib.parse import SplitResult, urlsplit

import certifi
import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext as _

from helpdesk.lib.memo import VersionedMemo
from sla.signals import tickets_auto_closed, tickets_overdue
from tickets.models import EventAction, ThreadEntry, ThreadEvent, Ticket
from tickets.signals import ticket_created, ticket_event

from .models import DeliveryStatus, Webhook, WebhookDelivery, WebhookEvent

logger = logging.getLogger(__name__)

EXCERPT = 2000
USER_AGENT = "Helpdesk-Webhooks/1"

# Which webhook events a ticket's audit event raises.
EVENTS_FOR_ACTION: dict[str, tuple[str, ...]] = {
    EventAction.MESSAGE: (WebhookEvent.MESSAGE_RECEIVED,),
    EventAction.RESPONSE: (WebhookEvent.RESPONSE_SENT,),
    EventAction.NOTE: (WebhookEvent.NOTE_ADDED,),
    EventAction.ASSIGNED: (WebhookEvent.TICKET_ASSIGNED,),
    EventAction.CLAIMED: (WebhookEvent.TICKET_ASSIGNED,),
    EventAction.CLOSED: (WebhookEvent.TICKET_STATUS_CHANGED, WebhookEvent.TICKET_CLOSED),
    EventAction.STATUS: (WebhookEvent.TICKET_STATUS_CHANGED,),
    EventAction.REOPENED: (WebhookEvent.TICKET_STATUS_CHANGED,),
}


def secret_generate() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


# --- address checks -------------------------------------------------------------------------


def _address_refused(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def _refused_error(host: str) -> ValidationError:
    return ValidationError(
        {
            "url": _(
                "%(host)s resolves to a private, loopback or link-local address, "
                "which webhooks may not call."
            )
            % {"host": host}
        }
    )


def _url_parts(url: str) -> SplitResult:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError({"url": _("Use an http:// or https:// address.")})
    if parts.username or parts.password:
        raise ValidationError({"url": _("Put no user name or password in the address.")})
    try:
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError:
        raise ValidationError({"url": _("The port is not valid.")}) from None
    return parts


def _default_port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def url_resolve(url: str) -> list[str]:
    """The addresses a webhook may connect to for `url`, in the resolver's order: every
    address the host name resolves to, all of them checked (one refused address refuses the
    URL, so a name that also points inside cannot be used). ValidationError on `url`.
    WEBHOOK_ALLOW_PRIVATE skips the check, not the resolving."""
    parts = _url_parts(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, _default_port(parts), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError, OSError):
        raise ValidationError({"url": _("The host name does not resolve.")}) from None
    addresses = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
    if not addresses:
        raise ValidationError({"url": _("The host name does not resolve.")})
    if not settings.WEBHOOK_ALLOW_PRIVATE and any(_address_refused(a) for a in addresses):
        raise _refused_error(parts.hostname or "")
    return addresses


def url_check(url: str) -> None:
    """Refuse a URL a webhook may not call (ValidationError on `url`): when it is saved.
    Each delivery checks again (`url_resolve`) and connects only to the checked address."""
    _url_parts(url)
    if settings.WEBHOOK_ALLOW_PRIVATE:
        return
    url_resolve(url)


# --- payloads -------------------------------------------------------------------------------


def ticket_payload(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.pk,
        "number": ticket.number,
        "subject": ticket.subject,
        "status": {
            "id": ticket.status_id,
            "name": ticket.status.name,
            "state": ticket.status.state,
        },
        "priority": {"id": ticket.priority_id, "name": ticket.priority.name},
        "department": {"id": ticket.department_id, "name": ticket.department.name},
        "help_topic_id": ticket.help_topic_id,
        "assignee_id": ticket.assignee_id,
        "team_id": ticket.team_id,
        "customer": {"id": ticket.user_id, "email": ticket.user.email, "name": ticket.user.name},
        "source": ticket.source,
        "is_overdue": ticket.is_overdue,
        "due_at": ticket.due_at,
        "created_at": ticket.created_at,
        "updated_at": ticket.updated_at,
        "closed_at": ticket.closed_at,
    }


def _entry_payload(entry: ThreadEntry | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {
        "id": entry.pk,
        "kind": entry.kind,
        "author_id": entry.author_id,
        "poster": entry.poster,
        "body": entry.body,
        "body_format": entry.body_format,
        "created_at": entry.created_at,
    }


def _payload(
    event: str,
    ticket: Ticket,
    *,
    audit: ThreadEvent | None = None,
    entry: ThreadEntry | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "event": event,
        "occurred_at": audit.created_at if audit else timezone.now(),
        "ticket": ticket_payload(ticket),
    }
    if audit is not None:
        payload["change"] = {
            "id": audit.pk,
            "action": audit.action,
            "actor_id": audit.actor_id,
            "actor": audit.actor_name,
            "data": audit.data,
        }
    if entry is not None:
        payload["entry"] = _entry_payload(entry)
    # Through JSON once, so dates are strings and the stored payload is what is sent.
    return json.loads(json.dumps(payload, cls=DjangoJSONEncoder))


# --- fan-out --------------------------------------------------------------------------------


def _subscribed_events() -> frozenset[str]:
    return frozenset(
        chain.from_iterable(Webhook.objects.filter(is_active=True).values_list("events", flat=True))
    )


# The events some active endpoint listens to, kept per process until a webhook is saved or
# deleted: most desks have none, and every change of a ticket asks. The automatic disabling
# (an UPDATE, no signal) leaves it wider than the truth, which only costs the fresh check in
# `deliveries_create`.
_SUBSCRIBED = VersionedMemo("api.webhook_events", _subscribed_events).watch(Webhook)


def listened(*events: str) -> bool:
    """Whether an active endpoint may be subscribed to one of `events`."""
    subscribed = _SUBSCRIBED.get()
    return any(event in subscribed for event in events)


def deliveries_create(event: str, payload_for: Any) -> list[WebhookDelivery]:
    """A delivery for each active endpoint subscribed to `event`, queued for the workers."""
    hooks = [hook for hook in Webhook.objects.filter(is_active=True) if event in hook.events]
    if not hooks:
        return []
    payload = payload_for()
    deliveries = [
        WebhookDelivery.objects.create(webhook=hook, event=event, payload=payload) for hook in hooks
    ]
    from .tasks import webhook_deliver_task

    for delivery in deliveries:
        transaction.on_commit(lambda pk=delivery.pk: webhook_deliver_task.delay(pk))
    return deliveries


@receiver(ticket_created, dispatch_uid="api.webhooks.created")
def _on_created(
    sender: Any, ticket: Ticket, entry: ThreadEntry | None = None, **kwargs: Any
) -> None:
    if not listened(WebhookEvent.TICKET_CREATED):
        return
    try:
        ticket = Ticket.objects.select_related("status", "priority", "department", "user").get(
            pk=ticket.pk
        )
        deliveries_create(
            WebhookEvent.TICKET_CREATED,
            lambda: _payload(WebhookEvent.TICKET_CREATED, ticket, entry=entry),
        )
    except Exception:  # a webhook problem must never break the change that caused it
        logger.exception("Queueing webhooks for ticket %s failed", ticket.pk)


@receiver(ticket_event, dispatch_uid="api.webhooks.event")
def _on_event(sender: Any, ticket: Ticket, event: ThreadEvent, **kwargs: Any) -> None:
    if event.action == EventAction.CREATED:
        return  # ticket_created covers it, with the first message
    names = EVENTS_FOR_ACTION.get(event.action, (WebhookEvent.TICKET_UPDATED,))
    if not listened(*names):
        return
    try:
        fresh = Ticket.objects.select_related("status", "priority", "department", "user").get(
            pk=ticket.pk
        )
        entry = None
        entry_id = (event.data or {}).get("entry")
        if entry_id:
            entry = ThreadEntry.objects.filter(pk=entry_id).first()
        for name in names:
            deliveries_create(
                name, lambda name=name: _payload(name, fresh, audit=event, entry=entry)
            )
    except Exception:
        logger.exception("Queueing webhooks for ticket %s failed", ticket.pk)


def _on_many(ticket_ids: list[int], action: str, names: tuple[str, ...]) -> None:
    """Deliveries for the tickets a scheduled job changed in one statement (the overdue
    check, auto-close): each ticket's latest event of `action` is the change. A few queries
    for the whole batch, none at all when no endpoint listens."""
    hooks = [
        hook
        for hook in Webhook.objects.filter(is_active=True)
        if any(name in hook.events for name in names)
    ]
    if not hooks or not ticket_ids:
        return
    tickets = Ticket.objects.select_related("status", "priority", "department", "user").in_bulk(
        ticket_ids
    )
    latest: dict[int, ThreadEvent] = {}
    events = ThreadEvent.objects.filter(
        thread__ticket_id__in=ticket_ids, action=action
    ).select_related("thread")
    for event in events.order_by("pk"):
        latest[event.thread.ticket_id] = event
    rows = [
        WebhookDelivery(
            webhook=hook,
            event=name,
            payload=_payload(name, ticket, audit=latest.get(ticket_id)),
        )
        for ticket_id, ticket in tickets.items()
        for name in names
        for hook in hooks
        if name in hook.events
    ]
    created = WebhookDelivery.objects.bulk_create(rows, batch_size=500)
    from .tasks import webhook_deliver_task

    # Every supported database returns the new ids; were one not to, the sweep sends them.
    ids = [row.pk for row in created if row.pk is not None]
    transaction.on_commit(lambda: [webhook_deliver_task.delay(pk) for pk in ids])


@receiver(tickets_overdue, dispatch_uid="api.webhooks.overdue")
def _on_overdue(sender: Any, ticket_ids: list[int], **kwargs: Any) -> None:
    try:
        _on_many(ticket_ids, EventAction.OVERDUE, (WebhookEvent.TICKET_UPDATED,))
    except Exception:
        logger.exception("Queueing webhooks for %d overdue tickets failed", len(ticket_ids))


@receiver(tickets_auto_closed, dispatch_uid="api.webhooks.auto_closed")
def _on_auto_closed(sender: Any, ticket_ids: list[int], **kwargs: Any) -> None:
    try:
        _on_many(
            ticket_ids,
            EventAction.AUTO_CLOSED,
            (WebhookEvent.TICKET_STATUS_CHANGED, WebhookEvent.TICKET_CLOSED),
        )
    except Exception:
        logger.exception("Queueing webhooks for %d closed tickets failed", len(ticket_ids))


# --- sending --------------------------------------------------------------------------------


def _post_pinned(url: str, *, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """POST `body` to `url` and answer (status, start of the response body).

    The host name is resolved and checked once (`url_resolve`), and the connection goes to
    an address of that answer, not to a second lookup: a name whose DNS answer changes
    between the check and the connection (DNS rebinding) still reaches only the address that
    was checked. The request keeps the name in its Host header, and HTTPS checks the
    certificate against the name (and sends it as SNI). Redirects are not followed; the
    environment's proxy settings do not apply."""
    parts = _url_parts(url)
    addresses = url_resolve(url)
    host, port = parts.hostname or "", _default_port(parts)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    timeout = urllib3.Timeout(connect=settings.WEBHOOK_TIMEOUT, read=settings.WEBHOOK_TIMEOUT)
    options: dict[str, Any] = {"timeout": timeout, "retries": False, "maxsize": 1}
    if parts.scheme == "https":
        pool_class: type[urllib3.HTTPConnectionPool] = urllib3.HTTPSConnectionPool
        options.update(
            server_hostname=host,
            assert_hostname=host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
        )
    else:
        pool_class = urllib3.HTTPConnectionPool
    last_error: Exception | None = None
    for address in addresses:
        pool = pool_class(address, port, **options)
        try:
            response = pool.urlopen(
                "POST",
                target,
                body=body,
                headers={**headers, "Host": parts.netloc},
                redirect=False,
                preload_content=False,
                assert_same_host=False,
            )
            try:
                excerpt = response.read(EXCERPT, decode_content=True) or b""
            finally:
                response.release_conn()
            return response.status, excerpt
        except (
            urllib3.exceptions.NewConnectionError,
            urllib3.exceptions.ConnectTimeoutError,
        ) as error:
            last_error = error  # this address does not answer: try the next checked one
        finally:
            pool.close()
    assert last_error is not None
    raise last_error


def backoff(attempts: int) -> int:
    """Seconds before the next attempt: 30 s, 2 min, 8 min, 32 min, about 2 h, capped at 6 h."""
    return min(30 * 4 ** max(attempts - 1, 0), 6 * 60 * 60)


def delivery_attempt(delivery: WebhookDelivery) -> bool | None:
    """Send one attempt and record it; True when the receiver answered 2xx, None when
    another worker claimed this attempt first (a conditional UPDATE on the count)."""
    claimed = WebhookDelivery.objects.filter(pk=delivery.pk, attempts=delivery.attempts).update(
        attempts=F("attempts") + 1, last_attempt_at=timezone.now()
    )
    if not claimed:
        return None
    hook = delivery.webhook
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Helpdesk-Event": delivery.event,
        "X-Helpdesk-Delivery": str(delivery.pk),
        "X-Helpdesk-Timestamp": str(timestamp),
        "X-Helpdesk-Signature": sign(hook.secret, timestamp, body),
    }
    started = time.monotonic()
    delivery.attempts += 1
    delivery.last_attempt_at = timezone.now()
    delivery.response_status, delivery.response_excerpt, delivery.error = None, "", ""
    ok = False
    try:
        status, excerpt = _post_pinned(hook.url, body=body, headers=headers)
        delivery.response_status = status
        delivery.response_excerpt = excerpt.decode("utf-8", "replace")
        ok = 200 <= status < 300
        if not ok:
            delivery.error = f"HTTP {status}"
    except ValidationError as refused:
        delivery.error = "; ".join(refused.messages)
    except (urllib3.exceptions.HTTPError, OSError) as error:
        delivery.error = f"{type(error).__name__}: {error}"[:EXCERPT]
    delivery.response_ms = int((time.monotonic() - started) * 1000)
    if ok:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.DELIVERED, None
    elif delivery.attempts < settings.WEBHOOK_MAX_ATTEMPTS:
        delivery.status = DeliveryStatus.RETRYING
        delivery.next_attempt_at = timezone.now() + timedelta(seconds=backoff(delivery.attempts))
    else:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
    delivery.save()
    _webhook_health(hook, ok=ok, error=delivery.error)
    return ok


def _webhook_health(hook: Webhook, *, ok: bool, error: str) -> None:
    if ok:
        Webhook.objects.filter(pk=hook.pk, failure_count__gt=0).update(failure_count=0)
        return
    Webhook.objects.filter(pk=hook.pk).update(failure_count=F("failure_count") + 1)
    # Disable once, by whoever crosses the line first (a conditional UPDATE).
    disabled = Webhook.objects.filter(
        pk=hook.pk, is_active=True, failure_count__gte=settings.WEBHOOK_DISABLE_AFTER
    ).update(
        is_active=False,
        disabled_at=timezone.now(),
        disabled_reason=_("%(count)d failed deliveries in a row; the last: %(error)s")
        % {"count": settings.WEBHOOK_DISABLE_AFTER, "error": error},
    )
    if disabled:
        hook.refresh_from_db()
        _tell_admins(hook)


def _tell_admins(hook: Webhook) -> None:
    from accounts.permissions import users_with

    admins = users_with("admin.api")
    if not admins:
        return
    send_mail(
        subject=_("Webhook %(name)s was disabled") % {"name": hook.name},
        message=_(
            "The webhook %(name)s (%(url)s) was disabled: %(reason)s\n\n"
            "Fix the receiver, then turn the webhook on again; failed deliveries can be "
            "redelivered from its log."
        )
        % {"name": hook.name, "url": hook.url, "reason": hook.disabled_reason},
        from_email=None,
        recipient_list=[user.email for user in admins],
        fail_silently=True,
    )


def delivery_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a logged delivery again, as a new delivery with the same payload."""
    copy = WebhookDelivery.objects.create(
        webhook=delivery.webhook, event=delivery.event, payload=delivery.payload
    )
    from .tasks import webhook_deliver_task

    transaction.on_commit(lambda: webhook_deliver_task.delay(copy.pk))
    return copy
