"""Per-process copies of small tables read for every mail, new ticket or staff page (the
settings row, our addresses, email templates, banned addresses, the default status and
priority, the queue pages' choices, each agent's scope).

Each copy is valid while a version token in Django's cache is unchanged: a save or delete of
the rows sets a new token (at once, and again when its transaction commits), so every process
sharing the cache reloads on its next read. Copies are never taken from inside a transaction
that changed the rows (it may roll back), and are reloaded after MAX_AGE seconds anyway, which
bounds staleness where the cache is per process (the locmem default) or a snapshot was old.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from django.core.cache import cache
from django.db import transaction
from django.db.models import Model
from django.db.models.signals import m2m_changed, post_delete, post_save

T = TypeVar("T")
K = TypeVar("K")

MAX_AGE = 60.0  # seconds

_ALL: list[_Versioned] = []


# --- version tokens -------------------------------------------------------------------------
# A request reads every token it needs in one round trip to the cache (a snapshot taken at
# its first read, dropped when it ends), rather than one per copy: a staff page reads ten.

_KEYS: list[str] = []
_snapshot = threading.local()


def token_register(key: str) -> str:
    if key not in _KEYS:
        _KEYS.append(key)
    return key


def tokens_snapshot_begin(**kwargs: Any) -> None:
    """request_started: this request's tokens are read together, once."""
    _snapshot.tokens = None
    _snapshot.values = {}
    _snapshot.active = True
    _snapshot.run = False


def tokens_snapshot_end(**kwargs: Any) -> None:
    _snapshot.tokens = None
    _snapshot.values = {}
    _snapshot.active = False
    _snapshot.run = False


@contextmanager
def tokens_snapshot() -> Iterator[None]:
    """The tokens read together once for a unit of work outside a request (a run of fetched
    mail), as a request reads them; what was active before is restored after."""
    active, tokens = getattr(_snapshot, "active", False), getattr(_snapshot, "tokens", None)
    values, run = getattr(_snapshot, "values", {}), getattr(_snapshot, "run", False)
    tokens_snapshot_begin()
    _snapshot.run = True
    try:
        yield
    finally:
        _snapshot.active, _snapshot.tokens = active, tokens
        _snapshot.values, _snapshot.run = values, run


def in_run() -> bool:
    """Whether this is a run of work outside a request (`tokens_snapshot`): many changes in
    a row, for which asking something once ahead pays where a request's one change would
    not."""
    return getattr(_snapshot, "run", False)


def snapshot_value(key: str, compute: Callable[[], T]) -> T:
    """`compute()`, worked out once per snapshot (a request, a run of fetched mail) where
    one is active, like the tokens: for the check that stands in for a token where the cache
    is per process."""
    if not getattr(_snapshot, "active", False):
        return compute()
    values = _snapshot.values
    if key not in values:
        values[key] = compute()
    return values[key]


def token_get(key: str) -> str | None:
    """The current token under `key`, made when there is none (None with a dummy cache)."""
    tokens: dict[str, Any] | None = None
    if getattr(_snapshot, "active", False):
        tokens = _snapshot.tokens
        if tokens is None:
            tokens = _snapshot.tokens = cache.get_many(_KEYS)
        token = tokens.get(key)
        if token is not None:
            return token
    token = cache.get(key)
    if token is None:
        cache.add(key, secrets.token_hex(8), None)
        token = cache.get(key)  # None with a dummy cache: nothing is kept
    if tokens is not None and token is not None:
        tokens[key] = token
    return token


def token_renew(key: str) -> None:
    tokens_renew([key])


def tokens_renew(keys: Iterable[str], timeout: int | None = None) -> None:
    """New tokens under `keys`, in one write."""
    fresh = {key: secrets.token_hex(8) for key in keys}
    if len(fresh) == 1:
        [(key, token)] = fresh.items()
        cache.set(key, token, timeout)
    elif fresh:
        cache.set_many(fresh, timeout)
    tokens = getattr(_snapshot, "tokens", None)
    if tokens is not None:
        tokens.update((key, token) for key, token in fresh.items() if key in _KEYS)


def memos_forget() -> None:
    """Drop every per-process copy (tests: a flush deletes rows without signals)."""
    for memo in _ALL:
        memo._forget()


class _Versioned:
    """A version token in Django's cache, set anew when the watched rows change."""

    key: str

    def watch(self, *models: type[Model], created: bool = True) -> Any:
        """Invalidate on every save or delete of `models` (rows changed by `QuerySet.update`
        send no signal: call `invalidate` after one). With `created=False`, a new row leaves
        the copy: for copies that no new row can be part of yet (a new user is nobody's
        agent, and no session's user)."""
        on_save = self.invalidate if created else self._invalidate_unless_created
        for model in models:
            uid = f"{self.key}:{model._meta.label}"
            post_save.connect(on_save, sender=model, dispatch_uid=uid, weak=False)
            post_delete.connect(self.invalidate, sender=model, dispatch_uid=uid, weak=False)
        return self

    def _invalidate_unless_created(self, *args: Any, created: bool = False, **kwargs: Any) -> None:
        if not created:
            self.invalidate()

    def watch_m2m(self, *through: type[Model]) -> Any:
        """Invalidate when the rows of a many-to-many relation are added, removed or cleared."""
        for model in through:
            uid = f"{self.key}:m2m:{model._meta.label}"
            m2m_changed.connect(self._m2m_changed, sender=model, dispatch_uid=uid, weak=False)
        return self

    def _m2m_changed(self, *args: Any, action: str = "", **kwargs: Any) -> None:
        if action.startswith("post_"):
            self.invalidate()

    def invalidate(self, *args: Any, **kwargs: Any) -> None:
        """Signal receiver for a save or delete of the rows."""
        self._bump()
        transaction.on_commit(self._bump)

    def _forget(self) -> None:
        raise NotImplementedError

    def _bump(self) -> None:
        self._forget()
        token_renew(self.key)

    def _token(self) -> str | None:
        return token_get(self.key)

    def token(self) -> str | None:
        """The rows' current version (part of a cache key for what is derived from them)."""
        return self._token()

    def _changed_in_open_transaction(self) -> bool:
        connection = transaction.get_connection()
        return connection.in_atomic_block and any(
            callback == self._bump for _savepoints, callback, _robust in connection.run_on_commit
        )


class VersionedMemo(_Versioned, Generic[T]):
    """One value, loaded by `load()`."""

    def __init__(self, name: str, load: Callable[[], T]) -> None:
        self.key = token_register(f"helpdesk:memo:{name}")
        self.load = load
        self._memo: tuple[str, float, T] | None = None
        _ALL.append(self)

    def get(self) -> T:
        token = self._token()
        now = time.monotonic()
        memo = self._memo
        if memo is not None and token is not None and memo[0] == token and now - memo[1] < MAX_AGE:
            return memo[2]
        value = self.load()
        if token is not None and not self._changed_in_open_transaction():
            self._memo = (token, now, value)
        return value

    def _forget(self) -> None:
        self._memo = None


class VersionedMap(_Versioned, Generic[K, T]):
    """One value per key (a user's permissions, say), each loaded by the `load` given to
    `get` and kept until the token changes or MAX_AGE passes. At most `size` keys are kept:
    past that the oldest half is dropped."""

    def __init__(self, name: str, size: int = 5000) -> None:
        self.key = token_register(f"helpdesk:memo:{name}")
        self.size = size
        self._token_seen: str | None = None
        self._entries: dict[K, tuple[float, T]] = {}
        _ALL.append(self)

    def get(self, key: K, load: Callable[[], T]) -> T:
        token = self._token()
        now = time.monotonic()
        if token != self._token_seen:
            self._entries = {}
            self._token_seen = token
        entry = self._entries.get(key)
        if entry is not None and token is not None and now - entry[0] < MAX_AGE:
            return entry[1]
        value = load()
        if token is not None and not self._changed_in_open_transaction():
            if len(self._entries) >= self.size:
                # dicts keep insertion order: the first half are the oldest entries
                for old in list(self._entries)[: self.size // 2]:
                    self._entries.pop(old, None)
            self._entries[key] = (now, value)
        return value

    def _forget(self) -> None:
        self._entries = {}
        self._token_seen = None
