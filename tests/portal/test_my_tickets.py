"""My tickets: mine, those I am copied on, my organization's when it shares; in order."""

import pytest
from django.urls import reverse

from tests.accounts.factories import OrganizationFactory, UserFactory
from tests.tickets.factories import closed_status, open_ticket
from tickets.services import ticket_status_set

pytestmark = pytest.mark.django_db

LIST_URL = "/tickets/"


def numbers(response):
    return [ticket.number for ticket in response.context["tickets"]]


def test_visitors_are_sent_to_sign_in(client):
    response = client.get(LIST_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:login"))


def test_a_customer_sees_their_tickets_only(client, customer):
    mine = open_ticket(user=customer, subject="My printer")
    other = open_ticket(user=UserFactory(), subject="Somebody else's secret")
    client.force_login(customer)
    response = client.get(LIST_URL)
    assert numbers(response) == [mine.number]
    assert "Somebody else" not in response.content.decode()
    assert other.number not in response.content.decode()


def test_an_organization_that_shares_shows_its_members_tickets(client):
    sharing = OrganizationFactory(share_tickets=True)
    private = OrganizationFactory(share_tickets=False)
    me = UserFactory(organization=sharing)
    colleague = UserFactory(organization=sharing, name="Colleague Carla")
    shared = open_ticket(user=colleague)
    loner = UserFactory(organization=private)
    lonely_colleague = UserFactory(organization=private)
    hidden = open_ticket(user=lonely_colleague)
    client.force_login(me)
    response = client.get(LIST_URL)
    assert numbers(response) == [shared.number]
    assert "Colleague Carla" in response.content.decode()
    client.force_login(loner)
    assert hidden.number not in numbers(client.get(LIST_URL))


def test_unresolved_come_first_then_newest(client, customer):
    oldest_open = open_ticket(user=customer)
    closed = open_ticket(user=customer)
    newest_open = open_ticket(user=customer)
    ticket_status_set(ticket=closed, by=customer, status=closed_status())
    client.force_login(customer)
    assert numbers(client.get(LIST_URL)) == [
        newest_open.number,
        oldest_open.number,
        closed.number,
    ]


def test_the_list_is_paginated(client, customer, monkeypatch):
    monkeypatch.setattr("tickets.views.portal.PAGE_SIZE", 2)
    tickets = [open_ticket(user=customer) for _ in range(3)]
    client.force_login(customer)
    first = client.get(LIST_URL)
    assert numbers(first) == [tickets[2].number, tickets[1].number]
    assert numbers(client.get(LIST_URL, {"page": 2})) == [tickets[0].number]
    assert "Page 1 of 2" in first.content.decode()


def test_the_list_costs_the_same_queries_for_any_number_of_tickets(
    client, customer, django_assert_num_queries
):
    org = OrganizationFactory(share_tickets=True)
    customer.organization = org
    customer.save(update_fields=["organization"])
    for _ in range(2):
        open_ticket(user=customer)
    client.force_login(customer)
    client.get(LIST_URL)
    # session, user, organization sharing and collaborations, count, page's ids, page's rows
    # (that the customer is no agent is known from the first request: helpdesk.lib.memo)
    with django_assert_num_queries(6):
        client.get(LIST_URL)
    for _ in range(6):
        open_ticket(user=UserFactory(organization=org))
    with django_assert_num_queries(6) as queries:
        response = client.get(LIST_URL)
    assert len(response.context["tickets"]) == 8
    assert not any("search_document" in query["sql"] for query in queries.captured_queries)


def test_agents_are_sent_to_the_staff_ui(client, agent):
    client.force_login(agent)
    response = client.get(LIST_URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/scp/")


def test_subjects_and_names_are_escaped(client):
    org = OrganizationFactory(share_tickets=True)
    me = UserFactory(organization=org)
    evil = UserFactory(organization=org, name='<img src=x onerror="alert(1)">')
    open_ticket(user=evil, subject="<script>alert('subject')</script>")
    client.force_login(me)
    html = client.get(LIST_URL).content.decode()
    assert "<script>alert('subject')</script>" not in html
    assert "&lt;script&gt;" in html
    assert 'onerror="alert' not in html and "&lt;img src=x" in html
