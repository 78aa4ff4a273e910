"""Opening tickets: who the customer is, where the ticket goes, what is recorded."""

import io

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from PIL import Image

from accounts.models import User
from tests.accounts.factories import OrganizationFactory, UserFactory, agent_user, role
from tests.routing.factories import DepartmentFactory, HelpTopicFactory
from tests.tickets.factories import open_ticket, priority
from tickets import signals
from tickets.models import Attachment, EntryKind, EventAction, StatusState, ThreadEvent, Ticket
from tickets.services import AttachmentUpload, TicketDraft, ticket_open

pytestmark = pytest.mark.django_db


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buffer, "PNG")
    return buffer.getvalue()


def test_a_guest_opens_a_ticket_and_becomes_a_customer(django_capture_on_commit_callbacks):
    created = []
    signals.ticket_created.connect(
        lambda **kw: created.append(kw["ticket"]), weak=False, dispatch_uid="test_created"
    )
    try:
        with django_capture_on_commit_callbacks(execute=True):
            ticket = ticket_open(
                draft=TicketDraft(
                    email="New.Person@Example.COM",
                    name="New Person",
                    subject="  Cannot   log in ",
                    body="Since this morning.",
                )
            )
    finally:
        signals.ticket_created.disconnect(dispatch_uid="test_created")

    customer = User.objects.get(email="new.person@example.com")
    assert ticket.user == customer
    assert customer.name == "New Person"
    assert not customer.has_usable_password()
    assert ticket.subject == "Cannot log in"
    assert ticket.status.state == StatusState.OPEN and ticket.status.is_default
    assert ticket.priority == priority("Normal")
    assert ticket.department.name == "Support"  # the shipped default department
    assert len(ticket.number) == 6 and ticket.number.isdigit() and ticket.number[0] != "0"
    entry = ticket.thread.entries.get()
    assert entry.kind == EntryKind.MESSAGE and entry.author == customer
    assert entry.body == "Since this morning."
    event = ThreadEvent.objects.get(thread=ticket.thread)
    assert event.action == EventAction.CREATED and event.actor == customer
    assert created == [ticket]


def test_a_known_address_reuses_the_customer_whatever_its_case():
    alice = UserFactory(email="alice@example.com")
    ticket = open_ticket(email="ALICE@example.com", name="Someone else")
    assert ticket.user == alice
    assert User.objects.filter(email__iexact="alice@example.com").count() == 1


def test_a_new_customer_joins_the_organization_of_their_domain():
    acme = OrganizationFactory(name="Acme", domains=["acme.example"])
    ticket = open_ticket(email="wile@acme.example")
    assert ticket.user.organization == acme
    assert ticket.organization == acme


def test_the_help_topic_routes_the_ticket():
    billing = DepartmentFactory(name="Billing")
    topic = HelpTopicFactory(name="Invoices", department=billing, priority=priority("High"))
    ticket = open_ticket(help_topic=topic)
    assert ticket.department == billing
    assert ticket.priority == priority("High")
    assert ticket.help_topic == topic


@pytest.mark.parametrize(
    ("draft", "field"),
    [
        ({"subject": "   "}, "subject"),
        ({"subject": "x" * 256}, "subject"),
        ({"body": "  "}, "body"),
        ({"source": "pigeon"}, "source"),
        ({"email": "not-an-address"}, "email"),
    ],
)
def test_bad_input_names_the_field_and_stores_nothing(draft, field):
    fields = {"subject": "Help", "body": "Please", "email": "ok@example.com", **draft}
    with pytest.raises(ValidationError) as error:
        ticket_open(draft=TicketDraft(**fields))
    assert field in error.value.message_dict
    assert not Ticket.objects.exists()


def test_customers_cannot_pick_internal_or_inactive_topics():
    for topic in (HelpTopicFactory(is_public=False), HelpTopicFactory(is_active=False)):
        with pytest.raises(ValidationError) as error:
            open_ticket(help_topic=topic)
        assert "help_topic" in error.value.message_dict


def test_agents_may_use_internal_topics():
    agent = agent_user()
    topic = HelpTopicFactory(is_public=False, department=agent.agent.department)
    ticket = open_ticket(help_topic=topic, by=agent)
    assert ticket.help_topic == topic


def test_an_archived_department_takes_no_tickets():
    with pytest.raises(ValidationError) as error:
        open_ticket(department=DepartmentFactory(is_active=False))
    assert "department" in error.value.message_dict


def test_an_agent_opens_on_behalf_of_a_customer_only_with_ticket_create(department):
    viewer = agent_user(department=department, role=role("View Only"))
    with pytest.raises(PermissionDenied):
        open_ticket(email="caller@example.com", department=department, by=viewer)
    assert not Ticket.objects.exists()

    agent = agent_user(department=department)
    ticket = open_ticket(email="caller@example.com", department=department, by=agent)
    event = ticket.thread.events.get(action=EventAction.CREATED)
    assert event.actor == agent
    assert ticket.user.email == "caller@example.com"


def test_a_customer_cannot_open_a_ticket_for_someone_else():
    alice, bob = UserFactory(), UserFactory()
    with pytest.raises(PermissionDenied):
        open_ticket(user=bob, by=alice)


def test_collaborators_are_copied_and_recorded():
    ticket = open_ticket(collaborators=["cc1@example.com", "cc2@example.com"])
    assert sorted(c.user.email for c in ticket.collaborators.all()) == [
        "cc1@example.com",
        "cc2@example.com",
    ]
    assert ticket.thread.events.filter(action=EventAction.COLLAB_ADDED).count() == 2


def test_attachments_are_stored_once_by_content_hash():
    content = png_bytes()
    first = open_ticket(attachments=[AttachmentUpload("../../etc/shot.png", content, "image/png")])
    second = open_ticket(attachments=[AttachmentUpload("other.png", content, "image/png")])
    a, b = (Attachment.objects.get(entry__thread__ticket=t) for t in (first, second))
    assert a.name == "shot.png"
    assert a.content_hash == b.content_hash
    assert (
        a.file.name
        == b.file.name
        == f"attachments/{a.content_hash[:2]}/{a.content_hash[2:4]}/{a.content_hash}"
    )
    assert default_storage.open(a.file.name).read() == content


def test_a_fake_image_is_refused_and_nothing_is_kept():
    upload = AttachmentUpload("evil.png", b"<svg onload=alert(1)>", "image/png")
    with pytest.raises(ValidationError) as error:
        open_ticket(attachments=[upload])
    assert "attachments" in error.value.message_dict
    assert not Ticket.objects.exists()


def test_an_oversized_attachment_is_refused(settings):
    settings.HELPDESK_MAX_ATTACHMENT_SIZE = 10
    with pytest.raises(ValidationError) as error:
        open_ticket(attachments=[AttachmentUpload("big.txt", b"x" * 11, "text/plain")])
    assert "attachments" in error.value.message_dict
