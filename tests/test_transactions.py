"""Service transactions: a savepoint where the caller may go on after a refusal, none where
it rolls back whole."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from helpdesk.lib.transactions import rolled_back_whole, service_atomic
from tickets.models import Sequence

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@service_atomic
def counter_open(name: str, *, refuse: bool = False) -> Sequence:
    """A service that writes, then may refuse."""
    sequence = Sequence.objects.create(name=name)
    if refuse:
        raise ValidationError({"name": "Refused."})
    return sequence


@service_atomic
def counters_open(*names: str) -> list[str]:
    """A service calling another and going on after its refusals."""
    opened = []
    for name in names:
        try:
            opened.append(counter_open(name, refuse=name.startswith("bad")).name)
        except ValidationError:
            continue
    return opened


def names() -> list[str]:
    """The counters the tests made (the migrations make others)."""
    return sorted(Sequence.objects.filter(name__startswith="t-").values_list("name", flat=True))


def savepoints(captured: CaptureQueriesContext) -> int:
    return sum(query["sql"].upper().startswith("SAVEPOINT") for query in captured)


def test_a_caller_that_goes_on_after_a_refusal_keeps_its_own_work():
    with transaction.atomic():
        Sequence.objects.create(name="t-kept")
        with pytest.raises(ValidationError):
            counter_open("t-refused", refuse=True)
        Sequence.objects.create(name="t-after")
    assert names() == ["t-after", "t-kept"]


def test_rolled_back_whole_spares_the_savepoint_and_a_refusal_undoes_everything():
    with CaptureQueriesContext(connection) as captured, transaction.atomic():
        with rolled_back_whole():
            counter_open("t-one")
        assert savepoints(captured) == 0
    assert names() == ["t-one"]

    with pytest.raises(ValidationError), transaction.atomic():
        Sequence.objects.create(name="t-outer")
        with rolled_back_whole():
            try:
                counter_open("t-two", refuse=True)
            except ValidationError:
                # Without the savepoint the transaction cannot go on: it is rolled back whole.
                with pytest.raises(TransactionManagementError):
                    Sequence.objects.count()
                raise
    assert names() == ["t-one"]


def test_services_called_by_the_first_one_keep_their_savepoints():
    with transaction.atomic(), rolled_back_whole():
        assert counters_open("t-a", "bad", "t-b") == ["t-a", "t-b"]
    assert names() == ["t-a", "t-b"]


def test_rolled_back_whole_needs_a_transaction():
    with pytest.raises(AssertionError), rolled_back_whole():
        pass
