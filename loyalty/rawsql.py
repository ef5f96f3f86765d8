"""Hand-written SQL for the purchase path, built from the models' own fields once per process.

Why: a partner API purchase ran 9 ORM statements, and each cost 0.3-0.7 ms of Python to compile
(the query compiler, not the database); the same statements as SQL text built once cost a
fraction of that (bench/README.md). The column lists, types and converters still come from the
models, so a field added to a model is read and written here too; what this module does not do
is build arbitrary queries: the callers write their WHERE clauses.

`select_list(model)` / `instances(model, rows)`: rows as model instances (as `from_db` makes
them, with the fields' converters). `written_fields`, `rows_source`, `column_arrays` and
`row_values`: the rows an INSERT or UPDATE takes, as one array parameter per column (PostgreSQL's
unnest, as Django's own bulk_create does for many rows) or as one parameter per value (a few
rows). `cursor()`: the cursor these statements run on.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.utils import CursorWrapper
from django.db.models import (
    AutoField,
    BigAutoField,
    BooleanField,
    CharField,
    Field,
    ForeignKey,
    IntegerField,
    Model,
    TextField,
)

M = TypeVar("M", bound=Model)


# After this many runs on a connection a statement is prepared (PostgreSQL plans it once).
# Django turns prepared statements off for everything (for transaction-mode poolers such as
# PgBouncer before 1.21): `DATABASE_PREPARED_STATEMENTS=false` does so here too.
PREPARE_THRESHOLD = 2


class _KeptCursor(CursorWrapper):
    """Django's cursor wrapper, kept open for the connection's life: leaving a `with` block
    does not close it (creating the cursor and its wrapper was a tenth of a purchase's SQL)."""

    def __exit__(self, kind, value, traceback) -> None:
        pass


def cursor():
    """A cursor for the statements of this module: on PostgreSQL it sends the parameters apart
    from the text (server-side binding; Django's client-side binding quotes every array element
    in Python) and prepares the statements a connection runs often; one per connection (and so
    per thread), made at its first use. It is Django's cursor wrapper still: errors are Django's.
    While queries are logged (DEBUG, tests counting them) it is Django's own cursor: Django can
    show a query only as it binds it itself."""
    database = connections[DEFAULT_DB_ALIAS]  # not the proxy: one lookup, not one per attribute
    if not _binds_on_server(database):
        return database.cursor()
    raw = database.connection
    kept = getattr(database, "_rawsql_cursor", None)
    if kept is not None and raw is not None and kept.cursor.connection is raw and not kept.closed:
        database.validate_thread_sharing()
        return kept
    from django.db.backends.postgresql.base import ServerBindingCursor

    database.ensure_connection()
    raw = database.connection
    if settings.DATABASE_PREPARED_STATEMENTS and raw.prepare_threshold != PREPARE_THRESHOLD:
        raw.prepare_threshold = PREPARE_THRESHOLD  # Django's own cursors bind client-side:
        # they never prepare, whatever the connection's threshold
    database.validate_thread_sharing()
    with database.wrap_database_errors:
        kept = database._rawsql_cursor = _KeptCursor(ServerBindingCursor(raw), database)
    return kept


@functools.cache
def _read_fields(model: type[Model]) -> tuple[Field, ...]:
    return tuple(model._meta.concrete_fields)


@functools.cache
def select_list(model: type[Model]) -> str:
    """Every concrete column of the model, in field order, for `instances`."""
    return columns(_read_fields(model))


@functools.cache
def _converters(
    model: type[Model], vendor: str
) -> tuple[tuple[int, Any, tuple[Callable, ...]], ...]:
    found = []
    for index, field in enumerate(_read_fields(model)):
        column = field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if converters:
            found.append((index, column, tuple(converters)))
    return tuple(found)


def instances(model: type[M], rows: Iterable[Sequence[Any]]) -> list[M]:
    """Model instances of rows that selected `select_list(model)`."""
    names = [field.attname for field in _read_fields(model)]
    converters = _converters(model, connection.vendor)
    made = []
    for row in rows:
        if converters:
            values = list(row)
            for index, column, functions in converters:
                for function in functions:
                    values[index] = function(values[index], column, connection)
            row = values
        made.append(model.from_db(connection.alias, names, row))
    return made


@functools.cache
def _written_fields(model: type[Model], exclude: frozenset[str]) -> tuple[Field, ...]:
    return tuple(
        field
        for field in model._meta.concrete_fields
        if not field.primary_key and not field.generated and field.name not in exclude
    )


def written_fields(model: type[Model], *, exclude: Iterable[str] = ()) -> tuple[Field, ...]:
    """The columns an insert writes: all but the primary key and generated ones."""
    return _written_fields(model, frozenset(exclude))


def binds_on_server() -> bool:
    """Whether `cursor()` sends parameters apart from the text (PostgreSQL, queries not logged):
    only then can a parameter travel in binary (`%b`)."""
    return _binds_on_server(connections[DEFAULT_DB_ALIAS])


def _binds_on_server(database) -> bool:
    return database.vendor == "postgresql" and not database.queries_logged


# Arrays of these types are sent as text: psycopg's binary numeric is slower than its text.
_TEXT_ARRAY_TYPES = frozenset({"numeric", "decimal"})


def rows_source(
    fields: Sequence[Field], count: int | None, *, lead: Sequence[str] = (), binary: bool = False
) -> str:
    """A FROM item of rows x(l0, ..., c0, ..., n): `lead`'s columns (their types given), then
    the fields' values, then the row's number from 1. `count` None: from one array parameter
    per column (`unnest`), any number of rows; else `count` rows of one parameter per value
    (`row_values`), which psycopg adapts in C (an array, element by element in Python).
    `binary`: arrays travel in binary where that is quicker (`binds_on_server()` must hold):
    psycopg sends a thousand timestamps in 0.6 ms so against 7 ms as text, JSON in half the
    time; numerics are quicker as text."""
    types = [*lead, *(str(field.db_type(connection)).split("(")[0] for field in fields)]
    named = [*(f"l{index}" for index in range(len(lead))), *(f"c{i}" for i in range(len(fields)))]
    if count is None:
        arrays = ", ".join(
            f"%{'b' if binary and kind not in _TEXT_ARRAY_TYPES else 's'}::{kind}[]"
            for kind in types
        )
        return f"unnest({arrays}) WITH ORDINALITY AS x({', '.join(named)}, n)"
    row = ", ".join(f"%s::{kind}" for kind in types)
    rows = ", ".join(f"({row}, {number})" for number in range(1, count + 1))
    return f"(VALUES {rows}) AS x({', '.join(named)}, n)"


# Most specific first: an AutoField is an IntegerField with methods of its own.
_PLAIN_BASES = (
    (BigAutoField, int),
    (AutoField, int),
    (CharField, str),
    (TextField, str),
    (IntegerField, int),
    (BooleanField, bool),
)


@functools.cache
def _plain(field: Field) -> tuple[type, Callable[[Any], Any]] | None:
    """The Python type whose values the field prepares trivially on PostgreSQL, with what the
    preparation amounts to: str and bool as they are, an int as Django adapts it (an integer
    field's in psycopg's type of the column, which keeps the parameter types, and so the
    prepared statements, the same for every row; a key to an auto id as it is); None when the
    field prepares values its own way. `column_arrays` skips the field's get_db_prep_save for
    such values: a third of its time went there."""
    target = field
    if field.many_to_one:
        if not isinstance(field, ForeignKey) or (
            type(field).get_db_prep_save is not ForeignKey.get_db_prep_save
        ):
            return None
        target = field.target_field
    for base, kind in _PLAIN_BASES:
        if isinstance(target, base):
            if not all(
                getattr(type(target), method) is getattr(base, method)
                for method in ("get_db_prep_save", "get_db_prep_value", "get_prep_value")
            ):
                return None
            if base is IntegerField:  # Django's own adaptation (an AutoField's value stays an int)
                typed = getattr(connection.ops, "integerfield_type_map", {})
                return (kind, typed[target.get_internal_type()]) if typed else None
            return kind, _same
    return None


def _same(value: Any) -> Any:
    return value


def column_arrays(fields: Sequence[Field], objects: Sequence[Model]) -> list[list[Any]]:
    """One list of database values per field (the columns of `rows_source`; PostgreSQL)."""
    database = connections[DEFAULT_DB_ALIAS]  # not the proxy: looked up once, not per value
    found = []
    for field in fields:
        attname, prepared = field.attname, field.get_db_prep_save
        kind, plain = _plain(field) or (None, _same)
        column: list[Any] = []
        for obj in objects:
            value = getattr(obj, attname)
            if value is None:  # every field here writes None as NULL
                column.append(None)
            elif type(value) is kind:
                column.append(plain(value))
            else:
                column.append(prepared(value, database))
        found.append(column)
    return found


def row_values(columns: Sequence[Sequence[Any]]) -> list[Any]:
    """Column lists as one parameter per value, row by row (`rows_source` with a count)."""
    return [value for row in zip(*columns, strict=True) for value in row]


def columns(fields: Iterable[Field]) -> str:
    quote = connection.ops.quote_name
    return ", ".join(quote(field.column) for field in fields)


@functools.cache
def table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)
