"""Rendered parts of the busiest pages, kept in the query cache (helpdesk.lib.querycache)
until ticket data changes.

A fragment's key must name everything it shows besides the ticket data that the query
cache watches: the viewer (`permissions.visibility_key`), the version tokens of the rows it
shows, the GET parameters. The language, the time zone and the current minute (pages show
"5 minutes ago", "due in 2 hours") are added here. Forms in a fragment are rendered with a
placeholder for the CSRF token, which each request replaces with its own: a token is never
kept, and never shared between sessions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

from helpdesk.jinja import request_csrf_token

from . import querycache

# Stands for the request's CSRF token in a kept fragment.
CSRF_PLACEHOLDER = "csrf0placeholder0a41c9e27d5b4f0f8e3d6a1b2c7f9e04"


def minute() -> str:
    """The current minute, part of every fragment's key."""
    return timezone.now().strftime("%Y%m%d%H%M")


def fragment(
    request: HttpRequest,
    kind: str,
    parts: tuple[Any, ...],
    render: Callable[[dict[str, Any]], str],
    *,
    scopes: list[str] | None = None,
) -> SafeString:
    """`render(extra_context)`'s HTML, or what it gave for the same `kind` and `parts` (in
    this language, time zone and minute) since the data last changed. `render` must put
    `extra_context` into its template context: it holds the placeholder token for Django's
    `{% csrf_token %}`; Jinja2's `csrf_field(request)` takes it from the request. With
    `scopes`, the fragment depends on the ticket data of those scopes only
    (`querycache.remember_scoped`)."""

    def compute() -> str:
        saved = getattr(request, "_helpdesk_csrf_token", None)
        request._helpdesk_csrf_token = CSRF_PLACEHOLDER  # type: ignore[attr-defined]
        try:
            return render({"csrf_token": CSRF_PLACEHOLDER})
        finally:
            if saved is None:
                del request._helpdesk_csrf_token  # type: ignore[attr-defined]
            else:
                request._helpdesk_csrf_token = saved  # type: ignore[attr-defined]

    key = (
        *parts,
        get_language(),
        timezone.get_current_timezone_name(),
        minute(),
    )
    if scopes is None:
        html = querycache.remember(kind, key, compute)
    else:
        html = querycache.remember_scoped(kind, key, compute, scopes)
    # The template's own output; only the request's token is put in.
    return mark_safe(html.replace(CSRF_PLACEHOLDER, request_csrf_token(request)))  # noqa: S308
