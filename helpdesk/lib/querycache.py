"""Results of the costly list queries (a queue's count and its page of ids, the dashboard's
counts, a customer's ticket list), kept in Django's cache until the ticket data changes.

A result's key is its query's SQL and parameters, so everything that decides what a user may
see (their departments, teams, referrals, collaborations, organization) is part of the key:
two users share a result only when they run the very same query.

A data version in the cache is part of every key. It is set anew when a transaction commits
that saved or deleted one of the `WATCHED` models (Django's signals), and by `data_changed()`
after the bulk updates that send no signals. Results are never read or stored inside a
transaction that has changed the data (they would describe the committed state, not its
own). TTL bounds anything else (a database edited by hand, a cache that lost the version).

With the cache on Redis (CACHE_URL, as in production) every web process shares the results
and sees a change at once; with the per-process default (locmem) a process sees changes
made through another process (a Celery worker, say) only when their results expire.
`QUERY_CACHE=false` turns the whole thing off.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.signals import post_delete, post_save

from .memo import token_get, token_register, tokens_renew

T = TypeVar("T")

VERSION_KEY = token_register("helpdesk:querycache:version")
TTL = 120  # seconds

# What the cached queries read: tickets and their threads, the rows that decide who sees a
# ticket, and the names and orders the lists sort and search by.
WATCHED = frozenset(
    {
        "tickets.Ticket",
        "tickets.ThreadEntry",
        "tickets.ThreadEvent",
        "tickets.Collaborator",
        "tickets.Referral",
        "tickets.Attachment",
        "tickets.TicketStatus",
        "tickets.Priority",
        "accounts.User",
        "accounts.UserEmail",
        "accounts.Organization",
        "routing.Department",
        "routing.Team",
    }
)


def enabled() -> bool:
    return bool(getattr(settings, "HELPDESK_QUERY_CACHE", True))


def data_changed(*, tickets: Iterable[int] | None = None) -> None:
    """The ticket data changed: results cached so far are stale once this commits.
    `tickets` names the tickets a bulk update changed, for the results kept per ticket
    (`remember_scoped`); without it, those of every ticket are stale."""
    scopes = [SHARED] if tickets is None else [f"ticket:{pk}" for pk in tickets]
    _scopes_changed([_VERSION, *scopes])


def rows_created(model: type, instances: Iterable[Any]) -> None:
    """Rows of `model` written by `bulk_create`, which sends no signals: what their saves
    would have made stale is stale once this commits."""
    label = model._meta.label
    if label in WATCHED:
        _scopes_changed(
            [_VERSION, *(scope for instance in instances for scope in _scopes_of(label, instance))]
        )


def _changed_in_open_transaction() -> bool:
    """Whether the open transaction changed the ticket data (results are then neither read
    nor stored)."""
    connection = transaction.get_connection()
    return (
        connection.in_atomic_block
        and _VERSION in connection.__dict__.get(_PENDING, ())
        and _flush_registered(connection)
    )


def _on_change(sender: type, instance: Any = None, **kwargs: Any) -> None:
    label = sender._meta.label
    if label in WATCHED and not _new_person(label, instance, kwargs.get("created", False)):
        _scopes_changed([_VERSION, *_scopes_of(label, instance)])


def _new_person(label: str, instance: Any, created: bool) -> bool:
    """A new user, with the primary address made along with them: on no ticket yet, so in no
    kept result (mail from strangers makes customers all day). An address added to someone
    who exists may show on their tickets' pages."""
    if not created:
        return False
    return label == "accounts.User" or (label == "accounts.UserEmail" and instance.is_primary)


# --- scopes: results kept per ticket --------------------------------------------------------
# The staff ticket page depends on one ticket, its thread and its customer's other tickets,
# not on the rest of the desk: its results are keyed by version tokens of those scopes
# ("ticket:<pk>", "thread:<pk>", "customer:<user pk>") and of SHARED (the rows every ticket
# page shows: people, statuses, priorities, departments, teams; and bulk updates that name
# no ticket). A save or delete renews the tokens of the scopes it touches when its
# transaction commits, so the page stays kept while other tickets change.

SHARED = "shared"
SHARED_KEY = token_register("helpdesk:querycache:shared")
SCOPE_PREFIX = "helpdesk:querycache:scope:"
SCOPE_TTL = 7 * 24 * 60 * 60  # an expired token is made anew: only a miss


def _scopes_of(label: str, instance: Any) -> list[str]:
    if instance is None:
        return [SHARED]
    if label == "tickets.Ticket":
        return [f"ticket:{instance.pk}", f"customer:{instance.user_id}"]
    if label in ("tickets.ThreadEntry", "tickets.ThreadEvent"):
        return [f"thread:{instance.thread_id}"]
    if label == "tickets.Attachment":
        entry_field = instance._meta.get_field("entry")
        if entry_field.is_cached(instance):
            return [f"thread:{instance.entry.thread_id}"]
        from tickets.models import ThreadEntry

        thread_id = (
            ThreadEntry.objects.filter(pk=instance.entry_id)
            .values_list("thread_id", flat=True)
            .first()
        )
        return [SHARED] if thread_id is None else [f"thread:{thread_id}"]
    if label == "tickets.Collaborator":
        return [f"ticket:{instance.ticket_id}"]
    if label == "tickets.Referral":
        # Besides the ticket, who may see it: the "other tickets" cards of its customer.
        return [f"ticket:{instance.ticket_id}", SHARED]
    return [SHARED]


_PENDING = "_helpdesk_querycache_scopes"
# Among the pending scopes: the data version (`VERSION_KEY`) is renewed too.
_VERSION = "version"


def _scopes_changed(scopes: Iterable[str]) -> None:
    """Renew the scopes' tokens once the current transaction commits (at once outside one):
    all of a transaction's tokens, the data version's with them, in one write."""
    scopes = set(scopes)
    if not scopes:
        return
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        _scopes_renew(scopes)
        return
    if not _flush_registered(connection):  # none yet, or a rollback dropped it
        connection.__dict__[_PENDING] = set()
        transaction.on_commit(_scopes_flush)
    connection.__dict__[_PENDING].update(scopes)


def _flush_registered(connection: Any) -> bool:
    return any(
        callback == _scopes_flush for _savepoints, callback, _robust in connection.run_on_commit
    )


def _scopes_flush() -> None:
    connection = transaction.get_connection()
    _scopes_renew(connection.__dict__.pop(_PENDING, set()))


def _scopes_renew(scopes: set[str]) -> None:
    # The version and SHARED tokens expire like the scopes' when not renewed for SCOPE_TTL:
    # an expired token is made anew, which is only a miss.
    named = {_VERSION: VERSION_KEY, SHARED: SHARED_KEY}
    keys = [named.get(scope, SCOPE_PREFIX + scope) for scope in scopes]
    tokens_renew(keys, SCOPE_TTL)


def _scope_tokens(scopes: list[str]) -> tuple[str | None, ...]:
    keys = [SCOPE_PREFIX + scope for scope in scopes]
    found = cache.get_many(keys)
    missing = [key for key in keys if key not in found]
    if missing:
        for key in missing:
            cache.add(key, secrets.token_hex(8), SCOPE_TTL)
        found.update(cache.get_many(missing))
    return tuple(found.get(key) for key in keys)


def remember_scoped(
    kind: str, parts: tuple[Any, ...], compute: Callable[[], T], scopes: list[str]
) -> T:
    """Like `remember`, for a result that depends on the ticket data of `scopes` only (and
    on SHARED): kept across changes of other tickets."""
    if not enabled() or _changed_in_open_transaction():
        return compute()
    shared = token_get(SHARED_KEY)
    if shared is None:
        return compute()
    tokens = _scope_tokens(scopes)
    if None in tokens:  # a cache that keeps nothing
        return compute()
    return _kept("scoped", (kind, parts, shared, tokens), compute)


def connect() -> None:
    """Listen to every save and delete (called once from HelpdeskConfig.ready)."""
    post_save.connect(_on_change, dispatch_uid="helpdesk.querycache.save")
    post_delete.connect(_on_change, dispatch_uid="helpdesk.querycache.delete")


def _version() -> str | None:
    return token_get(VERSION_KEY)


def cached(
    queryset: QuerySet,
    kind: str,
    compute: Callable[[], T],
    *,
    query_key: Callable[[], str] | None = None,
) -> T:
    """`compute()`, or the result it gave for the same query (`queryset`'s SQL and
    parameters, and `kind`: "count", "ids 0:25", …) since the data last changed.
    `query_key` gives `key_of(queryset)` when the caller keeps it already."""
    return _through(
        lambda: (kind, query_key() if query_key is not None else key_of(queryset)), compute
    )


def remember(kind: str, parts: tuple[Any, ...], compute: Callable[[], T]) -> T:
    """`compute()`, or the result it gave for the same `kind` and `parts` since the data last
    changed: for results whose every input the caller can name (ids, a user, version tokens
    of the rows `WATCHED` leaves out) more cheaply than by compiling their SQL."""
    return _through(lambda: (kind, parts), compute)


def _through(material: Callable[[], tuple[Any, ...]], compute: Callable[[], T]) -> T:
    if not enabled() or _changed_in_open_transaction():
        return compute()
    version = _version()
    if version is None:
        return compute()
    return _kept(version, material(), compute)


def _kept(prefix: str, material: tuple[Any, ...], compute: Callable[[], T]) -> T:
    """The value kept under the digest of `material`, computed and kept when missing."""
    digest = hashlib.blake2b(repr(material).encode(), digest_size=16)
    key = f"helpdesk:querycache:{prefix}:{digest.hexdigest()}"
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, TTL)
    return value


def key_of(queryset: QuerySet) -> str:
    """The query's database, SQL and parameters (compiling it costs about a millisecond)."""
    sql, params = queryset.query.sql_with_params()
    return repr((queryset.db, sql, params))


class CachedPages:
    """A queryset as `Paginator` uses it (its count and slices), through the cache."""

    ordered = True

    def __init__(self, queryset: QuerySet) -> None:
        self.queryset = queryset
        self._key: str | None = None

    def _query_key(self) -> str:
        if self._key is None:
            self._key = key_of(self.queryset)
        return self._key

    def count(self) -> int:
        return cached(self.queryset, "count", self.queryset.count, query_key=self._query_key)

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, item: slice) -> list[Any]:
        if not isinstance(item, slice):
            raise TypeError("CachedPages takes slices only")
        return cached(
            self.queryset,
            f"slice {item.start}:{item.stop}",
            lambda: list(self.queryset[item]),
            query_key=self._query_key,
        )


class KnownPage:
    """One page of a list whose count and rows are known, as `Paginator` uses it."""

    ordered = True

    def __init__(self, count: int, start: int, rows: list[Any]) -> None:
        self._count, self._start, self._rows = count, start, rows

    def count(self) -> int:
        return self._count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, item: slice) -> list[Any]:
        if not isinstance(item, slice) or item.start != self._start:
            raise IndexError("only the known page")
        return self._rows


def known_page(count: int, number: int, rows: list[Any], per_page: int) -> Page:
    """Page `number` of a list of `count` items, whose rows are `rows`."""
    return Paginator(KnownPage(count, (number - 1) * per_page, rows), per_page).page(number)
