import pytest

from tests.accounts.factories import UserFactory, agent_user, role
from tests.kb.factories import ArticleFactory, KbCategoryFactory


@pytest.fixture
def customer():
    return UserFactory(email="casey@customers.example", name="Casey Customer")


@pytest.fixture
def writer(department):
    """An agent whose role (All Access) writes articles but administers nothing."""
    return agent_user(department=department)


@pytest.fixture
def reader(department):
    """An agent whose role may not write articles."""
    return agent_user(department=department, role=role("Expanded Access"))


@pytest.fixture
def admin(department):
    return agent_user(department=department, role=role("Administrator"))


@pytest.fixture
def corpus():
    """Public and internal categories, published, draft and internal articles."""
    public = KbCategoryFactory(name="Printing", slug="printing")
    internal = KbCategoryFactory(name="Runbooks", slug="runbooks", is_public=False)
    under_internal = KbCategoryFactory(name="Deep", slug="deep", parent=internal)
    return {
        "public_category": public,
        "internal_category": internal,
        "under_internal": under_internal,
        "published": ArticleFactory(
            category=public, title="Printer jams", slug="printer-jams", body="Open tray two."
        ),
        "draft": ArticleFactory(
            category=public,
            title="Printer drafts",
            slug="printer-drafts",
            body="Unfinished printer text.",
            status="draft",
        ),
        "internal_article": ArticleFactory(
            category=public,
            title="Printer admin password",
            slug="printer-admin",
            body="The printer secret.",
            is_public=False,
        ),
        "in_internal_category": ArticleFactory(
            category=internal,
            title="Printer runbook",
            slug="printer-runbook",
            body="Restart the printer server.",
        ),
        "in_nested_internal": ArticleFactory(
            category=under_internal,
            title="Printer deep dive",
            slug="printer-deep",
            body="Printer internals.",
        ),
    }
