"""The signed-in user's row kept per process when the cache is shared (accounts.backends):
a deactivation or a password change still ends the session on the next request."""

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.accounts.factories import agent_user
from tests.routing.factories import DepartmentFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

HOME = reverse("staff:home")


@pytest.fixture
def shared(settings):
    settings.HELPDESK_SHARED_CACHE = True
    cache.clear()
    yield
    cache.clear()


def reads_the_user_row(client) -> bool:
    """Whether a request reads a user by id (any database's quoting)."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(HOME)
    assert response.status_code == 200
    statements = [q["sql"].replace('"', "").replace("`", "") for q in captured.captured_queries]
    return any("WHERE accounts_user.id =" in sql for sql in statements)


@pytest.fixture
def agent_client(client, shared):
    agent = agent_user(department=DepartmentFactory(name="Front line"))
    agent.set_password("first-password-1")
    agent.save()
    client.login(username=agent.email, password="first-password-1")
    client.get(HOME)
    return client, agent


def test_the_user_row_is_read_once_then_kept(agent_client):
    client, _agent = agent_client
    assert not reads_the_user_row(client)


def test_a_deactivated_agent_is_signed_out_on_the_next_request(agent_client):
    client, agent = agent_client
    agent.is_active = False
    agent.save(update_fields=["is_active"])
    response = client.get(HOME)
    assert response.status_code == 302 and reverse("staff:login") in response["Location"]


def test_a_changed_password_ends_other_sessions(agent_client):
    client, agent = agent_client
    agent.set_password("second-password-2")
    agent.save(update_fields=["password"])
    response = client.get(HOME)
    assert response.status_code == 302


def test_without_a_shared_cache_the_row_is_read_every_time(client, settings):
    settings.HELPDESK_SHARED_CACHE = False
    agent = agent_user(department=DepartmentFactory(name="Front line"))
    client.force_login(agent)
    client.get(HOME)
    assert reads_the_user_row(client)
