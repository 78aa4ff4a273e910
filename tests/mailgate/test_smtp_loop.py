"""The whole mail loop through a real SMTP server (aiosmtpd on 127.0.0.1).

A customer's mail opens a ticket, the auto-response reaches the SMTP server with the ticket
number, the customer's reply to it threads into the same ticket, and the agent's response
goes out with the Message-ID, In-Reply-To and References a mail client threads by.
"""

import socket
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr

import pytest
from aiosmtpd.controller import Controller

from mailgate import services
from mailgate.models import InboundStatus, Mailbox, OutboundMessage, OutboundStatus, TemplateCode
from tests.accounts.factories import agent_user
from tickets import services as ticket_services
from tickets.models import EntryKind, Ticket

pytestmark = pytest.mark.django_db

CUSTOMER = "wile@acme.example"
SUPPORT = "support@helpdesk.example"


class Sink:
    """Keeps every message the SMTP server accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd calls this hook by name
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [message for _from, rcpts, message in self.messages if address in rcpts]

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp(settings):
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 10
    settings.DEFAULT_FROM_EMAIL = "noreply@helpdesk.example"
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def mailbox(department):
    return Mailbox.objects.create(name="Support", email=SUPPORT, department=department)


@pytest.fixture
def deliver(django_capture_on_commit_callbacks):
    """Hand raw mail to the gateway as the MTA pipe would; what it triggers runs too."""

    def deliver(raw: bytes, mailbox: Mailbox):
        with django_capture_on_commit_callbacks(execute=True):
            message, _new = services.inbound_receive(raw=raw, mailbox=mailbox, channel="pipe")
            return services.inbound_process(message=message)

    return deliver


def customer_mail(*, subject: str, body: str, message_id: str, **headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = f"Wile E. <{CUSTOMER}>"
    message["To"] = SUPPORT
    message["Subject"] = subject
    message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message.as_bytes()


def opened(deliver, mailbox, smtp):
    """A customer's first mail, and the auto-response it got."""
    first_id = make_msgid(domain="acme.example")
    inbound = deliver(
        customer_mail(subject="Rocket skates broken", body="They go left.", message_id=first_id),
        mailbox,
    )
    assert (inbound.status, inbound.outcome) == (InboundStatus.PROCESSED, "created")
    [response] = smtp.to(CUSTOMER)
    return inbound.ticket, first_id, response


def test_a_mail_opens_a_ticket_and_the_auto_response_arrives(deliver, mailbox, smtp, agent):
    ticket, first_id, response = opened(deliver, mailbox, smtp)

    assert parseaddr(response["From"])[1] == SUPPORT
    assert f"[#{ticket.number}]" in response["Subject"]
    text = response.get_body(("plain",)).get_content()
    assert f"#{ticket.number}" in text and "has been created" in text
    assert response["Auto-Submitted"] == "auto-replied"
    assert response["In-Reply-To"] == first_id and response["References"] == first_id
    outbound = OutboundMessage.objects.get(template=TemplateCode.TICKET_AUTORESP)
    assert response["Message-ID"] == outbound.message_id
    assert outbound.status == OutboundStatus.SENT
    # The department's agent was alerted, in a mail of their own.
    [alert] = smtp.to(agent.email)
    assert alert["Subject"].startswith("New ticket alert") and CUSTOMER not in alert["To"]


def test_an_agent_response_arrives_threaded(
    deliver, mailbox, smtp, agent, django_capture_on_commit_callbacks
):
    ticket, first_id, auto_response = opened(deliver, mailbox, smtp)
    # The customer answers the auto-response the way mail clients do: quoting its id and
    # their own in References, the subject token kept.
    second_id = make_msgid(domain="acme.example")
    inbound = deliver(
        customer_mail(
            subject=f"Re: {auto_response['Subject']}",
            body="Also, they squeak.",
            message_id=second_id,
            In_Reply_To=auto_response["Message-ID"],
            References=f"{first_id} {auto_response['Message-ID']}",
        ),
        mailbox,
    )
    assert (inbound.outcome, inbound.ticket) == ("message", ticket)
    smtp.clear()

    with django_capture_on_commit_callbacks(execute=True):
        entry = ticket_services.ticket_reply(ticket=ticket, by=agent, body="Oil them.")

    [reply] = smtp.to(CUSTOMER)
    assert reply["Subject"] == f"Re: Rocket skates broken [#{ticket.number}]"
    assert parseaddr(reply["From"])[1] == SUPPORT
    assert reply["Message-ID"] == entry.message_id
    assert reply["In-Reply-To"] == second_id
    assert reply["References"].split() == [first_id, second_id]
    assert reply["Auto-Submitted"] is None
    assert "Oil them." in reply.get_body(("plain",)).get_content()
    assert smtp.to(agent.email) == []

    # The customer's answer to the response threads back through its Message-ID alone.
    third_id = make_msgid(domain="acme.example")
    inbound = deliver(
        customer_mail(
            subject="Re: Rocket skates broken",
            body="Works now.",
            message_id=third_id,
            In_Reply_To=reply["Message-ID"],
        ),
        mailbox,
    )
    assert (inbound.outcome, inbound.ticket) == ("message", ticket)


def test_a_reply_to_the_auto_response_alone_threads_into_the_ticket(deliver, mailbox, smtp):
    """A reply that quotes only the auto-response's Message-ID (no token in the subject, no
    id of the customer's own): only the send log knows that id."""
    ticket, _first_id, auto_response = opened(deliver, mailbox, smtp)

    inbound = deliver(
        customer_mail(
            subject="Re: your ticket",
            body="One more thing.",
            message_id=make_msgid(domain="acme.example"),
            In_Reply_To=auto_response["Message-ID"],
            References=auto_response["Message-ID"],
        ),
        mailbox,
    )
    assert (inbound.outcome, inbound.ticket) == ("message", ticket)
    assert Ticket.objects.count() == 1
    entry = ticket.thread.entries.order_by("pk").last()
    assert entry.kind == EntryKind.MESSAGE and "One more thing." in entry.body


def test_a_refused_connection_is_recorded(
    deliver, mailbox, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nobody listens
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    agent_user(department=mailbox.department)
    inbound = deliver(
        customer_mail(subject="Hello", body="Hi", message_id=make_msgid(domain="acme.example")),
        mailbox,
    )
    assert inbound.outcome == "created"  # mail out failing never loses mail in
    outbound = OutboundMessage.objects.get(template=TemplateCode.TICKET_AUTORESP)
    assert outbound.status == OutboundStatus.FAILED
    assert outbound.error.startswith("ConnectionRefusedError")


def agent_mail(agent, *, subject: str, body: str, **headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = f"{agent.get_full_name()} <{agent.email}>"
    message["To"] = SUPPORT
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="staff.example")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message.as_bytes()


def test_an_agent_answering_an_alert_by_mail_responds_to_the_customer(
    deliver, mailbox, smtp, agent
):
    ticket, _first_id, _response = opened(deliver, mailbox, smtp)
    [alert] = smtp.to(agent.email)
    smtp.clear()

    inbound = deliver(
        agent_mail(
            agent,
            subject=f"Re: {alert['Subject']}",
            body="Sending new skates.",
            In_Reply_To=alert["Message-ID"],
            References=f"{alert['References']} {alert['Message-ID']}",
        ),
        mailbox,
    )
    assert inbound.ticket == ticket and inbound.entry.author == agent
    [reply] = smtp.to(CUSTOMER)
    assert "Sending new skates." in reply.get_body(("plain",)).get_content()
    assert reply["Message-ID"] == inbound.entry.message_id


def test_quoting_customer_mail_from_an_agent_address_is_no_agent_response(
    deliver, mailbox, smtp, agent
):
    """Anyone copied on customer mail knows its Message-ID: with a forged agent From it
    must not become an agent's response (security.md row 41)."""
    ticket, _first_id, auto_response = opened(deliver, mailbox, smtp)
    smtp.clear()

    forged = deliver(
        agent_mail(
            agent,
            subject=f"Re: {auto_response['Subject']}",
            body="Please pay this invoice: http://evil.example",
            In_Reply_To=auto_response["Message-ID"],
        ),
        mailbox,
    )
    assert forged.outcome != "response"
    assert not ticket.thread.entries.filter(kind=EntryKind.RESPONSE).exists()
    assert smtp.to(CUSTOMER) == []


def test_a_bounced_auto_response_is_noted_on_the_ticket(deliver, mailbox, smtp):
    ticket, _first_id, auto_response = opened(deliver, mailbox, smtp)
    bounce = (
        "From: MAILER-DAEMON@acme.example\r\nTo: support@helpdesk.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\n"
        f"Message-ID: {make_msgid(domain='acme.example')}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nMailbox full.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.acme.example\r\n\r\n"
        f"Final-Recipient: rfc822; {CUSTOMER}\r\nAction: failed\r\nStatus: 5.2.2\r\n\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {auto_response['Message-ID']}\r\nSubject: x\r\n\r\n--b--\r\n"
    ).encode()
    inbound = deliver(bounce, mailbox)
    assert inbound.outcome == "bounce"
    assert inbound.ticket == ticket
    event = ticket.thread.events.get(action="delivery_failed")
    assert event.data["recipients"] == [CUSTOMER]
