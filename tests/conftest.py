import pytest

from tests.accounts.factories import agent_user
from tests.routing.factories import DepartmentFactory


@pytest.fixture
def department():
    return DepartmentFactory(name="Helpdesk")


@pytest.fixture
def agent(department):
    """An agent with All Access in `department`."""
    return agent_user(department=department)
