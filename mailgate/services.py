"""Mail in: store every message raw first, then turn it into a ticket, a message or nothing.

Transports (IMAP, POP3, the MTA pipe) only hand over bytes to `inbound_receive`. Processing
runs in one transaction per fetched run of messages (`inbound_process_many`), or per message
when a run meets trouble or a message comes alone: a crash rolls the ticket work back and
leaves the stored messages to be processed again, and a message processed once is never
processed twice.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import NamedTuple

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts import permissions
from accounts.models import User, UserEmail
from accounts.services import user_get_or_create_by_email, users_looked_up
from helpdesk.config import config
from helpdesk.lib import files
from helpdesk.lib.bulk import inserts_deferred, rows_update
from helpdesk.lib.transactions import Retry, retried, retried_whole, rolled_back_whole
from routing.filters import DraftRejected
from routing.services import sender_banned
from tickets import services as ticket_services
from tickets.models import Attachment, BodyFormat, Collaborator, Source, Thread, ThreadEntry, Ticket
from tickets.numbers import numbers_reserved
from tickets.related import related_row

from .models import Audience, InboundMessage, InboundStatus, Mailbox, OutboundMessage
from .notifications import mailbox_row, our_addresses
from .parsing import ParsedMessage, ParseError, html_to_text, parse_message, split_quoted

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    status: str
    outcome: str
    ticket: Ticket | None = None
    entry: ThreadEntry | None = None
    error: str = ""


# --- receiving ------------------------------------------------------------------------------


def inbound_receive(
    *, raw: bytes, mailbox: Mailbox | None, channel: str, remote_id: str = ""
) -> tuple[InboundMessage, bool]:
    """Save the raw bytes (committed at once) and return the row, and whether it is new.

    The same bytes from the same mailbox (or the pipe) always give the same row."""
    digest = files.sha256(raw)
    source_key = f"{mailbox.pk if mailbox else channel}:{digest}"
    existing = InboundMessage.objects.filter(source_key=source_key).first()
    if existing is not None:
        return existing, False
    message = _raw_saved(raw, digest, mailbox, channel, source_key, remote_id)
    try:
        with transaction.atomic():
            message.save()
    except IntegrityError:
        # The same message arrived twice at the same moment (two workers, two pipes).
        return InboundMessage.objects.get(source_key=source_key), False
    return message, True


def _raw_saved(
    raw: bytes, digest: str, mailbox: Mailbox | None, channel: str, source_key: str, remote_id: str
) -> InboundMessage:
    """The row of the raw bytes, not yet saved: with the bytes in it up to
    HELPDESK_MAIL_RAW_IN_ROW_MAX, else with them saved to storage (once per content and
    day). A folder per day: a new folder once a day, not for nearly every message as folders
    by hash would be (on a disk the database also writes to, each new folder waits on the
    file system's journal)."""
    message = InboundMessage(
        mailbox=mailbox,
        channel=channel,
        source_key=source_key,
        remote_id=remote_id[:255],
        content_hash=digest,
        size=len(raw),
    )
    if len(raw) <= settings.HELPDESK_MAIL_RAW_IN_ROW_MAX:
        message.raw_data = raw
        return message
    path = f"mail/{timezone.now():%Y/%m/%d}/{digest}.eml"
    if not default_storage.exists(path):
        path = default_storage.save(path, ContentFile(raw))
    message.raw.name = path
    return message


def inbound_receive_many(
    *, raws: list[tuple[bytes, str]], mailbox: Mailbox, channel: str
) -> list[tuple[InboundMessage, bool]]:
    """`inbound_receive` for several messages (raw bytes, remote id) of one mailbox, in
    order: the stored ones found in one query and the new ones written in one statement."""
    keyed = []
    for raw, remote_id in raws:
        digest = files.sha256(raw)
        keyed.append((f"{mailbox.pk}:{digest}", digest, raw, remote_id))
    stored = InboundMessage.objects.in_bulk([key for key, *_rest in keyed], field_name="source_key")
    new: dict[str, InboundMessage] = {}
    for source_key, digest, raw, remote_id in keyed:
        if source_key not in stored and source_key not in new:
            new[source_key] = _raw_saved(raw, digest, mailbox, channel, source_key, remote_id)
    if new and transaction.get_connection().features.can_return_rows_from_bulk_insert:
        try:
            with transaction.atomic():
                InboundMessage.objects.bulk_create(new.values())
        except IntegrityError:
            new = {}  # another worker stored one of them meanwhile: one at a time below
        else:
            stored.update(new)
    received = []
    for source_key, _digest, raw, remote_id in keyed:
        if source_key in stored:
            received.append((stored[source_key], source_key in new))
            new.pop(source_key, None)  # a copy later in the same batch is not new
        else:
            received.append(
                inbound_receive(raw=raw, mailbox=mailbox, channel=channel, remote_id=remote_id)
            )
    return received


def mailbox_for_recipients(addresses: list[str]) -> Mailbox | None:
    """The active mailbox a piped message was addressed to, if any."""
    wanted = [address.lower() for address in addresses if address]
    return Mailbox.objects.filter(email__in=wanted, is_active=True).order_by("pk").first()


# --- processing -----------------------------------------------------------------------------


@dataclass
class _Run:
    """A run of stored messages processed in turn (`inbound_run`)."""

    # Parsed ahead, by stored message: what parse_message returned or raised.
    parsed: dict[int, ParsedMessage | ParseError]
    # Message-IDs asked for before the run that no entry had; dropped once used.
    unseen: set[str]
    # What the run's mails quote (`_quoted`): asked for before the run, except the run's own
    # Message-IDs (an earlier mail of the run may store one), which are asked when used.
    quoted: _Quoted
    # The tickets those belong to (their keys).
    answered: set[int]
    # Those tickets with their threads, read under a row lock by the run's transaction
    # (`inbound_process_many`); each taken by the first mail that answers it (a second mail
    # to the same ticket reads it again). Empty for a message processed on its own.
    tickets: dict[int, Ticket] = field(default_factory=dict)


_run: ContextVar[_Run | None] = ContextVar("inbound_run", default=None)
RUN_ADDRESSES_MAX = 500


@contextmanager
def inbound_run(received: list[tuple[InboundMessage, bytes]]) -> Iterator[None]:
    """Process a run of stored messages (with their raw bytes, as fetched) inside the block,
    with what every message looks up asked for once for the run: whether an entry already
    has its Message-ID, what the Message-IDs it quotes belong to, and the users of the
    senders and of the people they copy.

    Each message is still processed on its own (`inbound_process`), in its own transaction;
    a Message-ID or an address that an earlier message of the run used is asked for again."""
    parsed: dict[int, ParsedMessage | ParseError] = {}
    for message, raw in received:
        if message.status in (InboundStatus.PROCESSED, InboundStatus.IGNORED):
            continue
        try:
            parsed[message.pk] = parse_message(raw, max_size=settings.HELPDESK_MAIL_MAX_SIZE)
        except ParseError as error:
            parsed[message.pk] = error
    mails = [mail for mail in parsed.values() if isinstance(mail, ParsedMessage)]
    ids = {mail.message_id for mail in mails if mail.message_id}
    unseen = ids - set(
        ThreadEntry.objects.filter(message_id__in=ids).values_list("message_id", flat=True)
    )
    # The senders first, then the people they copy; beyond RUN_ADDRESSES_MAX (a bound on the
    # query's parameters, which SQLite limits) an address is looked up when it is used.
    wanted = [mail for mail in mails if mail.from_email and not (mail.bounce or mail.auto_reply)]
    quoted = _quoted({i for mail in wanted for i in _quoted_ids(mail)} - ids)
    ordered = dict.fromkeys(mail.from_email for mail in wanted)
    for mail in wanted:
        ordered.update(dict.fromkeys(mail.to[:20] + mail.cc[:20]))
    ours = our_addresses()
    addresses = [address for address in ordered if address not in ours][:RUN_ADDRESSES_MAX]
    answered = {sent.ticket_id for sent in quoted.sent.values()} | set(quoted.entries.values())
    token = _run.set(_Run(parsed=parsed, unseen=unseen, quoted=quoted, answered=answered))
    try:
        with users_looked_up(addresses), numbers_reserved(len(wanted)):
            yield
    finally:
        _run.reset(token)


def inbound_process(*, message: InboundMessage) -> InboundMessage:
    """Process a stored message unless it already was. Safe to call twice, or concurrently.

    Unparseable or unusable mail ends as FAILED with its reason; an unexpected error is
    recorded as FAILED too (after the ticket work rolled back) and raised again, so a
    transport can ask for a retry. FAILED messages are processed again when asked.

    A mail refused by the ticket services (a rejecting filter, a draft they find invalid)
    rolls back everything its processing wrote, the sender's new account included; its
    outcome is then recorded in a transaction of its own.

    The stored row is claimed when its outcome is written, by an update that only matches
    it while it is unprocessed: of two processings of one message at the same moment, the
    second waits on the first's row lock there, matches nothing, and rolls its work back.
    (Fetches of one mailbox never overlap, so this costs a lost race only, and saves every
    message a locking read before its work.)

    The same update records the Message-ID of a mail that wrote into a thread in a unique
    column (`thread_message_id`): of two copies of one mail processed at the same moment
    through two mailboxes (or a mailbox and the pipe), where neither saw the other's entry
    yet, the second fails there, rolls its work back and is recorded as a duplicate."""
    if message.status in (InboundStatus.PROCESSED, InboundStatus.IGNORED):
        return message
    try:
        try:
            return _processed(message)
        except _CopyProcessedMeanwhile as clash:
            # Its work rolled back; it is recorded as the duplicate it turned out to be.
            with transaction.atomic():
                _finish(message, _duplicate_of_copy(message.message_id, clash))
                return message
    except _ProcessedMeanwhile:
        return InboundMessage.objects.get(pk=message.pk)
    except Exception as error:
        logger.exception("Processing inbound message %s failed", message.pk)
        InboundMessage.objects.filter(pk=message.pk).exclude(
            status__in=(InboundStatus.PROCESSED, InboundStatus.IGNORED)
        ).update(
            status=InboundStatus.FAILED,
            outcome="error",
            error=f"{type(error).__name__}: {error}"[:2000],
            attempts=F("attempts") + 1,
            processed_at=timezone.now(),
            **_headline(message),
        )
        raise


def inbound_process_many(messages: list[InboundMessage]) -> list[InboundMessage]:
    """`inbound_process` for a run of stored messages (inside `inbound_run`), in order, in
    one transaction: one commit for the run, not one per message.

    Nothing in the run takes a savepoint for its own sake. Its new customers, tickets,
    threads, entries, attachments and collaborators are written together
    (`inserts_deferred`: at its end, or when a mail looks such rows up), as are its audit
    events (`events_deferred`), and its outcomes are recorded in one statement
    (`_finish_many`). If any message's work raises (a clash, a refusal by the ticket
    services, another processing of it first, an error), the whole run rolls back and each
    message is processed again on its own (`inbound_process`), so one mail's trouble costs
    the others only the time. What comes back is the messages as
    recorded; one whose processing raised comes back FAILED (logged and recorded as
    `inbound_process` does).

    A run keeps its row locks until it commits: the tickets its mails write into, the
    department row of auto-assignment and a ticket-number sequence wait for the run (a run of
    a fetch is at most FETCH_CHUNK messages, a fraction of a second)."""
    # A fetch may hand over one stored message twice (the same bytes twice in the folder):
    # it is processed once.
    pending = list(
        {message.pk: message for message in messages if message.status in _UNFINISHED}.values()
    )
    if len(pending) > 1:
        try:
            with (
                transaction.atomic(),
                retried_whole(),
                inserts_deferred(_RUN_DEFERRED, expected=len(pending)),
                ticket_services.events_deferred(),
                _answered_locked(),
            ):
                _finish_many([(message, _process(message)) for message in pending])
        except Exception as error:  # every message is processed again below
            logger.info(
                "A run of %d inbound messages is processed again one by one after %s: %s",
                len(pending),
                type(error).__name__,
                error,
            )
            # The instances hold what the rolled-back work recorded on them.
            recorded = InboundMessage.objects.in_bulk([message.pk for message in messages])
            messages = [recorded.get(message.pk, message) for message in messages]
        else:
            return messages
    done = []
    for message in messages:
        try:
            done.append(inbound_process(message=message))
        except Exception:  # logged and recorded as FAILED by inbound_process
            message.status = InboundStatus.FAILED
            done.append(message)
    return done


@contextmanager
def _answered_locked() -> Iterator[None]:
    """Inside a run's transaction: the tickets its mails answer, read in one query under a
    row lock (in the order of their keys, as every run locks them), so that the first change
    to each need not lock and read it again (`tickets_locked_ahead`)."""
    run = _run.get()
    if run is None or not run.answered:
        yield
        return
    # Not the threads (the nullable side of a join), where the database can tell them apart.
    of = ("self",) if transaction.get_connection().features.has_select_for_update_of else ()
    locked = _with_thread.select_for_update(of=of).filter(pk__in=run.answered).order_by("pk")
    run.tickets = {ticket.pk: ticket for ticket in locked}
    try:
        with ticket_services.tickets_locked_ahead(run.tickets.values()):
            yield
    finally:
        # What the work did to them is rolled back if it raised: mails processed again read
        # their tickets themselves.
        run.tickets = {}


# The rows a run's ticket work writes together, in this order (`inserts_deferred`).
_RUN_DEFERRED = (User, UserEmail, Ticket, Thread, ThreadEntry, Attachment, Collaborator)

# What a stored message may be when it is processed (again).
_UNFINISHED = (InboundStatus.RECEIVED, InboundStatus.FAILED)


def _processed(message: InboundMessage, *, retry: bool = True) -> InboundMessage:
    """Process and record the outcome. The first try takes no savepoints for the rare
    clashes (`retried_whole`): on one, the work rolls back and is done once more with them."""
    try:
        with transaction.atomic():
            with retried_whole() if retry else nullcontext():
                outcome = _process(message)
            _finish(message, outcome)
            return message
    except Retry as clash:
        if not retry:
            raise  # a clash outside retried_whole(): a bug, not a race
        logger.info("Inbound message %s is processed again after a clash: %s", message.pk, clash)
        return _processed(message, retry=False)
    except _Refused as refused:
        with transaction.atomic():
            _finish(message, refused.outcome)
            return message


class _ProcessedMeanwhile(Exception):
    """Another processing of the same message finished first: this one's work rolls back."""


class _CopyProcessedMeanwhile(Exception):
    """Another copy of the same mail (same Message-ID, through another mailbox or the pipe)
    wrote into a thread first: this one's work rolls back, and it is a duplicate."""


# The outcomes of a mail that wrote into a thread: they claim its Message-ID.
_WRITTEN = ("created", "message", "response")


def _duplicate_of_copy(message_id: str, clash: _CopyProcessedMeanwhile) -> Outcome:
    copy = (
        InboundMessage.objects.filter(thread_message_id=message_id)
        .select_related("ticket", "entry")
        .first()
    )
    if copy is None:  # the update broke another rule: that is the error
        raise clash.__cause__ or clash
    return Outcome(InboundStatus.PROCESSED, "duplicate", copy.ticket, copy.entry)


class _Refused(Exception):
    """The ticket services refused a mail: the transaction is rolled back, then `outcome`
    is recorded on the stored `message` (rather than a savepoint around every mail's ticket
    work, which costs two statements each)."""

    def __init__(self, message: InboundMessage, outcome: Outcome) -> None:
        super().__init__(outcome.error)
        self.message = message
        self.outcome = outcome


def _headline(message: InboundMessage) -> dict[str, str]:
    """Sender and subject of a message whose processing failed (the work that read them
    rolled back), so that admins can tell failed messages apart; empty where unreadable."""
    try:
        parsed = parse_message(message.raw_read(), max_size=settings.HELPDESK_MAIL_MAX_SIZE)
    except Exception:  # the message failed already: keep what there is
        return {}
    return {"from_email": parsed.from_email[:254], "subject": parsed.subject[:255]}


def _finish(message: InboundMessage, result: Outcome) -> None:
    """Record the outcome on the stored message, and claim it: raises _ProcessedMeanwhile
    when another processing of it recorded one first, _CopyProcessedMeanwhile when another
    copy of the mail wrote its Message-ID into a thread first (`thread_message_id`)."""
    values = _outcome_values(message, result)
    try:
        claimed = InboundMessage.objects.filter(pk=message.pk, status__in=_UNFINISHED).update(
            attempts=F("attempts") + 1, **values
        )
    except IntegrityError as error:
        if values["thread_message_id"] is None:
            raise
        raise _CopyProcessedMeanwhile from error
    if not claimed:
        raise _ProcessedMeanwhile
    _outcome_set(message, values)


def _finish_many(results: list[tuple[InboundMessage, Outcome]]) -> None:
    """`_finish` for a run's messages, in one statement where the database allows it. A
    message processed meanwhile raises _ProcessedMeanwhile, a Message-ID another copy wrote
    first the IntegrityError: either way the run is processed again one message at a time,
    where `_finish` tells the cases apart."""
    changes = {message.pk: _outcome_values(message, result) for message, result in results}
    claimed = rows_update(
        InboundMessage, changes, where_in=("status", _UNFINISHED), increment="attempts"
    )
    if claimed is None:
        for message, result in results:
            _finish(message, result)
        return
    if claimed != len(changes):
        raise _ProcessedMeanwhile
    for message, _result in results:
        _outcome_set(message, changes[message.pk])


def _outcome_values(message: InboundMessage, result: Outcome) -> dict[str, object]:
    written = result.outcome in _WRITTEN and bool(message.message_id)
    return {
        "status": result.status,
        "outcome": result.outcome,
        "error": result.error,
        "ticket": result.ticket,
        "entry": result.entry,
        "processed_at": timezone.now(),
        "message_id": message.message_id,
        "from_email": message.from_email,
        "subject": message.subject,
        "notes": message.notes,
        "thread_message_id": message.message_id if written else None,
    }


def _outcome_set(message: InboundMessage, values: dict[str, object]) -> None:
    for name, value in values.items():
        setattr(message, name, value)
    message.attempts += 1


def _process(message: InboundMessage) -> Outcome:
    run = _run.get()
    ahead = run.parsed.pop(message.pk, None) if run is not None else None
    try:
        if ahead is None:
            parsed = parse_message(message.raw_read(), max_size=settings.HELPDESK_MAIL_MAX_SIZE)
        elif isinstance(ahead, ParseError):
            raise ahead
        else:
            parsed = ahead
    except ParseError as error:
        return Outcome(InboundStatus.FAILED, "unparseable", error=error.reason)
    message.message_id = parsed.message_id[:255]
    message.from_email = parsed.from_email[:254]
    message.subject = parsed.subject[:255]
    message.notes = list(parsed.errors)

    if parsed.bounce:
        return _bounce(parsed)
    if parsed.auto_reply:
        return Outcome(InboundStatus.IGNORED, "auto_reply")
    if not parsed.from_email:
        return Outcome(InboundStatus.FAILED, "no_sender", error="The message names no sender.")
    if _is_our_address(parsed.from_email):
        return Outcome(InboundStatus.IGNORED, "loop", error="Sent from one of our own addresses.")
    if sender_banned(parsed.from_email) is not None:
        return Outcome(InboundStatus.IGNORED, "banned", error="The sender is banned.")
    if parsed.message_id:
        if (
            run is not None
            and parsed.message_id in run.unseen
            and not _names_another_of_ours(parsed, message)
        ):
            run.unseen.discard(parsed.message_id)  # stored from now on: asked for again
            seen = None
        else:
            seen = (
                ThreadEntry.objects.filter(message_id=parsed.message_id)
                .order_by("pk")
                .values_list("pk", flat=True)
                .first()
            )
        if seen is not None:
            entry = ThreadEntry.objects.select_related("thread__ticket").get(pk=seen)
            return Outcome(InboundStatus.PROCESSED, "duplicate", entry.thread.ticket, entry)

    try:
        sender = user_get_or_create_by_email(email=parsed.from_email, name=parsed.from_name)
    except ValidationError:
        return Outcome(
            InboundStatus.FAILED, "bad_sender", error=f"Unusable sender {parsed.from_email!r}."
        )
    uploads = _uploads(parsed, message)
    try:
        return _thread_or_open(message, parsed, sender, uploads)
    except DraftRejected as rejection:
        # Nothing but this stored raw message and its outcome is kept; the sender hears nothing.
        outcome = Outcome(InboundStatus.IGNORED, "rejected", error=str(rejection))
    except (ValidationError, PermissionDenied) as error:
        outcome = Outcome(InboundStatus.FAILED, "refused", error=_describe(error))
    raise _Refused(message, outcome)


def _thread_or_open(
    message: InboundMessage,
    parsed: ParsedMessage,
    sender: User,
    uploads: list[ticket_services.AttachmentUpload],
) -> Outcome:
    body, body_format = _body(parsed, uploads, message)
    copied = _copied(parsed, sender)
    matched, via_our_message = _match(parsed, sender, message)
    if matched is not None:
        ticket = matched
        if (
            via_our_message
            and permissions.is_agent(sender)
            and permissions.can(sender, "ticket.reply", ticket)
        ):
            # Only what the agent wrote goes to the customer: the quoted alert below it may
            # hold an internal note.
            new_text, _quoted = split_quoted(parsed.body_text or html_to_text(parsed.body_html))
            if not new_text.strip() and not uploads:
                return Outcome(
                    InboundStatus.IGNORED, "empty", ticket, error="The reply holds no new text."
                )
            # The service's own transaction (a savepoint here) undoes its work when it refuses.
            try:
                entry = ticket_services.ticket_reply(
                    ticket=ticket,
                    by=sender,
                    body=new_text,
                    body_format=BodyFormat.TEXT,
                    attachments=uploads,
                    source=Source.EMAIL,
                    copied=copied,
                )
            except ValidationError:
                pass  # an archived ticket: the mail opens a new one below
            else:
                return Outcome(InboundStatus.PROCESSED, "response", ticket, entry)
        elif _may_write_to(sender, ticket, via_headers=via_our_message is not None):
            try:
                with _refusal_retried():
                    entry = ticket_services.ticket_message_add(
                        ticket=ticket,
                        user=sender,
                        body=body,
                        body_format=body_format,
                        attachments=uploads,
                        source=Source.EMAIL,
                        message_id=parsed.message_id,
                        in_reply_to=parsed.in_reply_to,
                        references=" ".join(parsed.references),
                        copied=copied,
                    )
            except ValidationError:
                pass  # archived or deleted: the mail opens a new ticket below (when retried)
            else:
                return Outcome(InboundStatus.PROCESSED, "message", ticket, entry)

    # The mailbox's defaults, from the rows kept per process.
    mailbox = mailbox_row(message.mailbox_id) if message.mailbox_id is not None else None
    draft = ticket_services.TicketDraft(
        subject=parsed.subject or "(no subject)",
        body=body,
        body_format=body_format,
        user=sender,
        name=parsed.from_name,
        help_topic=related_row("help_topic", mailbox.help_topic_id) if mailbox else None,
        department=related_row("department", mailbox.department_id) if mailbox else None,
        priority=related_row("priority", mailbox.priority_id) if mailbox else None,
        source=Source.EMAIL,
        attachments=uploads,
        message_id=parsed.message_id,
        in_reply_to=parsed.in_reply_to,
        references=" ".join(parsed.references),
        headers=_headers(parsed),
        to=list(parsed.to),
        cc=list(parsed.cc),
        reply_to=parsed.reply_to[0] if parsed.reply_to else "",
        copied=copied,
    )
    # A refusal rolls back the whole message (`_Refused`): the service needs no savepoint.
    with rolled_back_whole():
        ticket = ticket_services.ticket_open(draft=draft)
    return Outcome(InboundStatus.PROCESSED, "created", ticket, ticket.opening_entry)


class _Sent(NamedTuple):
    audience: str
    to: list[str]
    ticket_id: int


@dataclass
class _Quoted:
    """What some Message-IDs belong to: the mail we sent (`sent`) and the thread entries
    (`entries`, to their ticket's id), the latest where several have one; `asked` are the
    ids asked for."""

    asked: set[str]
    sent: dict[str, _Sent]
    entries: dict[str, int]


def _quoted_ids(parsed: ParsedMessage) -> list[str]:
    """The Message-IDs a mail quotes, the closest ancestor first: In-Reply-To, then
    References from the newest."""
    return [i for i in [parsed.in_reply_to, *reversed(parsed.references)] if i][:50]


def _quoted(ids: set[str]) -> _Quoted:
    sent: dict[str, _Sent] = {}
    entries: dict[str, int] = {}
    if ids:
        rows = OutboundMessage.objects.filter(message_id__in=ids).values_list(
            "created_at", "pk", "message_id", "audience", "to", "ticket_id"
        )
        for _created, _pk, message_id, audience, to, ticket_id in sorted(rows):
            sent[message_id] = _Sent(audience, to, ticket_id)
        rows = ThreadEntry.objects.filter(message_id__in=ids).values_list(
            "created_at", "pk", "message_id", "thread__ticket_id"
        )
        for _created, _pk, message_id, ticket_id in sorted(rows):
            entries[message_id] = ticket_id
    return _Quoted(asked=ids, sent=sent, entries=entries)


def _match(
    parsed: ParsedMessage, sender: User, message: InboundMessage
) -> tuple[Ticket | None, bool | None]:
    """The ticket a mail answers, and how it was found: True when it quotes a Message-ID we
    sent that only this sender could know (an alert to this agent: proof it answers our
    mail), False when it quotes one the customer sent or knows (their own messages, and
    everything we mailed them), None when only the subject token matched.

    The closest ancestor counts: In-Reply-To first, then References from the newest. In a
    run, what the quoted ids belong to was asked for once (a mail can only quote what
    existed before it was sent, so before the run listed it); a mail quoting one of the
    run's own mails, or to another of our addresses too, asks again."""
    ids = _quoted_ids(parsed)
    if ids:
        run = _run.get()
        if (
            run is not None
            and run.quoted.asked.issuperset(ids)
            and not _names_another_of_ours(parsed, message)
        ):
            quoted, kept = run.quoted, run.tickets
        else:
            quoted, kept = _quoted(set(ids)), {}
        for message_id in ids:
            if message_id in quoted.sent:
                sent = quoted.sent[message_id]
                ticket = kept.pop(sent.ticket_id, None) or _ticket_read(pk=sent.ticket_id)
                if ticket is not None:  # else deleted since
                    return ticket, _sent_to_agent(sent, sender)
            elif message_id in quoted.entries:
                # The customer and everyone copied know these ids: they prove nothing about
                # who writes, so they never make a mail an agent's response.
                ticket_id = quoted.entries[message_id]
                ticket = kept.pop(ticket_id, None) or _ticket_read(pk=ticket_id)
                if ticket is not None:
                    return ticket, False
    token = re.search(settings.HELPDESK_MAIL_TICKET_TOKEN, parsed.subject or "")
    if token:
        ticket = _ticket_read(number=token.group(1))
        if ticket is not None:
            return ticket, None
    return None, None


@contextmanager
def _refusal_retried() -> Iterator[None]:
    """Around a service whose refusal the mail goes on from (a message to an archived ticket
    opens a new one): a savepoint undoes its work, or, on the first try (`retried_whole`),
    none is taken and a refusal has the mail processed again, with one."""
    if not retried():
        yield
        return
    try:
        with rolled_back_whole():
            yield
    except ValidationError as error:
        raise Retry(str(error)) from error


# A mail into a ticket writes an entry to its thread: read with the ticket.
_with_thread = Ticket.objects.select_related("thread")


def _ticket_read(**unique: object) -> Ticket | None:
    """The ticket by a unique field, or None: without `first()`'s ordering, which costs
    more to build than the query takes to run."""
    return next(iter(_with_thread.filter(**unique)), None)


def _sent_to_agent(sent: _Sent, sender: User) -> bool:
    """An alert's Message-ID went to one agent only: quoting it from that agent's address
    answers as the agent. Customer mail proves nothing of the kind: the customer and
    everyone copied know its Message-ID (security.md row 41)."""
    if sent.audience != Audience.STAFF:
        return False
    return sender.email.lower() in {parseaddr(address)[1].lower() for address in sent.to}


def _may_write_to(sender: User, ticket: Ticket, *, via_headers: bool) -> bool:
    """Whether a mail from `sender` goes into `ticket` rather than opening a new one.

    Quoting the thread's headers, anyone who may message the ticket (owner, collaborator,
    sharing organization member) writes into it. With only the subject token, as osTicket
    does, only the owner and collaborators do: a number is easy to guess."""
    if permissions.is_agent(sender) or not permissions.can(sender, "ticket.message", ticket):
        return False
    if via_headers:
        return True
    return (
        ticket.user_id == sender.pk
        or Collaborator.objects.filter(ticket=ticket, user=sender).exists()
    )


def _bounce(parsed: ParsedMessage) -> Outcome:
    """Record a delivery failure on the ticket whose mail bounced; never open a ticket."""
    ids = [i for i in [parsed.bounce_message_id, parsed.in_reply_to, *parsed.references] if i]
    entry = (
        ThreadEntry.objects.filter(message_id__in=ids[:50]).select_related("thread__ticket").first()
        if ids
        else None
    )
    if entry is not None:
        ticket = entry.thread.ticket
    else:
        # Auto-responses and alerts are in the send log only.
        sent = (
            OutboundMessage.objects.filter(message_id__in=ids[:50]).select_related("ticket").first()
            if ids
            else None
        )
        if sent is None:
            return Outcome(InboundStatus.IGNORED, "bounce")
        ticket = sent.ticket
    ticket_services.ticket_delivery_failed_record(
        ticket=ticket, recipients=parsed.bounce_recipients, details=parsed.bounce_details
    )
    return Outcome(InboundStatus.IGNORED, "bounce", ticket, entry)


def _names_another_of_ours(parsed: ParsedMessage, message: InboundMessage) -> bool:
    """Whether the mail went to one of our addresses besides this mailbox's: then another
    mailbox may be storing a copy right now, so the entries are asked again just before its
    ticket work rather than trusting the run's earlier answer. That spares the work of a
    copy in the usual case; one processed at the very same moment is still caught when its
    outcome is recorded (`thread_message_id`)."""
    own = mailbox_row(message.mailbox_id) if message.mailbox_id is not None else None
    ours = our_addresses() - ({own.email} if own is not None else set())
    return any(address in ours for address in [*parsed.to, *parsed.cc])


def _is_our_address(address: str) -> bool:
    return address.lower() in our_addresses()


def _headers(parsed: ParsedMessage) -> dict[str, list[str]]:
    """Every header by lower-case name, for filter rules on "any header" (kept on the entry,
    as osTicket keeps them); the parser already bounds their number and length."""
    headers: dict[str, list[str]] = {}
    for name, value in parsed.raw_headers:
        headers.setdefault(name.lower(), []).append(value)
    return headers


def _copied(parsed: ParsedMessage, sender: User) -> list[str]:
    """Who else the mail was to or copied to, besides us and the sender: the people who
    become collaborators (HELPDESK_MAIL_CC_COLLABORATORS), at most 20."""
    if not settings.HELPDESK_MAIL_CC_COLLABORATORS:
        return []
    ours = our_addresses()
    return [
        address
        for address in dict.fromkeys([*parsed.to, *parsed.cc])
        if address and address != sender.email and address not in ours
    ][:20]


# Stands in for the text of a mail that has none, so the entry says so rather than looking
# lost. HTML, so that it shows as a remark (in italics), not as something the sender wrote.
NO_TEXT_HTML = "<p><em>(no message text)</em></p>"


def _body(
    parsed: ParsedMessage,
    uploads: list[ticket_services.AttachmentUpload],
    message: InboundMessage,
) -> tuple[str, str]:
    """The entry's body: the HTML part (the sanitiser renders it), else the text; a mail
    with neither and no attachment we keep gets the NO_TEXT_HTML remark."""
    if parsed.body_html.strip():
        return parsed.body_html, BodyFormat.HTML
    if parsed.body_text.strip() or uploads:
        return parsed.body_text, BodyFormat.TEXT
    message.notes.append("The mail holds no text; the entry says so.")
    return NO_TEXT_HTML, BodyFormat.HTML


def _uploads(
    parsed: ParsedMessage, message: InboundMessage
) -> list[ticket_services.AttachmentUpload]:
    """The attachments we keep. One too large or a fake image is left out and noted, rather
    than losing the whole mail (the raw message still holds it)."""
    uploads = []
    for attachment in parsed.attachments:
        name = files.clean_filename(attachment.filename)
        content_type = files.guess_content_type(name, attachment.content_type)
        if attachment.size > config().max_attachment_size:
            message.notes.append(f"Attachment {name} left out: larger than the limit.")
            continue
        try:
            files.check_image(name, content_type, attachment.content)
        except ValidationError:
            message.notes.append(f"Attachment {name} left out: not a valid image.")
            continue
        uploads.append(
            ticket_services.AttachmentUpload(
                name=name,
                content=attachment.content,
                content_type=content_type,
                is_inline=attachment.inline,
                content_id=attachment.content_id,
            )
        )
    return uploads


def _describe(error: ValidationError | PermissionDenied) -> str:
    if isinstance(error, ValidationError) and hasattr(error, "message_dict"):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items())
    return str(error)
