"""osTicket's HTTP API, with osTicket's formats and answers, so its clients keep working.

`POST /api/tickets.json`, `/api/tickets.xml`, `/api/tickets.email` and `/api/tasks/cron`
(also under `/api/http.php/...`). Answers are plain text: `201` and the ticket number, or
osTicket's error text (401 for key problems, 400 for malformed bodies and invalid fields, 403
for banned senders and rejecting filters). Unknown fields are logged and ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from accounts.api_keys import (
    MESSAGE_NOT_AUTHORIZED,
    MESSAGE_REQUIRED,
    ApiKeyRefused,
    api_key_authenticate,
    client_ip,
)
from accounts.models import ApiKey
from helpdesk.config import config
from helpdesk.lib import files
from mailgate.models import InboundStatus, Mailbox
from routing.filters import DraftRejected
from routing.models import Department, HelpTopic
from routing.services import sender_banned
from tickets.models import BodyFormat, Priority, Source
from tickets.services import AttachmentUpload, TicketDraft, ticket_open

logger = logging.getLogger(__name__)

TICKET_ROUTES = {"tickets.json": "json", "tickets.xml": "xml", "tickets.email": "email"}
CRON_ROUTE = "tasks/cron"
# The keys of osTicket's fixed request structure (besides custom form fields, which this
# help desk does not have: they are accepted and ignored like any unknown key).
KNOWN_FIELDS = {
    "name",
    "email",
    "phone",
    "notes",
    "subject",
    "message",
    "priority",
    "priorityId",
    "alert",
    "autorespond",
    "source",
    "ip",
    "topicId",
    "attachments",
    "deptId",
    "staffId",
    "teamId",
    "slaId",
    "statusId",
    "emailId",
    "uid",
    "duedate",
    "system_emails",
    "thread_entry_recipients",
}
SOURCES = {"api": Source.API, "web": Source.WEB, "email": Source.EMAIL}


def _answer(status: int, text: str) -> HttpResponse:
    # osTicket answers every request in text/html with the bare message (no newline).
    return HttpResponse(text, status=status, content_type="text/html; charset=UTF-8")


class ApiError(Exception):
    def __init__(self, status: int, text: str, *, retry_after: int | None = None) -> None:
        super().__init__(text)
        self.status, self.text, self.retry_after = status, text, retry_after


@dataclass
class Request:
    """The parsed body: osTicket's fields and the files."""

    data: dict[str, Any]
    attachments: list[AttachmentUpload] = field(default_factory=list)
    body_format: str = BodyFormat.TEXT
    alert: bool = True
    autorespond: bool = True


# --- entry point ----------------------------------------------------------------------------


@csrf_exempt
def dispatch(request: HttpRequest, route: str) -> HttpResponse:
    method = (request.GET.get("_method") or request.method or "").upper()
    if method != "POST" or (route not in TICKET_ROUTES and route != CRON_ROUTE):
        return _answer(400, "URL not supported")
    api_key = None
    try:
        api_key = _authenticate(request, cron=route == CRON_ROUTE)
        _throttle(request, api_key)
        body = _read_body(request)
        if route == CRON_ROUTE:
            return _cron()
        kind = TICKET_ROUTES[route]
        if kind == "email":
            return _email(body)
        parsed = _parse_json(body) if kind == "json" else _parse_xml(body)
        return _create(parsed, request)
    except ApiError as error:
        logger.warning(
            "API error %s on %s: %s (key %s)",
            error.status,
            route,
            error.text.splitlines()[0] if error.text else "",
            api_key.prefix if api_key else "-",
        )
        response = _answer(error.status, error.text)
        if error.retry_after is not None:
            response["Retry-After"] = str(error.retry_after)
        return response


def _authenticate(request: HttpRequest, *, cron: bool) -> ApiKey:
    key = request.META.get("HTTP_X_API_KEY")
    if key is None:
        scheme, _space, credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        key = credentials if scheme.lower() == "bearer" else ""
    try:
        api_key = api_key_authenticate(key=key, ip=client_ip(request.META))
    except ApiKeyRefused as refused:
        raise ApiError(401, refused.message) from None
    if not (api_key.can_exec_cron if cron else api_key.can_create_tickets):
        raise ApiError(401, MESSAGE_NOT_AUTHORIZED)
    return api_key


def _throttle(request: HttpRequest, api_key: ApiKey) -> None:
    """The same per-key rate limit as the REST API."""
    from .throttling import ApiKeyRateThrottle

    throttle = ApiKeyRateThrottle()
    counted = SimpleNamespace(auth=api_key, user=api_key.user, META=request.META)
    if not throttle.allow_request(counted, None):
        raise ApiError(429, "Rate limit exceeded", retry_after=int(throttle.wait() or 1) + 1)


def _read_body(request: HttpRequest) -> bytes:
    limit = settings.HELPDESK_API_MAX_BODY_SIZE
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise ApiError(413, "Request body too large")
    body = request.read(limit + 1)
    if len(body) > limit:
        raise ApiError(413, "Request body too large")
    return body


# --- cron -----------------------------------------------------------------------------------


def _cron() -> HttpResponse:
    """osTicket's cron: every scheduled job that is due runs now, once (`manage.py cron`:
    mail fetch, overdue check, auto-close, purges; each claimed, so callers at the same
    moment do not run a job twice). A failing job is logged and the answer is the same."""
    import io

    from django.core.management import CommandError, call_command

    try:
        call_command("cron", stdout=io.StringIO())
    except CommandError:
        logger.warning("cron through the API: a scheduled job failed (see the log)")
    return _answer(200, "Completed")


# --- tickets.email --------------------------------------------------------------------------


def _email(raw: bytes) -> HttpResponse:
    """A raw RFC 822 message through the mail pipeline, as if the mail server piped it."""
    from mailgate import services
    from mailgate.management.commands.mailgate import recipients_of

    if not raw.strip():
        raise ApiError(400, "Email parse error: empty message")
    mailbox = services.mailbox_for_recipients(recipients_of(raw))
    message, _new = services.inbound_receive(
        raw=raw, mailbox=mailbox, channel=Mailbox.Protocol.PIPE
    )
    try:
        message = services.inbound_process(message=message)
    except Exception:  # stored and marked failed; osTicket's clients retry on 500
        raise ApiError(500, "unknown error") from None
    if message.outcome in ("banned", "rejected"):
        raise ApiError(403, _denied(message.from_email))
    if message.status == InboundStatus.FAILED:
        text = message.error or message.outcome
        raise ApiError(400, f"Unable to create new ticket: validation errors:\nemail: {text}")
    # Created, threaded into a ticket, or already processed: the ticket's number. Mail that
    # never makes a ticket (auto-replies, loops) is consumed all the same, with no number.
    return _answer(201, message.ticket.number if message.ticket else "")


def _denied(email: str) -> str:
    return f"Ticket denied: {email}\n\nThis help desk is for use by authorized users only"


# --- parsing --------------------------------------------------------------------------------


def _php_bool(value: Any) -> bool:
    """PHP's (bool) cast, which osTicket applies to JSON `alert` and `autorespond`."""
    if isinstance(value, str):
        return value not in ("", "0")
    return bool(value)


def _parse_json(body: bytes) -> Request:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "Syntax error, malformed JSON") from None
    if not data:
        # osTicket reports an empty object with the message of a parser that found nothing.
        raise ApiError(400, "No errors")
    if not isinstance(data, dict):
        raise ApiError(
            400, "Unable to create new ticket: validation errors:\nticket: Expected a JSON object"
        )
    request = Request(data=data)
    request.alert = _php_bool(data.get("alert", True))
    request.autorespond = _php_bool(data.get("autorespond", True))
    message = data.get("message")
    if isinstance(message, str) and message.startswith("data:"):
        mime, content = _data_url(message)
        data["message"] = content.decode(_charset(message), "replace")
        request.body_format = BodyFormat.HTML if mime == "text/html" else BodyFormat.TEXT
    if isinstance(data.get("phone"), str):
        data["phone"] = data["phone"].upper()
    attachments = data.get("attachments")
    for item in attachments if isinstance(attachments, list) else []:
        if not isinstance(item, dict):
            continue
        for name, url in item.items():
            if not isinstance(url, str) or not url.startswith("data:"):
                continue
            try:
                mime, content = _data_url(url, strict=True)
            except ValueError:
                logger.warning("%s: Poorly encoded base64 data", name)
                continue
            request.attachments.append(AttachmentUpload(str(name), content, mime))
    return request


def _data_url(url: str, *, strict: bool = False) -> tuple[str, bytes]:
    """An RFC 2397 data URL as osTicket reads it: one parameter (`;charset=x` or
    `;base64`), nothing percent-decoded."""
    header, _comma, content = url[5:].partition(",")
    mime, _semicolon, parameter = header.partition(";")
    mime = (mime or "text/plain").strip().lower()
    if parameter.strip().lower() == "base64":
        try:
            return mime, base64.b64decode(content, validate=strict)
        except (binascii.Error, ValueError):
            if strict:
                raise ValueError("bad base64") from None
            return mime, b""
    return mime, content.encode("utf-8")


def _charset(url: str) -> str:
    """The charset a data URL names. osTicket reads a data URL without one as ISO-8859-1;
    here text that is valid UTF-8 stays UTF-8 (a JSON string always is), so non-ASCII text
    does not turn into mojibake."""
    header = url[5:].partition(",")[0]
    for parameter in header.split(";")[1:]:
        name, _equals, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            try:
                return _codec(value.strip())
            except LookupError:
                break
    return "utf-8"


def _codec(name: str) -> str:
    import codecs

    return codecs.lookup(name).name


def _xml_text(element: ET.Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def _parse_xml(body: bytes) -> Request:
    # No DTDs at all: entity expansion and external entities are never needed by a ticket, and
    # without a DTD the standard parser has nothing to expand (what defusedxml guards).
    upper = body.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
        raise ApiError(400, "XML error: DOCTYPE is not allowed at line 1:0")
    parser = ET.XMLParser()  # noqa: S314 (no DTD can reach it, see above)
    try:
        parser.feed(body)
        root = parser.close()
    except ET.ParseError as error:
        line, column = error.position
        message = str(error).split(":")[0]
        raise ApiError(400, f"XML error: {message} at line {line}:{column}") from None
    data: dict[str, Any] = {key: value.strip() for key, value in root.attrib.items()}
    request = Request(data=data)
    for child in root:
        if child.tag == "attachments":
            for file in child.findall("file"):
                name = file.get("name", "attachment")
                content = (file.text or "").strip()
                if (file.get("encoding") or "").lower() == "base64":
                    try:
                        raw = base64.b64decode(content, validate=True)
                    except (binascii.Error, ValueError):
                        logger.warning("%s: Poorly encoded base64 data", name)
                        continue
                else:
                    raw = content.encode("utf-8")
                request.attachments.append(AttachmentUpload(name, raw, file.get("type", "")))
        elif child.tag == "message":
            data["message"] = _xml_text(child)
            kind = (child.get("type") or "text/plain").lower()
            request.body_format = BodyFormat.HTML if kind == "text/html" else BodyFormat.TEXT
        else:
            data[child.tag] = _xml_text(child)
    for flag in ("alert", "autorespond"):
        value = str(data.get(flag, "true")).strip().lower()
        setattr(request, flag, value not in ("false", "0"))
    return request


# --- creating -------------------------------------------------------------------------------


def _as_int(value: Any) -> int | None:
    """A positive id, or None (osTicket quietly ignores ids it cannot use)."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**63 else None


def _validation_failed(errors: dict[str, str]) -> ApiError:
    lines = "\n".join(f"{key}: {message}" for key, message in errors.items())
    return ApiError(400, f"Unable to create new ticket: validation errors:\n{lines}")


def _create(parsed: Request, http_request: HttpRequest) -> HttpResponse:
    data = parsed.data
    for key in data:
        if key not in KNOWN_FIELDS:
            logger.warning("%s: Unexpected data received in API request", key)
    text = {key: data.get(key) if isinstance(data.get(key), str) else "" for key in data}
    errors: dict[str, str] = {}
    for key, message in (
        ("email", "Valid email required"),
        ("name", "Valid name required"),
        ("subject", "Subject required"),
        ("message", "Message content required"),
    ):
        if not (text.get(key) or "").strip():
            errors[key] = message
    source_name = str(data.get("source") or "API").strip().lower()
    source = SOURCES.get(source_name)
    if source is None:
        errors["source"] = "Invalid ticket origin given"
    topic_id = _as_int(data.get("topicId"))
    topic = HelpTopic.objects.filter(pk=topic_id, is_active=True).first() if topic_id else None
    if source == Source.WEB and topic is None:
        errors["topicId"] = "Help topic selection is required"
    if source == Source.EMAIL:
        email_id = _as_int(data.get("emailId"))
        if not email_id or not Mailbox.objects.filter(pk=email_id).exists():
            errors["emailId"] = "Unknown system email"
    if errors:
        raise _validation_failed(errors)

    email = text["email"].strip()
    if sender_banned(email) is not None:
        raise ApiError(403, _denied(email))
    priority_id = _as_int(data.get("priorityId")) or _as_int(data.get("priority"))
    department_id = _as_int(data.get("deptId"))
    draft = TicketDraft(
        subject=text["subject"],
        body=text["message"],
        body_format=parsed.body_format,
        email=email,
        name=text["name"].strip(),
        help_topic=topic,
        department=(
            Department.objects.filter(pk=department_id, is_active=True).first()
            if department_id
            else None
        ),
        priority=Priority.objects.filter(pk=priority_id).first() if priority_id else None,
        source=source,
        attachments=_usable(parsed.attachments),
        auto_respond=parsed.autorespond,
        alert=parsed.alert,
        phone=text.get("phone", "").strip(),
        notes=text.get("notes", "").strip(),
        # The address the client names, else its own (as osTicket does).
        ip_address=text.get("ip", "").strip() or client_ip(http_request.META),
    )
    try:
        ticket = ticket_open(draft=draft)
    except DraftRejected:
        raise ApiError(403, _denied(email)) from None
    except PermissionDenied as denied:
        raise ApiError(403, str(denied) or _denied(email)) from None
    except ValidationError as error:
        raise _validation_failed(_osticket_errors(error)) from None
    return _answer(201, ticket.number)


def _osticket_errors(error: ValidationError) -> dict[str, str]:
    names = {"body": "message", "help_topic": "topicId", "priority": "priorityId"}
    if not hasattr(error, "error_dict"):
        return {"ticket": "; ".join(error.messages)}
    return {
        names.get(key, key): "; ".join(message for item in items for message in item.messages)
        for key, items in error.error_dict.items()
    }


def _usable(uploads: list[AttachmentUpload]) -> list[AttachmentUpload]:
    """As osTicket, one bad file does not fail the request: it is left out (and logged)."""
    usable = []
    for upload in uploads:
        name = files.clean_filename(upload.name)
        content_type = files.guess_content_type(name, upload.content_type)
        if len(upload.content) > config().max_attachment_size:
            logger.warning("%s: larger than the attachment limit; left out", name)
            continue
        try:
            files.check_image(name, content_type, upload.content)
        except ValidationError:
            logger.warning("%s: not a valid image; left out", name)
            continue
        usable.append(upload)
    return usable


__all__ = ["MESSAGE_REQUIRED", "dispatch"]
