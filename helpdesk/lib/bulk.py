"""Many rows written in one statement, where Django writes one per row."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.db import connections, models, router, transaction
from django.db.models.signals import post_save


def rows_update(
    model: type[models.Model],
    changes: Mapping[Any, Mapping[str, Any]],
    *,
    where_in: tuple[str, Sequence[Any]] | None = None,
    increment: str | None = None,
) -> int | None:
    """Give each row (by primary key) its own values, in one UPDATE joined to a VALUES list,
    and return how many rows it changed; None where the database is not PostgreSQL (the
    caller updates row by row then).

    Every row names the same fields. `where_in` (a field, its allowed values) leaves out the
    rows whose field holds another value; `increment` names an integer field raised by one.
    Django's `bulk_update` builds a CASE per field and row instead, which costs more to
    compile than the single updates it replaces; and this sends no signals either."""
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        return None
    if not changes:
        return 0
    meta = model._meta
    names = list(next(iter(changes.values())))
    columns = [meta.pk, *(meta.get_field(name) for name in names)]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    casts = [f"%s::{field.db_type(connection)}" for field in columns]
    row_sql = f"({', '.join(casts)})"
    params: list[Any] = []
    for key, values in changes.items():
        if list(values) != names:
            raise ValueError("Every row names the same fields, in the same order.")
        params.append(meta.pk.get_db_prep_save(key, connection))
        for field, name in zip(columns[1:], names, strict=True):
            value = values[name]
            if isinstance(value, models.Model):
                value = value.pk
            params.append(field.get_db_prep_save(value, connection))
    assignments = [f"{quote(field.column)} = v.{quote(field.column)}" for field in columns[1:]]
    if increment is not None:
        column = quote(meta.get_field(increment).column)
        assignments.append(f"{column} = {table}.{column} + 1")
    pk_column = quote(meta.pk.column)
    # Names quoted by the connection, every value a parameter.
    sql = (
        f"UPDATE {table} SET {', '.join(assignments)} "  # noqa: S608
        f"FROM (VALUES {', '.join([row_sql] * len(changes))}) "
        f"AS v ({', '.join(quote(field.column) for field in columns)}) "
        f"WHERE {table}.{pk_column} = v.{pk_column}"
    )
    if where_in is not None:
        field = meta.get_field(where_in[0])
        allowed = list(where_in[1])
        sql += f" AND {table}.{quote(field.column)} IN ({', '.join(['%s'] * len(allowed))})"
        params.extend(field.get_db_prep_save(value, connection) for value in allowed)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


# --- inserts deferred -----------------------------------------------------------------------


@dataclass
class _Deferred:
    """The rows `inserts_deferred` holds back, by model in the order they are written."""

    models: tuple[type[models.Model], ...]
    tables: dict[str, type[models.Model]]
    rows: dict[type[models.Model], list[tuple[models.Model, Callable[[], None]]]]
    keys: dict[type[models.Model], set[Any]]
    free: dict[type[models.Model], list[int]]
    # The models whose rows held back the statements now running cannot concern.
    apart: set[type[models.Model]]
    flushing: bool = False


_deferred: ContextVar[_Deferred | None] = ContextVar("inserts_deferred", default=None)
KEYS_RESERVED = 32


@contextmanager
def inserts_deferred(
    deferred_models: Sequence[type[models.Model]], *, expected: int = 0
) -> Iterator[None]:
    """Inside the caller's transaction: the rows of `deferred_models` given to `row_insert`
    in the block are written together, a statement per model (in the order given: a model
    before those that refer to it), rather than one insert each. Their keys are taken from
    the tables' sequences beforehand, so the rows can be referred to at once.

    Nothing in the block sees a row before it is written: any statement that names one of
    those tables (a read, an update, a join) writes the rows held back first, and so does a
    savepoint (rows written later belong to it). `rows_apart()` spares that for the
    statements about rows written before. The foreign keys that point at a row held back
    are checked at commit (PostgreSQL's are deferred), so this is only done there; on the
    other databases `row_insert` writes at once. Each row's `post_save` is sent when it is
    written (there is no `pre_save`)."""
    connection = transaction.get_connection()
    assert connection.in_atomic_block, "inside the caller's transaction"
    if connection.vendor != "postgresql" or _deferred.get() is not None:
        yield
        return
    state = _Deferred(
        models=tuple(deferred_models),
        tables={f'"{model._meta.db_table}"': model for model in deferred_models},
        rows={model: [] for model in deferred_models},
        keys={model: set() for model in deferred_models},
        free={model: [] for model in deferred_models},
        apart=set(),
    )
    if expected > 0:
        state.free.update(
            zip(deferred_models, _keys_reserved(deferred_models, expected), strict=True)
        )

    def flushed_first(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if not state.flushing and any(state.rows.values()):
            named = [model for table, model in state.tables.items() if table in sql]
            if sql.startswith("SAVEPOINT") or any(
                state.rows[model] and model not in state.apart for model in named
            ):
                _flush(state)
        return execute(sql, params, many, context)

    token = _deferred.set(state)
    try:
        with connection.execute_wrapper(flushed_first):
            yield
            _flush(state)
    finally:
        _deferred.reset(token)


def row_insert(instance: models.Model) -> None:
    """Write a new row, or hold it back inside `inserts_deferred` (its key is set now)."""
    state = _deferred.get()
    model = type(instance)
    if state is None or model not in state.rows or instance.pk is not None:
        instance.save(force_insert=True)
        return
    if not state.free[model]:
        [state.free[model]] = _keys_reserved([model], KEYS_RESERVED)
    instance.pk = state.free[model].pop()
    for column in model._meta.local_concrete_fields:
        if getattr(column, "auto_now", False) or getattr(column, "auto_now_add", False):
            column.pre_save(instance, add=True)  # as save() would (written again when flushed)
    instance._state.adding = False
    instance._state.db = router.db_for_write(model)

    # Held back until written; a savepoint rolled back since drops it, as Django drops its
    # on-commit callbacks (`_flush` keeps the rows whose callback is still there).
    def written() -> None:
        pass

    transaction.on_commit(written)
    state.rows[model].append((instance, written))
    state.keys[model].add(instance.pk)


@contextmanager
def rows_apart(instance: models.Model) -> Iterator[None]:
    """The statements in the block that name `instance`'s table concern `instance` only,
    a row written before `inserts_deferred` held anything back: they need not wait for the
    held rows of that table to be written (statements naming another held table still do)."""
    state = _deferred.get()
    model = type(instance)
    if state is None or model not in state.rows or instance.pk in state.keys[model]:
        yield
        return
    added = model not in state.apart
    state.apart.add(model)
    try:
        yield
    finally:
        if added:
            state.apart.discard(model)


def _keys_reserved(deferred_models: Sequence[type[models.Model]], count: int) -> list[list[int]]:
    """`count` keys from the sequence of each model's table, in one statement, each list in
    the order `list.pop()` hands them out."""
    columns = ", ".join(["nextval(pg_get_serial_sequence(%s, %s))"] * len(deferred_models))
    params: list[Any] = []
    for model in deferred_models:
        params += [model._meta.db_table, model._meta.pk.column]
    with transaction.get_connection().cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM generate_series(1, %s)", [*params, count])  # noqa: S608
        rows = cursor.fetchall()
    return [sorted((row[i] for row in rows), reverse=True) for i in range(len(deferred_models))]


def _flush(state: _Deferred) -> None:
    connection = transaction.get_connection()
    kept = {func for _savepoints, func, _robust in connection.run_on_commit}
    state.flushing = True
    try:
        for model in state.models:
            rows = [instance for instance, written in state.rows[model] if written in kept]
            state.rows[model] = []
            if rows:
                _rows_insert(model, rows)
                using = rows[0]._state.db
                for instance in rows:  # as save() would have, now that the row is written
                    post_save.send(
                        sender=model, instance=instance, created=True, raw=False, using=using
                    )
    finally:
        state.flushing = False


def _rows_insert(model: type[models.Model], rows: list[models.Model]) -> None:
    """INSERT the rows, keys included, as one VALUES list per batch.

    `bulk_create` on PostgreSQL sends every column as one array instead (UNNEST), and
    psycopg, binding on the client as Django has it, quotes the arrays' elements in Python:
    that cost more than the rest of the write for a run's bodies and search documents. A
    model whose fields need more than a plain placeholder goes through `bulk_create`."""
    connection = transaction.get_connection()
    fields = [field for field in model._meta.local_concrete_fields if not field.generated]
    if any(hasattr(field, "get_placeholder") or field.has_db_default() for field in fields):
        model._default_manager.bulk_create(rows)
        return
    quote = connection.ops.quote_name
    head = (
        f"INSERT INTO {quote(model._meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(field.column) for field in fields)}) VALUES "
    )
    row_sql = f"({', '.join(['%s'] * len(fields))})"
    size = max(1, connection.ops.bulk_batch_size(fields, rows))
    with connection.cursor() as cursor:
        for start in range(0, len(rows), size):
            batch = rows[start : start + size]
            params = [
                field.get_db_prep_save(field.pre_save(instance, True), connection)
                for instance in batch
                for field in fields
            ]
            cursor.execute(head + ", ".join([row_sql] * len(batch)), params)
