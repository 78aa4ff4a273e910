"""The help desk settings through the REST API: one object, agents read, admins write."""

import pytest

from helpdesk.config import config
from helpdesk.models import AdminLogEntry, HelpdeskSettings
from tests.routing.factories import DepartmentFactory

pytestmark = pytest.mark.django_db


def test_agents_read_the_environment_values_before_any_save(agent_api, settings):
    settings.HELPDESK_TITLE = "Support"
    response = agent_api.get("/api/v1/settings/")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["helpdesk_name"] == "Support" and body["is_saved"] is False


def test_customers_may_not_read_the_settings(customer_api):
    assert customer_api.get("/api/v1/settings/").status_code == 403


def test_agents_may_not_change_the_settings(agent_api):
    response = agent_api.patch("/api/v1/settings/", {"helpdesk_name": "Mine"}, format="json")
    assert response.status_code == 403 and not HelpdeskSettings.objects.exists()


def test_an_admin_patches_one_value_and_the_admin_log_records_it(
    admin_api, django_capture_on_commit_callbacks
):
    # The cached settings are dropped once the change commits.
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_api.patch("/api/v1/settings", {"helpdesk_name": "IT Help"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["helpdesk_name"] == "IT Help" and response.json()["is_saved"]
    assert config().helpdesk_name == "IT Help"

    department = DepartmentFactory(name="Hardware")
    with django_capture_on_commit_callbacks(execute=True):
        again = admin_api.patch(
            "/api/v1/settings/",
            {"default_department": department.pk, "claim_on_reply": False},
            format="json",
        )
    assert again.status_code == 200, again.json()
    assert config().default_department == department and config().claim_on_reply is False
    assert config().helpdesk_name == "IT Help"  # untouched by the second change
    entries = AdminLogEntry.objects.filter(object_type="helpdesk.helpdesksettings").order_by("pk")
    assert [entry.action for entry in entries] == ["create", "update"]
    assert entries[1].changes == {
        "default_department": [None, "Hardware"],
        "claim_on_reply": [True, False],
    }


def test_put_needs_every_field(admin_api):
    response = admin_api.put("/api/v1/settings/", {"helpdesk_name": "X"}, format="json")
    assert response.status_code == 400
    assert "ticket_number_format" in response.json()["errors"]


def test_the_screens_rules_are_field_errors(admin_api):
    for data, field in (
        ({"ticket_number_format": "no-hashes"}, "ticket_number_format"),
        ({"allowed_attachment_types": "/nope"}, "allowed_attachment_types"),
        ({"max_attachment_size": 0}, "max_attachment_size"),
        ({"default_department": 999999}, "default_department"),
        ({"collaborator_visibility": "everyone"}, "collaborator_visibility"),
        ({"claim_on_reply": {"a": 1}}, "claim_on_reply"),
    ):
        response = admin_api.patch("/api/v1/settings/", data, format="json")
        assert response.status_code == 400, (data, response.json())
        assert field in response.json()["errors"], (data, response.json())
    assert not HelpdeskSettings.objects.exists()


def test_an_archived_department_is_refused_as_the_screen_refuses_it(admin_api):
    archived = DepartmentFactory(is_active=False)
    response = admin_api.patch(
        "/api/v1/settings/", {"default_department": archived.pk}, format="json"
    )
    assert response.status_code == 400 and "default_department" in response.json()["errors"]
