"""REST API benchmark: the ticket list (a page of 50, with filters) and ticket creation, at
100,000 tickets on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/helpdesk_api_bench \\
        .venv/bin/python bench/api.py --tickets 100000

What it does (see bench/README.md for the figures):
1. drops and recreates the benchmark database (its name must contain "bench") and migrates
   it, with production-like settings (DEBUG off, no mail out, eager Celery);
2. seeds N tickets in bulk (customers, 3 departments, agents, statuses, priorities, one
   message each, search documents), as the services would leave them, then ANALYZE;
3. times requests through Django's full stack in this process (the WSGI handler with every
   middleware, API-key authentication, throttling on the local-memory cache, serialisation),
   each scenario after a warm-up, and counts the SQL statements of every request;
4. prints requests per second, median and 95th-percentile latency and the statements per
   request (which must be the same for every request of a scenario), then drops the
   database (--keep-db keeps it).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/helpdesk_api_bench"


def configure_environment(url: str, media_root: str) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "helpdesk.settings.base",
            "ENV_FILE": os.devnull,
            "DATABASE_URL": url,
            "DEBUG": "false",
            "SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789abcdefghij",
            "ALLOWED_HOSTS": "testserver,localhost",
            "SECURE_SSL_REDIRECT": "false",
            "CELERY_BROKER_URL": "memory://",
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "EMAIL_URL": "dummymail://",
            "MAIL_OUT": "false",
            "LOG_LEVEL": "WARNING",
            "MEDIA_ROOT": media_root,
            "API_RATE_LIMIT": "1000000/minute",
        }
    )


def database_reset(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if "bench" not in name:
        sys.exit(f"Refusing to drop database {name!r}: its name must contain 'bench'.")
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def database_drop(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


WORDS = (  # noqa: SIM905 (easier to read than a list of strings)
    "printer network password reset invoice account login error email vpn laptop screen "
    "update install license backup server slow crash report access order refund shipping"
).split()


def seed(count: int, rng: random.Random) -> dict:
    """N tickets in bulk, shaped as the services leave them (thread, first message,
    search document, CREATED event), spread over 3 departments and 1,000 customers."""
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import Agent, Role, User, UserEmail
    from routing.models import Department
    from tickets.models import (
        EntryKind,
        EventAction,
        Priority,
        StatusState,
        Thread,
        ThreadEntry,
        ThreadEvent,
        Ticket,
        TicketStatus,
    )

    departments = [
        Department.objects.get_or_create(name=name)[0] for name in ("Support", "Sales", "IT")
    ]
    role = Role.objects.get(name="All Access")
    agents = []
    for n in range(5):
        user = User.objects.create_user(f"agent{n}@staff.example", None, name=f"Agent {n}")
        agents.append(user)
        Agent.objects.create(user=user, department=departments[n % 3], role=role)
    customers = User.objects.bulk_create(
        [User(email=f"customer{n}@example.com", name=f"Customer {n}") for n in range(1000)]
    )
    UserEmail.objects.bulk_create(
        [UserEmail(user=c, email=c.email, is_primary=True) for c in customers]
    )
    statuses = list(TicketStatus.objects.filter(state__in=[StatusState.OPEN, StatusState.CLOSED]))
    priorities = list(Priority.objects.all())
    now = timezone.now()
    batch = 5000
    for start in range(0, count, batch):
        with transaction.atomic():
            tickets = []
            for n in range(start, min(start + batch, count)):
                customer = customers[rng.randrange(len(customers))]
                status = rng.choice(statuses)
                created = now - timezone.timedelta(minutes=count - n)
                subject = " ".join(rng.choice(WORDS) for _ in range(5))
                number = str(100000 + n)
                tickets.append(
                    Ticket(
                        number=number,
                        subject=subject,
                        user=customer,
                        department=departments[n % 3],
                        status=status,
                        priority=rng.choice(priorities),
                        assignee=agents[n % 5] if n % 4 else None,
                        source="api",
                        created_at=created,
                        last_message_at=created,
                        closed_at=created if status.state == StatusState.CLOSED else None,
                        is_overdue=n % 17 == 0,
                        search_document=f"{number}\n{subject}\n{customer.name}\n{customer.email}",
                    )
                )
            tickets = Ticket.objects.bulk_create(tickets)
            threads = Thread.objects.bulk_create([Thread(ticket=t) for t in tickets])
            ThreadEntry.objects.bulk_create(
                [
                    ThreadEntry(
                        thread=thread,
                        kind=EntryKind.MESSAGE,
                        author_id=ticket.user_id,
                        body=ticket.subject,
                        created_at=ticket.created_at,
                    )
                    for thread, ticket in zip(threads, tickets, strict=True)
                ]
            )
            ThreadEvent.objects.bulk_create(
                [
                    ThreadEvent(
                        thread=thread,
                        action=EventAction.CREATED,
                        actor_id=ticket.user_id,
                        created_at=ticket.created_at,
                    )
                    for thread, ticket in zip(threads, tickets, strict=True)
                ]
            )
        print(f"  seeded {min(start + batch, count):,} tickets", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"agent": agents[0], "departments": departments, "priorities": priorities}


def seeded() -> dict | None:
    """What `seed` made, from a database kept by an earlier run (--keep-db)."""
    from accounts.models import User
    from routing.models import Department
    from tickets.models import Priority, Ticket

    agent = User.objects.filter(email="agent0@staff.example").first()
    if agent is None or not Ticket.objects.exists():
        return None
    User.objects.filter(email="bench-admin@example.com").delete()
    print(f"reusing {Ticket.objects.count():,} tickets")
    return {
        "agent": agent,
        "departments": [Department.objects.get(name=n) for n in ("Support", "Sales", "IT")],
        "priorities": list(Priority.objects.all()),
    }


def measure(name: str, client, requests: list, expected: int, warmup: int = 20) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for method, path, body in requests[:warmup]:
        getattr(client, method)(path, body, format="json")
    latencies, queries = [], set()
    started = time.perf_counter()
    for method, path, body in requests[warmup:]:
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            response = getattr(client, method)(path, body, format="json")
            latencies.append(time.perf_counter() - t0)
        if response.status_code != expected:
            sys.exit(f"{name}: {method.upper()} {path} answered {response.status_code}")
        queries.add(len(captured.captured_queries))
    wall = time.perf_counter() - started
    latencies.sort()
    result = {
        "scenario": name,
        "requests": len(latencies),
        "rps": len(latencies) / wall,
        "median_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1000,
        "queries": sorted(queries),
    }
    print(
        f"{name:<44} {result['rps']:7.1f} req/s  median {result['median_ms']:6.1f} ms  "
        f"p95 {result['p95_ms']:6.1f} ms  queries/request {result['queries']}",
        flush=True,
    )
    return result


def run(args: argparse.Namespace) -> int:
    media = tempfile.mkdtemp(prefix="api-bench-")
    configure_environment(args.database_url, media)
    sys.path.insert(0, str(REPO))
    if not args.reuse_db:
        database_reset(args.database_url)
    import django

    django.setup()
    from django.core.management import call_command
    from rest_framework.test import APIClient

    from accounts.api_keys import api_key_create

    try:
        call_command("migrate", verbosity=0, interactive=False)
        rng = random.Random(args.seed)  # noqa: S311 (sample data, not secrets)
        t0 = time.perf_counter()
        data = seeded() if args.reuse_db else None
        if data is None:
            data = seed(args.tickets, rng)
            print(f"seeded {args.tickets:,} tickets in {time.perf_counter() - t0:.0f} s")
        agent = data["agent"]
        # A superuser sees every ticket: the widest list. The agent sees one department.
        from accounts.models import User

        admin = User.objects.create_superuser("bench-admin@example.com", None)
        clients = {}
        for label, user in (("superuser", admin), ("agent", agent)):
            client = APIClient()
            client.credentials(HTTP_X_API_KEY=api_key_create(name=label, user=user).key)
            clients[label] = client
        n = args.requests
        high = data["priorities"][0].pk
        scenarios = [
            ("list: 50, no filter (superuser)", "superuser", "/api/v1/tickets/?page_size=50"),
            (
                "list: 50, state=open&priority (superuser)",
                "superuser",
                f"/api/v1/tickets/?page_size=50&state=open&priority={high}",
            ),
            (
                "list: 50, department+assignee=none (agent)",
                "agent",
                f"/api/v1/tickets/?page_size=50&department={data['departments'][0].pk}"
                "&assignee=none",
            ),
            (
                "list: 50, search=printer (superuser)",
                "superuser",
                "/api/v1/tickets/?page_size=50&search=printer",
            ),
            (
                "list: 50, overdue=true (agent)",
                "agent",
                "/api/v1/tickets/?page_size=50&overdue=true",
            ),
        ]
        results = []
        for name, who, path in scenarios:
            results.append(measure(name, clients[who], [("get", path, None)] * (n + 20), 200))
        # Following the cursor: pages 2..n of one listing.
        client = clients["superuser"]
        page = client.get("/api/v1/tickets/?page_size=50&state=open").json()
        cursors = []
        while page.get("next") and len(cursors) < n + 20:
            cursors.append(("get", page["next"].split("testserver", 1)[-1], None))
            page = client.get(cursors[-1][1]).json()
        results.append(measure("list: 50, next pages by cursor (superuser)", client, cursors, 200))
        creates = [
            (
                "post",
                "/api/v1/tickets/",
                {
                    "subject": f"Bench ticket {i}",
                    "body": "Created by the API benchmark.",
                    "customer_email": f"bench{i % 500}@example.com",
                    "department": data["departments"][0].pk,
                },
            )
            for i in range(n + 20)
        ]
        results.append(measure("create (agent)", clients["agent"], creates, 201))
        print("\nstatements per request must be one number per scenario:")
        for result in results:
            flag = "constant" if len(result["queries"]) == 1 else "VARIES"
            print(f"  {result['scenario']:<44} {result['queries']} {flag}")
    finally:
        if not (args.keep_db or args.reuse_db):
            from django.db import connections

            connections.close_all()
            database_drop(args.database_url)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per scenario")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument(
        "--reuse-db", action="store_true", help="use the tickets a --keep-db run left"
    )
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
