"""The new-ticket form's suggestions, and deflections: an article opened from them counts
as a deflection unless the visitor files a ticket anyway."""

import pytest
from django.urls import reverse

from kb.models import Deflection
from kb.selectors import article_suggestions, deflections_total
from routing.models import HelpTopic
from tests.kb.factories import ArticleFactory, KbCategoryFactory
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

SUGGEST_URL = "/kb/suggest/"


@pytest.fixture
def articles():
    category = KbCategoryFactory(slug="help")
    return {
        "vpn": ArticleFactory(
            category=category, title="VPN does not connect", slug="vpn", body="Restart the VPN."
        ),
        "mail": ArticleFactory(
            category=category, title="Mail quota full", slug="mail", body="Delete old mail."
        ),
    }


def visitor_post(**overrides):
    data = {
        "name": "Vera Visitor",
        "email": "vera@visitors.example",
        "subject": "VPN broken",
        "message": "It does not connect.",
        "help_topic": HelpTopic.objects.get(name="General Inquiry").pk,
    }
    data.update(overrides)
    return data


def test_the_open_form_asks_for_suggestions_as_the_subject_is_typed(client):
    html = client.get(reverse("tickets_portal:open")).content.decode()
    assert f'hx-get="{SUGGEST_URL}"' in html
    assert 'hx-trigger="input changed delay:400ms from:#id_subject"' in html
    assert 'id="kb-suggestions"' in html


def test_suggestions_match_any_word_of_the_subject(client, articles):
    response = client.get(SUGGEST_URL, {"subject": "my vpn is broken"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "VPN does not connect" in html and "Mail quota" not in html
    assert f"{articles['vpn'].get_absolute_url()}?from=suggest" in html


def test_short_or_unknown_subjects_suggest_nothing(client, articles):
    assert client.get(SUGGEST_URL, {"subject": "a b"}).content.decode().strip() == ""
    assert client.get(SUGGEST_URL, {"subject": "zebra"}).content.decode().strip() == ""


def test_suggestions_are_limited(articles):
    category = articles["vpn"].category
    for index in range(8):
        ArticleFactory(category=category, slug=f"vpn-{index}", title=f"VPN tip {index}")
    assert len(article_suggestions(user=None, text="vpn")) == 5


def test_suggest_only_answers_get(client):
    assert client.post(SUGGEST_URL, {"subject": "vpn"}).status_code == 405


def test_opening_a_suggestion_records_a_candidate_once_per_session(client, articles):
    url = articles["vpn"].get_absolute_url() + "?from=suggest"
    assert client.get(url).status_code == 200
    assert client.get(url).status_code == 200
    deflection = Deflection.objects.get()
    assert deflection.article == articles["vpn"] and deflection.ticket is None
    assert deflections_total() == {"opened": 1, "deflected": 1}


def test_opening_an_article_otherwise_records_nothing(client, articles, agent):
    client.get(articles["vpn"].get_absolute_url())
    client.force_login(agent)
    client.get(articles["vpn"].get_absolute_url() + "?from=suggest")  # agents do not count
    assert not Deflection.objects.exists()


def test_filing_anyway_ends_the_deflection(client, articles, django_capture_on_commit_callbacks):
    client.get(SUGGEST_URL, {"subject": "vpn", "email": "vera@visitors.example"})
    client.get(articles["vpn"].get_absolute_url() + "?from=suggest")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("tickets_portal:open"), visitor_post())
    assert response.status_code == 302
    deflection = Deflection.objects.get()
    assert deflection.ticket == Ticket.objects.get()
    assert deflections_total() == {"opened": 1, "deflected": 0}


def test_filing_from_the_same_browser_counts_without_an_address(client, articles):
    # The article was opened before any address was typed: the session still matches.
    client.get(articles["vpn"].get_absolute_url() + "?from=suggest")
    client.post(reverse("tickets_portal:open"), visitor_post(email="other@visitors.example"))
    assert Deflection.objects.get().ticket is not None


def test_a_signed_in_customer_filing_by_mail_later_is_matched_by_account(
    client, customer, articles
):
    from mailgate import services as mail

    client.force_login(customer)
    client.get(articles["mail"].get_absolute_url() + "?from=suggest")
    raw = (
        f"From: {customer.email}\r\nTo: support@helpdesk.example\r\n"
        "Subject: Quota\r\nMessage-ID: <quota@customer.example>\r\n\r\nStill full.\r\n"
    ).encode()
    message, _new = mail.inbound_receive(raw=raw, mailbox=None, channel="pipe")
    ticket = mail.inbound_process(message=message).ticket
    # Counted with the ticket, in its own transaction (nothing after the commit has run here).
    assert Deflection.objects.get().ticket == ticket
    assert deflections_total() == {"opened": 1, "deflected": 0}


def test_someone_else_filing_leaves_the_deflection(client, articles):
    from kb.services import deflections_filed
    from tests.tickets.factories import open_ticket

    client.get(articles["vpn"].get_absolute_url() + "?from=suggest")
    assert deflections_filed(ticket=open_ticket()) == 0
    assert Deflection.objects.get().ticket is None


def test_a_run_of_mail_asks_once_whose_deflections_are_open(client, customer, articles):
    """A run of fetched mail reads the open deflections once; only the mail of a customer
    who opened an article tries to end one."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from helpdesk.lib.memo import tokens_snapshot
    from mailgate import services as mail

    client.force_login(customer)
    client.get(articles["mail"].get_absolute_url() + "?from=suggest")
    messages = [
        mail.inbound_receive(
            raw=(
                f"From: {sender}\r\nTo: support@helpdesk.example\r\nSubject: Quota {n}\r\n"
                f"Message-ID: <quota{n}@customer.example>\r\n\r\nStill full.\r\n"
            ).encode(),
            mailbox=None,
            channel="pipe",
        )[0]
        for n, sender in enumerate(["someone@else.example", customer.email, "third@else.example"])
    ]
    with tokens_snapshot(), CaptureQueriesContext(connection) as queries:
        tickets = [mail.inbound_process(message=message).ticket for message in messages]
    asked = [q["sql"].split()[0] for q in queries.captured_queries if "kb_deflection" in q["sql"]]
    assert asked == ["SELECT", "UPDATE"]
    assert Deflection.objects.get().ticket == tickets[1]


def test_a_request_filing_one_ticket_tries_its_deflections_directly(client, articles):
    """Reading every open deflection ahead pays for a run of mail, not for one ticket."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(articles["vpn"].get_absolute_url() + "?from=suggest")
    with CaptureQueriesContext(connection) as queries:
        client.post(reverse("tickets_portal:open"), visitor_post(email="other@visitors.example"))
    asked = [q["sql"].split()[0] for q in queries.captured_queries if "kb_deflection" in q["sql"]]
    assert "SELECT" not in asked
    assert Deflection.objects.get().ticket is not None
