"""The OpenAPI schema: served, complete, and honoured by every endpoint.

The schemathesis run sends generated requests (valid and invalid) to each operation and
fails on any 5xx, any status code the schema does not list, and any response body that
breaks the schema. Examples are bounded so the run takes well under a minute."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from rest_framework.test import APIClient
from schemathesis.specs.openapi import checks

from accounts.api_keys import api_key_create
from accounts.models import User
from tests.tickets.factories import open_ticket

pytestmark = pytest.mark.django_db


def test_the_schema_is_served_and_lists_every_endpoint():
    response = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path in (
        "/api/v1/tickets/",
        "/api/v1/tickets/{id}/",
        "/api/v1/tickets/{id}/reply/",
        "/api/v1/tickets/{id}/events/",
        "/api/v1/attachments/{id}/download/",
        "/api/v1/customers/",
        "/api/v1/departments/",
        "/api/v1/webhooks/",
        "/api/v1/api-keys/",
        "/api/v1/canned-responses/",
        "/api/v1/canned-responses/{id}/render/",
        "/api/v1/settings/",
        "/api/v1/kb/categories/",
        "/api/v1/kb/categories/{slug}/",
        "/api/v1/kb/articles/",
        "/api/v1/kb/articles/{slug}/",
    ):
        assert path in paths, path
    listing = paths["/api/v1/tickets/"]["get"]
    names = {parameter["name"] for parameter in listing["parameters"]}
    assert {"status", "assignee", "overdue", "updated_since", "search", "cursor"} <= names
    assert {"400", "401", "403", "429"} <= set(listing["responses"])
    assert "apiKey" in schema["components"]["securitySchemes"]
    articles = paths["/api/v1/kb/articles/"]["get"]
    assert {"search", "category", "page"} <= {p["name"] for p in articles["parameters"]}
    assert {"put", "patch", "get"} <= set(paths["/api/v1/settings/"])
    assert {"400", "403"} <= set(paths["/api/v1/settings/"]["patch"]["responses"])


def test_the_docs_page_is_served_from_our_own_static_files():
    response = APIClient().get("/api/v1/docs/")
    assert response.status_code == 200 and b"/api/v1/schema/" in response.content
    assert b"cdn.jsdelivr.net" not in response.content
    assert b"/static/drf_spectacular_sidecar/redoc/" in response.content
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-eval" not in policy


@pytest.fixture
def wsgi_keeps_the_test_connection():
    """Requests through the WSGI handler close the database connection when they end, which
    would end the test's transaction; the test client avoids this the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(wsgi_keeps_the_test_connection):
    return schemathesis.openapi.from_wsgi("/api/v1/schema/", get_wsgi_application()).exclude(
        # Revoking or regenerating the run's own key would only turn the rest into 401s.
        path_regex=r"/(revoke|regenerate)/",
    )


@pytest.fixture
def admin_key(settings, department):
    settings.WEBHOOK_ALLOW_PRIVATE = True  # no DNS lookups of generated host names
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api": "100000/minute"},
    }
    admin = User.objects.create_superuser("schema-admin@example.com", "x")
    open_ticket(department=department)
    return api_key_create(name="schemathesis", user=admin).key


CHECKS = [
    schemathesis.checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def test_no_request_makes_a_server_error_or_breaks_the_schema(api_schema, admin_key):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 100
    failures: list[str] = []

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=3,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            case.call_and_validate(headers={"X-API-Key": admin_key}, checks=CHECKS)

        try:
            run()
        except Exception as error:  # keep going: one run reports every broken operation
            failures.append(f"{operation.label}: {error}")
    assert not failures, "\n\n".join(failures)
