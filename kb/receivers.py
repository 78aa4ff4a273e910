"""The knowledge base listens to new tickets: a filed ticket ends its customer's deflections."""

from __future__ import annotations

from typing import Any

from .services import deflections_filed


def ticket_filed(sender: Any, ticket: Any, **kwargs: Any) -> None:
    deflections_filed(ticket=ticket)
