"""The staff dashboard at /scp/: the agent's counts, per department, linking to their queues,
and the latest activity on the agent's tickets."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from tests.accounts.factories import UserFactory, agent_user, role
from tests.routing.factories import DepartmentFactory
from tests.tickets.factories import closed_status, open_ticket
from tickets import services
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

HOME = reverse("staff:home")
NOON = "2026-03-10 12:00:00+00:00"


def make(department, **changes):
    ticket = open_ticket(department=department)
    Ticket.objects.filter(pk=ticket.pk).update(**{"due_at": None, **changes})
    ticket.refresh_from_db()
    return ticket


@pytest.fixture
def places(department):
    """The agent's own department, one reached by extended access, an empty one they work in,
    and one they never see."""
    return {
        "own": department,
        "extended": DepartmentFactory(name="Billing"),
        "empty": DepartmentFactory(name="Archive room"),
        "hidden": DepartmentFactory(name="Secret Lab"),
    }


@pytest.fixture
def worker(places):
    return agent_user(
        department=places["own"],
        extended={places["extended"]: role("All Access"), places["empty"]: role("View Only")},
    )


@time_machine.travel(NOON, tick=False)
def test_counts_what_the_agent_can_see(client, places, worker):
    own, extended, hidden = places["own"], places["extended"], places["hidden"]
    colleague = agent_user(department=own)
    make(own, assignee=worker)
    make(own)  # unassigned
    make(own, assignee=colleague, is_overdue=True)
    make(own, assignee=colleague, due_at=timezone.now() + timedelta(hours=3))
    make(own, assignee=colleague, due_at=timezone.now() + timedelta(days=2))
    make(own, assignee=worker, status=closed_status())  # resolved: not counted
    make(extended)  # unassigned
    make(hidden)  # never counted
    make(hidden, assignee=worker)  # assigned to the agent: visible, so counted
    client.force_login(worker)
    counts = client.get(HOME).context["counts"]
    assert (counts.mine, counts.unassigned, counts.overdue, counts.due_today, counts.open) == (
        2,
        2,
        1,
        1,
        7,
    )
    rows = {
        row.name: (row.open, row.unassigned, row.overdue, row.due_today)
        for row in counts.departments
    }
    assert rows == {
        own.name: (5, 1, 1, 1),
        "Billing": (1, 1, 0, 0),
        "Archive room": (0, 0, 0, 0),
        "Secret Lab": (1, 0, 0, 0),
    }


def test_counts_link_to_their_queues(client, places, worker):
    own = places["own"]
    make(own, assignee=worker)
    client.force_login(worker)
    html = client.get(HOME).content.decode()
    queue = reverse("tickets_staff:queue_default")
    for link in (
        reverse("tickets_staff:queue", args=["mine"]) + "?status=open",
        reverse("tickets_staff:queue", args=["unassigned"]),
        reverse("tickets_staff:queue", args=["overdue"]),
        f"{queue}?due=today",
        f"{queue}?department={own.pk}",
        reverse("tickets_staff:queue", args=["unassigned"]) + f"?department={own.pk}",
        reverse("tickets_staff:queue", args=[f"department-{own.pk}"]),
    ):
        assert f'href="{link}"' in html, link
    # The "my open tickets" link lists what the count counted.
    listed = client.get(reverse("tickets_staff:queue", args=["mine"]), {"status": "open"})
    assert listed.context["page"].paginator.count == client.get(HOME).context["counts"].mine


def test_the_latest_activity_shows_what_others_did_on_my_tickets(client, department, agent):
    customer = UserFactory(name="Casey Customer")
    mine = open_ticket(department=department, user=customer, subject="Mine to fix")
    services.ticket_assign(ticket=mine, by=agent, agent=agent)
    services.ticket_note_add(ticket=mine, by=agent, body="Looking into it")
    services.ticket_message_add(ticket=mine, user=customer, body="Any news?")
    colleague = agent_user(department=department, user__name="Robin Colleague")
    services.ticket_note_add(ticket=mine, by=colleague, body="Seen this before")
    other = open_ticket(department=department, subject="Someone else's")
    services.ticket_note_add(ticket=other, by=colleague, body="Not for you")
    client.force_login(agent)
    response = client.get(HOME)
    activity = response.context["activity"]
    assert [(e.action, e.actor_name) for e in activity] == [
        ("note", "Robin Colleague"),
        ("message", "Casey Customer"),
        ("created", "Casey Customer"),
    ]
    html = response.content.decode()
    assert "Mine to fix" in html and "Someone else" not in html
    assert reverse("tickets_staff:ticket", args=[mine.number]) in html


def test_the_activity_list_is_bounded_and_recent(client, department, agent):
    customer = UserFactory()
    with time_machine.travel(timezone.now() - timedelta(days=40)):
        old = open_ticket(department=department, user=customer, subject="Ancient")
    Ticket.objects.filter(pk=old.pk).update(assignee=agent)
    ticket = open_ticket(department=department, user=customer)
    Ticket.objects.filter(pk=ticket.pk).update(assignee=agent)
    for n in range(20):
        services.ticket_message_add(ticket=ticket, user=customer, body=f"Ping {n}")
    client.force_login(agent)
    activity = client.get(HOME).context["activity"]
    assert len(activity) == 15
    assert all(event.thread.ticket.number == ticket.number for event in activity)


def test_names_and_subjects_in_the_activity_are_escaped(client, department, agent):
    customer = UserFactory(name='<img src=x onerror="alert(1)">')
    ticket = open_ticket(
        department=department, user=customer, subject="<script>alert('x')</script>"
    )
    services.ticket_assign(ticket=ticket, by=agent, agent=agent)
    services.ticket_message_add(ticket=ticket, user=customer, body="hello")
    client.force_login(agent)
    # Django's templates escape ' as &#x27;, the Jinja2 parts as &#39;: the same.
    html = client.get(HOME).content.decode().replace("&#39;", "&#x27;")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "<script>alert" not in html and "<img src=x" not in html


def test_a_superuser_sees_every_department(client, places):
    make(places["hidden"])
    client.force_login(User.objects.create_superuser("root@example.com", "pw"))
    counts = client.get(HOME).context["counts"]
    names = {row.name for row in counts.departments}
    assert {"Secret Lab", "Billing", "Archive room"} <= names
    assert counts.unassigned == 1


def test_customers_and_visitors_are_turned_away(client):
    response = client.get(HOME)
    assert response.status_code == 302 and response["Location"].startswith(reverse("staff:login"))
    client.force_login(UserFactory())
    response = client.get(HOME)
    assert response.status_code == 302 and response["Location"] == reverse("portal:home")


def test_the_dashboard_costs_the_same_queries_for_3_or_30_tickets(
    client, places, worker, django_assert_num_queries
):
    customer = UserFactory()

    def busy_ticket(department):
        ticket = open_ticket(department=department, user=customer)
        Ticket.objects.filter(pk=ticket.pk).update(assignee=worker)
        services.ticket_message_add(ticket=ticket, user=customer, body="More")

    for _ in range(3):
        busy_ticket(places["own"])
    client.force_login(worker)
    # session, user, agent scope (agent with role, extended access with roles, teams), counts
    # per department, the departments' names, the latest activity (the agent's recent
    # tickets, their events)
    with django_assert_num_queries(9):
        client.get(HOME)
    for _ in range(27):
        busy_ticket(places["extended"])
    with django_assert_num_queries(9):
        response = client.get(HOME)
    assert response.context["counts"].mine == 30
