"""Fetch mail from IMAP and POP3 mailboxes: store each message raw, process it, then tidy up.

For every message the order is: download (IMAP with BODY.PEEK[], so the server marks nothing
read), `inbound_receive` (the raw bytes are committed), `inbound_process`, and only then the
mailbox's `after_fetch` on the server (delete, move, or mark read). IMAP does this for runs of
up to FETCH_CHUNK messages at a time (one FETCH, one store, one flag command), and the mail
about the tickets of a run is worked out together once the run is processed
(`notifications.mail_out_batched`); POP3 downloads one message at a time, and stores and
processes them in the same runs.

A crash at any point leaves the message on the server to be fetched again, and the idempotent
store (`source_key`) turns that second download into the row already saved: never a second
ticket.

One fetch per mailbox at a time, across processes and workers: see `_fetch_lock`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import poplib
import re
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from imaplib import IMAP4
from pathlib import Path
from typing import TextIO

from django.conf import settings
from django.core.mail import send_mail
from django.db import DatabaseError, connection
from django.db.models import F
from django.utils import timezone
from imapclient import DELETED, SEEN, IMAPClient

from accounts import permissions
from helpdesk.config import config
from helpdesk.lib.memo import tokens_snapshot

from . import notifications, services
from .models import InboundMessage, InboundStatus, Mailbox

logger = logging.getLogger(__name__)

FETCHED_PROTOCOLS = (Mailbox.Protocol.IMAP, Mailbox.Protocol.POP3)
DEFAULT_PORTS = {
    (Mailbox.Protocol.IMAP, True): 993,
    (Mailbox.Protocol.IMAP, False): 143,
    (Mailbox.Protocol.POP3, True): 995,
    (Mailbox.Protocol.POP3, False): 110,
}
# poplib refuses lines longer than 2048 bytes, and real mail has longer ones (RFC 5322's 998
# is often ignored). imaplib allows 1,000,000; POP3 gets the same.
poplib._MAXLINE = max(poplib._MAXLINE, 1_000_000)

# The most messages, and bytes, downloaded with one IMAP FETCH; their mail goes out together
# once they are processed, and then they are flagged (deleted, moved or seen) together.
FETCH_CHUNK = 25
FETCH_CHUNK_BYTES = 16 * 1024 * 1024

# What a broken, unreachable or misconfigured mail server raises: these count as failures of
# the mailbox (error_count, then deactivation). Anything else is our own bug or our database,
# and is raised: it must not switch customers' mailboxes off.
CONNECTION_ERRORS = (OSError, IMAP4.error, poplib.error_proto, EOFError)


class MailboxConfigError(Exception):
    """The mailbox's settings cannot work (e.g. 'move' without a folder)."""


@dataclass
class FetchResult:
    mailbox: str
    fetched: int = 0
    new: int = 0
    processed: int = 0
    failed: int = 0
    # Set when the fetch did not happen or broke off: connection, login, folder, TLS.
    error: str = ""
    # Another worker was fetching this mailbox: this run did nothing.
    busy: bool = False

    @property
    def ok(self) -> bool:
        return not self.error

    def summary(self) -> str:
        if self.busy:
            return f"{self.mailbox}: skipped, another fetch of this mailbox is running"
        counts = (
            f"{self.fetched} fetched, {self.new} new, {self.processed} processed, "
            f"{self.failed} failed"
        )
        if self.error:
            return f"{self.mailbox}: error: {self.error} ({counts})"
        return f"{self.mailbox}: {counts}"


# --- entry points ---------------------------------------------------------------------------


def mailbox_fetch(*, mailbox: Mailbox) -> FetchResult:
    """Fetch up to `batch_size` messages of one IMAP or POP3 mailbox (active or not).

    Connection, login and server errors are recorded on the mailbox and returned in
    `FetchResult.error`; after `max_failures` of them in a row the mailbox is switched off and
    the admins are told. A message that fails to process is stored as FAILED (to retry) and
    counted; the others go on."""
    if mailbox.protocol not in FETCHED_PROTOCOLS:
        raise ValueError(f"Mailbox {mailbox.name!r} is not fetched (protocol {mailbox.protocol}).")
    result = FetchResult(mailbox=mailbox.name)
    with _fetch_lock(mailbox.pk) as acquired:
        if not acquired:
            result.busy = True
            logger.info("Mailbox %s: another fetch is running; skipped", mailbox.name)
            return result
        try:
            if mailbox.protocol == Mailbox.Protocol.IMAP:
                _fetch_imap(mailbox, result)
            else:
                _fetch_pop3(mailbox, result)
        except (*CONNECTION_ERRORS, MailboxConfigError) as error:
            result.error = _describe(mailbox, error)
            logger.warning("Mailbox %s: fetch failed: %s", mailbox.name, result.error)
            _record_failure(mailbox, result.error)
            return result
    Mailbox.objects.filter(pk=mailbox.pk).update(error_count=0, last_fetched_at=timezone.now())
    logger.info("%s", result.summary())
    return result


def mailboxes_fetch() -> list[FetchResult]:
    """Fetch every active IMAP and POP3 mailbox; one that breaks does not stop the others."""
    results = []
    for mailbox in Mailbox.objects.filter(is_active=True, protocol__in=FETCHED_PROTOCOLS):
        try:
            results.append(mailbox_fetch(mailbox=mailbox))
        except Exception as error:
            logger.exception("Mailbox %s: fetch crashed", mailbox.name)
            results.append(_crashed(mailbox, error))
    return results


def fetch_command(*, mailbox_name: str | None, stdout: TextIO) -> int:
    """`manage.py mailgate fetch [--mailbox NAME]`: one line per mailbox; 1 if any failed.

    Without a name, every active IMAP/POP3 mailbox; with one, that mailbox even when it is
    inactive (to try it after fixing its settings; a success does not switch it back on)."""
    if mailbox_name is None:
        results = mailboxes_fetch()
        if not results:
            stdout.write("No active IMAP or POP3 mailbox to fetch.\n")
    else:
        mailbox = Mailbox.objects.filter(name=mailbox_name, protocol__in=FETCHED_PROTOCOLS).first()
        if mailbox is None:
            stdout.write(f"No IMAP or POP3 mailbox named {mailbox_name!r}.\n")
            return 1
        try:
            results = [mailbox_fetch(mailbox=mailbox)]
        except Exception as error:
            logger.exception("Mailbox %s: fetch crashed", mailbox.name)
            results = [_crashed(mailbox, error)]
    for result in results:
        stdout.write(result.summary() + "\n")
    return 0 if all(result.ok for result in results) else 1


def _crashed(mailbox: Mailbox, error: Exception) -> FetchResult:
    """The result of a fetch that broke on our side (a bug, the database): logged, not counted
    against the mailbox."""
    return FetchResult(
        mailbox=mailbox.name, error=_scrub(f"{type(error).__name__}: {error}", mailbox.password)
    )


# --- IMAP -----------------------------------------------------------------------------------


def _fetch_imap(mailbox: Mailbox, result: FetchResult) -> None:
    use_ssl = mailbox.security == Mailbox.Security.SSL
    if mailbox.after_fetch == Mailbox.AfterFetch.MOVE and not mailbox.move_to_folder:
        raise MailboxConfigError("'Move to a folder' is chosen but no folder is named.")
    client = IMAPClient(
        mailbox.host,
        port=mailbox.port or DEFAULT_PORTS[(Mailbox.Protocol.IMAP, use_ssl)],
        ssl=use_ssl,
        ssl_context=_ssl_context() if use_ssl else None,
        timeout=settings.HELPDESK_MAIL_FETCH_TIMEOUT,
    )
    try:
        if mailbox.security == Mailbox.Security.STARTTLS:
            client.starttls(_ssl_context())
        client.login(mailbox.username, mailbox.password)
        client.select_folder(mailbox.folder or "INBOX")
        if mailbox.after_fetch == Mailbox.AfterFetch.MARK_SEEN:
            # Read messages stay in the folder: only unread ones are new.
            criteria = ["UNSEEN", "NOT", "DELETED"]
        else:
            # Everything still here is to fetch, even what someone opened in a mail client.
            criteria = ["NOT", "DELETED"]
        # Oldest first, so the replies in one batch thread after the mail they answer.
        uids = sorted(client.search(criteria))[: max(mailbox.batch_size, 1)]
        if mailbox.after_fetch == Mailbox.AfterFetch.MOVE and uids:
            _ensure_folder(client, mailbox.move_to_folder)
        sizes = client.fetch(uids, ["RFC822.SIZE"]) if uids else {}
        done: list[int] = []
        with notifications.mail_out_batched() as mail_out:
            for chunk in _chunks(uids, sizes):
                fetched = client.fetch(chunk, ["BODY.PEEK[]"])
                raws = []
                for uid in chunk:
                    data = fetched.get(uid)
                    if data and b"BODY[]" in data:  # else expunged by someone else meanwhile
                        raws.append((uid, data[b"BODY[]"]))
                # The memos' version tokens are read once for the run, as for a request.
                with tokens_snapshot():
                    _store_and_process_many(
                        mailbox, result, [(str(uid), raw) for uid, raw in raws], "imap"
                    )
                    mail_out.flush()
                handled = [uid for uid, _raw in raws]
                if handled:
                    _imap_after_fetch(client, mailbox, handled)
                done += handled
        if mailbox.after_fetch == Mailbox.AfterFetch.DELETE and done:
            _imap_expunge(client, done)
    finally:
        try:
            client.logout()
        except CONNECTION_ERRORS:
            with contextlib.suppress(*CONNECTION_ERRORS):
                client.shutdown()


def _chunks(uids: list[int], sizes: dict[int, dict[bytes, int]]) -> Iterator[list[int]]:
    """The UIDs in runs of at most FETCH_CHUNK messages and FETCH_CHUNK_BYTES (a larger
    message comes alone), each downloaded with one FETCH."""
    chunk: list[int] = []
    total = 0
    for uid in uids:
        size = int((sizes.get(uid) or {}).get(b"RFC822.SIZE") or 0)
        if chunk and (len(chunk) >= FETCH_CHUNK or total + size > FETCH_CHUNK_BYTES):
            yield chunk
            chunk, total = [], 0
        chunk.append(uid)
        total += size
    if chunk:
        yield chunk


def _imap_after_fetch(client: IMAPClient, mailbox: Mailbox, uids: list[int]) -> None:
    if mailbox.after_fetch == Mailbox.AfterFetch.DELETE:
        # Expunged once at the end of the batch; a \Deleted message is never fetched again.
        client.add_flags(uids, [DELETED], silent=True)
    elif mailbox.after_fetch == Mailbox.AfterFetch.MOVE:
        if client.has_capability("MOVE"):
            client.move(uids, mailbox.move_to_folder)
        else:
            client.copy(uids, mailbox.move_to_folder)
            client.add_flags(uids, [SEEN, DELETED], silent=True)
            _imap_expunge(client, uids)
    else:
        client.add_flags(uids, [SEEN], silent=True)


def _imap_expunge(client: IMAPClient, uids: list[int]) -> None:
    if client.has_capability("UIDPLUS"):
        client.expunge(uids)  # UID EXPUNGE: only ours, not what others flagged \Deleted
    else:
        client.expunge()


def _ensure_folder(client: IMAPClient, folder: str) -> None:
    if not client.folder_exists(folder):
        client.create_folder(folder)
        with contextlib.suppress(IMAP4.error):
            client.subscribe_folder(folder)  # so that mail clients show it


# --- POP3 -----------------------------------------------------------------------------------


def _fetch_pop3(mailbox: Mailbox, result: FetchResult) -> None:
    """POP3 has no flags or folders: 'seen' and 'move' leave the mail on the server. The UIDL
    of what is already stored is skipped without downloading it again, so a mailbox that keeps
    its mail still moves on by `batch_size` new messages a run."""
    use_ssl = mailbox.security == Mailbox.Security.SSL
    port = mailbox.port or DEFAULT_PORTS[(Mailbox.Protocol.POP3, use_ssl)]
    timeout = settings.HELPDESK_MAIL_FETCH_TIMEOUT
    if use_ssl:
        pop = poplib.POP3_SSL(mailbox.host, port, timeout=timeout, context=_ssl_context())
    else:
        pop = poplib.POP3(mailbox.host, port, timeout=timeout)
    delete = mailbox.after_fetch == Mailbox.AfterFetch.DELETE
    try:
        if mailbox.security == Mailbox.Security.STARTTLS:
            pop.stls(_ssl_context())
        pop.user(mailbox.username)
        pop.pass_(mailbox.password)
        _response, lines, _octets = pop.uidl()
        listing = []
        for line in lines:
            number, _, uidl = line.decode("ascii", "replace").partition(" ")
            listing.append((int(number), uidl.strip()))
        known = _stored_by_remote_id(mailbox, [uidl for _number, uidl in listing])
        budget = max(mailbox.batch_size, 1)
        # Downloaded and not yet stored: (message number, UIDL, raw bytes), stored and
        # processed as one run of up to FETCH_CHUNK messages and FETCH_CHUNK_BYTES, as IMAP's.
        run: list[tuple[int, str, bytes]] = []
        with notifications.mail_out_batched() as mail_out:

            def run_finish() -> None:
                with tokens_snapshot():
                    _store_and_process_many(
                        mailbox, result, [(uidl, raw) for _number, uidl, raw in run], "pop3"
                    )
                    mail_out.flush()
                if delete:
                    for number, _uidl, _raw in run:
                        pop.dele(number)
                run.clear()

            for number, uidl in listing:
                stored = known.get(uidl)
                if stored is not None:
                    # Stored by an earlier run that broke off before it was processed or
                    # deleted.
                    if stored.status == InboundStatus.RECEIVED:
                        _process(result, stored)
                    if delete:
                        pop.dele(number)
                    continue
                if budget == 0:
                    break
                budget -= 1
                _response, body, _octets = pop.retr(number)
                raw = b"\r\n".join(body) + b"\r\n"
                if run and (
                    len(run) >= FETCH_CHUNK
                    or sum(len(kept) for _n, _u, kept in run) + len(raw) > FETCH_CHUNK_BYTES
                ):
                    run_finish()
                run.append((number, uidl, raw))
            if run:
                run_finish()
        pop.quit()  # deletions happen only now, at QUIT
    except BaseException:
        with contextlib.suppress(*CONNECTION_ERRORS):
            pop.close()
        raise


def _stored_by_remote_id(mailbox: Mailbox, uidls: list[str]) -> dict[str, InboundMessage]:
    known = {}
    for start in range(0, len(uidls), 500):  # a kept mailbox may list thousands
        for message in InboundMessage.objects.filter(
            mailbox=mailbox,
            channel=Mailbox.Protocol.POP3,
            remote_id__in=uidls[start : start + 500],
        ).only("pk", "remote_id", "status"):
            known[message.remote_id] = message
    return known


# --- both -----------------------------------------------------------------------------------


def _store_and_process_many(
    mailbox: Mailbox, result: FetchResult, raws: list[tuple[str, bytes]], channel: str
) -> None:
    """Store a run of downloaded messages (remote id, raw bytes) in one statement, then
    process them together (`inbound_process_many`: one transaction, or each on its own if
    one of them raises)."""
    result.fetched += len(raws)
    received = services.inbound_receive_many(
        raws=[(raw, remote_id) for remote_id, raw in raws], mailbox=mailbox, channel=channel
    )
    result.new += sum(is_new for _message, is_new in received)
    messages = [message for message, _new in received]
    with services.inbound_run(
        [(message, raw) for message, (_remote_id, raw) in zip(messages, raws, strict=True)]
    ):
        messages = services.inbound_process_many(messages)
    for message in messages:
        _counted(result, message)


def _process(result: FetchResult, message: InboundMessage) -> None:
    """Process one stored message. Whatever happens, it stays stored and the batch goes on."""
    try:
        message = services.inbound_process(message=message)
    except Exception:
        # inbound_process logged it and marked the message FAILED, to retry. (If the database
        # itself is down, storing the next message fails and ends the run.)
        message.status = InboundStatus.FAILED
    _counted(result, message)


def _counted(result: FetchResult, message: InboundMessage) -> None:
    if message.status == InboundStatus.FAILED:
        result.failed += 1
    else:
        result.processed += 1


def _ssl_context() -> ssl.SSLContext:
    """Certificates and host names are always verified. MAIL_CA_FILE names extra trusted
    certificates (a private CA, or a self-signed server's own certificate)."""
    context = ssl.create_default_context(cafile=settings.HELPDESK_MAIL_CA_FILE or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _describe(mailbox: Mailbox, error: BaseException) -> str:
    """A readable error for admins, never containing the password."""
    where = f"{mailbox.get_protocol_display()} {mailbox.host}"
    if mailbox.port:
        where += f":{mailbox.port}"
    if isinstance(error, MailboxConfigError):
        text = str(error)
    elif isinstance(error, ssl.SSLCertVerificationError):
        text = f"the server's certificate was refused: {error.verify_message or error}"
    elif isinstance(error, TimeoutError):
        text = "no answer in time (timed out)"
    elif isinstance(error, ConnectionRefusedError):
        text = "connection refused"
    elif isinstance(error, IMAP4.error | poplib.error_proto):
        detail = error.args[0] if error.args else error
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        # imapclient's LoginError carries the repr of the server's bytes: b'[...] Failed.'
        detail = re.sub(r"""^b(['"])(.*)\1$""", r"\2", str(detail))
        text = f"the server said: {detail}"
    else:
        text = f"{type(error).__name__}: {error}"
    return _scrub(f"{where}: {text}", mailbox.password)[:2000]


def _scrub(text: str, password: str) -> str:
    return text.replace(password, "********") if password else text


def _record_failure(mailbox: Mailbox, error: str) -> None:
    """Count one more failure in a row; at `max_failures` (0: never) switch the mailbox off
    and tell the admins, once."""
    now = timezone.now()
    Mailbox.objects.filter(pk=mailbox.pk).update(
        error_count=F("error_count") + 1, last_error=error, last_error_at=now
    )
    mailbox.refresh_from_db(
        fields=["error_count", "last_error", "last_error_at", "is_active", "max_failures"]
    )
    if not (mailbox.max_failures and mailbox.error_count >= mailbox.max_failures):
        return
    # The conditional update makes exactly one worker the one that switches it off.
    if not Mailbox.objects.filter(pk=mailbox.pk, is_active=True).update(is_active=False):
        return
    mailbox.is_active = False
    logger.error("Mailbox %s disabled after %s failed fetches", mailbox.name, mailbox.error_count)
    _alert_admins(
        subject=f"Mailbox {mailbox.name} disabled after {mailbox.error_count} failed fetches",
        body=(
            f"The help desk stopped fetching mail from {mailbox} after "
            f"{mailbox.error_count} failed attempts in a row.\n\n"
            f"Last error ({now:%Y-%m-%d %H:%M %Z}):\n{error}\n\n"
            "Mail sent to this address waits on the mail server. Fix the mailbox's settings "
            "(server, user name, password, folder), then switch it back on; a test run is\n"
            f"    python manage.py mailgate fetch --mailbox {mailbox.name!r}\n"
        ),
    )


def _alert_admins(*, subject: str, body: str) -> None:
    """Mail the agents who administer mailboxes (admin.email) and superusers, and
    settings.ADMINS."""
    recipients = [
        admin if isinstance(admin, str) else admin[1] for admin in getattr(settings, "ADMINS", [])
    ]
    recipients += [
        user.email for user in permissions.users_with("admin.email") if user.email not in recipients
    ]
    if not recipients:
        logger.error("No admin to tell: %s", subject)
        return
    try:
        send_mail(
            f"[{config().helpdesk_name}] {subject}",
            body,
            settings.SERVER_EMAIL,
            recipients,
        )
    except Exception:
        logger.exception("Could not mail the admins: %s", subject)


# --- one fetch per mailbox at a time --------------------------------------------------------
#
# Why not a row lock (SELECT ... FOR UPDATE) on the mailbox: it lasts only as long as a
# transaction, and holding one open for the whole fetch would put every message's storing and
# processing inside it. Nothing would be committed until the end (a crash mid-batch would lose
# the stored raw mail while after_fetch had already deleted it on the server), and on SQLite
# the open write transaction would block every other writer, the web included, for the whole
# network conversation. A lease column claimed with a conditional UPDATE would need a new
# field; the default cache (locmem) is per process, so cache.add locks nothing between workers.
#
# So: a lock the database holds for the *connection*, outside any transaction, that the
# database drops by itself when the connection ends (a killed worker never leaves a stale
# lock behind, no expiry to guess):
#   * PostgreSQL: pg_try_advisory_lock(key). Session level, so the fetch's own transactions
#     commit normally. (Needs a session-pooling pgbouncer, or none: the usual setup.)
#   * MariaDB/MySQL: GET_LOCK(name, 0), also session level; the name carries the database's
#     name because these locks are server-wide.
#   * SQLite: flock() on a file next to the database file (SQLite is one machine by nature).
#     flock locks belong to the open file, so two threads of one process exclude each other.
#     An in-memory database is one process's: a threading lock is enough.
# The lock is an optimisation of correctness already guaranteed elsewhere: inbound_receive is
# idempotent (source_key is unique) and inbound_process claims the message row, so even two
# fetches that did overlap would never make two tickets from one mail.

_memory_locks: dict[str, threading.Lock] = {}
_memory_locks_guard = threading.Lock()


@contextlib.contextmanager
def _fetch_lock(mailbox_pk: int) -> Iterator[bool]:
    name = f"helpdesk.mailgate.fetch.{mailbox_pk}"
    vendor = connection.vendor
    if vendor == "postgresql":
        yield from _postgresql_lock(name)
    elif vendor == "mysql":
        yield from _mysql_lock(name)
    else:
        yield from _file_lock(name)


def _postgresql_lock(name: str) -> Iterator[bool]:
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            _unlock("SELECT pg_advisory_unlock(%s)", key)


def _mysql_lock(name: str) -> Iterator[bool]:
    # Lock names are at most 64 characters and shared by all databases of the server.
    full = f"{connection.settings_dict['NAME']}.{name}"
    if len(full) > 64:
        full = hashlib.sha256(full.encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT GET_LOCK(%s, 0)", [full])
        acquired = cursor.fetchone()[0] == 1
    try:
        yield acquired
    finally:
        if acquired:
            _unlock("SELECT RELEASE_LOCK(%s)", full)


def _unlock(sql: str, key: object) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, [key])
    except DatabaseError:
        # The connection broke: the database dropped the lock with it.
        logger.warning("Could not release the fetch lock %s", key, exc_info=True)


def _file_lock(name: str) -> Iterator[bool]:
    database = str(connection.settings_dict["NAME"])
    if not database or database == ":memory:" or "mode=memory" in database:
        with _memory_locks_guard:
            lock = _memory_locks.setdefault(f"{database}:{name}", threading.Lock())
        acquired = lock.acquire(blocking=False)
        try:
            yield acquired
        finally:
            if acquired:
                lock.release()
        return
    import fcntl  # POSIX only, like the deployment; imported here to keep the module portable

    path = lock_folder(database) / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lock_folder(database: str) -> Path:
    """Where the SQLite fetch lock files of `database` live (next to it)."""
    path = Path(database)
    return path.with_name(f"{path.name}.locks")
