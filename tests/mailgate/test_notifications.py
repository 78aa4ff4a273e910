"""Mail out: who is told what about a ticket, with which headers, and sending it once."""

from email.utils import parseaddr
from smtplib import SMTPServerDisconnected
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction
from django.utils import timezone
from django.utils.html import escape

from mailgate import notifications
from mailgate.models import (
    Audience,
    EmailTemplate,
    Mailbox,
    OutboundMessage,
    OutboundStatus,
    TemplateCode,
)
from tests.accounts.factories import UserFactory, agent_user, role
from tests.routing.factories import DepartmentFactory, TeamFactory
from tests.tickets.factories import closed_status, open_ticket
from tickets import services
from tickets.models import BodyFormat, EventAction

pytestmark = pytest.mark.django_db

CUSTOMER = "casey@example.com"


@pytest.fixture(autouse=True)
def _mail_settings(settings):
    settings.DEFAULT_FROM_EMAIL = "noreply@helpdesk.example"
    settings.SITE_URL = "https://help.example"


@pytest.fixture
def mailbox(department):
    return Mailbox.objects.create(
        name="Support", email="support@helpdesk.example", department=department
    )


@pytest.fixture
def customer():
    return UserFactory(email=CUSTOMER, name="Casey")


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Run a change and what it triggers after commit (the receivers, then the sends)."""

    def run(action, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return action(*args, **kwargs)

    return run


@pytest.fixture
def ticket(run, mailbox, department, customer, mailoutbox):
    ticket = run(
        open_ticket,
        user=customer,
        department=department,
        subject="Printer on fire",
        message_id="<first@customers.example>",
    )
    mailoutbox.clear()
    return ticket


def to_addresses(message):
    return sorted(parseaddr(address)[1] for address in [*message.to, *message.cc])


def mails_to(mailoutbox, address):
    return [message for message in mailoutbox if address in to_addresses(message)]


def html_part(message):
    [(content, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return content


def log(template):
    return OutboundMessage.objects.filter(template=template)


# --- the new ticket -------------------------------------------------------------------------


def test_a_new_ticket_gets_an_auto_response_with_its_number(
    run, mailbox, department, customer, agent, mailoutbox
):
    ticket = run(
        open_ticket,
        user=customer,
        department=department,
        message_id="<first@customers.example>",
    )

    [response] = mails_to(mailoutbox, CUSTOMER)
    assert response.to == ["Casey <casey@example.com>"] and response.cc == []
    assert response.from_email == "Support <support@helpdesk.example>"
    assert f"[#{ticket.number}]" in response.subject
    assert f"#{ticket.number}" in response.body and "has been created" in response.body
    assert f"#{ticket.number}" in html_part(response)
    headers = response.message()
    assert headers["Auto-Submitted"] == "auto-replied"
    assert headers["X-Auto-Response-Suppress"] == "All"
    assert headers["In-Reply-To"] == "<first@customers.example>"
    assert headers["References"] == "<first@customers.example>"
    # The Message-ID it carried is the one logged (replies thread back through it).
    outbound = log(TemplateCode.TICKET_AUTORESP).get()
    assert headers["Message-ID"] == outbound.message_id
    assert outbound.message_id.endswith("@helpdesk.example>") and len(outbound.message_id) > 40
    assert (outbound.status, outbound.attempts, outbound.error) == (OutboundStatus.SENT, 1, "")
    assert outbound.sent_at is not None and outbound.audience == Audience.CUSTOMER
    assert outbound.ticket == ticket


def test_the_new_ticket_alert_reaches_the_department_agents_who_may_see_it(
    run, mailbox, department, customer, agent, mailoutbox
):
    colleague = agent_user(department=department)
    extended = agent_user(extended={department: role("All Access")})
    on_vacation = agent_user(department=department, on_vacation=True)
    inactive = agent_user(department=department, is_active=False)
    assigned_only = agent_user(department=department, assigned_only=True)
    elsewhere = agent_user(department=DepartmentFactory())

    ticket = run(open_ticket, user=customer, department=department, by=agent)

    alerted = sorted(
        address
        for message in mailoutbox
        if message.subject.startswith("New ticket alert")
        for address in to_addresses(message)
    )
    # Not the agent who opened it, nor anyone away, inactive, or without access.
    assert alerted == sorted([colleague.email, extended.email])
    for user in (agent, on_vacation, inactive, assigned_only, elsewhere):
        assert mails_to(mailoutbox, user.email) == []
    # One email per agent, each with its own Message-ID.
    alerts = log(TemplateCode.TICKET_ALERT)
    assert alerts.count() == 2 and len(set(alerts.values_list("message_id", flat=True))) == 2
    message = mails_to(mailoutbox, colleague.email)[0]
    assert f"[#{ticket.number}]" in message.subject
    assert message.message()["Auto-Submitted"] == "auto-generated"
    assert "It is on fire" in message.body and CUSTOMER in message.body


def test_auto_responses_can_be_turned_off(run, mailbox, department, customer, settings):
    settings.HELPDESK_AUTORESPONSE_NEW_TICKET = False
    run(open_ticket, user=customer, department=department)
    assert not log(TemplateCode.TICKET_AUTORESP).exists()

    settings.HELPDESK_AUTORESPONSE_NEW_TICKET = True
    EmailTemplate.objects.filter(code=TemplateCode.TICKET_AUTORESP).update(is_active=False)
    run(open_ticket, user=customer, department=department)
    assert not log(TemplateCode.TICKET_AUTORESP).exists()


def test_auto_responses_are_off_per_call_department_and_topic(
    run, mailbox, department, customer, settings
):
    from tests.routing.factories import HelpTopicFactory

    run(open_ticket, user=customer, department=department, auto_respond=False)  # the API's
    assert not log(TemplateCode.TICKET_AUTORESP).exists()

    quiet_topic = HelpTopicFactory(auto_response=False, department=department)
    run(open_ticket, user=customer, help_topic=quiet_topic)
    assert not log(TemplateCode.TICKET_AUTORESP).exists()

    department.auto_response = False
    department.save()
    ticket = run(open_ticket, user=customer, department=department)
    assert not log(TemplateCode.TICKET_AUTORESP).exists()
    # The alerts still go out.
    assert not notifications.auto_response_wanted(ticket, {})
    department.auto_response = True
    department.save()
    ticket.refresh_from_db()
    assert notifications.auto_response_wanted(ticket, {"auto_respond": True})
    assert not notifications.auto_response_wanted(ticket, {"auto_respond": False})
    settings.HELPDESK_AUTORESPONSE = False
    assert not notifications.auto_response_wanted(ticket, {})


def test_auto_responses_are_rate_limited_per_address(
    run, mailbox, department, customer, settings, mailoutbox
):
    settings.HELPDESK_AUTORESPONSE_LIMIT = 2
    for n in range(3):
        run(open_ticket, user=customer, department=department, subject=f"Loop {n}")

    assert len(mails_to(mailoutbox, CUSTOMER)) == 2
    statuses = list(
        log(TemplateCode.TICKET_AUTORESP).order_by("pk").values_list("status", flat=True)
    )
    assert statuses == [OutboundStatus.SENT, OutboundStatus.SENT, OutboundStatus.SKIPPED]
    assert "2 auto-responses" in log(TemplateCode.TICKET_AUTORESP).order_by("pk").last().error
    # Another address is not held back.
    run(open_ticket, email="other@example.com", department=department)
    assert len(mails_to(mailoutbox, "other@example.com")) == 1


# --- responses, messages, notes -------------------------------------------------------------


def test_an_agent_response_goes_to_the_customer_and_collaborators(
    run, ticket, agent, customer, mailoutbox
):
    collaborator = UserFactory(email="robin@example.com", name="Robin")
    run(services.ticket_collaborator_add, ticket=ticket, by=agent, user=collaborator)
    entry = run(services.ticket_reply, ticket=ticket, by=agent, body="Try **turning it off**.")

    [reply] = [message for message in mailoutbox if message.subject.startswith("Re:")]
    assert reply.to == ["Casey <casey@example.com>"] and reply.cc == ["Robin <robin@example.com>"]
    assert reply.subject == f"Re: Printer on fire [#{ticket.number}]"
    assert "Try **turning it off**." in reply.body
    assert "<strong>turning it off</strong>" in html_part(reply)
    headers = reply.message()
    assert headers["Message-ID"] == entry.message_id  # the response entry's own id
    assert headers["In-Reply-To"] == "<first@customers.example>"
    assert headers["References"] == "<first@customers.example>"
    assert headers["Auto-Submitted"] is None  # a human wrote it
    assert mails_to(mailoutbox, agent.email) == []
    outbound = log(TemplateCode.TICKET_REPLY).get()
    assert outbound.entry == entry and not outbound.is_automatic


def test_a_response_threads_under_the_customers_latest_message(run, ticket, agent, customer):
    services.ticket_reply(ticket=ticket, by=agent, body="Which model?")
    services.ticket_message_add(
        ticket=ticket, user=customer, body="The LX-9", message_id="<second@customers.example>"
    )
    entry = run(services.ticket_reply, ticket=ticket, by=agent, body="Thanks.")
    outbound = log(TemplateCode.TICKET_REPLY).get(entry=entry)
    assert outbound.headers["In-Reply-To"] == "<second@customers.example>"
    first_reply = ticket.thread.entries.filter(kind="response").first().message_id
    assert outbound.headers["References"].split() == [
        "<first@customers.example>",
        first_reply,
        "<second@customers.example>",
    ]


def test_a_customer_message_alerts_the_assignee_only(
    run, ticket, agent, customer, department, mailoutbox
):
    colleague = agent_user(department=department)
    services.ticket_assign(ticket=ticket, by=colleague, agent=agent)
    run(services.ticket_message_add, ticket=ticket, user=customer, body="Any news?")

    [alert] = mailoutbox
    assert alert.to == [f"{agent.get_full_name()} <{agent.email}>"]
    assert alert.subject.startswith("New message alert") and "Any news?" in alert.body
    # The message auto-response is off by default, as in osTicket.
    assert not log(TemplateCode.MESSAGE_AUTORESP).exists()


def test_a_message_on_an_unassigned_ticket_alerts_the_department(
    run, ticket, agent, customer, department, mailoutbox, settings
):
    settings.HELPDESK_AUTORESPONSE_NEW_MESSAGE = True
    colleague = agent_user(department=department)
    run(services.ticket_message_add, ticket=ticket, user=customer, body="Hello?")

    alerted = {parseaddr(m.to[0])[1] for m in mailoutbox if m.subject.startswith("New message")}
    assert alerted == {agent.email, colleague.email}
    [confirmation] = mails_to(mailoutbox, CUSTOMER)
    assert confirmation.subject == f"Message received [#{ticket.number}]"


def test_notes_never_reach_customers(run, ticket, agent, department, mailoutbox, settings):
    settings.HELPDESK_ALERT_NOTE = True
    colleague = agent_user(department=department)
    collaborator = UserFactory(email="robin@example.com")
    services.ticket_collaborator_add(ticket=ticket, by=agent, user=collaborator)
    note = run(services.ticket_note_add, ticket=ticket, by=agent, body="Customer is VIP-grumpy")

    assert [to_addresses(message) for message in mailoutbox] == [[colleague.email]]
    assert "VIP-grumpy" in mailoutbox[0].body
    for message in mailoutbox:
        assert CUSTOMER not in to_addresses(message)
    for outbound in OutboundMessage.objects.filter(audience=Audience.CUSTOMER):
        assert "VIP-grumpy" not in outbound.body_text + outbound.body_html
    with pytest.raises(ValueError, match="internal note"):
        notifications.context_build(ticket, audience=Audience.CUSTOMER, entry=note)


def test_note_alerts_are_off_by_default(run, ticket, agent, department, mailoutbox):
    agent_user(department=department)
    run(services.ticket_note_add, ticket=ticket, by=agent, body="Quiet")
    assert mailoutbox == []


def test_a_batch_sends_nothing_about_a_change_that_rolled_back(
    ticket, agent, customer, django_capture_on_commit_callbacks
):
    """Mail worked out per run (a mail fetch) is about what committed only: a message whose
    transaction rolled back alerts nobody."""
    with notifications.mail_out_batched(), django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            services.ticket_message_add(ticket=ticket, user=customer, body="Never kept")
            raise RuntimeError("the rest of the change failed")
        kept = services.ticket_message_add(ticket=ticket, user=customer, body="Kept")

    alerts = log(TemplateCode.MESSAGE_ALERT)
    assert alerts.exists()
    assert {alert.entry_id for alert in alerts} == {kept.pk}
    assert not any("Never kept" in alert.body_text for alert in alerts)


# --- assignment, transfer, status, overdue --------------------------------------------------


def test_assignment_alerts_the_new_agent_not_the_actor(run, ticket, agent, department, mailoutbox):
    colleague = agent_user(department=department)
    run(services.ticket_assign, ticket=ticket, by=agent, agent=colleague, comment="Yours")

    [alert] = mailoutbox
    assert to_addresses(alert) == [colleague.email]
    assert alert.subject == f"Ticket assigned to you: Printer on fire [#{ticket.number}]"
    assert "Yours" in alert.body and agent.get_full_name() in alert.body

    mailoutbox.clear()
    run(services.ticket_assign, ticket=ticket, by=agent, agent=agent)  # to themselves
    assert mailoutbox == []


def test_team_assignment_alerts_the_members(run, ticket, agent, department, mailoutbox):
    member = agent_user(department=department)
    team = TeamFactory()
    team.members.set([member.agent, agent.agent])
    run(services.ticket_assign, ticket=ticket, by=agent, team=team)
    assert [to_addresses(message) for message in mailoutbox] == [[member.email]]


def test_claiming_alerts_nobody(run, ticket, agent, mailoutbox):
    run(services.ticket_claim, ticket=ticket, by=agent)
    assert mailoutbox == []


def test_transfer_alerts_are_off_by_default_and_go_to_the_new_department(
    run, ticket, agent, mailoutbox, settings
):
    sales = DepartmentFactory(name="Sales")
    seller = agent_user(department=sales)
    agent.agent.department_access.create(department=sales, role=role("All Access"))
    run(services.ticket_transfer, ticket=ticket, by=agent, department=sales)
    assert mailoutbox == []

    settings.HELPDESK_ALERT_TRANSFER = True
    support = ticket.department.__class__.objects.get(name="Helpdesk")
    run(services.ticket_transfer, ticket=ticket, by=agent, department=support)
    run(services.ticket_transfer, ticket=ticket, by=agent, department=sales)
    alerted = [to_addresses(m) for m in mailoutbox if "transferred to Sales" in m.subject]
    assert alerted == [[seller.email]]


def test_closing_tells_the_customer_unless_they_closed_it(
    run, ticket, agent, customer, mailoutbox, settings
):
    run(
        services.ticket_status_set,
        ticket=ticket,
        by=agent,
        status=closed_status(),
        comment="Fixed the fuser.",
    )
    [notice] = mailoutbox
    assert to_addresses(notice) == [CUSTOMER]
    assert notice.subject == f"Printer on fire [#{ticket.number}] is closed"
    assert "Fixed the fuser." in notice.body
    assert notice.message()["Auto-Submitted"] == "auto-generated"

    mailoutbox.clear()
    settings.HELPDESK_CUSTOMERS_CAN_CLOSE = True
    services.ticket_message_add(ticket=ticket, user=customer, body="Broken again")  # reopens
    run(services.ticket_status_set, ticket=ticket, by=customer, status=closed_status())
    assert mails_to(mailoutbox, CUSTOMER) == []


def test_a_reply_that_closes_sends_the_reply_only(run, ticket, agent, mailoutbox):
    run(services.ticket_reply, ticket=ticket, by=agent, body="Done.", status=closed_status())
    assert [message.subject for message in mailoutbox] == [
        f"Re: Printer on fire [#{ticket.number}]"
    ]


def test_the_overdue_alert(run, ticket, agent, department, mailoutbox):
    colleague = agent_user(department=department)
    services.ticket_assign(ticket=ticket, by=agent, agent=colleague)
    run(notifications.overdue_alert_send, ticket)
    [alert] = mailoutbox
    assert to_addresses(alert) == [colleague.email]
    assert alert.subject == f"Overdue ticket alert: Printer on fire [#{ticket.number}]"
    assert log(TemplateCode.OVERDUE_ALERT).count() == 1


# --- addresses ------------------------------------------------------------------------------


def test_never_mail_our_own_addresses(run, ticket, agent, mailoutbox):
    loop = UserFactory(email="support@helpdesk.example")
    noreply = UserFactory(email="noreply@helpdesk.example")
    services.ticket_collaborator_add(ticket=ticket, by=agent, user=loop)
    services.ticket_collaborator_add(ticket=ticket, by=agent, user=noreply)
    run(services.ticket_reply, ticket=ticket, by=agent, body="Hi")
    [reply] = mailoutbox
    assert to_addresses(reply) == [CUSTOMER]


def test_inactive_customers_get_nothing(run, ticket, agent, customer, mailoutbox):
    customer.is_active = False
    customer.save()
    run(services.ticket_reply, ticket=ticket, by=agent, body="Hi")
    assert mailoutbox == []


def test_the_departments_outgoing_mailbox_sends(run, mailbox, department, customer, mailoutbox):
    outgoing = Mailbox.objects.create(name="Help", email="help@helpdesk.example")
    department.outgoing_mailbox = outgoing
    department.save()
    run(open_ticket, user=customer, department=department)
    assert {message.from_email for message in mailoutbox} == {"Help <help@helpdesk.example>"}


def test_sender_falls_back_to_the_inbound_mailbox_then_the_default(
    run, customer, agent, department, mailoutbox
):
    ticket = run(open_ticket, user=customer, department=department)  # no mailbox anywhere
    assert {message.from_email for message in mailoutbox} == {"noreply@helpdesk.example"}

    from mailgate.models import InboundMessage

    other = Mailbox.objects.create(name="Sales", email="sales@helpdesk.example")
    InboundMessage.objects.create(
        mailbox=other, channel="imap", source_key="x", content_hash="0" * 64, size=1, ticket=ticket
    )
    mailoutbox.clear()
    run(services.ticket_reply, ticket=ticket, by=agent, body="Hi")
    assert [message.from_email for message in mailoutbox] == ["Sales <sales@helpdesk.example>"]


# --- templates ------------------------------------------------------------------------------


def test_the_shipped_templates_are_rows_admins_edit(run, mailbox, department, customer, mailoutbox):
    assert set(EmailTemplate.objects.values_list("code", flat=True)) == set(TemplateCode.values)
    EmailTemplate.objects.filter(code=TemplateCode.TICKET_AUTORESP).update(
        subject="We got it: {{ ticket.subject }}",
        body_text="Number {{ ticket.number }} for {{ recipient.name }}",
        body_html="",
    )
    ticket = run(open_ticket, user=customer, department=department, subject="Fax")
    [response] = mails_to(mailoutbox, CUSTOMER)
    # The token is added when an admin's subject leaves it out.
    assert response.subject == f"We got it: Fax [#{ticket.number}]"
    assert response.body.strip() == f"Number {ticket.number} for Casey"
    assert response.alternatives == []


@pytest.mark.parametrize(
    ("field", "source"),
    [
        ("subject", "{% if %}"),
        ("body_text", "{{ ticket.number|nosuchfilter }}"),
        ("body_html", "{% load static %}"),
        ("body_html", "{% debug %}"),
        ("body_html", '{% include "base.html" %}'),
        ("body_html", "{% autoescape off %}{{ ticket.subject }}{% endautoescape %}"),
        ("body_html", "{{ entry.body|safe }}"),
    ],
)
def test_a_template_that_does_not_compile_is_refused(field, source):
    template = EmailTemplate.objects.get(code=TemplateCode.TICKET_ALERT)
    setattr(template, field, source)
    with pytest.raises(ValidationError) as error:
        template.full_clean()
    assert field in error.value.message_dict
    with pytest.raises(ValidationError):
        template.save()


def test_templates_get_plain_data_and_reach_no_model(run, ticket, agent, department, mailoutbox):
    template = EmailTemplate.objects.get(code=TemplateCode.ASSIGNED_ALERT)
    template.body_text = (
        "[{{ ticket.user.password }}|{{ ticket.delete }}|{{ ticket.thread.entries.all }}"
        "|{{ customer.password }}|{{ recipient.user }}|{{ ticket.id }}|{{ ticket.pk }}"
        "|{{ ticket.clear }}{{ ticket.subject }}]"
    )
    template.save()
    colleague = agent_user(department=department)
    run(services.ticket_assign, ticket=ticket, by=agent, agent=colleague)
    [alert] = mailoutbox
    assert alert.body.strip() == "[|||||||Printer on fire]"
    ticket.refresh_from_db()  # still there

    context = notifications.context_build(ticket, audience=Audience.STAFF)

    def plain(value):
        if isinstance(value, dict):
            return all(isinstance(key, str) and plain(item) for key, item in value.items())
        return isinstance(value, str)

    assert plain(context)
    with pytest.raises(TypeError, match="plain data"):
        notifications.render_template(TemplateCode.TICKET_ALERT, {"ticket": ticket})


def test_customer_text_is_escaped_and_bodies_sanitised_in_html_mail(
    run, mailbox, department, customer, agent, mailoutbox
):
    ticket = run(
        open_ticket,
        user=customer,
        department=department,
        subject='<script>alert("subject")</script>',
        body='<p>Hi</p><script>alert("body")</script><img src="x" onerror="alert(1)">'
        '<a href="javascript:alert(2)">click</a>',
        body_format=BodyFormat.HTML,
        name="<b>Mallory</b>",
    )
    [alert] = [message for message in mailoutbox if message.subject.startswith("New ticket")]
    html = html_part(alert)
    assert "<script" not in html and "onerror" not in html and "javascript:" not in html
    assert "&lt;script&gt;alert(&quot;subject&quot;)&lt;/script&gt;" in html
    assert "<p>Hi</p>" in html
    assert 'alert("body")' not in alert.body  # the text part is the sanitised body, as text
    [response] = mails_to(mailoutbox, CUSTOMER)
    assert "<script" not in html_part(response)
    assert f"[#{ticket.number}]" in alert.subject


# --- sending --------------------------------------------------------------------------------


class FailingBackend(BaseEmailBackend):
    def send_messages(self, messages):
        raise SMTPServerDisconnected("Connection unexpectedly closed")


class BrokenBackend(BaseEmailBackend):
    def send_messages(self, messages):
        raise ValueError("no such provider")


def queued(ticket):
    return notifications._queue(
        ticket,
        TemplateCode.TICKET_REPLY,
        to=[notifications.Recipient.of(ticket.user)],
        message_id="<fixed@helpdesk.example>",
    )


def test_a_task_run_twice_sends_once(ticket, mailoutbox):
    outbound = queued(ticket)
    assert notifications.outbound_send_task.apply(args=[outbound.pk]).get() == "sent"
    assert notifications.outbound_send_task.apply(args=[outbound.pk]).get() == "not queued"
    assert len(mailoutbox) == 1
    outbound.refresh_from_db()
    assert (outbound.status, outbound.attempts) == (OutboundStatus.SENT, 1)


def test_a_failed_send_is_recorded_with_its_error(ticket, settings, mailoutbox):
    settings.EMAIL_BACKEND = "tests.mailgate.test_notifications.FailingBackend"
    outbound = queued(ticket)

    # A temporary failure goes back to the queue for Celery's retry...
    with pytest.raises(SMTPServerDisconnected):
        notifications.outbound_send(outbound.pk, final=False)
    outbound.refresh_from_db()
    assert (outbound.status, outbound.attempts) == (OutboundStatus.QUEUED, 1)
    assert "Connection unexpectedly closed" in outbound.error

    # ...and the last attempt records the failure, on the ticket's log too.
    assert notifications.outbound_send(outbound.pk, final=True) == OutboundStatus.FAILED
    outbound.refresh_from_db()
    assert (outbound.status, outbound.attempts) == (OutboundStatus.FAILED, 2)
    assert outbound.error == "SMTPServerDisconnected: Connection unexpectedly closed"
    event = ticket.thread.events.get(action=EventAction.DELIVERY_FAILED)
    assert event.data["recipients"] == [CUSTOMER]
    assert mailoutbox == []


def test_the_task_retries_temporary_failures_only(ticket, settings):
    task = notifications.outbound_send_task
    assert task.max_retries == 5 and task.retry_backoff and task.acks_late
    assert set(task.autoretry_for) >= {OSError}

    settings.EMAIL_BACKEND = "tests.mailgate.test_notifications.BrokenBackend"
    outbound = queued(ticket)
    assert notifications.outbound_send(outbound.pk, final=False) == OutboundStatus.FAILED
    outbound.refresh_from_db()
    assert outbound.error == "ValueError: no such provider"


def test_a_failing_send_never_breaks_the_change(run, ticket, agent, settings):
    settings.EMAIL_BACKEND = "tests.mailgate.test_notifications.FailingBackend"
    entry = run(services.ticket_reply, ticket=ticket, by=agent, body="Hi")
    outbound = log(TemplateCode.TICKET_REPLY).get(entry=entry)
    assert outbound.status == OutboundStatus.FAILED and outbound.attempts == 1


def test_a_broken_notification_never_breaks_the_change(run, ticket, agent, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("template trouble")

    monkeypatch.setattr(notifications, "_rendered_raw", explode)
    entry = run(services.ticket_reply, ticket=ticket, by=agent, body="Hi")
    assert entry.pk and not log(TemplateCode.TICKET_REPLY).exists()


def test_the_sweep_queues_what_never_reached_the_broker(ticket, mailoutbox):
    from datetime import timedelta

    from django.utils import timezone

    outbound = queued(ticket)
    assert notifications.outbound_sweep_task() == 0  # too recent: its task is on the way
    OutboundMessage.objects.filter(pk=outbound.pk).update(
        created_at=timezone.now() - timedelta(minutes=20)
    )
    assert notifications.outbound_sweep_task() == 1
    assert len(mailoutbox) == 1
    OutboundMessage.objects.filter(pk=outbound.pk).update(
        status=OutboundStatus.QUEUED, created_at=timezone.now() - timedelta(days=2)
    )
    notifications.outbound_sweep_task()
    outbound.refresh_from_db()
    assert outbound.status == OutboundStatus.FAILED and "given up" in outbound.error


def test_a_response_carries_its_attachments(run, ticket, agent, mailoutbox):
    upload = services.AttachmentUpload(
        name="manual.pdf", content=b"%PDF-1.4 manual", content_type="application/pdf"
    )
    run(
        services.ticket_reply, ticket=ticket, by=agent, body="See the manual.", attachments=[upload]
    )
    [reply] = mailoutbox
    assert reply.attachments == [("manual.pdf", b"%PDF-1.4 manual", "application/pdf")]


def test_names_are_quoted_and_kept_on_one_line(run, mailbox, department, mailoutbox):
    customer = UserFactory(email="zoe@example.com", name="Zoë \r\n Smith, Jr.")
    run(open_ticket, user=customer, department=department)
    [response] = mails_to(mailoutbox, "zoe@example.com")
    assert response.to == ['"Zoë Smith, Jr." <zoe@example.com>']
    assert "Zoë Smith, Jr." in str(response.message()["To"]) or "=?utf-8?" in str(
        response.message()["To"]
    )


def test_mail_out_can_be_suppressed_for_a_block(run, mailbox, department, customer, mailoutbox):
    with notifications.mail_out_suppressed():
        run(open_ticket, user=customer, department=department)
    assert mailoutbox == [] and not OutboundMessage.objects.exists()
    run(open_ticket, user=customer, department=department)
    assert len(mailoutbox) == 1


@pytest.mark.parametrize(
    ("body_text", "body_html", "expected_text", "expected_html"),
    [
        # Plain mentions: one rendering filled in for each agent, escaped in the HTML part.
        (
            "For {{ recipient.name }} <{{ recipient.email }}>",
            "<p>For {{ recipient.name }}</p>",
            "For {name} <{email}>",
            "<p>For {escaped}</p>",
        ),
        # A filter or a tag on the recipient: rendered for each agent.
        (
            "For {{ recipient.name|upper }}{% if recipient.name == 'Ann & Co' %}!{% endif %}",
            "<p>{{ recipient.name|lower }}</p>",
            "For {upper}{bang}",
            "<p>{lower}</p>",
        ),
    ],
)
def test_alert_templates_name_each_agent_however_they_mention_them(
    run,
    mailbox,
    department,
    customer,
    mailoutbox,
    body_text,
    body_html,
    expected_text,
    expected_html,
):
    template = EmailTemplate.objects.get(code=TemplateCode.TICKET_ALERT)
    template.subject = "Alert for {{ recipient.name }}"
    template.body_text = body_text
    template.body_html = body_html
    template.save()
    agents = [agent_user(department=department, user__name=name) for name in ("Ann & Co", "Bo <b>")]

    run(open_ticket, user=customer, department=department)

    for agent in agents:
        [alert] = mails_to(mailoutbox, agent.email)
        name = agent.name
        values = {
            "name": name,
            "email": agent.email,
            "escaped": escape(name),
            "upper": name.upper(),
            "lower": escape(name.lower()),
            "bang": "!" if name == "Ann & Co" else "",
        }
        assert alert.subject.startswith(f"Alert for {name}")
        assert alert.body.strip() == expected_text.format(**values)
        assert html_part(alert) == expected_html.format(**values)


def test_each_agent_of_an_alert_gets_their_own_name_and_time_zone(
    run, mailbox, department, customer, mailoutbox
):
    template = EmailTemplate.objects.get(code=TemplateCode.TICKET_ALERT)
    template.body_text = "For {{ recipient.name }}: opened {{ ticket.created_at }}"
    template.body_html = ""
    template.save()
    tokyo = agent_user(department=department, user__name="Aiko", user__timezone="Asia/Tokyo")
    also_tokyo = agent_user(department=department, user__name="Ren", user__timezone="Asia/Tokyo")
    new_york = agent_user(
        department=department, user__name="Nia", user__timezone="America/New_York"
    )

    ticket = run(open_ticket, user=customer, department=department)

    for user, zone in ((tokyo, "JST"), (also_tokyo, "JST"), (new_york, "EST")):
        [alert] = mails_to(mailoutbox, user.email)
        local = timezone.localtime(ticket.created_at, ZoneInfo(user.timezone))
        assert alert.body.strip() == (f"For {user.name}: opened {local:%Y-%m-%d %H:%M} {zone}"), (
            user.name
        )


def test_sent_together_only_the_response_carries_its_attachments(run, ticket, agent, mailoutbox):
    upload = services.AttachmentUpload(
        name="manual.pdf", content=b"%PDF-1.4 manual", content_type="application/pdf"
    )
    run(
        services.ticket_reply, ticket=ticket, by=agent, body="See the manual.", attachments=[upload]
    )
    sent = OutboundMessage.objects.filter(ticket=ticket, status=OutboundStatus.SENT)
    pks = list(sent.values_list("pk", flat=True))
    assert len(pks) >= 2  # the auto-response to the first message, and the response
    sent.update(status=OutboundStatus.QUEUED)
    mailoutbox.clear()

    assert notifications.outbound_send_many(pks) == len(pks) == len(mailoutbox)
    assert [m.attachments for m in mailoutbox if m.attachments] == [
        [("manual.pdf", b"%PDF-1.4 manual", "application/pdf")]
    ]
