import pytest
from django.core.cache import cache

from helpdesk.config import CACHE_KEY
from tests.accounts.factories import agent_user
from tests.routing.factories import DepartmentFactory


@pytest.fixture(autouse=True)
def _fresh_settings_cache():
    """The help desk's settings row is cached across requests; a test's row must not
    outlive its rolled-back transaction."""
    cache.delete(CACHE_KEY)
    yield
    cache.delete(CACHE_KEY)


@pytest.fixture(autouse=True)
def _forget_versioned_memos():
    """Per-process copies of small tables (helpdesk.lib.memo) start empty in every test: a
    transactional test's flush deletes rows without the signals that would invalidate them."""
    from helpdesk.lib.memo import memos_forget

    memos_forget()
    yield
    memos_forget()


@pytest.fixture
def department():
    return DepartmentFactory(name="Helpdesk")


@pytest.fixture
def agent(department):
    """An agent with All Access in `department`."""
    return agent_user(department=department)
