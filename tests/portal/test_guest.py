"""Guest access: email + ticket number, a signed expiring link, a session for one ticket."""

import re

import pytest
import time_machine
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from tests.accounts.factories import UserFactory
from tests.portal.conftest import assert_sign_in_asked
from tests.tickets.factories import open_ticket
from tickets.models import EntryKind, StatusState, ThreadEntry
from tickets.services import ticket_collaborator_add, ticket_note_add

pytestmark = pytest.mark.django_db

GUEST_URL = "/tickets/access/"
ANSWER = "If that address and ticket number match, we sent a link"


def link_from(mail):
    return re.search(r"http://\S+(/tickets/access/\S+/)", mail.body).group(1)


@pytest.fixture
def ticket(customer, department):
    return open_ticket(user=customer, department=department, subject="Lost parcel")


def test_a_matching_request_mails_a_link_and_answers_like_any_other(
    client, ticket, customer, mailoutbox
):
    mailoutbox.clear()
    match = client.post(GUEST_URL, {"email": "CASEY@customers.example", "number": ticket.number})
    assert match.status_code == 302
    matched_page = client.get(match["Location"]).content.decode()
    assert ANSWER in matched_page
    assert len(mailoutbox) == 1 and mailoutbox[0].to == [customer.email]
    assert ticket.number in mailoutbox[0].subject
    for email, number in [
        ("casey@customers.example", "000000"),
        ("nobody@nowhere.example", ticket.number),
        (UserFactory().email, ticket.number),
    ]:
        response = client.post(GUEST_URL, {"email": email, "number": number})
        assert response.status_code == 302
        assert ANSWER in client.get(response["Location"]).content.decode()
    assert len(mailoutbox) == 1


def test_the_link_opens_that_ticket_for_reading_and_replying(
    client, ticket, customer, agent, mailoutbox
):
    ticket_note_add(ticket=ticket, by=agent, body="SECRET-NOTE")
    mailoutbox.clear()
    client.post(GUEST_URL, {"email": customer.email, "number": ticket.number})
    response = client.get(link_from(mailoutbox[0]))
    assert response.status_code == 302 and response["Location"] == f"/tickets/{ticket.number}/"
    page = client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200 and "Lost parcel" in html
    assert "SECRET-NOTE" not in html
    assert "without signing in" in html
    assert "_auth_user_id" not in client.session  # a guest, not a sign-in
    reply = client.post(f"/tickets/{ticket.number}/reply/", {"message": "Any news?"})
    assert reply.status_code == 302
    entry = ThreadEntry.objects.filter(kind=EntryKind.MESSAGE).latest("pk")
    assert entry.body == "Any news?" and entry.author == customer
    client.post(f"/tickets/{ticket.number}/close/")
    ticket.refresh_from_db()
    assert ticket.status.state == StatusState.CLOSED


def test_the_guest_session_opens_no_other_ticket(client, ticket, customer, mailoutbox):
    other_of_same_customer = open_ticket(user=customer)
    mailoutbox.clear()
    client.post(GUEST_URL, {"email": customer.email, "number": ticket.number})
    client.get(link_from(mailoutbox[0]))
    assert client.get(f"/tickets/{ticket.number}/").status_code == 200
    assert_sign_in_asked(client.get(f"/tickets/{other_of_same_customer.number}/"))
    assert client.get("/tickets/").status_code == 302  # the list needs an account


def test_a_collaborator_gets_a_link_too(client, ticket, agent, mailoutbox):
    ticket_collaborator_add(ticket=ticket, by=agent, email="cc@friends.example")
    mailoutbox.clear()
    client.post(GUEST_URL, {"email": "cc@friends.example", "number": ticket.number})
    assert len(mailoutbox) == 1
    client.get(link_from(mailoutbox[0]))
    assert client.get(f"/tickets/{ticket.number}/").status_code == 200
    # Only the owner closes.
    assert b"Close this ticket" not in client.get(f"/tickets/{ticket.number}/").content


def test_agents_get_no_guest_link(client, agent, department, mailoutbox):
    ticket = open_ticket(user=agent, department=department)
    mailoutbox.clear()
    client.post(GUEST_URL, {"email": agent.email, "number": ticket.number})
    assert mailoutbox == []


FORGERIES = {
    "garbage": lambda: "garbage",
    # Signed with the right key but for another purpose. Made when the test runs: a token
    # holds the time, and test ids must be the same in every test process.
    "other salt": lambda: signing.TimestampSigner(salt="another.salt").sign_object(
        {"t": 1, "u": 1, "n": "1"}
    ),
}


@pytest.mark.parametrize("forgery", FORGERIES)
def test_a_forged_link_opens_nothing(client, ticket, forgery):
    token = FORGERIES[forgery]()
    response = client.get(reverse("tickets_portal:guest_open", kwargs={"token": token}))
    assert response.status_code == 400
    assert "does not work" in response.content.decode()
    assert_sign_in_asked(client.get(f"/tickets/{ticket.number}/"))


def test_a_tampered_link_opens_nothing(client, ticket, customer, mailoutbox):
    victim = open_ticket(user=UserFactory())
    mailoutbox.clear()
    client.post(GUEST_URL, {"email": customer.email, "number": ticket.number})
    link = link_from(mailoutbox[0])
    token = link.split("/")[-2]
    payload, timestamp, signature = token.rsplit(":", 2)
    data = signing.b64_decode(payload.lstrip(".").encode()).decode()
    assert ticket.number in data
    changed = data.replace(ticket.number, victim.number).replace(
        f'"t":{ticket.pk}', f'"t":{victim.pk}'
    )
    forged = f"{signing.b64_encode(changed.encode()).decode()}:{timestamp}:{signature}"
    assert client.get(f"/tickets/access/{forged}/").status_code == 400
    assert_sign_in_asked(client.get(f"/tickets/{victim.number}/"))


def test_the_link_expires(client, ticket, customer, mailoutbox, settings):
    settings.HELPDESK_GUEST_LINK_MAX_AGE = 3600
    mailoutbox.clear()
    client.post(GUEST_URL, {"email": customer.email, "number": ticket.number})
    link = link_from(mailoutbox[0])
    with time_machine.travel(timezone.now() + timezone.timedelta(hours=2)):
        assert client.get(link).status_code == 400
    assert_sign_in_asked(client.get(f"/tickets/{ticket.number}/"))


def test_guest_attachment_downloads_are_scoped_to_the_ticket(
    client, customer, department, mailoutbox
):
    from tickets.services import AttachmentUpload

    ticket = open_ticket(
        user=customer,
        department=department,
        attachments=[AttachmentUpload("invoice.txt", b"42 EUR", "text/plain")],
    )
    mailoutbox.clear()
    client.post(GUEST_URL, {"email": customer.email, "number": ticket.number})
    client.get(link_from(mailoutbox[0]))
    attachment = ticket.thread.entries.get().attachments.get()
    response = client.get(f"/tickets/{ticket.number}/attachments/{attachment.pk}/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"42 EUR"


def test_asking_for_links_is_rate_limited(client, ticket, customer, settings, mailoutbox):
    settings.HELPDESK_PORTAL_EMAIL_LIMIT = 2
    mailoutbox.clear()
    for _ in range(2):
        client.post(GUEST_URL, {"email": customer.email, "number": ticket.number})
    response = client.post(GUEST_URL, {"email": customer.email, "number": ticket.number})
    assert response.status_code == 429
    assert len(mailoutbox) == 2


def test_a_bad_form_shows_its_errors(client):
    response = client.post(GUEST_URL, {"email": "nope", "number": ""})
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"email", "number"}


def test_a_signed_in_customer_following_someone_elses_link_is_signed_out_first(
    client, ticket, customer, mailoutbox
):
    mailoutbox.clear()
    client.post(GUEST_URL, {"email": customer.email, "number": ticket.number})
    link = link_from(mailoutbox[0])
    other = UserFactory()
    open_ticket(user=other)
    client.force_login(other)
    client.get(link)
    assert "_auth_user_id" not in client.session
    assert client.get(f"/tickets/{ticket.number}/").status_code == 200


def test_one_address_gets_a_limited_number_of_links_whoever_asks(
    client, ticket, customer, settings, mailoutbox
):
    settings.HELPDESK_PORTAL_EMAIL_LIMIT = 2
    mailoutbox.clear()
    for n in range(4):
        response = client.post(
            GUEST_URL,
            {"email": customer.email, "number": ticket.number},
            REMOTE_ADDR=f"10.0.0.{n + 1}",
        )
        assert response.status_code == 302  # the same answer every time
    assert len(mailoutbox) == 2
