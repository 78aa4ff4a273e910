import pytest
from rest_framework.test import APIClient

from accounts.api_keys import api_key_create
from api.throttling import ApiKeyRateThrottle
from tests.accounts.factories import UserFactory, agent_user, role


class KeyClient(APIClient):
    """A REST client that sends an API key, and knows it."""

    def __init__(self, key: str, user, **kwargs):
        super().__init__(**kwargs)
        self.key, self.user = key, user
        self.credentials(HTTP_X_API_KEY=key)


def forget_rate_limit(api_key) -> None:
    """Key ids come back after a rollback (SQLite): requests an earlier test made with a
    key of the same id must not count against this one."""
    throttle = ApiKeyRateThrottle()
    throttle.cache.delete(throttle.cache_format % {"scope": "api", "ident": f"key:{api_key.pk}"})


def key_client(user, **flags) -> KeyClient:
    new = api_key_create(name=f"key of {user.email}", user=user, **flags)
    forget_rate_limit(new.api_key)
    return KeyClient(new.key, user)


@pytest.fixture
def agent_api(agent):
    """An agent with All Access in the `department` fixture."""
    return key_client(agent)


@pytest.fixture
def admin_api(department):
    return key_client(agent_user(department=department, role=role("Administrator")))


@pytest.fixture
def customer_api():
    return key_client(UserFactory())


@pytest.fixture
def osticket_key():
    """A key as osTicket's admin makes them: may create tickets and run cron."""
    return api_key_create(name="osTicket client", can_create_tickets=True, can_exec_cron=True)
