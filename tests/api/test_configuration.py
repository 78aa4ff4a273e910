"""Configuration and people through the API: agents read, admins write, by permission."""

import pytest

from accounts.models import Agent, User
from mailgate.models import Mailbox
from routing.models import Department, Filter, HelpTopic
from tests.accounts.factories import OrganizationFactory, UserFactory
from tests.api.conftest import key_client
from tests.kb.factories import CannedResponseFactory
from tests.tickets.factories import open_ticket
from tickets.models import Priority

pytestmark = pytest.mark.django_db

READABLE = [
    "departments",
    "teams",
    "help-topics",
    "cti/categories",
    "cti/types",
    "cti/items",
    "statuses",
    "priorities",
    "filters",
    "filter-rules",
    "banned-addresses",
    "mailboxes",
    "email-templates",
    "roles",
    "organizations",
    "customers",
    "agents",
]


@pytest.mark.parametrize("resource", READABLE)
def test_agents_read_every_configuration_list(agent_api, resource):
    response = agent_api.get(f"/api/v1/{resource}/")
    assert response.status_code == 200, response.json()
    assert "results" in response.json()


@pytest.mark.parametrize("resource", READABLE)
def test_customers_read_no_configuration(customer_api, resource):
    assert customer_api.get(f"/api/v1/{resource}/").status_code == 403


def test_a_help_desk_is_set_up_by_script(admin_api):
    department = admin_api.post(
        "/api/v1/departments/", {"name": "Hardware", "is_public": True}, format="json"
    )
    assert department.status_code == 201, department.json()
    topic = admin_api.post(
        "/api/v1/help-topics/",
        {"name": "Broken laptop", "department": department.json()["id"]},
        format="json",
    )
    assert topic.status_code == 201, topic.json()
    category = admin_api.post("/api/v1/cti/categories/", {"name": "Devices"}, format="json")
    kind = admin_api.post(
        "/api/v1/cti/types/", {"name": "Laptop", "category": category.json()["id"]}, format="json"
    )
    item = admin_api.post(
        "/api/v1/cti/items/", {"name": "Screen", "type": kind.json()["id"]}, format="json"
    )
    assert item.status_code == 201, item.json()
    rule_filter = admin_api.post(
        "/api/v1/filters/",
        {"name": "Laptops to hardware", "department": department.json()["id"]},
        format="json",
    )
    assert rule_filter.status_code == 201, rule_filter.json()
    rule = admin_api.post(
        "/api/v1/filter-rules/",
        {
            "filter": rule_filter.json()["id"],
            "field": "subject",
            "operator": "contains",
            "value": "laptop",
        },
        format="json",
    )
    assert rule.status_code == 201, rule.json()
    assert HelpTopic.objects.get(name="Broken laptop").department.name == "Hardware"


def test_agents_may_not_write_configuration(agent_api):
    response = agent_api.post("/api/v1/departments/", {"name": "Mine"}, format="json")
    assert response.status_code == 403
    assert not Department.objects.filter(name="Mine").exists()


def test_model_validation_gives_field_errors(admin_api):
    Priority.objects.create(name="Whenever", urgency=99)
    duplicate = admin_api.post(
        "/api/v1/priorities/", {"name": "Whenever", "urgency": 98}, format="json"
    )
    assert duplicate.status_code == 400 and "name" in duplicate.json()["errors"]
    bad_colour = admin_api.post(
        "/api/v1/help-topics/", {"name": "x", "department": 999999}, format="json"
    )
    assert bad_colour.status_code == 400 and "department" in bad_colour.json()["errors"]


def test_deleting_a_department_in_use_is_a_conflict(admin_api, department):
    open_ticket(department=department)
    response = admin_api.delete(f"/api/v1/departments/{department.pk}")
    assert response.status_code == 409
    assert Department.objects.filter(pk=department.pk).exists()


def test_a_filter_sends_a_canned_reply_through_the_api(admin_api):
    welcome = CannedResponseFactory(title="Welcome")
    archived = CannedResponseFactory(title="Old", is_active=False)
    created = admin_api.post(
        "/api/v1/filters/", {"name": "Welcome", "canned_response": welcome.pk}, format="json"
    )
    assert created.status_code == 201, created.json()
    url = f"/api/v1/filters/{created.json()['id']}"
    assert admin_api.get(url).json()["canned_response"] == welcome.pk
    refused = admin_api.patch(url, {"canned_response": archived.pk}, format="json")
    assert refused.status_code == 400 and "canned_response" in refused.json()["errors"]
    cleared = admin_api.patch(url, {"canned_response": None}, format="json")
    assert cleared.status_code == 200 and cleared.json()["canned_response"] is None
    assert Filter.objects.get(name="Welcome").canned_response is None


def test_mailbox_passwords_are_write_only(admin_api, department):
    response = admin_api.post(
        "/api/v1/mailboxes/",
        {
            "name": "Support",
            "email": "help@example.com",
            "host": "imap.example.com",
            "username": "help",
            "password": "s3cret-pass",
            "department": department.pk,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert "password" not in response.json()
    assert Mailbox.objects.get().password == "s3cret-pass"
    listed = admin_api.get("/api/v1/mailboxes/").json()["results"][0]
    assert "password" not in listed


def test_customers_with_their_addresses(admin_api):
    organization = OrganizationFactory(name="Acme")
    created = admin_api.post(
        "/api/v1/customers/",
        {
            "email": "Road.Runner@Acme.example",
            "name": "Road Runner",
            "organization": organization.pk,
            "phone": "+1 555 0100X12",
            "notes": "Pays by invoice",
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["emails"] == ["road.runner@acme.example"]
    assert (created.json()["phone"], created.json()["notes"]) == (
        "+1 555 0100X12",
        "Pays by invoice",
    )
    assert User.objects.get(email="road.runner@acme.example").organization == organization
    again = admin_api.post(
        "/api/v1/customers/", {"email": "road.runner@acme.example"}, format="json"
    )
    assert again.status_code == 400 and "email" in again.json()["errors"]


def test_the_customer_list_holds_customers_not_agents(agent_api, agent):
    customer = UserFactory()
    emails = [row["email"] for row in agent_api.get("/api/v1/customers/").json()["results"]]
    assert customer.email in emails and agent.email not in emails


def test_admins_add_agents_and_agents_cannot(admin_api, agent_api, department):
    body = {"email": "new.agent@staff.example", "department": department.pk, "role": 1}
    assert agent_api.post("/api/v1/agents/", body, format="json").status_code == 403
    created = admin_api.post("/api/v1/agents/", body, format="json")
    assert created.status_code == 201, created.json()
    agent = Agent.objects.get(user__email="new.agent@staff.example")
    changed = admin_api.patch(f"/api/v1/agents/{agent.pk}", {"on_vacation": True}, format="json")
    assert changed.status_code == 200 and changed.json()["on_vacation"] is True
    assert admin_api.delete(f"/api/v1/agents/{agent.pk}").status_code == 405


def test_unknown_ids_are_404(admin_api):
    assert admin_api.get("/api/v1/departments/999999").status_code == 404
    assert admin_api.get("/api/v1/no-such-thing/").status_code == 404


def test_organizations_are_written_with_org_permissions(admin_api):
    created = admin_api.post("/api/v1/organizations/", {"name": "Globex"}, format="json")
    assert created.status_code == 201
    patched = admin_api.patch(
        f"/api/v1/organizations/{created.json()['id']}", {"share_tickets": True}, format="json"
    )
    assert patched.status_code == 200 and patched.json()["share_tickets"] is True


def test_an_agent_with_another_primary_role_cannot_write_organizations(department):
    from tests.accounts.factories import agent_user, role

    limited = key_client(agent_user(department=department, role=role("Limited Access")))
    response = limited.post("/api/v1/organizations/", {"name": "Nope"}, format="json")
    assert response.status_code == 403
