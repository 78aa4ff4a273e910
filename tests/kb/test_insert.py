"""The staff ticket page's "Insert" helper: articles (internal ones too) and the ticket's
canned responses, rendered for that ticket and agent; loaded lazily, checked like the page."""

import pytest
from django.urls import reverse

from tests.accounts.factories import agent_user
from tests.kb.factories import CannedResponseFactory
from tests.routing.factories import DepartmentFactory
from tests.tickets.factories import open_ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def ticket(department, customer):
    return open_ticket(user=customer, department=department, subject="VPN down")


def insert_url(ticket):
    return reverse("kb_staff:insert", args=[ticket.number])


def htmx_get(client, url, **params):
    return client.get(url, params, headers={"HX-Request": "true"})


def test_the_reply_box_offers_the_helper_without_loading_it(client, agent, ticket):
    client.force_login(agent)
    html = client.get(reverse("tickets_staff:ticket", args=[ticket.number])).content.decode()
    assert f'hx-get="{insert_url(ticket)}"' in html
    # Without JavaScript the search opens the helper's own page in a new tab.
    assert f'action="{insert_url(ticket)}" target="_blank"' in html
    assert 'id="kb-insert-results"' in html


def test_lists_matching_articles_internal_included(client, agent, ticket, corpus):
    client.force_login(agent)
    html = htmx_get(client, insert_url(ticket), q="printer").content.decode()
    assert "Printer jams" in html and "Printer admin password" in html
    assert "Printer drafts" not in html
    assert "<html" not in html
    assert 'data-kb-insert="Open tray two."' in html
    # Only public articles are offered as links for the customer.
    assert 'data-kb-insert="[Printer jams](http://testserver/kb/printer-jams/)"' in html
    assert "http://testserver/kb/printer-admin/" not in html


def test_canned_responses_are_global_or_of_the_tickets_department_and_rendered(
    client, agent, ticket
):
    CannedResponseFactory(title="Global hello", body="Hi {{ customer.first_name }}")
    CannedResponseFactory(
        title="Dept hello", department=ticket.department, body="Ticket #{{ ticket.number }}"
    )
    CannedResponseFactory(title="Other dept", department=DepartmentFactory())
    CannedResponseFactory(title="Retired", is_active=False)
    client.force_login(agent)
    html = htmx_get(client, insert_url(ticket)).content.decode()
    assert "Global hello" in html and "Dept hello" in html
    assert "Other dept" not in html and "Retired" not in html
    assert 'data-kb-insert="Hi Casey"' in html
    assert f'data-kb-insert="Ticket #{ticket.number}"' in html
    html = htmx_get(client, insert_url(ticket), q="global").content.decode()
    assert "Global hello" in html and "Dept hello" not in html


def test_the_rendered_text_is_escaped_in_the_page(client, agent, department):
    customer_ticket = open_ticket(department=department, subject='"><script>x</script>')
    CannedResponseFactory(body="{{ ticket.subject }}")
    client.force_login(agent)
    html = htmx_get(client, insert_url(customer_ticket)).content.decode()
    assert "<script>x" not in html and "&lt;script&gt;" in html


def test_without_javascript_a_page_shows_the_texts_to_copy(client, agent, ticket, corpus):
    CannedResponseFactory(title="Global hello", body="Hi {{ customer.first_name }}")
    client.force_login(agent)
    html = client.get(insert_url(ticket), {"q": "printer"}).content.decode()
    assert "<html" in html and "Printer jams" in html and "Open tray two." in html


def test_agents_who_cannot_see_the_ticket_get_404(client, ticket):
    outsider = agent_user(department=DepartmentFactory())
    client.force_login(outsider)
    assert htmx_get(client, insert_url(ticket)).status_code == 404


def test_customers_are_sent_to_the_portal_even_for_their_own_ticket(client, customer, ticket):
    client.force_login(customer)
    response = client.get(insert_url(ticket))
    assert response.status_code == 302 and response["Location"] == reverse("portal:home")
