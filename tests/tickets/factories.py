from tests.accounts.factories import UserFactory
from tickets.models import Priority, StatusState, Ticket, TicketStatus
from tickets.services import TicketDraft, ticket_open


def status(name: str) -> TicketStatus:
    return TicketStatus.objects.get(name=name)


def priority(name: str) -> Priority:
    return Priority.objects.get(name=name)


def open_ticket(**fields: object) -> Ticket:
    """A ticket opened through the service, as a customer would (fields go to the draft)."""
    by = fields.pop("by", None)
    fields.setdefault("subject", "Printer on fire")
    fields.setdefault("body", "It is on fire. Please help.")
    if "user" not in fields and "email" not in fields:
        fields["user"] = UserFactory()
    return ticket_open(draft=TicketDraft(**fields), by=by)


def closed_status() -> TicketStatus:
    return TicketStatus.objects.get(state=StatusState.CLOSED, is_default=True)
