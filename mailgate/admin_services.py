"""What the mail admin screens do: mailbox on/off, connection tests and fetches on demand,
processing stored messages again, and editing, previewing and resetting email templates.

Each change is recorded in the admin log (`helpdesk.adminlog`). Fetching and processing are
the gateway's own functions (`mailgate.fetching`, `mailgate.services.inbound_process`); this
module only calls them.
"""

from __future__ import annotations

import contextlib
import logging
import poplib
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from email import policy as email_policy
from email.parser import BytesHeaderParser
from imaplib import IMAP4
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from imapclient import IMAPClient

from helpdesk.adminlog import admin_log_record
from helpdesk.config import config
from helpdesk.models import AdminAction

from . import services
from .fetching import CONNECTION_ERRORS, DEFAULT_PORTS, FETCHED_PROTOCOLS
from .models import EmailTemplate, InboundMessage, InboundStatus, Mailbox
from .notifications import CUSTOMER_TEMPLATES, render_template, template_errors
from .parsing import DEFAULT_REPLY_SEPARATOR, ParsedMessage, ParseError, parse_message
from .templates_default import DEFAULT_TEMPLATES

logger = logging.getLogger(__name__)

# Messages an admin may have processed again: failed ones, and ones stored but never
# processed (the worker died between storing and processing).
RETRYABLE = (InboundStatus.FAILED, InboundStatus.RECEIVED)
TEMPLATE_FIELDS = ("subject", "body_text", "body_html")


# --- mailboxes ------------------------------------------------------------------------------


@transaction.atomic
def mailbox_set_active(*, mailbox: Mailbox, active: bool, actor: Any) -> Mailbox:
    """Switch a mailbox on or off. Switching on starts its failure count afresh: a mailbox the
    gateway switched off after `max_failures` errors would otherwise go off again at the
    first new error."""
    before = mailbox.is_active
    if before == active:
        return mailbox
    mailbox.is_active = active
    fields = ["is_active", "updated_at"]
    changes: dict[str, list[Any]] = {"is_active": [before, active]}
    if active and mailbox.error_count:
        changes["error_count"] = [mailbox.error_count, 0]
        mailbox.error_count = 0
        fields.append("error_count")
    mailbox.save(update_fields=fields)
    admin_log_record(
        actor=actor,
        obj=mailbox,
        action=AdminAction.RESTORE if active else AdminAction.ARCHIVE,
        changes=changes,
    )
    return mailbox


@dataclass
class ConnectionTestResult:
    ok: bool
    message: str


def mailbox_connection_test(*, mailbox: Mailbox) -> ConnectionTestResult:
    """Connect to the mailbox's server, log in and open its folder (IMAP) or count its mail
    (POP3), within HELPDESK_MAIL_FETCH_TIMEOUT seconds. Reads nothing, changes nothing.

    The answer never contains the password."""
    if mailbox.protocol not in FETCHED_PROTOCOLS:
        return ConnectionTestResult(
            False,
            _("This mailbox receives mail piped by the mail server: there is no server to test."),
        )
    if not mailbox.host:
        return ConnectionTestResult(False, _("No server is set."))
    try:
        if mailbox.protocol == Mailbox.Protocol.IMAP:
            detail = _imap_test(mailbox)
        else:
            detail = _pop3_test(mailbox)
    except (*CONNECTION_ERRORS, ssl.SSLError) as error:
        return ConnectionTestResult(False, _connection_error_text(mailbox, error))
    return ConnectionTestResult(True, _scrub(detail, mailbox.password))


def _port(mailbox: Mailbox) -> int:
    use_ssl = mailbox.security == Mailbox.Security.SSL
    return mailbox.port or DEFAULT_PORTS[(mailbox.protocol, use_ssl)]


def _ssl_context() -> ssl.SSLContext:
    # The same trust as the fetch itself: verified certificates, MAIL_CA_FILE added.
    context = ssl.create_default_context(cafile=settings.HELPDESK_MAIL_CA_FILE or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _imap_test(mailbox: Mailbox) -> str:
    use_ssl = mailbox.security == Mailbox.Security.SSL
    client = IMAPClient(
        mailbox.host,
        port=_port(mailbox),
        ssl=use_ssl,
        ssl_context=_ssl_context() if use_ssl else None,
        timeout=settings.HELPDESK_MAIL_FETCH_TIMEOUT,
    )
    try:
        if mailbox.security == Mailbox.Security.STARTTLS:
            client.starttls(_ssl_context())
        client.login(mailbox.username, mailbox.password)
        folder = mailbox.folder or "INBOX"
        info = client.select_folder(folder, readonly=True)
        count = int(info.get(b"EXISTS", 0))
        return _("Signed in to %(server)s; folder “%(folder)s” holds %(count)s messages.") % {
            "server": f"{mailbox.host}:{_port(mailbox)}",
            "folder": folder,
            "count": count,
        }
    finally:
        try:
            client.logout()
        except CONNECTION_ERRORS:
            with contextlib.suppress(*CONNECTION_ERRORS):
                client.shutdown()


def _pop3_test(mailbox: Mailbox) -> str:
    timeout = settings.HELPDESK_MAIL_FETCH_TIMEOUT
    if mailbox.security == Mailbox.Security.SSL:
        pop = poplib.POP3_SSL(mailbox.host, _port(mailbox), timeout=timeout, context=_ssl_context())
    else:
        pop = poplib.POP3(mailbox.host, _port(mailbox), timeout=timeout)
    try:
        if mailbox.security == Mailbox.Security.STARTTLS:
            pop.stls(_ssl_context())
        pop.user(mailbox.username)
        pop.pass_(mailbox.password)
        count, _size = pop.stat()
        pop.quit()
    except BaseException:
        with contextlib.suppress(*CONNECTION_ERRORS):
            pop.close()
        raise
    return _("Signed in to %(server)s; the mailbox holds %(count)s messages.") % {
        "server": f"{mailbox.host}:{_port(mailbox)}",
        "count": count,
    }


def _connection_error_text(mailbox: Mailbox, error: BaseException) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        text = _("the server's certificate was refused: %(reason)s") % {
            "reason": error.verify_message or error
        }
    elif isinstance(error, TimeoutError):
        text = _("no answer in %(seconds)s seconds (timed out)") % {
            "seconds": settings.HELPDESK_MAIL_FETCH_TIMEOUT
        }
    elif isinstance(error, ConnectionRefusedError):
        text = _("connection refused")
    elif isinstance(error, socket.gaierror):
        text = _("the server name was not found (%(reason)s)") % {"reason": error.strerror}
    elif isinstance(error, IMAP4.error | poplib.error_proto):
        detail = error.args[0] if error.args else error
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        detail = str(detail)
        # imapclient's LoginError carries the repr of the server's bytes: b'[...] Failed.'
        if len(detail) > 2 and detail[:2] in ("b'", 'b"') and detail[-1] == detail[1]:
            detail = detail[2:-1]
        text = _("the server said: %(detail)s") % {"detail": detail}
    else:
        text = f"{type(error).__name__}: {error}"
    where = f"{mailbox.get_protocol_display()} {mailbox.host}:{_port(mailbox)}"
    return _scrub(f"{where}: {text}", mailbox.password)[:2000]


def _scrub(text: str, password: str) -> str:
    return text.replace(password, "********") if password else text


def mailbox_fetch_queue(*, mailbox: Mailbox) -> None:
    """Ask a worker to fetch this mailbox now (the scheduled fetch's task, for one mailbox).

    Raises ValidationError when the mailbox is not fetched (piped, or switched off) or the
    task could not be queued."""
    from .tasks import mailbox_fetch_task

    if mailbox.protocol not in FETCHED_PROTOCOLS:
        raise ValidationError(_("Mail piped by the mail server is not fetched."))
    if not mailbox.is_active:
        raise ValidationError(_("The mailbox is switched off: switch it on to fetch its mail."))
    try:
        mailbox_fetch_task.delay(mailbox.pk)
    except Exception as error:  # the broker is down: say so rather than fail the page
        logger.exception("Could not queue the fetch of mailbox %s", mailbox.pk)
        raise ValidationError(
            _("The fetch could not be queued: %(error)s") % {"error": error}
        ) from error


# --- incoming mail --------------------------------------------------------------------------


@dataclass
class RetryReport:
    processed: int = 0
    still_failed: list[tuple[int, str]] = field(default_factory=list)
    skipped: int = 0


def inbound_retry(*, messages: Iterable[InboundMessage], actor: Any) -> RetryReport:
    """Process failed (or never processed) messages again, one at a time: one that fails
    again stays failed with its new error and the others go on. Messages already processed
    or ignored are skipped (processing is once only)."""
    report = RetryReport()
    for message in messages:
        if message.status not in RETRYABLE:
            report.skipped += 1
            continue
        before = (message.status, message.outcome)
        try:
            message = services.inbound_process(message=message)
        except Exception:
            # inbound_process logged it and stored the error on the message.
            message.refresh_from_db(fields=["status", "outcome", "error"])
        with transaction.atomic():
            admin_log_record(
                actor=actor,
                obj=message,
                action=AdminAction.UPDATE,
                changes={
                    "status": [before[0], message.status],
                    "outcome": [before[1], message.outcome],
                },
            )
        if message.status == InboundStatus.FAILED:
            report.still_failed.append((message.pk, message.error or message.outcome))
        else:
            report.processed += 1
    return report


@dataclass
class InboundParse:
    parsed: ParsedMessage | None
    error: str = ""


# How much of a stored message is read to show the headers of a row that has none.
HEADER_PEEK_BYTES = 32 * 1024


def inbound_headers_fill(messages: Iterable[InboundMessage]) -> None:
    """Give rows whose processing crashed (it rolled back before From and Subject were
    stored) the From and Subject of their raw headers, for the list page. Reads the start of
    the raw bytes of those rows only, those kept in their rows in one query; never raises."""
    bare = [message for message in messages if not (message.subject or message.from_email)]
    deferred = [message.pk for message in bare if "raw_data" in message.get_deferred_fields()]
    if deferred:
        kept = dict(InboundMessage.objects.filter(pk__in=deferred).values_list("pk", "raw_data"))
        for message in bare:
            if message.pk in kept:
                message.raw_data = kept[message.pk]
    for message in bare:
        try:
            head = message.raw_read(HEADER_PEEK_BYTES)
            headers = BytesHeaderParser(policy=email_policy.default).parsebytes(head)
            message.subject = " ".join(str(headers.get("subject", "")).split())[:255]
            message.from_email = " ".join(str(headers.get("from", "")).split())[:254]
        except Exception:  # a header too broken to read: the row stays without them
            logger.debug("Could not read the headers of message %s", message.pk, exc_info=True)


def inbound_raw(*, message: InboundMessage) -> bytes | None:
    """The stored bytes of a message, or None when their file is gone from storage."""
    try:
        return message.raw_read()
    except OSError:
        return None


def inbound_parse(*, message: InboundMessage) -> InboundParse:
    """What the parser makes of a stored message now (headers, bodies, attachments), as the
    gateway saw it: with the same size limit."""
    raw = inbound_raw(message=message)
    if raw is None:
        return InboundParse(None, _("The raw message is missing from storage."))
    try:
        return InboundParse(parse_message(raw, max_size=settings.HELPDESK_MAIL_MAX_SIZE))
    except ParseError as error:
        return InboundParse(None, error.reason)


# --- email templates ------------------------------------------------------------------------


def template_audience(code: str) -> str:
    from .models import Audience

    return Audience.CUSTOMER if code in CUSTOMER_TEMPLATES else Audience.STAFF


def template_for_edit(code: str) -> EmailTemplate:
    """The row of `code`, or an unsaved one holding the shipped default."""
    row = EmailTemplate.objects.filter(code=code).first()
    if row is not None:
        return row
    return EmailTemplate(code=code, **DEFAULT_TEMPLATES[code])


def template_is_default(template: EmailTemplate) -> bool:
    default = DEFAULT_TEMPLATES[template.code]
    return all(getattr(template, name) == default[name] for name in TEMPLATE_FIELDS)


@transaction.atomic
def email_template_reset(*, code: str, actor: Any) -> EmailTemplate:
    """Put the shipped subject and bodies back (whether the email is sent stays as set)."""
    template = EmailTemplate.objects.select_for_update().filter(code=code).first()
    default = DEFAULT_TEMPLATES[code]
    if template is None:
        template = EmailTemplate(code=code, **default)
        template.save()
        admin_log_record(actor=actor, obj=template, action=AdminAction.CREATE)
        return template
    changes = {
        name: [getattr(template, name), default[name]]
        for name in TEMPLATE_FIELDS
        if getattr(template, name) != default[name]
    }
    if not changes:
        return template
    for name in TEMPLATE_FIELDS:
        setattr(template, name, default[name])
    template.save()
    admin_log_record(actor=actor, obj=template, action=AdminAction.UPDATE, changes=changes)
    return template


@dataclass
class TemplatePreview:
    subject: str
    body_text: str
    body_html: str


def preview_context() -> dict[str, Any]:
    """Sample data in the shape of `notifications.context_build`: what a preview shows."""
    customer = {"name": "Carol Customer", "email": "carol@example.com"}
    agent = {"name": "Alex Agent", "email": "alex@example.com"}
    return {
        "helpdesk": {
            "title": config().helpdesk_name,
            "url": getattr(settings, "SITE_URL", ""),
            "reply_separator": DEFAULT_REPLY_SEPARATOR,
        },
        "ticket": {
            "number": "123456",
            "subject": "The printer on floor 2 jams",
            "status": "Open",
            "priority": "Normal",
            "department": "Support",
            "help_topic": "Hardware",
            "source": "Email",
            "created_at": "2025-03-03 09:15 UTC",
            "due_at": "2025-03-04 09:15 UTC",
            "url": f"{getattr(settings, 'SITE_URL', '')}/tickets/123456/",
        },
        "customer": customer,
        "recipient": customer,
        "actor": agent,
        "assignee": agent,
        "team": {"name": "Level I"},
        "entry": {
            "body": "Hello,\n\nthe printer jams on every second page.\n\nCarol",
            # A fixed sample written here, not anyone's input.
            "body_html": mark_safe(
                "<p>Hello,</p><p>the printer jams on every second page.</p><p>Carol</p>"
            ),
            "poster": "Carol Customer",
            "created_at": "2025-03-03 09:15 UTC",
        },
        "event": {
            "from": "Open",
            "to": "Resolved",
            "comment": "",
            "agent": "Alex Agent",
            "team": "",
        },
    }


def email_template_preview(
    *, code: str, subject: str, body_text: str, body_html: str
) -> TemplatePreview:
    """The email `code` would be with this source, on sample data. Raises ValidationError
    (by field) when the source does not compile or fails to render."""
    errors = template_errors(subject=subject, body_text=body_text, body_html=body_html)
    if errors:
        raise ValidationError(errors)
    rendered = render_template(
        code,
        preview_context(),
        source={"subject": subject, "body_text": body_text, "body_html": body_html},
    )
    return TemplatePreview(*rendered)
