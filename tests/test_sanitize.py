"""The one sanitiser: classic XSS payloads come out inert in every format."""

import re
from html.parser import HTMLParser

import pytest
from django.utils.html import escape

from helpdesk.lib.sanitize import ALLOWED_TAGS, render_body, render_markdown, sanitize_html

PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg/onload=alert(1)>",
    "<body onload=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<a href="java\tscript:alert(1)">x</a>',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<object data="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="></object>',
    '<embed src="data:text/html,<script>alert(1)</script>">',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<form action="javascript:alert(1)"><button>x</button></form>',
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<link rel=stylesheet href="http://evil/x.css">',
    '"><script>alert(1)</script>',
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    "[click](javascript:alert(1))",
    "![x](javascript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "<details open ontoggle=alert(1)>",
    '<video><source onerror="alert(1)"></video>',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
]

SAFE_URL = re.compile(r"^(https?:|mailto:|cid:|#|/)", re.I)


class ElementCollector(HTMLParser):
    """What a browser would build from the output: element names and their attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    collector = ElementCollector()
    collector.feed(html)
    return collector.elements


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("body_format", ["text", "markdown", "html"])
def test_no_payload_survives(payload, body_format):
    html = str(render_body(payload, body_format))
    for tag, attrs in elements(html):
        assert tag in ALLOWED_TAGS, html
        for name, value in attrs.items():
            assert not name.startswith("on"), html
            assert name != "style", html
            if name in ("href", "src"):
                assert SAFE_URL.match((value or "").strip()), html


def test_links_are_kept_with_a_safe_rel():
    html = render_markdown("See [the docs](https://example.com/docs) or mail@example.com")
    assert 'href="https://example.com/docs"' in html
    assert 'rel="noopener noreferrer nofollow"' in html


def test_formatting_survives():
    html = render_markdown("# Title\n\n**bold** and `code`\n\n- one\n- two")
    for tag in ("<h1>", "<strong>", "<code>", "<li>"):
        assert tag in html


def test_remote_images_are_held_back_until_asked():
    mail = '<p>Hi</p><img src="https://tracker.example/pixel.gif" alt="">'
    held = sanitize_html(mail)
    assert "src=" not in held.replace("data-remote-src=", "")
    assert 'data-remote-src="https://tracker.example/pixel.gif"' in held
    assert 'src="https://tracker.example/pixel.gif"' in sanitize_html(mail, remote_images=True)


def test_html_cleaned_with_remote_images_is_held_back_when_cleaned_without():
    # The cleaner hands back a text it has just made as it is: only for the same setting.
    shown = sanitize_html('<img src="https://tracker.example/pixel.gif">', remote_images=True)
    assert 'src="https://tracker.example/pixel.gif"' in shown
    held = sanitize_html(str(shown))
    assert "src=" not in held.replace("data-remote-src=", "")
    assert sanitize_html(str(held)) == held


def test_inline_mail_images_stay():
    assert 'src="cid:logo@example"' in sanitize_html('<img src="cid:logo@example">')


def test_plain_text_is_escaped_not_interpreted():
    html = render_body("1 < 2 & <b>not bold</b>", "text")
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html
    assert "<b>" not in html


@pytest.mark.parametrize(
    "text",
    [
        "Hi,\n\nsee www.example.com today.",
        "It is on example.org/status",
        "Docs: https://example.net/x?a=1&b=2",
    ],
)
def test_plain_text_links_addresses_and_domains(text):
    assert "<a " in render_body(text, "text")


@pytest.mark.parametrize("payload", PAYLOADS)
def test_plain_text_without_links_is_only_escaped(payload):
    """Text with nothing to link skips the cleaner: every character is still escaped."""
    text = f"Dear team,\n\nit says {payload}\nthen stops. Thanks"
    html = render_body(text, "text")
    tags = {match.group(1).lower() for match in re.finditer(r"<\s*/?\s*([a-z0-9]+)", html, re.I)}
    assert tags <= {"p", "br"}
    assert escape(payload) in html


def test_cleaning_in_several_threads_at_once_gives_each_its_own_text():
    """The cleaners are kept and reused; each thread has its own, since a cleaner holds the
    state of the text it is parsing."""
    from concurrent.futures import ThreadPoolExecutor

    texts = [
        f'<p onclick="x()">Mail {n} <a href="javascript:alert({n})">link</a>'
        f"<script>steal({n})</script><b>{'word ' * (n % 50)}</b></p>"
        for n in range(400)
    ]
    alone = [str(sanitize_html(text)) for text in texts]
    markdown_alone = [
        str(render_markdown(f"**{n}** <i>x</i> www.example.com/{n}")) for n in range(400)
    ]

    def both(n: int) -> tuple[str, str]:
        return (
            str(sanitize_html(texts[n])),
            str(render_markdown(f"**{n}** <i>x</i> www.example.com/{n}")),
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(both, range(400)))
    assert [html for html, _md in together] == alone
    assert [md for _html, md in together] == markdown_alone
    assert "steal" not in "".join(alone) and "javascript" not in "".join(alone)
