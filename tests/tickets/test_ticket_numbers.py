"""Ticket numbers: osTicket's format rules, and uniqueness when many tickets open at once."""

import threading

import pytest
from django.db import close_old_connections, connection

from tests.accounts.factories import UserFactory
from tests.tickets.factories import open_ticket
from tickets import numbers
from tickets.models import Sequence, Ticket


@pytest.mark.parametrize(
    ("fmt", "digits", "expected"),
    [
        ("TX-####", "0012", "TX-0012"),
        ("TX-####", "123456", "TX-123456"),  # digits beyond the runs go into the last run
        ("##-##", "1234", "12-34"),
        ("##-##", "123456", "12-3456"),
        (r"\###", "42", "#42"),
        ("INC", "7", "INC7"),
    ],
)
def test_format(fmt, digits, expected):
    assert numbers.number_format(fmt, digits) == expected


def test_random_numbers_have_at_least_six_digits_and_no_leading_zero():
    drawn = {numbers.random_digits(3) for _ in range(200)}
    assert all(len(d) == 6 and d[0] != "0" and d.isdigit() for d in drawn)
    assert len(drawn) > 150


@pytest.mark.django_db
def test_a_clashing_random_number_is_drawn_again(monkeypatch):
    first = open_ticket()
    drawn = iter([first.number, "987654"])
    monkeypatch.setattr(numbers, "random_digits", lambda count: next(drawn))
    second = open_ticket()
    assert second.number == "987654"
    assert Ticket.objects.count() == 2


@pytest.mark.django_db
def test_a_sequence_with_a_prefix(settings):
    settings.HELPDESK_TICKET_NUMBER_FORMAT = "TX-####"
    settings.HELPDESK_TICKET_NUMBER_SEQUENCE = "General Tickets"
    Sequence.objects.filter(name="General Tickets").update(next_value=12)
    assert [open_ticket().number for _ in range(2)] == ["TX-0012", "TX-0013"]


@pytest.mark.django_db
def test_a_failed_opening_gives_its_sequence_number_back(settings):
    settings.HELPDESK_TICKET_NUMBER_FORMAT = "#####"
    settings.HELPDESK_TICKET_NUMBER_SEQUENCE = "seq"
    assert open_ticket().number == "00001"
    with pytest.raises(Exception):  # noqa: B017 - any failure must roll the draw back
        open_ticket(body="")
    assert open_ticket().number == "00002"


def open_concurrently(count: int, per_thread: int) -> list[BaseException]:
    customers = [UserFactory() for _ in range(count)]
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def work(customer):
        try:
            barrier.wait()
            for _ in range(per_thread):
                open_ticket(user=customer)
        except BaseException as error:
            errors.append(error)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=work, args=(c,)) for c in customers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_openings_get_distinct_sequence_numbers(settings):
    settings.HELPDESK_TICKET_NUMBER_FORMAT = "T-######"
    settings.HELPDESK_TICKET_NUMBER_SEQUENCE = "General Tickets"
    assert open_concurrently(count=6, per_thread=5) == []
    numbers_made = sorted(Ticket.objects.values_list("number", flat=True))
    assert numbers_made == [f"T-{n:06d}" for n in range(1, 31)]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_openings_get_distinct_random_numbers(monkeypatch):
    # A tiny number space (two choices) makes the threads clash on purpose.
    pool = iter(f"{100000 + n // 2}" for n in range(10_000))
    lock = threading.Lock()

    def draw(count):
        with lock:
            return next(pool)

    monkeypatch.setattr(numbers, "random_digits", draw)
    assert open_concurrently(count=6, per_thread=4) == []
    made = list(Ticket.objects.values_list("number", flat=True))
    assert len(made) == len(set(made)) == 24
