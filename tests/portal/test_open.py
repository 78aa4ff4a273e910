"""Opening a ticket in the portal: as a visitor or signed in, with topics and attachments."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import User
from routing.models import HelpTopic, RuleField, RuleOperator
from tests.portal.conftest import assert_sign_in_asked, png_bytes
from tests.routing.factories import BannedAddressFactory, FilterFactory, HelpTopicFactory
from tickets.models import Attachment, Source, Ticket

pytestmark = pytest.mark.django_db

OPEN_URL = "/tickets/new/"


def general_topic():
    """A public topic the data migration ships."""
    return HelpTopic.objects.get(name="General Inquiry")


def visitor_post(**overrides):
    data = {
        "name": "Vera Visitor",
        "email": "vera@visitors.example",
        "subject": "The printer is on fire",
        "message": "Smoke everywhere.",
        "help_topic": general_topic().pk,
    }
    data.update(overrides)
    return data


def test_the_landing_page_offers_open_check_and_sign_in(client):
    page = client.get("/")
    assert page.status_code == 200
    html = page.content.decode()
    assert reverse("tickets_portal:open") in html
    assert reverse("tickets_portal:guest") in html  # the status check form posts there
    assert reverse("portal:login") in html and reverse("portal:register") in html


def test_a_visitor_opens_a_ticket_and_gets_its_number_and_a_link_by_mail(client, mailoutbox):
    response = client.post(OPEN_URL, visitor_post(), REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 302 and response["Location"] == reverse(
        "tickets_portal:open_done"
    )
    ticket = Ticket.objects.get()
    assert ticket.subject == "The printer is on fire"
    assert ticket.source == Source.WEB
    assert ticket.ip_address == "203.0.113.9"  # agents see where it came from
    assert ticket.user.email == "vera@visitors.example" and ticket.user.name == "Vera Visitor"
    assert not ticket.user.has_usable_password()
    done = client.get(response["Location"])
    assert f"#{ticket.number}" in done.content.decode()
    assert "sent you a link to the ticket by email" in done.content.decode()
    links = [
        m for m in mailoutbox if m.to == ["vera@visitors.example"] and "/tickets/access/" in m.body
    ]
    assert len(links) == 1
    # The visitor's own browser is not given the ticket: only the mailed link opens it.
    assert_sign_in_asked(client.get(f"/tickets/{ticket.number}/"))


def test_the_confirmation_page_shows_nothing_to_another_browser(client):
    assert client.get(reverse("tickets_portal:open_done")).status_code == 302


def test_a_signed_in_customer_opens_a_ticket_as_themselves(client, customer):
    client.force_login(customer)
    form = client.get(OPEN_URL)
    assert 'name="email"' not in form.content.decode()
    response = client.post(
        OPEN_URL, {"subject": "Hello", "message": "Help me", "help_topic": general_topic().pk}
    )
    assert response.status_code == 302
    ticket = Ticket.objects.get()
    assert ticket.user == customer
    done = client.get(response["Location"]).content.decode()
    assert reverse("tickets_portal:ticket", kwargs={"number": ticket.number}) in done


def test_only_public_active_topics_are_offered_and_accepted(client):
    public = HelpTopicFactory(name="Billing questions")
    private = HelpTopicFactory(name="Internal escalations", is_public=False)
    HelpTopicFactory(name="Retired topic", is_active=False)
    html = client.get(OPEN_URL).content.decode()
    assert "Billing questions" in html
    assert "Internal escalations" not in html and "Retired topic" not in html
    refused = client.post(OPEN_URL, visitor_post(help_topic=private.pk))
    assert refused.status_code == 400 and not Ticket.objects.exists()
    assert "help_topic" in refused.context["form"].errors
    client.post(OPEN_URL, visitor_post(help_topic=public.pk))
    assert Ticket.objects.get().help_topic == public


def test_a_real_image_and_an_allowed_document_are_attached(client):
    files = [
        SimpleUploadedFile("screen.png", png_bytes(), content_type="image/png"),
        SimpleUploadedFile("notes.txt", b"some notes", content_type="text/plain"),
    ]
    response = client.post(OPEN_URL, {**visitor_post(), "attachments": files})
    assert response.status_code == 302
    names = sorted(Attachment.objects.values_list("name", "content_type"))
    assert names == [("notes.txt", "text/plain"), ("screen.png", "image/png")]


@pytest.mark.parametrize(
    ("name", "content", "declared", "message"),
    [
        ("cat.png", b"<html><script>alert(1)</script></html>", "image/png", "not a valid image"),
        ("photo.jpg", png_bytes(), "image/jpeg", "not a valid image"),
        ("page.html", b"<h1>hi</h1>", "text/html", "not accepted"),
        ("logo.svg", b"<svg onload='alert(1)'/>", "image/svg+xml", "not accepted"),
        ("tool.exe", b"MZ....", "application/octet-stream", "not accepted"),
        ("notes.txt", b"hello", "image/png", "not a valid image"),
    ],
)
def test_a_refused_file_says_why_and_keeps_the_rest_of_the_form(
    client, name, content, declared, message
):
    upload = SimpleUploadedFile(name, content, content_type=declared)
    response = client.post(OPEN_URL, {**visitor_post(), "attachments": [upload]})
    assert response.status_code == 400
    assert not Ticket.objects.exists()
    html = response.content.decode()
    assert message in html and name in html
    # What was typed is still there; only the files must be chosen again.
    assert 'value="The printer is on fire"' in html
    assert "Smoke everywhere." in html
    assert 'value="vera@visitors.example"' in html
    assert "choose the files to attach again" in html


def test_a_file_over_the_size_limit_is_refused(client, settings):
    settings.HELPDESK_MAX_ATTACHMENT_SIZE = 1000
    upload = SimpleUploadedFile("big.txt", b"x" * 1001, content_type="text/plain")
    response = client.post(OPEN_URL, {**visitor_post(), "attachments": [upload]})
    assert response.status_code == 400
    assert "too large" in response.content.decode()
    assert not Ticket.objects.exists()


def test_the_allow_list_comes_from_settings(client, settings):
    settings.HELPDESK_ATTACHMENT_TYPES = [".log", "application/pdf"]
    ok = [
        SimpleUploadedFile("trace.log", b"lines", content_type="text/plain"),
        SimpleUploadedFile("scan.pdf", b"%PDF-1.4", content_type="application/pdf"),
    ]
    assert client.post(OPEN_URL, {**visitor_post(), "attachments": ok}).status_code == 302
    refused = SimpleUploadedFile("notes.txt", b"hi", content_type="text/plain")
    response = client.post(OPEN_URL, {**visitor_post(), "attachments": [refused]})
    assert response.status_code == 400 and "notes.txt" in response.content.decode()


def test_a_missing_subject_and_a_bad_address_are_shown_by_field(client):
    response = client.post(OPEN_URL, visitor_post(subject="", email="not-an-address"))
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"subject", "email"}


def test_a_banned_sender_is_told_clearly(client):
    BannedAddressFactory(address="vera@visitors.example")
    response = client.post(OPEN_URL, visitor_post())
    assert response.status_code == 400
    assert "banned from opening tickets" in response.content.decode()
    assert not Ticket.objects.exists()


def test_a_rejecting_filter_gives_a_clear_message_and_stores_nothing(client):
    FilterFactory(reject=True, rules=[(RuleField.SUBJECT, RuleOperator.CONTAINS, "fire")])
    response = client.post(OPEN_URL, visitor_post())
    assert response.status_code == 400
    assert "cannot accept this ticket" in response.content.decode()
    assert not Ticket.objects.exists()
    assert not User.objects.filter(email="vera@visitors.example").exists()


def test_anonymous_opening_is_rate_limited_per_address(client, settings):
    settings.HELPDESK_PORTAL_OPEN_LIMIT = 2
    for _ in range(2):
        assert client.post(OPEN_URL, visitor_post()).status_code == 302
    response = client.post(OPEN_URL, visitor_post())
    assert response.status_code == 429
    assert "Too many tickets" in response.content.decode()
    assert Ticket.objects.count() == 2
    other = client.post(OPEN_URL, visitor_post(), REMOTE_ADDR="10.1.2.3")
    assert other.status_code == 302


def test_signed_in_customers_are_not_rate_limited(client, settings, customer):
    settings.HELPDESK_PORTAL_OPEN_LIMIT = 1
    client.force_login(customer)
    for _ in range(3):
        assert (
            client.post(
                OPEN_URL, {"subject": "Hi", "message": "m", "help_topic": general_topic().pk}
            ).status_code
            == 302
        )


def test_a_visitor_cannot_open_a_ticket_in_an_agents_name_into_their_session(client, agent):
    """Opening with someone else's address files the ticket for them and mails the link to
    them; the visitor learns nothing about the account."""
    response = client.post(OPEN_URL, visitor_post(email=agent.email))
    assert response.status_code in (302, 400)
    assert "_auth_user_id" not in client.session


def test_xss_in_the_form_is_escaped_when_shown_again(client):
    payload = '"><script>alert(1)</script><img src=x onerror=alert(1)>'
    response = client.post(OPEN_URL, visitor_post(subject=payload, email="bad"))
    html = response.content.decode()
    assert "<script>alert(1)</script>" not in html
    assert not re.search(r"<img[^>]*onerror", html)
    assert "&lt;script&gt;" in html


def test_without_public_topics_the_topic_is_not_asked(client):
    HelpTopic.objects.update(is_public=False)
    html = client.get(OPEN_URL).content.decode()
    assert 'name="help_topic"' not in html
    assert 'type="file" name="attachments" multiple' in html
    data = visitor_post()
    del data["help_topic"]
    assert client.post(OPEN_URL, data).status_code == 302
    assert Ticket.objects.get().help_topic is None
