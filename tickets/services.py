"""Every change of a ticket, each in one function.

Each service checks permission through `accounts.permissions`, changes rows inside one
transaction holding a row lock on the ticket, records a `ThreadEvent`, and sends
`tickets.signals.ticket_event` after commit. Invalid input raises Django's `ValidationError`
with a dict of field errors; a missing right raises `PermissionDenied`.

`by` is the acting user. Only `ticket_open` accepts `by=None`: a ticket arriving through a
public channel (portal guest, email, osTicket API) acts as its customer.
"""

from __future__ import annotations

import copy
import ipaddress
import secrets
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import permissions
from accounts.models import User
from accounts.services import user_get_or_create_by_email
from helpdesk.config import config
from helpdesk.lib import files, querycache
from helpdesk.lib.bulk import row_insert, rows_apart
from helpdesk.lib.memo import VersionedMemo
from helpdesk.lib.sanitize import render_body
from helpdesk.lib.transactions import clash_retried, retried, service_atomic
from kb.canned import canned_render
from kb.models import CannedResponse
from kb.selectors import canned_response_get
from kb.services import deflections_filed
from routing.assignment import assignment_refusal, auto_assignee, reopen_assignee
from routing.filters import FilterResult, result_summary
from routing.models import CtiItem, Department, HelpTopic, Team
from routing.services import draft_route, sender_banned
from sla import clock as sla_clock
from sla.models import SLAPlan

from . import search
from .models import (
    Attachment,
    BodyFormat,
    Collaborator,
    EntryKind,
    EventAction,
    Priority,
    Referral,
    Source,
    StatusState,
    Thread,
    ThreadEntry,
    ThreadEvent,
    Ticket,
    TicketLock,
    TicketStatus,
)
from .numbers import number_reserved, ticket_number_next
from .related import related_attach
from .signals import ticket_created, ticket_event
from .statuses import (
    TAKES_MESSAGES,
    permissions_to_enter,
    status_after_customer_message,
    status_default,
)

SUBJECT_MAX = 255


@dataclass
class AttachmentUpload:
    name: str
    content: bytes
    content_type: str = ""
    is_inline: bool = False
    content_id: str = ""


@dataclass
class TicketDraft:
    """A ticket before it exists: what any channel (portal, email, API, agent) hands over."""

    subject: str
    body: str
    user: User | None = None  # the customer; else found or created from `email`
    email: str = ""
    name: str = ""
    body_format: str = BodyFormat.TEXT
    help_topic: HelpTopic | None = None
    department: Department | None = None
    priority: Priority | None = None
    source: str = Source.WEB
    attachments: list[AttachmentUpload] = field(default_factory=list)
    collaborators: list[str] = field(default_factory=list)  # email addresses
    # The people the customer copied on their mail: collaborators where usable (`_copied_add`).
    copied: list[str] = field(default_factory=list)
    message_id: str = ""
    in_reply_to: str = ""
    references: str = ""
    headers: dict[str, Any] = field(default_factory=dict)
    # What filters match on besides the above (the mail gateway fills them).
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    reply_to: str = ""
    # Set by an agent opening the ticket, or by filters and the help topic.
    assignee: User | None = None
    team: Team | None = None
    status: TicketStatus | None = None
    cti_item: CtiItem | None = None
    sla: SLAPlan | None = None  # set by a filter, else routing picks the topic's, department's
    # False: no new-ticket auto-response (filters, the topic and the department may also
    # turn it off); `draft_route` leaves the decision here for the notifications.
    auto_respond: bool = True
    # False: no new-ticket alert to agents (osTicket API's `alert`).
    alert: bool = True
    routing: FilterResult | None = None  # what the filters decided (set by draft_route)
    # A new customer's phone and internal notes (kept when the customer exists already,
    # except a phone where they had none), and the address the ticket came from.
    phone: str = ""
    notes: str = ""
    ip_address: str | None = None


# --- helpers --------------------------------------------------------------------------------


def _require(user: User, permission: str, obj: object) -> None:
    if not permissions.can(user, permission, obj):
        raise PermissionDenied(
            _("You may not do this (%(permission)s).") % {"permission": permission}
        )


def _require_any(user: User, perms: Iterable[str], obj: object) -> None:
    perms = tuple(perms)
    if not any(permissions.can(user, permission, obj) for permission in perms):
        raise PermissionDenied(
            _("You may not do this (%(permission)s).") % {"permission": " or ".join(perms)}
        )


# The ticket's foreign keys: name → attribute holding the key.
_TICKET_KEYS = {
    field.name: field.attname for field in Ticket._meta.concrete_fields if field.is_relation
}


# Tickets read under a row lock by the open transaction, by key (`tickets_locked_ahead`).
_locked_ahead: ContextVar[dict[int, Ticket] | None] = ContextVar("locked_ahead", default=None)


@contextmanager
def tickets_locked_ahead(tickets: Iterable[Ticket]) -> Iterator[None]:
    """Inside the caller's transaction, which has just read `tickets` under a row lock (a
    run of mail, for the tickets its mails answer): the first change to each through that
    very instance does not lock and read it again. Once another instance of one of them is
    locked, that one is read again as usual (the kept instance may be behind)."""
    token = _locked_ahead.set({ticket.pk: ticket for ticket in tickets})
    try:
        yield
    finally:
        _locked_ahead.reset(token)


def _lock(ticket: Ticket) -> Ticket:
    """Reload `ticket` under a row lock, so two agents acting at once are serialised.

    The related rows read already (customer, department, thread, …) are kept where the
    reloaded row still points at them, rather than read again by the change."""
    assert transaction.get_connection().in_atomic_block, "lock inside the service's transaction"
    ahead = _locked_ahead.get()
    if ahead is not None and ahead.pop(ticket.pk, None) is ticket:
        related_attach([ticket], ("status",))
        return ticket  # locked and read by this transaction, and not changed since
    cached = dict(ticket._state.fields_cache)
    keys = {name: getattr(ticket, _TICKET_KEYS[name]) for name in cached if name in _TICKET_KEYS}
    ticket.refresh_from_db(from_queryset=Ticket.objects.select_for_update())
    for name, related in cached.items():
        # A ticket's thread never changes; a foreign key's row is kept while it is the same.
        if name == "thread" or (name in keys and getattr(ticket, _TICKET_KEYS[name]) == keys[name]):
            ticket._state.fields_cache.setdefault(name, related)
    related_attach([ticket], ("status",))  # read by nearly every change: from the kept rows
    return ticket


def _clean_body(body: str, *, attachments: Iterable[object] = (), field_name: str = "body") -> str:
    body = (body or "").strip()
    if not body and not list(attachments):
        raise ValidationError({field_name: _("Write a message.")})
    return body


def _outbound_message_id() -> str:
    """A Message-ID nobody can guess: a reply that quotes it proves it answers our mail."""
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip("> ") or "localhost"
    return f"<{secrets.token_hex(16)}@{domain}>"


def _name(obj: object) -> str | None:
    return str(obj) if obj is not None else None


# The events `events_deferred` holds back, each with its announcement.
_events_deferred: ContextVar[list[tuple[ThreadEvent, Callable[[], None]]] | None] = ContextVar(
    "events_deferred", default=None
)


@contextmanager
def events_deferred() -> Iterator[None]:
    """Inside the caller's transaction: the audit events recorded in the block are written
    together, in one statement, when it ends without an error (a run of fetched mail) rather
    than one insert each. Nothing inside the block reads them back from the database; their
    announcements come after the commit, when they are saved. Where the database does not
    return the keys of a bulk insert (MySQL), they are written one by one as usual."""
    connection = transaction.get_connection()
    assert connection.in_atomic_block, "inside the caller's transaction"
    if not connection.features.can_return_rows_from_bulk_insert:
        yield
        return
    pending: list[tuple[ThreadEvent, Callable[[], None]]] = []
    token = _events_deferred.set(pending)
    try:
        yield
    finally:
        _events_deferred.reset(token)
    if pending:  # not after an error: the caller's transaction rolls back
        # An event recorded inside a savepoint that was rolled back since is not written:
        # Django dropped its announcement then, and it is kept only while that stands.
        announced = {func for _savepoints, func, _robust in connection.run_on_commit}
        events = [event for event, announce in pending if announce in announced]
        ThreadEvent.objects.bulk_create(events)
        querycache.rows_created(ThreadEvent, events)


def event_record(
    *, ticket: Ticket, action: str, actor: User | None, data: dict[str, Any] | None = None
) -> ThreadEvent:
    """Write one audit event (or leave it to `events_deferred`) and announce it after
    commit."""
    event = ThreadEvent(
        thread=ticket.thread,
        action=action,
        actor=actor,
        actor_name=actor.get_full_name() if actor is not None else "",
        data=data or {},
        created_at=timezone.now(),
    )

    def announce() -> None:
        ticket_event.send(sender=Ticket, ticket=ticket, event=event)

    pending = _events_deferred.get()
    if pending is None:
        event.save(force_insert=True)
    else:
        pending.append((event, announce))
    transaction.on_commit(announce)
    return event


def attachment_store(*, entry: ThreadEntry, upload: AttachmentUpload) -> Attachment:
    """Store a file under its content hash (once, however often it is attached) and link it.

    A file written for a transaction that then rolls back stays on disk unreferenced until
    the purge job removes files no attachment references."""
    name = files.clean_filename(upload.name)
    size = len(upload.content)
    limit = config().max_attachment_size
    if size > limit:
        raise ValidationError(
            {
                "attachments": _("%(name)s is larger than the limit of %(limit)d MB.")
                % {"name": name, "limit": limit // (1024 * 1024)}
            }
        )
    content_type = files.guess_content_type(name, upload.content_type)
    files.check_image(name, content_type, upload.content)
    digest = files.sha256(upload.content)
    path = f"attachments/{digest[:2]}/{digest[2:4]}/{digest}"
    if not default_storage.exists(path):
        path = default_storage.save(path, ContentFile(upload.content))
    attachment = Attachment(
        entry=entry,
        content_hash=digest,
        name=name,
        content_type=content_type,
        size=size,
        is_inline=upload.is_inline,
        content_id=upload.content_id.strip("<> ")[:255],
    )
    attachment.file.name = path
    row_insert(attachment)
    return attachment


def _entry_add(
    *,
    ticket: Ticket,
    kind: str,
    author: User | None,
    body: str,
    body_format: str,
    source: str,
    attachments: Iterable[AttachmentUpload] = (),
    poster: str = "",
    message_id: str = "",
    in_reply_to: str = "",
    references: str = "",
    headers: dict[str, Any] | None = None,
    indexed: bool = False,
    index_saved: bool = True,
) -> ThreadEntry:
    """Write one entry with its attachments, and add its text to the ticket's search
    document unless that already holds it (`indexed`: the opening message). With
    `index_saved=False` the document is only set on `ticket`: the caller saves it."""
    if body_format not in BodyFormat.values:
        raise ValidationError({"body_format": _("Unknown body format.")})
    entry = ThreadEntry(
        thread=ticket.thread,
        kind=kind,
        author=author,
        poster=(poster or (author.get_full_name() if author else ""))[:150],
        source=source,
        body=body,
        body_format=body_format,
        body_html=render_body(body, body_format),
        message_id=message_id[:255],
        in_reply_to=in_reply_to[:255],
        references=references,
        headers=headers or {},
    )
    row_insert(entry)
    for upload in attachments:
        attachment_store(entry=entry, upload=upload)
    if indexed:
        return entry
    if ticket.search_document:
        document = search.document_append(
            ticket.search_document, search.entry_text(body, body_format)
        )
    else:
        document = search.document_build(ticket, [(body, body_format)])
    if document != ticket.search_document:
        ticket.search_document = document
        if index_saved:
            Ticket.objects.filter(pk=ticket.pk).update(search_document=document)
            querycache.data_changed(tickets=[ticket.pk])
    return entry


def _status_apply(
    *, ticket: Ticket, status: TicketStatus, by: User | None, comment: str = ""
) -> list[str]:
    """Move a locked ticket to `status`, keeping the close/reopen times; records the event."""
    previous = ticket.status
    now = timezone.now()
    fields = ["status", "updated_at"]
    ticket.status = status
    data = {"from": previous.name, "to": status.name, "comment": comment}
    if previous.state == StatusState.OPEN and status.state != StatusState.OPEN:
        ticket.closed_at, ticket.closed_by, ticket.is_overdue = now, by, False
        fields += ["closed_at", "closed_by", "is_overdue"]
        action = EventAction.CLOSED if status.state == StatusState.CLOSED else EventAction.STATUS
    elif previous.state != StatusState.OPEN and status.state == StatusState.OPEN:
        ticket.reopened_at, ticket.closed_at, ticket.closed_by = now, None, None
        fields += ["reopened_at", "closed_at", "closed_by"]
        action = EventAction.REOPENED
        # Back to its agent (or the last to reply) when available, unless the department
        # disables that: then, or when they are away, the ticket is unassigned.
        assignee = reopen_assignee(ticket)
        if assignee != ticket.assignee:
            if ticket.assignee is not None:
                data["released"] = ticket.assignee.get_full_name()
            if assignee is not None:
                data["assigned"] = assignee.get_full_name()
            ticket.assignee = assignee
            fields.append("assignee")
    else:
        action = EventAction.STATUS
    fields += sla_clock.on_status_change(ticket, previous=previous, now=now)
    event_record(ticket=ticket, action=action, actor=by, data=data)
    return fields


def _reopen_if_closed(*, ticket: Ticket, by: User | None) -> list[str]:
    """Reopen a closed ticket. Archived and deleted tickets are never reopened by a side
    effect: restoring them is a deliberate status change."""
    if ticket.status.state != StatusState.CLOSED:
        return []
    return _status_apply(ticket=ticket, status=status_default(StatusState.OPEN), by=by)


def _require_takes_messages(ticket: Ticket) -> None:
    if ticket.status.state not in TAKES_MESSAGES:
        raise ValidationError(
            {
                "ticket": _("This ticket is %(status)s; it takes no more messages.")
                % {"status": ticket.status.name.lower()}
            }
        )


# --- opening --------------------------------------------------------------------------------


def _check_draft(draft: TicketDraft, *, customer_channel: bool) -> None:
    errors: dict[str, str] = {}
    draft.subject = " ".join((draft.subject or "").split())
    if not draft.subject:
        errors["subject"] = _("Give the ticket a subject.")
    elif len(draft.subject) > SUBJECT_MAX:
        errors["subject"] = _("Keep the subject under %d characters.") % SUBJECT_MAX
    if not (draft.body or "").strip() and not draft.attachments:
        errors["body"] = _("Describe what you need.")
    if draft.source not in Source.values:
        errors["source"] = _("Unknown source.")
    topic = draft.help_topic
    if topic is not None and (not topic.is_active or (customer_channel and not topic.is_public)):
        errors["help_topic"] = _("This help topic is not available.")
    if errors:
        raise ValidationError(errors)


def _ticket_insert(ticket: Ticket, *, first: tuple[str, str] | None = None) -> None:
    """Insert with a fresh number; random numbers that clash are drawn again. With the
    (body, body_format) of the `first` message, the search document is written with it.

    Only a random number needs a savepoint, to draw again on a clash. A number reserved as
    free (`numbers_reserved`) is inserted without one where the caller retries the whole work
    on a clash (`retried_whole`); a sequence's number clashes only by a misconfiguration,
    which is an error anyway."""
    reserved = number_reserved() if retried() else None
    if reserved is not None:
        _ticket_number_set(ticket, reserved, first)
        with clash_retried():
            row_insert(ticket)
        return
    for _attempt in range(20):
        number, is_random = ticket_number_next()
        _ticket_number_set(ticket, number, first)
        if not is_random:
            ticket.save(force_insert=True)
            return
        try:
            with transaction.atomic():
                ticket.save(force_insert=True)
            return
        except IntegrityError:
            if not Ticket.objects.filter(number=ticket.number).exists():
                raise
    raise IntegrityError("No free ticket number found; widen TICKET_NUMBER_FORMAT.")


def _ticket_number_set(ticket: Ticket, number: str, first: tuple[str, str] | None) -> None:
    ticket.number = number
    if first is not None:
        ticket.search_document = search.document_build(ticket, [first])


def _check_sender(draft: TicketDraft) -> None:
    address = draft.user.email if draft.user is not None else draft.email
    ban = sender_banned(address)
    if ban is not None:
        raise ValidationError(
            {
                "email": _("%(address)s is banned from opening tickets.")
                % {"address": address.strip().lower()}
            }
        )


def _check_routed(draft: TicketDraft, *, by: User | None, by_agent: bool, asked: dict) -> None:
    """Validate what routing produced, and what the caller asked for beyond a customer's
    reach: an assignee, a team or a status needs an agent with the rights to set them."""
    department = draft.department
    if by_agent:
        _require(by, "ticket.create", department)
        if asked["assignee"] is not None or asked["team"] is not None:
            _require(by, "ticket.assign", department)
        if asked["status"] is not None:
            _require_any(by, permissions_to_enter(asked["status"]), department)
    elif any(value is not None for value in asked.values()):
        raise PermissionDenied(_("Only agents assign tickets or set their status."))
    errors: dict[str, str] = {}
    if draft.status is not None and draft.status.state not in (
        StatusState.OPEN,
        StatusState.CLOSED,
    ):
        errors["status"] = _("A new ticket is open or closed.")
    if draft.cti_item is not None and not draft.cti_item.is_usable:
        errors["cti_item"] = _("This classification is archived.")
    if asked["assignee"] is not None:
        refusal = assignment_refusal(asked["assignee"], department)
        if refusal:
            errors["assignee"] = refusal
    if asked["team"] is not None and not asked["team"].is_active:
        errors["team"] = _("This team is not active.")
    if errors:
        raise ValidationError(errors)


def _routed_assignment(
    draft: TicketDraft, *, asked: dict
) -> tuple[User | None, Team | None, str, str]:
    """The agent and team routing assigns, who decided ("agent" for the caller, "filter X",
    "help topic Y", or "" for nobody), and why a proposed one was dropped (a filter's or
    topic's agent the department does not accept, an archived team)."""
    if asked["assignee"] is not None or asked["team"] is not None:
        return asked["assignee"], asked["team"], "agent", ""
    routing = draft.routing
    if routing is not None and (routing.assignee is not None or routing.team is not None):
        origin = _("filter %s") % routing.set_by.get("assignee", routing.set_by.get("team"))
    elif draft.assignee is not None or draft.team is not None:
        origin = _("help topic %s") % draft.help_topic
    else:
        return None, None, "", ""
    agent, team, dropped = draft.assignee, draft.team, []
    if agent is not None:
        refusal = assignment_refusal(agent, draft.department)
        if refusal:
            agent = None
            dropped.append(refusal)
    if team is not None and not team.is_active:
        dropped.append(_("The team %s is not active.") % team)
        team = None
    return agent, team, origin, " ".join(dropped)


@service_atomic
def ticket_open(*, draft: TicketDraft, by: User | None = None) -> Ticket:
    """Open a ticket from a draft, on any channel.

    `by` is None for public channels and the customer themselves in the portal; an agent
    opening on a customer's behalf needs `ticket.create` in the department it lands in (and
    `ticket.assign` to assign it). Banned senders are refused (`ValidationError` on
    `email`); a filter that rejects the draft raises `routing.filters.DraftRejected` before
    anything is written. Without an agent or team from the caller, a filter or the help
    topic, the department's auto-assignment picks one; the event says why. A filter's
    canned reply is posted as the ticket's first response, in place of the auto-response.
    The returned ticket holds its first message as `opening_entry`."""
    by_agent = by is not None and permissions.is_agent(by)
    _check_draft(draft, customer_channel=not by_agent)
    _check_sender(draft)
    asked = {"assignee": draft.assignee, "team": draft.team, "status": draft.status}
    draft = draft_route(draft)
    owner = draft.user or user_get_or_create_by_email(email=draft.email, name=draft.name)
    _owner_details_fill(owner, draft)
    if by is not None and not by_agent and by != owner:
        raise PermissionDenied(_("Customers open tickets for themselves only."))
    _check_routed(draft, by=by, by_agent=by_agent, asked=asked)
    agent, team, origin, dropped = _routed_assignment(draft, asked=asked)
    status = draft.status or status_default(StatusState.OPEN)
    reason, unassigned = " ".join(p for p in (origin, dropped) if p and p != "agent"), ""
    if agent is None and team is None and status.state == StatusState.OPEN:
        # Before the insert: the insert's foreign-key check share-locks the department row,
        # and two openers each holding that while waiting for auto-assignment's exclusive
        # lock on it would deadlock (InnoDB does).
        agent, auto_reason = auto_assignee(draft.department)
        if agent is None:
            unassigned = " ".join(p for p in (dropped, auto_reason) if p)
        else:
            reason = " ".join(p for p in (auto_reason, dropped) if p)

    canned = _canned_reply_chosen(draft)
    if canned is not None:
        draft.auto_respond = False  # the canned reply stands in for the auto-response

    now = timezone.now()
    item = draft.cti_item
    ticket = Ticket(
        ip_address=_ip_or_none(draft.ip_address),
        subject=draft.subject,
        user=owner,
        organization_id=owner.organization_id,
        department=draft.department,
        help_topic=draft.help_topic,
        status=status,
        priority=draft.priority or _priority_default(),
        source=draft.source,
        assignee=agent,
        team=team,
        cti_item=item,
        cti_type=item.type if item else None,
        cti_category=item.type.category if item else None,
        last_message_at=now,
        created_at=now,
    )
    if status.state == StatusState.CLOSED:
        ticket.closed_at = now
    ticket.sla = draft.sla
    sla_clock.on_open(ticket, now=now)
    body = (draft.body or "").strip()
    _ticket_insert(ticket, first=(body, draft.body_format))
    row_insert(Thread(ticket=ticket))
    entry = _entry_add(
        ticket=ticket,
        kind=EntryKind.MESSAGE,
        author=owner,
        poster=draft.name or owner.get_full_name(),
        body=body,
        body_format=draft.body_format,
        indexed=True,
        source=draft.source,
        attachments=draft.attachments,
        message_id=draft.message_id,
        in_reply_to=draft.in_reply_to,
        references=draft.references,
        headers=draft.headers,
    )
    created: dict[str, Any] = {
        "source": draft.source,
        "department": ticket.department.name,
        "help_topic": _name(ticket.help_topic),
        "priority": ticket.priority.name,
        "auto_respond": draft.auto_respond,
        "sla": _name(ticket.sla),
    }
    if not draft.alert:
        created["alert"] = False
    if status.state != StatusState.OPEN or not status.is_default:
        created["status"] = status.name
    if item is not None:
        created["cti"] = item.full_name
    if draft.routing is not None and draft.routing.matched:
        created.update(result_summary(draft.routing))
    if unassigned:
        created["unassigned"] = unassigned
    created_event = event_record(
        ticket=ticket, action=EventAction.CREATED, actor=by or owner, data=created
    )
    if ticket.assignee_id is not None or ticket.team_id is not None:
        event_record(
            ticket=ticket,
            action=EventAction.ASSIGNED,
            actor=by if origin == "agent" else None,
            data={
                "agent_id": ticket.assignee_id,
                "agent": ticket.assignee.get_full_name() if ticket.assignee else None,
                "team_id": ticket.team_id,
                "team": _name(ticket.team),
                "comment": "",
                "reason": reason,
            },
        )
    copied = {owner.pk}
    for address in draft.collaborators:
        collaborator = user_get_or_create_by_email(email=address)
        if collaborator.pk not in copied:  # two addresses may be one person's
            copied.add(collaborator.pk)
            _collaborator_insert(ticket=ticket, user=collaborator, by=by or owner)
    if canned is not None:
        chosen_by = draft.routing.set_by["canned_response"]  # type: ignore[union-attr]
        _canned_reply_post(ticket=ticket, response=canned, filter_name=chosen_by)
    # The ticket is new: its collaborators are the ones just added.
    _copied_add(ticket=ticket, by=by or owner, emails=draft.copied, collaborators=copied)
    # The articles the customer opened just before did not help: counted with the ticket.
    deflections_filed(ticket=ticket)
    transaction.on_commit(
        lambda: ticket_created.send(sender=Ticket, ticket=ticket, entry=entry, event=created_event)
    )
    ticket.opening_entry = entry
    return ticket


def _ip_or_none(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None


def _owner_details_fill(owner: User, draft: TicketDraft) -> None:
    """Give the customer the phone and notes the draft brings, where they have none."""
    fields = []
    phone = draft.phone.strip()[:32]
    if phone and not owner.phone:
        owner.phone = phone
        fields.append("phone")
    notes = draft.notes.strip()
    if notes and not owner.notes:
        owner.notes = notes
        fields.append("notes")
    if fields and owner.pk is not None:
        owner.save(update_fields=fields)


def _canned_reply_chosen(draft: TicketDraft) -> CannedResponse | None:
    """The canned response a filter answers the new ticket with: None when no filter chose
    one, or when the one chosen has been archived since (the auto-response then goes out
    as usual)."""
    routing = draft.routing
    if routing is None or routing.canned_response_id is None:
        return None
    return canned_response_get(pk=routing.canned_response_id)


def _canned_reply_post(*, ticket: Ticket, response: CannedResponse, filter_name: str) -> None:
    """Post a filter's canned reply on a new ticket, rendered for it; the customer (and the
    collaborators) are emailed after commit as for any response.

    No agent writes it: the entry has no author and the help desk's name as its poster, its
    event no actor and the filter and canned response in its data, so the thread shows it
    as sent by the system. The `agent` variables render empty. An automatic answer is not a
    reply to the customer's question: it neither marks the ticket answered nor counts as
    the first response for the SLA."""
    body = canned_render(response.body, ticket=ticket, agent=None).strip()
    if not body:
        return
    entry = _entry_add(
        ticket=ticket,
        kind=EntryKind.RESPONSE,
        author=None,
        poster=config().helpdesk_name,
        body=body,
        body_format=BodyFormat.MARKDOWN,
        source=Source.WEB,
        message_id=_outbound_message_id(),
    )
    event_record(
        ticket=ticket,
        action=EventAction.RESPONSE,
        actor=None,
        data={"entry": entry.pk, "canned_response": response.title, "filter": filter_name},
    )


def _priority_first() -> Priority | None:
    return Priority.objects.order_by("-is_default", "-urgency").first()


# Read for every new ticket without a priority: kept per process (helpdesk.lib.memo).
_PRIORITY_DEFAULT = VersionedMemo("tickets.priority_default", _priority_first).watch(Priority)


def _priority_default() -> Priority:
    priority = _PRIORITY_DEFAULT.get()
    if priority is None:
        raise ValidationError({"priority": _("No priorities are defined.")})
    return copy.copy(priority)  # the caller's own instance: the kept one is never changed


# --- thread ---------------------------------------------------------------------------------


@service_atomic
def ticket_message_add(
    *,
    ticket: Ticket,
    user: User,
    body: str,
    body_format: str = BodyFormat.TEXT,
    attachments: Iterable[AttachmentUpload] = (),
    source: str = Source.WEB,
    message_id: str = "",
    in_reply_to: str = "",
    references: str = "",
    headers: dict[str, Any] | None = None,
    copied: Iterable[str] = (),
) -> ThreadEntry:
    """A customer (owner, collaborator or organization member) writes to their ticket.

    A closed ticket reopens, one waiting on the customer goes back to open; an archived or
    deleted one refuses the message. The people `copied` on the mail become collaborators
    (`_copied_add`)."""
    attachments = list(attachments)
    body = _clean_body(body, attachments=attachments)
    # Statements about this ticket only: they need not wait for a run's new tickets.
    with rows_apart(ticket):
        _lock(ticket)
        _require(user, "ticket.message", ticket)
        _require_takes_messages(ticket)
        fields: list[str] = []
        next_status = status_after_customer_message(ticket.status)
        if next_status is not None:
            fields = _status_apply(ticket=ticket, status=next_status, by=user)
        document = ticket.search_document
        entry = _entry_add(
            ticket=ticket,
            kind=EntryKind.MESSAGE,
            author=user,
            body=body,
            body_format=body_format,
            source=source,
            attachments=attachments,
            message_id=message_id,
            in_reply_to=in_reply_to,
            references=references,
            headers=headers,
            index_saved=False,
        )
        if ticket.search_document != document:
            fields.append("search_document")
        ticket.last_message_at = entry.created_at
        ticket.is_answered = False
        ticket.save(update_fields=[*fields, "last_message_at", "is_answered", "updated_at"])
        event_record(
            ticket=ticket, action=EventAction.MESSAGE, actor=user, data={"entry": entry.pk}
        )
        _copied_add(ticket=ticket, by=user, emails=copied)
    return entry


@service_atomic
def ticket_reply(
    *,
    ticket: Ticket,
    by: User,
    body: str,
    body_format: str = BodyFormat.MARKDOWN,
    attachments: Iterable[AttachmentUpload] = (),
    status: TicketStatus | None = None,
    source: str = Source.WEB,
    copied: Iterable[str] = (),
) -> ThreadEntry:
    """An agent answers the customer (the entry is emailed by the notifications).

    Claims an unassigned ticket for the replying agent when auto-claim is on, and moves the
    ticket to `status` when given (closing needs `ticket.close`). The people `copied` on the
    agent's mail become collaborators (`_copied_add`)."""
    attachments = list(attachments)
    body = _clean_body(body, attachments=attachments)
    _lock(ticket)
    _require(by, "ticket.reply", ticket)
    _require_takes_messages(ticket)
    if status is not None and status != ticket.status:
        _require_any(by, permissions_to_enter(status), ticket)
    fields = ["last_response_at", "is_answered", "updated_at"]
    entry = _entry_add(
        ticket=ticket,
        kind=EntryKind.RESPONSE,
        author=by,
        body=body,
        body_format=body_format,
        source=source,
        attachments=attachments,
        message_id=_outbound_message_id(),
    )
    event_record(ticket=ticket, action=EventAction.RESPONSE, actor=by, data={"entry": entry.pk})
    _copied_add(ticket=ticket, by=by, emails=copied)
    ticket.last_response_at, ticket.is_answered = entry.created_at, True
    if ticket.first_response_at is None:
        ticket.first_response_at = entry.created_at
        fields.append("first_response_at")
        fields += sla_clock.due_effective(ticket, now=entry.created_at)
    if (
        config().claim_on_reply
        and not ticket.department.disable_claim_on_reply
        and ticket.assignee_id is None
        and assignment_refusal(by, ticket.department) is None
    ):
        ticket.assignee = by
        fields.append("assignee")
        event_record(
            ticket=ticket, action=EventAction.CLAIMED, actor=by, data={"agent": by.get_full_name()}
        )
    if status is not None and status != ticket.status:
        fields += _status_apply(ticket=ticket, status=status, by=by)
    ticket.save(update_fields=sorted(set(fields)))
    return entry


@service_atomic
def ticket_note_add(
    *,
    ticket: Ticket,
    by: User,
    body: str,
    body_format: str = BodyFormat.MARKDOWN,
    attachments: Iterable[AttachmentUpload] = (),
    source: str = Source.WEB,
) -> ThreadEntry:
    """An internal note: any agent who can see the ticket; never shown to customers."""
    attachments = list(attachments)
    body = _clean_body(body, attachments=attachments)
    _lock(ticket)
    if not permissions.is_agent(by) or not permissions.can(by, "ticket.view", ticket):
        raise PermissionDenied(_("Only agents who can see the ticket add notes."))
    entry = _entry_add(
        ticket=ticket,
        kind=EntryKind.NOTE,
        author=by,
        body=body,
        body_format=body_format,
        source=source,
        attachments=attachments,
    )
    ticket.save(update_fields=["updated_at"])
    event_record(ticket=ticket, action=EventAction.NOTE, actor=by, data={"entry": entry.pk})
    return entry


# --- assignment -----------------------------------------------------------------------------


@service_atomic
def ticket_assign(
    *,
    ticket: Ticket,
    by: User,
    agent: User | None = None,
    team: Team | None = None,
    comment: str = "",
) -> Ticket:
    """Assign to an agent, a team, or both. The agent must be an active agent the ticket's
    department accepts (`routing.assignment`: members, primary members or anyone); the team
    must be active."""
    if agent is None and team is None:
        raise ValidationError({"agent": _("Choose an agent or a team.")})
    _lock(ticket)
    _require(by, "ticket.assign", ticket)
    fields = ["updated_at"]
    if agent is not None:
        refusal = assignment_refusal(agent, ticket.department)
        if refusal:
            raise ValidationError({"agent": refusal})
        ticket.assignee = agent
        fields.append("assignee")
    if team is not None:
        if not team.is_active:
            raise ValidationError({"team": _("This team is not active.")})
        ticket.team = team
        fields.append("team")
    ticket.save(update_fields=fields)
    event_record(
        ticket=ticket,
        action=EventAction.ASSIGNED,
        actor=by,
        data={
            "agent_id": agent.pk if agent else None,
            "agent": agent.get_full_name() if agent else None,
            "team_id": team.pk if team else None,
            "team": _name(team),
            "comment": comment,
        },
    )
    return ticket


@service_atomic
def ticket_claim(*, ticket: Ticket, by: User) -> Ticket:
    """An agent takes an unassigned ticket for themselves."""
    _lock(ticket)
    _require_any(by, ("ticket.assign", "ticket.reply"), ticket)
    if ticket.assignee_id is not None:
        raise ValidationError(
            {"agent": _("Already assigned to %s.") % ticket.assignee.get_full_name()}
        )
    refusal = assignment_refusal(by, ticket.department)
    if refusal:
        raise ValidationError({"agent": refusal})
    ticket.assignee = by
    ticket.save(update_fields=["assignee", "updated_at"])
    event_record(
        ticket=ticket, action=EventAction.CLAIMED, actor=by, data={"agent": by.get_full_name()}
    )
    return ticket


@service_atomic
def ticket_release(
    *, ticket: Ticket, by: User, agent: bool = True, team: bool = False, comment: str = ""
) -> Ticket:
    """Unassign the agent (and/or the team). Assignees release their own tickets; releasing
    someone else's needs `ticket.release`."""
    _lock(ticket)
    releases_self = agent and not team and ticket.assignee_id == by.pk
    if not (releases_self and permissions.can(by, "ticket.view", ticket)):
        _require(by, "ticket.release", ticket)
    released: dict[str, Any] = {"comment": comment}
    fields = ["updated_at"]
    if agent and ticket.assignee_id is not None:
        released["agent"] = ticket.assignee.get_full_name()
        ticket.assignee = None
        fields.append("assignee")
    if team and ticket.team_id is not None:
        released["team"] = ticket.team.name
        ticket.team = None
        fields.append("team")
    if len(fields) == 1:
        raise ValidationError({"agent": _("The ticket is not assigned.")})
    ticket.save(update_fields=fields)
    event_record(ticket=ticket, action=EventAction.RELEASED, actor=by, data=released)
    return ticket


@service_atomic
def ticket_transfer(
    *, ticket: Ticket, by: User, department: Department, comment: str = ""
) -> Ticket:
    """Move a ticket to another department. A closed ticket reopens (an archived one stays
    archived, a deleted one cannot move); the assigned agent is released when the new
    department does not accept them (see `routing.assignment`). The team and the CTI
    classification stay."""
    _lock(ticket)
    _require(by, "ticket.transfer", ticket)
    if ticket.status.state == StatusState.DELETED:
        raise ValidationError({"ticket": _("A deleted ticket cannot be transferred.")})
    if not department.is_active:
        raise ValidationError({"department": _("This department is archived.")})
    if department.pk == ticket.department_id:
        raise ValidationError({"department": _("The ticket is already in this department.")})
    previous = ticket.department
    fields = ["department", "updated_at", *_reopen_if_closed(ticket=ticket, by=by)]
    ticket.department = department
    data: dict[str, Any] = {
        "from_id": previous.pk,
        "from": previous.name,
        "to_id": department.pk,
        "to": department.name,
        "comment": comment,
    }
    if (
        ticket.assignee_id is not None
        and assignment_refusal(ticket.assignee, department) is not None
    ):
        data["released"] = ticket.assignee.get_full_name()
        ticket.assignee = None
        fields.append("assignee")
    plan = sla_clock.plan_follow(ticket, department.sla)
    if plan is not None:
        data["sla"] = plan.name
        fields += _sla_change(ticket=ticket, plan=plan, by=by, reason="transfer")
    elif ticket.closed_at is None:
        fields += sla_clock.due_compute(ticket, now=timezone.now())
    ticket.save(update_fields=sorted(set(fields)))
    event_record(ticket=ticket, action=EventAction.TRANSFERRED, actor=by, data=data)
    return ticket


@service_atomic
def ticket_refer(
    *,
    ticket: Ticket,
    by: User,
    agent: User | None = None,
    team: Team | None = None,
    department: Department | None = None,
) -> Referral:
    """Show the ticket to one agent, team or department besides its own department."""
    targets = [target for target in (agent, team, department) if target is not None]
    if len(targets) != 1:
        raise ValidationError({"target": _("Refer to one agent, team or department.")})
    _lock(ticket)
    _require(by, "ticket.refer", ticket)
    if agent is not None and not permissions.is_agent(agent):
        raise ValidationError({"agent": _("Tickets are referred to agents only.")})
    referral, created = Referral.objects.get_or_create(
        ticket=ticket, agent=agent, team=team, department=department
    )
    if not created:
        raise ValidationError({"target": _("The ticket is already referred there.")})
    ticket.save(update_fields=["updated_at"])
    event_record(
        ticket=ticket,
        action=EventAction.REFERRED,
        actor=by,
        data={"to": str(targets[0]), "kind": type(targets[0]).__name__.lower()},
    )
    return referral


# --- fields ---------------------------------------------------------------------------------


@service_atomic
def ticket_status_set(
    *, ticket: Ticket, by: User, status: TicketStatus, comment: str = ""
) -> Ticket:
    """Change the status: closing needs `ticket.close`, deleting `ticket.delete`, moving
    between open statuses `ticket.reply` or `ticket.edit`. Customers may only close their own
    ticket, when the help desk allows it."""
    _lock(ticket)
    if status == ticket.status:
        raise ValidationError({"status": _("The ticket already has this status.")})
    if permissions.is_agent(by):
        _require(by, "ticket.view", ticket)
        _require_any(by, permissions_to_enter(status), ticket)
    elif status.state != StatusState.CLOSED or not permissions.can(by, "ticket.close", ticket):
        raise PermissionDenied(_("You may not change this ticket's status."))
    fields = _status_apply(ticket=ticket, status=status, by=by, comment=comment)
    ticket.save(update_fields=sorted(set(fields)))
    return ticket


@service_atomic
def ticket_priority_set(*, ticket: Ticket, by: User, priority: Priority) -> Ticket:
    _lock(ticket)
    _require(by, "ticket.edit", ticket)
    if priority.pk == ticket.priority_id:
        raise ValidationError({"priority": _("The ticket already has this priority.")})
    previous = ticket.priority
    ticket.priority = priority
    fields = ["priority", "updated_at"]
    if ticket.closed_at is None:  # targets may differ per priority
        fields += sla_clock.due_compute(ticket, now=timezone.now())
    ticket.save(update_fields=fields)
    event_record(
        ticket=ticket,
        action=EventAction.PRIORITY,
        actor=by,
        data={"from": previous.name, "to": priority.name},
    )
    return ticket


@service_atomic
def ticket_subject_edit(*, ticket: Ticket, by: User, subject: str) -> Ticket:
    subject = " ".join((subject or "").split())
    if not subject:
        raise ValidationError({"subject": _("Give the ticket a subject.")})
    if len(subject) > SUBJECT_MAX:
        raise ValidationError({"subject": _("Keep the subject under %d characters.") % SUBJECT_MAX})
    _lock(ticket)
    _require(by, "ticket.edit", ticket)
    previous = ticket.subject
    if previous == subject:
        return ticket
    ticket.subject = subject
    ticket.search_document = search.document_append(ticket.search_document, subject)
    ticket.save(update_fields=["subject", "search_document", "updated_at"])
    event_record(
        ticket=ticket,
        action=EventAction.EDITED,
        actor=by,
        data={"field": "subject", "from": previous, "to": subject},
    )
    return ticket


@service_atomic
def ticket_help_topic_set(*, ticket: Ticket, by: User, help_topic: HelpTopic | None) -> Ticket:
    _lock(ticket)
    _require(by, "ticket.edit", ticket)
    if help_topic is not None and not help_topic.is_active:
        raise ValidationError({"help_topic": _("This help topic is not active.")})
    previous = ticket.help_topic
    if previous == help_topic:
        return ticket
    ticket.help_topic = help_topic
    fields = ["help_topic", "updated_at"]
    plan = sla_clock.plan_follow(ticket, help_topic.sla if help_topic is not None else None)
    if plan is not None:
        fields += _sla_change(ticket=ticket, plan=plan, by=by, reason="help_topic")
    ticket.save(update_fields=fields)
    event_record(
        ticket=ticket,
        action=EventAction.EDITED,
        actor=by,
        data={"field": "help_topic", "from": _name(previous), "to": _name(help_topic)},
    )
    return ticket


@service_atomic
def ticket_cti_set(*, ticket: Ticket, by: User, item: CtiItem | None) -> Ticket:
    """Classify (or reroute, or unclassify with None) a ticket under a CTI item; its type
    and category come with it. Archived levels are refused."""
    _lock(ticket)
    _require(by, "ticket.edit", ticket)
    if item is not None and not item.is_usable:
        raise ValidationError({"cti_item": _("This classification is archived.")})
    if item is not None and item.pk == ticket.cti_item_id:
        raise ValidationError({"cti_item": _("The ticket is already classified so.")})
    if item is None and ticket.cti_item_id is None:
        raise ValidationError({"cti_item": _("The ticket is not classified.")})
    previous = ticket.cti_item
    ticket.cti_item = item
    ticket.cti_type = item.type if item else None
    ticket.cti_category = item.type.category if item else None
    ticket.save(update_fields=["cti_category", "cti_type", "cti_item", "updated_at"])
    old = previous.full_name if previous else _("Unclassified")
    new = item.full_name if item else _("Unclassified")
    event_record(
        ticket=ticket,
        action=EventAction.CTI,
        actor=by,
        data={
            "from_id": previous.pk if previous else None,
            "from": previous.full_name if previous else None,
            "to_id": item.pk if item else None,
            "to": item.full_name if item else None,
            "text": f"{old} → {new}",
        },
    )
    return ticket


def _sla_change(*, ticket: Ticket, plan: SLAPlan | None, by: User | None, reason: str) -> list[str]:
    """Put a locked ticket under `plan`, due dates computed again; records the event."""
    previous = ticket.sla
    fields = sla_clock.plan_set(ticket, plan, now=timezone.now())
    event_record(
        ticket=ticket,
        action=EventAction.SLA,
        actor=by,
        data={
            "from": _name(previous),
            "to": _name(plan),
            "reason": reason,
            "due_at": ticket.due_at.isoformat() if ticket.due_at else None,
        },
    )
    return fields


@service_atomic
def ticket_sla_set(*, ticket: Ticket, by: User, sla: SLAPlan | None) -> Ticket:
    """Put the ticket under another SLA plan (or none); its due dates are computed again
    from when it opened (or reopened), its paused time kept. Needs `ticket.edit`."""
    _lock(ticket)
    _require(by, "ticket.edit", ticket)
    if sla is not None and not sla.is_active:
        raise ValidationError({"sla": _("This SLA plan is not active.")})
    if sla == ticket.sla:
        raise ValidationError({"sla": _("The ticket already has this SLA plan.")})
    fields = ["updated_at", *_sla_change(ticket=ticket, plan=sla, by=by, reason="")]
    ticket.save(update_fields=sorted(set(fields)))
    return ticket


@service_atomic
def ticket_due_override_set(
    *, ticket: Ticket, by: User, due_at: datetime | None, comment: str = ""
) -> Ticket:
    """Set the due date by hand (None: back to the SLA's). The computed due dates are kept
    apart and apply again when the override is removed. Needs `ticket.due_override`; the
    date must lie ahead, and the ticket must be open."""
    _lock(ticket)
    _require(by, "ticket.due_override", ticket)
    now = timezone.now()
    if ticket.closed_at is not None:
        raise ValidationError({"due_at": _("Only open tickets have a due date.")})
    if due_at is not None and timezone.is_naive(due_at):
        raise ValidationError({"due_at": _("Give the due date with its time zone.")})
    if due_at is not None and due_at <= now:
        raise ValidationError({"due_at": _("The due date must lie in the future.")})
    if due_at == ticket.due_override_at:
        raise ValidationError({"due_at": _("The ticket already has this due date.")})
    previous = ticket.due_at
    ticket.due_override_at = due_at
    fields = ["due_override_at", "updated_at", *sla_clock.due_effective(ticket, now=now)]
    ticket.save(update_fields=fields)
    event_record(
        ticket=ticket,
        action=EventAction.DUE_OVERRIDE,
        actor=by,
        data={
            "from": previous.isoformat() if previous else None,
            "to": ticket.due_at.isoformat() if ticket.due_at else None,
            "override": due_at is not None,
            "comment": comment,
        },
    )
    return ticket


@service_atomic
def ticket_delivery_failed_record(
    *, ticket: Ticket, recipients: list[str], details: list[dict[str, str]]
) -> ThreadEvent:
    """Note on the ticket that our mail to `recipients` bounced. The mail server's report is
    the actor, so there is no user and no permission to check."""
    _lock(ticket)
    return event_record(
        ticket=ticket,
        action=EventAction.DELIVERY_FAILED,
        actor=None,
        data={"recipients": recipients, "details": details[:20]},
    )


# --- edit locks -----------------------------------------------------------------------------


@service_atomic
def ticket_lock_acquire(*, ticket: Ticket, by: User, minutes: int | None = None) -> TicketLock:
    """Take (or renew) the ticket's edit lock for `minutes` (TICKET_LOCK_MINUTES). Refused
    with a `ValidationError` naming the holder while another agent's lock is unexpired."""
    _lock(ticket)
    _require_any(by, ("ticket.reply", "ticket.edit"), ticket)
    now = timezone.now()
    minutes = settings.HELPDESK_TICKET_LOCK_MINUTES if minutes is None else minutes
    expires_at = now + timedelta(minutes=max(1, minutes))
    lock = TicketLock.objects.filter(ticket=ticket).select_related("agent").first()
    if lock is not None and lock.agent_id != by.pk and lock.expires_at > now:
        raise ValidationError(
            {
                "ticket": _("%(agent)s is working on this ticket until %(time)s.")
                % {
                    "agent": lock.agent.get_full_name(),
                    "time": timezone.localtime(lock.expires_at).strftime("%H:%M"),
                }
            }
        )
    if lock is None:
        return TicketLock.objects.create(ticket=ticket, agent=by, expires_at=expires_at)
    if lock.agent_id != by.pk:
        lock.agent, lock.created_at = by, now
    lock.expires_at = expires_at
    lock.save(update_fields=["agent", "expires_at", "created_at"])
    return lock


@service_atomic
def ticket_lock_release(*, ticket: Ticket, by: User) -> bool:
    """Give up `by`'s lock on the ticket; False when they held none."""
    deleted, _rows = TicketLock.objects.filter(ticket=ticket, agent=by).delete()
    return bool(deleted)


def ticket_locks_expired_clear(*, now: datetime | None = None) -> int:
    """Delete expired edit locks (the scheduled job); one statement, safe on any number of
    workers."""
    deleted, _rows = TicketLock.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted


# --- collaborators --------------------------------------------------------------------------


def _collaborator_insert(*, ticket: Ticket, user: User, by: User) -> Collaborator:
    """Add `user`, not yet a collaborator, to `ticket`, which the caller has locked (or has
    just created): no one else adds them meanwhile."""
    collaborator = Collaborator(ticket=ticket, user=user, added_by=by)
    row_insert(collaborator)
    event_record(
        ticket=ticket,
        action=EventAction.COLLAB_ADDED,
        actor=by,
        data={"user_id": user.pk, "user": str(user)},
    )
    return collaborator


@service_atomic
def ticket_collaborator_add(
    *, ticket: Ticket, by: User, user: User | None = None, email: str = "", name: str = ""
) -> Collaborator:
    """Copy a user (found or created by address) on the ticket."""
    _lock(ticket)
    _require(by, "ticket.edit", ticket)
    user = user or user_get_or_create_by_email(email=email, name=name)
    if user.pk == ticket.user_id:
        raise ValidationError({"email": _("The customer already follows the ticket.")})
    if Collaborator.objects.filter(ticket=ticket, user=user).exists():
        raise ValidationError({"email": _("%s is already a collaborator.") % user.email})
    collaborator = _collaborator_insert(ticket=ticket, user=user, by=by)
    ticket.save(update_fields=["updated_at"])
    return collaborator


def _copied_add(
    *, ticket: Ticket, by: User, emails: Iterable[str], collaborators: set[int] | None = None
) -> list[Collaborator]:
    """Make the people `by` copied on their mail into `ticket` its collaborators, inside the
    service that locked the ticket and posted `by`'s message or response (so `by` may write
    into it). Unusable or banned addresses, the customer's own and agents' (alerts reach
    them) are skipped; returns the new ones. `collaborators`, when the caller knows them
    all (a ticket it has just opened), are the users who already are: none is looked for."""
    added: list[Collaborator] = []
    for address in dict.fromkeys(emails):
        if sender_banned(address) is not None:
            continue
        try:
            user = user_get_or_create_by_email(email=address)
        except ValidationError:
            continue
        if user.pk == ticket.user_id or permissions.is_agent(user):
            continue
        if collaborators is not None:
            if user.pk in collaborators:
                continue
            collaborators.add(user.pk)
        elif Collaborator.objects.filter(ticket=ticket, user=user).exists():
            continue
        added.append(_collaborator_insert(ticket=ticket, user=user, by=by))
    return added


@service_atomic
def ticket_collaborator_remove(*, ticket: Ticket, by: User, user: User) -> None:
    _lock(ticket)
    _require(by, "ticket.edit", ticket)
    deleted, _rows = Collaborator.objects.filter(ticket=ticket, user=user).delete()
    if not deleted:
        raise ValidationError({"email": _("%s is not a collaborator.") % user.email})
    ticket.save(update_fields=["updated_at"])
    event_record(
        ticket=ticket,
        action=EventAction.COLLAB_REMOVED,
        actor=by,
        data={"user_id": user.pk, "user": str(user)},
    )
