"""Celery tasks: fetch the IMAP and POP3 mailboxes (scheduled in CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from .fetching import FETCHED_PROTOCOLS, mailbox_fetch, mailboxes_fetch
from .models import Mailbox


@shared_task
def mailboxes_fetch_task() -> list[str]:
    """Fetch every active mailbox. Safe on several workers: a mailbox another worker is
    fetching is skipped, and a message is never stored or processed twice."""
    return [result.summary() for result in mailboxes_fetch()]


@shared_task
def mailbox_fetch_task(mailbox_id: int) -> str | None:
    """Fetch one mailbox now (e.g. after an admin saved it), if it still exists and is active."""
    mailbox = Mailbox.objects.filter(
        pk=mailbox_id, is_active=True, protocol__in=FETCHED_PROTOCOLS
    ).first()
    if mailbox is None:
        return None
    return mailbox_fetch(mailbox=mailbox).summary()
