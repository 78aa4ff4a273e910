"""The admin screens of API keys and webhooks under /scp/admin/api/."""

import hashlib
import re

import pytest
from django.test import Client

from accounts.models import ApiKey
from api.models import Webhook, WebhookDelivery
from tests.accounts.factories import agent_user, role

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(department):
    client = Client()
    client.force_login(agent_user(department=department, role=role("Administrator")))
    return client


def test_an_admin_creates_a_key_and_sees_it_once(admin_client, agent):
    response = admin_client.post(
        "/scp/admin/api/keys/new/",
        {
            "name": "n8n",
            "user": agent.pk,
            "allowed_ips": "10.0.0.0/8, 192.0.2.1",
            "can_create_tickets": "on",
        },
    )
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    key = re.search(r'value="(hd_[^"]+)"', response.content.decode()).group(1)
    stored = ApiKey.objects.get()
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert stored.allowed_ips == ["10.0.0.0/8", "192.0.2.1/32"] and stored.can_create_tickets

    listing = admin_client.get("/scp/admin/api/keys/").content.decode()
    assert stored.prefix in listing and key not in listing and "never" in listing


def test_a_bad_address_is_a_form_error(admin_client):
    response = admin_client.post("/scp/admin/api/keys/new/", {"name": "x", "allowed_ips": "nope"})
    assert response.status_code == 200 and "not an address" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_revoke_and_regenerate(admin_client):
    admin_client.post("/scp/admin/api/keys/new/", {"name": "x"})
    key = ApiKey.objects.get()
    old_hash = key.key_hash
    regenerated = admin_client.post(f"/scp/admin/api/keys/{key.pk}/regenerate/")
    assert regenerated.status_code == 200
    key.refresh_from_db()
    assert key.key_hash != old_hash
    assert admin_client.post(f"/scp/admin/api/keys/{key.pk}/revoke/").status_code == 302
    key.refresh_from_db()
    assert not key.is_active and key.revoked_at
    assert admin_client.get(f"/scp/admin/api/keys/{key.pk}/revoke/").status_code == 405


def test_other_agents_may_not_open_the_screens(agent):
    client = Client()
    client.force_login(agent)
    assert client.get("/scp/admin/api/keys/").status_code == 403
    assert client.get("/scp/admin/api/webhooks/").status_code == 403


def test_an_admin_registers_a_webhook_and_reads_its_log(admin_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    created = admin_client.post(
        "/scp/admin/api/webhooks/new/",
        {
            "name": "n8n",
            "url": "http://127.0.0.1:9/hook",
            "events": ["ticket.created"],
            "is_active": "on",
        },
    )
    hook = Webhook.objects.get()
    assert created.status_code == 200 and hook.secret in created.content.decode()
    WebhookDelivery.objects.create(
        webhook=hook,
        event="ticket.created",
        payload={},
        status="failed",
        attempts=6,
        error="HTTP 500",
    )
    detail = admin_client.get(f"/scp/admin/api/webhooks/{hook.pk}/").content.decode()
    assert "HTTP 500" in detail and hook.secret not in detail


def test_a_private_webhook_url_is_refused_on_the_form(admin_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    response = admin_client.post(
        "/scp/admin/api/webhooks/new/",
        {"name": "x", "url": "http://169.254.169.254/", "events": ["ticket.created"]},
    )
    assert response.status_code == 200 and not Webhook.objects.exists()
