"""Rate limits per key, counted in the real Redis every web process shares."""

import socket
import uuid

import pytest

from tests.api.conftest import key_client

pytestmark = pytest.mark.django_db


def redis_reachable() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture
def redis_throttle(settings):
    if not redis_reachable():
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    settings.CACHES = {
        **settings.CACHES,
        "throttle": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/15",
            "KEY_PREFIX": f"test-{uuid.uuid4().hex}",
        },
    }
    settings.HELPDESK_API_THROTTLE_CACHE = "throttle"
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api": "3/minute"},
    }
    yield
    from django.core.cache import caches

    caches["throttle"].clear()


def test_a_key_over_its_rate_gets_429_with_retry_after(redis_throttle, agent):
    client = key_client(agent)
    statuses = [client.get("/api/v1/tickets/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = client.get("/api/v1/tickets/")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    assert response.json()["message"]


def test_each_key_has_its_own_budget(redis_throttle, agent):
    first, second = key_client(agent), key_client(agent)
    for _ in range(3):
        first.get("/api/v1/tickets/")
    assert first.get("/api/v1/tickets/").status_code == 429
    assert second.get("/api/v1/tickets/").status_code == 200


def test_the_count_lives_in_redis(redis_throttle, agent):
    import redis

    client = key_client(agent)
    client.get("/api/v1/tickets/")
    keys = redis.Redis(host="127.0.0.1", port=6379, db=15).keys("*throttle_api_key:*")
    assert keys


def test_the_osticket_api_is_limited_per_key_too(redis_throttle):
    from django.test import Client

    from accounts.api_keys import api_key_create

    new = api_key_create(name="cron", can_exec_cron=True)
    client = Client(HTTP_X_API_KEY=new.key)
    statuses = [client.post("/api/tasks/cron").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert int(client.post("/api/tasks/cron")["Retry-After"]) > 0
