"""Mail in: who a mail is from and who it is copied to, and mail that holds no text."""

from pathlib import Path

import pytest

from accounts.models import User
from mailgate.models import InboundStatus, Mailbox, OutboundMessage, TemplateCode
from tests.accounts.factories import agent_user
from tests.mailgate.test_inbound import deliver, mail, mailbox  # noqa: F401 (fixture)
from tickets import services as ticket_services
from tickets.models import EntryKind, EventAction, Ticket

pytestmark = pytest.mark.django_db

SAMPLES = Path("/work/shared/mail-samples")


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Run a change and the mail it triggers after commit."""

    def run(action, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return action(*args, **kwargs)

    return run


# --- internationalised addresses (RFC 6532) ---------------------------------------------------


def test_a_sender_with_a_non_ascii_address_opens_a_ticket(mailbox, run):  # noqa: F811
    message = run(deliver, (SAMPLES / "mail-gem--utf8_headers.eml").read_bytes(), mailbox)
    assert (message.status, message.outcome) == (InboundStatus.PROCESSED, "created")
    ticket = message.ticket
    assert ticket.user.email == "jdöe@mächine.example"
    assert ticket.user.name == "Jöhn Doe"
    assert ticket.subject == "Säying Hello"
    # The customer hears back, at the address they wrote from.
    autoresponse = OutboundMessage.objects.get(ticket=ticket, template=TemplateCode.TICKET_AUTORESP)
    assert autoresponse.recipient == "jdöe@mächine.example"


def utf8_mail(*, sender: str, subject: str, cc: str = "", body: str = "Hello") -> bytes:
    """A mail with raw UTF-8 headers, as RFC 6532 mail systems send it."""
    headers = f"From: {sender}\r\nTo: support@helpdesk.example\r\nSubject: {subject}\r\n"
    if cc:
        headers += f"Cc: {cc}\r\n"
    headers += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    return (headers + "\r\n" + body + "\r\n").encode()


def test_the_non_ascii_sender_s_reply_threads_into_their_ticket(mailbox):  # noqa: F811
    first = deliver(utf8_mail(sender="Jöhn <jdöe@mächine.example>", subject="Skates"), mailbox)
    assert first.outcome == "created"
    reply = deliver(
        utf8_mail(
            sender="Jöhn <JDÖE@mächine.example>",
            subject=f"Re: [#{first.ticket.number}] Skates",
            body="Still broken.",
        ),
        mailbox,
    )
    assert reply.outcome == "message" and reply.ticket == first.ticket
    assert User.objects.filter(email="jdöe@mächine.example").count() == 1


@pytest.mark.parametrize(
    "address", ["jd öe@mächine.example", "jdöe@", "jd..öe@mächine.example", "jdöe@mächine"]
)
def test_malformed_non_ascii_addresses_are_still_refused(address):
    from django.core.exceptions import ValidationError

    from accounts.services import user_get_or_create_by_email

    with pytest.raises(ValidationError):
        user_get_or_create_by_email(email=address)


# --- mail without text ------------------------------------------------------------------------


def test_a_mail_without_any_text_opens_a_ticket_that_says_so(mailbox):  # noqa: F811
    message = deliver((SAMPLES / "mail-gem--missing_body.eml").read_bytes(), mailbox)
    assert (message.status, message.outcome) == (InboundStatus.PROCESSED, "created")
    entry = message.ticket.thread.entries.get()
    assert "(no message text)" in entry.body_html
    assert "<em>" in entry.body_html  # shown as a remark, not as the customer's words
    assert any("no text" in note for note in message.notes)


def test_an_empty_mail_with_an_attachment_keeps_the_attachment_and_no_remark(mailbox):  # noqa: F811
    raw = (SAMPLES / "django-helpdesk--blank-body-with-attachment.eml").read_bytes()
    message = deliver(raw, mailbox)
    assert message.outcome == "created"
    entry = message.ticket.thread.entries.get()
    assert [a.name for a in entry.attachments.all()] == ["baf"]
    assert "(no message text)" not in entry.body_html


def test_an_empty_reply_still_threads(mailbox):  # noqa: F811
    first = deliver(mail(), mailbox)
    reply = deliver(
        mail(subject=f"Re: [#{first.ticket.number}]", body="", In_Reply_To=first.message_id),
        mailbox,
    )
    assert (reply.outcome, reply.ticket) == ("message", first.ticket)
    assert "(no message text)" in reply.entry.body_html


def test_an_agent_s_empty_mail_answer_posts_nothing_to_the_customer(mailbox, run):  # noqa: F811
    agent = agent_user(department=mailbox.department, user__email="sam@helpdesk.example")
    ticket = run(deliver, mail(), mailbox).ticket
    alert = OutboundMessage.objects.get(ticket=ticket, template=TemplateCode.TICKET_ALERT)
    answer = deliver(
        mail(
            sender="sam@helpdesk.example",
            subject="Re: alert",
            body="",
            In_Reply_To=alert.message_id,
        ),
        mailbox,
    )
    assert answer.outcome == "empty" and answer.ticket == ticket
    assert not ticket.thread.entries.filter(kind=EntryKind.RESPONSE).exists()
    assert Ticket.objects.count() == 1
    assert agent.email == "sam@helpdesk.example"


# --- copied people become collaborators ----------------------------------------------------------


def collaborators(ticket: Ticket) -> list[str]:
    return sorted(c.user.email for c in ticket.collaborators.all())


def test_people_copied_on_a_reply_become_collaborators(mailbox):  # noqa: F811
    first = deliver(mail(), mailbox)
    # A mailbox added since: its address is ours at once.
    Mailbox.objects.create(name="Sales", email="sales@helpdesk.example")
    reply = deliver(
        mail(
            subject="Re: Rocket skates broken",
            to="support@helpdesk.example, Boss <boss@acme.example>",
            Cc="Road Runner <rr@acme.example>, wile@acme.example, sales@helpdesk.example",
            In_Reply_To=first.message_id,
        ),
        mailbox,
    )
    assert reply.outcome == "message"
    # Not us, not the customer themselves.
    assert collaborators(first.ticket) == ["boss@acme.example", "rr@acme.example"]
    events = first.ticket.thread.events.filter(action=EventAction.COLLAB_ADDED)
    assert events.count() == 2


def test_a_collaborator_s_reply_threads_into_the_ticket_as_their_message(mailbox, run):  # noqa: F811
    first = deliver(mail(Cc="Road Runner <rr@acme.example>"), mailbox)
    ticket = first.ticket
    assert collaborators(ticket) == ["rr@acme.example"]
    agent = agent_user(department=ticket.department)
    response = run(ticket_services.ticket_reply, ticket=ticket, by=agent, body="Try the brakes.")
    # The collaborator was copied on the response and answers it ...
    sent = OutboundMessage.objects.get(entry=response)
    assert any("rr@acme.example" in address for address in sent.cc)
    answer = deliver(
        mail(
            sender="Road Runner <rr@acme.example>",
            subject="Re: Rocket skates broken",
            body="Beep beep: the brakes are fine.",
            In_Reply_To=response.message_id,
        ),
        mailbox,
    )
    assert (answer.outcome, answer.ticket) == ("message", ticket)
    assert answer.entry.kind == EntryKind.MESSAGE
    assert answer.entry.author.email == "rr@acme.example"
    # ... and with only the subject token too.
    token_only = deliver(
        mail(sender="rr@acme.example", subject=f"[#{ticket.number}] more", body="Beep."),
        mailbox,
    )
    assert token_only.ticket == ticket
    assert Ticket.objects.count() == 1


def test_an_agent_s_mail_response_copies_the_cc_as_collaborators(mailbox, run):  # noqa: F811
    agent_user(department=mailbox.department, user__email="sam@helpdesk.example")
    ticket = run(deliver, mail(), mailbox).ticket
    alert = OutboundMessage.objects.get(ticket=ticket, template=TemplateCode.TICKET_ALERT)
    answer = deliver(
        mail(
            sender="sam@helpdesk.example",
            subject="Re: alert",
            body="Looping in the vendor.",
            Cc="vendor@parts.example, wile@acme.example",
            In_Reply_To=alert.message_id,
        ),
        mailbox,
    )
    assert answer.outcome == "response"
    assert collaborators(ticket) == ["vendor@parts.example"]


def test_agents_banned_and_broken_addresses_are_not_made_collaborators(mailbox):  # noqa: F811
    from routing.models import BannedAddress

    agent_user(user__email="colleague@helpdesk.example")
    BannedAddress.objects.create(address="spam.example")
    message = deliver(
        mail(
            Cc="colleague@helpdesk.example, x@spam.example, not an address, ok@acme.example",
        ),
        mailbox,
    )
    assert message.outcome == "created"
    assert collaborators(message.ticket) == ["ok@acme.example"]


def test_with_cc_collaborators_off_nobody_is_added(mailbox, settings):  # noqa: F811
    settings.HELPDESK_MAIL_CC_COLLABORATORS = False
    first = deliver(mail(Cc="rr@acme.example"), mailbox)
    deliver(mail(subject="Re: x", Cc="boss@acme.example", In_Reply_To=first.message_id), mailbox)
    assert collaborators(first.ticket) == []


def test_a_stranger_s_cc_adds_nobody_to_someone_else_s_ticket(mailbox):  # noqa: F811
    first = deliver(mail(), mailbox)
    spoof = deliver(
        mail(
            sender="mallory@evil.example",
            subject=f"Re: [#{first.ticket.number}]",
            Cc="eve@evil.example",
        ),
        mailbox,
    )
    assert spoof.ticket != first.ticket
    assert collaborators(first.ticket) == []
    assert collaborators(spoof.ticket) == ["eve@evil.example"]


def test_a_non_ascii_cc_becomes_a_collaborator(mailbox):  # noqa: F811
    raw = utf8_mail(sender="wile@acme.example", subject="Hello", cc="Märy <märy@exämple.net>")
    message = deliver(raw, mailbox)
    assert collaborators(message.ticket) == ["märy@exämple.net"]
