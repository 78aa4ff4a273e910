"""A customer's ticket page: the thread without notes, replies, closing, attachments."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.accounts.factories import OrganizationFactory, UserFactory
from tests.portal.conftest import png_bytes
from tests.tickets.factories import open_ticket
from tickets.models import Attachment, EntryKind, StatusState, ThreadEntry
from tickets.services import AttachmentUpload, ticket_note_add, ticket_reply

pytestmark = pytest.mark.django_db


def url(ticket, suffix=""):
    return f"/tickets/{ticket.number}/{suffix}"


@pytest.fixture
def ticket(customer, department, agent):
    ticket = open_ticket(
        user=customer,
        department=department,
        subject="Printer on fire",
        body="It smokes.",
        attachments=[AttachmentUpload("smoke.png", png_bytes(), "image/png")],
    )
    ticket_reply(ticket=ticket, by=agent, body="Unplug it, please.")
    ticket_note_add(
        ticket=ticket,
        by=agent,
        body="SECRET-NOTE: customer is grumpy",
        attachments=[AttachmentUpload("internal.txt", b"internal only", "text/plain")],
    )
    return ticket


def test_the_customer_sees_the_thread_without_internal_notes(client, customer, ticket):
    client.force_login(customer)
    response = client.get(url(ticket))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Printer on fire" in html and "It smokes." in html and "Unplug it, please." in html
    assert "SECRET-NOTE" not in html and "internal.txt" not in html
    assert "smoke.png" in html


@pytest.mark.parametrize("who", ["stranger", "anonymous", "org_member_not_shared"])
def test_anyone_else_gets_404_like_a_ticket_that_does_not_exist(client, ticket, who):
    if who == "stranger":
        client.force_login(UserFactory())
    elif who == "org_member_not_shared":
        org = OrganizationFactory(share_tickets=False)
        ticket.user.organization = org
        ticket.user.save(update_fields=["organization"])
        client.force_login(UserFactory(organization=org))
    if who == "anonymous":
        # Signed out: sign in first, for any number alike.
        for address in (url(ticket), "/tickets/999999999/"):
            response = client.get(address)
            assert response.status_code == 302 and response["Location"].startswith("/login/")
    else:
        assert client.get(url(ticket)).status_code == 404
        assert client.get("/tickets/999999999/").status_code == 404
    attachment = Attachment.objects.get(name="smoke.png")
    assert client.get(url(ticket, f"attachments/{attachment.pk}/")).status_code == 404
    before = ThreadEntry.objects.count()
    assert client.post(url(ticket, "reply/"), {"message": "hijack"}).status_code == 404
    assert client.post(url(ticket, "close/")).status_code == 404
    assert ThreadEntry.objects.count() == before


def test_a_shared_organization_member_reads_and_replies(client, ticket):
    org = OrganizationFactory(share_tickets=True)
    ticket.user.organization = org
    ticket.user.save(update_fields=["organization"])
    ticket.organization = org
    ticket.save(update_fields=["organization"])
    colleague = UserFactory(organization=org)
    client.force_login(colleague)
    assert client.get(url(ticket)).status_code == 200
    assert client.post(url(ticket, "reply/"), {"message": "Me too"}).status_code == 302
    # Closing is for the owner only.
    assert b"Close this ticket" not in client.get(url(ticket)).content


def test_the_customer_replies_with_attachments(client, customer, ticket):
    client.force_login(customer)
    files = [
        SimpleUploadedFile("a.png", png_bytes(), content_type="image/png"),
        SimpleUploadedFile("b.txt", b"log", content_type="text/plain"),
    ]
    response = client.post(
        url(ticket, "reply/"), {"message": "Still smoking", "attachments": files}
    )
    assert response.status_code == 302 and response["Location"] == url(ticket)
    entry = ThreadEntry.objects.filter(kind=EntryKind.MESSAGE).latest("pk")
    assert entry.body == "Still smoking" and entry.author == customer
    assert sorted(entry.attachments.values_list("name", flat=True)) == ["a.png", "b.txt"]
    assert "Your reply was added." in client.get(url(ticket)).content.decode()


def test_an_empty_reply_and_a_bad_file_are_refused_and_the_text_kept(client, customer, ticket):
    client.force_login(customer)
    empty = client.post(url(ticket, "reply/"), {"message": "  "})
    assert empty.status_code == 400 and "Write a message" in empty.content.decode()
    fake = SimpleUploadedFile("x.gif", b"GIF89a not really", content_type="image/gif")
    bad = client.post(url(ticket, "reply/"), {"message": "Keep me", "attachments": [fake]})
    assert bad.status_code == 400
    html = bad.content.decode()
    assert "x.gif is not a valid image file" in html and "Keep me" in html
    assert ThreadEntry.objects.filter(kind=EntryKind.MESSAGE).count() == 1


def test_a_reply_reopens_a_closed_ticket(client, customer, ticket):
    client.force_login(customer)
    client.post(url(ticket, "close/"))
    ticket.refresh_from_db()
    assert ticket.status.state == StatusState.CLOSED
    client.post(url(ticket, "reply/"), {"message": "It is back"})
    ticket.refresh_from_db()
    assert ticket.status.state == StatusState.OPEN


def test_the_owner_closes_their_ticket_when_allowed(client, customer, ticket):
    client.force_login(customer)
    assert b"Close this ticket" in client.get(url(ticket)).content
    response = client.post(url(ticket, "close/"))
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status.state == StatusState.CLOSED and ticket.closed_by == customer
    assert "The ticket is closed" in client.get(url(ticket)).content.decode()


def test_closing_is_refused_when_the_help_desk_does_not_allow_it(
    client, customer, ticket, settings
):
    settings.HELPDESK_CUSTOMERS_CAN_CLOSE = False
    client.force_login(customer)
    assert b"Close this ticket" not in client.get(url(ticket)).content
    client.post(url(ticket, "close/"))
    ticket.refresh_from_db()
    assert ticket.status.state == StatusState.OPEN
    assert "You cannot close this ticket." in client.get(url(ticket)).content.decode()


def test_closing_needs_post(client, customer, ticket):
    client.force_login(customer)
    assert client.get(url(ticket, "close/")).status_code == 405
    assert client.get(url(ticket, "reply/")).status_code == 405


def test_attachments_download_with_access_and_notes_files_stay_hidden(client, customer, ticket):
    client.force_login(customer)
    image = Attachment.objects.get(name="smoke.png")
    response = client.get(url(ticket, f"attachments/{image.pk}/"))
    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == png_bytes()
    note_file = Attachment.objects.get(name="internal.txt")
    assert client.get(url(ticket, f"attachments/{note_file.pk}/")).status_code == 404
    # Another ticket's attachment through this ticket's address: 404 too.
    other = open_ticket(
        user=customer, attachments=[AttachmentUpload("other.txt", b"other", "text/plain")]
    )
    other_file = Attachment.objects.get(name="other.txt")
    assert client.get(url(ticket, f"attachments/{other_file.pk}/")).status_code == 404
    assert client.get(url(other, f"attachments/{other_file.pk}/")).status_code == 200


def test_an_html_attachment_is_never_served_inline(client, customer, department):
    ticket = open_ticket(
        user=customer,
        department=department,
        attachments=[AttachmentUpload("page.html", b"<script>alert(1)</script>", "text/html")],
    )
    client.force_login(customer)
    attachment = Attachment.objects.get(name="page.html")
    response = client.get(url(ticket, f"attachments/{attachment.pk}/"))
    assert response["Content-Disposition"].startswith("attachment")
    assert "text/html" not in response["Content-Type"]


def test_the_page_costs_the_same_queries_for_any_number_of_entries(
    client, customer, ticket, agent, django_assert_max_num_queries
):
    client.force_login(customer)
    with django_assert_max_num_queries(12) as few:
        client.get(url(ticket))
    for n in range(5):
        ticket_reply(
            ticket=ticket,
            by=agent,
            body=f"answer {n}",
            attachments=[AttachmentUpload(f"f{n}.txt", b"x", "text/plain")],
        )
        ticket_note_add(ticket=ticket, by=agent, body=f"note {n}")
    with django_assert_max_num_queries(len(few.captured_queries)) as many:
        response = client.get(url(ticket))
    assert response.content.decode().count('class="entry ') == 7
    # The ticket's search document (all its text) is never loaded to show the page.
    assert not any("search_document" in query["sql"] for query in many.captured_queries)


def test_xss_in_subject_names_bodies_and_file_names_is_neutralised(client, department):
    evil = UserFactory(name="<script>alert('name')</script>")
    ticket = open_ticket(
        user=evil,
        department=department,
        subject="<img src=x onerror=alert('subject')>",
        body="<script>alert('body')</script> [x](javascript:alert(1))",
        attachments=[AttachmentUpload("<img src=x onerror=alert(1)>.txt", b"x", "text/plain")],
    )
    client.force_login(evil)
    html = client.get(url(ticket)).content.decode()
    assert "<script>alert(" not in html
    assert not re.search(r"<img[^>]*onerror", html)
    assert not re.search(r"href=[\"']?javascript:", html)
    assert "&lt;img src=x onerror=alert(&#x27;subject&#x27;)&gt;" in html


def test_agents_are_sent_to_the_staff_ui(client, agent, ticket):
    client.force_login(agent)
    response = client.get(url(ticket))
    assert response.status_code == 302 and response["Location"].startswith("/scp/")
    assert "SECRET-NOTE" not in client.get(url(ticket)).content.decode()
