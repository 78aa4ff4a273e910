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

# States in which a ticket takes messages and replies. Archived and deleted tickets take no
# more: a customer's new mail opens a new ticket; an agent restores the ticket first.
TAKES_MESSAGES = {StatusState.OPEN, StatusState.CLOSED}


def status_after_customer_message(status: TicketStatus) -> TicketStatus | None:
    """Where a customer's message moves a ticket: closed ones reopen, and statuses that wait
    on the customer ("Waiting on Customer") go back to the default open status."""
    if status.state == StatusState.CLOSED or status.waits_on_customer:
        return status_default(StatusState.OPEN)
    return None


def status_default(state: str = StatusState.OPEN) -> TicketStatus:
    status = (
        TicketStatus.objects.filter(state=state).order_by("-is_default", "sort_order", "pk").first()
    )
    if status is None:
        raise ValidationError({"status": _("No ticket status has the state %s.") % state})
    return status


def permissions_to_enter(status: TicketStatus) -> tuple[str, ...]:
    return STATE_PERMISSIONS[status.state]
