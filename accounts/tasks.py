from celery import shared_task
from django.core.management import call_command


@shared_task
def sessions_purge_task() -> None:
    """Delete expired sessions (idempotent; safe on several workers)."""
    call_command("clearsessions")
