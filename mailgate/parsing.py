"""Raw RFC 5322 bytes to plain data (`ParsedMessage`): no database, no models, no network.

`parse_message` never raises on odd bytes except `ParseError` (quarantine the message) and its
subclass `MessageTooLarge`. Every header is read from the raw header list and decoded
leniently here, because `policy.default` raises on some malformed headers and is slow
(quadratic) on others; the standard library parser is still what splits the MIME structure.

Limits, because mail is hostile input (security.md rows 45 and "BOMB"):
- MIME parts, nesting depth, header sizes and address counts are capped;
- HTML larger or busier than the `HTML_MAX_*` limits is not sanitised (bleach/html5lib is
  quadratic on deep nesting and many attributes): the text is extracted by a linear scan and
  the HTML is kept as an attachment instead;
- every regular expression here is linear or works on bounded input.
"""

from __future__ import annotations

import codecs
import datetime as dt
import email
import email.utils
import functools
import io
import logging
import mimetypes
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email import errors as email_errors
from email import policy
from email.generator import BytesGenerator
from email.header import decode_header
from email.message import Message
from email.policy import EmailPolicy
from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote_to_bytes

from django.utils.html import escape, linebreaks

from helpdesk.lib.files import clean_filename, guess_content_type
from helpdesk.lib.sanitize import drop_invisible_elements, sanitize_html

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_REPLY_SEPARATOR",
    "MessageTooLarge",
    "ParseError",
    "ParsedAttachment",
    "ParsedMessage",
    "decode_bytes",
    "html_to_text",
    "parse_message",
    "split_quoted",
]

DEFAULT_REPLY_SEPARATOR = "-- reply above this line --"

MAX_MIME_PARTS = 1000  # policy.default spends ~0.5 ms per part; 1000 parts stay under a second
MAX_DEPTH = 30
MAX_HEADERS_KEPT = 500  # in raw_headers
MAX_HEADERS_READ = 10000
MAX_HEADER_VALUE = 8 * 1024  # characters of one header value kept or parsed
MAX_ADDRESS_HEADER = 64 * 1024  # characters of To/Cc/... scanned for addresses
MAX_ADDRESSES = 1000  # per address header
MAX_REFERENCES = 100
MAX_ERRORS = 50
# bleach (html5lib) time grows with the square of nesting depth and of attributes per tag:
# at these limits the worst case measured about 3 s, ordinary newsletters well under 1 s.
HTML_MAX_CHARS = 1024 * 1024
HTML_MAX_TAGS = 5000
HTML_MAX_ATTRIBUTES = 20000
QUOTE_SCAN_LINES = 10000  # split_quoted looks for a reply intro in this many lines
QUOTE_LINE_CHARS = 1000  # and at this many characters of each line

_MiB = 1024 * 1024


# --- results and errors ----------------------------------------------------------------------


class ParseError(Exception):
    """The bytes are not a usable email; `reason` says why, for the quarantine list."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MessageTooLarge(ParseError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message is {_format_size(size)}, the limit is {_format_size(limit)}")
        self.size = size
        self.limit = limit


def _format_size(size: int) -> str:
    if size >= 100 * 1024:
        return f"{size / _MiB:.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size} bytes"


@dataclass
class ParsedAttachment:
    filename: str
    content_type: str
    size: int
    content_id: str = ""  # without angle brackets
    inline: bool = False  # shown inside the HTML body (multipart/related or inline with a cid)
    content: bytes = field(default=b"", repr=False)

    def as_json_dict(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "content_id": self.content_id,
            "inline": self.inline,
        }


@dataclass
class ParsedMessage:
    from_email: str = ""  # lowercased; '' if the From header holds no usable address
    from_name: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    reply_to: list[str] = field(default_factory=list)
    subject: str = ""
    message_id: str = ""  # "<id@host>"
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    date: dt.datetime | None = None  # aware, or None when missing or malformed
    body_text: str = ""
    body_html: str = ""  # already passed through sanitize_html
    attachments: list[ParsedAttachment] = field(default_factory=list)
    auto_reply: bool = False
    bounce: bool = False
    bounce_recipients: list[str] = field(default_factory=list)
    # One dict per recipient named in a delivery report: recipient, action, status.
    bounce_details: list[dict[str, str]] = field(default_factory=list)
    bounce_message_id: str = ""  # Message-ID of the returned original, for threading
    headers: dict[str, str] = field(default_factory=dict)  # a few, lowercased names, for filters
    raw_headers: list[tuple[str, str]] = field(default_factory=list, repr=False)  # all, in order
    errors: list[str] = field(default_factory=list)  # defects and fallbacks, for admins

    def as_json_dict(self) -> dict[str, Any]:
        return {
            "from_email": self.from_email,
            "from_name": self.from_name,
            "to": list(self.to),
            "cc": list(self.cc),
            "reply_to": list(self.reply_to),
            "subject": self.subject,
            "message_id": self.message_id,
            "in_reply_to": self.in_reply_to,
            "references": list(self.references),
            "date": self.date.isoformat() if self.date else None,
            "body_text": self.body_text,
            "body_html": self.body_html,
            "attachments": [attachment.as_json_dict() for attachment in self.attachments],
            "auto_reply": self.auto_reply,
            "bounce": self.bounce,
            "bounce_recipients": list(self.bounce_recipients),
            "bounce_details": [dict(detail) for detail in self.bounce_details],
            "bounce_message_id": self.bounce_message_id,
            "headers": dict(self.headers),
            "errors": list(self.errors),
        }


# --- charsets --------------------------------------------------------------------------------

# Labels seen in the wild mapped to the codec that decodes what senders really meant
# (supersets, as browsers do: iso-8859-1 is read as windows-1252, euc-kr as cp949...).
_CHARSET_ALIASES = {
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "ksc5601": "cp949",
    "ksc_5601": "cp949",
    "euc-kr": "cp949",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "big5": "cp950",
    "tis-620": "cp874",
    "windows-874": "cp874",
    "iso-8859-8-i": "iso8859_8",
    "unicode-1-1-utf-7": "utf-7",
    "x-mac-roman": "mac_roman",
}
# Tried after the declared codec fails on the bytes, before utf-8 and windows-1252.
_CHARSET_FALLBACKS = {
    "iso2022_jp": ("iso2022_jp_ext", "iso2022_jp_2"),
    "cp950": ("big5hkscs",),
    "euc_jp": ("euc_jis_2004",),
    "cp932": ("shift_jis_2004",),
}
_UNKNOWN_CHARSETS = frozenset(
    {"x-unknown", "unknown", "unknown-8bit", "x-user-defined", "default", "charset", "none"}
)
_CHARSET_LABEL = re.compile(r"[a-z0-9._:+-]{1,40}")
# Text codecs that are not charsets: they raise odd errors or decode escapes.
_NOT_CHARSETS = frozenset(
    {"idna", "punycode", "undefined", "unicode_escape", "raw_unicode_escape", "mbcs", "oem"}
)


def _codec_name(charset: str | None) -> str | None:
    """The Python codec for a MIME charset label, or None if it is unknown or not text."""
    if not charset:
        return None
    label = charset.strip().strip("\"'").lower()
    if not _CHARSET_LABEL.fullmatch(label) or label in _UNKNOWN_CHARSETS:
        return None
    label = _CHARSET_ALIASES.get(label, label)
    try:
        info = codecs.lookup(label)
    except LookupError:
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
        return None  # base64, zlib, idna...: not a charset
    return info.name


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, str | None]:
    """Bytes to text without ever raising: the declared charset, its known supersets, utf-8,
    then windows-1252 with replacement characters. Returns the text and a note when the
    declared charset was unknown or did not fit the bytes."""
    name = _codec_name(charset)
    candidates: list[str] = []
    if name and name != "ascii":
        candidates.append(name)
        candidates.extend(_CHARSET_FALLBACKS.get(name, ()))
    candidates.append("utf-8")
    for candidate in candidates:
        try:
            text = data.decode(candidate)
        except (UnicodeError, LookupError, ValueError):
            continue
        if candidate == name or (name in (None, "ascii") and candidate == "utf-8"):
            note = None
            if charset and name is None and _has_8bit(data):
                note = f"unknown charset {_short(charset)}, decoded as utf-8"
            return text, note
        return text, f"charset {_short(charset or 'missing')} did not fit, decoded as {candidate}"
    final = name if name and name not in ("ascii", "utf-8") else "cp1252"
    try:
        text = data.decode(final, "replace")
    except (UnicodeError, LookupError, ValueError):
        final = "cp1252"
        text = data.decode(final, "replace")
    return text, f"charset {_short(charset or 'missing')} did not fit, decoded as {final}"


def _has_8bit(data: bytes) -> bool:
    return not data.isascii()


_SURROGATE = re.compile("[\udc80-\udcff]")


def _fix_8bit(value: str, fallback: str | None = None) -> str:
    """Header text still holding raw 8-bit bytes (as surrogate escapes) decoded: utf-8 first
    (RFC 6532), then the message's own charset, then windows-1252."""
    if not _SURROGATE.search(value):
        return value
    data = value.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    name = _codec_name(fallback)
    if name and name not in ("utf-8", "ascii"):
        try:
            return data.decode(name)
        except (UnicodeError, LookupError, ValueError):
            pass
    return data.decode("cp1252", "replace")


# Control characters other than tab and newline: PostgreSQL rejects NUL, the rest only harm.
_CONTROL_CHARS = dict.fromkeys([*range(0, 9), 11, 12, *range(14, 32), 127])


def _clean_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.translate(_CONTROL_CHARS)


def _one_line(text: str, limit: int = 998) -> str:
    """A header-like value on one line: controls dropped, whitespace folded, length capped."""
    text = text.translate(_CONTROL_CHARS)
    return " ".join(text.split())[:limit]


def _short(value: str, limit: int = 60) -> str:
    """An attacker-controlled value fit to quote in an error note."""
    return repr(_one_line(value, limit))


# --- header values ---------------------------------------------------------------------------


def _unfold(value: str) -> str:
    # Same unfolding as policy.default: CR and LF go, the continuation's whitespace stays.
    return value.replace("\r", "").replace("\n", "")


def _decode_words(value: str) -> str:
    """RFC 2047 encoded words decoded (adjacent words joined), unknown charsets repaired."""
    value = value[:MAX_HEADER_VALUE]
    if "=?" not in value:
        return value
    try:
        decoded = str(policy.default.header_factory("x-decoded", value))
    except Exception:  # any parser failure: fall back to the older decoder
        try:
            decoded = "".join(
                chunk if isinstance(chunk, str) else decode_bytes(chunk, charset)[0]
                for chunk, charset in decode_header(value)
            )
        except Exception:
            return value
    return _fix_8bit(decoded)


# ReDoS-safe: fixed alternatives and bounded, non-overlapping character classes.
_LOOSE_ADDRESS = re.compile(r"[\w.+'&=-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")
_DOMAIN_CHARS = re.compile(r"[^\W_][\w.-]*")  # letters (any script), digits, dots, hyphens


def _plausible_address(address: str) -> bool:
    if not address or len(address) > 254 or address.count("@") != 1:
        return False
    local, _, domain = address.rpartition("@")
    if not local or "." not in domain or ".." in domain or domain.endswith("."):
        return False
    if any(ch.isspace() or ch in '<>(),;:"[]\\' for ch in address):
        return False
    return bool(_DOMAIN_CHARS.fullmatch(domain))


def _split_address_list(value: str) -> Iterator[str]:
    """Entries of an address list, split at top-level commas; a group's name is dropped.
    One linear pass that tracks quotes, comments and angle brackets."""
    start = 0
    quoted = False
    escaped = False
    comment = 0
    angle = False
    count = 0
    for index, ch in enumerate(value):
        if escaped:
            escaped = False
            continue
        if ch == "\\" and (quoted or comment):
            escaped = True
        elif quoted:
            quoted = ch != '"'
        elif comment:
            if ch == "(":
                comment += 1
            elif ch == ")":
                comment -= 1
        elif angle:
            angle = ch != ">"
        elif ch == '"':
            quoted = True
        elif ch == "(":
            comment = 1
        elif ch == "<":
            angle = True
        elif ch == ":":  # "Group name: a@b, c@d;": the name is not an address
            start = index + 1
        elif ch in ",;":
            if value[start:index].strip():
                yield value[start:index]
                count += 1
                if count >= MAX_ADDRESSES:
                    return
            start = index + 1
    if value[start:].strip():
        yield value[start:]


def _parse_address_entry(entry: str) -> list[tuple[str, str]]:
    """(display name, address) pairs of one entry: `Name <a@b>`, `a@b (Name)`, `a@b`."""
    phrase: list[str] = []
    comments: list[str] = []
    angle: str | None = None
    quoted = False
    escaped = False
    comment = 0
    in_angle = False
    angle_chars: list[str] = []
    for ch in entry:
        if escaped:
            escaped = False
            (comments if comment else phrase).append(ch)
            continue
        if ch == "\\" and (quoted or comment):
            escaped = True
        elif quoted:
            if ch == '"':
                quoted = False
            else:
                phrase.append(ch)
        elif comment:
            if ch == "(":
                comment += 1
            elif ch == ")":
                comment -= 1
                if not comment:
                    comments.append(" ")
                    continue
            if comment:
                comments.append(ch)
        elif in_angle:
            if ch == ">":
                in_angle = False
                angle = "".join(angle_chars)
            else:
                angle_chars.append(ch)
        elif ch == '"':
            quoted = True
        elif ch == "(":
            comment = 1
        elif ch == "<":
            in_angle = True
            angle_chars = []
        else:
            phrase.append(ch)
    if in_angle:  # "<a@b" without its ">"
        angle = "".join(angle_chars)
    phrase_text = "".join(phrase)
    comment_text = "".join(comments)
    if angle is not None:
        address = "".join(angle.split())
        if ":" in address:  # obsolete source route "<@relay:user@host>"
            address = address.rpartition(":")[2]
        name = phrase_text.strip() or comment_text.strip()
        return [(name, address)]
    candidates = [token for token in phrase_text.split() if "@" in token]
    if len(candidates) == 1:
        return [(comment_text.strip(), candidates[0])]
    if not candidates and "@" in phrase_text:
        return [(comment_text.strip(), "".join(phrase_text.split()))]
    return [("", token) for token in candidates]


def _parse_addresses(value: str) -> list[tuple[str, str]]:
    """Plausible (display name, lowercased address) pairs from an address header's value."""
    value = value[:MAX_ADDRESS_HEADER]
    # RFC 2047: whitespace between adjacent encoded words is not part of the text.
    value = _JOIN_ENCODED_WORDS.sub("?==?", value)
    result: list[tuple[str, str]] = []
    for entry in _split_address_list(value):
        for name, address in _parse_address_entry(entry):
            address = address.strip().strip("'").lower()
            if _plausible_address(address):
                result.append((_one_line(_decode_words(name), 200), address))
    return result


_JOIN_ENCODED_WORDS = re.compile(r"\?=[ \t]+=\?")


def _unique(addresses: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(addresses))


def _message_ids(value: str, limit: int) -> list[str]:
    """Message-IDs in a header, with angle brackets; a bare id gets brackets added."""
    value = value[:MAX_HEADER_VALUE]
    ids: list[str] = []
    position = 0
    while len(ids) < limit:
        start = value.find("<", position)
        if start < 0:
            break
        end = value.find(">", start + 1)
        if end < 0:
            break
        inner = "".join(value[start + 1 : end].split())
        if inner and "<" not in inner:
            ids.append(f"<{inner[:996]}>")
        position = end + 1
    if not ids and "<" not in value and ">" not in value:
        ids = [f"<{token[:996]}>" for token in value.split()[:limit] if "@" in token]
        if not ids and value.strip() and len(value.split()) == 1:
            ids = [f"<{value.strip()[:996]}>"]
    return ids


def _parse_date(value: str) -> tuple[dt.datetime | None, str | None]:
    value = _one_line(value, 200)
    if not value:
        return None, None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None, f"Date header unreadable: {_short(value)}"
    if parsed is None:  # pragma: no cover - older Pythons returned None
        return None, f"Date header unreadable: {_short(value)}"
    if parsed.tzinfo is None:
        # "-0000" means UTC with the sender's zone unknown (RFC 5322 3.3); anything else
        # without a usable zone is malformed and the arrival time will do better.
        if value.endswith("-0000"):
            parsed = parsed.replace(tzinfo=dt.UTC)
        else:
            return None, f"Date header has no valid time zone: {_short(value)}"
    try:
        now = dt.datetime.now(dt.UTC)
        if parsed.year < 1970 or parsed > now + dt.timedelta(days=2):
            return None, f"Date header out of range: {_short(value)}"
    except (OverflowError, ValueError):
        return None, f"Date header out of range: {_short(value)}"
    return parsed, None


# --- MIME parameters (Content-Type, Content-Disposition) -------------------------------------


def _split_semicolons(value: str) -> list[str]:
    items: list[str] = []
    start = 0
    quoted = False
    escaped = False
    for index, ch in enumerate(value):
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == ";" and not quoted:
            items.append(value[start:index])
            start = index + 1
    items.append(value[start:])
    return items


def _unquote(value: str) -> str:
    value = value.strip()
    if value.startswith('"'):
        value = value[1:-1] if len(value) > 1 and value.endswith('"') else value[1:]
        value = re.sub(r"\\(.)", r"\1", value)
    return value


def _parse_params(value: str) -> tuple[str, dict[str, str]]:
    """The main value (lowercased) and the parameters of a MIME header, decoded leniently:
    RFC 2231 (`name*=charset''%xx`, continuations) wins over plain `name=`, and RFC 2047
    words inside plain values (non-standard but common) are decoded too."""
    items = _split_semicolons(value[:MAX_HEADER_VALUE])
    main = items[0].strip().lower()
    plain: dict[str, str] = {}
    extended: dict[str, dict[int, tuple[bool, str]]] = {}
    for item in items[1:64]:
        key, sep, raw_value = item.partition("=")
        key = key.strip().lower()
        if not sep or not key:
            continue
        raw_value = raw_value.strip()
        if "*" in key:
            base, _, rest = key.partition("*")
            encoded = rest.endswith("*") or rest == ""
            number = rest.rstrip("*")
            if number and not number.isdigit():
                continue
            index = int(number) if number else 0
            if index < 64:
                extended.setdefault(base, {}).setdefault(index, (encoded, _unquote(raw_value)))
        else:
            plain.setdefault(key, _unquote(raw_value))
    params = {key: _decode_words(item) if "=?" in item else item for key, item in plain.items()}
    for base, segments in extended.items():
        decoded = _decode_rfc2231([segments[index] for index in sorted(segments)])
        if decoded:
            params[base] = decoded
    return main, params


def _decode_rfc2231(segments: list[tuple[bool, str]]) -> str:
    charset = None
    chunks: list[bytes] = []
    for position, (encoded, value) in enumerate(segments):
        if encoded:
            if position == 0 and value.count("'") >= 2:
                charset, _language, value = value.split("'", 2)
            chunks.append(unquote_to_bytes(value))
        else:
            chunks.append(value.encode("utf-8", "surrogateescape"))
    return decode_bytes(b"".join(chunks), charset or "us-ascii")[0]


# --- HTML ------------------------------------------------------------------------------------

# Line breaks around block elements: 2 = blank line (paragraph), 1 = new line.
_BLOCK_BREAKS = {
    "p": 2, "blockquote": 2, "pre": 2, "h1": 2, "h2": 2, "h3": 2, "h4": 2, "h5": 2, "h6": 2,
    "ul": 2, "ol": 2, "dl": 2, "table": 2, "hr": 2, "div": 1, "li": 1, "tr": 1, "dt": 1,
    "dd": 1, "caption": 1, "thead": 1, "tbody": 1, "tfoot": 1, "center": 1, "section": 1,
    "article": 1, "header": 1, "footer": 1, "address": 1, "form": 1,
}  # fmt: skip
_SPACE_RUN = re.compile(r"[ \t\n\r\f\v\xa0]+")


class _TextExtractor(HTMLParser):
    """HTML to readable text: block elements break lines, blockquotes become "> " lines,
    links keep their address. Meant for sanitised HTML (html.parser is quadratic on some
    malformed input, which the sanitiser's output never is)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.at_line_start = True
        self.pending = 0
        self.quote = 0
        self.pre = 0
        self.skip = 0
        self.lists: list[int | None] = []
        self.links: list[tuple[str, int]] = []

    def _break(self, strength: int) -> None:
        self.pending = max(self.pending, strength)

    def _flush_pending(self) -> None:
        if self.pending and self.out:
            self.out.append("\n" * self.pending)
            self.at_line_start = True
        self.pending = 0

    def _emit(self, text: str) -> None:
        if not text:
            return
        self._flush_pending()
        if self.at_line_start:
            if not self.pre:
                text = text.lstrip(" ")
                if not text:
                    return
            self.out.append("> " * self.quote)
            self.at_line_start = False
        elif not self.pre and text.startswith(" ") and self.out and self.out[-1].endswith(" "):
            text = text.lstrip(" ")
        self.out.append(text)

    def _newline(self) -> None:
        self._flush_pending()
        if self.out:
            self.out.append("\n")
        self.at_line_start = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "title", "head", "template"):
            self.skip += 1
            return
        if tag == "br":
            self._newline()
        elif tag == "img":
            alt = dict(attrs).get("alt") or ""
            if alt.strip():
                self._emit(f"[{_one_line(alt, 200)}]")
        elif tag == "a":
            self.links.append((dict(attrs).get("href") or "", len(self.out)))
        elif tag in ("td", "th"):
            if not self.at_line_start:
                self._emit(" ")
        elif tag in _BLOCK_BREAKS:
            self._break(_BLOCK_BREAKS[tag])
            if tag == "blockquote":
                self.quote += 1
            elif tag == "pre":
                self.pre += 1
            elif tag in ("ul", "ol"):
                self.lists.append(0 if tag == "ol" else None)
            elif tag == "li":
                number = self.lists[-1] if self.lists else None
                if number is not None:
                    self.lists[-1] = number + 1
                    self._emit(f"{number + 1}. ")
                else:
                    self._emit("- ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in ("br", "img", "hr"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "title", "head", "template"):
            self.skip = max(0, self.skip - 1)
            return
        if tag == "a" and self.links:
            href, start = self.links.pop()
            label = "".join(self.out[start:]).strip()
            target = href[7:] if href.lower().startswith("mailto:") else href
            if target and target not in label and href.lower().startswith(("http", "mailto:")):
                self._emit(f" <{target}>")
        elif tag in _BLOCK_BREAKS:
            if tag == "blockquote":
                self.quote = max(0, self.quote - 1)
            elif tag == "pre":
                self.pre = max(0, self.pre - 1)
            elif tag in ("ul", "ol") and self.lists:
                self.lists.pop()
            self._break(_BLOCK_BREAKS[tag])

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.pre:
            for number, line in enumerate(data.split("\n")):
                if number:
                    self._newline()
                self._emit(line)
        else:
            self._emit(_SPACE_RUN.sub(" ", data))

    def text(self) -> str:
        return _tidy_lines("".join(self.out))


def _tidy_lines(text: str) -> str:
    lines = [line.rstrip() for line in text.split("\n")]
    out: list[str] = []
    blank = 0
    for line in lines:
        if line:
            blank = 0
            out.append(line)
        else:
            blank += 1
            if blank == 1 and out:
                out.append("")
    return "\n".join(out).strip("\n")


def html_to_text(html: str) -> str:
    """Readable text from HTML. Give it sanitised HTML: arbitrary HTML goes through
    `_strip_tags_linear` instead, because html.parser is quadratic on some malformed input."""
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):  # html.parser's answer to a few malformed declarations
        return _strip_tags_linear(html)
    return parser.text()


def _strip_tags_linear(html: str) -> str:
    """Crude text from any HTML in one linear pass (for HTML too large to sanitise)."""
    out: list[str] = []
    position = 0
    length = len(html)
    while position < length:
        start = html.find("<", position)
        if start < 0:
            out.append(_SPACE_RUN.sub(" ", unescape(html[position:])))
            break
        out.append(_SPACE_RUN.sub(" ", unescape(html[position:start])))
        end = html.find(">", start + 1)
        if end < 0:
            break
        tag = html[start + 1 : min(end, start + 12)].lstrip("/").split(None, 1)
        name = tag[0].lower().rstrip("/") if tag else ""
        if name == "br" or name in _BLOCK_BREAKS:
            out.append("\n\n" if _BLOCK_BREAKS.get(name) == 2 else "\n")
        position = end + 1
    return _tidy_lines("\n".join(line.strip() for line in "".join(out).split("\n")))


def _text_to_html(text: str) -> str:
    return linebreaks(escape(text))


# --- format=flowed ---------------------------------------------------------------------------


def _unflow(text: str, *, delsp: bool) -> str:
    """RFC 3676: join soft-broken lines (ending in a space) of the same quote depth."""
    out: list[str] = []
    paragraph: list[str] = []
    depth_of_paragraph = -1
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]  # space-stuffing
        if paragraph and depth != depth_of_paragraph:
            out.append(_quote_prefix(depth_of_paragraph) + "".join(paragraph))
            paragraph = []
        soft = content.endswith(" ") and content != "-- "
        if soft and delsp:
            content = content[:-1]
        paragraph.append(content)
        depth_of_paragraph = depth
        if not soft:
            out.append(_quote_prefix(depth) + "".join(paragraph))
            paragraph = []
    if paragraph:
        out.append(_quote_prefix(depth_of_paragraph) + "".join(paragraph))
    return "\n".join(out)


def _quote_prefix(depth: int) -> str:
    return ">" * depth + " " if depth > 0 else ""


# --- quoted replies --------------------------------------------------------------------------

_INTRO_STARTS = (
    "on ", "am ", "le ", "el ", "op ", "il ", "em ", "den ", "dne ", "w dniu", "pe ", "в ",
)  # fmt: skip
_INTRO_ENDS = (
    "wrote:", "wrote :", "writes:", "schrieb:", "a écrit :", "a écrit:", "escribió:",
    "schreef:", "ha scritto:", "escreveu:", "napsal(a):", "napsal:", "pisze:", "skrev:",
    "kirjoitti:", "написал(а):", "написал:", "scrie:",  # noqa: RUF001 - Cyrillic on purpose
)  # fmt: skip
_ORIGINAL_MESSAGE = frozenset(
    {
        "original message", "ursprüngliche nachricht", "message d'origine", "mensaje original",
        "oorspronkelijk bericht", "messaggio originale", "mensagem original",
        "původní zpráva", "wiadomość oryginalna", "ursprungligt meddelande",
        "oprindelig meddelelse", "opprinnelig melding", "alkuperäinen viesti",
    }
)  # fmt: skip
_FORWARD_MARKERS = (
    "forwarded message", "begin forwarded message", "weitergeleitete nachricht",
    "message transféré", "mensaje reenviado", "doorgestuurd bericht", "messaggio inoltrato",
    "přeposlaná zpráva",
)  # fmt: skip
_HEADER_FROM = ("from:", "von:", "de:", "van:", "da:", "od:", "från:", "fra:", "от:")
_HEADER_SENT = ("sent:", "date:", "gesendet:", "datum:", "envoyé:", "enviado:", "fecha:",
                "verzonden:", "inviato:", "data:", "odesláno:", "skickat:", "sendt:")  # fmt: skip
_HEADER_OTHER = ("to:", "subject:", "an:", "betreff:", "à:", "objet:", "para:", "asunto:",
                 "aan:", "onderwerp:", "a:", "oggetto:", "komu:", "předmět:", "till:",
                 "ämne:", "til:", "emne:", "cc:")  # fmt: skip


def _bare(line: str) -> str:
    """A line lowercased without quote marks, bold stars and surrounding space."""
    return line[:QUOTE_LINE_CHARS].lstrip("> \t").strip().strip("*").strip().lower()


def _is_original_message_line(bare: str) -> bool:
    if not bare.startswith(("--", "__")) and not bare.endswith(("--", "__")):
        return False
    return bare.strip(" -_*") in _ORIGINAL_MESSAGE


def _is_header_block(lines: list[str], index: int) -> bool:
    """Outlook's "From: / Sent: / To: / Subject:" block starting at `index`."""
    if not _bare(lines[index]).startswith(_HEADER_FROM):
        return False
    window = [_bare(line) for line in lines[index + 1 : index + 7]]
    has_sent = any(line.startswith(_HEADER_SENT) for line in window)
    has_other = any(line.startswith(_HEADER_OTHER) for line in window)
    return has_sent and has_other


def _intro_length(lines: list[str], index: int) -> int:
    """How many lines (1-3) an "On <date>, <name> wrote:" intro at `index` spans, or 0."""
    first = _bare(lines[index])
    if not (first.startswith(_INTRO_STARTS) or first[:1].isdigit()):
        return 0
    joined = first
    for extra in range(3):
        if joined.endswith(_INTRO_ENDS):
            return extra + 1
        if index + extra + 1 >= len(lines) or not lines[index + extra + 1].strip():
            return 0
        joined = f"{joined} {_bare(lines[index + extra + 1])}"
    return 0


def _is_quoted(line: str) -> bool:
    return line[:QUOTE_LINE_CHARS].lstrip(" \t").startswith(">")


def split_quoted(
    body_text: str, *, separator: str | None = DEFAULT_REPLY_SEPARATOR
) -> tuple[str, str]:
    """Split a reply into (new text, quoted tail).

    The tail starts at the first of: the reply separator (osTicket's
    `-- reply above this line --`, quoted or not), an "-----Original Message-----" line, an
    Outlook "From: / Sent: / Subject:" block, an "On <date>, <name> wrote:" intro (several
    languages, up to three wrapped lines), or the block of "> " lines that ends the message
    (with the attribution line just above it). A forwarded message is never cut. If nothing
    would be left as new text, the whole body is returned as new text.

    Linear time: each line is looked at a bounded number of times and only its first
    `QUOTE_LINE_CHARS` characters are examined; intros are searched in the first
    `QUOTE_SCAN_LINES` lines."""
    text = (body_text or "").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    marker = " ".join((separator or "").split()).lower()
    cut: int | None = None
    for index in range(min(len(lines), QUOTE_SCAN_LINES)):
        line = lines[index]
        bare = _bare(line)
        if not bare:
            continue
        if any(forward in bare for forward in _FORWARD_MARKERS):
            return text.strip("\n"), ""
        if (marker and marker in bare) or _is_original_message_line(bare):
            cut = index
            break
        if _is_header_block(lines, index):
            above = _previous_nonblank(lines, index)
            if above >= 0 and _is_rule_line(lines[above]):  # Outlook's "____" line above
                index = above
            cut = index
            break
        if not _is_quoted(line) and _intro_length(lines, index):
            cut = index
            break
        if _is_quoted(line):
            break  # quoted text before any intro: only a trailing quote block can be cut
    if cut is None:
        cut = _trailing_quote_start(lines)
    if cut is None:
        return text.strip("\n"), ""
    new = "\n".join(lines[:cut]).strip("\n")
    if not new.strip():
        return text.strip("\n"), ""
    return new.rstrip(), "\n".join(lines[cut:]).strip("\n")


def _previous_nonblank(lines: list[str], index: int) -> int:
    index -= 1
    while index >= 0 and not lines[index].strip():
        index -= 1
    return index


def _is_rule_line(line: str) -> bool:
    line = line[:QUOTE_LINE_CHARS].strip()
    return len(line) >= 10 and not line.strip("_-")


def _trailing_quote_start(lines: list[str]) -> int | None:
    """Where the run of quoted (or blank) lines that ends the message starts, moved up to an
    attribution line ("John wrote:") right above it."""
    start = None
    index = len(lines) - 1
    while index >= 0:
        line = lines[index]
        if not line.strip():
            index -= 1
            continue
        if not _is_quoted(line):
            break
        start = index
        index -= 1
    if start is None:
        return None
    above = index  # first unquoted, non-blank line above the block, or -1
    if above >= 0 and _bare(lines[above]).endswith(":") and len(lines[above]) < 300:
        first = above
        # an attribution wrapped over two lines ("On ... <john@\nexample.com> wrote:")
        if above >= 1 and lines[above - 1].strip() and _intro_length(lines, above - 1) == 2:
            first = above - 1
        return first
    return start


# --- the parser ------------------------------------------------------------------------------


@dataclass
class _Segment:
    """One piece of body in reading order: a text part, an HTML part, or an alternative."""

    text: str | None = None
    html: str | None = None


_FILTER_HEADERS = (
    "return-path", "delivered-to", "x-original-to", "envelope-to", "sender", "list-id",
    "list-unsubscribe", "list-post", "auto-submitted", "precedence", "x-precedence",
    "x-autoreply", "x-autorespond", "x-autoresponse", "x-auto-response-suppress",
    "x-failed-recipients", "x-loop", "x-priority", "x-msmail-priority", "priority",
    "importance", "x-mailer", "user-agent", "x-spam-flag", "x-spam-status", "x-spam-score",
    "content-type",
)  # fmt: skip
_EXTENSIONS = {
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "message/delivery-status": ".txt",
    "message/disposition-notification": ".txt",
    "text/rfc822-headers": ".txt",
    "text/plain": ".txt",
    "text/html": ".html",
    "image/jpg": ".jpg",
    "image/jpeg": ".jpg",
    "application/pgp-signature": ".asc",
    "application/pkcs7-signature": ".p7s",
    "application/x-pkcs7-signature": ".p7s",
    "application/ms-tnef": ".dat",
    "application/octet-stream": ".bin",
}
_MIME_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_BOUNDARY_PARAM = re.compile(rb'boundary\s*=\s*"?([^"\r\n;]{1,200})', re.IGNORECASE)
_BOUNCE_SUBJECTS = (
    "delivery failure",
    "delivery status",
    "undeliverable:",
    "undelivered mail returned",
    "returned mail:",
    "mail delivery failed",
)


def _check_complexity(raw: bytes) -> None:
    """Refuse messages with more MIME parts than the limit before the slow parse starts."""
    if raw.count(b"\n--") <= MAX_MIME_PARTS:
        return
    boundaries = {match.group(1).strip() for match in _BOUNDARY_PARAM.finditer(raw[: 8 * _MiB])}
    delimiters = sum(raw.count(b"\n--" + boundary) for boundary in list(boundaries)[:20])
    if delimiters > MAX_MIME_PARTS:
        raise ParseError(f"the message has more than {MAX_MIME_PARTS} MIME parts")


def _iter_tree(message: Message, limit: int = MAX_MIME_PARTS * 2) -> Iterator[Message]:
    stack = [message]
    seen = 0
    while stack and seen < limit:
        part = stack.pop()
        seen += 1
        yield part
        if part.is_multipart():  # only then is get_payload() free of charset decoding
            stack.extend(item for item in part.get_payload() if isinstance(item, Message))


def _boundary_defects(message: Message) -> int:
    return sum(
        isinstance(defect, email_errors.StartBoundaryNotFoundDefect)
        for part in _iter_tree(message)
        for defect in part.defects
    )


def parse_message(raw: bytes, *, max_size: int | None = None) -> ParsedMessage:
    """Parse one raw message. Raises `MessageTooLarge` over `max_size` bytes and
    `ParseError` when the bytes are no usable email (empty, no header, too complex);
    anything else odd is repaired and noted in `errors`."""
    if isinstance(raw, bytearray | memoryview):
        raw = bytes(raw)
    if not isinstance(raw, bytes):
        raise TypeError("parse_message() takes the raw message as bytes")
    if max_size is not None and len(raw) > max_size:
        raise MessageTooLarge(len(raw), max_size)
    if not raw.strip():
        raise ParseError("the message is empty")
    _check_complexity(raw)
    try:
        return _Parser(raw).parse()
    except ParseError:
        raise
    except RecursionError as exc:
        raise ParseError("the message's MIME structure is nested too deeply") from exc
    except Exception as exc:
        # A parser bug must not take the mail pipeline down: the caller quarantines the
        # message with this reason, and the traceback goes to the log.
        logger.exception("mail parser failed")
        raise ParseError(f"the parser failed ({type(exc).__name__})") from exc


class _KeepingPolicy(EmailPolicy):
    """`policy.default`, keeping the header objects it builds: the standard library's parser
    and the walk below ask for each part's Content-Type many times, and `policy.default`
    parses the header again on every ask (half of all the time spent parsing mail). Header
    objects are immutable; the same header text gives the same object."""

    def header_fetch_parse(self, name: str, value: Any) -> Any:
        if hasattr(value, "name") or len(value) > _KEPT_HEADER_MAX:
            return super().header_fetch_parse(name, value)
        return _header_kept(name, value)


_KEPT_HEADER_MAX = 1000  # longer values (long References, huge Subjects) are parsed each time


@functools.lru_cache(maxsize=512)
def _header_kept(name: str, value: str) -> Any:
    return policy.default.header_fetch_parse(name, value)


_KEEPING_POLICY = _KeepingPolicy()


class _Parser:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.result = ParsedMessage()
        self.segments: list[_Segment] = []
        self.attachments: list[ParsedAttachment] = []
        self.parts_seen = 0
        self.html_budget = [HTML_MAX_CHARS, HTML_MAX_TAGS, HTML_MAX_ATTRIBUTES]
        self.has_dsn = False
        self.charset_hint: str | None = None
        self.returned_message_id = ""  # the bounced original's, from a report
        self.in_report = 0

    # errors

    def note(self, message: str) -> None:
        errors = self.result.errors
        if message not in errors and len(errors) < MAX_ERRORS:
            errors.append(message)

    def note_defects(self, part: Message) -> None:
        for defect in part.defects[:10]:
            self.note(f"MIME defect: {type(defect).__name__}")

    # entry point

    def parse(self) -> ParsedMessage:
        message = email.message_from_bytes(self.raw, policy=_KEEPING_POLICY)
        if not message.keys():
            raise ParseError("no header found: this is not an email message")
        if _boundary_defects(message):
            # policy.default misreads unquoted boundaries containing "=" (Outlook Express
            # wrote them); compat32 reads them right, and headers are read raw below anyway.
            fallback = email.message_from_bytes(self.raw, policy=policy.compat32)
            if _boundary_defects(fallback) < _boundary_defects(message):
                message = fallback
                self.note("MIME boundary re-read leniently")
        headers = self.read_headers(message)
        self.read_envelope(headers)
        self.walk(message, 0)
        self.read_body()
        self.result.attachments = self.attachments
        self.detect_auto_reply(headers)
        self.detect_bounce(headers)
        return self.result

    # headers

    def read_headers(self, message: Message) -> dict[str, list[str]]:
        content_type = ""
        for name, value in message.raw_items():
            if name.lower() == "content-type":
                content_type = _unfold(str(value))
                break
        self.charset_hint = _parse_params(content_type)[1].get("charset")
        headers: dict[str, list[str]] = {}
        raw_headers: list[tuple[str, str]] = []
        for count, (name, value) in enumerate(message.raw_items()):
            if count >= MAX_HEADERS_READ:
                self.note(f"more than {MAX_HEADERS_READ} header fields: the rest is ignored")
                break
            name = _one_line(str(name), 100)
            text = _fix_8bit(_unfold(str(value))[:MAX_ADDRESS_HEADER], self.charset_hint)
            values = headers.setdefault(name.lower(), [])
            if len(values) < 20:
                values.append(text)
            if len(raw_headers) < MAX_HEADERS_KEPT:
                raw_headers.append((name, _one_line(text, MAX_HEADER_VALUE)))
        self.result.raw_headers = raw_headers
        self.result.headers = {
            name: _one_line(_decode_words(headers[name][0]))
            for name in _FILTER_HEADERS
            if name in headers
        }
        return headers

    def read_envelope(self, headers: dict[str, list[str]]) -> None:
        result = self.result
        senders: list[tuple[str, str]] = []
        for value in headers.get("from", [])[:2]:
            senders.extend(_parse_addresses(value))
        if len(headers.get("from", [])) > 1:
            self.note("more than one From header: the first address is used")
        if senders:
            result.from_name, result.from_email = senders[0]
            if len(senders) > 1:
                self.note("From holds more than one address: the first is used")
        elif headers.get("from"):
            raw_from = headers["from"][0][:2048]
            match = _LOOSE_ADDRESS.search(raw_from)
            if match and _plausible_address(match.group(0).lower()):
                result.from_email = match.group(0).lower()
                self.note(f"From header malformed, address guessed: {_short(raw_from)}")
            else:
                self.note(f"From header holds no usable address: {_short(raw_from)}")
        else:
            self.note("no From header")
        for name, target in (("to", result.to), ("cc", result.cc), ("reply-to", result.reply_to)):
            for value in headers.get(name, [])[:5]:
                target.extend(address for _name, address in _parse_addresses(value))
            target[:] = _unique(target)[:MAX_ADDRESSES]

        subject = headers.get("subject", [""])[0][:MAX_HEADER_VALUE]
        result.subject = _one_line(_decode_words(subject), 998)
        if "message-id" in headers:
            ids = _message_ids(headers["message-id"][0], 1)
            result.message_id = ids[0] if ids else ""
        if "in-reply-to" in headers:
            ids = _message_ids(headers["in-reply-to"][0], 1)
            result.in_reply_to = ids[0] if ids else ""
        if "references" in headers:
            result.references = _unique(_message_ids(headers["references"][0], MAX_REFERENCES))
        if "date" in headers:
            result.date, problem = _parse_date(headers["date"][0])
            if problem:
                self.note(problem)

    # MIME structure

    def part_headers(self, part: Message) -> dict[str, str]:
        found: dict[str, str] = {}
        for name, value in part.raw_items():
            key = str(name).strip().lower()
            if key.startswith("content-") and key not in found:
                found[key] = _fix_8bit(_unfold(str(value))[:MAX_HEADER_VALUE])
        return found

    def content_type(self, part: Message, headers: dict[str, str]) -> tuple[str, dict[str, str]]:
        main, params = _parse_params(headers.get("content-type", ""))
        if not _MIME_TYPE.fullmatch(main):
            if main:
                self.note(f"unreadable Content-Type {_short(main)}: default type used")
            main = part.get_default_type()
        return main, params

    def walk(
        self,
        part: Message,
        depth: int,
        *,
        in_related: bool = False,
        force_attachment: bool = False,
    ) -> None:
        self.parts_seen += 1
        if self.parts_seen > MAX_MIME_PARTS:
            self.note(f"more than {MAX_MIME_PARTS} MIME parts: the rest is ignored")
            return
        if depth > MAX_DEPTH:
            self.note(f"MIME parts nested deeper than {MAX_DEPTH}: the rest is ignored")
            return
        self.note_defects(part)
        headers = self.part_headers(part)
        ctype, params = self.content_type(part, headers)
        children = (
            [item for item in part.get_payload() if isinstance(item, Message)]
            if part.is_multipart()
            else None
        )
        if ctype.startswith("message/") and children is not None:
            self.message_part(part, ctype, params, headers, children)
        elif children is not None:
            if not ctype.startswith("multipart/"):
                ctype = "multipart/mixed"
            self.multipart(ctype, params, children, depth, in_related=in_related)
        else:
            if ctype.startswith("multipart/"):
                ctype, params = "text/plain", {"charset": params.get("charset", "")}
            self.leaf(part, ctype, params, headers, in_related=in_related, force=force_attachment)

    def multipart(
        self,
        ctype: str,
        params: dict[str, str],
        children: list[Message],
        depth: int,
        *,
        in_related: bool,
    ) -> None:
        if not children:
            return
        subtype = ctype.partition("/")[2]
        if subtype == "alternative":
            self.alternative(children, depth)
        elif subtype == "related":
            start = params.get("start", "").strip("<> ")
            root = children[0]
            if start:
                for child in children:
                    cid = self.part_headers(child).get("content-id", "").strip("<> \t")
                    if cid == start:
                        root = child
                        break
            root_type = self.content_type(root, self.part_headers(root))[0]
            # A root that is no text (an image alone) is shown inline like the others.
            root_is_body = root_type.startswith(("text/", "multipart/"))
            self.walk(root, depth + 1, in_related=not root_is_body)
            for child in children:
                if child is not root:
                    self.walk(child, depth + 1, in_related=True)
        elif subtype == "signed":
            self.walk(children[0], depth + 1)
            for child in children[1:]:
                self.walk(child, depth + 1, force_attachment=True)
        elif subtype == "encrypted":
            self.note("encrypted message: its content is kept as attachments")
            for child in children:
                self.walk(child, depth + 1, force_attachment=True)
        elif subtype == "report":
            self.walk(children[0], depth + 1, in_related=in_related)
            self.in_report += 1
            for child in children[1:]:
                self.walk(child, depth + 1, force_attachment=True)
            self.in_report -= 1
        else:  # mixed, digest, parallel and unknown subtypes
            for child in children:
                self.walk(child, depth + 1, in_related=in_related)

    def alternative(self, children: list[Message], depth: int) -> None:
        """The last plain-text child gives the text, the last HTML-capable child the HTML;
        attachments come only from those two and from children that are neither."""
        outer_segments, outer_attachments = self.segments, self.attachments
        results = []
        for child in children:
            self.segments, self.attachments = [], []
            self.walk(child, depth + 1)
            results.append((self.segments, self.attachments))
        self.segments, self.attachments = outer_segments, outer_attachments
        text_choice = html_choice = None
        for index, (segments, _attachments) in enumerate(results):
            if any(segment.html is not None for segment in segments):
                html_choice = index
            elif segments:
                text_choice = index
        merged = _Segment()
        if text_choice is not None:
            merged.text = "\n\n".join(s.text or "" for s in results[text_choice][0])
        if html_choice is not None:
            merged.html = "\n".join(
                s.html if s.html is not None else _text_to_html(s.text or "")
                for s in results[html_choice][0]
            )
            if merged.text is None and all(s.text is not None for s in results[html_choice][0]):
                merged.text = "\n\n".join(s.text or "" for s in results[html_choice][0])
        if merged.text is not None or merged.html is not None:
            self.segments.append(merged)
        for index, (segments, attachments) in enumerate(results):
            if index in (text_choice, html_choice) or not segments:
                self.attachments.extend(attachments)

    def message_part(
        self,
        part: Message,
        ctype: str,
        params: dict[str, str],
        headers: dict[str, str],
        children: list[Message],
    ) -> None:
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            self.has_dsn = True
            lines = []
            for block in children[:MAX_ADDRESSES]:
                fields = {}
                for name, value in block.raw_items():
                    text = _one_line(_fix_8bit(_unfold(str(value))), 500)
                    fields.setdefault(str(name).lower(), text)
                    lines.append(f"{name}: {text}")
                lines.append("")
                self.dsn_recipient(fields)
            name = self.filename(headers, params, ctype, "", default="delivery-status.txt")
            self.add_attachment("\n".join(lines).encode(), ctype, name)
            return
        inner = children[0] if children else None
        content = _serialise(inner) if inner is not None else b""
        default_name = ""
        if inner is not None and ctype in ("message/rfc822", "message/global"):
            inner_headers = {
                str(name).lower(): _fix_8bit(_unfold(str(value)))
                for name, value in inner.raw_items()
            }
            subject = _one_line(_decode_words(inner_headers.get("subject", "")), 100)
            default_name = f"{subject}.eml" if subject else ""
            if self.in_report and not self.returned_message_id and "message-id" in inner_headers:
                ids = _message_ids(inner_headers["message-id"], 1)
                self.returned_message_id = ids[0] if ids else ""
        name = self.filename(headers, params, ctype, "", default=default_name)
        self.add_attachment(content, ctype, name)

    def dsn_recipient(self, fields: dict[str, str]) -> None:
        recipient = fields.get("final-recipient") or fields.get("original-recipient") or ""
        if not recipient:
            return
        address = recipient.partition(";")[2] if ";" in recipient else recipient
        address = address.strip().strip("<>").strip().lower()
        action = fields.get("action", "").strip().lower()
        status = fields.get("status", "").strip().split(" ")[0]
        if not _plausible_address(address):
            return
        self.result.bounce_details.append(
            {"recipient": address, "action": action, "status": status[:20]}
        )
        # "delayed" is listed too: the mail has not reached the address yet. Use
        # bounce_details to tell temporary (4.x.x) from permanent (5.x.x) failures.
        if action in ("failed", "delayed", "") and address not in self.result.bounce_recipients:
            self.result.bounce_recipients.append(address)

    def leaf(
        self,
        part: Message,
        ctype: str,
        params: dict[str, str],
        headers: dict[str, str],
        *,
        in_related: bool,
        force: bool,
    ) -> None:
        disposition, disposition_params = _parse_params(headers.get("content-disposition", ""))
        named = bool(disposition_params.get("filename") or params.get("name"))
        is_body = (
            ctype in ("text/plain", "text/html")
            and disposition != "attachment"
            and not named
            and not in_related
            and not force
        )
        try:
            data = part.get_payload(decode=True)
        except Exception:  # a transfer encoding the library cannot undo
            self.note("undecodable Content-Transfer-Encoding: content dropped")
            data = b""
        if not isinstance(data, bytes):
            data = b""
        if is_body:
            self.body_part(data, ctype, params)
            return
        if ctype == "text/rfc822-headers" and self.in_report and not self.returned_message_id:
            returned = email.message_from_bytes(data, policy=policy.compat32)
            for name, value in returned.raw_items():
                if str(name).lower() == "message-id":
                    ids = _message_ids(_fix_8bit(_unfold(str(value))), 1)
                    self.returned_message_id = ids[0] if ids else ""
                    break
        extension = _EXTENSIONS.get(ctype) or mimetypes.guess_extension(ctype) or ".bin"
        default = "returned-headers.txt" if ctype == "text/rfc822-headers" else ""
        name = self.filename(headers, params, ctype, extension, disposition_params, default=default)
        content_id = _one_line(headers.get("content-id", ""), 300).strip("<> ")[:255]
        inline = (in_related and disposition != "attachment") or (
            disposition == "inline" and bool(content_id)
        )
        self.add_attachment(data, ctype, name, content_id=content_id, inline=inline)

    def body_part(self, data: bytes, ctype: str, params: dict[str, str]) -> None:
        charset = params.get("charset")
        if ctype == "text/html" and not charset:
            charset = _sniff_html_charset(data)
        text, problem = decode_bytes(data, charset)
        if problem:
            self.note(f"{ctype} part: {problem}")
        text = _clean_text(text)
        if ctype == "text/html":
            self.segments.append(_Segment(html=text))
            return
        if params.get("format", "").lower() == "flowed":
            text = _unflow(text, delsp=params.get("delsp", "").lower() == "yes")
        self.segments.append(_Segment(text=text))

    def filename(
        self,
        headers: dict[str, str],
        params: dict[str, str],
        ctype: str,
        extension: str,
        disposition_params: dict[str, str] | None = None,
        *,
        default: str = "",
    ) -> str:
        if disposition_params is None:
            disposition_params = _parse_params(headers.get("content-disposition", ""))[1]
        name = disposition_params.get("filename") or params.get("name") or ""
        if not name and headers.get("content-location"):
            location = headers["content-location"].strip().split("?")[0].rstrip("/")
            name = location.rpartition("/")[2]
        name = _one_line(name, 400) or default
        if name:
            return clean_filename(name)
        extension = extension or _EXTENSIONS.get(ctype) or mimetypes.guess_extension(ctype) or ""
        return f"attachment-{len(self.attachments) + 1}{extension or '.bin'}"

    def add_attachment(
        self,
        content: bytes,
        ctype: str,
        filename: str,
        *,
        content_id: str = "",
        inline: bool = False,
    ) -> None:
        self.attachments.append(
            ParsedAttachment(
                filename=filename,
                content_type=guess_content_type(filename, ctype),
                size=len(content),
                content_id=content_id,
                inline=inline,
                content=content,
            )
        )

    # body

    def read_body(self) -> None:
        texts: list[str] = []
        htmls: list[str] = []
        has_html = any(segment.html is not None for segment in self.segments)
        for segment in self.segments:
            safe_html = None
            if segment.html is not None:
                safe_html, derived = self.sanitise(segment.html, need_text=segment.text is None)
                text = segment.text if segment.text is not None else derived
            else:
                text = segment.text or ""
            if text.strip():
                texts.append(text.strip("\n"))
            if has_html:
                if safe_html is not None:
                    htmls.append(safe_html)
                elif segment.html is None and text.strip():
                    htmls.append(_text_to_html(text))
        self.result.body_text = "\n\n".join(texts).strip()
        self.result.body_html = "\n".join(html for html in htmls if html.strip()).strip()
        self.result.bounce_message_id = self.returned_message_id

    def sanitise(self, html: str, *, need_text: bool) -> tuple[str | None, str]:
        """(sanitised HTML, text) of one HTML body part; (None, text) over the limits.
        The text is only derived when `need_text` (no text/plain alternative)."""
        visible = drop_invisible_elements(html)
        cost = [len(visible), visible.count("<"), visible.count("=")]
        if any(used > left for used, left in zip(cost, self.html_budget, strict=True)):
            self.note(
                "HTML body too large or complex to sanitise: kept as an attachment, text extracted"
            )
            self.add_attachment(
                html.encode("utf-8"),
                "text/html",
                f"message-{len(self.attachments) + 1}.html",
            )
            return None, _strip_tags_linear(visible) if need_text else ""
        self.html_budget = [left - used for used, left in zip(cost, self.html_budget, strict=True)]
        safe = "" + sanitize_html(visible)  # a plain str: this is data to store, not markup yet
        return safe, html_to_text(safe) if need_text else ""

    # classification

    def detect_auto_reply(self, headers: dict[str, list[str]]) -> None:
        """osTicket's `TicketFilter::isAutoReply` rules (osticket.md 2.3), widened where RFC
        3834 or Exchange say more. The subject alone ("Out of Office", "Automatic reply")
        is never enough: people write such subjects by hand, and osTicket doesn't use it."""

        def first(name: str) -> str:
            return _one_line(headers.get(name, [""])[0], 200).lower()

        auto_submitted = first("auto-submitted").split(";")[0].split("(")[0].strip()
        if "auto-submitted" in headers and auto_submitted != "no":
            self.result.auto_reply = True  # RFC 3834: any value but "no"
        precedence = first("precedence") or first("x-precedence")
        if precedence.startswith(("bulk", "junk", "list", "auto_reply")):
            self.result.auto_reply = True
        if first("x-autoreply").startswith("yes"):
            self.result.auto_reply = True
        suppress = {token.strip() for token in first("x-auto-response-suppress").split(",")}
        if suppress & {"all", "oof", "autoreply"}:  # Exchange puts "All" on OOF replies
            self.result.auto_reply = True
        if any(
            name in headers
            for name in ("x-autoresponse", "x-autoreply-from", "x-autorespond", "x-mail-autoreply")
        ):
            self.result.auto_reply = True
        if first("x-autogenerated").startswith("reply"):
            self.result.auto_reply = True
        if first("x-amazon-mail-relay-type").startswith("notification"):
            self.result.auto_reply = True
        ctype, params = _parse_params(headers.get("content-type", [""])[0])
        if ctype == "multipart/report" and params.get("report-type", "").lower() == (
            "disposition-notification"
        ):
            self.result.auto_reply = True  # read receipts (RFC 8098)

    def detect_bounce(self, headers: dict[str, list[str]]) -> None:
        """osTicket's `isBounce` rules, except that neither a bounce-like subject nor an empty
        Return-Path is enough alone: customers forward bounces with such subjects, and RFC
        3834 auto-replies are sent with an empty Return-Path too."""
        result = self.result
        ctype, params = _parse_params(headers.get("content-type", [""])[0])
        report = ctype == "multipart/report" and params.get("report-type", "").lower() == (
            "delivery-status"
        )
        local_part = result.from_email.partition("@")[0]
        raw_from = headers.get("from", [""])[0].lower()
        from_daemon = local_part in ("mailer-daemon", "postmaster") or "mailer-daemon" in raw_from
        failed = [
            address
            for value in headers.get("x-failed-recipients", [])[:5]
            for _name, address in _parse_addresses(value)
        ]
        subject = result.subject.lower()
        null_path = headers.get("return-path", ["x"])[0].strip() == "<>"
        subject_and_signal = subject.startswith(_BOUNCE_SUBJECTS) and (
            null_path or "auto-submitted" in headers
        )
        result.bounce = bool(report or self.has_dsn or from_daemon or failed or subject_and_signal)
        if result.bounce:
            for address in failed:
                if address not in result.bounce_recipients:
                    result.bounce_recipients.append(address)
                    result.bounce_details.append(
                        {"recipient": address, "action": "failed", "status": ""}
                    )


def _sniff_html_charset(data: bytes) -> str | None:
    head = data[:4096].decode("latin-1")
    match = _META_CHARSET.search(head)
    return match.group(1) if match else None


_META_CHARSET = re.compile(
    r"""<meta[^>]{0,500}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.IGNORECASE
)


def _serialise(message: Message) -> bytes:
    """An enclosed message as bytes for its .eml attachment (regenerated: the parser keeps
    no offsets into the raw bytes). compat32 writes the raw header values back unchanged."""
    buffer = io.BytesIO()
    try:
        BytesGenerator(
            buffer, mangle_from_=False, policy=policy.compat32.clone(linesep="\r\n")
        ).flatten(message)
    except Exception:  # a message the generator chokes on is kept as text
        try:
            return str(message).encode("utf-8", "surrogateescape")
        except Exception:
            return b""
    return buffer.getvalue()
