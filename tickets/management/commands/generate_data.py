"""Generate a large, realistic data set quickly, for benchmarks and trying the UI at scale.

    python manage.py generate_data --tickets 100000 [--seed 42] [--entries-min 3 --entries-max 10]

Unlike `demo_data`, nothing goes through the services: rows are built as plain values and
written per batch of tickets in one transaction each (COPY on PostgreSQL, `bulk_create`
elsewhere; see `RowWriter`), so no signal fires, no mail is queued and 100,000 tickets take
minutes rather than hours. The rows are the ones the services would write:
each ticket has its thread, 3 to 10 entries (customer messages, agent responses, internal notes)
with `body_html` rendered through the one sanitiser, the audit events (created, assigned,
one per entry, status changes, overdue), attachment rows pointing at a few shared stored
files, SLA due dates (open tickets past their due date are marked overdue) and its search
document (`tickets.search.document_build`).

Bodies are assembled from a pool of paragraphs; each distinct paragraph, greeting and
sign-off is rendered once and the rendered parts are joined, which gives the same HTML as
rendering the whole body (paragraphs are separated by a blank line) at a fraction of the cost.

Also made: departments, help topics, teams, SLA plans, agents with roles, extended access
and teams, organizations (some sharing their tickets, with email domains) and customers.
One ticket has exactly 50 entries (the ticket-page benchmark); the command prints its
number and two logins with a password: an agent who works in every department and a
customer of an organization that shares its tickets.

It refuses a help desk that already has tickets: the generated people and numbers would
clash with existing ones.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import itertools
import json
import random
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, models, transaction
from django.utils import timezone

from accounts.models import (
    Agent,
    AgentDepartmentAccess,
    Organization,
    OrganizationDomain,
    Role,
    User,
    UserEmail,
)
from helpdesk.lib import files
from helpdesk.lib.sanitize import render_markdown, render_text
from routing.models import Department, HelpTopic, Team
from sla.models import SLAPlan
from tickets import search
from tickets.models import (
    Attachment,
    BodyFormat,
    Collaborator,
    EntryKind,
    EventAction,
    Priority,
    Source,
    StatusState,
    Thread,
    ThreadEntry,
    ThreadEvent,
    Ticket,
    TicketStatus,
)
from tickets.numbers import digit_count, number_format

DEFAULT_SEED = 42
DEFAULT_TICKETS = 1000
MAX_TICKETS = 2_000_000
BATCH = 1000  # tickets per transaction
LONG_THREAD = 50  # entries of the ticket the ticket-page benchmark opens
SEARCH_WORD = "printer"  # a common word in subjects and bodies, for the search benchmark
YEARS = 2  # tickets are spread over this many years

AGENT_EMAIL = "agent@bench.example"
CUSTOMER_EMAIL = "customer@acme.example"
DEFAULT_PASSWORD = "bench-password-1"  # noqa: S105 - a made-up data set's login

# --- the organisation of the help desk ------------------------------------------------------

# name: (parent, share of the tickets). "Support" comes from the routing migration.
DEPARTMENTS: dict[str, tuple[str | None, int]] = {
    "Support": (None, 38),
    "Billing": (None, 14),
    "Sales": (None, 9),
    "IT Operations": (None, 12),
    "Network": ("IT Operations", 9),
    "Facilities": (None, 10),
    "Human Resources": (None, 8),
}
# Help topics: name -> (department, priority name or None).
TOPICS: dict[str, tuple[str, str | None]] = {
    "Report a Problem": ("Support", "Normal"),
    "General Inquiry": ("Support", "Normal"),
    "Feedback": ("Support", "Low"),
    "Billing question": ("Billing", "Normal"),
    "Refunds": ("Billing", "High"),
    "Sales inquiry": ("Sales", "Normal"),
    "Outage": ("IT Operations", "High"),
    "Access request": ("IT Operations", "Normal"),
    "Network & VPN": ("Network", "Normal"),
    "Office & building": ("Facilities", "Low"),
    "Payroll & benefits": ("Human Resources", "Normal"),
}
TEAMS = {
    "Level I Support": ["Support"],
    "Level II Support": ["Support", "IT Operations"],
    "Network Team": ["Network", "IT Operations"],
    "Billing Team": ["Billing", "Sales"],
    "Workplace Team": ["Facilities", "Human Resources"],
}
ROLE_WEIGHTS = {"All Access": 45, "Expanded Access": 30, "Limited Access": 18, "View Only": 7}

# Final status of a ticket -> share. Open-state tickets are recent; the others span the years.
STATUS_WEIGHTS = {
    "Open": 17,
    "In Progress": 9,
    "Waiting on Customer": 6,
    "Resolved": 9,
    "Closed": 49,
    "Archived": 8,
    "Deleted": 2,
}
PRIORITY_WEIGHTS = {"Emergency": 3, "High": 17, "Normal": 60, "Low": 20}
SOURCE_WEIGHTS = {Source.WEB: 42, Source.EMAIL: 43, Source.PHONE: 9, Source.API: 6}
# SLA plans in calendar hours: name -> (first response, resolution).
SLA_PLANS = {"Standard": (8, 120), "Priority": (2, 24)}

# --- words ----------------------------------------------------------------------------------

FIRST_NAMES = (  # noqa: SIM905 (a word list reads better as one string)
    "Alice Brian Chloe Daniel Elena Farid Hannah Ivan Julia Kevin Laura Mateo Nina Oliver Paula "
    "Quentin Rosa Samuel Tara Uma Victor Wendy Xavier Yara Zoë Aaron Bianca Carlos Diana Ethan "
    "Fatima Gustav Hiro Ingrid Jamal Kateřina Liam Mei Noah Olga Pedro Rania Sven Tomás Ursula "
    "Vera William Ximena Yusuf Zainab Amélie Bruno Camille Dmitri Emma Felix Grace Hugo Isla"
).split()
LAST_NAMES = (  # noqa: SIM905
    "Johnson O'Neill Martin Novak Rossi Rahman Berg Petrov Santos Walsh Schmidt Garcia Kowalski "
    "Brown Silva Dubois Jimenez Okafor Singh Iyer Lindqvist Clarke Moreau Nasser Turner Blake "
    "Conti Mendes Popescu Wright Zahra Andersen Becker Chen Dvořák Evans Fischer Gonzalez Haddad "
    "Ito Jensen Kim Larsen Müller Nowak Ortiz Park Quinn Reyes Sato Tanaka Usman Vogel Wójcik "
    "Yilmaz Zimmermann Abbott Baker Costa"
).split()
ORG_WORDS = (  # noqa: SIM905
    "Blue Harbor North River Summit Oak Pine Granite Silver Maple Cedar Iron Bright Falcon "
    "Lakeside Redwood Golden Crystal Meadow Stone Atlas Orbit Nova Vertex Pioneer Beacon"
).split()
ORG_KINDS = (  # noqa: SIM905
    "Logistics Foods Clinics Legal Studios Robotics Realty Insurance Energy Media Hotels "
    "Consulting Labs Textiles Dental Motors Schools Pharmacy Bakery Architects"
).split()

# What a ticket is about, with its share of tickets: the subject and every entry of a ticket
# talk about the same device, so the search word matches about one ticket in seven.
DEVICES = {
    SEARCH_WORD: 14,
    "laptop": 16,
    "monitor": 9,
    "docking station": 7,
    "desk phone": 7,
    "headset": 8,
    "scanner": 5,
    "keyboard": 6,
    "webcam": 7,
    "tablet": 6,
    "mobile phone": 15,
}
APPS = [
    "the CRM",
    "the billing portal",
    "the mobile app",
    "the intranet",
    "the expense tool",
    "email",
    "the shared calendar",
    "the file share",
    "the time sheet tool",
    "the customer website",
]
ERRORS = [
    "Error 500: internal server error",
    "Access denied (code 403)",
    "The connection timed out",
    "Invalid credentials",
    "Unexpected token in JSON at position 0",
    "Paper jam in tray 2",
    "Certificate not trusted",
    "Quota exceeded",
    "Session expired, please sign in again",
    "Device not recognised",
]
HOSTS = ["web-01", "db-02", "files-03", "mail-01", "print-01", "vpn-gw", "app-04", "backup-02"]

# Subject templates per department; {device} {app} {error} {host} {n} {floor} are filled in.
SUBJECTS: dict[str, list[str]] = {
    "Support": [
        "{Device} not working after the update",
        "Cannot sign in to {app}",
        "{App} is very slow since this morning",
        "Error when opening {app}: {error}",
        "Password reset link has expired",
        "{Device} keeps disconnecting",
        "How do I export reports from {app}?",
        "New {device} for a new starter",
        "{Device} shows an error: {error}",
        "Page shows <b>undefined</b> instead of my name",
        "Two-factor codes are refused",
        "Request: access to {app}",
    ],
    "Billing": [
        "Invoice INV-{n} is wrong",
        "Refund for order {n}",
        "We were charged twice this month",
        "Update the card on file",
        "VAT number missing on invoice INV-{n}",
        "Cancel our subscription",
        "Question about the {device} lease on our bill",
    ],
    "Sales": [
        "Quote for {n} seats",
        "Upgrade to the Business plan",
        "Discount for non-profits?",
        "Trial extension request",
        "Bulk order of {device}s for our office",
    ],
    "IT Operations": [
        "Server {host} is down",
        "Backup job failed on {host}",
        "Disk almost full on {host}",
        "Certificate expiring on {host}",
        "{App} unreachable: {error}",
        "Print server {host} not accepting jobs",
    ],
    "Network": [
        "VPN drops every few minutes",
        "Wi-Fi on floor {floor} is slow",
        "Cannot reach {host} from the office",
        "Network {device} on floor {floor} is offline",
        "Firewall blocks {app}",
    ],
    "Facilities": [
        "Heating broken in room {floor}{n}",
        "{Device} on floor {floor} is out of toner",
        "Badge does not open the door on floor {floor}",
        "Request a new desk chair",
        "Meeting room {floor}{n} projector not working",
    ],
    "Human Resources": [
        "Payslip for last month missing",
        "Question about parental leave",
        "Update my bank details",
        "Holiday balance looks wrong",
        "Onboarding checklist for a new starter",
    ],
}

# Sentences of customer messages; filled with the same slots as subjects.
CUSTOMER_SENTENCES = [
    "It started {when}, right after {event}.",
    "I already tried restarting the {device}, but nothing changed.",
    'The message says "{error}".',
    "This is blocking {impact}.",
    "Could you have a look as soon as possible?",
    "Colleagues on floor {floor} see the same thing.",
    "It happens every time I open {app}.",
    "I attached a screenshot of what I see.",
    "We need this sorted before {deadline}.",
    "Is there a workaround in the meantime?",
    "Our reference is {n}, if that helps.",
    "The {device} used to work fine.",
    "I am not sure whether this is the right department for this.",
    "Sorry to bother you again about this.",
    "It only happens on the {device} in the meeting room, not at my desk.",
    "I can reproduce it: open {app}, click Export, wait a minute, and it fails.",
]
FOLLOW_UP_SENTENCES = [
    "Thanks for the quick answer.",
    'I tried that, but the {device} still shows "{error}".',
    "It works now, thank you!",
    "Here is the extra information you asked for.",
    "The problem came back {when}.",
    "My manager asked me to follow up on this.",
    "I am available for a call {deadline}.",
    "The screenshot is attached; the error appears after about two minutes.",
    "Restarting helped for a while, then it failed again.",
    "Any news on this?",
]
AGENT_SENTENCES = [
    "Thanks for reaching out, I'm looking into this now.",
    "Could you send us a screenshot of the error and the time it happened?",
    "I've reset the settings on our side; please try again and let me know.",
    "This is a known issue with {app} and a fix is planned for this week.",
    "Please restart the {device} and check whether the problem persists.",
    "I've escalated this to our second-level team, who will get back to you.",
    "The **{device}** driver was out of date; I pushed the new version to your machine.",
    "You can find the steps in our guide: https://help.example/articles/{n}",
    "As a workaround, use the web version of {app} until the fix is rolled out.",
    "I've credited the amount to your account; it shows on your next invoice.",
    "Could you confirm which office and floor you are on?",
    "The issue is fixed on our side. Let us know if you still see it.",
    "Steps that usually help:\n\n1. Sign out of {app}\n2. Clear the browser cache\n"
    "3. Sign in again",
    "Our logs show `{error}` at that time; I'm checking with the vendor.",
]
NOTE_SENTENCES = [
    "Checked the logs on {host}: nothing unusual before {when}.",
    "Same issue as last month, see the earlier ticket from this customer.",
    "Waiting for the vendor to confirm the fix.",
    "Customer is on the **Business** plan, priority support applies.",
    "Asked the network team to look at floor {floor}.",
    "Do not close before the customer confirms.",
    "Replaced the {device}; the old one goes back to the store room.",
    "Possible duplicate of another report from the same organization.",
    "Escalated to Level II: needs admin rights on {host}.",
]
WHEN = [
    "this morning",
    "yesterday afternoon",
    "on Monday",
    "last week",
    "after lunch",
    "two days ago",
]
EVENTS = [
    "the latest update",
    "the office move",
    "a power cut",
    "the password change",
    "we switched to the new {app}",
]
IMPACTS = [
    "the whole team",
    "our month-end closing",
    "a customer demo",
    "new starters",
    "payroll",
    "our shipping",
]
DEADLINES = ["Friday", "the end of the month", "tomorrow morning", "next week", "this afternoon"]
GREETINGS_CUSTOMER = ["Hi,", "Hello,", "Hello team,", "Good morning,", "Hi support,"]
SIGNOFFS_CUSTOMER = ["Thanks,\n{name}", "Best regards,\n{name}", "{name}", "Cheers,\n{name}"]
SIGNOFFS_AGENT = ["Best,\n{name}", "Kind regards,\n{name}", "Thanks,\n{name}"]
ATTACHMENT_NAMES = [
    ("screenshot-{n}.png", "png"),
    ("photo_{n}.png", "png"),
    ("error-{n}.log", "log"),
    ("invoice-{n}.pdf", "pdf"),
    ("scan {n}.pdf", "pdf"),
]


def _slug(text: str) -> str:
    """ASCII letters and digits of `text`, lower case: for generated email addresses."""
    ascii_text = text.encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "", ascii_text.lower()) or "x"


class Picker:
    """Weighted choices with a precomputed cumulative table (`random.choices` recomputes it)."""

    def __init__(self, rng: random.Random, items: Sequence[Any], weights: Sequence[float]) -> None:
        self.rng, self.items = rng, list(items)
        self.cumulative = list(itertools.accumulate(weights))
        self.total = self.cumulative[-1]

    def __call__(self) -> Any:
        return self.items[bisect.bisect(self.cumulative, self.rng.random() * self.total)]


class Renderer:
    """Rendered HTML of body parts, each distinct part rendered once through the sanitiser."""

    def __init__(self) -> None:
        self.cache: dict[tuple[str, str], str] = {}

    def part(self, text: str, body_format: str) -> str:
        key = (body_format, text)
        html = self.cache.get(key)
        if html is None:
            if body_format == BodyFormat.MARKDOWN:
                html = str(render_markdown(text))
            else:
                html = str(render_text(text))
            self.cache[key] = html
        return html

    def body(self, parts: list[str], body_format: str) -> tuple[str, str]:
        """The body (parts separated by blank lines) and its rendered HTML."""
        joiner = "\n" if body_format == BodyFormat.MARKDOWN else "\n\n"
        return "\n\n".join(parts), joiner.join(self.part(p, body_format) for p in parts)


@dataclass
class People:
    agents: list[User] = field(default_factory=list)
    # department id -> agents (users) who may answer its tickets
    answerers: dict[int, list[User]] = field(default_factory=dict)
    teams_by_department: dict[int, list[Team]] = field(default_factory=dict)
    customers: list[User] = field(default_factory=list)
    members: dict[int, list[User]] = field(default_factory=dict)  # organization id -> users
    agent: User | None = None
    customer: User | None = None


@contextlib.contextmanager
def timestamps_as_given() -> Iterator[None]:
    """Keep the `updated_at` values we set: `auto_now` would stamp every row with now."""
    fields = [Ticket._meta.get_field("updated_at"), ThreadEntry._meta.get_field("updated_at")]
    saved = [f.auto_now for f in fields]  # type: ignore[union-attr]
    try:
        for f in fields:
            f.auto_now = False  # type: ignore[union-attr]
        yield
    finally:
        for f, value in zip(fields, saved, strict=True):
            f.auto_now = value  # type: ignore[union-attr]


def _png() -> bytes:
    """A small real PNG (a gradient), so the image checks and thumbnails have a real image."""
    from PIL import Image

    image = Image.new("RGB", (320, 200))
    image.putdata([(x % 256, (x + y) % 256, (2 * y) % 256) for y in range(200) for x in range(320)])
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _pdf() -> bytes:
    body = b"BT /F1 18 Tf 40 100 Td (Invoice) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(body), body),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = io.BytesIO(), []
    out.write(b"%PDF-1.4\n")
    for number, obj in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, obj))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def _log() -> bytes:
    lines = [
        f"2026-03-0{1 + i % 9}T10:{i % 60:02d}:00Z ERROR spooler: job {1000 + i} failed: "
        f"{ERRORS[i % len(ERRORS)]}"
        for i in range(60)
    ]
    return ("\n".join(lines) + "\n").encode()


@dataclass
class Line:
    """One entry of a ticket's conversation, before it is saved."""

    kind: str
    author: User
    moment: datetime
    body: str
    body_format: str
    html: str


ENTRY_EVENTS = {
    EntryKind.MESSAGE: EventAction.MESSAGE,
    EntryKind.RESPONSE: EventAction.RESPONSE,
    EntryKind.NOTE: EventAction.NOTE,
}


@dataclass
class StoredFile:
    path: str
    digest: str
    size: int
    content_type: str


@dataclass
class TicketPlan:
    """A ticket about to be written: what its row, entries and events are made from."""

    number: str
    long_thread: bool
    status: TicketStatus
    customer: User
    department: Department
    department_name: str
    topic: HelpTopic | None
    priority: Priority
    assignee: User | None
    team: Team | None
    source: str
    sla: SLAPlan
    opened: datetime
    subject: str = ""
    story: list[Line] = field(default_factory=list)
    closer: User | None = None
    closed_at: datetime | None = None
    first_response_due_at: datetime | None = None
    resolution_due_at: datetime | None = None
    due_at: datetime | None = None
    is_overdue: bool = False
    sla_paused_at: datetime | None = None
    document: str = ""
    ticket_id: int = 0
    thread_id: int = 0

    @property
    def user(self) -> User:  # what `search.document_build` reads, as on a ticket
        return self.customer

    @property
    def updated(self) -> datetime:
        return self.closed_at or self.story[-1].moment

    def clock(self, now: datetime) -> None:
        """SLA due dates as the SLA clock keeps them (the plans count calendar hours)."""
        first, resolution = SLA_PLANS[self.sla.name]
        self.first_response_due_at = self.opened + timedelta(hours=first)
        self.resolution_due_at = self.opened + timedelta(hours=resolution)
        if self._first_response() is None:
            self.due_at = min(self.first_response_due_at, self.resolution_due_at)
        else:
            self.due_at = self.resolution_due_at
        if self.status.state != StatusState.OPEN:
            return
        if self.status.pauses_sla:
            # Waiting on the customer since the last entry: the clock stopped then.
            self.sla_paused_at = self.story[-1].moment
            self.is_overdue = self.due_at < self.sla_paused_at
        else:
            self.is_overdue = self.due_at < now

    def _first_response(self) -> datetime | None:
        return next((ln.moment for ln in self.story if ln.kind == EntryKind.RESPONSE), None)

    def ticket_row(self) -> dict[str, Any]:
        messages = [ln.moment for ln in self.story if ln.kind == EntryKind.MESSAGE]
        responses = [ln.moment for ln in self.story if ln.kind == EntryKind.RESPONSE]
        spoken = [ln.kind for ln in self.story if ln.kind != EntryKind.NOTE]
        return {
            "id": self.ticket_id,
            "number": self.number,
            "subject": self.subject[:255],
            "user_id": self.customer.pk,
            "organization_id": self.customer.organization_id,
            "department_id": self.department.pk,
            "help_topic_id": self.topic.pk if self.topic else None,
            "status_id": self.status.pk,
            "priority_id": self.priority.pk,
            "assignee_id": self.assignee.pk if self.assignee else None,
            "team_id": self.team.pk if self.team else None,
            "source": self.source,
            "sla_id": self.sla.pk,
            "first_response_due_at": self.first_response_due_at,
            "resolution_due_at": self.resolution_due_at,
            "due_at": self.due_at,
            "is_overdue": self.is_overdue,
            "sla_paused_at": self.sla_paused_at,
            "overdue_at": self.due_at if self.is_overdue else None,
            "is_answered": spoken[-1] == EntryKind.RESPONSE,
            "closed_at": self.closed_at,
            "closed_by_id": self.closer.pk if self.closer else None,
            "first_response_at": responses[0] if responses else None,
            "last_message_at": messages[-1],
            "last_response_at": responses[-1] if responses else None,
            "search_document": self.document,
            "created_at": self.opened,
            "updated_at": self.updated,
        }

    def events(self) -> list[dict[str, Any]]:
        """The audit events besides one per entry: created, assigned, status, overdue."""

        def event(action: str, actor: User | None, data: dict, at: datetime) -> dict[str, Any]:
            return {
                "thread_id": self.thread_id,
                "action": action,
                "actor_id": actor.pk if actor else None,
                "actor_name": actor.name if actor else "",
                "data": data,
                "created_at": at,
            }

        created = {
            "source": self.source,
            "department": self.department.name,
            "help_topic": self.topic.name if self.topic else None,
            "priority": self.priority.name,
            "auto_respond": True,
            "sla": self.sla.name,
        }
        events = [event(EventAction.CREATED, self.customer, created, self.opened)]
        if self.assignee is not None or self.team is not None:
            assigned = {
                "agent_id": self.assignee.pk if self.assignee else None,
                "agent": self.assignee.name if self.assignee else None,
                "team_id": self.team.pk if self.team else None,
                "team": self.team.name if self.team else None,
                "comment": "",
                "reason": "round-robin",
            }
            events.append(
                event(EventAction.ASSIGNED, None, assigned, self.opened + timedelta(seconds=1))
            )
        name, state = self.status.name, self.status.state
        if state == StatusState.OPEN:
            if name != "Open":
                change = {"from": "Open", "to": name, "comment": ""}
                events.append(event(EventAction.STATUS, self.assignee, change, self.updated))
            if self.is_overdue and self.due_at is not None:
                due = {"due_at": self.due_at.isoformat()}
                events.append(event(EventAction.OVERDUE, None, due, self.due_at))
            return events
        assert self.closed_at is not None
        closed = {"from": "Open", "to": name if state == StatusState.CLOSED else "Closed"}
        events.append(
            event(EventAction.CLOSED, self.closer, {**closed, "comment": ""}, self.closed_at)
        )
        if state != StatusState.CLOSED:  # archived or deleted after closing
            later = self.closed_at + timedelta(seconds=1)
            change = {"from": "Closed", "to": name, "comment": ""}
            events.append(event(EventAction.STATUS, self.closer, change, later))
        return events


class RowWriter:
    """Writes the rows of one model: COPY on PostgreSQL, `bulk_create` elsewhere.

    Rows are dicts by attribute name; a missing field takes the model's default (a missing
    field without one is a `KeyError`, not a silent NULL). Ids are reserved up front, so
    rows can point at each other before they are written: from the table's sequence on
    PostgreSQL, counting on from the highest id elsewhere (SQLite and MariaDB move their
    counters past explicit ids)."""

    def __init__(self, model: type[models.Model]) -> None:
        self.model = model
        self.fields = list(model._meta.concrete_fields)
        self.attnames = [f.attname for f in self.fields]
        self.defaults = {
            f.attname: f.get_default()
            for f in self.fields
            if not f.primary_key and (f.has_default() or f.null or f.empty_strings_allowed)
        }
        self.copy = connection.vendor == "postgresql"
        self.json = [isinstance(f, models.JSONField) and self.copy for f in self.fields]
        self.rows: list[dict[str, Any]] = []
        self.next_id: int | None = None

    def reserve(self, count: int) -> int:
        """The first of `count` consecutive ids nobody else will be given."""
        if count <= 0:
            return 0
        table = self.model._meta.db_table
        pk = self.model._meta.pk.column
        if self.copy:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT setval(pg_get_serial_sequence(%s, %s), "
                    "nextval(pg_get_serial_sequence(%s, %s)) + %s - 1)",
                    [table, pk, table, pk, count],
                )
                return cursor.fetchone()[0] - count + 1
        if self.next_id is None:
            highest = self.model.objects.aggregate(highest=models.Max("pk"))["highest"]
            self.next_id = (highest or 0) + 1
        first, self.next_id = self.next_id, self.next_id + count
        return first

    def add(self, values: dict[str, Any]) -> None:
        self.rows.append(values)

    def flush(self) -> int:
        rows, self.rows = self.rows, []
        if not rows:
            return 0
        missing = [row for row in rows if "id" not in row]
        first = self.reserve(len(missing))
        for offset, row in enumerate(missing):
            row["id"] = first + offset
        defaults = self.defaults
        if self.copy:
            qn = connection.ops.quote_name
            columns = ", ".join(qn(f.column) for f in self.fields)
            sql = f"COPY {qn(self.model._meta.db_table)} ({columns}) FROM STDIN"
            with connection.cursor() as cursor, cursor.copy(sql) as copy:
                for row in rows:
                    values = [row[a] if a in row else defaults[a] for a in self.attnames]
                    for i, is_json in enumerate(self.json):
                        if is_json:
                            values[i] = json.dumps(values[i])
                    copy.write_row(values)
        else:
            objects = [
                self.model(**{a: row[a] if a in row else defaults[a] for a in self.attnames})
                for row in rows
            ]
            self.model.objects.bulk_create(objects, batch_size=500)
        return len(rows)


class Generator:
    """Builds the help desk: `setup` (people and routing), `run` (tickets), `finish`."""

    def __init__(
        self,
        *,
        tickets: int,
        seed: int,
        entries_min: int,
        entries_max: int,
        password: str,
        now: datetime,
        log: Any,
    ) -> None:
        self.count = tickets
        self.rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets
        self.entries_min, self.entries_max = entries_min, entries_max
        self.password = password
        self.now = now
        self.log = log
        self.renderer = Renderer()
        self.people = People()
        self.totals: dict[str, int] = {}
        self.long_ticket = ""
        self.write_seconds: dict[str, float] = {}  # time spent writing each table

    # --- setup: the help desk's organisation -------------------------------------------------

    def setup(self) -> None:
        rng = self.rng
        self.statuses = {s.name: s for s in TicketStatus.objects.all()}
        missing = set(STATUS_WEIGHTS) - set(self.statuses)
        if missing:
            raise CommandError(f"Missing ticket statuses: {', '.join(sorted(missing))}.")
        self.priorities = {p.name: p for p in Priority.objects.all()}
        roles = {r.name: r for r in Role.objects.filter(name__in=ROLE_WEIGHTS)}
        if set(roles) != set(ROLE_WEIGHTS) or set(self.priorities) < set(PRIORITY_WEIGHTS):
            raise CommandError("The default roles and priorities are missing; run migrate first.")
        since = self.now - timedelta(days=365 * YEARS + 30)

        self.departments: dict[str, Department] = {}
        for name, (parent, _weight) in DEPARTMENTS.items():
            parent_obj = self.departments[parent] if parent else None
            self.departments[name], _ = Department.objects.get_or_create(
                name=name, parent=parent_obj
            )
        self.department_names = {d.pk: name for name, d in self.departments.items()}
        self.topics_by_department: dict[int, list[HelpTopic]] = {}
        for order, (name, (department, priority)) in enumerate(TOPICS.items(), start=1):
            topic, _ = HelpTopic.objects.get_or_create(
                name=name,
                parent=None,
                defaults={
                    "department": self.departments[department],
                    "priority": self.priorities.get(priority or ""),
                    "sort_order": order,
                },
            )
            self.topics_by_department.setdefault(self.departments[department].pk, []).append(topic)
        self.plans = {
            name: SLAPlan.objects.get_or_create(
                name=name,
                defaults={
                    "first_response_hours": Decimal(first),
                    "resolution_hours": Decimal(resolution),
                },
            )[0]
            for name, (first, resolution) in SLA_PLANS.items()
        }
        teams = {name: Team.objects.get_or_create(name=name)[0] for name in TEAMS}
        for name, departments in TEAMS.items():
            for department in departments:
                self.people.teams_by_department.setdefault(
                    self.departments[department].pk, []
                ).append(teams[name])

        # Agents: about one per 500 tickets, at least 12, at most 200.
        agent_count = max(12, min(200, self.count // 500))
        department_pick = Picker(
            rng, list(self.departments.values()), [w for _p, w in DEPARTMENTS.values()]
        )
        role_pick = Picker(rng, [roles[n] for n in ROLE_WEIGHTS], list(ROLE_WEIGHTS.values()))
        agent_password = make_password(self.password)
        users, specs = [], []
        names = self._names(agent_count + 1)
        for i in range(agent_count + 1):
            first, last = names[i]
            if i == 0:
                email, name = AGENT_EMAIL, "Sam Rivera"
                department, role = self.departments["Support"], roles["All Access"]
            else:
                email = f"{_slug(first)}.{_slug(last)}{i}@helpdesk.example"
                name = f"{first} {last}"
                department, role = department_pick(), role_pick()
            users.append(User(email=email, name=name, password=agent_password, created_at=since))
            specs.append((department, role))
        User.objects.bulk_create(users)
        UserEmail.objects.bulk_create(
            UserEmail(user=u, email=u.email, is_primary=True, created_at=since) for u in users
        )
        agents = [
            Agent(
                user=user,
                department=department,
                role=role,
                assigned_only=i > 0 and rng.random() < 0.04,
                on_vacation=i > 0 and rng.random() < 0.03,
                signature=f"{user.name}\n{department.name}",
                created_at=since,
            )
            for i, (user, (department, role)) in enumerate(zip(users, specs, strict=True))
        ]
        Agent.objects.bulk_create(agents)
        access = []
        for i, agent in enumerate(agents):
            if i == 0:
                # The benchmark's agent works in every department: the biggest queues.
                others = [d for d in self.departments.values() if d.pk != agent.department_id]
                access += [
                    AgentDepartmentAccess(agent=agent, department=d, role=roles["All Access"])
                    for d in others
                ]
            elif rng.random() < 0.2:
                other = department_pick()
                if other.pk != agent.department_id:
                    access.append(
                        AgentDepartmentAccess(
                            agent=agent, department=other, role=roles["Expanded Access"]
                        )
                    )
        AgentDepartmentAccess.objects.bulk_create(access)
        departments_of: dict[int, set[int]] = {a.pk: {a.department_id} for a in agents}
        for row in access:
            departments_of[row.agent_id].add(row.department_id)
        memberships = []
        for name, team in teams.items():
            team_departments = {self.departments[d].pk for d in TEAMS[name]}
            members = [a for a in agents if departments_of[a.pk] & team_departments]
            chosen = [a for a in members if a is agents[0] or rng.random() < 0.5]
            memberships += [Team.members.through(team=team, agent=a) for a in chosen]
            if chosen:
                team.lead = chosen[0]
                team.save(update_fields=["lead", "updated_at"])
        Team.members.through.objects.bulk_create(memberships)
        for agent, user in zip(agents, users, strict=True):
            if agent.role.name == "View Only":
                continue
            for department_id in departments_of[agent.pk]:
                self.people.answerers.setdefault(department_id, []).append(user)
        for department in self.departments.values():
            if department.pk not in self.people.answerers:
                self.people.answerers[department.pk] = [users[0]]
        self.people.agents, self.people.agent = users, users[0]

        # Organizations (one per 200 tickets, a third share their tickets) and customers
        # (one per 8 tickets, 70 % in an organization).
        org_count = max(2, min(5000, self.count // 200))
        org_names = self._org_names(org_count)
        organizations = [
            Organization(
                name=name,
                share_tickets=i == 0 or rng.random() < 0.33,
                created_at=since,
                notes="" if rng.random() < 0.7 else "Key account, renewal in March.",
            )
            for i, name in enumerate(org_names)
        ]
        Organization.objects.bulk_create(organizations)
        domains = ["acme.example"] + [f"{_slug(name)}.example" for name in org_names[1:]]
        OrganizationDomain.objects.bulk_create(
            OrganizationDomain(organization=o, domain=d)
            for o, d in zip(organizations, domains, strict=True)
        )
        customer_count = max(20, min(250_000, self.count // 8))
        # Zipf-like organization sizes: a few large customers, many small ones.
        org_pick = Picker(rng, range(org_count), [1 / (k + 1) ** 0.7 for k in range(org_count)])
        free_domains = ["example.net", "example.org", "mail.example", "post.example"]
        names = self._names(customer_count)
        customers = []
        for i in range(customer_count):
            first, last = names[i]
            if i == 0:
                org_index, email = 0, CUSTOMER_EMAIL
                password = make_password(self.password)
            else:
                org_index = org_pick() if rng.random() < 0.7 else None
                domain = domains[org_index] if org_index is not None else rng.choice(free_domains)
                email = f"{_slug(first)}.{_slug(last)}{i}@{domain}"
                password = make_password(None)
            organization = organizations[org_index] if org_index is not None else None
            customers.append(
                User(
                    email=email,
                    name=f"{first} {last}",
                    password=password,
                    organization=organization,
                    created_at=since,
                )
            )
        User.objects.bulk_create(customers, batch_size=2000)
        UserEmail.objects.bulk_create(
            (
                UserEmail(user=u, email=u.email, is_primary=True, created_at=since)
                for u in customers
            ),
            batch_size=2000,
        )
        for customer in customers:
            if customer.organization_id is not None:
                self.people.members.setdefault(customer.organization_id, []).append(customer)
        self.people.customers, self.people.customer = customers, customers[0]
        # A few customers write most of the tickets.
        self.customer_pick = Picker(
            rng, customers, [1 / (k + 1) ** 0.5 for k in range(customer_count)]
        )
        self.department_pick = department_pick
        self.status_pick = Picker(rng, list(STATUS_WEIGHTS), list(STATUS_WEIGHTS.values()))
        self.priority_pick = Picker(
            rng, [self.priorities[n] for n in PRIORITY_WEIGHTS], list(PRIORITY_WEIGHTS.values())
        )
        self.source_pick = Picker(rng, list(SOURCE_WEIGHTS), list(SOURCE_WEIGHTS.values()))
        self.totals.update(
            departments=len(self.departments),
            agents=len(users),
            organizations=org_count,
            customers=customer_count,
        )

    def _names(self, count: int) -> list[tuple[str, str]]:
        pairs = [(f, last) for f in FIRST_NAMES for last in LAST_NAMES]
        self.rng.shuffle(pairs)
        return [pairs[i % len(pairs)] for i in range(count)]

    def _org_names(self, count: int) -> list[str]:
        combos = [f"{a} {b}" for a in ORG_WORDS for b in ORG_KINDS]
        self.rng.shuffle(combos)
        names = ["Acme Corp"]
        for i in range(count - 1):
            suffix = "" if i < len(combos) else f" {i // len(combos) + 1}"
            names.append(combos[i % len(combos)] + suffix)
        return names

    def setup_files(self) -> None:
        """Three stored files every attachment row points at (stored once, by content hash)."""
        self.files: dict[str, StoredFile] = {}
        for kind, content, content_type in (
            ("png", _png(), "image/png"),
            ("log", _log(), "text/plain"),
            ("pdf", _pdf(), "application/pdf"),
        ):
            digest = files.sha256(content)
            path = f"attachments/{digest[:2]}/{digest[2:4]}/{digest}"
            if not default_storage.exists(path):
                path = default_storage.save(path, ContentFile(content))
            self.files[kind] = StoredFile(path, digest, len(content), content_type)

    # --- text -------------------------------------------------------------------------------

    def _fill(self, template: str, *, device: str, app: str) -> str:
        rng = self.rng
        values = {
            "device": device,
            "Device": device[0].upper() + device[1:],
            "app": app,
            "App": app[0].upper() + app[1:],
            "error": rng.choice(ERRORS),
            "host": rng.choice(HOSTS),
            "n": str(rng.randint(100, 9999)),
            "floor": str(rng.randint(1, 9)),
            "when": rng.choice(WHEN),
            "event": rng.choice(EVENTS).replace("{app}", app),
            "impact": rng.choice(IMPACTS),
            "deadline": rng.choice(DEADLINES),
        }
        return template.format(**values)

    def _paragraph(self, sentences: list[str], low: int, high: int, **slots: str) -> str:
        picked = self.rng.sample(sentences, self.rng.randint(low, high))
        return " ".join(self._fill(s, **slots) for s in picked)

    def build_pools(self) -> None:
        """Paragraphs each body is made of: a few hundred, so each is rendered once."""
        rng = self.rng
        self.pools: dict[tuple[str, str], list[str]] = {}
        for device in DEVICES:
            for kind, sentences, low, high in (
                ("opening", CUSTOMER_SENTENCES, 2, 4),
                ("follow_up", FOLLOW_UP_SENTENCES, 1, 3),
                ("agent", AGENT_SENTENCES, 1, 3),
                ("note", NOTE_SENTENCES, 1, 2),
            ):
                self.pools[device, kind] = [
                    self._paragraph(sentences, low, high, device=device, app=rng.choice(APPS))
                    for _ in range(30)
                ]
        self.device_pick = Picker(rng, list(DEVICES), list(DEVICES.values()))

    def subject(self, department: str, device: str) -> str:
        template = self.rng.choice(SUBJECTS[department])
        return self._fill(template, device=device, app=self.rng.choice(APPS))[:255]

    def body(
        self, kind: str, *, author: User, customer: User, device: str, first: bool
    ) -> tuple[str, str, str]:
        """(body, body_format, body_html) of an entry of `kind` written by `author`."""
        rng, pools = self.rng, self.pools
        name = author.name
        if kind == EntryKind.MESSAGE:
            body_format = BodyFormat.TEXT
            parts = [
                rng.choice(GREETINGS_CUSTOMER),
                rng.choice(pools[device, "opening" if first else "follow_up"]),
            ]
            if first and rng.random() < 0.4:
                parts.append(rng.choice(pools[device, "opening"]))
            parts.append(rng.choice(SIGNOFFS_CUSTOMER).format(name=name.split(" ")[0]))
        elif kind == EntryKind.RESPONSE:
            body_format = BodyFormat.MARKDOWN
            parts = [f"Hi {customer.name.split(' ')[0]},", rng.choice(pools[device, "agent"])]
            if rng.random() < 0.4:
                parts.append(rng.choice(pools[device, "agent"]))
            parts.append(rng.choice(SIGNOFFS_AGENT).format(name=name))
        else:
            body_format = BodyFormat.MARKDOWN
            parts = [rng.choice(pools[device, "note"])]
        body, html = self.renderer.body(parts, body_format)
        return body, body_format, html

    # --- tickets ----------------------------------------------------------------------------

    def numbers(self) -> list[str]:
        fmt = settings.HELPDESK_TICKET_NUMBER_FORMAT
        digits = max(6, digit_count(fmt), len(str(self.count * 10)))
        values = self.rng.sample(range(10 ** (digits - 1), 10**digits), self.count)
        return [number_format(fmt, str(v)) for v in values]

    def run(self, *, batch: int = BATCH) -> None:
        numbers = self.numbers()
        # The benchmark customer owns about one ticket in 4,000 (at least 5) besides the
        # long thread, and their organization shares its tickets.
        own_every = max(1, min(4000, self.count // 5))
        self.totals.update(tickets=0, entries=0, events=0, attachments=0, collaborators=0)
        self.writers = {
            model: RowWriter(model)
            for model in (Ticket, Thread, ThreadEntry, Attachment, ThreadEvent, Collaborator)
        }
        with timestamps_as_given():
            for start in range(0, self.count, batch):
                indexes = range(start, min(start + batch, self.count))
                with transaction.atomic():
                    self._batch(indexes, numbers, own_every)
                done = indexes[-1] + 1
                if done % (batch * 10) == 0 or done == self.count:
                    self.log(f"  {done} tickets")

    def _opened_at(self, status_name: str) -> datetime:
        rng = self.rng
        if self.statuses[status_name].state == StatusState.OPEN:
            age = min(rng.expovariate(1 / 6), 90)  # days; open tickets are mostly recent
        else:
            age = rng.uniform(2, 365 * YEARS)
        return self.now - timedelta(days=age, minutes=rng.uniform(5, 60))

    def _batch(self, indexes: range, numbers: list[str], own_every: int) -> None:
        rng, people, w = self.rng, self.people, self.writers
        plans = [self._plan(i, numbers[i], own_every) for i in indexes]
        first_ticket = w[Ticket].reserve(len(plans))
        first_thread = w[Thread].reserve(len(plans))
        first_entry = w[ThreadEntry].reserve(sum(len(p.story) for p in plans))
        entry_id = first_entry
        for offset, plan in enumerate(plans):
            plan.ticket_id, plan.thread_id = first_ticket + offset, first_thread + offset
            w[Ticket].add(plan.ticket_row())
            w[Thread].add(
                {"id": plan.thread_id, "ticket_id": plan.ticket_id, "created_at": plan.opened}
            )
            for position, line in enumerate(plan.story):
                w[ThreadEntry].add(
                    {
                        "id": entry_id,
                        "thread_id": plan.thread_id,
                        "kind": line.kind,
                        "author_id": line.author.pk,
                        "poster": line.author.name,
                        "source": plan.source if position == 0 else Source.WEB,
                        "body": line.body,
                        "body_format": line.body_format,
                        "body_html": line.html,
                        "created_at": line.moment,
                        "updated_at": line.moment,
                    }
                )
                if position > 0:
                    w[ThreadEvent].add(
                        {
                            "thread_id": plan.thread_id,
                            "action": ENTRY_EVENTS[line.kind],
                            "actor_id": line.author.pk,
                            "actor_name": line.author.name,
                            "data": {"entry": entry_id},
                            "created_at": line.moment,
                        }
                    )
                if plan.long_thread and position % 10 == 0:
                    # The long thread shows image thumbnails on the ticket page.
                    self._attachment(entry_id, line.moment, ATTACHMENT_NAMES[0])
                elif line.kind == EntryKind.MESSAGE and rng.random() < 0.08:
                    self._attachment(entry_id, line.moment, rng.choice(ATTACHMENT_NAMES))
                entry_id += 1
            for event in plan.events():
                w[ThreadEvent].add(event)
            members = people.members.get(plan.customer.organization_id or 0, [])
            if len(members) > 1 and rng.random() < 0.04:
                other = rng.choice(members)
                if other.pk != plan.customer.pk:
                    w[Collaborator].add(
                        {
                            "ticket_id": plan.ticket_id,
                            "user_id": other.pk,
                            "added_by_id": plan.customer.pk,
                            "created_at": plan.opened,
                        }
                    )
        for model, writer in w.items():
            started = time.monotonic()
            written = writer.flush()
            name = model._meta.verbose_name_plural
            self.write_seconds[name] = self.write_seconds.get(name, 0) + time.monotonic() - started
            key = {Ticket: "tickets", ThreadEntry: "entries", ThreadEvent: "events"}.get(model)
            key = key or {Attachment: "attachments", Collaborator: "collaborators"}.get(model)
            if key:
                self.totals[key] += written

    def _attachment(self, entry_id: int, moment: datetime, name: tuple[str, str]) -> None:
        template, kind = name
        stored = self.files[kind]
        self.writers[Attachment].add(
            {
                "entry_id": entry_id,
                "file": stored.path,
                "content_hash": stored.digest,
                "name": template.format(n=self.rng.randint(1, 999)),
                "content_type": stored.content_type,
                "size": stored.size,
                "created_at": moment,
            }
        )

    def _plan(self, i: int, number: str, own_every: int) -> TicketPlan:
        """One ticket and its conversation, with its search document (nothing saved)."""
        rng, people = self.rng, self.people
        long_thread = i == 0
        status = self.statuses["Open" if long_thread else self.status_pick()]
        customer = people.customer if i % own_every == 0 else self.customer_pick()
        department = self.departments["Support"] if long_thread else self.department_pick()
        topics = self.topics_by_department.get(department.pk, [])
        answerers = people.answerers[department.pk]
        assignee = None
        if long_thread:
            assignee = people.agent
        elif status.state != StatusState.OPEN or rng.random() < 0.7:
            assignee = rng.choice(answerers)
        team = None
        if not long_thread and rng.random() < 0.12:
            team = rng.choice(people.teams_by_department.get(department.pk) or [None])
        priority = self.priority_pick()
        plan = TicketPlan(
            number=number,
            long_thread=long_thread,
            status=status,
            customer=customer,
            department=department,
            department_name=self.department_names[department.pk],
            topic=rng.choice(topics) if topics else None,
            priority=priority,
            assignee=assignee,
            team=team,
            source=Source.WEB if long_thread else self.source_pick(),
            sla=self.plans["Priority" if priority.urgency <= 2 else "Standard"],
            opened=self._opened_at(status.name),
        )
        device = self.device_pick()
        plan.subject = self.subject(plan.department_name, device)
        if long_thread:
            plan.subject = f"{SEARCH_WORD.capitalize()} queue stuck on every floor"
            self.long_ticket = number

        # The conversation: the customer opens, then responses, replies and notes.
        count = LONG_THREAD if long_thread else rng.randint(self.entries_min, self.entries_max)
        responder = assignee or rng.choice(answerers)
        kinds = [EntryKind.MESSAGE]
        for _ in range(count - 1):
            r, previous = rng.random(), kinds[-1]
            if previous == EntryKind.MESSAGE:
                kinds.append(EntryKind.NOTE if r < 0.15 else EntryKind.RESPONSE)
            elif previous == EntryKind.RESPONSE:
                kinds.append(EntryKind.NOTE if r < 0.15 else EntryKind.MESSAGE)
            else:
                kinds.append(EntryKind.RESPONSE if r < 0.7 else EntryKind.NOTE)
        # Gaps between entries (hours), squeezed so the last entry lies before now.
        gaps = [rng.uniform(0.1, 8) if k == EntryKind.NOTE else rng.uniform(0.3, 30) for k in kinds]
        gaps[0] = 0.0
        room = (self.now - timedelta(minutes=2) - plan.opened).total_seconds() / 3600
        if sum(gaps) > room:
            gaps = [gap * room / sum(gaps) for gap in gaps]
        moment = plan.opened
        for position, (kind, gap) in enumerate(zip(kinds, gaps, strict=True)):
            moment += timedelta(hours=gap)
            author = customer if kind == EntryKind.MESSAGE else responder
            if kind == EntryKind.NOTE and rng.random() < 0.3:
                author = rng.choice(answerers)
            body, body_format, html = self.body(
                kind, author=author, customer=customer, device=device, first=position == 0
            )
            plan.story.append(Line(kind, author, moment, body, body_format, html))
        if status.state != StatusState.OPEN:
            plan.closer = responder
            plan.closed_at = min(moment + timedelta(minutes=rng.uniform(1, 600)), self.now)
        plan.clock(self.now)
        plan.document = search.document_build(
            plan,  # type: ignore[arg-type] - document_build reads number, subject and user
            [(line.body, line.body_format) for line in plan.story],
        )
        return plan

    def finish(self) -> None:
        """Fresh planner statistics (and, on PostgreSQL, the visibility map that index-only
        counts rely on) for the tables just filled. VACUUM cannot run inside a transaction
        and MariaDB's ANALYZE TABLE commits it, so inside a caller's transaction (the test
        suite's) PostgreSQL gets ANALYZE alone and MariaDB nothing."""
        tables = [m._meta.db_table for m in (Ticket, Thread, ThreadEntry, ThreadEvent)]
        if connection.vendor == "postgresql":
            statement = "ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE"
        elif connection.vendor == "mysql":
            if connection.in_atomic_block:
                return
            statement = "ANALYZE TABLE " + ", ".join(map(connection.ops.quote_name, tables))
        else:
            statement = "ANALYZE"
        with connection.cursor() as cursor:
            cursor.execute(statement)


class Command(BaseCommand):
    help = "Generate a large realistic data set with bulk inserts (for benchmarks)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--tickets",
            type=int,
            default=DEFAULT_TICKETS,
            help=f"How many tickets to generate (default {DEFAULT_TICKETS}).",
        )
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="Random seed.")
        parser.add_argument("--entries-min", type=int, default=3, help="Entries per ticket, min.")
        parser.add_argument("--entries-max", type=int, default=10, help="Entries per ticket, max.")
        parser.add_argument(
            "--password",
            default=DEFAULT_PASSWORD,
            help="Password of the printed agent and customer logins (and every agent).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        count = options["tickets"]
        low, high = options["entries_min"], options["entries_max"]
        if not 1 <= count <= MAX_TICKETS:
            raise CommandError(f"--tickets takes a number from 1 to {MAX_TICKETS}.")
        if not 1 <= low <= high <= LONG_THREAD:
            raise CommandError(
                f"Need 1 <= --entries-min <= --entries-max <= {LONG_THREAD} (got {low}, {high})."
            )
        if Ticket.objects.exists() or User.objects.filter(email=AGENT_EMAIL).exists():
            raise CommandError(
                "This help desk already has tickets; generate_data fills an empty one "
                "(migrate a new database first). Nothing changed."
            )
        if not connection.features.can_return_rows_from_bulk_insert:
            raise CommandError(
                f"{connection.display_name} does not return ids from bulk inserts; "
                "use PostgreSQL, SQLite or MariaDB."
            )
        started = time.monotonic()
        generator = Generator(
            tickets=count,
            seed=options["seed"],
            entries_min=low,
            entries_max=high,
            password=options["password"],
            now=timezone.now(),
            log=self.stdout.write,
        )
        step = time.monotonic()
        with transaction.atomic():
            generator.setup()
            generator.setup_files()
        generator.build_pools()
        self.stdout.write(f"People and routing: {time.monotonic() - step:.1f} s")
        step = time.monotonic()
        generator.run()
        writing = ", ".join(f"{k} {v:.1f} s" for k, v in generator.write_seconds.items())
        self.stdout.write(f"Tickets: {time.monotonic() - step:.1f} s (writing: {writing})")
        step = time.monotonic()
        generator.finish()
        self.stdout.write(f"Analyze: {time.monotonic() - step:.1f} s")
        elapsed = time.monotonic() - started
        totals = generator.totals
        self.summary = {
            **totals,
            "seconds": round(elapsed, 1),
            "long_ticket": generator.long_ticket,
            "agent": AGENT_EMAIL,
            "customer": CUSTOMER_EMAIL,
            "password": options["password"],
            "search_word": SEARCH_WORD,
        }
        self.stdout.write(
            self.style.SUCCESS(
                f"Generated {totals['tickets']} tickets in {elapsed:.1f} s: "
                f"{totals['entries']} entries, {totals['events']} events, "
                f"{totals['attachments']} attachments, {totals['collaborators']} collaborators; "
                f"{totals['agents']} agents, {totals['customers']} customers, "
                f"{totals['organizations']} organizations."
            )
        )
        self.stdout.write(f"Ticket with {LONG_THREAD} entries: {generator.long_ticket}")
        self.stdout.write(f"Agent login (every department): {AGENT_EMAIL} / {options['password']}")
        self.stdout.write(
            f"Customer login (Acme Corp, shares tickets): {CUSTOMER_EMAIL} / {options['password']}"
        )
        self.stdout.write(f"Common search word: {SEARCH_WORD}")
