"""Canned responses and the knowledge base through the REST API."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from helpdesk.models import AdminLogEntry
from kb.models import ArticleStatus, CannedResponse
from tests.api.conftest import key_client
from tests.kb.factories import ArticleFactory, CannedResponseFactory, KbCategoryFactory
from tests.routing.factories import DepartmentFactory
from tests.tickets.factories import open_ticket

pytestmark = pytest.mark.django_db


# --- canned responses -----------------------------------------------------------------------


def test_agents_read_global_and_their_departments_canned_responses(agent_api, department):
    mine = CannedResponseFactory(title="Ours", department=department)
    shared = CannedResponseFactory(title="Everyone")
    other = CannedResponseFactory(title="Theirs", department=DepartmentFactory())
    listing = agent_api.get("/api/v1/canned-responses/")
    assert listing.status_code == 200, listing.json()
    assert {row["id"] for row in listing.json()["results"]} == {mine.pk, shared.pk}
    assert agent_api.get(f"/api/v1/canned-responses/{other.pk}/").status_code == 404


def test_admins_read_every_canned_response(admin_api):
    CannedResponseFactory(department=DepartmentFactory())
    assert len(admin_api.get("/api/v1/canned-responses/").json()["results"]) == 1


def test_customers_read_no_canned_responses(customer_api):
    CannedResponseFactory()
    assert customer_api.get("/api/v1/canned-responses/").status_code == 403


def test_agents_may_not_write_canned_responses(agent_api):
    response = agent_api.post(
        "/api/v1/canned-responses/", {"title": "x", "body": "y"}, format="json"
    )
    assert response.status_code == 403 and not CannedResponse.objects.exists()


def test_admins_create_change_and_delete_with_the_admin_log(admin_api, department):
    created = admin_api.post(
        "/api/v1/canned-responses/",
        {"title": "Thanks", "body": "Thank you, {{ customer.first_name }}."},
        format="json",
    )
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    changed = admin_api.patch(
        f"/api/v1/canned-responses/{pk}/", {"department": department.pk}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["department"] == department.pk
    assert admin_api.delete(f"/api/v1/canned-responses/{pk}/").status_code == 204
    log = list(
        AdminLogEntry.objects.filter(object_type="kb.cannedresponse")
        .order_by("pk")
        .values_list("action", "changes")
    )
    assert [action for action, _changes in log] == ["create", "update", "delete"]
    assert log[1][1] == {"department": [None, department.name]}
    assert log[0][0] == "create" and log[0][1]["title"] == [None, "Thanks"]


def test_a_broken_template_is_a_field_error(admin_api):
    response = admin_api.post(
        "/api/v1/canned-responses/", {"title": "x", "body": "{% if %}"}, format="json"
    )
    assert response.status_code == 400
    assert "body" in response.json()["errors"] and response.json()["message"]


def test_a_canned_response_renders_for_a_visible_ticket(agent_api, department):
    canned = CannedResponseFactory(body="Hi {{ customer.first_name }}: #{{ ticket.number }}")
    ticket = open_ticket(department=department)
    response = agent_api.get(f"/api/v1/canned-responses/{canned.pk}/render/?ticket={ticket.pk}")
    assert response.status_code == 200, response.json()
    assert response.json()["text"] == (f"Hi {ticket.user.get_short_name()}: #{ticket.number}")


def test_rendering_for_an_invisible_ticket_is_404(agent_api):
    canned = CannedResponseFactory()
    ticket = open_ticket(department=DepartmentFactory())
    response = agent_api.get(f"/api/v1/canned-responses/{canned.pk}/render/?ticket={ticket.pk}")
    assert response.status_code == 404


def test_rendering_needs_a_ticket(agent_api):
    canned = CannedResponseFactory()
    response = agent_api.get(f"/api/v1/canned-responses/{canned.pk}/render/?ticket=abc")
    assert response.status_code == 400 and "ticket" in response.json()["errors"]


# --- knowledge base -------------------------------------------------------------------------


@pytest.fixture
def kb():
    public = KbCategoryFactory(name="Printing", slug="printing")
    internal = KbCategoryFactory(name="Runbooks", slug="runbooks", is_public=False)
    return {
        "public": ArticleFactory(category=public, title="Fix a paper jam", slug="paper-jam"),
        "internal_flag": ArticleFactory(
            category=public, title="Printer admin password", slug="printer-admin", is_public=False
        ),
        "internal_category": ArticleFactory(
            category=internal, title="Restart the print server", slug="print-server"
        ),
        "draft": ArticleFactory(
            category=public, title="Printer draft", slug="draft", status=ArticleStatus.DRAFT
        ),
    }


def slugs(response) -> set[str]:
    assert response.status_code == 200, response.json()
    return {row["slug"] for row in response.json()["results"]}


def test_customers_see_only_public_published_articles(customer_api, kb):
    assert slugs(customer_api.get("/api/v1/kb/articles/")) == {"paper-jam"}
    assert slugs(customer_api.get("/api/v1/kb/categories/")) == {"printing"}
    for slug in ("printer-admin", "print-server", "draft", "nothing"):
        assert customer_api.get(f"/api/v1/kb/articles/{slug}/").status_code == 404
    assert customer_api.get("/api/v1/kb/categories/runbooks/").status_code == 404


def test_agents_also_see_internal_articles(agent_api, kb):
    assert slugs(agent_api.get("/api/v1/kb/articles/")) == {
        "paper-jam",
        "printer-admin",
        "print-server",
    }
    assert slugs(agent_api.get("/api/v1/kb/categories/")) == {"printing", "runbooks"}
    detail = agent_api.get("/api/v1/kb/articles/print-server/").json()
    assert detail["category"]["slug"] == "runbooks" and "body_html" in detail


def test_an_article_by_slug_has_its_body(customer_api, kb):
    detail = customer_api.get("/api/v1/kb/articles/paper-jam").json()
    assert detail["title"] == "Fix a paper jam"
    assert detail["body"].startswith("How to do it")
    assert "<strong>step by step</strong>" in detail["body_html"]
    assert detail["url"] == "/kb/paper-jam/" or detail["url"].endswith("paper-jam/")


def test_category_counts_are_what_the_user_may_read(customer_api, agent_api, kb):
    def counts(client):
        rows = client.get("/api/v1/kb/categories/").json()["results"]
        return {row["slug"]: row["article_count"] for row in rows}

    assert counts(customer_api) == {"printing": 1}
    assert counts(agent_api) == {"printing": 2, "runbooks": 1}


def test_search_and_category_filter(customer_api, agent_api, kb):
    assert slugs(customer_api.get("/api/v1/kb/articles/?search=paper")) == {"paper-jam"}
    assert slugs(customer_api.get("/api/v1/kb/articles/?search=server")) == set()
    assert slugs(agent_api.get("/api/v1/kb/articles/?search=server")) == {"print-server"}
    assert slugs(agent_api.get("/api/v1/kb/articles/?category=runbooks")) == {"print-server"}
    assert slugs(customer_api.get("/api/v1/kb/articles/?category=runbooks")) == set()


def test_bad_query_parameters_are_field_errors(customer_api):
    response = customer_api.get("/api/v1/kb/articles/?category=not a slug!")
    assert response.status_code == 400 and "category" in response.json()["errors"]
    assert customer_api.get("/api/v1/kb/articles/?page=99").status_code == 404


def test_the_knowledge_base_needs_a_key():
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/kb/articles/").status_code == 401


@pytest.mark.parametrize("who", ["customer", "agent"])
def test_article_and_category_lists_take_a_fixed_number_of_queries(who, department):
    from tests.accounts.factories import UserFactory, agent_user

    user = UserFactory() if who == "customer" else agent_user(department=department)
    client = key_client(user)
    category = KbCategoryFactory()
    ArticleFactory(category=category)

    def queries(path):
        with CaptureQueriesContext(connection) as captured:
            assert client.get(path).status_code == 200
        return len(captured)

    paths = ("/api/v1/kb/articles/", "/api/v1/kb/categories/", "/api/v1/kb/articles/?search=a")
    queries(paths[0])  # the key's first use records it once
    few = {path: queries(path) for path in paths}
    for n in range(15):
        ArticleFactory(category=KbCategoryFactory(parent=category if n % 2 else None))
    many = {path: queries(path) for path in few}
    assert many == few
    assert max(few.values()) <= 10


def test_a_canned_response_a_filter_uses_cannot_be_deleted(admin_api):
    from tests.routing.factories import FilterFactory

    canned = CannedResponseFactory()
    FilterFactory(canned_response=canned)
    response = admin_api.delete(f"/api/v1/canned-responses/{canned.pk}/")
    assert response.status_code == 409 and response.json()["message"]
    assert CannedResponse.objects.filter(pk=canned.pk).exists()
