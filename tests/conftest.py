import pytest

from tests.accounts.factories import agent_user
from tests.routing.factories import DepartmentFactory


@pytest.fixture(autouse=True)
def _forget_versioned_memos():
    """Per-process copies of small tables (helpdesk.lib.memo: the settings row among them;
    the filters) start empty in every test: a test's rows must not outlive its rolled-back
    transaction, and a transactional test's flush deletes rows without signals."""
    from helpdesk.lib.memo import memos_forget
    from routing import services as routing_services

    memos_forget()
    routing_services._filters_memo.clear()
    yield
    memos_forget()
    routing_services._filters_memo.clear()


@pytest.fixture
def department():
    return DepartmentFactory(name="Helpdesk")


@pytest.fixture
def agent(department):
    """An agent with All Access in `department`."""
    return agent_user(department=department)
