"""The scheduled jobs: overdue check, auto-close, edit locks and the daily purge.

Each job is set-based and safe when several workers run it at once:

- A job changes rows with one conditional UPDATE per kind of change (`... WHERE is_overdue =
  false AND due_at < now`), which also claims them: a second worker running at the same
  moment waits for the first one's row locks, then finds the condition false and changes
  nothing (PostgreSQL and InnoDB re-check the condition on the latest row; SQLite runs
  one writer at a time).
- A run holds its job's `JobRun` row lock for its transaction; a run that finds it held
  skips (PostgreSQL and MariaDB, `SKIP LOCKED`) or waits for it (SQLite): runs of a job never
  overlap, and each one stamps the rows it changes with the clock read under that lock
  (`overdue_at`, `auto_closed_at`), so it reads back exactly its own rows, in one query.
- Events are written with one `bulk_create`, in the same transaction as the change.
  Alerts go to Celery after commit, in chunks.

The number of queries depends on the number of statuses that close automatically, never on
the number of tickets. The per-ticket `tickets.signals.ticket_event` is not sent for these bulk
changes (it would cost a query per ticket in its receivers); `sla.signals.tickets_overdue`
and `sla.signals.tickets_auto_closed` announce them with the ticket ids instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import BigIntegerField, Case, DateTimeField, F, Q, Value, When
from django.utils import timezone

from helpdesk.lib import querycache
from tickets.models import (
    Attachment,
    EventAction,
    Priority,
    StatusState,
    ThreadEvent,
    Ticket,
    TicketStatus,
)
from tickets.services import ticket_locks_expired_clear

from .models import JobRun, SLAPlan
from .signals import tickets_auto_closed, tickets_overdue

logger = logging.getLogger(__name__)

ALERT_CHUNK = 200
# Files younger than this are never purged: their attachment or message row may belong to
# a transaction that has not committed yet.
ORPHAN_GRACE = timedelta(days=1)


def _job_lock(name: str) -> bool:
    """Lock the job's row for the rest of the transaction. False: another run holds it."""
    assert transaction.get_connection().in_atomic_block
    JobRun.objects.get_or_create(name=name)
    rows = JobRun.objects.filter(name=name)
    if connection.features.has_select_for_update_skip_locked:
        rows = rows.select_for_update(skip_locked=True)
    else:
        rows = rows.select_for_update()
    return bool(list(rows.values_list("pk", flat=True)))


@dataclass
class OverdueResult:
    marked: list[int] = field(default_factory=list)
    escalated: list[int] = field(default_factory=list)
    alerted: list[int] = field(default_factory=list)


def overdue_check(*, now: datetime | None = None) -> OverdueResult:
    """Mark open tickets past their due date overdue, in one UPDATE that also raises the
    priority one step where the plan escalates.

    Tickets whose clock is paused (a status that pauses the SLA) are skipped unless an agent
    set their due date by hand. For each ticket marked: one `overdue` event (with
    `escalated: {from, to}` when its priority was raised) and, after commit, an alert to its
    agents unless its plan has alerts off. Returns the ids marked, escalated and alerted."""
    now = now or timezone.now()
    result = OverdueResult()
    running = list(
        TicketStatus.objects.filter(state=StatusState.OPEN, pauses_sla=False).values_list(
            "pk", flat=True
        )
    )
    plans = {
        pk: (name, escalate, silent)
        for pk, name, escalate, silent in SLAPlan.objects.values_list(
            "pk", "name", "escalate_on_overdue", "disable_alerts"
        )
    }
    escalating = [pk for pk, (_plan, escalate, _silent) in plans.items() if escalate]
    # Each priority and the one a step more urgent (urgency 1 is the most urgent).
    ladder = list(pairwise(Priority.objects.order_by("urgency").values_list("pk", "name")))
    names = {pk: name for pair in ladder for pk, name in pair}
    less_urgent = {more[0]: less[0] for more, less in ladder}
    with transaction.atomic():
        if not _job_lock("sla-overdue-check"):
            return result
        # The run's stamps: one for the tickets it marks, a microsecond later for those it
        # also escalates, so the read-back tells them apart without a second UPDATE.
        stamp = timezone.now()
        escalated_stamp = stamp + timedelta(microseconds=1)
        changes: dict[str, object] = {"is_overdue": True, "overdue_at": stamp}
        if escalating and ladder:
            raise_one_step = [
                When(sla_id__in=escalating, priority_id=less[0], then=Value(more[0]))
                for more, less in ladder
            ]
            changes["priority_id"] = Case(
                *raise_one_step, default=F("priority_id"), output_field=BigIntegerField()
            )
            changes["overdue_at"] = Case(
                When(
                    sla_id__in=escalating,
                    priority_id__in=list(less_urgent.values()),
                    then=Value(escalated_stamp),
                ),
                default=Value(stamp),
                output_field=DateTimeField(),
            )
        # A paused clock stops the SLA's due dates, not a date an agent set by hand.
        marked = (
            Ticket.objects.filter(closed_at__isnull=True, is_overdue=False, due_at__lt=now)
            .filter(
                Q(sla_paused_at__isnull=True, status_id__in=running)
                | Q(due_override_at__isnull=False)
            )
            .update(**changes)
        )
        if not marked:
            return result
        # Read back through the same partial index the UPDATE used (open, past due).
        rows = Ticket.objects.filter(
            closed_at__isnull=True, due_at__lt=now, overdue_at__in=[stamp, escalated_stamp]
        ).values_list("pk", "thread__pk", "sla_id", "priority_id", "due_at", "overdue_at")
        events = []
        for pk, thread_id, sla_id, priority_id, due_at, marked_at in rows:
            plan = plans.get(sla_id)
            data: dict[str, object] = {
                "due_at": due_at.isoformat() if due_at else None,
                "sla": _plan_name(plan),
            }
            if marked_at == escalated_stamp:
                # The escalation is part of the one event: the timeline shows it with it.
                result.escalated.append(pk)
                data["escalated"] = {
                    "from": names[less_urgent[priority_id]],
                    "to": names[priority_id],
                }
            events.append(
                ThreadEvent(
                    thread_id=thread_id, action=EventAction.OVERDUE, data=data, created_at=stamp
                )
            )
            if plan is None or not plan[2]:
                result.alerted.append(pk)
            result.marked.append(pk)
        ThreadEvent.objects.bulk_create(events, batch_size=_batch_size())
        querycache.data_changed(tickets=[*result.marked, *result.escalated])
        marked_ids, alerted = list(result.marked), list(result.alerted)
        transaction.on_commit(lambda: _after_overdue(marked_ids, alerted))
    logger.info("Overdue: %d marked, %d escalated", len(result.marked), len(result.escalated))
    return result


def _plan_name(plan: tuple[str, bool, bool] | None) -> str | None:
    return plan[0] if plan is not None else None


def _batch_size() -> int | None:
    # SQLite limits the variables of one statement; PostgreSQL and MariaDB take one INSERT.
    from django.db import connection

    return 500 if connection.vendor == "sqlite" else None


def _after_overdue(marked: list[int], alerted: list[int]) -> None:
    from .tasks import overdue_alerts_task

    tickets_overdue.send(sender=Ticket, ticket_ids=marked)
    for start in range(0, len(alerted), ALERT_CHUNK):
        overdue_alerts_task.delay(alerted[start : start + ALERT_CHUNK])


def overdue_alerts_send(ticket_ids: list[int]) -> int:
    """Send the overdue alert for each ticket still overdue and open (the Celery task)."""
    from mailgate.notifications import overdue_alert_send

    sent = 0
    for ticket in Ticket.objects.filter(pk__in=ticket_ids, is_overdue=True, closed_at=None):
        try:
            sent += bool(overdue_alert_send(ticket))
        except Exception:
            logger.exception("Overdue alert for ticket %s failed", ticket.number)
    return sent


def auto_close_target() -> TicketStatus | None:
    """Where auto-close moves tickets: the default closed status that does not itself close
    automatically."""
    return (
        TicketStatus.objects.filter(state=StatusState.CLOSED, auto_close=False)
        .order_by("-is_default", "sort_order", "pk")
        .first()
    )


def auto_close(*, now: datetime | None = None) -> list[int]:
    """Close tickets that have been in a status that closes automatically ("Resolved") for
    HELPDESK_AUTO_CLOSE_DAYS days: since they were resolved, and since the customer's last
    message and the last reopen (a customer reply reopens the ticket and so restarts the
    clock). One UPDATE per such status; an `auto_closed` event per ticket. Returns the ids."""
    days = settings.HELPDESK_AUTO_CLOSE_DAYS
    if days <= 0:
        return []
    now = now or timezone.now()
    cutoff = now - timedelta(days=days)
    target = auto_close_target()
    sources = list(
        TicketStatus.objects.filter(state=StatusState.CLOSED, auto_close=True).values_list(
            "pk", "name"
        )
    )
    if target is None or not sources:
        return []
    closed: list[int] = []
    with transaction.atomic():
        if not _job_lock("sla-auto-close"):
            return []
        events = []
        start = timezone.now()
        for index, (source, source_name) in enumerate(sources):
            # Each status gets its own stamp, so the rows read back came from it.
            stamp = start + timedelta(microseconds=index)
            updated = (
                Ticket.objects.filter(status_id=source, closed_at__lte=cutoff)
                .filter(Q(last_message_at__isnull=True) | Q(last_message_at__lte=cutoff))
                .filter(Q(reopened_at__isnull=True) | Q(reopened_at__lte=cutoff))
                .update(status_id=target.pk, auto_closed_at=stamp, closed_by=None, updated_at=stamp)
            )
            if not updated:
                continue
            rows = Ticket.objects.filter(auto_closed_at=stamp, status_id=target.pk).values_list(
                "pk", "thread__pk"
            )
            for pk, thread_id in rows:
                closed.append(pk)
                events.append(
                    ThreadEvent(
                        thread_id=thread_id,
                        action=EventAction.AUTO_CLOSED,
                        data={"from": source_name, "to": target.name, "days": days},
                        created_at=start,
                    )
                )
        ThreadEvent.objects.bulk_create(events, batch_size=_batch_size())
        if events:
            querycache.data_changed(tickets=closed)
        ids = list(closed)
        if ids:
            transaction.on_commit(lambda: tickets_auto_closed.send(sender=Ticket, ticket_ids=ids))
    logger.info("Auto-close: %d closed", len(closed))
    return closed


def ticket_locks_clear(*, now: datetime | None = None) -> int:
    return ticket_locks_expired_clear(now=now)


# --- purge ----------------------------------------------------------------------------------


def _sessions_purge(now: datetime) -> int:
    from importlib import import_module

    engine = import_module(settings.SESSION_ENGINE)
    if settings.SESSION_ENGINE in (
        "django.contrib.sessions.backends.db",
        "django.contrib.sessions.backends.cached_db",
    ):
        from django.contrib.sessions.models import Session

        deleted, _rows = Session.objects.filter(expire_date__lt=now).delete()
        return deleted
    engine.SessionStore.clear_expired()
    return 0


def _files_under(folder: str) -> list[str]:
    """Every file below `folder` in the default storage, at any depth (attachments sit in
    two levels of hash folders, raw mail in a folder per day or, stored before, by hash)."""
    paths: list[str] = []
    try:
        folders, names = default_storage.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return paths
    paths += [f"{folder}/{name}" for name in names]
    for sub in folders:
        paths += _files_under(f"{folder}/{sub}")
    return paths


def _orphans_delete(folder: str, referenced: set[str], now: datetime, suffix: str = "") -> int:
    """Delete files below `folder` whose content hash (the file name without `suffix`) no row
    references and that are older than the grace period."""
    deleted = 0
    for path in _files_under(folder):
        # A name the storage made unique (two saves of the same content at one moment)
        # carries a suffix after "_": the hash before it is what rows reference.
        digest = path.rsplit("/", 1)[-1].removesuffix(suffix).split("_", 1)[0]
        if digest in referenced:
            continue
        try:
            modified = default_storage.get_modified_time(path)
        except (FileNotFoundError, NotImplementedError):
            continue
        if timezone.is_naive(modified):
            modified = timezone.make_aware(modified)
        if modified > now - ORPHAN_GRACE:
            continue
        default_storage.delete(path)
        deleted += 1
    return deleted


def _mail_logs_purge(now: datetime) -> tuple[int, int]:
    from mailgate.models import InboundMessage, InboundStatus, OutboundMessage, OutboundStatus

    days = settings.HELPDESK_LOG_RETENTION_DAYS
    if days <= 0:
        return 0, 0
    cutoff, failed_cutoff = now - timedelta(days=days), now - timedelta(days=2 * days)
    inbound, _rows = InboundMessage.objects.filter(
        Q(status__in=[InboundStatus.PROCESSED, InboundStatus.IGNORED], received_at__lt=cutoff)
        | Q(status=InboundStatus.FAILED, received_at__lt=failed_cutoff)
    ).delete()
    outbound, _rows = OutboundMessage.objects.filter(
        Q(status__in=[OutboundStatus.SENT, OutboundStatus.SKIPPED], created_at__lt=cutoff)
        | Q(status=OutboundStatus.FAILED, created_at__lt=failed_cutoff)
    ).delete()
    return inbound, outbound


def purge(*, now: datetime | None = None) -> dict[str, int]:
    """The daily clean-up: expired sessions and edit locks, mail logs past
    HELPDESK_LOG_RETENTION_DAYS, then stored files nothing references any more (attachments
    and raw mail). Password-reset and portal guest links are signed and expire by
    themselves; nothing of them is stored."""
    from mailgate.models import InboundMessage

    now = now or timezone.now()
    counts = {"sessions": _sessions_purge(now), "ticket_locks": ticket_locks_clear(now=now)}
    counts["inbound_messages"], counts["outbound_messages"] = _mail_logs_purge(now)
    attachments = set(Attachment.objects.values_list("content_hash", flat=True).distinct())
    counts["attachment_files"] = _orphans_delete("attachments", attachments, now)
    messages = set(InboundMessage.objects.values_list("content_hash", flat=True).distinct())
    counts["mail_files"] = _orphans_delete("mail", messages, now, suffix=".eml")
    logger.info("Purge: %s", counts)
    return counts
