"""API keys: made with enough entropy, shown once, stored hashed; managed by admins."""

import hashlib
import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.api_keys import SERVICE_ACCOUNT_EMAIL, api_key_create, client_ip
from accounts.models import ApiKey
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_key_is_stored_only_as_its_hash_with_a_visible_prefix(agent):
    new = api_key_create(name="n8n", user=agent)
    stored = ApiKey.objects.get()
    assert len(new.key) >= 43  # 32 random bytes, URL-safe base64
    assert stored.key_hash == hashlib.sha256(new.key.encode()).hexdigest()
    assert new.key not in {str(value) for value in stored.__dict__.values()}
    assert new.key.startswith(stored.prefix) and len(stored.prefix) == 10


def test_the_command_prints_the_key_alone_on_its_last_line():
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "create_api_key",
        "--name",
        "monitoring",
        "--ip",
        "10.0.0.0/8",
        "--ip",
        "192.0.2.7",
        "--can-exec-cron",
        stdout=out,
        stderr=err,
    )
    key = out.getvalue().strip().splitlines()[-1]
    stored = ApiKey.objects.get()
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert stored.user.email == SERVICE_ACCOUNT_EMAIL
    assert stored.allowed_ips == ["10.0.0.0/8", "192.0.2.7/32"]
    assert stored.can_exec_cron and not stored.can_create_tickets


def test_the_command_acts_as_a_named_user_and_refuses_bad_input():
    user = UserFactory(email="n8n@example.com")
    out = io.StringIO()
    call_command("create_api_key", "--name", "n8n", "--user", "N8N@example.com", stdout=out)
    assert ApiKey.objects.get().user == user
    with pytest.raises(CommandError, match="no user"):
        call_command("create_api_key", "--name", "x", "--user", "nobody@example.com")
    with pytest.raises(CommandError, match="not an address"):
        call_command("create_api_key", "--name", "x", "--ip", "999.1.1.1")


def test_a_forwarded_address_counts_only_from_a_trusted_proxy(settings):
    meta = {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "198.51.100.9, 10.0.0.5"}
    assert client_ip(meta) == "10.0.0.5"
    settings.HELPDESK_TRUSTED_PROXIES = ["10.0.0.0/24"]
    assert client_ip(meta) == "198.51.100.9"
    assert client_ip({**meta, "REMOTE_ADDR": "10.0.1.5"}) == "10.0.1.5"


def test_admins_create_list_revoke_and_regenerate_keys(admin_api, agent):
    created = admin_api.post(
        "/api/v1/api-keys/",
        {"name": "zapier", "user": agent.pk, "allowed_ips": ["127.0.0.1"]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    key, key_id = created.json()["key"], created.json()["id"]
    listed = admin_api.get("/api/v1/api-keys/").json()["results"]
    assert all("key" not in row and "key_hash" not in row for row in listed)

    client = APIClient(HTTP_X_API_KEY=key)
    assert client.get("/api/v1/tickets/").status_code == 200
    used = admin_api.get(f"/api/v1/api-keys/{key_id}").json()
    assert used["last_used_at"] and used["last_used_ip"] == "127.0.0.1"

    regenerated = admin_api.post(f"/api/v1/api-keys/{key_id}/regenerate").json()
    assert client.get("/api/v1/tickets/").status_code == 401
    client.credentials(HTTP_X_API_KEY=regenerated["key"])
    assert client.get("/api/v1/tickets/").status_code == 200

    revoked = admin_api.post(f"/api/v1/api-keys/{key_id}/revoke").json()
    assert revoked["is_active"] is False and revoked["revoked_at"]
    assert client.get("/api/v1/tickets/").status_code == 401


def test_bad_addresses_are_field_errors(admin_api):
    response = admin_api.post(
        "/api/v1/api-keys/", {"name": "x", "allowed_ips": ["not-an-ip"]}, format="json"
    )
    assert response.status_code == 400 and "allowed_ips" in response.json()["errors"]


def test_agents_do_not_manage_keys(agent_api):
    assert agent_api.get("/api/v1/api-keys/").status_code == 403
    assert agent_api.post("/api/v1/api-keys/", {"name": "x"}, format="json").status_code == 403


def test_a_service_account_key_sees_no_tickets(department):
    from tests.tickets.factories import open_ticket

    open_ticket(department=department)
    new = api_key_create(name="service", can_create_tickets=True)
    client = APIClient(HTTP_X_API_KEY=new.key)
    assert client.get("/api/v1/tickets/").json()["results"] == []
