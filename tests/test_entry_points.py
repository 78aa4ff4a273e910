"""The customer landing page and the staff sign-in answer, and the staff home lets agents only."""

import pytest
from django.urls import reverse

from accounts.models import User
from tests.accounts.factories import UserFactory, agent_user
from tests.tickets.factories import open_ticket

pytestmark = pytest.mark.django_db


def test_the_landing_page_answers(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"Open a new ticket" in response.content
    assert b"Sign in" in response.content


def test_the_staff_home_sends_visitors_to_the_staff_sign_in(client):
    response = client.get("/scp/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("staff:login"))
    assert client.get(reverse("staff:login")).status_code == 200


def test_an_agent_signs_in_and_sees_their_counts(client, department):
    agent = agent_user(department=department, user__password="a good long password")
    open_ticket(department=department)
    open_ticket(department=department)
    response = client.post(
        reverse("staff:login"),
        {"username": agent.email.upper(), "password": "a good long password"},
    )
    assert response.status_code == 302 and response["Location"] == reverse("staff:home")
    page = client.get("/scp/")
    assert page.status_code == 200
    counts = page.context["counts"]
    assert (counts.open, counts.mine, counts.unassigned, counts.overdue) == (2, 0, 2, 0)


def test_customers_are_refused_at_the_staff_sign_in(client):
    UserFactory(email="casey@example.com", password="a good long password")
    response = client.post(
        reverse("staff:login"),
        {"username": "casey@example.com", "password": "a good long password"},
    )
    assert response.status_code == 200
    assert b"This sign-in is for agents" in response.content
    assert "_auth_user_id" not in client.session


def test_a_signed_in_customer_is_sent_back_to_the_portal(client):
    client.force_login(UserFactory())
    response = client.get("/scp/")
    assert response.status_code == 302 and response["Location"] == reverse("portal:home")


def test_a_superuser_reaches_the_staff_home_without_an_agent_profile(client):
    client.force_login(User.objects.create_superuser("root@example.com", "pw"))
    assert client.get("/scp/").status_code == 200


def test_the_staff_home_costs_the_same_queries_for_any_number_of_tickets(
    client, department, django_assert_num_queries
):
    agent = agent_user(department=department)
    client.force_login(agent)
    for _ in range(3):
        open_ticket(department=department)
    # session, user, agent scope (agent + access + teams), counts per department, the
    # departments' names, the latest activity
    with django_assert_num_queries(8):
        client.get("/scp/")
    for _ in range(5):
        open_ticket(department=department)
    with django_assert_num_queries(8):
        client.get("/scp/")


def test_customers_sign_in_at_the_portal(client):
    UserFactory(email="casey@example.com", password="a good long password")
    response = client.post(
        reverse("portal:login"),
        {"username": "Casey@example.com", "password": "a good long password"},
    )
    assert response.status_code == 302
    assert client.get("/").context["user"].email == "casey@example.com"
