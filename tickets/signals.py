"""Signals sent after the transaction that changed a ticket has committed.

Notifications (mail), webhooks and search indexing subscribe to these; they never fire for a
change that rolled back.
"""

from django.dispatch import Signal

# kwargs: ticket, entry (the first message), event (its "created" ThreadEvent)
ticket_created = Signal()
# kwargs: ticket, event (a ThreadEvent; every change of a ticket records one)
ticket_event = Signal()
