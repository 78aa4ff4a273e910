"""Webhooks against a real HTTP receiver on loopback: signing, retries, disabling."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError

from api import webhooks
from api.models import DeliveryStatus, Webhook, WebhookDelivery, WebhookEvent
from tests.accounts.factories import agent_user, role
from tests.tickets.factories import closed_status, open_ticket
from tickets import services
from tickets.signals import ticket_created, ticket_event

pytestmark = pytest.mark.django_db


class Receiver:
    """An HTTP server in a thread that records what it is sent and answers `status`."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 204
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on loopback
    # Another module's test may have cleared the signal's receivers.
    ticket_created.connect(webhooks._on_created, dispatch_uid="api.webhooks.created")
    ticket_event.connect(webhooks._on_event, dispatch_uid="api.webhooks.event")
    server = Receiver()
    yield server
    server.close()


def hook_for(receiver, events=None, **fields) -> Webhook:
    return Webhook.objects.create(
        name="n8n",
        url=receiver.url,
        secret="a-long-shared-secret",
        events=events or [WebhookEvent.TICKET_CREATED],
        **fields,
    )


def test_a_new_ticket_is_delivered_signed(receiver, department, django_capture_on_commit_callbacks):
    hook_for(receiver)
    with django_capture_on_commit_callbacks(execute=True):
        ticket = open_ticket(department=department, subject="Printer on fire")

    [request] = receiver.requests
    headers, body = request["headers"], request["body"]
    assert headers["X-Helpdesk-Event"] == "ticket.created"
    timestamp = headers["X-Helpdesk-Timestamp"]
    expected = hmac.new(
        b"a-long-shared-secret", f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    assert headers["X-Helpdesk-Signature"] == f"sha256={expected}"
    payload = json.loads(body)
    assert payload["event"] == "ticket.created"
    assert payload["ticket"]["number"] == ticket.number
    assert payload["entry"]["body"] == "It is on fire. Please help."
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.response_status == 204
    assert delivery.response_ms is not None


def test_only_subscribed_events_are_sent(
    receiver, department, agent, django_capture_on_commit_callbacks
):
    hook_for(receiver, events=[WebhookEvent.RESPONSE_SENT, WebhookEvent.TICKET_CLOSED])
    ticket = open_ticket(department=department)
    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_note_add(ticket=ticket, by=agent, body="internal")
        services.ticket_reply(ticket=ticket, by=agent, body="Fixed", status=closed_status())
    events = [r["headers"]["X-Helpdesk-Event"] for r in receiver.requests]
    assert sorted(events) == ["response.sent", "ticket.closed"]


def test_a_failing_receiver_is_retried_then_given_up(
    receiver, department, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    receiver.status = 500
    hook_for(receiver)
    with django_capture_on_commit_callbacks(execute=True):
        open_ticket(department=department)
    # Eager tasks run the retries at once; a worker waits 30 s, 2 min, ... between them.
    assert len(receiver.requests) == 3
    ids = {r["headers"]["X-Helpdesk-Delivery"] for r in receiver.requests}
    assert len(ids) == 1  # the same delivery each time
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 3
    assert delivery.response_status == 500 and delivery.response_excerpt == "ok"


def test_backoff_grows():
    assert [webhooks.backoff(n) for n in (1, 2, 3)] == [30, 120, 480]
    assert webhooks.backoff(20) == 6 * 60 * 60


def test_a_run_of_failures_disables_the_endpoint_and_tells_the_admins(
    receiver, department, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    settings.WEBHOOK_DISABLE_AFTER = 3
    admin = agent_user(department=department, role=role("Administrator"))
    receiver.status = 503
    hook = hook_for(receiver)
    with django_capture_on_commit_callbacks(execute=True):
        open_ticket(department=department)
        open_ticket(department=department)
        open_ticket(department=department)
    hook.refresh_from_db()
    assert not hook.is_active and hook.disabled_at is not None
    assert len(receiver.requests) == 3  # nothing is sent once disabled
    [notice] = [m for m in mailoutbox if "disabled" in m.subject]
    assert notice.to == [admin.email]


def test_a_success_resets_the_failure_count(
    receiver, department, django_capture_on_commit_callbacks
):
    hook = hook_for(receiver, failure_count=4)
    with django_capture_on_commit_callbacks(execute=True):
        open_ticket(department=department)
    hook.refresh_from_db()
    assert hook.failure_count == 0


def test_private_addresses_are_refused_unless_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    for url in (
        "http://127.0.0.1/hook",
        "http://localhost:8000/",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "ftp://example.com/",
    ):
        with pytest.raises(Exception) as refused:
            webhooks.url_check(url)
        assert "url" in refused.value.message_dict, url


def test_a_delivery_to_a_private_address_fails_without_a_request(
    receiver, settings, department, django_capture_on_commit_callbacks
):
    hook_for(receiver)
    settings.WEBHOOK_ALLOW_PRIVATE = False
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    with django_capture_on_commit_callbacks(execute=True):
        open_ticket(department=department)
    assert receiver.requests == []
    assert "private" in WebhookDelivery.objects.get().error


# --- through the API ------------------------------------------------------------------------


def test_admins_register_webhooks_and_the_secret_is_shown_once(admin_api, receiver):
    response = admin_api.post(
        "/api/v1/webhooks/",
        {"name": "n8n", "url": receiver.url, "events": ["ticket.created", "note.added"]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    secret = response.json()["secret"]
    assert len(secret) > 30
    fetched = admin_api.get(f"/api/v1/webhooks/{response.json()['id']}").json()
    assert "secret" not in fetched
    assert Webhook.objects.get().secret == secret


def test_a_loopback_url_is_refused_through_the_api(admin_api, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    response = admin_api.post(
        "/api/v1/webhooks/",
        {"name": "x", "url": "http://127.0.0.1:9/", "events": ["ticket.created"]},
        format="json",
    )
    assert response.status_code == 400 and "url" in response.json()["errors"]


def test_agents_cannot_see_webhooks(agent_api):
    assert agent_api.get("/api/v1/webhooks/").status_code == 403


def test_the_log_and_redeliver(admin_api, receiver, department, django_capture_on_commit_callbacks):
    hook = hook_for(receiver)
    with django_capture_on_commit_callbacks(execute=True):
        open_ticket(department=department)
    log = admin_api.get(f"/api/v1/webhooks/{hook.pk}/deliveries").json()["results"]
    assert [row["status"] for row in log] == ["delivered"]
    with django_capture_on_commit_callbacks(execute=True):
        again = admin_api.post(f"/api/v1/webhooks/{hook.pk}/deliveries/{log[0]['id']}/redeliver")
    assert again.status_code == 202
    assert len(receiver.requests) == 2
    assert json.loads(receiver.requests[0]["body"]) == json.loads(receiver.requests[1]["body"])


def test_the_sweep_queues_deliveries_whose_retry_was_lost(receiver, department):
    from datetime import timedelta

    from django.utils import timezone

    from api.tasks import webhook_deliveries_sweep_task

    hook = hook_for(receiver)
    stuck = WebhookDelivery.objects.create(
        webhook=hook,
        event="ticket.created",
        payload={"event": "ticket.created"},
        status=DeliveryStatus.RETRYING,
        attempts=1,
        next_attempt_at=timezone.now() - timedelta(hours=1),
    )
    assert webhook_deliveries_sweep_task() == 1
    stuck.refresh_from_db()
    assert stuck.status == DeliveryStatus.DELIVERED and len(receiver.requests) == 1


# --- DNS pinning ----------------------------------------------------------------------------


@pytest.fixture
def dns(monkeypatch):
    """Answers for made-up host names, one list per lookup (the last one repeats); every
    other name goes to the real resolver. Records the lookups of the made-up names."""
    import socket

    real = socket.getaddrinfo
    answers: dict[str, list[list[str]]] = {}
    lookups: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        queue = answers[host]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        family = {4: socket.AF_INET, 6: socket.AF_INET6}
        return [
            (family[6 if ":" in a else 4], socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers, lookups


def test_a_rebinding_answer_cannot_redirect_a_delivery(
    receiver, settings, department, monkeypatch, dns, django_capture_on_commit_callbacks
):
    """The name resolves to the checked address first and to an internal one after: the
    delivery connects to the address that was checked, and looks the name up only once."""
    answers, lookups = dns
    # Stand-ins: the loopback receiver plays a public address, 10.0.0.1 the internal one.
    monkeypatch.setattr(webhooks, "_address_refused", lambda address: address != "127.0.0.1")
    settings.WEBHOOK_ALLOW_PRIVATE = False
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    port = receiver.server.server_port
    answers["hooks.example.test"] = [["127.0.0.1"], ["10.0.0.1"]]
    Webhook.objects.create(
        name="n8n",
        url=f"http://hooks.example.test:{port}/hook",
        secret="a-long-shared-secret",
        events=[WebhookEvent.TICKET_CREATED],
    )
    with django_capture_on_commit_callbacks(execute=True):
        open_ticket(department=department)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.error
    [request] = receiver.requests
    assert request["headers"]["Host"] == f"hooks.example.test:{port}"
    assert lookups == ["hooks.example.test"]


def test_a_delivery_is_refused_when_the_name_now_points_inside(
    receiver, settings, department, dns, django_capture_on_commit_callbacks
):
    """Checked when saved (a public address), internal by the time of the delivery."""
    answers, _lookups = dns
    settings.WEBHOOK_ALLOW_PRIVATE = False
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    answers["hooks.example.test"] = [["93.184.216.34"], ["127.0.0.1"]]
    webhooks.url_check("http://hooks.example.test/hook")  # the save-time check passes
    Webhook.objects.create(
        name="n8n",
        url=f"http://hooks.example.test:{receiver.server.server_port}/hook",
        secret="a-long-shared-secret",
        events=[WebhookEvent.TICKET_CREATED],
    )
    with django_capture_on_commit_callbacks(execute=True):
        open_ticket(department=department)
    assert receiver.requests == []
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED and "private" in delivery.error


def test_a_name_with_one_internal_address_among_public_ones_is_refused(settings, dns):
    answers, _lookups = dns
    settings.WEBHOOK_ALLOW_PRIVATE = False
    answers["mixed.example.test"] = [["93.184.216.34", "169.254.169.254"]]
    with pytest.raises(Exception) as refused:
        webhooks.url_check("https://mixed.example.test/")
    assert "url" in refused.value.message_dict
    answers["v6.example.test"] = [["2606:4700::1111", "fd00::1"]]
    with pytest.raises(ValidationError):
        webhooks.url_check("https://v6.example.test/")


def test_https_checks_the_certificate_against_the_name_not_the_address(settings, dns, monkeypatch):
    """The connection goes to the pinned address; SNI and the certificate check use the
    name."""
    import urllib3

    answers, _lookups = dns
    settings.WEBHOOK_ALLOW_PRIVATE = False
    answers["secure.example.test"] = [["93.184.216.34"]]
    pools: list[tuple] = []

    class Pool:
        def __init__(self, host, port, **options):
            pools.append((host, port, options))

        def urlopen(self, method, target, **kwargs):
            pools.append((method, target, kwargs["headers"]["Host"]))
            raise urllib3.exceptions.NewConnectionError(None, "unreachable in tests")

        def close(self):
            pass

    monkeypatch.setattr(urllib3, "HTTPSConnectionPool", Pool)
    with pytest.raises(urllib3.exceptions.NewConnectionError):
        webhooks._post_pinned("https://secure.example.test/in?x=1", body=b"{}", headers={})
    (host, port, options), (method, target, host_header) = pools
    assert (host, port) == ("93.184.216.34", 443)
    assert options["server_hostname"] == options["assert_hostname"] == "secure.example.test"
    assert options["cert_reqs"] == "CERT_REQUIRED"
    assert (method, target, host_header) == ("POST", "/in?x=1", "secure.example.test")


def test_tickets_the_scheduled_jobs_change_are_delivered_too(
    receiver, department, agent, settings, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from sla import jobs
    from tests.tickets.factories import status
    from tickets.models import Ticket

    hook_for(
        receiver,
        events=[
            WebhookEvent.TICKET_UPDATED,
            WebhookEvent.TICKET_STATUS_CHANGED,
            WebhookEvent.TICKET_CLOSED,
        ],
    )
    late = open_ticket(department=department, subject="Late")
    Ticket.objects.filter(pk=late.pk).update(due_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        jobs.overdue_check()
    [overdue] = [json.loads(r["body"]) for r in receiver.requests]
    assert overdue["event"] == "ticket.updated" and overdue["ticket"]["number"] == late.number
    assert overdue["ticket"]["is_overdue"] is True and overdue["change"]["action"] == "overdue"

    receiver.requests.clear()
    settings.HELPDESK_AUTO_CLOSE_DAYS = 14
    resolved = open_ticket(department=department, subject="Resolved long ago")
    services.ticket_status_set(ticket=resolved, by=agent, status=status("Resolved"))
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.auto_close(now=timezone.now() + timedelta(days=15)) == [resolved.pk]
    sent = sorted(
        (json.loads(r["body"])["event"], json.loads(r["body"])["change"]["action"])
        for r in receiver.requests
    )
    assert sent == [("ticket.closed", "auto_closed"), ("ticket.status_changed", "auto_closed")]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_endpoint_saved_after_changes_without_one_gets_the_next_change(receiver):
    """Whether any endpoint listens is kept per process (most desks have none): a webhook
    saved, switched off or on counts from the next change on."""
    from django.core.cache import cache

    from helpdesk.lib.memo import memos_forget
    from tests.routing.factories import DepartmentFactory

    cache.clear()
    memos_forget()
    department = DepartmentFactory(name="Front line")
    open_ticket(department=department)
    assert not webhooks.listened(WebhookEvent.TICKET_CREATED)
    assert WebhookDelivery.objects.count() == 0

    hook = hook_for(receiver)
    open_ticket(department=department)
    assert WebhookDelivery.objects.count() == 1

    hook.is_active = False
    hook.save()
    open_ticket(department=department)
    assert WebhookDelivery.objects.count() == 1

    hook.is_active = True
    hook.save()
    open_ticket(department=department)
    assert WebhookDelivery.objects.count() == 2
