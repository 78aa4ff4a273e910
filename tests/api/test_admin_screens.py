"""The admin screens of API keys and webhooks under /scp/admin/api/."""

import hashlib
import re

import pytest
from django.core.cache import cache
from django.test import Client

from accounts.models import ApiKey
from api.forms_admin import reauth_failures_key
from api.models import Webhook, WebhookDelivery
from tests.accounts.factories import agent_user, role

pytestmark = pytest.mark.django_db


PASSWORD = "correct horse battery"


@pytest.fixture
def admin_client(department):
    admin = agent_user(department=department, role=role("Administrator"))
    admin.set_password(PASSWORD)
    admin.save(update_fields=["password"])
    client = Client()
    client.force_login(admin)
    client.user = admin
    # Ids come back after a rollback; another test's wrong passwords must not count here.
    cache.delete(reauth_failures_key(admin))
    yield client
    cache.delete(reauth_failures_key(admin))


def test_an_admin_creates_a_key_and_sees_it_once(admin_client, agent):
    response = admin_client.post(
        "/scp/admin/api/keys/new/",
        {
            "name": "n8n",
            "user": agent.pk,
            "allowed_ips": "10.0.0.0/8, 192.0.2.1",
            "can_create_tickets": "on",
            "password": PASSWORD,
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
    response = admin_client.post(
        "/scp/admin/api/keys/new/", {"name": "x", "allowed_ips": "nope", "password": PASSWORD}
    )
    assert response.status_code == 200 and "not an address" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_revoke_and_regenerate(admin_client):
    admin_client.post("/scp/admin/api/keys/new/", {"name": "x", "password": PASSWORD})
    key = ApiKey.objects.get()
    old_hash = key.key_hash
    regenerated = admin_client.post(
        f"/scp/admin/api/keys/{key.pk}/regenerate/", {"password": PASSWORD}
    )
    assert regenerated.status_code == 200 and regenerated["Cache-Control"] == "no-store"
    new_key = re.search(r'value="(hd_[^"]+)"', regenerated.content.decode()).group(1)
    key.refresh_from_db()
    assert key.key_hash == hashlib.sha256(new_key.encode()).hexdigest() != old_hash
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


# --- re-authentication before a key is handed out -------------------------------------------


def test_creating_a_key_needs_the_admins_password(admin_client):
    response = admin_client.post("/scp/admin/api/keys/new/", {"name": "n8n"})
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    wrong = admin_client.post("/scp/admin/api/keys/new/", {"name": "n8n", "password": "guess"})
    page = wrong.content.decode()
    assert wrong.status_code == 200 and "This is not your password" in page
    assert "hd_" not in page and "guess" not in page  # no key, and the password is not echoed
    assert not ApiKey.objects.exists()


def test_regenerating_asks_for_the_password_and_keeps_the_key_on_a_wrong_one(admin_client):
    admin_client.post("/scp/admin/api/keys/new/", {"name": "x", "password": PASSWORD})
    key = ApiKey.objects.get()
    old_hash = key.key_hash
    form = admin_client.get(f"/scp/admin/api/keys/{key.pk}/regenerate/")
    assert form.status_code == 200 and 'type="password"' in form.content.decode()
    wrong = admin_client.post(f"/scp/admin/api/keys/{key.pk}/regenerate/", {"password": "no"})
    assert wrong.status_code == 200 and "This is not your password" in wrong.content.decode()
    key.refresh_from_db()
    assert key.key_hash == old_hash


def test_wrong_passwords_lock_the_confirmation_for_a_while(admin_client):
    for _attempt in range(5):
        admin_client.post("/scp/admin/api/keys/new/", {"name": "x", "password": "guess"})
    locked = admin_client.post("/scp/admin/api/keys/new/", {"name": "x", "password": PASSWORD})
    assert "Too many wrong passwords" in locked.content.decode()
    assert not ApiKey.objects.exists()


def test_an_admin_without_a_password_is_told_to_set_one(admin_client):
    admin_client.user.set_unusable_password()
    admin_client.user.save(update_fields=["password"])
    admin_client.force_login(admin_client.user)
    response = admin_client.post("/scp/admin/api/keys/new/", {"name": "x", "password": "x"})
    assert "has no password" in response.content.decode() and not ApiKey.objects.exists()
