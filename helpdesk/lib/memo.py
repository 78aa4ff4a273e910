"""Per-process copies of small tables read for every mail or new ticket (our addresses, email
templates, banned addresses, the default status and priority).

Each copy is valid while a version token in Django's cache is unchanged: a save or delete of
the rows sets a new token (at once, and again when its transaction commits), so every process
sharing the cache reloads on its next read. Copies are never taken from inside a transaction
that changed the rows (it may roll back), and are reloaded after MAX_AGE seconds anyway, which
bounds staleness where the cache is per process (the locmem default) or a snapshot was old.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.core.cache import cache
from django.db import transaction
from django.db.models import Model
from django.db.models.signals import post_delete, post_save

T = TypeVar("T")

MAX_AGE = 60.0  # seconds

_ALL: list[VersionedMemo[Any]] = []


def memos_forget() -> None:
    """Drop every per-process copy (tests: a flush deletes rows without signals)."""
    for memo in _ALL:
        memo._memo = None


class VersionedMemo(Generic[T]):
    def __init__(self, name: str, load: Callable[[], T]) -> None:
        self.key = f"helpdesk:memo:{name}"
        self.load = load
        self._memo: tuple[str, float, T] | None = None
        _ALL.append(self)

    def watch(self, *models: type[Model]) -> VersionedMemo[T]:
        """Invalidate on every save or delete of `models` (rows changed by `QuerySet.update`
        send no signal: call `invalidate` after one)."""
        for model in models:
            uid = f"{self.key}:{model._meta.label}"
            post_save.connect(self.invalidate, sender=model, dispatch_uid=uid, weak=False)
            post_delete.connect(self.invalidate, sender=model, dispatch_uid=uid, weak=False)
        return self

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

    def invalidate(self, *args: Any, **kwargs: Any) -> None:
        """Signal receiver for a save or delete of the rows."""
        self._bump()
        transaction.on_commit(self._bump)

    def _bump(self) -> None:
        self._memo = None
        cache.set(self.key, secrets.token_hex(8), None)

    def _token(self) -> str | None:
        token = cache.get(self.key)
        if token is None:
            cache.add(self.key, secrets.token_hex(8), None)
            token = cache.get(self.key)  # None with a dummy cache: nothing is kept
        return token

    def _changed_in_open_transaction(self) -> bool:
        connection = transaction.get_connection()
        return connection.in_atomic_block and any(
            callback == self._bump for _savepoints, callback, _robust in connection.run_on_commit
        )
