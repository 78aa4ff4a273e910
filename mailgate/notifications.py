"""Mail out: who is told what about a ticket, in which words, and the sending itself.

Receivers of `tickets.signals.ticket_created` and `ticket_event` (both sent after the ticket's
transaction committed) decide the recipients, render the email from its template on plain
data, and write one `OutboundMessage` row per email in one transaction; the Celery task
`outbound_send_task` sends each row after that commit, once, with retries and backoff.

Rules that hold for every email:

* Templates are admin-editable `EmailTemplate` rows (shipped defaults otherwise) rendered by a
  sandboxed Django template engine on plain dicts of strings: no model instance, no `{% load
  %}`, `{% include %}`, `{% debug %}` or `{% autoescape off %}`, no `|safe`. In the HTML part
  every value is escaped and thread bodies are the sanitiser's output (`render_body`).
* Customer mail never carries an internal note, an agent's address or an alert's Message-ID.
* Nobody is told about what they did themselves; inactive users, agents on vacation, agents
  who may not see the ticket and our own mailbox addresses get nothing.
* Every email carries a Message-ID we store (an agent response uses its entry's), the thread's
  In-Reply-To/References and the ticket token `[#number]` in the subject; automatic ones say
  so (`Auto-Submitted`), and auto-responses are rate-limited per address.

This module is imported by `MailgateConfig.ready()`, which connects the receivers and
registers the Celery tasks (Celery's autodiscovery imports only `tasks.py`).
"""

from __future__ import annotations

import dataclasses
import html as html_lib
import logging
import re
import secrets
import zoneinfo
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.utils import parseaddr
from functools import lru_cache, partial
from smtplib import SMTPException
from types import MappingProxyType
from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import Count, F, Q
from django.dispatch import receiver
from django.template import (
    Context,
    Engine,
    Template,
    TemplateSyntaxError,
    defaultfilters,
    defaulttags,
)
from django.template.library import Library
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import escape, strip_tags
from django.utils.safestring import SafeString, mark_safe

from accounts import permissions
from accounts.models import Agent, User
from accounts.services import agent_scope_attach, agent_scopes_preload
from helpdesk.config import config
from helpdesk.lib.memo import VersionedMemo
from helpdesk.lib.sanitize import render_body
from tickets.models import (
    Attachment,
    Collaborator,
    EntryKind,
    EventAction,
    ThreadEntry,
    ThreadEvent,
    Ticket,
)
from tickets.related import related_attach
from tickets.signals import ticket_created, ticket_event

from .models import (
    Audience,
    EmailTemplate,
    InboundMessage,
    Mailbox,
    OutboundMessage,
    OutboundStatus,
    TemplateCode,
)
from .parsing import DEFAULT_REPLY_SEPARATOR
from .templates_default import DEFAULT_TEMPLATES

logger = logging.getLogger(__name__)

AUTO_RESPONSES = frozenset({TemplateCode.TICKET_AUTORESP, TemplateCode.MESSAGE_AUTORESP})
CUSTOMER_TEMPLATES = AUTO_RESPONSES | {TemplateCode.TICKET_REPLY, TemplateCode.STATUS_NOTICE}
SUBJECT_MAX = 255
REFERENCES_MAX = 20  # the first Message-ID of the thread and the most recent ones
SEND_MAX_RETRIES = 5

# Settings (helpdesk/settings/base.py, "Mail out"), with the defaults used when one is unset.
_DEFAULTS: dict[str, Any] = {
    "HELPDESK_MAIL_OUT": True,
    "HELPDESK_AUTORESPONSE": True,
    "HELPDESK_AUTORESPONSE_NEW_TICKET": True,
    "HELPDESK_AUTORESPONSE_NEW_MESSAGE": False,
    "HELPDESK_AUTORESPONSE_LIMIT": 5,
    "HELPDESK_NOTICE_CLOSED": True,
    "HELPDESK_NOTICE_REOPENED": False,
    "HELPDESK_ALERT_NEW_TICKET": True,
    "HELPDESK_ALERT_NEW_MESSAGE": True,
    "HELPDESK_ALERT_NOTE": False,
    "HELPDESK_ALERT_ASSIGNED": True,
    "HELPDESK_ALERT_ASSIGNED_TEAM": True,
    "HELPDESK_ALERT_TRANSFER": False,
    "HELPDESK_ALERT_OVERDUE": True,
    "HELPDESK_ALERT_DEPT_MANAGER": True,
    "HELPDESK_ALERT_DEPT_MEMBERS": True,
}


def _setting(name: str) -> Any:
    return getattr(settings, name, _DEFAULTS[name])


# --- templates ------------------------------------------------------------------------------

# Tags an admin's template may not use: loading libraries or other templates, dumping the
# context, turning escaping off, and tags that need a request.
_BLOCKED_TAGS = frozenset({"autoescape", "csrf_token", "debug", "load", "querystring", "url"})
_BLOCKED_FILTERS = frozenset({"safe", "safeseq"})


def _mail_library() -> Library:
    library = Library()
    library.tags = {
        name: tag for name, tag in defaulttags.register.tags.items() if name not in _BLOCKED_TAGS
    }
    library.filters = {
        name: func
        for name, func in defaultfilters.register.filters.items()
        if name not in _BLOCKED_FILTERS
    }
    return library


class _MailEngine(Engine):
    """Django's engine with only the safe built-ins (no loader tags, no libraries)."""

    def get_template_builtins(self, builtins: list[str]) -> list[Library]:
        return [_mail_library()]


_HTML_ENGINE = _MailEngine(autoescape=True, loaders=[], string_if_invalid="")
_TEXT_ENGINE = _MailEngine(autoescape=False, loaders=[], string_if_invalid="")


def template_errors(*, subject: str, body_text: str, body_html: str) -> dict[str, str]:
    """Field errors of template source that does not compile, or fails on sample data."""
    errors: dict[str, str] = {}
    sample = _sample_context()
    for field, source, engine in (
        ("subject", subject, _TEXT_ENGINE),
        ("body_text", body_text, _TEXT_ENGINE),
        ("body_html", body_html, _HTML_ENGINE),
    ):
        try:
            template = engine.from_string(source or "")
            html = engine.autoescape
            template.render(Context(_freeze(sample, html=html), autoescape=html))
        except TemplateSyntaxError as error:
            errors[field] = str(error)
        except Exception as error:  # a filter that fails on real data fails here too
            errors[field] = f"{type(error).__name__}: {error}"
    return errors


def _template_rows() -> dict[str, dict[str, Any]]:
    return {
        row["code"]: row
        for row in EmailTemplate.objects.values(
            "code", "subject", "body_text", "body_html", "is_active"
        )
    }


# Every email reads its template: the rows are kept per process (helpdesk.lib.memo).
_TEMPLATES = VersionedMemo("mailgate.email_templates", _template_rows)


def _template_source(code: str) -> dict[str, str] | None:
    """The admin's version of a template, the shipped one without a row, None if turned off."""
    row = _TEMPLATES.get().get(code)
    if row is None:
        return DEFAULT_TEMPLATES[code]
    if not row["is_active"]:
        return None
    return {"subject": row["subject"], "body_text": row["body_text"], "body_html": row["body_html"]}


@lru_cache(maxsize=256)
def _compiled(source: str, *, html: bool) -> Template:
    """Compiled once per source text: a changed template is a new key."""
    return (_HTML_ENGINE if html else _TEXT_ENGINE).from_string(source)


def render_template(
    code: str, context: Mapping[str, Any], *, source: Mapping[str, str] | None = None
) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of template `code` (or of `source`) on plain `context`.

    The HTML part is autoescaped and gets `body_html` (sanitised) where the text part gets
    `body`; the subject is one line. An empty HTML template gives an empty HTML part."""
    source = source or _template_source(code) or DEFAULT_TEMPLATES[code]
    return _finished(*_rendered_raw(source, context))


def _rendered_raw(source: Mapping[str, str], context: Mapping[str, Any]) -> tuple[str, str, str]:
    text_context = Context(_freeze(context, html=False), autoescape=False)
    subject = _compiled(source["subject"], html=False).render(text_context)
    text = _compiled(source["body_text"], html=False).render(text_context)
    html = ""
    if (source.get("body_html") or "").strip():
        html_context = Context(_freeze(context, html=True), autoescape=True)
        html = _compiled(source["body_html"], html=True).render(html_context)
    return subject, text, html


def _finished(subject: str, text: str, html: str) -> tuple[str, str, str]:
    return " ".join(subject.split())[:SUBJECT_MAX], text.strip() + "\n", html


# Stand-ins for the recipient's name and address in a rendering shared by the recipients of
# one alert: private-use characters (never whitespace, never escaped) around a token no
# ticket text can know.
_SLOT_TOKEN = secrets.token_hex(8)
_NAME_SLOT = f"\ue000{_SLOT_TOKEN}n\ue000"
_EMAIL_SLOT = f"\ue000{_SLOT_TOKEN}e\ue000"
_SLOTS = re.compile(f"{_NAME_SLOT}|{_EMAIL_SLOT}")
_RECIPIENT_PLAIN = re.compile(r"\{\{\s*recipient\.(?:name|email)\s*\}\}")


@lru_cache(maxsize=256)
def _recipient_plain_only(*texts: str) -> bool:
    """Whether the templates name the recipient only as `{{ recipient.name }}` or
    `{{ recipient.email }}`, with no filter or tag: then one rendering with stand-ins serves
    every recipient. Any other mention of `recipient` renders per recipient."""
    return all("recipient" not in _RECIPIENT_PLAIN.sub("", text) for text in texts)


def _render_for(
    source: Mapping[str, str],
    shared: Mapping[str, Any],
    recipient: Recipient,
    kept: dict[Any, tuple[Mapping[str, Any], tuple[str, str, str]]],
) -> tuple[str, str, str]:
    """`render_template` of `shared` with `recipient` added; renderings that differ only in
    the recipient are done once (in `kept`) and filled in for each one."""
    person = {"name": recipient.name, "email": recipient.email}
    texts = (source["subject"], source["body_text"], source.get("body_html") or "")
    if not _recipient_plain_only(*texts):
        return _finished(*_rendered_raw(source, {**shared, "recipient": person}))
    key = (id(shared), texts)
    if key not in kept:
        slots = {"name": _NAME_SLOT, "email": _EMAIL_SLOT}
        # `shared` is kept with its rendering, so that its id is never another context's.
        kept[key] = (shared, _rendered_raw(source, {**shared, "recipient": slots}))
    _shared, (subject, text, html) = kept[key]
    plain = {_NAME_SLOT: recipient.name, _EMAIL_SLOT: recipient.email}
    escaped = {slot: escape(value) for slot, value in plain.items()}
    return _finished(
        _SLOTS.sub(lambda match: plain[match.group(0)], subject),
        _SLOTS.sub(lambda match: plain[match.group(0)], text),
        _SLOTS.sub(lambda match: escaped[match.group(0)], html),
    )


_PLAIN = (str, int, float, bool, type(None))


def _freeze(value: Any, *, html: bool) -> Any:
    """Read-only copies of plain data; anything else (a model instance...) is refused.

    In a mapping with `body_html`, the HTML pass sees that as `body`."""
    if isinstance(value, Mapping):
        items = {key: _freeze(item, html=html) for key, item in value.items()}
        body_html = items.pop("body_html", None)
        if html and body_html is not None:
            items["body"] = body_html
        return MappingProxyType(items)
    if isinstance(value, list | tuple):
        return tuple(_freeze(item, html=html) for item in value)
    if isinstance(value, _PLAIN):
        return value
    raise TypeError(f"Email templates get plain data only, not {type(value).__name__}")


# --- context --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str
    user: User | None = None

    @classmethod
    def of(cls, user: User) -> Recipient:
        return cls(email=user.email.lower(), name=user.get_full_name(), user=user)

    def __str__(self) -> str:
        return mail_address(self.name, self.email)


@lru_cache(maxsize=4096)
def mail_address(name: str, email: str) -> str:
    """ "Name <address>" for a header, the name on one line and quoted where it must be."""
    name = " ".join((name or "").split())
    if not name or name == email:
        return email
    try:
        return str(Address(display_name=name, addr_spec=email))
    except (ValueError, IndexError):
        return email


def _when(value: datetime | None, tz: zoneinfo.ZoneInfo | None) -> str:
    if value is None:
        return ""
    return timezone.localtime(value, tz).strftime("%Y-%m-%d %H:%M %Z")


def _zone(user: User | None) -> zoneinfo.ZoneInfo | None:
    try:
        return zoneinfo.ZoneInfo(user.timezone) if user is not None and user.timezone else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def _url(name: str, fallback: str, **kwargs: Any) -> str:
    try:
        path = reverse(name, kwargs=kwargs)
    except NoReverseMatch:
        try:
            path = reverse(fallback)
        except NoReverseMatch:
            path = "/"
    return f"{settings.SITE_URL}{path}"


_BLOCK_END = re.compile(r"(?i)<br\s*/?>|</(p|div|li|tr|h[1-6]|blockquote|pre|table)>")


def _entry_html(entry: ThreadEntry) -> SafeString:
    """The sanitiser's output for the entry: stored with it when it was written (as the
    `render_body` template filter uses it); older rows are rendered now."""
    if entry.body_html:
        return mark_safe(entry.body_html)  # noqa: S308 - written by the sanitiser, never by a user
    return render_body(entry.body, entry.body_format)


def entry_text(entry: ThreadEntry) -> str:
    """An entry's body as plain text for the text part (HTML through the sanitiser first)."""
    if entry.body_format != "html":
        return (entry.body or "").strip()
    html = _BLOCK_END.sub(lambda match: match.group(0) + "\n", _entry_html(entry))
    text = html_lib.unescape(strip_tags(html))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in text.splitlines()))


def context_build(
    ticket: Ticket,
    *,
    audience: str,
    recipient: Recipient | None = None,
    entry: ThreadEntry | None = None,
    event: ThreadEvent | None = None,
    actor: User | None = None,
) -> dict[str, Any]:
    """The one context every email template gets: plain strings in nested dicts.

    Customer mail may not be about an internal note, and names no agent's address."""
    staff = audience == Audience.STAFF
    if not staff and entry is not None and entry.kind == EntryKind.NOTE:
        raise ValueError("An internal note is never part of customer mail.")
    tz = _zone(recipient.user if recipient else None)
    department = ticket.department
    if staff:
        url = _url("tickets_staff:ticket", "staff:home", number=ticket.number)
    else:
        url = _url("tickets_portal:ticket", "portal:home", number=ticket.number)

    def person(user: User | None) -> dict[str, str]:
        if user is None:
            return {"name": "", "email": ""}
        return {"name": user.get_full_name(), "email": user.email if staff else ""}

    context: dict[str, Any] = {
        "helpdesk": {
            "title": config().helpdesk_name,
            "url": settings.SITE_URL,
            "reply_separator": DEFAULT_REPLY_SEPARATOR,
        },
        "ticket": {
            "number": ticket.number,
            "subject": ticket.subject,
            "status": ticket.status.name,
            "priority": ticket.priority.name,
            "department": department.name if staff or department.is_public else "",
            "help_topic": ticket.help_topic.full_name if ticket.help_topic else "",
            "source": ticket.get_source_display(),
            "created_at": _when(ticket.created_at, tz),
            "due_at": _when(ticket.due_at, tz) if staff else "",
            "url": url,
        },
        "customer": {"name": ticket.user.get_full_name(), "email": ticket.user.email},
        "recipient": {
            "name": recipient.name if recipient else "",
            "email": recipient.email if recipient else "",
        },
        "actor": person(actor),
        "assignee": person(ticket.assignee),
        "team": {"name": ticket.team.name if ticket.team else ""},
        "entry": {"body": "", "body_html": "", "poster": "", "created_at": ""},
        "event": {"from": "", "to": "", "comment": "", "agent": "", "team": ""},
    }
    if entry is not None:
        # Worked out once per entry, however many emails are about it.
        bodies = entry.__dict__.get("_mail_bodies")
        if bodies is None:
            bodies = entry.__dict__["_mail_bodies"] = (entry_text(entry), _entry_html(entry))
        context["entry"] = {
            "body": bodies[0],
            "body_html": bodies[1],
            "poster": entry.poster or (entry.author.get_full_name() if entry.author else ""),
            "created_at": _when(entry.created_at, tz),
        }
    if event is not None:
        data = event.data or {}
        context["event"] = {
            key: "" if data.get(key) is None else str(data[key])
            for key in ("from", "to", "comment", "agent", "team")
        }
    return context


def _context_for(
    ticket: Ticket,
    *,
    audience: str,
    recipient: Recipient,
    entry: ThreadEntry | None,
    event: ThreadEvent | None,
    actor: User | None,
) -> dict[str, Any]:
    """`context_build` without the recipient, worked out once per ticket object for the
    recipients who differ only in name and address (the agents of one alert in one time
    zone)."""
    zone = _zone(recipient.user)
    key = (
        audience,
        entry.pk if entry is not None else None,
        event.pk if event is not None else None,
        actor.pk if actor is not None else None,
        zone.key if zone is not None else None,
    )
    kept = ticket.__dict__.setdefault("_mail_contexts", {})
    if key not in kept:
        kept[key] = context_build(
            ticket, audience=audience, recipient=recipient, entry=entry, event=event, actor=actor
        )
        kept[key].pop("recipient", None)
    return kept[key]


def _sample_context() -> dict[str, Any]:
    person = {"name": "Sam Sample", "email": "sam@example.com"}
    return {
        "helpdesk": {"title": "Help Desk", "url": "https://help.example", "reply_separator": "--"},
        "ticket": {
            "number": "123456",
            "subject": "Sample",
            "status": "Open",
            "priority": "Normal",
            "department": "Support",
            "help_topic": "General",
            "source": "Email",
            "created_at": "2025-01-01 09:00 UTC",
            "due_at": "",
            "url": "https://help.example/",
        },
        "customer": person,
        "recipient": person,
        "actor": person,
        "assignee": person,
        "team": {"name": "Level I"},
        "entry": {"body": "Hello", "body_html": "<p>Hello</p>", "poster": "Sam", "created_at": ""},
        "event": {"from": "Open", "to": "Closed", "comment": "", "agent": "Sam", "team": ""},
    }


# --- who may get mail -----------------------------------------------------------------------


@dataclass(frozen=True)
class MailboxRow:
    pk: int
    name: str
    email: str
    department_id: int | None
    help_topic_id: int | None
    priority_id: int | None
    is_active: bool


def _mailboxes() -> tuple[MailboxRow, ...]:
    return tuple(
        MailboxRow(pk, name, email.lower(), department_id, help_topic_id, priority_id, is_active)
        for pk, name, email, department_id, help_topic_id, priority_id, is_active in (
            Mailbox.objects.order_by("pk").values_list(
                "pk", "name", "email", "department_id", "help_topic_id", "priority_id", "is_active"
            )
        )
    )


# Our addresses and senders, read for every mail in and out: kept per process
# (helpdesk.lib.memo).
_MAILBOXES = VersionedMemo("mailgate.mailboxes", _mailboxes)


def mailbox_row(pk: int) -> MailboxRow | None:
    """A mailbox's addresses and ticket defaults, as kept per process."""
    return next((mailbox for mailbox in _MAILBOXES.get() if mailbox.pk == pk), None)


def our_addresses() -> set[str]:
    """Our own addresses: mail to them would come straight back in (a loop)."""
    addresses = set(_sender_addresses(settings.DEFAULT_FROM_EMAIL, settings.SERVER_EMAIL))
    addresses.update(mailbox.email for mailbox in _MAILBOXES.get())
    addresses.discard("")
    return addresses


@lru_cache(maxsize=8)
def _sender_addresses(*values: str) -> frozenset[str]:
    """The addresses in the sender settings, parsed once per value (every mail asks)."""
    return frozenset(parseaddr(value)[1].lower() for value in values)


def _customers(users: Iterable[User | None], *, actor: User | None) -> list[Recipient]:
    ours, seen, result = our_addresses(), set(), []
    for user in users:
        if user is None or not user.is_active or (actor is not None and user.pk == actor.pk):
            continue
        recipient = Recipient.of(user)
        if recipient.email in ours or recipient.email in seen:
            continue
        seen.add(recipient.email)
        result.append(recipient)
    return result


def _agents(ticket: Ticket, users: Iterable[User | None], *, actor: User | None) -> list[Recipient]:
    """The agents among `users` who get an alert about `ticket`: active, not on vacation,
    allowed to see it, not the actor, not one of our addresses; each once."""
    candidates = [user for user in users if user is not None]
    # Users read by `_available_agents` are known to be active agents present, with their
    # scope built: only the others (an assignee, a claimer) are looked up here.
    unknown = [user for user in candidates if not user.__dict__.get(_AVAILABLE)]
    agent_scopes_preload(unknown)
    away = (
        set(
            Agent.objects.filter(user__in=unknown)
            .filter(Q(on_vacation=True) | Q(is_active=False))
            .values_list("user_id", flat=True)
        )
        if unknown
        else set()
    )
    ours, seen, result = our_addresses(), set(), []
    for user in candidates:
        if user.pk in seen or user.pk in away or not user.is_active:
            continue
        seen.add(user.pk)
        if actor is not None and user.pk == actor.pk:
            continue
        if user.email.lower() in ours or not permissions.can(user, "ticket.view", ticket):
            continue
        result.append(Recipient.of(user))
    return result


def department_agents(department: Any) -> list[User]:
    """Who hears about a department's new tickets: its manager and its agents (primary or
    extended access), as the HELPDESK_ALERT_DEPT_* settings say."""

    def agents() -> Any:
        reach = Q(pk__in=[])
        if _setting("HELPDESK_ALERT_DEPT_MANAGER") and department.manager_id:
            reach |= Q(pk=department.manager_id)
        if _setting("HELPDESK_ALERT_DEPT_MEMBERS"):
            reach |= Q(department=department) | Q(department_access__department=department)
        return Agent.objects.filter(
            reach, is_active=True, on_vacation=False, user__is_active=True
        ).distinct()

    return _batch_memo(("department", department.pk, department.manager_id), agents)


def _team_members(team: Any) -> list[User]:
    if team is None or not team.is_active:
        return []
    return _batch_memo(
        ("team", team.pk),
        lambda: team.members.filter(is_active=True, on_vacation=False, user__is_active=True),
    )


def _batch_memo(key: tuple[Any, ...], agents: Callable[[], Any]) -> list[User]:
    """`_available_agents(agents())`, read once per batch of mail (`mail_out_batched`); the
    query itself is only built when it is read."""
    batch = _batch.get()
    if batch is None:
        return _available_agents(agents())
    if key not in batch.agents:
        batch.agents[key] = _available_agents(agents())
    return list(batch.agents[key])


# Set on a user that `_available_agents` read: an active agent, not on vacation, whose agent
# scope is built, so that `_agents` need not look them up again.
_AVAILABLE = "_mail_available_agent"


def _available_agents(agents: Any) -> list[User]:
    """The users of `agents` (filtered to active agents present), with their agent scope
    (`permissions.agent_scope`) built from the same rows: three queries for any number."""
    users = []
    for agent in (
        agents.select_related("user", "role")
        .prefetch_related("department_access__role", "teams")
        .order_by("pk")
    ):
        user = agent.user
        agent_scope_attach(user, agent)
        user.__dict__[_AVAILABLE] = True
        users.append(user)
    return users


def _responsible(ticket: Ticket) -> list[User]:
    """The assignee, else the assigned team, else the department."""
    if ticket.assignee_id is not None:
        return [ticket.assignee]
    return _team_members(ticket.team) or department_agents(ticket.department)


# --- switches -------------------------------------------------------------------------------


def auto_response_wanted(ticket: Ticket, flags: Mapping[str, Any] | None = None) -> bool:
    """Whether the customer may get an auto-response about `ticket` at all.

    Off globally (HELPDESK_AUTORESPONSE); per call (`auto_respond: false` in the created
    event's data: `TicketDraft.auto_respond`, which the API, filters, the help topic and
    the department turn off through `draft_route`); per department and help topic."""
    if not _setting("HELPDESK_AUTORESPONSE"):
        return False
    if flags is not None and flags.get("auto_respond") is False:
        return False
    return routing_allows_auto_response(ticket)


def routing_allows_auto_response(ticket: Ticket) -> bool:
    """The department's and the help topic's switch, as they are now."""
    topic = ticket.help_topic
    return bool(ticket.department.auto_response and (topic is None or topic.auto_response))


def rate_limited(address: str) -> bool:
    """Has `address` had HELPDESK_AUTORESPONSE_LIMIT auto-responses in the last hour?

    Counted in the database, so the limit holds across workers (0 means no limit); in a
    batch (`mail_out_batched`), the batch's own mail not yet written counts too."""
    limit = _setting("HELPDESK_AUTORESPONSE_LIMIT")
    if not limit:
        return False
    address = address.lower()
    batch = _batch.get()
    if batch is None:
        return _auto_responses_sent([address]).get(address, 0) >= limit
    if address not in batch.sent:
        batch.sent[address] = _auto_responses_sent([address]).get(address, 0)
    pending = sum(1 for row in batch.rows if row.recipient == address and _counts_as_auto(row))
    return batch.sent[address] + pending >= limit


def _counts_as_auto(row: OutboundMessage) -> bool:
    """Whether a logged email counts against its recipient's auto-response limit."""
    if row.status == OutboundStatus.SKIPPED:
        return False
    return row.template in AUTO_RESPONSES or (
        row.template == TemplateCode.TICKET_REPLY and row.is_automatic
    )


def _auto_responses_sent(addresses: Iterable[str]) -> dict[str, int]:
    """The auto-responses (and canned replies) each address had in the last hour."""
    wanted = sorted({address.lower() for address in addresses if address})
    if not wanted:
        return {}
    rows = (
        OutboundMessage.objects.filter(
            Q(template__in=AUTO_RESPONSES)
            | Q(template=TemplateCode.TICKET_REPLY, is_automatic=True),  # canned replies
            recipient__in=wanted,
            created_at__gte=timezone.now() - timedelta(hours=1),
        )
        .exclude(status=OutboundStatus.SKIPPED)
        .values("recipient")
        .annotate(sent=Count("pk"))
        .order_by()
    )
    return {row["recipient"]: row["sent"] for row in rows}


# --- writing the send log -------------------------------------------------------------------


def _sender(ticket: Ticket) -> str:
    """The department's outgoing mailbox, else a mailbox of the department, else the one
    the ticket's first mail came in through, else DEFAULT_FROM_EMAIL. Worked out once per
    ticket object (the receivers' fresh copy, so once per change)."""
    sender = ticket.__dict__.get("_mail_sender")
    if sender is None:
        sender = ticket.__dict__["_mail_sender"] = _sender_find(ticket)
    return sender


def _sender_find(ticket: Ticket) -> str:
    department = ticket.department
    mailboxes = _MAILBOXES.get()
    mailbox = next((m for m in mailboxes if m.pk == department.outgoing_mailbox_id), None)
    if mailbox is None:
        mine = [m for m in mailboxes if m.department_id == department.pk]
        mailbox = min(mine, key=lambda m: (not m.is_active, m.pk), default=None)
    if mailbox is None:
        first = (
            InboundMessage.objects.filter(ticket=ticket, mailbox__isnull=False)
            .order_by("received_at", "pk")
            .values_list("mailbox_id", flat=True)
            .first()
        )
        mailbox = next((m for m in mailboxes if m.pk == first), None)
    if mailbox is None:
        return settings.DEFAULT_FROM_EMAIL
    return mail_address(mailbox.name, mailbox.email)


def new_message_id(from_email: str = "") -> str:
    """A Message-ID nobody can guess, on the sender's domain."""
    return f"<{secrets.token_hex(16)}@{_domain_of(from_email or settings.DEFAULT_FROM_EMAIL)}>"


@lru_cache(maxsize=256)
def _domain_of(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2] or "localhost"


def _thread_ids(ticket: Ticket, *, before: ThreadEntry | None, exclude: str) -> tuple[str, str]:
    """(In-Reply-To, References): the customer's last message, and the thread's messages
    and responses (the first and the latest ones)."""
    cache = ticket.__dict__.setdefault("_mail_thread_ids", {})
    key = before.pk if before is not None else None
    preloaded = ticket.__dict__.get("_mail_thread_rows")
    if key not in cache and preloaded is not None:
        cache[key] = [
            (kind, message_id)
            for pk, kind, message_id in preloaded
            if before is None or pk <= before.pk
        ]
    if key not in cache:
        entries = ThreadEntry.objects.filter(
            thread__ticket=ticket, kind__in=(EntryKind.MESSAGE, EntryKind.RESPONSE)
        ).exclude(message_id="")
        if before is not None:
            entries = entries.filter(pk__lte=before.pk)
        cache[key] = list(entries.order_by("created_at", "pk").values_list("kind", "message_id"))
    rows = [(kind, message_id) for kind, message_id in cache[key] if message_id != exclude]
    in_reply_to = next((mid for kind, mid in reversed(rows) if kind == EntryKind.MESSAGE), "")
    ids = list(dict.fromkeys(mid for _kind, mid in rows))
    if len(ids) > REFERENCES_MAX:
        ids = [ids[0], *ids[-(REFERENCES_MAX - 1) :]]
    return in_reply_to, " ".join(ids)


def _with_token(subject: str, number: str) -> str:
    token = f"[#{number}]"
    if token in subject:
        return subject
    return f"{subject[: SUBJECT_MAX - len(token) - 1].rstrip()} {token}".strip()


def _is_automatic(code: str, entry: ThreadEntry | None) -> bool:
    """Everything but a human's response is automatic; a response without an author is a
    filter's canned reply, which answers the new ticket as an auto-response would."""
    if code != TemplateCode.TICKET_REPLY:
        return True
    return entry is not None and entry.kind == EntryKind.RESPONSE and entry.author_id is None


def _automatic_headers(code: str, *, automatic: bool = False) -> dict[str, str]:
    """RFC 3834: auto-responses (and canned replies posted by a filter) are `auto-replied`,
    alerts and notices `auto-generated`; a human's response carries none. The other two
    keep out-of-office replies away."""
    if code == TemplateCode.TICKET_REPLY and not automatic:
        return {}
    headers = {"X-Auto-Response-Suppress": "All"}
    if code in AUTO_RESPONSES or code == TemplateCode.TICKET_REPLY:
        headers.update({"Auto-Submitted": "auto-replied", "Precedence": "auto_reply"})
    else:
        headers["Auto-Submitted"] = "auto-generated"
    return headers


def _queue(
    ticket: Ticket,
    code: str,
    *,
    to: list[Recipient],
    cc: list[Recipient] | None = None,
    entry: ThreadEntry | None = None,
    event: ThreadEvent | None = None,
    actor: User | None = None,
    message_id: str = "",
    skip_reason: str = "",
) -> OutboundMessage | None:
    """Render one email and write it to the send log; it is sent after the commit."""
    source = _template_source(code) if to else None
    if source is None:
        return None
    outbound = _prepare(
        ticket,
        code,
        source,
        to=to,
        cc=cc,
        entry=entry,
        event=event,
        actor=actor,
        message_id=message_id,
        skip_reason=skip_reason,
    )
    batch = _batch.get()
    if batch is not None:
        batch.rows.append(outbound)
        return outbound
    outbound.save(force_insert=True)
    if not skip_reason:
        _enqueue_after_commit([outbound.pk])
    return outbound


def _prepare(
    ticket: Ticket,
    code: str,
    source: Mapping[str, str],
    *,
    to: list[Recipient],
    cc: list[Recipient] | None = None,
    entry: ThreadEntry | None = None,
    event: ThreadEvent | None = None,
    actor: User | None = None,
    message_id: str = "",
    skip_reason: str = "",
) -> OutboundMessage:
    """One rendered email as an unsaved send-log row."""
    audience = Audience.CUSTOMER if code in CUSTOMER_TEMPLATES else Audience.STAFF
    context = _context_for(
        ticket, audience=audience, recipient=to[0], entry=entry, event=event, actor=actor
    )
    renders = ticket.__dict__.setdefault("_mail_renders", {})
    subject, text, html = _render_for(source, context, to[0], renders)
    from_email = _sender(ticket)
    message_id = message_id or new_message_id(from_email)
    in_reply_to, references = _thread_ids(ticket, before=entry, exclude=message_id)
    automatic = _is_automatic(code, entry)
    headers = _automatic_headers(code, automatic=automatic)
    if in_reply_to:
        headers["In-Reply-To"] = in_reply_to
    if references:
        headers["References"] = references
    return OutboundMessage(
        ticket=ticket,
        entry=entry,
        template=code,
        audience=audience,
        is_automatic=automatic,
        from_email=from_email,
        recipient=to[0].email,
        to=[str(r) for r in to],
        cc=[str(r) for r in cc or ()],
        subject=_with_token(subject, ticket.number),
        body_text=text,
        body_html=html,
        message_id=message_id,
        headers=headers,
        status=OutboundStatus.SKIPPED if skip_reason else OutboundStatus.QUEUED,
        error=skip_reason,
    )


# The emails of the change `_safely` is working on: handed to Celery together, once it commits.
_change_outbound: ContextVar[list[int] | None] = ContextVar("mail_out_change", default=None)


def _enqueue_after_commit(outbound_ids: list[int]) -> None:
    pending = _change_outbound.get()
    if pending is not None:
        pending.extend(outbound_ids)
    else:
        transaction.on_commit(partial(_outbound_enqueue_all, outbound_ids), robust=True)


def outbound_enqueue(outbound_id: int) -> None:
    """Hand a logged email to Celery. A broker that is down leaves it queued for the sweep."""
    try:
        outbound_send_task.delay(outbound_id)
    except Exception:
        logger.exception("Could not queue outbound message %s; the sweep retries", outbound_id)


def _outbound_enqueue_all(outbound_ids: list[int]) -> None:
    """Hand the emails of one change to Celery as one task (sent over one connection)."""
    if len(outbound_ids) == 1:
        outbound_enqueue(outbound_ids[0])
        return
    try:
        outbound_send_batch_task.delay(outbound_ids)
    except Exception:
        logger.exception("Could not queue outbound messages %s; the sweep retries", outbound_ids)


def _autorespond(
    ticket: Ticket, code: str, user: User | None, *, entry: ThreadEntry | None
) -> OutboundMessage | None:
    to = _customers([user], actor=None)
    if not to:
        return None
    reason = ""
    if rate_limited(to[0].email):
        limit = _setting("HELPDESK_AUTORESPONSE_LIMIT")
        reason = f"Not sent: {to[0].email} already had {limit} auto-responses in the last hour."
        logger.warning("Auto-response to %s on ticket %s held back", to[0].email, ticket.number)
    return _queue(ticket, code, to=to, entry=entry, skip_reason=reason)


def _alert(
    ticket: Ticket,
    code: str,
    users: Iterable[User | None],
    *,
    actor: User | None,
    entry: ThreadEntry | None = None,
    event: ThreadEvent | None = None,
) -> list[OutboundMessage]:
    """One email per agent: each alert's Message-ID is known to its agent only. What they
    share (template, sender, thread headers, the entry's text) is worked out once, and the
    rows are written in one statement."""
    recipients = _agents(ticket, users, actor=actor)
    source = _template_source(code) if recipients else None
    if source is None:
        return []
    rows = [
        _prepare(ticket, code, source, to=[recipient], entry=entry, event=event, actor=actor)
        for recipient in recipients
    ]
    batch = _batch.get()
    if batch is not None:
        batch.rows.extend(rows)
        return rows
    _rows_write(rows)
    _enqueue_after_commit([row.pk for row in rows])
    return rows


def _rows_write(rows: list[OutboundMessage]) -> None:
    """Write send-log rows, in one statement where the database returns their keys."""
    if len(rows) == 1 or not transaction.get_connection().features.can_return_rows_from_bulk_insert:
        for row in rows:
            row.save(force_insert=True)
    else:
        OutboundMessage.objects.bulk_create(rows)


def _to_customer(
    ticket: Ticket,
    code: str,
    *,
    actor: User | None,
    entry: ThreadEntry | None = None,
    event: ThreadEvent | None = None,
    message_id: str = "",
    skip_reason: str = "",
) -> OutboundMessage | None:
    """To the customer, the collaborators copied."""
    collaborators = Collaborator.objects.filter(ticket=ticket).select_related("user").order_by("pk")
    people = _customers(
        [ticket.user, *(collaborator.user for collaborator in collaborators)], actor=actor
    )
    if not people:
        return None
    return _queue(
        ticket,
        code,
        to=people[:1],
        cc=people[1:],
        entry=entry,
        event=event,
        actor=actor,
        message_id=message_id,
        skip_reason=skip_reason,
    )


# --- what each change sends -----------------------------------------------------------------


def _entry_of(ticket: Ticket, event: ThreadEvent) -> ThreadEntry | None:
    entry_id = (event.data or {}).get("entry")
    if not entry_id:
        return None
    preloaded = ticket.__dict__.get("_mail_entries", {}).get(entry_id)
    if preloaded is not None:
        return preloaded
    return (
        ThreadEntry.objects.filter(pk=entry_id, thread__ticket=ticket)
        .select_related("author")
        .first()
    )


def ticket_created_notify(
    ticket: Ticket, entry: ThreadEntry | None, event: ThreadEvent | None = None
) -> list[OutboundMessage]:
    """The customer's auto-response and the department's new-ticket alert. `event` is the
    ticket's "created" event (read here when not given)."""
    if event is None:
        event = (
            ThreadEvent.objects.filter(thread__ticket=ticket, action=EventAction.CREATED)
            .select_related("actor")
            .order_by("pk")
            .first()
        )
    flags = (event.data if event else None) or {}
    actor = event.actor if event else None
    sent: list[OutboundMessage | None] = []
    if _setting("HELPDESK_AUTORESPONSE_NEW_TICKET") and auto_response_wanted(ticket, flags):
        sent.append(_autorespond(ticket, TemplateCode.TICKET_AUTORESP, ticket.user, entry=entry))
    if _setting("HELPDESK_ALERT_NEW_TICKET") and flags.get("alert") is not False:
        sent += _alert(
            ticket,
            TemplateCode.TICKET_ALERT,
            department_agents(ticket.department),
            actor=actor,
            entry=entry,
            event=event,
        )
    return [outbound for outbound in sent if outbound is not None]


def _on_message(ticket: Ticket, event: ThreadEvent) -> list[OutboundMessage | None]:
    entry = _entry_of(ticket, event)
    sent: list[OutboundMessage | None] = []
    if (
        entry is not None
        and _setting("HELPDESK_AUTORESPONSE_NEW_MESSAGE")
        and auto_response_wanted(ticket, event.data)
    ):
        sent.append(_autorespond(ticket, TemplateCode.MESSAGE_AUTORESP, entry.author, entry=entry))
    if _setting("HELPDESK_ALERT_NEW_MESSAGE"):
        sent += _alert(
            ticket,
            TemplateCode.MESSAGE_ALERT,
            _responsible(ticket),
            actor=event.actor,
            entry=entry,
            event=event,
        )
    return sent


def _on_response(ticket: Ticket, event: ThreadEvent) -> list[OutboundMessage | None]:
    entry = _entry_of(ticket, event)
    if entry is None or entry.kind != EntryKind.RESPONSE:
        return []
    reason = ""
    if _is_automatic(TemplateCode.TICKET_REPLY, entry) and rate_limited(ticket.user.email):
        # A filter's canned reply stands in for the auto-response, and is held back alike.
        limit = _setting("HELPDESK_AUTORESPONSE_LIMIT")
        reason = (
            f"Not sent: {ticket.user.email} already had {limit} auto-responses in the last hour."
        )
    return [
        _to_customer(
            ticket,
            TemplateCode.TICKET_REPLY,
            actor=event.actor,
            entry=entry,
            event=event,
            message_id=entry.message_id,
            skip_reason=reason,
        )
    ]


def _on_note(ticket: Ticket, event: ThreadEvent) -> list[OutboundMessage | None]:
    if not _setting("HELPDESK_ALERT_NOTE"):
        return []
    entry = _entry_of(ticket, event)
    return list(
        _alert(
            ticket,
            TemplateCode.NOTE_ALERT,
            _responsible(ticket),
            actor=event.actor,
            entry=entry,
            event=event,
        )
    )


def _on_assigned(ticket: Ticket, event: ThreadEvent) -> list[OutboundMessage | None]:
    if not _setting("HELPDESK_ALERT_ASSIGNED"):
        return []
    data = event.data or {}
    users: list[User | None] = []
    if event.action == EventAction.CLAIMED:
        users.append(ticket.assignee)
    if data.get("agent_id"):
        users.append(User.objects.filter(pk=data["agent_id"]).first())
    if data.get("team_id") and _setting("HELPDESK_ALERT_ASSIGNED_TEAM"):
        from routing.models import Team

        users += _team_members(Team.objects.filter(pk=data["team_id"]).first())
    return list(_alert(ticket, TemplateCode.ASSIGNED_ALERT, users, actor=event.actor, event=event))


def _on_transferred(ticket: Ticket, event: ThreadEvent) -> list[OutboundMessage | None]:
    if not _setting("HELPDESK_ALERT_TRANSFER"):
        return []
    return list(
        _alert(
            ticket,
            TemplateCode.TRANSFER_ALERT,
            _responsible(ticket),
            actor=event.actor,
            event=event,
        )
    )


def _on_status(ticket: Ticket, event: ThreadEvent) -> list[OutboundMessage | None]:
    wanted = {
        EventAction.CLOSED: _setting("HELPDESK_NOTICE_CLOSED"),
        EventAction.REOPENED: _setting("HELPDESK_NOTICE_REOPENED"),
    }
    if not wanted.get(event.action):
        return []
    # A response that changed the status (reply and close) already tells the customer.
    with_response = ThreadEvent.objects.filter(
        thread_id=event.thread_id,
        action=EventAction.RESPONSE,
        actor_id=event.actor_id,
        pk__lt=event.pk,
        created_at__gte=event.created_at - timedelta(seconds=10),
    )
    if event.actor_id is not None and with_response.exists():
        return []
    return [_to_customer(ticket, TemplateCode.STATUS_NOTICE, actor=event.actor, event=event)]


_HANDLERS: dict[str, Callable[[Ticket, ThreadEvent], list[OutboundMessage | None]]] = {
    EventAction.MESSAGE: _on_message,
    EventAction.RESPONSE: _on_response,
    EventAction.NOTE: _on_note,
    EventAction.ASSIGNED: _on_assigned,
    EventAction.CLAIMED: _on_assigned,
    EventAction.TRANSFERRED: _on_transferred,
    EventAction.CLOSED: _on_status,
    EventAction.REOPENED: _on_status,
}


def ticket_event_notify(ticket: Ticket, event: ThreadEvent) -> list[OutboundMessage]:
    handler = _HANDLERS.get(event.action)
    sent = handler(ticket, event) if handler else []
    return [outbound for outbound in sent if outbound is not None]


def overdue_alert_send(ticket: Ticket) -> list[OutboundMessage]:
    """The overdue alert, for the SLA job: the assignee (or the team) and the department's
    manager; the department's agents when nobody is responsible."""
    if not _setting("HELPDESK_ALERT_OVERDUE"):
        return []
    ticket = _fresh(ticket)
    users: list[User | None] = []
    if ticket.assignee_id is not None:
        users.append(ticket.assignee)
    else:
        users += _team_members(ticket.team)
    manager = ticket.department.manager
    if manager is not None and manager.is_active and not manager.on_vacation:
        users.append(manager.user)
    if not users:
        users = list(department_agents(ticket.department))
    with transaction.atomic():
        return _alert(ticket, TemplateCode.OVERDUE_ALERT, users, actor=None)


# --- receivers ------------------------------------------------------------------------------

_MAILBOXES.watch(Mailbox)
_TEMPLATES.watch(EmailTemplate)


_FRESH_RELATIONS = ("status", "priority", "department", "help_topic", "user", "assignee", "team")


def _fresh(ticket: Ticket) -> Ticket:
    """The ticket's row as committed, with the related rows the templates read.

    A related row the caller's copy already holds (read by the change that just committed,
    in this process) is reused when the row still points at it; only the others are joined.
    Joining all seven costs ~10 ms on PostgreSQL, most of it planning."""
    fields = [Ticket._meta.get_field(name) for name in _FRESH_RELATIONS]
    held = {
        field.name: field.get_cached_value(ticket) for field in fields if field.is_cached(ticket)
    }
    wanted = [
        field.name
        for field in fields
        if field.name not in held and getattr(ticket, field.attname) is not None
    ]
    rows = Ticket.objects.all()
    if wanted:
        rows = rows.select_related(*wanted)
    fresh = rows.get(pk=ticket.pk)
    for field in fields:
        if field.name in held and not field.is_cached(fresh):
            related = held[field.name]
            if getattr(fresh, field.attname) == (related.pk if related is not None else None):
                field.set_cached_value(fresh, related)
    return fresh


_suppressed: ContextVar[bool] = ContextVar("mail_out_suppressed", default=False)


@contextmanager
def mail_out_suppressed() -> Iterator[None]:
    """No mail about changes committed inside this block (demo data, imports): put it
    around the transaction, whose commit is when the receivers run."""
    token = _suppressed.set(True)
    try:
        yield
    finally:
        _suppressed.reset(token)


@dataclass
class _Batch:
    """The mail of many changes, worked out together (`mail_out_batched`)."""

    jobs: list[tuple[Callable[..., Any], Ticket, dict[str, Any]]] = dataclasses.field(
        default_factory=list
    )
    # Rendered, not yet written.
    rows: list[OutboundMessage] = dataclasses.field(default_factory=list)
    agents: dict[tuple[Any, ...], list[User]] = dataclasses.field(default_factory=dict)
    # Auto-responses each address had in the last hour, as of the last flush.
    sent: dict[str, int] = dataclasses.field(default_factory=dict)


_batch: ContextVar[_Batch | None] = ContextVar("mail_out_batch", default=None)


class MailOutBatch:
    """What `mail_out_batched` yields: `flush()` does the mail of what committed so far."""

    def __init__(self, batch: _Batch) -> None:
        self._batch = batch

    def flush(self) -> int:
        """Render, log and queue the mail of the changes committed since the last flush (one
        send task for all of it); returns how many emails were logged. Mail is a side effect
        of changes that already committed: a failure here is logged, never raised."""
        return _batch_flush_safely(self._batch)


@contextmanager
def mail_out_batched() -> Iterator[MailOutBatch]:
    """Work out the mail about changes committed inside this block in batches: at each
    `flush()` and at the end, rather than after each commit.

    For a run of many changes (a mail fetch): the tickets are read again in one query, the
    department's and teams' agents once, the send-log rows written in one statement and
    sent by one task over one connection. Each change's mail is still rendered on its own
    and a failing one is logged and skipped. Mail of changes that committed but were not
    flushed yet is lost if the process dies, as mail after a commit is without a batch."""
    batch = _Batch()
    token = _batch.set(batch)
    try:
        yield MailOutBatch(batch)
    finally:
        _batch.reset(token)
        _batch_flush_safely(batch)


def _batch_flush_safely(batch: _Batch) -> int:
    try:
        return _batch_flush(batch)
    except Exception:
        logger.exception("Preparing the mail of a batch failed")
        return 0


def _batch_flush(batch: _Batch) -> int:
    jobs, batch.jobs = batch.jobs, []
    if not jobs:
        return 0
    token = _batch.set(batch)
    try:
        tickets = _fresh_many([ticket.pk for _work, ticket, _kwargs in jobs])
        _entries_preload(tickets, [kwargs.get("event") for _work, _ticket, kwargs in jobs])
        limit = _setting("HELPDESK_AUTORESPONSE_LIMIT")
        if limit:
            emails = {ticket.user.email.lower() for ticket in tickets.values()} - set(batch.sent)
            batch.sent.update(dict.fromkeys(emails, 0) | _auto_responses_sent(emails))
        for work, ticket, kwargs in jobs:
            fresh = tickets.get(ticket.pk)
            if fresh is None:
                continue  # deleted since
            written = len(batch.rows)
            try:
                work(fresh, **kwargs)
            except Exception:
                del batch.rows[written:]
                logger.exception("Preparing mail for ticket %s failed", ticket.number)
        rows, batch.rows = batch.rows, []
    finally:
        _batch.reset(token)
    if not rows:
        return 0
    for row in rows:
        if row.recipient in batch.sent and _counts_as_auto(row):
            batch.sent[row.recipient] += 1  # written now: the next flush counts it
    with transaction.atomic():
        _rows_write(rows)
        queued = [row.pk for row in rows if row.status == OutboundStatus.QUEUED]
        for start in range(0, len(queued), SEND_BATCH):
            transaction.on_commit(
                partial(_outbound_enqueue_all, queued[start : start + SEND_BATCH]), robust=True
            )
    return len(rows)


# The most emails one send task takes (over one connection).
SEND_BATCH = 200


def _entries_preload(tickets: dict[int, Ticket], events: list[ThreadEvent | None]) -> None:
    """The entries the events are about (`_entry_of`), in one query."""
    wanted = {(event.data or {}).get("entry") for event in events if event is not None}
    wanted.discard(None)
    if not wanted:
        return
    for entry in ThreadEntry.objects.filter(pk__in=wanted).select_related("author", "thread"):
        ticket = tickets.get(entry.thread.ticket_id)
        if ticket is not None:
            ticket.__dict__.setdefault("_mail_entries", {})[entry.pk] = entry


def _fresh_many(pks: list[int]) -> dict[int, Ticket]:
    """The tickets' rows as committed, with what the templates read, and the Message-IDs of
    their threads (for `_thread_ids`): two queries. The people are joined, the small admin
    rows come from the ones kept per process (`related_attach`: planning a join of seven
    tables took longer than running it), and the search document is left out."""
    tickets = (
        Ticket.objects.select_related("user", "assignee").defer("search_document").in_bulk(set(pks))
    )
    related_attach(tickets.values(), ("status", "priority", "department", "help_topic", "team"))
    for ticket in tickets.values():
        ticket.__dict__["_mail_thread_rows"] = []
    entries = (
        ThreadEntry.objects.filter(
            thread__ticket__in=list(tickets), kind__in=(EntryKind.MESSAGE, EntryKind.RESPONSE)
        )
        .exclude(message_id="")
        .order_by("created_at", "pk")
        .values_list("thread__ticket_id", "pk", "kind", "message_id")
    )
    for ticket_id, pk, kind, message_id in entries:
        tickets[ticket_id].__dict__["_mail_thread_rows"].append((pk, kind, message_id))
    return tickets


def _safely(work: Callable[..., Any], ticket: Ticket, **kwargs: Any) -> None:
    """Mail is a side effect: a failure here is logged, never raised into the change that
    already committed."""
    if not _setting("HELPDESK_MAIL_OUT") or _suppressed.get():
        return
    batch = _batch.get()
    if batch is not None:
        batch.jobs.append((work, ticket, kwargs))
        return
    pending: list[int] = []
    token = _change_outbound.set(pending)
    try:
        with transaction.atomic():
            work(_fresh(ticket), **kwargs)
            if pending:
                # One task for the auto-response and the alerts: sent over one connection.
                transaction.on_commit(partial(_outbound_enqueue_all, pending), robust=True)
    except Exception:
        logger.exception("Preparing mail for ticket %s failed", getattr(ticket, "number", "?"))
    finally:
        _change_outbound.reset(token)


@receiver(ticket_created, sender=Ticket, dispatch_uid="mailgate.notifications.created")
def _ticket_created_received(
    sender: type[Ticket],
    ticket: Ticket,
    entry: ThreadEntry | None = None,
    event: ThreadEvent | None = None,
    **kwargs: Any,
) -> None:
    _safely(ticket_created_notify, ticket, entry=entry, event=event)


@receiver(ticket_event, sender=Ticket, dispatch_uid="mailgate.notifications.event")
def _ticket_event_received(
    sender: type[Ticket], ticket: Ticket, event: ThreadEvent, **kwargs: Any
) -> None:
    if event.action in _HANDLERS:
        _safely(ticket_event_notify, ticket, event=event)


# --- sending --------------------------------------------------------------------------------


def outbound_send(outbound_id: int, *, final: bool = True) -> str:
    """Send one logged email if nobody else is sending or has sent it.

    The row is claimed with a conditional UPDATE (queued → sending), so a task delivered
    twice sends once. A temporary failure (SMTP, network) puts it back to queued and raises
    for Celery to retry, unless this was the `final` attempt; then, and on any other error,
    it ends as failed with the error, and the ticket's log says the mail did not go out."""
    claimed = OutboundMessage.objects.filter(pk=outbound_id, status=OutboundStatus.QUEUED).update(
        status=OutboundStatus.SENDING, attempts=F("attempts") + 1, claimed_at=timezone.now()
    )
    if not claimed:
        return "not queued"
    outbound = OutboundMessage.objects.select_related("entry").get(pk=outbound_id)
    try:
        _deliver(outbound)
    except (SMTPException, OSError) as error:
        _failed(outbound, error, final=final)
        if not final:
            raise
        return OutboundStatus.FAILED
    except Exception as error:
        logger.exception("Sending outbound message %s failed", outbound_id)
        _failed(outbound, error, final=True)
        return OutboundStatus.FAILED
    OutboundMessage.objects.filter(pk=outbound_id).update(
        status=OutboundStatus.SENT, sent_at=timezone.now(), error=""
    )
    return OutboundStatus.SENT


def outbound_send_many(outbound_ids: list[int]) -> int:
    """Send several logged emails (the alerts of one change) over one connection; returns
    how many went out. Each row is claimed as in `outbound_send`, all in one statement, and
    rows another worker holds are left to it. One that fails for a temporary reason goes
    back to the queue with a task of its own (and its retries); any other failure is final."""
    connection = transaction.get_connection()
    with transaction.atomic():
        rows = OutboundMessage.objects.filter(pk__in=outbound_ids, status=OutboundStatus.QUEUED)
        # Lock the outbound rows only: the entry is joined by an outer join, which
        # PostgreSQL refuses to lock.
        lock: dict[str, Any] = (
            {"of": ("self",)} if connection.features.has_select_for_update_of else {}
        )
        if connection.features.has_select_for_update_skip_locked:
            lock["skip_locked"] = True
        rows = rows.select_for_update(**lock)
        claimed = list(rows.order_by("pk"))
        OutboundMessage.objects.filter(pk__in=[row.pk for row in claimed]).update(
            status=OutboundStatus.SENDING, attempts=F("attempts") + 1, claimed_at=timezone.now()
        )
    if not claimed:
        return 0
    # Only a response carries its attachments: the entries of the rest are not read.
    responses = set(
        ThreadEntry.objects.filter(
            pk__in={outbound.entry_id for outbound in claimed if outbound.entry_id},
            kind=EntryKind.RESPONSE,
        ).values_list("pk", flat=True)
    )
    sent: list[int] = []
    mail_connection = get_connection(fail_silently=False)
    try:
        for outbound in claimed:
            try:
                _deliver(
                    outbound,
                    connection=mail_connection,
                    response=outbound.entry_id in responses,
                )
            except (SMTPException, OSError) as error:
                _failed(outbound, error, final=False)
                outbound_enqueue(outbound.pk)
            except Exception as error:
                logger.exception("Sending outbound message %s failed", outbound.pk)
                _failed(outbound, error, final=True)
            else:
                sent.append(outbound.pk)
    finally:
        try:
            mail_connection.close()
        except Exception:
            logger.warning("Closing the mail connection failed", exc_info=True)
    OutboundMessage.objects.filter(pk__in=sent).update(
        status=OutboundStatus.SENT, sent_at=timezone.now(), error=""
    )
    return len(sent)


def _deliver(
    outbound: OutboundMessage, *, connection: Any = None, response: bool | None = None
) -> None:
    """Send one logged email; `response` says whether its entry is a response (whose
    attachments go with it), else the entry is read to tell."""
    message = EmailMultiAlternatives(
        subject=outbound.subject,
        body=outbound.body_text,
        from_email=outbound.from_email,
        to=outbound.to,
        cc=outbound.cc,
        headers={"Message-ID": outbound.message_id, **outbound.headers},
        connection=connection or get_connection(fail_silently=False),
    )
    if outbound.body_html:
        message.attach_alternative(outbound.body_html, "text/html")
    if response is None:
        entry = outbound.entry
        response = entry is not None and entry.kind == EntryKind.RESPONSE
    if response:
        for attachment in Attachment.objects.filter(entry_id=outbound.entry_id).order_by("pk"):
            with default_storage.open(attachment.file.name, "rb") as handle:
                message.attach(attachment.name, handle.read(), attachment.content_type)
    message.send()


def _failed(outbound: OutboundMessage, error: BaseException, *, final: bool) -> None:
    text = f"{type(error).__name__}: {error}"[:2000]
    status = OutboundStatus.FAILED if final else OutboundStatus.QUEUED
    OutboundMessage.objects.filter(pk=outbound.pk).update(status=status, error=text)
    if not final:
        return
    from tickets.services import ticket_delivery_failed_record

    recipients = [parseaddr(address)[1] for address in [*outbound.to, *outbound.cc]]
    try:
        ticket_delivery_failed_record(
            ticket=outbound.ticket,
            recipients=recipients,
            details=[
                {"recipient": address, "action": "failed", "status": "", "error": text[:500]}
                for address in recipients
            ],
        )
    except Exception:
        logger.exception("Recording the failed send %s on its ticket failed", outbound.pk)


@shared_task(
    bind=True,
    name="mailgate.notifications.outbound_send_task",
    autoretry_for=(SMTPException, OSError),
    retry_backoff=True,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=SEND_MAX_RETRIES,
    acks_late=True,
)
def outbound_send_task(self: Any, outbound_id: int) -> str:
    # Run eagerly (development, tests) there is no worker to retry later: one attempt.
    final = self.request.is_eager or self.request.retries >= SEND_MAX_RETRIES
    return outbound_send(outbound_id, final=final)


@shared_task(name="mailgate.notifications.outbound_send_batch_task", acks_late=True)
def outbound_send_batch_task(outbound_ids: list[int]) -> int:
    return outbound_send_many(list(outbound_ids))


# Sending more than this late is not worth it (a "new ticket" alert a day later).
SWEEP_GIVE_UP = timedelta(days=1)
# Longer than any send takes (EMAIL_TIMEOUT) and than the longest retry backoff (600 s).
SWEEP_STALE = timedelta(minutes=15)


@shared_task(name="mailgate.notifications.outbound_sweep_task")
def outbound_sweep_task() -> int:
    """Queue again what never reached the broker, lost its retry, or whose worker died
    mid-send; give up on mail that is too old. Safe alongside the send task: a row is
    claimed before it is sent, so a second task for it does nothing."""
    now = timezone.now()
    waiting = (OutboundStatus.QUEUED, OutboundStatus.SENDING)
    OutboundMessage.objects.filter(status__in=waiting, created_at__lt=now - SWEEP_GIVE_UP).update(
        status=OutboundStatus.FAILED, error="Not sent in time; given up."
    )
    # A worker that died while sending leaves the row "sending": send it again (a rare
    # duplicate is better than a lost reply).
    OutboundMessage.objects.filter(
        status=OutboundStatus.SENDING, claimed_at__lt=now - SWEEP_STALE
    ).update(status=OutboundStatus.QUEUED)
    pending = list(
        OutboundMessage.objects.filter(
            status=OutboundStatus.QUEUED, created_at__lt=now - SWEEP_STALE
        )
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - SWEEP_STALE))
        .order_by("pk")
        .values_list("pk", flat=True)[:500]
    )
    for outbound_id in pending:
        outbound_enqueue(outbound_id)
    return len(pending)
