"""Ticket numbers from a format such as ``######`` or ``TX-####`` (osTicket's rules).

Each run of ``#`` is filled with digits, left to right; ``\\#`` is a literal ``#``. A
sequence value is left-padded to the count of ``#``; digits beyond that count go into the last
run. Random numbers have as many digits as there are ``#``, at least six, the first not zero.
"""

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.db import transaction

from helpdesk.config import config

from .models import Sequence, Ticket

_TOKEN = re.compile(r"\\#|#+|[^#\\]+|\\")


def _parts(fmt: str) -> list[str]:
    return _TOKEN.findall(fmt)


def number_format(fmt: str, digits: str) -> str:
    """Put `digits` into the runs of `#` of `fmt`."""
    parts = _parts(fmt)
    runs = [i for i, part in enumerate(parts) if part.startswith("#")]
    if not runs:
        return fmt.replace("\\#", "#") + digits
    out, position = [], 0
    for i, part in enumerate(parts):
        if part == "\\#":
            out.append("#")
        elif part.startswith("#"):
            take = len(digits) - position if i == runs[-1] else len(part)
            out.append(digits[position : position + take])
            position += take
        else:
            out.append(part)
    return "".join(out)


def digit_count(fmt: str) -> int:
    return sum(len(part) for part in _parts(fmt) if part.startswith("#"))


def random_digits(count: int) -> str:
    count = max(count, 6)
    return str(1 + secrets.randbelow(9)) + "".join(
        str(secrets.randbelow(10)) for _ in range(count - 1)
    )


def sequence_draw(name: str) -> tuple[int, str]:
    """Take the next value of a sequence. The row stays locked until the caller's transaction
    ends, so concurrent ticket creation gets distinct, gap-free values."""
    assert transaction.get_connection().in_atomic_block, "draw inside the ticket's transaction"
    sequence = Sequence.objects.select_for_update().filter(name=name).first()
    if sequence is None:
        # First use of a sequence nobody created. Creating it in the hot path is a one-off:
        # on InnoDB several transactions racing to create the same row can deadlock.
        Sequence.objects.get_or_create(name=name)
        sequence = Sequence.objects.select_for_update().get(name=name)
    value = sequence.next_value
    sequence.next_value = value + sequence.increment
    sequence.save(update_fields=["next_value", "updated_at"])
    return value, sequence.padding or "0"


_reserved: ContextVar[list[str] | None] = ContextVar("ticket_numbers_reserved", default=None)


@contextmanager
def numbers_reserved(count: int) -> Iterator[None]:
    """Draw up to `count` random numbers for the tickets about to open inside the block (a run
    of fetched mail), and keep the ones no ticket has, asked in one query:
    `number_reserved()` hands them out. Numbers from a sequence need no reserving."""
    pool = None
    if count > 0 and not settings.HELPDESK_TICKET_NUMBER_SEQUENCE:
        fmt = config().ticket_number_format
        drawn = {number_format(fmt, random_digits(digit_count(fmt))) for _ in range(count)}
        pool = sorted(
            drawn - set(Ticket.objects.filter(number__in=drawn).values_list("number", flat=True))
        )
    token = _reserved.set(pool)
    try:
        yield
    finally:
        _reserved.reset(token)


def number_reserved() -> str | None:
    """A random number no ticket had when it was reserved (another may have taken it since),
    or None when none is left."""
    pool = _reserved.get()
    return pool.pop() if pool else None


def ticket_number_next() -> tuple[str, bool]:
    """A new ticket number and whether it is random (then the caller retries on a clash)."""
    fmt = config().ticket_number_format
    sequence_name = settings.HELPDESK_TICKET_NUMBER_SEQUENCE
    if sequence_name:
        value, padding = sequence_draw(sequence_name)
        return number_format(fmt, str(value).rjust(digit_count(fmt), padding)), False
    return number_format(fmt, random_digits(digit_count(fmt))), True
