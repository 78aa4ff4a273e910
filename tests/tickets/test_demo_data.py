"""`manage.py demo_data`: a usable demo help desk, made once, through the services."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db.models import Count, Min
from django.utils import timezone

from accounts.models import Agent, User
from accounts.permissions import is_agent, visible_tickets
from routing.models import Department
from tickets.management.commands import demo_data
from tickets.models import (
    EntryKind,
    EventAction,
    StatusState,
    ThreadEntry,
    ThreadEvent,
    Ticket,
    TicketStatus,
)

pytestmark = pytest.mark.django_db


def run(**options: object) -> str:
    out = StringIO()
    call_command("demo_data", stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def demo() -> str:
    return run(tickets=30)


def test_the_demo_logins_sign_in_and_are_printed(demo):
    admin = authenticate(username="admin@example.com", password="demo-admin-1")
    agent = authenticate(username="agent@example.com", password="demo-agent-1")
    customer = authenticate(username="customer@example.com", password="demo-customer-1")
    assert admin is not None and admin.is_superuser and admin.agent.role.name == "Administrator"
    assert agent is not None and is_agent(agent)
    assert customer is not None and not is_agent(customer)
    assert customer.organization.name == "Acme Corp"
    for text in (
        "admin@example.com",
        "demo-admin-1",
        "agent@example.com",
        "demo-agent-1",
        "customer@example.com",
        "demo-customer-1",
        "http://127.0.0.1:8000/",
        "http://127.0.0.1:8000/scp/",
        "http://127.0.0.1:8000/admin/",
    ):
        assert text in demo


def test_agents_have_varied_roles_and_most_customers_only_emailed(demo):
    roles = set(Agent.objects.values_list("role__name", flat=True))
    assert {"All Access", "Expanded Access", "Limited Access", "View Only"} <= roles
    assert Agent.objects.filter(on_vacation=True).exists()
    assert Agent.objects.filter(assigned_only=True).exists()
    sam = User.objects.get(email="agent@example.com")
    assert sam.agent.department_access.get().role.name == "Limited Access"
    customers = list(User.objects.filter(agent__isnull=True))
    assert len(customers) >= 30
    without_password = [user for user in customers if not user.has_usable_password()]
    assert len(without_password) > len(customers) / 2


def test_every_status_is_on_some_ticket(demo):
    assert Ticket.objects.count() == 30
    used = set(Ticket.objects.values_list("status__name", flat=True))
    assert set(TicketStatus.objects.values_list("name", flat=True)) <= used


def test_every_ticket_has_a_thread_that_starts_with_its_message(demo):
    now = timezone.now()
    for ticket in Ticket.objects.select_related("thread"):
        entries = ticket.thread.entries.order_by("created_at", "pk")
        events = ticket.thread.events.order_by("created_at", "pk")
        assert entries.first().kind == EntryKind.MESSAGE
        assert events.first().action == EventAction.CREATED
        # Spread over the past, nothing before the ticket or after its last update.
        assert now - timedelta(days=91) < ticket.created_at <= ticket.updated_at <= now
        moments = [
            *entries.values_list("created_at", flat=True),
            *events.values_list("created_at", flat=True),
        ]
        for moment in moments:
            assert ticket.created_at <= moment <= ticket.updated_at
    # The threads hold real conversations, not just the opening messages.
    kinds = set(ThreadEntry.objects.values_list("kind", flat=True))
    assert kinds == {EntryKind.MESSAGE, EntryKind.RESPONSE, EntryKind.NOTE}
    assert Ticket.objects.aggregate(Min("created_at"))["created_at__min"] < now - timedelta(days=30)


def test_casey_sees_her_organizations_shared_tickets(demo):
    casey = User.objects.get(email="customer@example.com")
    visible = visible_tickets(casey)
    assert Ticket.objects.filter(user=casey).count() >= 3
    colleagues = visible.filter(organization=casey.organization).exclude(user=casey)
    assert colleagues.exists()
    globex = Ticket.objects.filter(organization__name="Globex")
    assert globex.exists()
    assert not visible.filter(pk__in=globex.exclude(collaborators__user=casey)).exists()
    assert not visible.filter(status__state=StatusState.DELETED).exists()


def test_the_knowledge_base_has_public_articles_and_the_agents_canned_responses(demo, client):
    from kb.models import Article, CannedResponse

    assert Article.objects.filter(is_public=True, status="published").count() >= 5
    assert Article.objects.filter(is_public=False).exists()  # for agents only
    assert CannedResponse.objects.filter(department=None).exists()
    page = client.get("/kb/").content.decode()
    assert "Printing" in page and "Agent handbook" not in page


def test_a_second_run_changes_nothing(demo):
    counts = (
        Ticket.objects.count(),
        User.objects.count(),
        ThreadEntry.objects.count(),
        ThreadEvent.objects.count(),
        Department.objects.count(),
    )
    output = run(tickets=30)
    assert "already has data" in output
    assert "customer@example.com" in output
    assert counts == (
        Ticket.objects.count(),
        User.objects.count(),
        ThreadEntry.objects.count(),
        ThreadEvent.objects.count(),
        Department.objects.count(),
    )


def test_the_same_seed_gives_the_same_demo():
    run(tickets=10)
    first = list(
        Ticket.objects.order_by("pk").values_list("subject", "status__name", "user__email")
    )
    Ticket.objects.all().delete()
    User.objects.all().delete()
    run(tickets=10)
    second = list(
        Ticket.objects.order_by("pk").values_list("subject", "status__name", "user__email")
    )
    assert first == second


def test_a_failure_leaves_nothing_behind(monkeypatch):
    def broken_reply(**kwargs: object) -> None:
        raise ValidationError({"body": "Broken on purpose."})

    monkeypatch.setattr(demo_data, "ticket_reply", broken_reply)
    with pytest.raises(CommandError, match="nothing was kept"):
        run(tickets=30)
    assert not Ticket.objects.exists()
    assert not User.objects.exists()
    assert list(Department.objects.values_list("name", flat=True)) == ["Support"]
    assert ThreadEntry.objects.aggregate(n=Count("pk"))["n"] == 0
