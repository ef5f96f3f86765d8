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
from django.db.models import Field, Model

M = TypeVar("M", bound=Model)


# After this many runs on a connection a statement is prepared (PostgreSQL plans it once).
# Django turns prepared statements off for everything (for transaction-mode poolers such as
# PgBouncer before 1.21): `DATABASE_PREPARED_STATEMENTS=false` does so here too.
PREPARE_THRESHOLD = 2


def cursor():
    """A cursor for the statements of this module: on PostgreSQL it sends the parameters apart
    from the text (server-side binding; Django's client-side binding quotes every array element
    in Python) and prepares the statements a connection runs often. It is Django's cursor
    wrapper still: errors are Django's. While queries are logged (DEBUG, tests counting them)
    it is Django's own cursor: Django can show a query only as it binds it itself."""
    if connection.vendor != "postgresql" or connection.queries_logged:
        return connection.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.ensure_connection()
    raw = connection.connection
    if settings.DATABASE_PREPARED_STATEMENTS and raw.prepare_threshold != PREPARE_THRESHOLD:
        raw.prepare_threshold = PREPARE_THRESHOLD  # Django's own cursors bind client-side:
        # they never prepare, whatever the connection's threshold
    with connection.wrap_database_errors:
        return connection._prepare_cursor(ServerBindingCursor(raw))


@functools.cache
def _read_fields(model: type[Model]) -> tuple[Field, ...]:
    return tuple(model._meta.concrete_fields)


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


def rows_source(fields: Sequence[Field], count: int | None, *, lead: Sequence[str] = ()) -> str:
    """A FROM item of rows x(l0, ..., c0, ..., n): `lead`'s columns (their types given), then
    the fields' values, then the row's number from 1. `count` None: from one array parameter
    per column (`unnest`), any number of rows; else `count` rows of one parameter per value
    (`row_values`), which psycopg adapts in C (an array, element by element in Python)."""
    types = [*lead, *(str(field.db_type(connection)).split("(")[0] for field in fields)]
    named = [*(f"l{index}" for index in range(len(lead))), *(f"c{i}" for i in range(len(fields)))]
    if count is None:
        arrays = ", ".join(f"%s::{kind}[]" for kind in types)
        return f"unnest({arrays}) WITH ORDINALITY AS x({', '.join(named)}, n)"
    row = ", ".join(f"%s::{kind}" for kind in types)
    rows = ", ".join(f"({row}, {number})" for number in range(1, count + 1))
    return f"(VALUES {rows}) AS x({', '.join(named)}, n)"


def column_arrays(fields: Sequence[Field], objects: Sequence[Model]) -> list[list[Any]]:
    """One list of database values per field (the columns of `rows_source`)."""
    database = connections[DEFAULT_DB_ALIAS]  # not the proxy: looked up once, not per value
    return [
        [field.get_db_prep_save(getattr(obj, field.attname), database) for obj in objects]
        for field in fields
    ]


def row_values(columns: Sequence[Sequence[Any]]) -> list[Any]:
    """Column lists as one parameter per value, row by row (`rows_source` with a count)."""
    return [value for row in zip(*columns, strict=True) for value in row]


def columns(fields: Iterable[Field]) -> str:
    quote = connection.ops.quote_name
    return ", ".join(quote(field.column) for field in fields)


def table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)
