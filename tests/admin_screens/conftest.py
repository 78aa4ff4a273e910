import pytest

from tests.accounts.factories import UserFactory, agent_user, role


@pytest.fixture
def admin(department):
    """An agent whose role holds every admin permission."""
    return agent_user(department=department, role=role("Administrator"), user__name="Ada Admin")


@pytest.fixture
def admin_client(client, admin):
    client.force_login(admin)
    return client


@pytest.fixture
def customer():
    return UserFactory(email="carol@customers.example", password="pw-carol-123")
