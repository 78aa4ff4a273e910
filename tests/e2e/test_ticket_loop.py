"""The whole loop in a real browser: a customer opens a ticket with an image in the portal,
an agent finds it in the queue, replies and adds a note, the customer sees the reply but not
the note and replies back, and the agent closes it. Every page is checked for Content
Security Policy reports and script errors; payloads in a subject, a body, a name and a file
name must show as text and never run."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from django.urls import reverse
from PIL import Image
from playwright.sync_api import expect

from routing.models import Department
from tests.accounts.factories import UserFactory, agent_user
from tickets.models import StatusState, Ticket

PASSWORD = "a-long-test-password-1"
SUBJECT = "Printer on floor 3 prints blank pages"
MESSAGE = "Every page comes out blank since this morning. A photo of the output is attached."
REPLY = "Please check that the toner cartridge's seal was removed."
NOTE = "Same model as last month's fault: vendor ticket 4471."
CUSTOMER_REPLY = "The seal was still on. It works now, thank you!"

e2e = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def png(path: Path) -> Path:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, format="PNG")
    path.write_bytes(out.getvalue())
    return path


def image_loaded(image) -> bool:
    """Whether the <img> loaded a real picture: waits until the browser is done with it
    (visible is not loaded), then checks it has pixels (a refused download has none)."""
    image.page.wait_for_function("img => img.complete", arg=image.element_handle())
    return image.evaluate("img => img.naturalWidth > 0")


def sign_in(visitor, login_url: str, email: str) -> None:
    visitor.goto(login_url)
    page = visitor.page
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("load")
    expect(page.get_by_label("Password")).to_have_count(0)


def open_ticket(visitor, *, subject: str, message: str, files: list[Path]) -> str:
    """Open a ticket in the portal as the signed-in customer; the ticket number shown."""
    page = visitor.page
    visitor.goto(reverse("tickets_portal:open"))
    page.get_by_label("Help topic").select_option(label="Report a Problem")
    page.get_by_label("Subject").fill(subject)
    page.get_by_label("Message").fill(message)
    page.get_by_label("Attachments").set_input_files([str(f) for f in files])
    page.get_by_role("button", name="Open the ticket").click()
    number = page.locator(".ticket-number-big strong")
    expect(number).to_be_visible()
    return number.inner_text().lstrip("#")


@pytest.fixture
def customer():
    return UserFactory(email="carla@customers.example", name="Carla Customer", password=PASSWORD)


@pytest.fixture
def agent():
    support = Department.objects.get(name="Support")
    return agent_user(
        department=support,
        user__email="sam@staff.example",
        user__name="Sam Agent",
        user__password=PASSWORD,
    )


@e2e
def test_a_ticket_from_portal_to_closed(visitor, customer, agent, tmp_path):
    carla, sam = visitor(), visitor()
    sign_in(carla, reverse("portal:login"), customer.email)
    number = open_ticket(
        carla, subject=SUBJECT, message=MESSAGE, files=[png(tmp_path / "blank-page.png")]
    )

    # The agent finds it in the Open queue and opens it.
    sign_in(sam, reverse("staff:login"), agent.email)
    sam.goto(reverse("tickets_staff:queue_default"))
    page = sam.page
    page.get_by_role("link", name=SUBJECT).first.click()
    page.wait_for_load_state("load")
    assert page.url.endswith(reverse("tickets_staff:ticket", args=[number]))
    expect(page.get_by_text(MESSAGE)).to_be_visible()
    thumbnail = page.locator("img.thumb").first
    expect(thumbnail).to_be_visible()
    assert image_loaded(thumbnail)

    # Seen again unchanged, the page is the kept one: its forms carry this session's token.
    page.reload()
    expect(page.get_by_text(MESSAGE)).to_be_visible()
    assert "csrf0placeholder" not in page.content()

    # A reply to the customer, then an internal note.
    page.get_by_label("Reply", exact=True).fill(REPLY)
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator(".entry-response").filter(has_text=REPLY)).to_be_visible()
    page.get_by_text("Add an internal note").click()
    page.get_by_label("Internal note").fill(NOTE)
    page.get_by_role("button", name="Add note").click()
    expect(page.locator(".entry-note").filter(has_text=NOTE)).to_be_visible()

    # The customer sees the reply, never the note, and answers.
    carla.goto(reverse("tickets_portal:ticket", args=[number]))
    page = carla.page
    expect(page.get_by_text(REPLY)).to_be_visible()
    assert NOTE not in page.content()
    own_image = page.locator("img.thumb").first
    expect(own_image).to_be_visible()
    assert image_loaded(own_image)
    page.get_by_label("Your reply").fill(CUSTOMER_REPLY)
    page.get_by_role("button", name="Send", exact=True).click()
    page.wait_for_load_state("load")
    expect(page.get_by_text(CUSTOMER_REPLY)).to_be_visible()
    assert NOTE not in page.content()

    # The agent sees the answer and closes the ticket.
    page = sam.page
    page.reload()
    expect(page.get_by_text(CUSTOMER_REPLY)).to_be_visible()
    status = page.locator("details.action").filter(has_text="Change status")
    status.locator("summary").click()
    status.get_by_label(re.compile(r"^Status")).select_option(label="Closed")
    status.get_by_role("button", name="Set status").click()
    # The outcome is announced (in the swapped page with htmx, at the top without it).
    expect(page.locator(".messages").filter(has_text=re.compile("closed", re.I))).to_be_visible()
    ticket = Ticket.objects.select_related("status").get(number=number)
    assert ticket.status.state == StatusState.CLOSED

    assert carla.problems() == []
    assert sam.problems() == []


XSS_SUBJECT = '<img src=x onerror=alert("subject")> broken'
XSS_MESSAGE = '<script>alert("body")</script> <svg onload=alert("svg")> still broken'
XSS_FILE = "\"><img src=x onerror=alert('file')>.png"
XSS_NAME = '<b onmouseover=alert("name")>Eve</b>'


@e2e
def test_payloads_in_a_ticket_show_as_text_and_never_run(visitor, agent, tmp_path):
    eve = UserFactory(email="eve@customers.example", name=XSS_NAME, password=PASSWORD)
    customer, staff = visitor(), visitor()
    sign_in(customer, reverse("portal:login"), eve.email)
    number = open_ticket(
        customer, subject=XSS_SUBJECT, message=XSS_MESSAGE, files=[png(tmp_path / XSS_FILE)]
    )
    customer.goto(reverse("tickets_portal:ticket", args=[number]))
    expect(customer.page.get_by_text(XSS_SUBJECT).first).to_be_visible()
    expect(customer.page.get_by_text('<script>alert("body")</script>')).to_be_visible()

    sign_in(staff, reverse("staff:login"), agent.email)
    staff.goto(reverse("tickets_staff:queue_default"))
    expect(staff.page.get_by_text(XSS_SUBJECT).first).to_be_visible()
    expect(staff.page.get_by_text(XSS_NAME).first).to_be_visible()
    staff.goto(reverse("tickets_staff:ticket", args=[number]))
    page = staff.page
    expect(page.get_by_text('<script>alert("body")</script>')).to_be_visible()
    expect(page.get_by_text(XSS_NAME).first).to_be_visible()

    for seen in (customer, staff):
        page = seen.page
        assert page.locator('img[src="x"]').count() == 0
        assert page.locator("svg[onload]").count() == 0
        assert page.locator("[onerror], [onmouseover]").count() == 0
        assert page.locator("b", has_text="Eve").count() == 0  # the name stayed text
        assert seen.dialogs == []
        assert seen.problems() == []
