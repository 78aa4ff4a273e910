"""The small admin-defined rows a ticket points to (its status, priority, department, team,
help topic and SLA plan), kept per process (helpdesk.lib.memo) and set on tickets read for
display, so those reads join only the people.

On PostgreSQL, planning a ticket query joined to seven or more tables took longer than
running it (3 to 9 ms against well under 1 ms): the join order search grows with every table.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from django.db.models import Model

from helpdesk.lib.memo import VersionedMemo
from routing.models import Department, HelpTopic, Team
from sla.models import SLAPlan

from .models import Priority, Ticket, TicketStatus

MODELS: dict[str, type[Model]] = {
    "status": TicketStatus,
    "priority": Priority,
    "department": Department,
    "team": Team,
    "help_topic": HelpTopic,
    "sla": SLAPlan,
}


def _loader(model: type[Model]) -> Any:
    return lambda: {row.pk: row for row in model.objects.all()}


# One copy per table: a changed department does not reload the statuses.
_ROWS = {
    name: VersionedMemo(f"tickets.related.{name}", _loader(model)).watch(model)
    for name, model in MODELS.items()
}


def related_attach(tickets: Iterable[Ticket], names: Iterable[str] = tuple(MODELS)) -> None:
    """Set the `names` relations of `tickets` from the kept rows, each request its own copies
    (a caller may change them). A row not kept yet (created a moment ago) is left to Django's
    usual lazy read."""
    names = tuple(names)
    rows = {name: _ROWS[name].get() for name in names}
    copies: dict[tuple[str, int], Any] = {}
    fields = [(name, Ticket._meta.get_field(name)) for name in names]
    for ticket in tickets:
        for name, field in fields:
            pk = getattr(ticket, field.attname)
            if pk is None or field.is_cached(ticket):
                continue
            row = copies.get((name, pk))
            if row is None:
                kept = rows[name].get(pk)
                if kept is None:
                    continue
                row = copies[(name, pk)] = copy.copy(kept)
            field.set_cached_value(ticket, row)


def related_row(name: str, pk: int | None) -> Any:
    """A copy of one kept row (the `name` relation's row `pk`), read now if not kept yet;
    None for no pk or a row that is gone."""
    if pk is None:
        return None
    kept = _ROWS[name].get().get(pk)
    if kept is not None:
        return copy.copy(kept)
    return MODELS[name]._default_manager.filter(pk=pk).first()


def related_tokens() -> tuple[str | None, ...]:
    """The versions of the kept rows (part of the key of what is rendered from them)."""
    return tuple(memo.token() for memo in _ROWS.values())
