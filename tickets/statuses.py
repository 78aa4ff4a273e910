"""The rules for moving a ticket between statuses, in one place."""

import copy

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from helpdesk.lib.memo import VersionedMemo

from .models import StatusState, TicketStatus

# The permission an agent needs to move a ticket into a status of each state (any one of them).
STATE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    StatusState.OPEN: ("ticket.reply", "ticket.edit"),
    StatusState.CLOSED: ("ticket.close",),
    StatusState.ARCHIVED: ("ticket.close",),
    StatusState.DELETED: ("ticket.delete",),
}

# States in which a ticket takes messages and replies. Archived and deleted tickets take no
# more: a customer's new mail opens a new ticket; an agent restores the ticket first.
TAKES_MESSAGES = {StatusState.OPEN, StatusState.CLOSED}


def status_after_customer_message(status: TicketStatus) -> TicketStatus | None:
    """Where a customer's message moves a ticket: closed ones reopen, and statuses that wait
    on the customer ("Waiting on Customer") go back to the default open status."""
    if status.state == StatusState.CLOSED or status.waits_on_customer:
        return status_default(StatusState.OPEN)
    return None


def _defaults_by_state() -> dict[str, TicketStatus]:
    defaults: dict[str, TicketStatus] = {}
    for status in TicketStatus.objects.order_by("-is_default", "sort_order", "pk"):
        defaults.setdefault(status.state, status)
    return defaults


# Every new ticket and reopening reads it: kept per process (helpdesk.lib.memo).
_DEFAULTS = VersionedMemo("tickets.status_defaults", _defaults_by_state).watch(TicketStatus)


def status_default(state: str = StatusState.OPEN) -> TicketStatus:
    status = _DEFAULTS.get().get(state)
    if status is None:
        raise ValidationError({"status": _("No ticket status has the state %s.") % state})
    return copy.copy(status)  # the caller's own instance: the kept one is never changed


def permissions_to_enter(status: TicketStatus) -> tuple[str, ...]:
    return STATE_PERMISSIONS[status.state]
