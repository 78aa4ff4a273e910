"""Signals of the scheduled jobs, sent after their transaction commits.

The jobs change many tickets with one statement each, so they announce them together
rather than with one `tickets.signals.ticket_event` per ticket.
"""

from django.dispatch import Signal

# kwargs: ticket_ids (the tickets one run of the overdue check marked overdue)
tickets_overdue = Signal()
# kwargs: ticket_ids (the tickets one run of auto-close closed)
tickets_auto_closed = Signal()
