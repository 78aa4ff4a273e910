"""The staff search box: one text document per ticket.

`Ticket.search_document` holds the ticket's number, subject, the customer's name and
addresses and the text of its entries (notes included: only agents search). The services
keep it current. PostgreSQL searches it through a GIN index on
`to_tsvector('simple', search_document)` (migration 0007), with web-search syntax ("quoted
phrases", -exclusions, or); other databases match every word with LIKE.

The 'simple' text configuration neither stems nor drops stop words, so it works the same
for every language a help desk receives mail in.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import unescape

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils.html import strip_tags

from .models import BodyFormat, Ticket

# PostgreSQL caps a tsvector at 1 MB; a ticket with endless mail keeps its first 200,000
# characters searchable, which holds the subject, the customer and the early conversation.
DOCUMENT_LIMIT = 200_000
CONFIG = "simple"


def entry_text(body: str, body_format: str) -> str:
    """The searchable text of a thread entry's body."""
    if body_format == BodyFormat.HTML:
        return unescape(strip_tags(body))
    return body


def document_build(ticket: Ticket, entries: Iterable[tuple[str, str]] = ()) -> str:
    """A ticket's whole document from the ticket and its (body, body_format) entries."""
    user = ticket.user
    parts = [
        ticket.number,
        ticket.subject,
        user.get_full_name(),
        user.email,
        *(entry_text(body, fmt) for body, fmt in entries),
    ]
    return "\n".join(p for p in parts if p)[:DOCUMENT_LIMIT]


def document_append(document: str, text: str) -> str:
    """The document with one more entry's text (an entry added or a subject changed)."""
    if not text or len(document) >= DOCUMENT_LIMIT:
        return document
    return f"{document}\n{text}"[:DOCUMENT_LIMIT]


def tickets_search(queryset: QuerySet[Ticket], query: str) -> QuerySet[Ticket]:
    """The tickets of `queryset` whose document matches the words of `query`."""
    query = " ".join(query.split())[:200]
    if not query:
        return queryset
    number = query.lstrip("#")
    if connection.vendor == "postgresql":
        return queryset.annotate(_search=SearchVector("search_document", config=CONFIG)).filter(
            Q(_search=SearchQuery(query, search_type="websearch", config=CONFIG)) | Q(number=number)
        )
    condition = Q()
    for word in query.split():
        condition &= Q(search_document__icontains=word.strip('"'))
    return queryset.filter(condition | Q(number=number))
