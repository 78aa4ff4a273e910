"""The one sanitiser: every body, signature, article and HTML mail reaches a page through here.

Markdown is rendered to HTML, then all HTML goes through one bleach allow-list: no scripts, no
event handlers, no `style`, only http/https/mailto links (and `cid:` for inline mail images),
and `rel="noopener noreferrer nofollow"` on every link. Remote images in HTML mail are not
loaded: their address moves to `data-remote-src` until an agent asks to show them.
"""

import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import bleach
import markdown
from bleach.html5lib_shim import Filter
from bleach.linkifier import LinkifyFilter
from django.utils.html import escape, linebreaks
from django.utils.safestring import SafeString, mark_safe

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "div", "dl", "dt",
        "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "ol", "p",
        "pre", "q", "s", "small", "span", "strike", "strong", "sub", "sup", "table", "tbody",
        "td", "tfoot", "th", "thead", "tr", "u", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": ["href", "title"],
    "abbr": ["title"],
    "img": ["src", "alt", "title", "width", "height"],
    "td": ["colspan", "rowspan"],
    "th": ["colspan", "rowspan", "scope"],
    "ol": ["start"],
}
ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto", "cid"})
LINK_REL = "noopener noreferrer nofollow"


class _LinkAndImageFilter(Filter):  # type: ignore[misc]
    """Sets rel on links, drops non-web links, and holds back remote images."""

    def __init__(self, source: Any, *, remote_images: bool) -> None:
        super().__init__(source)
        self.remote_images = remote_images

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for token in super().__iter__():
            if token["type"] in ("StartTag", "EmptyTag"):
                attrs = token.get("data", {})
                if token["name"] == "a":
                    href = attrs.get((None, "href"), "")
                    if href.lower().startswith("cid:"):
                        attrs.pop((None, "href"), None)
                    attrs[(None, "rel")] = LINK_REL
                elif token["name"] == "img":
                    src = attrs.get((None, "src"), "")
                    if src and not src.lower().startswith("cid:") and not self.remote_images:
                        attrs.pop((None, "src"))
                        attrs[(None, "data-remote-src")] = src
            yield token


# Elements whose content is never shown: dropped before sanitising so their text (CSS,
# scripts, the document title) doesn't turn into visible body text.
_INVISIBLE_START = re.compile(r"<(script|style|title|template|xml)\b", re.IGNORECASE)


def drop_invisible_elements(html: str) -> str:
    """One linear pass removing script/style/title elements, whose content bleach would
    otherwise turn into visible text. Not a sanitiser on its own."""
    lower = html.lower()
    out: list[str] = []
    position = 0
    while True:
        match = _INVISIBLE_START.search(html, position)
        if not match:
            out.append(html[position:])
            return "".join(out)
        out.append(html[position : match.start()])
        name = match.group(1).lower()
        close = lower.find(f"</{name}", match.end())
        if close < 0:
            if name in ("script", "style"):  # browsers treat the rest as script/CSS too
                return "".join(out)
            end = lower.find(">", match.end())
            position = len(html) if end < 0 else end + 1
            continue
        end = lower.find(">", close)
        position = len(html) if end < 0 else end + 1


# Building a cleaner (its parser, tree walker and serializer) costs about as much as
# cleaning a mail, so each is made once; bleach's cleaners hold parser state and are not
# thread-safe, so once per thread.
_cleaners = threading.local()


def _kept(kind: str, make: Callable[[], bleach.Cleaner]) -> bleach.Cleaner:
    cleaner = getattr(_cleaners, kind, None)
    if cleaner is None:
        cleaner = make()
        setattr(_cleaners, kind, cleaner)
    return cleaner


def _cleaner(*, remote_images: bool) -> bleach.Cleaner:
    def make() -> bleach.Cleaner:
        img = [*ALLOWED_ATTRIBUTES["img"], "data-remote-src"]
        return bleach.Cleaner(
            tags=ALLOWED_TAGS,
            attributes={**ALLOWED_ATTRIBUTES, "img": img},
            protocols=ALLOWED_PROTOCOLS,
            strip=True,
            strip_comments=True,
            filters=[
                lambda source: _LinkAndImageFilter(source, remote_images=remote_images),
            ],
        )

    return _kept(f"html_remote_{remote_images}", make)


# The latest outputs, by the `remote_images` they were made with: a mail's HTML is
# sanitised when it is parsed, and its entry's HTML is that very text sanitised again, which
# gives it back unchanged. Bounded: a few texts are kept, not every one ever cleaned.
_RECENT: dict[bool, set[str]] = {False: set(), True: set()}
_RECENT_MAX = 16


def sanitize_html(html: str, *, remote_images: bool = False) -> SafeString:
    """Untrusted HTML (mail, imported data) made safe to put on a page."""
    recent = _RECENT[remote_images]
    if html in recent:
        return mark_safe(html)  # noqa: S308 - this very text is what the cleaner returned
    cleaned = _cleaner(remote_images=remote_images).clean(drop_invisible_elements(html or ""))
    if len(recent) >= _RECENT_MAX:
        recent.clear()
    recent.add(cleaned)
    return mark_safe(cleaned)  # noqa: S308 - the allow-list above is what makes it safe


def render_markdown(text: str) -> SafeString:
    """Markdown typed by agents, customers or admins, as safe HTML with links made clickable."""
    html = markdown.markdown(text or "", extensions=["extra", "sane_lists", "nl2br"])
    html = _kept("markdown", _markdown_cleaner).clean(html)
    return mark_safe(html)  # noqa: S308 - cleaned by the allow-list


def _markdown_cleaner() -> bleach.Cleaner:
    return bleach.Cleaner(
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        protocols=ALLOWED_PROTOCOLS - {"cid"},
        strip=True,
        filters=[
            lambda source: LinkifyFilter(source, skip_tags={"pre", "code"}),
            lambda source: _LinkAndImageFilter(source, remote_images=False),
        ],
    )


# What bleach's linkifier could turn into a link: an address, a scheme, or a dot between
# letters (a bare domain). Text without any of these needs no linkifying.
_LINK_HINT = re.compile(r"@|://|www\.|\w\.[^\W\d_]{2}", re.IGNORECASE)


def render_text(text: str) -> SafeString:
    """Plain text: escaped, paragraphs kept, addresses made clickable."""
    html = linebreaks(escape(text or ""))
    if not _LINK_HINT.search(text or ""):
        # Escaped, with only <p> and <br> added: nothing for the cleaner to remove or link.
        return mark_safe(html)  # noqa: S308 - every character of the text is escaped
    html = _kept("text", _text_cleaner).clean(html)
    return mark_safe(html)  # noqa: S308 - escaped, then cleaned by the allow-list


def _text_cleaner() -> bleach.Cleaner:
    return bleach.Cleaner(
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        protocols=ALLOWED_PROTOCOLS - {"cid"},
        strip=True,
        filters=[
            LinkifyFilter,
            lambda source: _LinkAndImageFilter(source, remote_images=False),
        ],
    )


def render_body(body: str, body_format: str, *, remote_images: bool = False) -> SafeString:
    """A thread entry's body as safe HTML, whatever format it was stored in."""
    if body_format == "html":
        return sanitize_html(body, remote_images=remote_images)
    if body_format == "markdown":
        return render_markdown(body)
    return render_text(body)
