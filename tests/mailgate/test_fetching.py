"""Fetching mail from a real IMAP and POP3 server (a private Dovecot, see dovecot.py)."""

import io
import poplib
import shutil
import socket
import threading
import time
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from django.conf import settings as django_settings
from django.db import close_old_connections, connection
from imapclient import SEEN, IMAPClient

from accounts.models import User
from mailgate import fetching, services, tasks
from mailgate.models import InboundMessage, InboundStatus, Mailbox, OutboundMessage
from tests.accounts.factories import UserFactory
from tests.routing.factories import DepartmentFactory
from tickets import services as ticket_services
from tickets.models import Ticket

from .dovecot import dovecot_fixture  # noqa: F401 - provides the `dovecot` fixture

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def quick_timeouts(settings):
    settings.HELPDESK_MAIL_FETCH_TIMEOUT = 5


@pytest.fixture(scope="session", autouse=True)
def _remove_sqlite_lock_files(django_db_setup):
    yield  # (torn down before the test database, while NAME still names it)
    if connection.vendor == "sqlite":
        shutil.rmtree(fetching.lock_folder(str(connection.settings_dict["NAME"])), True)


@pytest.fixture
def account(dovecot):
    """A new, empty account on the test server."""
    return dovecot.new_user()


@pytest.fixture
def make_mailbox(dovecot, account):
    made = []

    def make(protocol="imap", *, security="none", port=None, **fields) -> Mailbox:
        ports = {
            ("imap", "ssl"): dovecot.imaps_port,
            ("pop3", "ssl"): dovecot.pop3s_port,
            ("imap", "none"): dovecot.imap_port,
            ("imap", "starttls"): dovecot.imap_port,
            ("pop3", "none"): dovecot.pop3_port,
            ("pop3", "starttls"): dovecot.pop3_port,
        }
        fields.setdefault("username", account)
        fields.setdefault("password", dovecot.password)
        mailbox = Mailbox.objects.create(
            name=f"Support {len(made) + 1}",
            email=f"support{len(made) + 1}@helpdesk.example",
            department=DepartmentFactory(name=f"Mail {len(made) + 1}"),
            protocol=protocol,
            host=dovecot.host,
            port=port or ports[(protocol, security)],
            security=security,
            **fields,
        )
        made.append(mailbox)
        return mailbox

    return make


def mail(subject: str, sender: str = "Wile E. <wile@acme.example>") -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "support1@helpdesk.example"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="acme.example")
    message.set_content(f"About {subject}.\n")
    return message.as_bytes().replace(b"\n", b"\r\n")


def imap(dovecot, account) -> IMAPClient:
    client = IMAPClient(dovecot.host, dovecot.imap_port, ssl=False, timeout=5)
    client.login(account, dovecot.password)
    return client


def deliver(dovecot, account, *subjects: str, folder: str = "INBOX") -> None:
    with imap(dovecot, account) as client:
        for subject in subjects:
            client.append(folder, mail(subject))


def on_server(dovecot, account, folder: str = "INBOX") -> dict[str, set]:
    """Subject -> flags of the messages in `folder`."""
    with imap(dovecot, account) as client:
        if not client.folder_exists(folder):
            return {}
        client.select_folder(folder, readonly=True)
        uids = client.search(["ALL"])
        found = client.fetch(uids, ["FLAGS", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"]) if uids else {}
    return {
        data[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().split(":", 1)[1].strip(): set(
            data[b"FLAGS"]
        )
        for data in found.values()
    }


def counts(result: fetching.FetchResult) -> tuple[int, int, int, int]:
    return (result.fetched, result.new, result.processed, result.failed)


def subjects() -> list[str]:
    return sorted(Ticket.objects.values_list("subject", flat=True))


# --- IMAP -----------------------------------------------------------------------------------


def test_imap_mail_becomes_tickets_and_is_marked_read(dovecot, account, make_mailbox):
    mailbox = make_mailbox(after_fetch="seen")
    deliver(dovecot, account, "Skates broken", "Rocket late", "Anvil too heavy")

    result = fetching.mailbox_fetch(mailbox=mailbox)

    assert result.ok and counts(result) == (3, 3, 3, 0)
    assert subjects() == ["Anvil too heavy", "Rocket late", "Skates broken"]
    assert {ticket.department for ticket in Ticket.objects.all()} == {mailbox.department}
    stored = InboundMessage.objects.get(subject="Rocket late")
    assert stored.channel == "imap" and stored.remote_id.isdigit()
    # Still on the server, now read.
    assert {subject: SEEN in flags for subject, flags in on_server(dovecot, account).items()} == {
        "Skates broken": True,
        "Rocket late": True,
        "Anvil too heavy": True,
    }
    mailbox.refresh_from_db()
    assert mailbox.last_fetched_at is not None and mailbox.error_count == 0

    # The next run finds nothing new; a new mail is fetched alone.
    deliver(dovecot, account, "One more thing")
    again = fetching.mailbox_fetch(mailbox=mailbox)
    assert counts(again) == (1, 1, 1, 0)
    assert Ticket.objects.count() == 4


def test_imap_mail_already_read_elsewhere_is_fetched_again_without_a_second_ticket(
    dovecot,
    account,
    make_mailbox,
):
    mailbox = make_mailbox(after_fetch="seen")
    deliver(dovecot, account, "Marked unread by a colleague")
    fetching.mailbox_fetch(mailbox=mailbox)
    with imap(dovecot, account) as client:
        client.select_folder("INBOX")
        client.remove_flags(client.search(["ALL"]), [SEEN])

    result = fetching.mailbox_fetch(mailbox=mailbox)

    assert counts(result) == (1, 0, 1, 0)  # downloaded again, recognised, not a new ticket
    assert Ticket.objects.count() == 1


def test_imap_delete_removes_the_mail_from_the_server(dovecot, account, make_mailbox):
    mailbox = make_mailbox(after_fetch="delete")
    deliver(dovecot, account, "Delete me", "Me too")
    # One the staff already opened in a mail client is fetched as well.
    with imap(dovecot, account) as client:
        client.select_folder("INBOX")
        client.add_flags(client.search(["ALL"])[:1], [SEEN])

    result = fetching.mailbox_fetch(mailbox=mailbox)

    assert counts(result) == (2, 2, 2, 0)
    assert subjects() == ["Delete me", "Me too"]
    assert on_server(dovecot, account) == {}


@pytest.mark.parametrize("server_moves", [True, False], ids=["MOVE", "COPY and delete"])
def test_imap_move_files_the_mail_in_a_new_folder(
    dovecot, account, make_mailbox, monkeypatch, server_moves
):
    if not server_moves:  # an older server: the same Dovecot, with MOVE and UIDPLUS unused
        real = IMAPClient.has_capability
        monkeypatch.setattr(
            IMAPClient,
            "has_capability",
            lambda client, name: name not in ("MOVE", "UIDPLUS") and real(client, name),
        )
    mailbox = make_mailbox(after_fetch="move", move_to_folder="Archive/Help desk")
    deliver(dovecot, account, "File me", "Me too")

    result = fetching.mailbox_fetch(mailbox=mailbox)

    assert counts(result) == (2, 2, 2, 0)
    assert on_server(dovecot, account) == {}
    assert sorted(on_server(dovecot, account, "Archive/Help desk")) == ["File me", "Me too"]
    # The folder exists now; the next run moves into it again.
    deliver(dovecot, account, "Later")
    assert counts(fetching.mailbox_fetch(mailbox=mailbox)) == (1, 1, 1, 0)
    assert len(on_server(dovecot, account, "Archive/Help desk")) == 3


def test_imap_reads_the_configured_folder(dovecot, account, make_mailbox):
    with imap(dovecot, account) as client:
        client.create_folder("Support")
    deliver(dovecot, account, "In the inbox")
    deliver(dovecot, account, "In the support folder", folder="Support")
    mailbox = make_mailbox(folder="Support", after_fetch="delete")

    fetching.mailbox_fetch(mailbox=mailbox)

    assert subjects() == ["In the support folder"]
    assert list(on_server(dovecot, account)) == ["In the inbox"]


def test_batch_size_limits_one_run_and_the_oldest_come_first(dovecot, account, make_mailbox):
    mailbox = make_mailbox(after_fetch="seen", batch_size=2)
    deliver(dovecot, account, "First", "Second", "Third")

    assert counts(fetching.mailbox_fetch(mailbox=mailbox)) == (2, 2, 2, 0)
    assert subjects() == ["First", "Second"]
    assert {s for s, flags in on_server(dovecot, account).items() if SEEN not in flags} == {"Third"}
    assert counts(fetching.mailbox_fetch(mailbox=mailbox)) == (1, 1, 1, 0)
    assert Ticket.objects.count() == 3


def test_a_message_that_fails_to_process_does_not_stop_the_others(
    dovecot,
    account,
    make_mailbox,
    monkeypatch,
):
    mailbox = make_mailbox(after_fetch="delete")
    deliver(dovecot, account, "Fine", "Poison", "Also fine")
    real_open = ticket_services.ticket_open

    def ticket_open(*, draft):
        if draft.subject == "Poison":
            raise RuntimeError("the ticket service broke")
        return real_open(draft=draft)

    monkeypatch.setattr(ticket_services, "ticket_open", ticket_open)

    result = fetching.mailbox_fetch(mailbox=mailbox)

    assert result.ok and counts(result) == (3, 3, 2, 1)
    assert subjects() == ["Also fine", "Fine"]
    failed = InboundMessage.objects.get(status=InboundStatus.FAILED)
    assert "the ticket service broke" in failed.error
    # It is stored, so it left the server like the others, and a retry makes its ticket.
    assert on_server(dovecot, account) == {}
    monkeypatch.setattr(ticket_services, "ticket_open", real_open)
    assert services.inbound_process(message=failed).status == InboundStatus.PROCESSED
    assert Ticket.objects.count() == 3


# --- POP3 -----------------------------------------------------------------------------------


def pop3_count(dovecot, account) -> int:
    pop = poplib.POP3(dovecot.host, dovecot.pop3_port, timeout=5)
    try:
        pop.user(account)
        pop.pass_(dovecot.password)
        return pop.stat()[0]
    finally:
        pop.quit()


def test_pop3_mail_becomes_tickets_and_delete_empties_the_mailbox(
    dovecot,
    account,
    make_mailbox,
):
    mailbox = make_mailbox("pop3", after_fetch="delete")
    deliver(dovecot, account, "By POP", "Also by POP")

    result = fetching.mailbox_fetch(mailbox=mailbox)

    assert result.ok and counts(result) == (2, 2, 2, 0)
    assert subjects() == ["Also by POP", "By POP"]
    assert set(InboundMessage.objects.values_list("channel", flat=True)) == {"pop3"}
    assert pop3_count(dovecot, account) == 0


def test_pop3_mail_is_stored_and_processed_in_runs_and_one_failure_stops_nothing(
    dovecot, account, make_mailbox, monkeypatch
):
    monkeypatch.setattr(fetching, "FETCH_CHUNK", 2)  # runs of 2 and 1
    mailbox = make_mailbox("pop3", after_fetch="delete")
    deliver(dovecot, account, "Fine", "Poison", "Also fine")
    real_open = ticket_services.ticket_open
    runs = []
    real_many = services.inbound_process_many

    def ticket_open(*, draft):
        if draft.subject == "Poison":
            raise RuntimeError("the ticket service broke")
        return real_open(draft=draft)

    def process_many(messages):
        runs.append(len(messages))
        return real_many(messages)

    monkeypatch.setattr(ticket_services, "ticket_open", ticket_open)
    monkeypatch.setattr(services, "inbound_process_many", process_many)

    result = fetching.mailbox_fetch(mailbox=mailbox)

    assert result.ok and counts(result) == (3, 3, 2, 1)
    assert runs == [2, 1]
    assert subjects() == ["Also fine", "Fine"]
    failed = InboundMessage.objects.get(status=InboundStatus.FAILED)
    assert "the ticket service broke" in failed.error
    assert failed.channel == "pop3" and failed.remote_id
    # Stored, so deleted like the others: a retry makes its ticket.
    assert pop3_count(dovecot, account) == 0


def test_pop3_keeping_the_mail_never_processes_it_twice(dovecot, account, make_mailbox):
    mailbox = make_mailbox("pop3", after_fetch="seen", batch_size=2)
    deliver(dovecot, account, "Kept 1", "Kept 2", "Kept 3")

    assert counts(fetching.mailbox_fetch(mailbox=mailbox)) == (2, 2, 2, 0)
    # What is stored is not downloaded again, so the next run gets to the third one.
    assert counts(fetching.mailbox_fetch(mailbox=mailbox)) == (1, 1, 1, 0)
    assert counts(fetching.mailbox_fetch(mailbox=mailbox)) == (0, 0, 0, 0)
    assert Ticket.objects.count() == 3
    assert pop3_count(dovecot, account) == 3


# --- TLS ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "security"),
    [("imap", "ssl"), ("imap", "starttls"), ("pop3", "ssl"), ("pop3", "starttls")],
)
def test_tls_with_a_verified_certificate(
    dovecot,
    account,
    make_mailbox,
    settings,
    protocol,
    security,
):
    settings.HELPDESK_MAIL_CA_FILE = dovecot.ca_file
    mailbox = make_mailbox(protocol, security=security, after_fetch="delete")
    deliver(dovecot, account, f"Over {security}")

    result = fetching.mailbox_fetch(mailbox=mailbox)

    assert result.ok, result.error
    assert subjects() == [f"Over {security}"]


@pytest.mark.parametrize(("protocol", "security"), [("imap", "ssl"), ("pop3", "starttls")])
def test_an_untrusted_certificate_is_refused(
    dovecot,
    account,
    make_mailbox,
    protocol,
    security,
):
    assert not django_settings.HELPDESK_MAIL_CA_FILE
    mailbox = make_mailbox(protocol, security=security)
    deliver(dovecot, account, "Never read")

    result = fetching.mailbox_fetch(mailbox=mailbox)

    assert "certificate" in result.error
    assert not InboundMessage.objects.exists()
    mailbox.refresh_from_db()
    assert mailbox.error_count == 1 and "certificate" in mailbox.last_error


# --- failures -------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_wrong_password_is_counted_then_the_mailbox_is_switched_off(
    dovecot,
    account,
    make_mailbox,
    mailoutbox,
    settings,
    protocol,
):
    settings.ADMINS = [("Ops", "ops@helpdesk.example")]
    mailbox = make_mailbox(protocol, password="Wr0ng-Secret!", max_failures=2)
    deliver(dovecot, account, "Waiting")

    first = fetching.mailbox_fetch(mailbox=mailbox)

    mailbox.refresh_from_db()
    assert not first.ok and mailbox.error_count == 1 and mailbox.is_active
    assert mailbox.last_error_at is not None
    assert f"{dovecot.host}:{mailbox.port}" in mailbox.last_error
    assert "authentication failed" in mailbox.last_error.lower()
    assert "Wr0ng-Secret!" not in mailbox.last_error and "Wr0ng-Secret!" not in first.error
    assert mailoutbox == []

    fetching.mailbox_fetch(mailbox=mailbox)

    mailbox.refresh_from_db()
    assert mailbox.error_count == 2 and not mailbox.is_active
    [alert] = mailoutbox
    assert alert.to == ["ops@helpdesk.example"]
    assert "Support 1" in alert.subject and "disabled" in alert.subject
    assert "Wr0ng-Secret!" not in alert.body and "authentication failed" in alert.body.lower()
    # Switched off: the scheduled fetch leaves it alone.
    assert fetching.mailboxes_fetch() == []
    assert not Ticket.objects.exists()

    # Fixed and tried by hand: a success clears the count (switching it on is up to admins).
    Mailbox.objects.filter(pk=mailbox.pk).update(password=dovecot.password)
    mailbox.refresh_from_db()
    assert fetching.mailbox_fetch(mailbox=mailbox).ok
    mailbox.refresh_from_db()
    assert mailbox.error_count == 0 and subjects() == ["Waiting"]
    assert len(mailoutbox) == 1


def test_the_superusers_and_the_mail_admins_are_told(
    make_mailbox, mailoutbox, settings, department
):
    from tests.accounts.factories import UserFactory, agent_user, role

    settings.ADMINS = []
    UserFactory(email="boss@helpdesk.example", is_superuser=True)
    agent_user(department=department, role=role("Administrator"), user__email="it@helpdesk.example")
    agent_user(department=department, user__email="plain.agent@helpdesk.example")
    mailbox = make_mailbox(password="wrong", max_failures=1)

    fetching.mailbox_fetch(mailbox=mailbox)

    [alert] = mailoutbox
    assert sorted(alert.to) == ["boss@helpdesk.example", "it@helpdesk.example"]


def test_an_unreachable_server_or_a_missing_folder_is_a_readable_error(
    dovecot,
    make_mailbox,
):
    closed_port = fetching_free_port()
    unreachable = make_mailbox(port=closed_port)
    no_folder = make_mailbox(folder="Nope")

    assert "connection refused" in fetching.mailbox_fetch(mailbox=unreachable).error
    assert "Nope" in fetching.mailbox_fetch(mailbox=no_folder).error
    for mailbox in (unreachable, no_folder):
        mailbox.refresh_from_db()
        assert mailbox.error_count == 1 and mailbox.is_active


def test_a_server_that_never_answers_fails_after_the_timeout(make_mailbox, settings):
    settings.HELPDESK_MAIL_FETCH_TIMEOUT = 1
    with socket.socket() as silent:  # accepts connections (the backlog) but never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        mailbox = make_mailbox(port=silent.getsockname()[1])
        started = time.monotonic()
        result = fetching.mailbox_fetch(mailbox=mailbox)
    assert time.monotonic() - started < 5
    assert "timed out" in result.error
    mailbox.refresh_from_db()
    assert mailbox.error_count == 1


def fetching_free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_one_broken_mailbox_does_not_stop_the_others(dovecot, account, make_mailbox):
    broken = make_mailbox(password="wrong")
    working = make_mailbox(after_fetch="delete")
    make_mailbox(is_active=False)
    deliver(dovecot, account, "Still fetched")

    results = {result.mailbox: result for result in fetching.mailboxes_fetch()}

    assert set(results) == {broken.name, working.name}
    assert not results[broken.name].ok and results[working.name].ok
    assert subjects() == ["Still fetched"]


# --- one fetch at a time --------------------------------------------------------------------


def in_thread(function, *args):
    """Run `function` in a thread with its own database connection; return its result."""
    outcome = {}

    def run():
        try:
            outcome["value"] = function(*args)
        except BaseException as error:
            outcome["error"] = error
        finally:
            close_old_connections()
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def test_a_mailbox_being_fetched_is_skipped(dovecot, account, make_mailbox):
    mailbox = make_mailbox(after_fetch="delete")
    deliver(dovecot, account, "Wait your turn")

    with fetching._fetch_lock(mailbox.pk) as acquired:
        assert acquired
        result = in_thread(lambda: fetching.mailbox_fetch(mailbox=mailbox))

    assert result.busy and result.ok and counts(result) == (0, 0, 0, 0)
    assert "another fetch" in result.summary()
    assert len(on_server(dovecot, account)) == 1
    # Released: the next run fetches.
    assert counts(fetching.mailbox_fetch(mailbox=mailbox)) == (1, 1, 1, 0)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("after_fetch", ["seen", "delete"])
def test_concurrent_fetches_never_make_duplicate_tickets(
    dovecot,
    account,
    make_mailbox,
    after_fetch,
):
    mailbox = make_mailbox(after_fetch=after_fetch)
    deliver(dovecot, account, *(f"Concurrent {n}" for n in range(6)))
    workers = 4
    barrier = threading.Barrier(workers)
    results, errors = [], []

    def work():
        try:
            barrier.wait(timeout=10)
            results.append(fetching.mailbox_fetch(mailbox=Mailbox.objects.get(pk=mailbox.pk)))
        except BaseException as error:
            errors.append(error)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == [] and all(result.ok for result in results)
    assert sum(result.new for result in results) == 6
    assert Ticket.objects.count() == 6 == InboundMessage.objects.count()
    assert subjects() == [f"Concurrent {n}" for n in range(6)]


# --- entry points ---------------------------------------------------------------------------


def test_fetch_command_reports_each_mailbox(dovecot, account, make_mailbox):
    good = make_mailbox(after_fetch="delete")
    bad = make_mailbox(password="wrong")
    deliver(dovecot, account, "Via the command")

    out = io.StringIO()
    assert fetching.fetch_command(mailbox_name=good.name, stdout=out) == 0
    assert out.getvalue() == f"{good.name}: 1 fetched, 1 new, 1 processed, 0 failed\n"

    out = io.StringIO()
    assert fetching.fetch_command(mailbox_name=None, stdout=out) == 1
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"{good.name}: 0 fetched") or lines[1].startswith(good.name)
    assert any(line.startswith(f"{bad.name}: error:") for line in lines)

    out = io.StringIO()
    assert fetching.fetch_command(mailbox_name="Nope", stdout=out) == 1
    assert "No IMAP or POP3 mailbox named 'Nope'" in out.getvalue()


def test_the_scheduled_task_fetches(dovecot, account, make_mailbox):
    mailbox = make_mailbox(after_fetch="delete")
    deliver(dovecot, account, "Via Celery")

    summaries = tasks.mailboxes_fetch_task.delay().get()

    assert summaries == [f"{mailbox.name}: 1 fetched, 1 new, 1 processed, 0 failed"]
    assert tasks.mailbox_fetch_task.delay(mailbox.pk).get().startswith(mailbox.name)
    assert tasks.mailbox_fetch_task.delay(0).get() is None
    entry = django_settings.CELERY_BEAT_SCHEDULE["mailboxes-fetch"]
    assert entry["task"] == tasks.mailboxes_fetch_task.name
    assert entry["schedule"] == django_settings.HELPDESK_MAIL_FETCH_INTERVAL


# --- runs of messages -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # commits, as in production
def test_a_fetch_in_runs_sends_each_tickets_mail_and_keeps_the_auto_response_limit(
    dovecot, account, make_mailbox, monkeypatch, settings, mailoutbox
):
    """Messages are downloaded, stored and flagged in runs, and their mail is worked out per
    run: the limit of auto-responses per address still counts the earlier runs' mail."""
    monkeypatch.setattr(fetching, "FETCH_CHUNK", 3)
    settings.HELPDESK_AUTORESPONSE_LIMIT = 4
    mailbox = make_mailbox(after_fetch="delete")
    deliver(dovecot, account, *(f"Order {n}" for n in range(1, 9)))

    result = fetching.mailbox_fetch(mailbox=mailbox)

    assert counts(result) == (8, 8, 8, 0)
    assert on_server(dovecot, account) == {}
    replies = sorted(m.subject for m in mailoutbox if "wile@acme.example" in m.to[0])
    numbers = dict(Ticket.objects.values_list("subject", "number"))
    # The first four tickets (three in the first run, one in the second) get their number.
    assert len(replies) == 4
    assert all(f"[#{numbers[f'Order {n}']}]" in " ".join(replies) for n in range(1, 5))
    held = OutboundMessage.objects.filter(template="ticket.autoresp", status="skipped")
    assert sorted(held.values_list("ticket__subject", flat=True)) == [
        f"Order {n}" for n in range(5, 9)
    ]


def test_the_same_message_twice_in_one_run_makes_one_ticket(dovecot, account, make_mailbox):
    mailbox = make_mailbox(after_fetch="delete")
    raw = mail("Sent twice by a broken client")
    with imap(dovecot, account) as client:
        client.append("INBOX", raw)
        client.append("INBOX", raw)

    result = fetching.mailbox_fetch(mailbox=mailbox)

    assert counts(result) == (2, 1, 2, 0)
    assert subjects() == ["Sent twice by a broken client"]
    assert InboundMessage.objects.count() == 1
    # Processed once: it opened the ticket, rather than being a duplicate of itself.
    assert InboundMessage.objects.get().outcome == "created"
    assert on_server(dovecot, account) == {}


def test_a_large_message_is_downloaded_in_a_run_of_its_own(
    dovecot, account, make_mailbox, monkeypatch
):
    monkeypatch.setattr(fetching, "FETCH_CHUNK_BYTES", 2000)
    runs = []
    real = fetching._store_and_process_many
    monkeypatch.setattr(
        fetching,
        "_store_and_process_many",
        lambda mailbox, result, raws, channel: (
            runs.append(len(raws)),
            real(mailbox, result, raws, channel),
        ),
    )
    mailbox = make_mailbox(after_fetch="delete")
    with imap(dovecot, account) as client:
        client.append("INBOX", mail("Small one"))
        client.append("INBOX", mail("Large one").replace(b"About", b"x" * 3000 + b" About"))
        client.append("INBOX", mail("Small two"))
        client.append("INBOX", mail("Small three"))

    assert counts(fetching.mailbox_fetch(mailbox=mailbox)) == (4, 4, 4, 0)
    assert runs == [1, 1, 2]
    assert len(subjects()) == 4


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # commits, as in production
def test_mail_that_cannot_be_worked_out_never_stops_the_fetch(
    dovecot, account, make_mailbox, monkeypatch, caplog
):
    """The tickets committed already: a failure while preparing their mail is logged, and the
    fetch goes on and tidies the server."""

    def broken(pks):
        raise RuntimeError("database went away while preparing mail")

    monkeypatch.setattr(fetching.notifications, "_fresh_many", broken)
    mailbox = make_mailbox(after_fetch="delete")
    deliver(dovecot, account, "Still a ticket", "Me too")

    result = fetching.mailbox_fetch(mailbox=mailbox)

    assert result.ok and counts(result) == (2, 2, 2, 0)
    assert subjects() == ["Me too", "Still a ticket"]
    assert on_server(dovecot, account) == {}
    assert "Preparing the mail of a batch failed" in caplog.text


def test_a_run_asks_once_for_its_senders_and_message_ids(
    dovecot, account, make_mailbox, monkeypatch
):
    """A run looks up its senders' accounts and its Message-IDs together, and still tells
    apart what an earlier message of the same run made: a new sender's second mail, a second
    copy of a Message-ID, one stored before the run."""
    from accounts import services as accounts

    customer = UserFactory(email="known@acme.example")
    mailbox = make_mailbox(after_fetch="delete")

    def sent(subject, sender, message_id):
        raw = mail(subject, sender)
        return raw.replace(raw.split(b"Message-ID: ")[1].split(b"\r\n")[0], message_id.encode())

    with imap(dovecot, account) as client:
        client.append("INBOX", sent("Before", "known@acme.example", "<before@acme.example>"))
    fetching.mailbox_fetch(mailbox=mailbox)
    asked = []
    real = accounts.user_get_by_email
    monkeypatch.setattr(
        accounts, "user_get_by_email", lambda **kwargs: asked.append(kwargs) or real(**kwargs)
    )
    with imap(dovecot, account) as client:
        for raw in [
            sent("Known", "known@acme.example", "<a@acme.example>"),
            sent("New one", "Nina <new@acme.example>", "<b@acme.example>"),
            sent("New two", "new@acme.example", "<c@acme.example>"),
            sent("Again before", "known@acme.example", "<before@acme.example>"),
            sent("First copy", "known@acme.example", "<twice@acme.example>"),
            sent("Second copy", "known@acme.example", "<twice@acme.example>"),
            b"no header at all\r\n",
        ]:
            client.append("INBOX", raw)

    assert counts(fetching.mailbox_fetch(mailbox=mailbox)) == (7, 7, 6, 1)

    outcomes = dict(InboundMessage.objects.filter(attempts=1).values_list("subject", "outcome"))
    assert outcomes == {
        "Before": "created",
        "Known": "created",
        "New one": "created",
        "New two": "created",
        "Again before": "duplicate",
        "First copy": "created",
        "Second copy": "duplicate",
        "": "unparseable",
    }
    new = User.objects.get(email="new@acme.example")
    assert new.name == "Nina"
    assert set(Ticket.objects.values_list("subject", "user")) == {
        ("Before", customer.pk),
        ("Known", customer.pk),
        ("New one", new.pk),
        ("New two", new.pk),
        ("First copy", customer.pk),
    }
    # Only the new sender's second mail asks again: the first one made the account.
    assert [kwargs["email"] for kwargs in asked] == ["new@acme.example"]


def test_addresses_beyond_a_runs_bound_are_looked_up_when_used(
    dovecot, account, make_mailbox, monkeypatch
):
    monkeypatch.setattr(services, "RUN_ADDRESSES_MAX", 1)  # the sender only
    known = UserFactory(email="known@acme.example")
    mailbox = make_mailbox(after_fetch="delete")
    raw = mail("Copied", "wile@acme.example").replace(
        b"To: support1@helpdesk.example",
        b"To: support1@helpdesk.example\r\nCc: known@acme.example, new@acme.example",
    )
    with imap(dovecot, account) as client:
        client.append("INBOX", raw)

    assert counts(fetching.mailbox_fetch(mailbox=mailbox)) == (1, 1, 1, 0)

    ticket = Ticket.objects.get()
    assert ticket.user.email == "wile@acme.example"
    copied = set(ticket.collaborators.values_list("user__email", flat=True))
    assert copied == {"known@acme.example", "new@acme.example"}
    assert User.objects.filter(email="known@acme.example").get() == known


def test_a_copy_stored_meanwhile_by_another_mailbox_is_a_duplicate(
    dovecot, account, make_mailbox, monkeypatch
):
    """A mail to two of our addresses may be stored by the other mailbox's fetch while this
    run goes on: its Message-ID is asked for again just before its ticket work."""
    from tests.tickets.factories import open_ticket

    mailbox = make_mailbox(after_fetch="delete")
    make_mailbox()  # support2@helpdesk.example
    raw = mail("To both of you", "wile@acme.example").replace(
        b"To: support1@helpdesk.example",
        b"To: support1@helpdesk.example, support2@helpdesk.example",
    )
    message_id = raw.split(b"Message-ID: ")[1].split(b"\r\n")[0].decode()
    with imap(dovecot, account) as client:
        client.append("INBOX", raw)
    real = services.inbound_process

    def other_mailbox_first(*, message):
        # The other mailbox's fetch opens the ticket after this run asked about the id.
        open_ticket(subject="To both of you", message_id=message_id)
        return real(message=message)

    monkeypatch.setattr(fetching.services, "inbound_process", other_mailbox_first)

    assert counts(fetching.mailbox_fetch(mailbox=mailbox)) == (1, 1, 1, 0)
    assert InboundMessage.objects.get().outcome == "duplicate"
    assert Ticket.objects.count() == 1


def _sent(subject: str, message_id: str, in_reply_to: str = "") -> bytes:
    """Wile's mail with the given Message-ID, answering `in_reply_to` if given."""
    raw = mail(subject, "wile@acme.example")
    raw = raw.replace(raw.split(b"Message-ID: ")[1].split(b"\r\n")[0], message_id.encode())
    if in_reply_to:
        raw = raw.replace(b"Subject:", f"In-Reply-To: {in_reply_to}\r\nSubject:".encode())
    return raw


def test_a_run_asks_once_what_its_replies_quote(dovecot, account, make_mailbox, monkeypatch):
    """Replies quoting mail stored before the run are matched from one lookup for the run;
    a reply quoting a mail of the same run asks again, and threads all the same."""
    mailbox = make_mailbox(after_fetch="delete")

    with imap(dovecot, account) as client:
        client.append("INBOX", _sent("Printer", "<printer@acme.example>"))
    fetching.mailbox_fetch(mailbox=mailbox)
    printer = Ticket.objects.get()
    asked = []
    real = services._quoted
    monkeypatch.setattr(services, "_quoted", lambda ids: asked.append(ids) or real(ids))
    with imap(dovecot, account) as client:
        client.append("INBOX", _sent("Re: Printer", "<r1@acme.example>", "<printer@acme.example>"))
        client.append("INBOX", _sent("Scanner", "<scanner@acme.example>"))
        client.append("INBOX", _sent("Re: Scanner", "<r2@acme.example>", "<scanner@acme.example>"))

    assert counts(fetching.mailbox_fetch(mailbox=mailbox)) == (3, 3, 3, 0)

    scanner = Ticket.objects.get(subject="Scanner")
    threaded = dict(
        InboundMessage.objects.filter(subject__startswith="Re:").values_list("subject", "ticket")
    )
    assert threaded == {"Re: Printer": printer.pk, "Re: Scanner": scanner.pk}
    assert asked == [{"<printer@acme.example>"}, {"<scanner@acme.example>"}]


def test_a_run_reads_the_tickets_its_replies_answer_in_one_query(dovecot, account, make_mailbox):
    """The tickets that a run's replies quote are read together, under a lock, by the run's
    transaction, and the first reply to each does not read it again; a second reply to the
    same ticket in the run reads it again, after the first one's change."""
    from django.test.utils import CaptureQueriesContext

    mailbox = make_mailbox(after_fetch="delete")

    with imap(dovecot, account) as client:
        client.append("INBOX", _sent("Printer", "<printer@acme.example>"))
        client.append("INBOX", _sent("Scanner", "<scanner@acme.example>"))
    fetching.mailbox_fetch(mailbox=mailbox)
    with imap(dovecot, account) as client:
        client.append("INBOX", _sent("Re: Printer", "<r1@acme.example>", "<printer@acme.example>"))
        client.append("INBOX", _sent("Re: Scanner", "<r2@acme.example>", "<scanner@acme.example>"))
        client.append("INBOX", _sent("Re: Printer", "<r3@acme.example>", "<printer@acme.example>"))

    with CaptureQueriesContext(connection) as queries:
        assert counts(fetching.mailbox_fetch(mailbox=mailbox)) == (3, 3, 3, 0)

    statements = [q["sql"].replace("`", '"') for q in queries.captured_queries]
    reads = [
        sql
        for sql in statements
        if sql.startswith("SELECT")
        and 'FROM "tickets_ticket" LEFT OUTER JOIN "tickets_thread"' in sql
    ]
    # With their threads: one for the run, and one for the second reply to the printer
    # ticket, whose lock reads it again (without); the first replies lock nothing more.
    assert len(reads) == 2, "\n".join(reads)
    relocks = [
        sql
        for sql in statements
        if sql.startswith('SELECT "tickets_ticket"."id"')
        and sql.endswith("FOR UPDATE")
        and "JOIN" not in sql
    ]
    if connection.vendor != "sqlite":  # which has no FOR UPDATE
        assert len(relocks) == 1, "\n".join(relocks)
    threaded = InboundMessage.objects.filter(subject__startswith="Re:").values_list(
        "ticket__subject", flat=True
    )
    assert sorted(threaded) == ["Printer", "Printer", "Scanner"]
    printer = Ticket.objects.get(subject="Printer")
    assert printer.thread.entries.count() == 3
