"""Mail gateway commands.

    python manage.py mailgate parse FILE [FILE ...] [--json] [--max-size BYTES]
    python manage.py mailgate fetch [--mailbox NAME]
    python manage.py mailgate pipe [--mailbox NAME] < message.eml
    python manage.py mailgate retry [ID ...] [--all-failed]

`parse` shows what the parser makes of raw messages (.eml files, or `-` for standard input)
without touching the database: one JSON object per file and line with `--json`, otherwise a
short summary. A file that cannot be parsed gives an object with `file` and `error`; the
command then exits 65 (EX_DATAERR) once every file has been tried, or 66 (EX_NOINPUT) if a
file could not be read at all.

`pipe` takes one message from the mail server on standard input (an alias such as
`support: "|/path/to/venv/bin/python /path/to/manage.py mailgate pipe"`). It stores the
message before anything else, then processes it, and exits 0 when the message was accepted
or deliberately ignored (auto-replies, bounces, loops; or kept as failed for an admin), 65
when it is not a parseable email, and 75 (EX_TEMPFAIL) when the help desk could not take it
now, so the mail server tries again later; a message delivered twice is processed once.

`fetch` fetches every active IMAP/POP3 mailbox now (or one, active or not, by name), one
line per mailbox; it exits 1 when a mailbox could not be fetched.

`retry` processes stored messages again that failed, by id or all of them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mailgate.parsing import ParsedMessage, ParseError, parse_message, split_quoted

EX_DATAERR = 65  # sysexits.h: the input data was incorrect
EX_NOINPUT = 66  # sysexits.h: an input file did not exist or was not readable
EX_TEMPFAIL = 75  # sysexits.h: temporary failure; the mail server delivers again later

SUMMARY_BODY_LINES = 8


class Command(BaseCommand):
    help = "Mail gateway tools. `parse`: show how raw messages parse (no database needed)."

    # `parse` works offline: no system checks, no database. A later subcommand that needs
    # them calls self.check() itself.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        subcommands = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
        parse = subcommands.add_parser(
            "parse",
            help="parse raw messages and print the result, without touching the database",
            description=(
                "Parse raw RFC 5322 messages and print what the mail gateway would see. "
                "Exits 65 if a message could not be parsed, 66 if a file could not be read."
            ),
        )
        parse.add_argument(
            "files", nargs="+", metavar="FILE", help="a raw message (.eml); - reads stdin"
        )
        parse.add_argument(
            "--json", dest="as_json", action="store_true", help="one JSON object per line"
        )
        parse.add_argument(
            "--max-size", type=int, metavar="BYTES", help="refuse messages larger than this"
        )

        fetch = subcommands.add_parser(
            "fetch",
            help="fetch mail from the IMAP/POP3 mailboxes now",
            description="Fetch every active mailbox, or the one named.",
        )
        fetch.add_argument("--mailbox", metavar="NAME", help="fetch only this mailbox")
        pipe = subcommands.add_parser(
            "pipe",
            help="take one message from the mail server on standard input",
            description="Store and process one raw message read from standard input.",
        )
        pipe.add_argument(
            "--mailbox",
            metavar="NAME",
            help="the mailbox it arrived for (default: found from its recipients)",
        )
        retry = subcommands.add_parser(
            "retry", help="process failed messages again", description="Retry failed messages."
        )
        retry.add_argument("ids", nargs="*", type=int, metavar="ID", help="inbound message ids")
        retry.add_argument("--all-failed", action="store_true", help="every failed message")

    def handle(self, *args: Any, subcommand: str, **options: Any) -> None:
        handlers = {
            "parse": self.handle_parse,
            "fetch": self.handle_fetch,
            "pipe": self.handle_pipe,
            "retry": self.handle_retry,
        }
        handlers[subcommand](**options)

    # fetch

    def handle_fetch(self, *, mailbox: str | None, **options: Any) -> None:
        from mailgate.fetching import fetch_command

        code = fetch_command(mailbox_name=mailbox, stdout=self.stdout)
        if code:
            raise CommandError("a mailbox could not be fetched", returncode=code)

    # pipe

    def handle_pipe(self, *, mailbox: str | None, **options: Any) -> None:
        from mailgate import services
        from mailgate.models import InboundStatus, Mailbox

        raw = sys.stdin.buffer.read()
        if not raw.strip():
            raise CommandError("no message on standard input", returncode=EX_DATAERR)
        try:
            if mailbox:
                box = Mailbox.objects.filter(name=mailbox).first()
                if box is None:
                    raise CommandError(f"no mailbox named {mailbox!r}", returncode=EX_TEMPFAIL)
            else:
                box = services.mailbox_for_recipients(recipients_of(raw))
            message, _new = services.inbound_receive(
                raw=raw, mailbox=box, channel=Mailbox.Protocol.PIPE
            )
        except CommandError:
            raise
        except Exception as exc:  # the database is down, the disk is full: nothing was kept
            raise CommandError(
                f"could not store the message: {exc}", returncode=EX_TEMPFAIL
            ) from exc
        try:
            message = services.inbound_process(message=message)
        except Exception as exc:  # stored and marked failed; the mail server retries
            raise CommandError(
                f"message {message.pk} stored but not processed: {exc}", returncode=EX_TEMPFAIL
            ) from exc
        if message.status == InboundStatus.FAILED and message.outcome == "unparseable":
            raise CommandError(f"not an email: {message.error}", returncode=EX_DATAERR)
        ticket = f" ticket #{message.ticket.number}" if message.ticket else ""
        self.stdout.write(f"message {message.pk}: {message.status} {message.outcome}{ticket}")

    # retry

    def handle_retry(self, *, ids: list[int], all_failed: bool, **options: Any) -> None:
        from mailgate import services
        from mailgate.models import InboundMessage, InboundStatus

        if not ids and not all_failed:
            raise CommandError("name message ids, or --all-failed")
        messages = InboundMessage.objects.filter(status=InboundStatus.FAILED).order_by("pk")
        if ids:
            messages = messages.filter(pk__in=ids)
        failed = 0
        for message in messages.iterator():
            try:
                message = services.inbound_process(message=message)
            except Exception as exc:  # reported; the others still run
                failed += 1
                self.stderr.write(f"message {message.pk}: {exc}")
                continue
            self.stdout.write(f"message {message.pk}: {message.status} {message.outcome}")
            failed += message.status == InboundStatus.FAILED
        if failed:
            raise CommandError(f"{failed} messages still failed", returncode=1)

    # parse

    def handle_parse(
        self, *, files: list[str], as_json: bool, max_size: int | None, **options: Any
    ) -> None:
        unreadable = unparsable = 0
        for name in files:
            try:
                raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
            except OSError as exc:
                unreadable += 1
                self.report_error(name, f"cannot read the file: {exc.strerror or exc}", as_json)
                continue
            try:
                parsed = parse_message(raw, max_size=max_size)
            except ParseError as exc:
                unparsable += 1
                self.report_error(name, exc.reason, as_json)
                continue
            if as_json:
                data = {"file": name, **parsed.as_json_dict()}
                self.stdout.write(json.dumps(data, ensure_ascii=False))
            else:
                self.stdout.write(self.summary(name, parsed))
        if unparsable:
            raise CommandError(
                f"{unparsable} of {len(files)} messages could not be parsed",
                returncode=EX_DATAERR,
            )
        if unreadable:
            raise CommandError(
                f"{unreadable} of {len(files)} files could not be read", returncode=EX_NOINPUT
            )

    def report_error(self, name: str, reason: str, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps({"file": name, "error": reason}, ensure_ascii=False))
        else:
            self.stderr.write(f"{name}: {reason}")

    def summary(self, name: str, parsed: ParsedMessage) -> str:
        sender = parsed.from_email or "(none)"
        if parsed.from_name:
            sender = f"{parsed.from_name} <{sender}>"
        lines = [self.style.MIGRATE_HEADING(f"== {name}"), f"From:        {sender}"]
        for label, values in (("To", parsed.to), ("Cc", parsed.cc), ("Reply-To", parsed.reply_to)):
            if values:
                lines.append(f"{label + ':':<13}{', '.join(values)}")
        lines.append(f"Subject:     {parsed.subject or '(none)'}")
        lines.append(f"Date:        {parsed.date.isoformat() if parsed.date else '(none)'}")
        lines.append(f"Message-ID:  {parsed.message_id or '(none)'}")
        if parsed.in_reply_to:
            lines.append(f"In-Reply-To: {parsed.in_reply_to}")
        if parsed.references:
            lines.append(f"References:  {len(parsed.references)}")
        flags = []
        if parsed.auto_reply:
            flags.append("auto-reply")
        if parsed.bounce:
            failed = ", ".join(parsed.bounce_recipients) or "recipients unknown"
            flags.append(f"bounce ({failed})")
        if flags:
            lines.append(f"Flags:       {'; '.join(flags)}")
        if parsed.attachments:
            lines.append(f"Attachments: {len(parsed.attachments)}")
            for attachment in parsed.attachments:
                details = [attachment.content_type, _size(attachment.size)]
                if attachment.inline:
                    details.append("inline")
                if attachment.content_id:
                    details.append(f"cid:{attachment.content_id}")
                lines.append(f"  - {attachment.filename} ({', '.join(details)})")
        new, quoted = split_quoted(parsed.body_text)
        html = f", {len(parsed.body_html)} of HTML" if parsed.body_html else ""
        lines.append(f"Body:        {len(parsed.body_text)} characters of text{html}")
        body_lines = new.splitlines()
        lines.extend(f"  | {line}".rstrip() for line in body_lines[:SUMMARY_BODY_LINES])
        if len(body_lines) > SUMMARY_BODY_LINES:
            lines.append(f"  | ... {len(body_lines) - SUMMARY_BODY_LINES} more lines")
        if quoted:
            lines.append(f"Quoted:      {len(quoted.splitlines())} lines folded")
        if parsed.errors:
            lines.append("Notes:")
            lines.extend(f"  - {error}" for error in parsed.errors)
        return "\n".join(lines) + "\n"


def _size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size} bytes"


def recipients_of(raw: bytes) -> list[str]:
    """The addresses a piped message was delivered to, read cheaply from its headers
    (Delivered-To and X-Original-To first: the mail server's own word)."""
    from email.parser import BytesHeaderParser
    from email.utils import getaddresses

    try:
        headers = BytesHeaderParser().parsebytes(raw[:65536])
        values = [
            str(value)
            for name in ("Delivered-To", "X-Original-To", "To", "Cc")
            for value in headers.get_all(name, [])
        ]
        return [address for _name, address in getaddresses(values)[:50] if "@" in address]
    except Exception:  # a mangled header only means no mailbox is found
        return []
