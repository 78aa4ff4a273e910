"""Service transactions that spare the savepoint when their caller rolls back whole.

A service runs in its own `transaction.atomic()`, so that one it refuses (a `ValidationError`
half-way) leaves nothing behind, also when its caller goes on in an outer transaction. Inside
an outer transaction that is a savepoint: two statements (SAVEPOINT, RELEASE) per call.

A caller whose transaction is rolled back whole whenever a service it calls raises (the mail
gateway processing one message: a refused mail leaves nothing) says so with `rolled_back_whole()`;
the service called directly inside it then takes no savepoint (`atomic(savepoint=False)`: an
error marks the outer transaction for rollback). The services that one calls take their
savepoints as usual, since it may catch their errors and go on.

A caller that can also do its whole work again (the mail gateway: a stored message is
processed anew from its raw bytes) says so with `retried_whole()`. Inside it, an insert that
could clash with a row written meanwhile (a new customer's address, a random ticket number)
takes no savepoint to recover from the clash: the clash is raised as `Retry`, the caller
rolls back and does the work once more outside the block, where the savepoints are taken.
Clashes are rare races, so the first try nearly always stands.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import ParamSpec, TypeVar

from django.db import IntegrityError, transaction

P = ParamSpec("P")
R = TypeVar("R")

_rolled_back_whole: ContextVar[bool] = ContextVar("rolled_back_whole", default=False)
_retried_whole: ContextVar[bool] = ContextVar("retried_whole", default=False)


class Retry(Exception):
    """The work inside `retried_whole()` met a clash it took no savepoint for: the transaction
    can run no more statements. Roll it back and do the work again outside the block."""


@contextmanager
def _promised(flag: ContextVar[bool]) -> Iterator[None]:
    """Set what the caller promises about its transaction, for the block inside it."""
    assert transaction.get_connection().in_atomic_block, "inside the caller's transaction"
    token = flag.set(True)
    try:
        yield
    finally:
        flag.reset(token)


def retried_whole() -> AbstractContextManager[None]:
    """Inside the caller's transaction: the caller rolls it back and does the work again,
    outside this block, when a `Retry` comes out of it."""
    return _promised(_retried_whole)


def retried() -> bool:
    """Whether a clash may be raised as `Retry` here rather than caught by a savepoint."""
    return _retried_whole.get() and transaction.get_connection().in_atomic_block


@contextmanager
def clash_retried() -> Iterator[None]:
    """Around an insert that may clash on a unique key, inside `retried_whole()`: no savepoint,
    and the clash raised as `Retry`."""
    try:
        yield
    except IntegrityError as error:
        raise Retry(str(error)) from error


def rolled_back_whole() -> AbstractContextManager[None]:
    """Run service calls inside an atomic block that the caller rolls back whole if one of
    them raises: the caller must not catch their errors and go on in the same transaction."""
    return _promised(_rolled_back_whole)


def service_atomic(func: Callable[P, R]) -> Callable[P, R]:
    """`transaction.atomic` for a service, without its savepoint inside `rolled_back_whole()`."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        whole = _rolled_back_whole.get()
        with transaction.atomic(savepoint=not whole):
            if not whole:
                return func(*args, **kwargs)
            token = _rolled_back_whole.set(False)  # the services it calls keep their savepoints
            try:
                return func(*args, **kwargs)
            finally:
                _rolled_back_whole.reset(token)

    return wrapper
