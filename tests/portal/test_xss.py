"""Payloads from public XSS lists (OWASP's filter evasion cheat sheet, PortSwigger's
cheat sheet) in every field a customer controls: none survives as markup in the portal."""

from html.parser import HTMLParser

import pytest

from tests.accounts.factories import UserFactory
from tests.tickets.factories import open_ticket
from tickets.models import BodyFormat
from tickets.services import AttachmentUpload, ticket_message_add

pytestmark = pytest.mark.django_db

PAYLOADS = [
    "<script>alert(1)</script>",
    "<ScRiPt>alert(1)</sCrIpT>",
    '"><script>alert(1)</script>',
    "'><img src=x onerror=alert(1)>",
    "<img src=x onerror=alert(1)//",
    "<svg/onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<iframe src="javascript:alert(1)"></iframe>',
    '<a href="javascript:alert(1)">click</a>',
    '<a href="jav&#x09;ascript:alert(1)">click</a>',
    "<body onload=alert(1)>",
    "<input autofocus onfocus=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<object data="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<div style="background:url(javascript:alert(1))">x</div>',
    "[click](javascript:alert(1))",
    "![x](javascript:alert(1))",
    '<a href="data:text/html,<script>alert(1)</script>">x</a>',
    "{{ 7*7 }}{% debug %}",
]

OUR_SCRIPTS = ("/static/vendor/htmx-2.0.11/htmx.min.js", "/static/js/helpdesk.js")


class Danger(HTMLParser):
    """Collects what could run: scripts not ours, event handlers, script URLs, frames."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src") not in OUR_SCRIPTS:
            self.found.append(f"<script {values}>")
        if (tag in ("iframe", "object", "embed", "meta", "base") and tag != "meta") or (
            tag == "meta" and "http-equiv" in values
        ):
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"{tag} {name}=")
            if name == "style":
                self.found.append(f"{tag} style=")
            lowered = "".join((value or "").split()).lower()
            if name in ("href", "src", "action", "formaction", "data") and (
                lowered.startswith("javascript:") or lowered.startswith("data:text/html")
            ):
                self.found.append(f"{tag} {name}={value}")


def dangers(html: str) -> list[str]:
    parser = Danger()
    parser.feed(html)
    return parser.found


@pytest.mark.parametrize("payload", PAYLOADS)
def test_no_payload_survives_on_the_ticket_page_or_the_list(client, department, payload):
    owner = UserFactory(name=payload[:150])
    ticket = open_ticket(
        user=owner,
        department=department,
        subject=payload,
        body=payload,
        attachments=[AttachmentUpload(f"{payload}.txt", b"x", "text/plain")],
    )
    for body_format in (BodyFormat.MARKDOWN, BodyFormat.HTML):
        ticket_message_add(ticket=ticket, user=owner, body=payload, body_format=body_format)
    client.force_login(owner)
    page = client.get(f"/tickets/{ticket.number}/").content.decode()
    assert dangers(page) == []
    assert dangers(client.get("/tickets/").content.decode()) == []


@pytest.mark.parametrize("payload", PAYLOADS)
def test_no_payload_survives_a_form_shown_again_with_errors(client, payload):
    response = client.post(
        "/tickets/new/",
        {"name": payload, "email": payload, "subject": payload, "message": payload},
    )
    assert response.status_code == 400
    assert dangers(response.content.decode()) == []
    guest = client.post("/tickets/access/", {"email": payload, "number": payload})
    assert dangers(guest.content.decode()) == []


def test_the_checker_catches_each_kind_of_danger():
    assert dangers("<script>alert(1)</script>")
    assert dangers('<img src="x" onerror="alert(1)">')
    assert dangers('<a href=" JavaScript:alert(1)">x</a>')
    assert dangers('<iframe src="/x"></iframe>')
    assert dangers('<meta http-equiv="refresh" content="0">')
    assert dangers('<p style="color:red">x</p>')
    assert not dangers(f'<script src="{OUR_SCRIPTS[0]}"></script><meta charset="utf-8">')
