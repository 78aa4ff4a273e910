"""Mail ingestion benchmark: N varied messages from a private Dovecot into tickets on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/helpdesk_bench \\
        .venv/bin/python bench/mail_ingest.py --messages 1000

What it does (see bench/README.md for the corpus and the figures):
1. drops and recreates the benchmark database (the name in DATABASE_URL, `helpdesk_bench` by
   default) and migrates it, with production-like settings (DEBUG off, notifications on and
   "sent" to Django's dummy mail backend through eager Celery), then puts 50,000 earlier
   tickets in it (`--history`, as in the peer's data set; `--history 0` for a quick run);
2. starts a private Dovecot 2.3 on loopback (the helpers of tests/mailgate/dovecot.py) and
   APPENDs N messages to one account's INBOX: new tickets, replies threading through
   In-Reply-To, copies of the real samples in /work/shared/mail-samples and a few
   out-of-office auto-replies;
3. makes an IMAP mailbox for that account and calls `mailbox_fetch` until INBOX is empty,
   in this one process (= one worker), timing it and sampling the RSS every 100 messages;
4. prints the figures and the outcomes, stops Dovecot and drops the database (--keep-db keeps it).

It refuses any database whose name does not contain "bench", since step 1 drops it.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import os
import random
import re
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ui import cpu_reference_ms  # bench/ui.py: the same reference in every benchmark

# Every command here runs fixed binaries with arguments built from constants and temp paths.
# ruff: noqa: S603

REPO = Path(__file__).resolve().parent.parent
SAMPLES = Path("/work/shared/mail-samples")
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/helpdesk_bench"
OUR_ADDRESS = "support@helpdesk.example"
# django-helpdesk 2.6.1 get_email on this machine, on this corpus (`--write-corpus`, less
# the 11 mails it stops on), emails/s, by its data set: its 50,000 tickets and an empty
# database (bench/README.md, "The same messages for the peer"): the higher of the figures
# measured (41-54 and 75-115 on different days), so the ratio errs on the low side.
PEER_FIGURES = {50_000: 54.0, 0: 115.0}

WORDS = (  # noqa: SIM905 (easier to read than a list of 47 strings)
    "printer network password reset invoice account login error email vpn laptop screen "
    "update install license backup server slow crash report access order refund shipping "
    "delivery broken keyboard monitor wifi outlook calendar meeting phone battery upgrade "
    "billing payment card subscription cancel renew export import sync mobile app browser"
).split()


# --- settings -------------------------------------------------------------------------------


def configure_environment(args: argparse.Namespace, media_root: Path) -> None:
    """Production-like settings, set before Django reads them. A developer's .env is ignored."""
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "helpdesk.settings.base",
            "ENV_FILE": os.devnull,
            "DATABASE_URL": args.database_url,
            "DEBUG": "false",
            "SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789abcdefghij",
            "ALLOWED_HOSTS": "localhost",
            "SECURE_SSL_REDIRECT": "false",
            "CELERY_BROKER_URL": "memory://",
            "CELERY_TASK_ALWAYS_EAGER": "true",
            # Rendered, logged as OutboundMessage and handed to a backend that drops them.
            # (memorymail:// would keep every message in a list: memory would grow.)
            "EMAIL_URL": "dummymail://",
            "MAIL_OUT": "true" if args.mail_out else "false",
            "CACHE_URL": args.cache_url,
            "MEDIA_ROOT": str(media_root),
            "LOG_LEVEL": args.log_level,
        }
    )


def database_reset(url: str) -> str:
    """Drop and recreate the database named in `url` (through the `postgres` database)."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if "bench" not in name:
        sys.exit(f"Refusing to drop database {name!r}: its name must contain 'bench'.")
    admin_url = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def database_drop(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- Dovecot --------------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen
    root: Path
    port: int
    password: str  # the one password of every user (the static passdb of the tests' config)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


def dovecot_start() -> Server:
    """The test suite's private Dovecot (same config, same helpers), without pytest's fixture."""
    sys.path.insert(0, str(REPO))
    from tests.mailgate import dovecot as helpers

    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    if not Path(binary).exists():
        sys.exit(helpers.INSTALL_HINT)
    version = helpers._version()
    if version[:1] != (2,) or version >= (2, 4):
        sys.exit(f"The Dovecot config is written for Dovecot 2.3, not {version}")
    root = Path(tempfile.mkdtemp(prefix="helpdesk-bench-dovecot-"))
    root.chmod(0o755)
    _login, _internal, mail_uid, mail_gid = helpers._users()
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir()
    for sub in ("mail", "home"):
        shutil.chown(root / sub, mail_uid, mail_gid)
    ports = {name: helpers._free_port() for name in ("imap", "imaps", "pop3", "pop3s")}
    cert, key = helpers._certificate(root)
    conf = root / "dovecot.conf"
    conf.write_text(helpers._config(root, ports, cert, key))
    process = subprocess.Popen(
        [binary, "-F", "-c", str(conf)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = Server(
        process=process, root=root, port=ports["imap"], password=helpers.Dovecot.password
    )
    try:
        helpers._wait_for_greeting(ports["imap"], process, root)
    except BaseException:
        server.stop()
        raise
    return server


# --- corpus ---------------------------------------------------------------------------------


def _png(size: int, rng: random.Random) -> bytes:
    """A valid size x size RGB PNG (a noisy gradient), so the image check passes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\x00" + bytes((x * 4 + rng.randrange(8)) % 256 for x in range(size * 3))
        for _y in range(size)
    )
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 16))]
    return " ".join(words).capitalize() + "."


def _paragraphs(rng: random.Random, low: int, high: int) -> list[str]:
    return [
        " ".join(_sentence(rng) for _ in range(rng.randint(2, 5)))
        for _ in range(rng.randint(low, high))
    ]


def _crlf(message: EmailMessage) -> bytes:
    return message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@dataclass
class Thread:
    sender: str
    subject: str
    ids: list[str] = field(default_factory=list)
    last_text: str = ""


@dataclass
class Corpus:
    messages: list[bytes] = field(default_factory=list)
    kinds: Counter = field(default_factory=Counter)


def _new_ticket(rng: random.Random, sender: str, when: float) -> tuple[EmailMessage, str]:
    message = EmailMessage()
    subject = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7))).capitalize()
    message["From"] = sender
    message["To"] = OUR_ADDRESS
    if rng.random() < 0.1:
        message["Cc"] = f"colleague{rng.randrange(50)}@customers.example"
    message["Subject"] = subject
    message["Date"] = format_datetime(_utc(when))
    message["Message-ID"] = make_msgid(domain="customers.example")
    paragraphs = _paragraphs(rng, 1, 6)
    text = "Hello,\n\n" + "\n\n".join(paragraphs) + "\n\nThanks,\n" + sender.split("<")[0]
    message.set_content(text)
    flavour = rng.random()
    if flavour < 0.30:  # HTML mail, as most mail clients send it
        html = "".join(f"<p>{p}</p>" for p in paragraphs)
        message.add_alternative(
            f"<html><body><div style='font-family:Arial'><p>Hello,</p>{html}"
            f"<p><b>Thanks</b>,<br>{sender.split('<')[0]}</p></div></body></html>",
            subtype="html",
        )
    if 0.30 <= flavour < 0.45:  # with an attachment: a log file or a screenshot
        if rng.random() < 0.5:
            log = "\n".join(f"2026-11-22 10:{i % 60:02d} ERROR {_sentence(rng)}" for i in range(80))
            message.add_attachment(log.encode(), "text", "plain", filename="error.log")
        else:
            message.add_attachment(
                _png(rng.choice((16, 48, 96)), rng), "image", "png", filename="screenshot.png"
            )
    return message, text


def _utc(epoch: float):
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def _reply(rng: random.Random, thread: Thread, when: float) -> tuple[EmailMessage, str]:
    message = EmailMessage()
    message["From"] = thread.sender
    message["To"] = OUR_ADDRESS
    message["Subject"] = "Re: " + thread.subject
    message["Date"] = format_datetime(_utc(when))
    message["Message-ID"] = make_msgid(domain="customers.example")
    message["In-Reply-To"] = thread.ids[-1]
    message["References"] = " ".join(thread.ids[-10:])
    new = "\n\n".join(_paragraphs(rng, 1, 3))
    quoted = "\n".join("> " + line for line in thread.last_text.splitlines())
    message.set_content(f"{new}\n\nOn {format_datetime(_utc(when - 3600))}, you wrote:\n{quoted}")
    return message, new


def _auto_reply(rng: random.Random, sender: str, when: float) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = OUR_ADDRESS
    message["Subject"] = "Automatic reply: Out of office"
    message["Date"] = format_datetime(_utc(when))
    message["Message-ID"] = make_msgid(domain="customers.example")
    message["Auto-Submitted"] = "auto-replied"
    message["X-Autoreply"] = "yes"
    message.set_content("I am out of the office until Monday with limited access to email.\n")
    return message


_MESSAGE_ID = re.compile(rb"^message-id:[^\n]*\n(?:[ \t][^\n]*\n)*", re.IGNORECASE | re.MULTILINE)


def _sample_copy(raw: bytes, number: int) -> bytes:
    """The sample's bytes with a Message-ID of its own (so every copy is a new message)."""
    crlf = b"\r\n" in raw[:2000]
    eol = b"\r\n" if crlf else b"\n"
    split = raw.find(eol + eol)
    head, body = (raw, b"") if split < 0 else (raw[: split + len(eol)], raw[split + len(eol) :])
    normalised = head.replace(b"\r\n", b"\n")
    normalised = _MESSAGE_ID.sub(b"", normalised)
    if crlf:
        normalised = normalised.replace(b"\n", b"\r\n")
    header = f"Message-ID: <sample-{number}@bench.example>".encode() + eol
    return header + normalised + body


def corpus_build(count: int, seed: int) -> Corpus:
    """~58% new tickets from 200 senders, ~30% replies (In-Reply-To the latest message of an
    earlier thread, from its customer), ~10% copies of the real samples, ~2% out-of-office."""
    rng = random.Random(seed)  # noqa: S311 (a reproducible corpus, not a secret)
    senders = [
        f"Customer {n} <customer{n}@{('acme', 'globex', 'initech', 'umbrella')[n % 4]}.example>"
        for n in range(200)
    ]
    samples = sorted(SAMPLES.glob("*.eml"))
    if not samples:
        sys.exit(f"No samples in {SAMPLES}")
    sample_bytes = [path.read_bytes() for path in samples]
    corpus, threads = Corpus(), []
    when = time.time() - count * 60
    for number in range(count):
        when += rng.uniform(1, 120)
        draw = rng.random()
        if draw < 0.30 and threads:
            thread = rng.choice(threads[-300:])  # mostly recent conversations
            message, text = _reply(rng, thread, when)
            thread.ids.append(message["Message-ID"])
            thread.last_text = text
            kind, raw = "reply", _crlf(message)
        elif draw < 0.40:
            sample = sample_bytes[number % len(sample_bytes)]
            kind, raw = "sample", _sample_copy(sample, number)
        elif draw < 0.42:
            kind, raw = "auto_reply", _crlf(_auto_reply(rng, rng.choice(senders), when))
        else:
            sender = rng.choice(senders)
            message, text = _new_ticket(rng, sender, when)
            threads.append(Thread(sender, message["Subject"], [message["Message-ID"]], text))
            kind, raw = "new", _crlf(message)
        corpus.messages.append(raw)
        corpus.kinds[kind] += 1
    return corpus


def corpus_deliver(server: Server, user: str, corpus: Corpus) -> float:
    from imapclient import IMAPClient

    started = time.perf_counter()
    with IMAPClient("127.0.0.1", server.port, ssl=False, timeout=30) as client:
        client.login(user, server.password)
        for raw in corpus.messages:
            client.append("INBOX", raw)
        client.select_folder("INBOX", readonly=True)
        stored = len(client.search(["ALL"]))
    if stored != len(corpus.messages):
        sys.exit(f"Dovecot holds {stored} messages, {len(corpus.messages)} were appended")
    return time.perf_counter() - started


def corpus_write(folder: Path, corpus: Corpus) -> int:
    """The corpus as files named in delivery order, for a peer that reads a local folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, raw in enumerate(corpus.messages):
        (folder / f"{number:05d}.eml").write_bytes(raw)
    print(f"{len(corpus.messages)} messages written to {folder}")
    return 0


# --- measuring ------------------------------------------------------------------------------


_TABLE = re.compile(r'(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', re.IGNORECASE)


def _query_kind(sql: str) -> str:
    """'SELECT tickets_ticket', 'INSERT mailgate_outboundmessage', 'SAVEPOINT', ..."""
    verb = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"
    table = _TABLE.search(sql)
    return f"{verb} {table.group(1)}" if table and verb != "RELEASE" else verb


def _status_kb(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    """Reset the kernel's peak RSS (VmHWM, ru_maxrss) so the peak is the fetch's, not the
    migrations'. Linux >= 4.0; False when not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class Sample:
    done: int
    seconds: float
    rss_kb: int


def seed_help_desk(agents: int, *, history: int, seed: int):
    """A department with `agents` agents (so new-ticket and message alerts have recipients;
    the IMAP mailbox is made by the caller): Support, or with `history` earlier tickets
    (`generate_data`, which gives Support many agents of its own) a department of its own,
    so the alerts per message stay the same."""
    from accounts.models import Role, User
    from accounts.services import agent_create
    from routing.models import Department

    if history:
        from django.core.management import call_command

        from tickets.management.commands import generate_data

        # 1-5 follow-ups after the opening message, as the peer's data set has.
        call_command(
            generate_data.Command(),
            tickets=history,
            seed=seed,
            entries_min=2,
            entries_max=6,
            stdout=io.StringIO(),
        )
        support = Department.objects.create(name="Mail bench")
    else:
        support = Department.objects.get(name="Support")
    role = Role.objects.get(name="All Access")
    for n in range(agents):
        user = User.objects.create_user(
            email=f"agent{n}@staff.example", name=f"Agent {n}", password=None
        )
        agent_create(user=user, department=support, role=role)
    return support


def run(args: argparse.Namespace) -> int:
    # In the help desk's own var folder, where MEDIA_ROOT is by default: on this machine a
    # new file in /tmp takes 0.7-0.8 ms against 0.02 ms there, on the same disk.
    (REPO / "var").mkdir(exist_ok=True)
    media_root = Path(tempfile.mkdtemp(prefix="bench-media-", dir=REPO / "var"))
    configure_environment(args, media_root)
    sys.path.insert(0, str(REPO))
    db_name = database_reset(args.database_url)

    import django

    django.setup()
    from django.core.cache import cache
    from django.core.management import call_command

    cache.clear()  # tokens and kept results of an earlier run, on another database
    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    migrate_seconds = time.perf_counter() - started

    from django.db.models import Count

    from mailgate import fetching
    from mailgate.models import InboundMessage, Mailbox, OutboundMessage
    from tickets.models import ThreadEntry, Ticket

    corpus = corpus_build(args.messages, args.seed)
    server = dovecot_start()
    try:
        account = "bench-inbox"
        deliver_seconds = corpus_deliver(server, account, corpus)
        started = time.perf_counter()
        support = seed_help_desk(args.agents, history=args.history, seed=args.seed)
        seed_seconds = time.perf_counter() - started
        mailbox = Mailbox.objects.create(
            name="Bench",
            email=OUR_ADDRESS,
            protocol=Mailbox.Protocol.IMAP,
            host="127.0.0.1",
            port=server.port,
            security=Mailbox.Security.NONE,
            username=account,
            password=server.password,
            after_fetch=args.after_fetch,
            batch_size=args.batch_size,
            department=support,
        )

        samples: list[Sample] = []
        state = {"done": 0}
        original = fetching._counted

        def counted(result, message):
            original(result, message)
            state["done"] += 1
            if state["done"] % 100 == 0:
                samples.append(Sample(state["done"], time.perf_counter() - t0, _status_kb("VmRSS")))

        fetching._counted = counted
        queries: Counter = Counter()

        def count_query(execute, sql, params, many, context):
            queries[_query_kind(sql)] += 1
            return execute(sql, params, many, context)

        from django.db import connection

        query_counter = (
            connection.execute_wrapper(count_query) if args.queries else contextlib.nullcontext()
        )
        # Started as a Celery worker starts (helpdesk.celery): the URLs are loaded before
        # its first task, not during the first run.
        from helpdesk.startup import worker_warm

        worker_warm()
        gc.collect()
        peak_reset = _reset_peak()
        rss_before = _status_kb("VmRSS")
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
        runs, fetched, failed_fetch = 0, 0, []
        cpu_before = cpu_reference_ms()
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        if profiler:
            profiler.enable()
        with query_counter:
            while fetched < args.messages and runs < args.messages + 5:
                result = fetching.mailbox_fetch(mailbox=Mailbox.objects.get(pk=mailbox.pk))
                runs += 1
                fetched += result.fetched
                if result.error:
                    failed_fetch.append(result.error)
                    break
                if result.fetched == 0:
                    break
        if profiler:
            profiler.disable()
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        fetching._counted = original
        cpu_after = cpu_reference_ms()
        if profiler:
            profiler.dump_stats(args.profile)
        peak_kb = _status_kb("VmHWM")
        maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rss_after = _status_kb("VmRSS")

        outcomes = Counter()
        for row in InboundMessage.objects.values("status", "outcome").annotate(n=Count("pk")):
            outcomes[(row["status"], row["outcome"])] = row["n"]
        outbound = Counter()
        for row in OutboundMessage.objects.values("template", "status").annotate(n=Count("pk")):
            outbound[(row["template"], row["status"])] = row["n"]
        tickets, entries = Ticket.objects.count(), ThreadEntry.objects.count()
    finally:
        server.stop()
        shutil.rmtree(media_root, ignore_errors=True)

    rate = fetched / wall if wall else 0.0
    print(f"\nMail ingestion benchmark: {db_name} on PostgreSQL, one worker (this process)")
    print(
        f"  corpus: {len(corpus.messages)} messages "
        f"({', '.join(f'{k} {v}' for k, v in corpus.kinds.most_common())}), "
        f"{sum(map(len, corpus.messages)) / 1024:.0f} KiB; APPEND took {deliver_seconds:.1f} s"
    )
    print(
        f"  settings: MAIL_OUT={'on' if args.mail_out else 'off'} (dummy mail backend, eager "
        f"Celery), cache {args.cache_url}, {args.agents} agents, after_fetch={args.after_fetch}, "
        f"batch_size={args.batch_size}; migrate took {migrate_seconds:.1f} s"
    )
    if args.history:
        print(
            f"  history: {args.history} earlier tickets (generate_data, 1-5 follow-ups each) "
            f"made in {seed_seconds:.0f} s; alerts go to the {args.agents} agents of their own "
            "department"
        )
    print()
    print("| figure | value |")
    print("|---|---:|")
    print(f"| messages fetched | {fetched} in {runs} mailbox_fetch call(s) |")
    print(f"| wall time | {wall:.2f} s (process CPU {cpu:.2f} s, {100 * cpu / wall:.0f}%) |")
    print(f"| messages/s (one worker) | **{rate:.1f}** |")
    print(f"| ms per message | {1000 * wall / max(fetched, 1):.1f} |")
    print(
        f"| CPU reference (bench/ui.py; lower is faster) | {cpu_before:.0f} ms before, "
        f"{cpu_after:.0f} after |"
    )
    peer_tickets = 50_000 if args.history >= 50_000 else 0
    peer = PEER_FIGURES[peer_tickets]
    print(
        f"| vs peer get_email on these messages with {peer_tickets:,} tickets, {peer:.0f}/s "
        f"| {rate / peer:.2f}x (target 4x) |"
    )
    print(f"| RSS before fetch | {rss_before / 1024:.1f} MiB |")
    peak_note = "" if peak_reset else " (not reset: includes migrate)"
    print(f"| peak RSS during fetch (VmHWM) | {peak_kb / 1024:.1f} MiB{peak_note} |")
    print(f"| ru_maxrss | {maxrss_kb / 1024:.1f} MiB |")
    print(f"| RSS after fetch | {rss_after / 1024:.1f} MiB |")
    print()
    print("| after N messages | elapsed s | msgs/s (this 100) | RSS MiB |")
    print("|---:|---:|---:|---:|")
    previous = Sample(0, 0.0, rss_before)
    for sample in samples:
        step = (sample.done - previous.done) / max(sample.seconds - previous.seconds, 1e-9)
        print(f"| {sample.done} | {sample.seconds:.2f} | {step:.1f} | {sample.rss_kb / 1024:.1f} |")
        previous = sample
    print()
    print("Outcomes (InboundMessage status / outcome):")
    for (status, outcome), n in sorted(outcomes.items()):
        print(f"  {status:10} {outcome or '-':14} {n}")
    print(f"Tickets: {tickets}; thread entries: {entries}")
    print("Outbound mail (template / status):")
    for (template, status), n in sorted(outbound.items()):
        print(f"  {template:22} {status:8} {n}")
    if queries:
        total = sum(queries.values())
        print(f"SQL statements: {total} ({total / max(fetched, 1):.1f} per message); top 25:")
        for kind, n in queries.most_common(25):
            print(f"  {n:6} {n / max(fetched, 1):5.1f}/msg  {kind}")
    if failed_fetch:
        print("Fetch errors:", *failed_fetch, sep="\n  ")

    from django.db import connections

    connections.close_all()
    if not args.keep_db:
        database_drop(args.database_url)
    ok = fetched == args.messages and not failed_fetch
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--agents", type=int, default=5, help="agents in the Support department")
    parser.add_argument("--batch-size", type=int, default=1000, help="Mailbox.batch_size")
    parser.add_argument("--after-fetch", choices=("delete", "seen"), default="delete")
    parser.add_argument(
        "--no-mail-out",
        dest="mail_out",
        action="store_false",
        help="MAIL_OUT=false: no auto-responses or alerts at all",
    )
    parser.add_argument(
        "--cache-url",
        default="locmemcache://",
        help="CACHE_URL; redis://127.0.0.1:6379/N as in production (that Redis database is "
        "cleared first)",
    )
    parser.add_argument("--profile", metavar="FILE", help="cProfile the fetch into FILE")
    parser.add_argument(
        "--queries", action="store_true", help="count SQL statements by kind (slightly slower)"
    )
    parser.add_argument(
        "--history",
        type=int,
        default=50_000,
        metavar="N",
        help="N earlier tickets in the database before the fetch (generate_data), default "
        "50,000 as in the peer's data set; 0 for a quick run on an empty database",
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument(
        "--write-corpus",
        metavar="DIR",
        help="only write the corpus into DIR as numbered .eml files (to feed the same "
        "messages to another help desk) and stop",
    )
    args = parser.parse_args()
    if args.write_corpus:
        return corpus_write(Path(args.write_corpus), corpus_build(args.messages, args.seed))
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        sys.exit("This benchmark is for PostgreSQL: DATABASE_URL=postgres://...")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
