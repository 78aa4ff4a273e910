"""Reads of tickets, always through `accounts.permissions`."""

from django.db.models import QuerySet
from django.http import Http404

from accounts import permissions
from accounts.models import User

from .models import EntryKind, ThreadEntry, ThreadEvent, Ticket


def ticket_list_for_user(*, user: User) -> QuerySet[Ticket]:
    """Tickets the user may see, with what a list row shows joined in."""
    return permissions.visible_tickets(user).select_related(
        "user", "department", "status", "priority", "assignee", "team", "help_topic"
    )


def ticket_get_for_user(*, user: User, number: str) -> Ticket:
    """The ticket with this number, or 404 when it does not exist or the user may not see it
    (the two look the same, so numbers cannot be probed)."""
    ticket = ticket_list_for_user(user=user).filter(number=number).first()
    if ticket is None:
        raise Http404("No such ticket.")
    return ticket


def ticket_entries_for_user(*, ticket: Ticket, user: User) -> QuerySet[ThreadEntry]:
    """The thread as the user may read it: customers never get internal notes."""
    entries = (
        ThreadEntry.objects.filter(thread__ticket=ticket)
        .select_related("author")
        .prefetch_related("attachments")
        .order_by("created_at", "pk")
    )
    if not permissions.is_agent(user):
        entries = entries.exclude(kind=EntryKind.NOTE)
    return entries


def ticket_events(*, ticket: Ticket) -> QuerySet[ThreadEvent]:
    """The audit trail, oldest first."""
    return (
        ThreadEvent.objects.filter(thread__ticket=ticket)
        .select_related("actor")
        .order_by("created_at", "pk")
    )
