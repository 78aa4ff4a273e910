"""Many rows in one statement: a run of mail's outcomes and its new rows."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import Organization
from helpdesk.lib.bulk import inserts_deferred, row_insert, rows_apart, rows_update
from mailgate import services
from mailgate.models import InboundMessage, InboundStatus
from tests.mailgate.test_inbound import mail

pytestmark = pytest.mark.django_db

POSTGRESQL = connection.vendor == "postgresql"


def _inserts(captured) -> int:
    return sum(
        query["sql"].startswith(('INSERT INTO "accounts_organization"', "INSERT INTO `accounts"))
        for query in captured.captured_queries
    )


def _names() -> list[str]:
    return sorted(Organization.objects.values_list("name", flat=True))


def test_each_row_gets_its_own_values_in_one_update():
    first, _new = services.inbound_receive(raw=mail(subject="One"), mailbox=None, channel="pipe")
    second, _new = services.inbound_receive(raw=mail(subject="Two"), mailbox=None, channel="pipe")
    InboundMessage.objects.filter(pk=second.pk).update(status=InboundStatus.PROCESSED)
    changes = {
        first.pk: {"status": InboundStatus.IGNORED, "outcome": "auto_reply", "notes": ["late"]},
        second.pk: {"status": InboundStatus.IGNORED, "outcome": "loop", "notes": []},
    }

    with CaptureQueriesContext(connection) as captured:
        changed = rows_update(
            InboundMessage,
            changes,
            where_in=("status", [InboundStatus.RECEIVED]),
            increment="attempts",
        )

    if not POSTGRESQL:
        assert changed is None and not captured.captured_queries  # the caller updates
        return
    assert changed == 1 and len(captured.captured_queries) == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.outcome, first.notes, first.attempts) == (
        InboundStatus.IGNORED,
        "auto_reply",
        ["late"],
        1,
    )
    # Its status was not an allowed one: left as it was.
    assert (second.status, second.outcome, second.attempts) == (InboundStatus.PROCESSED, "", 0)


def test_rows_held_back_are_written_together_and_seen_by_any_read():
    with CaptureQueriesContext(connection) as captured, transaction.atomic():
        with inserts_deferred([Organization]):
            first, second = Organization(name="Acme"), Organization(name="Globex")
            row_insert(first)
            row_insert(second)
            assert first.pk is not None and second.pk > first.pk
            written_at_once = _inserts(captured)
            # A read of the table writes what is held back first.
            assert Organization.objects.filter(name="Globex").exists()
            written_for_the_read = _inserts(captured)
            row_insert(Organization(name="Initech"))
        written_in_all = _inserts(captured)

    if POSTGRESQL:
        assert (written_at_once, written_for_the_read, written_in_all) == (0, 1, 2)
    else:  # one insert per row, at once
        assert (written_at_once, written_for_the_read, written_in_all) == (2, 2, 3)
    assert _names() == ["Acme", "Globex", "Initech"]


def test_a_savepoint_rolled_back_drops_its_rows_and_keeps_the_earlier_ones():
    with transaction.atomic(), inserts_deferred([Organization]):
        row_insert(Organization(name="Acme"))  # held back before the savepoint
        try:
            with transaction.atomic():
                row_insert(Organization(name="Globex"))
                # A read inside the savepoint writes what is held back; Acme was written
                # before the savepoint began, so its rollback does not take Acme with it.
                assert Organization.objects.count() == 2
                raise ValueError("undone")
        except ValueError:
            pass
        row_insert(Organization(name="Initech"))
        try:
            with transaction.atomic():
                row_insert(Organization(name="Umbrella"))  # dropped with its savepoint
                raise ValueError("undone")
        except ValueError:
            pass

    assert _names() == ["Acme", "Initech"]


def test_nothing_held_back_is_written_when_the_block_raises():
    with pytest.raises(RuntimeError), transaction.atomic(), inserts_deferred([Organization]):
        row_insert(Organization(name="Acme"))
        raise RuntimeError("the run broke")
    assert _names() == []


@pytest.mark.skipif(not POSTGRESQL, reason="rows are held back on PostgreSQL only")
def test_statements_about_an_earlier_row_do_not_wait_for_the_held_rows():
    earlier = Organization.objects.create(name="Acme")
    with (
        CaptureQueriesContext(connection) as captured,
        transaction.atomic(),
        inserts_deferred([Organization]),
    ):
        held = Organization(name="Globex")
        row_insert(held)
        with rows_apart(earlier):
            Organization.objects.filter(pk=earlier.pk).update(notes="Rockets")
        assert _inserts(captured) == 0
        with rows_apart(held):  # one of the held rows: written first
            Organization.objects.filter(pk=held.pk).update(notes="Sprockets")
        assert _inserts(captured) == 1
    assert dict(Organization.objects.values_list("name", "notes")) == {
        "Acme": "Rockets",
        "Globex": "Sprockets",
    }


def test_rows_held_back_are_written_as_they_were_given():
    notes = "Quotes ' \" and a backslash \\ , a brace { } and a comma, NULL and ünïcödé"
    with transaction.atomic(), inserts_deferred([Organization]):
        row_insert(Organization(name="Acme", notes=notes, share_tickets=True))
        row_insert(Organization(name="Globex"))
    acme, globex = Organization.objects.order_by("name")
    assert (acme.notes, acme.share_tickets) == (notes, True)
    assert (globex.notes, globex.share_tickets) == ("", False)
    assert acme.created_at is not None and acme.updated_at is not None
