"""Mail in: from raw bytes to tickets and messages, once and only once."""

import logging
import os
import subprocess
import sys
import threading
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from mailgate import services
from mailgate.models import InboundMessage, InboundStatus, Mailbox, OutboundMessage, TemplateCode
from tests.accounts.factories import agent_user
from tests.routing.factories import DepartmentFactory
from tests.tickets.factories import closed_status, open_ticket, status
from tickets import services as ticket_services
from tickets.models import EntryKind, EventAction, StatusState, Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailbox():
    return Mailbox.objects.create(
        name="Support", email="support@helpdesk.example", department=DepartmentFactory(name="Mail")
    )


def mail(
    *,
    sender="Wile E. <wile@acme.example>",
    to="support@helpdesk.example",
    subject="Rocket skates broken",
    body="They go left.",
    **headers,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = headers.pop("message_id", make_msgid(domain="acme.example"))
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message.as_bytes()


def deliver(raw: bytes, mailbox: Mailbox | None = None) -> InboundMessage:
    message, _new = services.inbound_receive(raw=raw, mailbox=mailbox, channel="pipe")
    return services.inbound_process(message=message)


def test_a_new_mail_opens_a_ticket(mailbox):
    raw = mail(Cc="Road Runner <rr@acme.example>, support@helpdesk.example")
    message = deliver(raw, mailbox)
    assert (message.status, message.outcome) == (InboundStatus.PROCESSED, "created")
    ticket = message.ticket
    assert ticket.subject == "Rocket skates broken"
    assert ticket.source == "email"
    assert ticket.department == mailbox.department
    assert ticket.user.email == "wile@acme.example" and ticket.user.name == "Wile E."
    assert not ticket.user.has_usable_password()
    entry = ticket.thread.entries.get()
    assert "They go left." in entry.body
    assert entry.message_id == message.message_id
    # Copied addresses follow the ticket; our own address does not.
    assert [c.user.email for c in ticket.collaborators.all()] == ["rr@acme.example"]


# Committed, as in production: the small tables a change in the same transaction touched are
# read afresh rather than kept.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_new_mail_takes_a_fixed_number_of_statements(mailbox, django_assert_num_queries):
    # The small tables are read and kept.
    deliver(mail(sender="first@acme.example", Cc="second@acme.example"), mailbox)
    raw = mail(Cc="Road Runner <rr@acme.example>")
    message, _new = services.inbound_receive(raw=raw, mailbox=mailbox, channel="pipe")
    # Check the mail is new, find or make the sender and the copied person (without a
    # savepoint: a twin made at the same moment has the mail processed again), the filters'
    # stamp, the ticket (with a savepoint, to draw another number on a clash: only a fetch
    # run reserves free ones), its thread, entry and event, the collaborator and its event
    # (a new ticket has none to look for first), the mail's outcome (which claims the stored
    # mail: no locking read before the work); then, after the commit, the mail it sends. The
    # ticket's own transaction takes no savepoint (a refusal rolls back the whole mail), the
    # copied person is added under the ticket's first lock, and neither new person's agent
    # profile is looked for.
    with django_assert_num_queries(30):
        message = services.inbound_process(message=message)
    assert message.ticket.collaborators.get().user.email == "rr@acme.example"


def test_the_same_mail_twice_makes_one_ticket(mailbox):
    raw = mail()
    first = deliver(raw, mailbox)
    again, is_new = services.inbound_receive(raw=raw, mailbox=mailbox, channel="pipe")
    assert not is_new and again.pk == first.pk
    services.inbound_process(message=again)
    assert Ticket.objects.count() == 1
    assert InboundMessage.objects.count() == 1


def test_a_copy_read_before_another_processing_finished_makes_no_second_ticket(mailbox):
    # No Message-ID: the check for a duplicate has nothing to go by.
    raw = mail(message_id="")
    message, _new = services.inbound_receive(raw=raw, mailbox=mailbox, channel="pipe")
    stale = InboundMessage.objects.get(pk=message.pk)  # read while it was still unprocessed
    first = services.inbound_process(message=message)
    assert first.message_id == ""

    again = services.inbound_process(message=stale)

    # The second processing's work rolled back when it found the mail already claimed.
    assert (again.status, again.ticket_id, again.attempts) == (
        InboundStatus.PROCESSED,
        first.ticket_id,
        1,
    )
    assert Ticket.objects.count() == 1
    assert User.objects.filter(email="wile@acme.example").count() == 1


def processed_together(messages, monkeypatch) -> list[InboundMessage]:
    """`inbound_process` of each message in a thread of its own, all of them held just
    before recording their outcome until each has done its ticket work (none committed)."""
    all_worked = threading.Barrier(len(messages))
    real_finish = services._finish

    def finish_together(message, result):
        if result.outcome != "duplicate":  # not the second record of a copy that lost
            all_worked.wait(timeout=20)
        real_finish(message, result)

    monkeypatch.setattr(services, "_finish", finish_together)
    results, errors = [], []

    def work(message):
        try:
            results.append(services.inbound_process(message=message))
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(message,)) for message in messages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return results


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_processings_at_the_same_moment_make_one_ticket(mailbox, monkeypatch):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite's IMMEDIATE transactions never overlap")
    # A known sender: a new one's unique address would make the second wait for the first.
    User.objects.create_user("wile@acme.example", None)
    raw = mail(message_id="")
    message, _new = services.inbound_receive(raw=raw, mailbox=mailbox, channel="pipe")
    copies = [InboundMessage.objects.get(pk=message.pk) for _ in range(2)]
    results = processed_together(copies, monkeypatch)

    assert [result.status for result in results] == [InboundStatus.PROCESSED] * 2
    assert Ticket.objects.count() == 1
    assert {result.ticket_id for result in results} == {Ticket.objects.get().pk}
    assert InboundMessage.objects.get(pk=message.pk).attempts == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_copies_of_a_mail_processed_at_the_same_moment_make_one_ticket(mailbox, monkeypatch):
    """The same mail to two of our addresses, processed by two workers at once: neither
    sees the other's entry when it looks for the Message-ID."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite's IMMEDIATE transactions never overlap")
    sales = Mailbox.objects.create(name="Sales", email="sales@helpdesk.example")
    User.objects.create_user("wile@acme.example", None)  # a new one would make them queue
    raw = mail(to="support@helpdesk.example, sales@helpdesk.example")
    copies = [
        services.inbound_receive(raw=raw, mailbox=box, channel="pipe")[0]
        for box in (mailbox, sales)
    ]
    results = processed_together(copies, monkeypatch)

    assert sorted(result.outcome for result in results) == ["created", "duplicate"]
    ticket = Ticket.objects.get()  # the second copy's ticket rolled back
    assert {result.ticket_id for result in results} == {ticket.pk}
    assert {result.entry_id for result in results} == {ticket.thread.entries.get().pk}


def test_an_agent_s_mail_reaching_two_mailboxes_posts_one_response(
    mailbox, django_capture_on_commit_callbacks
):
    """A response carries our own Message-ID, not the agent's: the copy is known as a
    duplicate only by the mail it was processed from."""
    sales = Mailbox.objects.create(name="Sales", email="sales@helpdesk.example")
    agent_user(department=mailbox.department, user__email="sam@helpdesk.example")
    with django_capture_on_commit_callbacks(execute=True):
        ticket = deliver(mail(), mailbox).ticket
    alert = OutboundMessage.objects.get(ticket=ticket, template=TemplateCode.TICKET_ALERT)
    raw = mail(
        sender="sam@helpdesk.example",
        subject="Re: alert",
        body="On it.",
        Cc="sales@helpdesk.example",
        In_Reply_To=alert.message_id,
    )

    with django_capture_on_commit_callbacks(execute=True):
        first = deliver(raw, mailbox)
        second = deliver(raw, sales)

    assert (first.outcome, second.outcome) == ("response", "duplicate")
    assert (second.ticket, second.entry) == (ticket, first.entry)
    assert ticket.thread.entries.filter(kind=EntryKind.RESPONSE).count() == 1
    replies = OutboundMessage.objects.filter(ticket=ticket, template=TemplateCode.TICKET_REPLY)
    assert replies.count() == 1


def test_the_same_mail_to_two_of_our_addresses_makes_one_ticket(mailbox, settings):
    settings.HELPDESK_MAIL_RAW_IN_ROW_MAX = 0  # every message in a file
    sales = Mailbox.objects.create(name="Sales", email="sales@helpdesk.example")
    raw = mail(Cc="sales@helpdesk.example")
    first = deliver(raw, mailbox)
    second = deliver(raw, sales)
    assert second.outcome == "duplicate"
    assert Ticket.objects.count() == 1
    # Stored once, in the day's folder, named by its hash.
    assert first.raw.name == second.raw.name
    assert first.raw.name == f"mail/{timezone.now():%Y/%m/%d}/{first.content_hash}.eml"
    assert first.raw_data is None and first.raw_read() == raw


def test_a_small_mail_is_kept_in_its_row_and_a_large_one_in_a_file(mailbox, settings):
    from django.core.files.storage import default_storage

    small, large = mail(subject="Small"), mail(subject="Large", body="Anvil. " * 2000)
    settings.HELPDESK_MAIL_RAW_IN_ROW_MAX = len(small)
    kept_small, kept_large = deliver(small, mailbox), deliver(large, mailbox)

    assert (kept_small.outcome, kept_large.outcome) == ("created", "created")
    kept_small.refresh_from_db()
    kept_large.refresh_from_db()
    assert bytes(kept_small.raw_data) == small and not kept_small.raw.name
    assert kept_large.raw_data is None and default_storage.exists(kept_large.raw.name)
    assert (kept_small.raw_read(), kept_large.raw_read()) == (small, large)
    assert kept_small.raw_read(12) == small[:12]


def test_a_crash_midway_loses_nothing_and_the_retry_makes_one_ticket(mailbox, monkeypatch):
    raw = mail()
    message, _ = services.inbound_receive(raw=raw, mailbox=mailbox, channel="pipe")
    real_open = ticket_services.ticket_open

    def crash_after_writing(**kwargs):
        real_open(**kwargs)  # the ticket rows are written, then the process dies
        raise RuntimeError("worker killed")

    monkeypatch.setattr(ticket_services, "ticket_open", crash_after_writing)
    with pytest.raises(RuntimeError):
        services.inbound_process(message=message)
    message.refresh_from_db()
    assert message.status == InboundStatus.FAILED
    assert "worker killed" in message.error
    assert message.attempts == 1  # the admins' page says how often it was tried
    # Admins can still tell which mail failed.
    assert (message.from_email, message.subject) == ("wile@acme.example", "Rocket skates broken")
    assert not Ticket.objects.exists()  # rolled back with the failure

    monkeypatch.setattr(ticket_services, "ticket_open", real_open)
    services.inbound_process(message=message)
    message.refresh_from_db()
    assert (message.status, message.attempts) == (InboundStatus.PROCESSED, 2)
    assert Ticket.objects.count() == 1


def test_a_reply_to_our_response_threads_and_reopens(mailbox):
    opened = deliver(mail(), mailbox).ticket
    agent = agent_user(department=opened.department)
    response = ticket_services.ticket_reply(
        ticket=opened, by=agent, body="Try the brakes.", status=closed_status()
    )
    reply = deliver(
        mail(
            subject="Re: Rocket skates broken", body="No brakes!", In_Reply_To=response.message_id
        ),
        mailbox,
    )
    assert reply.outcome == "message" and reply.ticket == opened
    opened.refresh_from_db()
    assert opened.status.state == StatusState.OPEN
    assert reply.entry.kind == EntryKind.MESSAGE
    assert Ticket.objects.count() == 1


def test_the_owner_threads_by_the_subject_token(mailbox):
    ticket = deliver(mail(), mailbox).ticket
    follow_up = deliver(mail(subject=f"Re: [#{ticket.number}] skates", body="Any news?"), mailbox)
    assert follow_up.outcome == "message" and follow_up.ticket == ticket


def test_a_stranger_using_the_token_opens_a_new_ticket(mailbox):
    ticket = deliver(mail(), mailbox).ticket
    spoof = deliver(
        mail(sender="mallory@evil.example", subject=f"Re: [#{ticket.number}]", body="Close it"),
        mailbox,
    )
    assert spoof.outcome == "created" and spoof.ticket != ticket
    assert ticket.thread.entries.count() == 1


def test_a_stranger_quoting_the_thread_opens_a_new_ticket(mailbox):
    first = deliver(mail(), mailbox)
    spoof = deliver(
        mail(sender="mallory@evil.example", subject="Re: x", In_Reply_To=first.message_id),
        mailbox,
    )
    assert spoof.ticket != first.ticket


def test_an_agent_address_quoting_a_response_does_not_answer_customers(mailbox):
    """Everyone copied on a response knows its Message-ID: it proves nothing about who
    writes, so a mail from an agent's address quoting it is not posted as a response."""
    ticket = deliver(mail(), mailbox).ticket
    agent = agent_user(department=ticket.department, user__email="sam@helpdesk.example")
    response = ticket_services.ticket_reply(ticket=ticket, by=agent, body="Hello")
    forged = deliver(
        mail(
            sender="sam@helpdesk.example",
            subject="Re: skates",
            body="Send the refund to my account",
            In_Reply_To=response.message_id,
        ),
        mailbox,
    )
    assert forged.outcome == "created"
    assert ticket.thread.entries.filter(kind=EntryKind.RESPONSE).count() == 1


def test_an_agent_address_with_only_the_token_does_not_answer_customers(mailbox):
    ticket = deliver(mail(), mailbox).ticket
    agent_user(department=ticket.department, user__email="sam@helpdesk.example")
    forged = deliver(
        mail(sender="sam@helpdesk.example", subject=f"Re: [#{ticket.number}]", body="Pay me"),
        mailbox,
    )
    assert forged.outcome == "created"
    assert not ticket.thread.entries.filter(kind=EntryKind.RESPONSE).exists()


def test_a_message_to_an_archived_ticket_opens_a_new_one(mailbox):
    first = deliver(mail(), mailbox)
    agent = agent_user(department=first.ticket.department)
    ticket_services.ticket_status_set(ticket=first.ticket, by=agent, status=status("Archived"))
    late = deliver(mail(subject=f"[#{first.ticket.number}] again"), mailbox)
    assert late.outcome == "created" and late.ticket != first.ticket
    # The refused message was undone and the mail processed again, within one attempt.
    assert late.attempts == 1
    assert first.ticket.thread.entries.count() == 1


def received_run(*raws: bytes, mailbox: Mailbox):
    """Store `raws` and hand them to `inbound_run` as a fetch does."""
    received = []
    for raw in raws:
        message, _new = services.inbound_receive(raw=raw, mailbox=mailbox, channel="imap")
        received.append((message, raw))
    return received


def test_a_ticket_number_taken_meanwhile_has_the_mail_processed_again(mailbox, caplog):
    # A run reserves free numbers for its new tickets, in one query; another worker takes
    # them all before the mail's ticket is written.
    from tickets import numbers

    caplog.set_level(logging.INFO, logger="mailgate")
    received = received_run(mail(), mailbox=mailbox)
    with services.inbound_run(received):
        reserved = list(numbers._reserved.get())
        assert len(reserved) == 1
        Ticket.objects.filter(pk=open_ticket(subject="Taken").pk).update(number=reserved[0])
        message = services.inbound_process(message=received[0][0])

    assert "processed again after a clash" in caplog.text

    assert (message.status, message.outcome, message.attempts) == (
        InboundStatus.PROCESSED,
        "created",
        1,
    )
    assert message.ticket.number != reserved[0]
    assert Ticket.objects.filter(subject="Rocket skates broken").count() == 1
    assert message.ticket.thread.entries.count() == 1


def test_a_customer_made_meanwhile_has_the_mail_processed_again(mailbox, caplog):
    # The run found no account for the sender; another worker makes it before the mail is
    # processed. Without a savepoint the clash undoes the work, and the mail goes again.
    caplog.set_level(logging.INFO, logger="mailgate")
    received = received_run(mail(sender="Nina <new@acme.example>"), mailbox=mailbox)
    with services.inbound_run(received):
        nina = User.objects.create_user("new@acme.example", None, name="Nina N.")
        message = services.inbound_process(message=received[0][0])

    assert "processed again after a clash" in caplog.text

    assert (message.outcome, message.attempts) == ("created", 1)
    assert message.ticket.user == nina
    assert User.objects.filter(email="new@acme.example").count() == 1


def _savepoints(queries) -> int:
    return sum(query["sql"].startswith("SAVEPOINT") for query in queries)


def test_a_run_of_mail_is_written_in_one_transaction(mailbox, django_assert_max_num_queries):
    received = received_run(
        mail(subject="First"),
        mail(sender="Nina <new@acme.example>", subject="Second"),
        mail(subject="Third", Auto_Submitted="auto-replied"),
        mailbox=mailbox,
    )
    # Inside the test's own transaction, the run's transaction is a single savepoint.
    with services.inbound_run(received), django_assert_max_num_queries(60) as captured:
        messages = services.inbound_process_many([message for message, _raw in received])

    assert _savepoints(captured.captured_queries) == 1
    assert [(m.outcome, m.attempts) for m in messages] == [
        ("created", 1),
        ("created", 1),
        ("auto_reply", 1),
    ]
    for message in messages:
        message.refresh_from_db()
        assert message.status in (InboundStatus.PROCESSED, InboundStatus.IGNORED)
    assert sorted(Ticket.objects.values_list("subject", flat=True)) == ["First", "Second"]


def _statements(queries, start: str) -> int:
    return sum(query["sql"].startswith(start) for query in queries)


def test_a_run_writes_its_rows_together_and_threads_into_its_own_tickets(mailbox):
    earlier = deliver(mail(subject="Anvil late"), mailbox)
    opening = mail(subject="Rocket skates broken", message_id="<skates@acme.example>")
    received = received_run(
        opening,
        mail(
            subject="Re: Anvil late",
            body="Still waiting.",
            In_Reply_To=earlier.message_id,
            References=earlier.message_id,
        ),
        mail(sender="Nina <new@acme.example>", subject="Jet pack"),
        mail(
            subject="Re: Rocket skates broken",
            body="And now they go right.",
            In_Reply_To="<skates@acme.example>",
            References="<skates@acme.example>",
        ),
        mailbox=mailbox,
    )
    with services.inbound_run(received), CaptureQueriesContext(connection) as captured:
        messages = services.inbound_process_many([message for message, _raw in received])

    assert [m.outcome for m in messages] == ["created", "message", "created", "message"]
    skates = messages[0].ticket
    assert messages[1].ticket == earlier.ticket
    assert messages[3].ticket == skates  # a reply to a ticket the run itself opened
    assert [e.body for e in skates.thread.entries.order_by("pk")] == [
        "They go left.",
        "And now they go right.",
    ]
    assert earlier.ticket.thread.entries.count() == 2
    queries = captured.captured_queries
    if connection.vendor == "postgresql":
        # The two new tickets are written together, before the reply that looks one up;
        # the reply to the earlier ticket does not wait for them. The outcomes: one update.
        assert _statements(queries, 'INSERT INTO "tickets_ticket"') == 1
        assert _statements(queries, 'INSERT INTO "tickets_threadentry"') == 2
        assert _statements(queries, 'UPDATE "mailgate_inboundmessage"') == 1
    for message in messages:
        message.refresh_from_db()
        assert (message.status, message.attempts) == (InboundStatus.PROCESSED, 1)


def test_a_run_makes_each_new_customer_once(mailbox):
    received = received_run(
        mail(sender="Nina <new@acme.example>", subject="Jet pack", Cc="rr@acme.example"),
        mail(sender="Nina <new@acme.example>", subject="Jet pack, again"),
        mailbox=mailbox,
    )
    with services.inbound_run(received), CaptureQueriesContext(connection) as captured:
        messages = services.inbound_process_many([message for message, _raw in received])

    assert [m.outcome for m in messages] == ["created", "created"]
    nina = User.objects.get(email="new@acme.example")
    assert [m.ticket.user for m in messages] == [nina, nina]
    assert nina.emails.get().email == "new@acme.example"
    assert [c.user.email for c in messages[0].ticket.collaborators.all()] == ["rr@acme.example"]
    if connection.vendor == "postgresql":
        # Nina and the person she copied, written together before her second mail looks
        # her up.
        assert _statements(captured.captured_queries, 'INSERT INTO "accounts_user"') == 1


def test_a_run_whose_mail_another_copy_wrote_meanwhile_records_it_as_a_duplicate(mailbox, caplog):
    caplog.set_level(logging.INFO, logger="mailgate")
    received = received_run(
        mail(subject="Anvil", message_id="<anvil@acme.example>"),
        mail(subject="Jet pack"),
        mailbox=mailbox,
    )
    with services.inbound_run(received):
        # The same mail, piped in another form, is processed while the run works: the run
        # asked for its Message-ID before, and meets it only when recording its outcomes.
        copy = deliver(mail(subject="Anvil", body="Piped.", message_id="<anvil@acme.example>"))
        messages = services.inbound_process_many([message for message, _raw in received])

    # Met when its outcome is recorded: the run goes again one message at a time.
    assert "processed again one by one" in caplog.text
    assert [m.outcome for m in messages] == ["duplicate", "created"]
    assert messages[0].ticket == copy.ticket
    assert sorted(Ticket.objects.values_list("subject", flat=True)) == ["Anvil", "Jet pack"]
    assert copy.ticket.thread.entries.count() == 1


def test_a_run_with_a_mail_processed_meanwhile_leaves_that_one_alone(mailbox, caplog):
    caplog.set_level(logging.INFO, logger="mailgate")
    received = received_run(mail(subject="Mine"), mail(subject="Theirs"), mailbox=mailbox)
    theirs = received[1][0]
    with services.inbound_run(received):
        # Another worker records an outcome for the second mail while the run works.
        InboundMessage.objects.filter(pk=theirs.pk).update(
            status=InboundStatus.PROCESSED, outcome="created", attempts=1
        )
        messages = services.inbound_process_many([message for message, _raw in received])

    assert "processed again one by one" in caplog.text
    assert [(m.outcome, m.attempts) for m in messages] == [("created", 1), ("created", 1)]
    assert list(Ticket.objects.values_list("subject", flat=True)) == ["Mine"]


def test_a_run_with_a_mail_that_breaks_is_processed_again_one_by_one(mailbox, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="mailgate")
    real_open = ticket_services.ticket_open

    def ticket_open(*, draft):
        ticket = real_open(draft=draft)  # its rows are written, then it breaks
        if draft.subject == "Poison":
            raise RuntimeError("the ticket service broke")
        return ticket

    monkeypatch.setattr(ticket_services, "ticket_open", ticket_open)
    received = received_run(
        mail(subject="Fine"),
        mail(sender="Nina <new@acme.example>", subject="Poison"),
        mail(subject="Also fine"),
        mailbox=mailbox,
    )
    with services.inbound_run(received):
        messages = services.inbound_process_many([message for message, _raw in received])

    assert "A run of 3 inbound messages is processed again one by one" in caplog.text
    assert [m.status for m in messages] == [
        InboundStatus.PROCESSED,
        InboundStatus.FAILED,
        InboundStatus.PROCESSED,
    ]
    # Nothing of the rolled-back run is left: one ticket per good mail, no account for the
    # failed mail's sender, and each mail counted as processed once.
    assert sorted(Ticket.objects.values_list("subject", flat=True)) == ["Also fine", "Fine"]
    assert not User.objects.filter(email="new@acme.example").exists()
    failed = InboundMessage.objects.get(status=InboundStatus.FAILED)
    assert "the ticket service broke" in failed.error
    assert failed.subject == "Poison"
    # The rolled-back run is not counted as an attempt: each was tried once, on its own.
    assert list(InboundMessage.objects.values_list("attempts", flat=True)) == [1, 1, 1]

    monkeypatch.setattr(ticket_services, "ticket_open", real_open)
    assert services.inbound_process(message=failed).outcome == "created"
    assert Ticket.objects.count() == 3


def test_a_run_that_meets_a_clash_makes_each_ticket_once(mailbox, caplog):
    # Another worker takes every number the run reserved: the run rolls back on the first
    # ticket and each mail is processed on its own.
    from tickets import numbers

    caplog.set_level(logging.INFO, logger="mailgate")
    received = received_run(
        mail(subject="One"), mail(subject="Two"), mail(subject="Three"), mailbox=mailbox
    )
    with services.inbound_run(received):
        for number in list(numbers._reserved.get()):
            Ticket.objects.filter(pk=open_ticket(subject="Taken").pk).update(number=number)
        messages = services.inbound_process_many([message for message, _raw in received])

    # The clash (Retry; an IntegrityError where the tickets are written at the run's end).
    assert "processed again one by one after" in caplog.text
    assert [(m.outcome, m.attempts) for m in messages] == [("created", 1)] * 3
    for message in messages:
        assert message.ticket.thread.entries.count() == 1
    for subject in ("One", "Two", "Three"):
        assert Ticket.objects.filter(subject=subject).count() == 1


@pytest.mark.parametrize(
    "header",
    [
        {"Auto_Submitted": "auto-replied"},
        {"X_Autoreply": "yes"},
        {"Precedence": "bulk"},
    ],
)
def test_auto_replies_never_open_tickets(mailbox, header):
    message = deliver(mail(subject="Out of office", **header), mailbox)
    assert (message.status, message.outcome) == (InboundStatus.IGNORED, "auto_reply")
    assert not Ticket.objects.exists()


def test_mail_from_our_own_address_is_a_loop(mailbox):
    message = deliver(mail(sender="support@helpdesk.example"), mailbox)
    assert (message.status, message.outcome) == (InboundStatus.IGNORED, "loop")
    assert not Ticket.objects.exists()


def test_a_bounce_of_our_mail_is_recorded_on_the_ticket(mailbox):
    ticket = open_ticket(email="gone@acme.example")
    agent = agent_user(department=ticket.department)
    response = ticket_services.ticket_reply(ticket=ticket, by=agent, body="Hello")
    report = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.helpdesk.example>\r\n"
        "To: support@helpdesk.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.helpdesk.example\r\n\r\n"
        "Final-Recipient: rfc822; gone@acme.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: support@helpdesk.example\r\nTo: gone@acme.example\r\n"
        f"Message-ID: {response.message_id}\r\nSubject: Re: Printer\r\n"
        "--B--\r\n"
    ).encode()
    message = deliver(report, mailbox)
    assert (message.status, message.outcome) == (InboundStatus.IGNORED, "bounce")
    event = ticket.thread.events.get(action=EventAction.DELIVERY_FAILED)
    assert event.data["recipients"] == ["gone@acme.example"]
    assert Ticket.objects.count() == 1


def test_garbage_is_kept_as_failed_with_its_reason(mailbox):
    message = deliver(b"\x00\x01 not a mail", mailbox)
    assert message.status == InboundStatus.FAILED
    assert message.error
    assert not Ticket.objects.exists()


def test_an_oversized_mail_is_kept_with_a_clear_reason(mailbox, settings):
    settings.HELPDESK_MAIL_MAX_SIZE = 200
    message = deliver(mail(body="x" * 1000), mailbox)
    assert message.status == InboundStatus.FAILED
    assert "limit" in message.error
    assert message.size > 200


def test_a_bad_attachment_is_left_out_and_the_mail_kept(mailbox):
    envelope = EmailMessage()
    envelope["From"] = "wile@acme.example"
    envelope["To"] = "support@helpdesk.example"
    envelope["Subject"] = "Screenshot"
    envelope.set_content("See attached.")
    envelope.add_attachment(
        b"<svg onload=alert(1)>", maintype="image", subtype="png", filename="s.png"
    )
    envelope.add_attachment(
        b"%PDF-1.4 fine", maintype="application", subtype="pdf", filename="a.pdf"
    )
    message = deliver(envelope.as_bytes(), mailbox)
    assert message.outcome == "created"
    names = [a.name for a in message.ticket.thread.entries.get().attachments.all()]
    assert names == ["a.pdf"]
    assert any("s.png" in note for note in message.notes)


def test_a_customer_reply_from_another_member_of_a_sharing_organization_threads(mailbox):
    from tests.accounts.factories import OrganizationFactory

    org = OrganizationFactory(share_tickets=True, domains=["acme.example"])
    first = deliver(mail(), mailbox)
    assert first.ticket.organization == org
    colleague = deliver(
        mail(sender="coyote@acme.example", subject="Re: skates", In_Reply_To=first.message_id),
        mailbox,
    )
    assert colleague.outcome == "message" and colleague.ticket == first.ticket


class TestPipe:
    """`manage.py mailgate pipe` as the mail server runs it: exit codes are its contract."""

    def run(self, raw: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
        from django.db import connection

        environment = {
            "PATH": os.environ["PATH"],
            "ENV_FILE": os.devnull,
            "DEBUG": "true",
            "DJANGO_SETTINGS_MODULE": "helpdesk.settings.base",
            "DATABASE_URL": database_url(connection),
            "MEDIA_ROOT": str(self.media),
        }
        return subprocess.run(  # noqa: S603 - our own manage.py with fixed arguments
            [sys.executable, "manage.py", "mailgate", "pipe", *args],
            input=raw,
            cwd=Path(__file__).resolve().parents[2],
            env=environment,
            capture_output=True,
            timeout=120,
            check=False,
        )

    @pytest.fixture(autouse=True)
    def media(self, tmp_path):
        self.media = tmp_path

    @pytest.mark.django_db(transaction=True, serialized_rollback=True)
    def test_a_piped_mail_opens_one_ticket_however_often_it_is_delivered(self, mailbox):
        raw = mail(to="Support <support@helpdesk.example>")
        first = self.run(raw)
        assert first.returncode == 0, first.stderr.decode()
        assert b"created" in first.stdout
        second = self.run(raw)
        assert second.returncode == 0, second.stderr.decode()
        assert Ticket.objects.count() == 1
        stored = InboundMessage.objects.get()
        assert stored.mailbox == mailbox  # found from the recipient
        assert stored.ticket.department == mailbox.department

    @pytest.mark.django_db(transaction=True, serialized_rollback=True)
    def test_garbage_exits_65_and_is_kept(self):
        result = self.run(b"\x00\x01\x02 this is not mail")
        assert result.returncode == 65, result.stderr.decode()
        assert InboundMessage.objects.get().status == InboundStatus.FAILED

    @pytest.mark.django_db(transaction=True, serialized_rollback=True)
    def test_an_unknown_mailbox_asks_the_mail_server_to_retry(self):
        result = self.run(mail(), "--mailbox", "Nope")
        assert result.returncode == 75
        assert not InboundMessage.objects.exists()

    @pytest.mark.django_db(transaction=True, serialized_rollback=True)
    def test_an_auto_reply_is_accepted_and_ignored(self):
        result = self.run(mail(Auto_Submitted="auto-replied"))
        assert result.returncode == 0
        assert not Ticket.objects.exists()


def database_url(connection) -> str:
    """The test database as a DATABASE_URL, for a subprocess."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    scheme = {"postgresql": "postgres", "mysql": "mysql"}[connection.vendor]
    auth = settings["USER"] + (f":{settings['PASSWORD']}" if settings["PASSWORD"] else "")
    return (
        f"{scheme}://{auth}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT']}/{settings['NAME']}"
    )


def test_retry_processes_failed_messages_again(mailbox, monkeypatch):
    from django.core.management import call_command

    message, _ = services.inbound_receive(raw=mail(), mailbox=mailbox, channel="pipe")
    real_open = ticket_services.ticket_open
    monkeypatch.setattr(ticket_services, "ticket_open", lambda **kw: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        services.inbound_process(message=message)
    monkeypatch.setattr(ticket_services, "ticket_open", real_open)
    call_command("mailgate", "retry", "--all-failed")
    message.refresh_from_db()
    assert message.status == InboundStatus.PROCESSED
    assert Ticket.objects.count() == 1


def test_a_banned_sender_gets_no_ticket(mailbox):
    from routing.models import BannedAddress

    BannedAddress.objects.create(address="acme.example", reason="Spam run")
    message = deliver(mail(), mailbox)
    assert (message.status, message.outcome) == (InboundStatus.IGNORED, "banned")
    assert not Ticket.objects.exists()
    assert not User.objects.filter(email="wile@acme.example").exists()


def test_a_rejecting_filter_keeps_only_the_raw_mail(mailbox):
    from tests.routing.factories import FilterFactory

    FilterFactory(name="No lottery", reject=True, rules=[("subject", "contains", "lottery")])
    raw = mail(subject="You won the LOTTERY")
    message = deliver(raw, mailbox)
    assert (message.status, message.outcome) == (InboundStatus.IGNORED, "rejected")
    assert "No lottery" in message.error
    assert not Ticket.objects.exists()
    assert message.raw_read() == raw
    # The sender is a stranger still: no account was made for them.
    assert not User.objects.filter(email="wile@acme.example").exists()


def test_filters_see_any_header_of_the_mail(mailbox):
    from tests.routing.factories import FilterFactory

    vip = DepartmentFactory(name="VIP")
    FilterFactory(
        name="Partners", department=vip, rules=[("header", "equals", "gold", "X-Partner")]
    )
    message = deliver(mail(X_Partner="Gold"), mailbox)
    assert message.ticket.department == vip
