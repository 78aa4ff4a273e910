"""SLA jobs benchmark: the overdue check and auto-close over 100,000 open tickets on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/helpdesk_sla_bench \\
        .venv/bin/python bench/sla_jobs.py --tickets 100000

What it does (see bench/README.md for the figures):
1. drops and recreates the benchmark database (the name in DATABASE_URL must contain
   "bench") and migrates it, with production-like settings (DEBUG off, a Celery broker in
   memory, so alerts are queued, not sent);
2. bulk-inserts N open tickets with their threads (`--overdue` of them past their due date,
   a third of those under a plan that escalates, the rest under one that alerts), plus
   `--resolved` tickets in the "Resolved" status (half of them resolved 20 days ago, half
   2 days ago), then VACUUM ANALYZE;
3. times `sla.jobs.overdue_check` and `sla.jobs.auto_close` (each run twice: the second
   finds nothing left to do) and counts their SQL statements;
4. prints the figures and drops the database (--keep-db keeps it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/helpdesk_sla_bench"
BATCH = 10_000


def configure_environment(url: str) -> None:
    """Production-like settings, set before Django reads them. A developer's .env is ignored."""
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "helpdesk.settings.base",
            "ENV_FILE": os.devnull,
            "DATABASE_URL": url,
            "DEBUG": "false",
            "SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789abcdefghij",
            "ALLOWED_HOSTS": "localhost",
            "SECURE_SSL_REDIRECT": "false",
            "CELERY_BROKER_URL": "memory://",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "EMAIL_URL": "dummymail://",
            "LOG_LEVEL": "WARNING",
            "AUTO_CLOSE_DAYS": "14",
        }
    )


def _admin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    return name, urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))


def database_reset(url: str) -> None:
    import psycopg

    name, admin_url = _admin(url)
    if "bench" not in name:
        sys.exit(f"Refusing to drop database {name!r}: its name must contain 'bench'.")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def database_drop(url: str) -> None:
    import psycopg

    name, admin_url = _admin(url)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed(tickets: int, overdue: int, resolved: int) -> dict[str, int]:
    """Bulk-insert the tickets and their threads; returns what was made."""
    from decimal import Decimal

    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from routing.services import department_default
    from sla.models import SLAPlan
    from tickets.models import Priority, Thread, Ticket, TicketStatus

    now = timezone.now()
    customer = User.objects.create_user("bench-customer@example.com", None, name="Customer")
    department = department_default()
    normal = Priority.objects.get(name="Normal")
    open_status = TicketStatus.objects.get(name="Open")
    resolved_status = TicketStatus.objects.get(name="Resolved")
    escalating = SLAPlan.objects.create(
        name="Escalating",
        first_response_hours=Decimal(1),
        resolution_hours=Decimal(8),
        escalate_on_overdue=True,
    )
    alerting = SLAPlan.objects.create(
        name="Alerting", first_response_hours=Decimal(1), resolution_hours=Decimal(8)
    )

    def ticket(index: int, **fields: object) -> Ticket:
        values: dict[str, object] = {
            "number": f"B{index:07d}",
            "subject": f"Benchmark ticket {index}",
            "user": customer,
            "department": department,
            "status": open_status,
            "priority": normal,
            "created_at": now - timedelta(days=3),
            "last_message_at": now - timedelta(days=3),
        }
        return Ticket(**{**values, **fields})

    rows = []
    for index in range(tickets):
        if index < overdue:
            plan = escalating if index % 3 == 0 else alerting
            due = now - timedelta(minutes=5 + index % 600)
        else:
            plan, due = alerting, now + timedelta(hours=1 + index % 500)
        rows.append(ticket(index, sla=plan, due_at=due, resolution_due_at=due))
    for offset in range(resolved):
        closed_at = now - timedelta(days=20 if offset % 2 == 0 else 2)
        opened = closed_at - timedelta(days=1)
        rows.append(
            ticket(
                tickets + offset,
                sla=alerting,
                status=resolved_status,
                closed_at=closed_at,
                created_at=opened,
                last_message_at=opened,
            )
        )
    for start in range(0, len(rows), BATCH):
        made = Ticket.objects.bulk_create(rows[start : start + BATCH])
        Thread.objects.bulk_create(Thread(ticket=t) for t in made)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return {"open": tickets, "past_due": overdue, "resolved": resolved}


def measure(label: str, job) -> tuple[float, int, object]:  # type: ignore[no-untyped-def]
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        result = job()
        seconds = time.perf_counter() - started
    print(f"{label:<34} {seconds:8.3f} s {len(queries):5d} queries")
    return seconds, len(queries), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=100_000, help="open tickets")
    parser.add_argument("--overdue", type=int, default=5_000, help="of them past due")
    parser.add_argument("--resolved", type=int, default=10_000, help="resolved tickets")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the first overdue check")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    configure_environment(url)
    sys.path.insert(0, str(REPO))
    database_reset(url)
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db.models import Count

        call_command("migrate", verbosity=0)
        from sla import jobs
        from tickets.models import EventAction, ThreadEvent, Ticket

        started = time.perf_counter()
        made = seed(args.tickets, args.overdue, args.resolved)
        print(f"seeded {made} in {time.perf_counter() - started:.1f} s")
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        _s, _q, result = measure("overdue check", jobs.overdue_check)
        if args.profile:
            profiler.disable()
            profiler.dump_stats(args.profile)
        print(
            f"  marked {len(result.marked)}, escalated {len(result.escalated)}, "
            f"alerts queued for {len(result.alerted)}"
        )
        measure("overdue check, nothing to do", jobs.overdue_check)
        _s, _q, closed = measure("auto-close", jobs.auto_close)
        print(f"  closed {len(closed)}")
        measure("auto-close, nothing to do", jobs.auto_close)
        events = dict(ThreadEvent.objects.values_list("action").order_by().annotate(n=Count("pk")))
        print(
            f"events: {events.get(EventAction.OVERDUE, 0)} overdue, "
            f"{ThreadEvent.objects.filter(data__has_key='escalated').count()} with an escalation, "
            f"{events.get(EventAction.AUTO_CLOSED, 0)} auto-closed; "
            f"overdue tickets: {Ticket.objects.filter(is_overdue=True).count()}"
        )
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            database_drop(url)


if __name__ == "__main__":
    main()
