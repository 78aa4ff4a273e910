"""The rules for moving a ticket between statuses, in one place."""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .models import StatusState, TicketStatus

# The permission an agent needs to move a ticket into a status of each state (any one of them).
STATE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    StatusState.OPEN: ("ticket.reply", "ticket.edit"),
    StatusState.CLOSED: ("ticket.close",),
    StatusState.ARCHIVED: ("ticket.close",),
    StatusState.DELETED: ("ticket.delete",),
}

# States from which a customer's message reopens the ticket. Archived and deleted tickets
# take no more messages: a new one opens a new ticket.
REOPENED_BY_MESSAGE = {StatusState.OPEN, StatusState.CLOSED}


def status_default(state: str = StatusState.OPEN) -> TicketStatus:
    status = (
        TicketStatus.objects.filter(state=state).order_by("-is_default", "sort_order", "pk").first()
    )
    if status is None:
        raise ValidationError({"status": _("No ticket status has the state %s.") % state})
    return status


def permissions_to_enter(status: TicketStatus) -> tuple[str, ...]:
    return STATE_PERMISSIONS[status.state]
