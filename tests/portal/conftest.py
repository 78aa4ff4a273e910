import io

import pytest
from django.core.cache import cache
from PIL import Image

from tests.accounts.factories import UserFactory


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Rate-limit counters live in the cache; each test starts from zero."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def customer():
    return UserFactory(email="casey@customers.example", name="Casey Customer")


def png_bytes(size: tuple[int, int] = (4, 4)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def assert_sign_in_asked(response):
    """Not this visitor's ticket: the sign-in page, as for any number."""
    assert response.status_code == 302 and response["Location"].startswith("/login/")
