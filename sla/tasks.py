"""Celery tasks of the scheduled jobs (CELERY_BEAT_SCHEDULE); each calls one job of
`sla.jobs`, all safe to run twice or on several workers at once."""

from smtplib import SMTPException

from celery import shared_task

from . import jobs


@shared_task
def overdue_check_task() -> int:
    return len(jobs.overdue_check().marked)


@shared_task(autoretry_for=(SMTPException,), retry_backoff=True, max_retries=5)
def overdue_alerts_task(ticket_ids: list[int]) -> int:
    return jobs.overdue_alerts_send(ticket_ids)


@shared_task
def auto_close_task() -> int:
    return len(jobs.auto_close())


@shared_task
def ticket_locks_clear_task() -> int:
    return jobs.ticket_locks_clear()


@shared_task
def purge_task() -> dict[str, int]:
    return jobs.purge()
