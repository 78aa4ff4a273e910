"""The filter action "send a canned reply": the engine names the canned response, and
`ticket_open` posts it, rendered for the new ticket, in place of the auto-response, on every
channel."""

from email.message import EmailMessage
from email.utils import parseaddr

import pytest
from django.core.exceptions import ValidationError
from django.db.models import ProtectedError
from django.urls import reverse

from helpdesk.adminlog import admin_delete
from helpdesk.config import config
from kb.models import CannedResponse
from mailgate import services as mail_services
from mailgate.models import Mailbox, OutboundMessage, OutboundStatus, TemplateCode
from routing.filters import DraftRejected, filters_apply
from routing.models import Filter, FilterRule, RuleField, RuleOperator
from tests.accounts.factories import UserFactory, agent_user, role
from tests.api.conftest import key_client
from tests.kb.factories import CannedResponseFactory
from tests.routing.factories import DepartmentFactory, FilterFactory
from tests.tickets.factories import open_ticket
from tickets.models import EntryKind, EventAction, Source, ThreadEvent, Ticket
from tickets.services import TicketDraft

pytestmark = pytest.mark.django_db

Op = RuleOperator
F = RuleField
PRINTER = [(F.SUBJECT, Op.CONTAINS, "printer")]
CUSTOMER = "casey@example.com"
WELCOME = (
    "Hello {{ customer.first_name }}, thanks for writing about “{{ ticket.subject }}”. "
    "Ticket #{{ ticket.number }} is with {{ ticket.department }}.{{ agent.name }}"
)


@pytest.fixture(autouse=True)
def _mail_settings(settings):
    settings.DEFAULT_FROM_EMAIL = "noreply@helpdesk.example"


@pytest.fixture
def department():
    department = DepartmentFactory(name="Printing")
    Mailbox.objects.create(name="Support", email="support@helpdesk.example", department=department)
    return department


@pytest.fixture
def customer():
    return UserFactory(email=CUSTOMER, name="Casey Jones")


@pytest.fixture
def canned():
    return CannedResponseFactory(title="Printer welcome", body=WELCOME)


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Run a change and what it triggers after commit (the receivers, then the sends)."""

    def run(action, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return action(*args, **kwargs)

    return run


def mails_to(mailoutbox, address):
    return [
        message
        for message in mailoutbox
        if address in [parseaddr(a)[1] for a in [*message.to, *message.cc]]
    ]


def canned_entry(ticket):
    return ticket.thread.entries.get(kind=EntryKind.RESPONSE)


def expected_body(ticket):
    return (
        f"Hello Casey, thanks for writing about “{ticket.subject}”. "
        f"Ticket #{ticket.number} is with {ticket.department.name}."
    )


def assert_answered_with_canned_reply(ticket, mailoutbox):
    """The thread holds the rendered reply, sent by the help desk (no agent) and recorded by
    the filter; the customer got it by mail, and no auto-response besides."""
    entry = canned_entry(ticket)
    assert entry.body == expected_body(ticket)
    assert entry.author is None and entry.poster == config().helpdesk_name
    assert entry.message_id
    event = ticket.thread.events.get(action=EventAction.RESPONSE)
    assert event.actor is None and event.actor_name == ""
    assert event.data == {
        "entry": entry.pk,
        "canned_response": "Printer welcome",
        "filter": "Welcome printers",
    }
    assert ticket.thread.events.get(action=EventAction.CREATED).data["auto_respond"] is False
    [mail] = mails_to(mailoutbox, CUSTOMER)
    assert mail.body.count(expected_body(ticket)) == 1
    assert f"[#{ticket.number}]" in mail.subject
    assert mail.message()["Message-ID"] == entry.message_id
    assert mail.message()["Auto-Submitted"] == "auto-replied"
    logged = OutboundMessage.objects.filter(ticket=ticket, audience="customer")
    assert [row.template for row in logged] == [TemplateCode.TICKET_REPLY]
    assert logged.get().is_automatic and logged.get().entry == entry


class TestEngine:
    def test_the_outcome_names_the_canned_response_and_the_engine_reads_nothing(
        self, django_assert_num_queries
    ):
        first, second = Filter(name="A", canned_response_id=7), Filter(name="B")
        later = Filter(name="C", canned_response_id=9)
        for filter_ in (first, second, later):
            filter_.loaded_rules = [FilterRule(field=F.SUBJECT, operator=Op.CONTAINS, value="x")]
        draft = TicketDraft(subject="x", body="y", email="a@example.com")
        with django_assert_num_queries(0):
            result = filters_apply(draft, [first, second])
            assert result.canned_response_id == 7 and result.set_by["canned_response"] == "A"
            result = filters_apply(draft, [first, second, later])
        assert result.canned_response_id == 9 and result.set_by["canned_response"] == "C"
        assert result.auto_respond  # the engine leaves that to ticket_open

    def test_no_filter_no_canned_response(self):
        draft = TicketDraft(subject="x", body="y", email="a@example.com")
        assert filters_apply(draft, []).canned_response_id is None


class TestSending:
    @pytest.fixture(autouse=True)
    def _filter(self, canned):
        FilterFactory(name="Welcome printers", canned_response=canned, rules=PRINTER)

    @pytest.mark.parametrize("source", [Source.WEB, Source.EMAIL, Source.API, Source.PHONE])
    def test_the_reply_is_posted_and_emailed_on_every_channel(
        self, source, run, department, customer, mailoutbox
    ):
        extra = {"message_id": "<first@customers.example>"} if source == Source.EMAIL else {}
        ticket = run(open_ticket, user=customer, department=department, source=source, **extra)
        assert_answered_with_canned_reply(ticket, mailoutbox)
        if extra:
            [mail] = mails_to(mailoutbox, CUSTOMER)
            assert mail.message()["In-Reply-To"] == "<first@customers.example>"

    def test_a_mail_from_a_new_customer_gets_the_reply(self, run, department, mailoutbox):
        message = EmailMessage()
        message["From"] = "Casey Jones <casey@example.com>"
        message["To"] = "support@helpdesk.example"
        message["Subject"] = "My printer is jammed"
        message["Message-ID"] = "<jam@customers.example>"
        message.set_content("Paper everywhere.")

        def deliver():
            inbound, _new = mail_services.inbound_receive(
                raw=message.as_bytes(), mailbox=Mailbox.objects.get(), channel="pipe"
            )
            return mail_services.inbound_process(message=inbound)

        ticket = run(deliver).ticket
        assert ticket.source == Source.EMAIL and ticket.department == department
        assert_answered_with_canned_reply(ticket, mailoutbox)

    def test_a_ticket_opened_through_the_rest_api_gets_the_reply(
        self, run, department, customer, mailoutbox
    ):
        api = key_client(customer)
        response = run(
            api.post,
            "/api/v1/tickets/",
            {"subject": "Printer on fire", "body": "Please."},
            format="json",
        )
        assert response.status_code == 201, response.json()
        ticket = Ticket.objects.get(pk=response.json()["id"])
        assert ticket.source == Source.API
        assert_answered_with_canned_reply(ticket, mailoutbox)

    def test_an_agent_opening_a_ticket_sends_it_too_and_agent_variables_stay_empty(
        self, run, department, customer, mailoutbox
    ):
        agent = agent_user(department=department, role=role("Administrator"), user__name="Al")
        ticket = run(open_ticket, by=agent, user=customer, department=department)
        assert canned_entry(ticket).body.endswith("is with Printing.")  # {{ agent.name }}: ""

    def test_collaborators_are_copied_like_on_any_response(
        self, run, department, customer, mailoutbox
    ):
        ticket = run(
            open_ticket, user=customer, department=department, collaborators=["boss@example.com"]
        )
        [mail] = mails_to(mailoutbox, CUSTOMER)
        assert [parseaddr(a)[1] for a in mail.cc] == ["boss@example.com"]
        assert expected_body(ticket) in mail.body

    def test_the_staff_thread_shows_who_sent_it(self, client, department, customer):
        ticket = open_ticket(user=customer, department=department)
        client.force_login(agent_user(department=department, role=role("Administrator")))
        url = reverse("tickets_staff:ticket", args=[ticket.number])
        page = client.get(url).content.decode()
        assert "Hello Casey, thanks for writing" in page
        assert f"<strong>{config().helpdesk_name}</strong>" in page
        history = client.get(url, {"history": "1"}).content.decode()
        assert "Canned response:</span> Printer welcome" in history
        assert "Filter:</span> Welcome printers" in history

    def test_it_does_not_answer_the_ticket_or_start_the_sla_response(self, department, customer):
        ticket = open_ticket(user=customer, department=department)
        ticket.refresh_from_db()
        assert not ticket.is_answered
        assert ticket.first_response_at is None and ticket.last_response_at is None

    def test_other_tickets_get_the_auto_response_only(self, run, department, customer, mailoutbox):
        ticket = run(open_ticket, user=customer, department=department, subject="Scanner")
        assert not ticket.thread.entries.filter(kind=EntryKind.RESPONSE).exists()
        logged = OutboundMessage.objects.filter(ticket=ticket, audience="customer")
        assert [row.template for row in logged] == [TemplateCode.TICKET_AUTORESP]
        assert len(mails_to(mailoutbox, CUSTOMER)) == 1

    def test_it_is_sent_even_where_auto_responses_are_off(
        self, run, department, customer, mailoutbox
    ):
        department.auto_response = False
        department.save(update_fields=["auto_response"])
        ticket = run(open_ticket, user=customer, department=department)
        assert_answered_with_canned_reply(ticket, mailoutbox)

    def test_it_is_held_back_like_auto_responses_past_the_rate_limit(
        self, run, department, customer, mailoutbox, settings
    ):
        settings.HELPDESK_AUTORESPONSE_LIMIT = 1
        run(open_ticket, user=customer, department=department)
        second = run(open_ticket, user=customer, department=department)
        assert canned_entry(second).body == expected_body(second)  # still on the thread
        held = OutboundMessage.objects.get(ticket=second, audience="customer")
        assert held.status == OutboundStatus.SKIPPED and "auto-responses" in held.error
        assert len(mails_to(mailoutbox, CUSTOMER)) == 1

    def test_an_archived_canned_response_is_not_sent_and_the_auto_response_is(
        self, run, canned, department, customer, mailoutbox
    ):
        canned.is_active = False
        canned.save(update_fields=["is_active"])
        ticket = run(open_ticket, user=customer, department=department)
        assert not ticket.thread.entries.filter(kind=EntryKind.RESPONSE).exists()
        logged = OutboundMessage.objects.filter(ticket=ticket, audience="customer")
        assert [row.template for row in logged] == [TemplateCode.TICKET_AUTORESP]

    def test_a_rejecting_filter_still_stops_everything(self, run, department, mailoutbox):
        Filter.objects.update(sort_order=5)
        FilterFactory(name="Spam", reject=True, sort_order=0, rules=PRINTER)
        events = ThreadEvent.objects.count()
        with pytest.raises(DraftRejected):
            run(open_ticket, email="new@stranger.example", department=department)
        assert not Ticket.objects.exists() and ThreadEvent.objects.count() == events
        assert not OutboundMessage.objects.exists() and mailoutbox == []


class TestValidation:
    def test_a_rejecting_filter_sends_no_canned_reply(self, canned):
        filter_ = FilterFactory.build(reject=True, canned_response=canned)
        with pytest.raises(ValidationError) as error:
            filter_.full_clean()
        assert "reject" in error.value.message_dict

    def test_an_archived_canned_response_cannot_be_chosen(self):
        archived = CannedResponseFactory(is_active=False)
        with pytest.raises(ValidationError) as error:
            FilterFactory.build(canned_response=archived).full_clean()
        assert error.value.message_dict["canned_response"] == [
            "This canned response is archived; choose another."
        ]
        filter_ = FilterFactory(rules=PRINTER)
        filter_.canned_response = archived
        with pytest.raises(ValidationError):
            filter_.full_clean()

    def test_a_filter_whose_response_was_archived_later_still_saves(self, canned):
        filter_ = FilterFactory(canned_response=canned, rules=PRINTER)
        CannedResponse.objects.filter(pk=canned.pk).update(is_active=False)
        filter_.refresh_from_db()
        filter_.notes = "Still here"
        filter_.full_clean()

    def test_a_canned_response_a_filter_uses_cannot_be_deleted(self, canned):
        FilterFactory(name="Welcome printers", canned_response=canned, rules=PRINTER)
        with pytest.raises(ProtectedError):
            canned.delete()
        admin = agent_user(role=role("Administrator"))
        with pytest.raises(ValidationError) as error:
            admin_delete(obj=canned, actor=admin)
        assert error.value.messages == [
            "Printer welcome cannot be deleted: it is used by 1 filters. Archive it instead."
        ]
        assert CannedResponse.objects.filter(pk=canned.pk).exists()

    def test_an_unused_canned_response_is_deleted(self):
        unused = CannedResponseFactory()
        unused.delete()
        assert not CannedResponse.objects.exists()
