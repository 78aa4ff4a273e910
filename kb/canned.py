"""Rendering canned responses for one ticket.

The body is a Django template rendered by a restricted engine (`CannedEngine`: no loaders,
only the tags and filters of `kb.canned_library`) on a context of plain strings in plain
dicts. No model object is reachable, so `{{ ticket.user.password }}` and the like render as
nothing.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.template import Context, Engine, TemplateSyntaxError
from django.utils.translation import gettext as _

if TYPE_CHECKING:
    from accounts.models import User
    from tickets.models import Ticket

# What the admin form's help lists; each value is a string.
VARIABLES = {
    "customer": ("name", "first_name", "email"),
    "ticket": ("number", "subject", "status", "department"),
    "agent": ("name", "first_name", "email"),
}


class CannedEngine(Engine):
    default_builtins = ["kb.canned_library"]


@cache
def canned_engine() -> Engine:
    return CannedEngine(dirs=[], app_dirs=False, loaders=[], libraries={}, autoescape=False)


def canned_template_check(body: str) -> None:
    """Raise ValidationError({"body": …}) when `body` is not a valid canned template."""
    try:
        canned_engine().from_string(body)
    except TemplateSyntaxError as error:
        raise ValidationError({"body": _("This template has an error: %s") % error}) from error


def canned_context(*, ticket: Ticket | None, agent: User | None) -> dict[str, dict[str, str]]:
    """The variables of a canned response: strings only."""
    context: dict[str, dict[str, str]] = {"customer": {}, "ticket": {}, "agent": {}}
    if ticket is not None:
        customer = ticket.user
        context["customer"] = {
            "name": customer.get_full_name(),
            "first_name": customer.get_short_name(),
            "email": customer.email,
        }
        context["ticket"] = {
            "number": str(ticket.number),
            "subject": ticket.subject,
            "status": str(ticket.status.name),
            "department": str(ticket.department.name),
        }
    if agent is not None:
        context["agent"] = {
            "name": agent.get_full_name(),
            "first_name": agent.get_short_name(),
            "email": agent.email,
        }
    return context


def canned_render(body: str, *, ticket: Ticket | None, agent: User | None) -> str:
    """The text of a canned response for this ticket and agent (markdown, not escaped: the
    reply is sanitised when it is shown)."""
    try:
        template = canned_engine().from_string(body)
    except TemplateSyntaxError:
        return body
    text = template.render(Context(canned_context(ticket=ticket, agent=agent), autoescape=False))
    # A plain str, not the SafeString Template.render returns: nothing was escaped, so any
    # page showing the text must escape it.
    return str.__str__(text)
