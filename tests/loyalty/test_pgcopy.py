"""Binary COPY of numpy columns: NULLs, text of any length, many row shapes."""

import datetime as dt
from decimal import Decimal

import numpy as np
import psycopg
import pytest
from django.db import connection, transaction

from loyalty.pgcopy import UNIX_EPOCH_US, copy_binary, numbered_texts, read_binary

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_rows_arrive_exactly_with_nulls_and_texts():
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE copied (id bigint, small smallint, whole integer, "
            "ratio double precision, label text)"
        )
        rows = copy_binary(
            cursor.cursor,
            "copied",
            [
                ("id", "bigint", np.array([1, 2, 3, 4, 5], dtype="int64")),
                ("small", "smallint", np.array([1.0, np.nan, 3.0, np.nan, 5.0])),
                ("whole", "integer", np.array([10, 20, 30, 40, 50], dtype="int64")),
                ("ratio", "double precision", np.array([0.5, 1.5, np.nan, 2.5, 3.25])),
                (
                    "label",
                    "text",
                    np.array(["champions", "", None, "lost", "champions"], dtype=object),
                ),
            ],
        )
        cursor.execute("SELECT id, small, whole, ratio, label FROM copied ORDER BY id")
        result = cursor.fetchall()
        cursor.execute("SELECT id FROM copied ORDER BY ctid")  # the order they were written in
        written = [row[0] for row in cursor.fetchall()]

    assert rows == 5
    assert written == [1, 2, 3, 4, 5]  # in their order, though of four different shapes
    assert result == [
        (1, 1, 10, 0.5, "champions"),
        (2, None, 20, 1.5, ""),
        (3, 3, 30, None, None),
        (4, None, 40, 2.5, "lost"),
        (5, 5, 50, 3.25, "champions"),
    ]


def test_constant_columns_fixed_width_texts_cents_and_jsonb_arrive_exactly():
    at = dt.datetime(2026, 11, 1, 12, 30, tzinfo=dt.UTC)
    at_us = int(at.timestamp() * 1_000_000) - UNIX_EPOCH_US
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE copied (id bigint, code text, amount numeric(14, 2), "
            "at timestamptz, channel text, store text, note jsonb, staff bigint)"
        )
        rows = copy_binary(
            cursor.cursor,
            "copied",
            [
                ("id", "bigint", np.array([1, 2, 3, 4], dtype="int64")),
                ("code", "text", numbered_texts("D", np.array([7, 8, 9, 123456789]))),
                ("amount", "cents", np.array([1999, 0, -250, 10**14 - 1])),
                ("at", "timestamptz", np.full(4, at_us)),
                ("channel", "text", "webshop"),  # one value for every row
                ("store", "text", ""),
                ("note", "jsonb", '{"rule": "duurzaam"}'),
                ("staff", "bigint", None),  # NULL in every row
            ],
        )
        cursor.execute("SELECT * FROM copied ORDER BY ctid")
        result = cursor.fetchall()

    assert rows == 4
    assert [row[:3] for row in result] == [
        (1, "D000000007", Decimal("19.99")),
        (2, "D000000008", Decimal("0.00")),
        (3, "D000000009", Decimal("-2.50")),
        (4, "D123456789", Decimal("999999999999.99")),
    ]
    assert all(row[3:] == (at, "webshop", "", '{"rule": "duurzaam"}', None) for row in result)


def test_cents_with_nulls_take_the_shape_path():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE copied (id bigint, amount numeric(12, 2))")
        copy_binary(
            cursor.cursor,
            "copied",
            [("id", "bigint", np.arange(3)), ("amount", "cents", np.array([5.0, np.nan, 120.0]))],
        )
        cursor.execute("SELECT amount FROM copied ORDER BY ctid")
        assert cursor.fetchall() == [(Decimal("0.05"),), (None,), (Decimal("1.20"),)]


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (
            [("id", "bigint", np.arange(3)), ("code", "text", np.array([b"ab", b"a", b"ab"]))],
            "shorter",
        ),
        ([("id", "bigint", np.arange(3)), ("amount", "cents", np.array([1, 2, 10**14]))], "beyond"),
        ([("id", "bigint", np.arange(3)), ("amount", "cents", np.array([1.5, 2.0, 3.0]))], "whole"),
        (
            [("id", "bigint", np.arange(3)), ("label", "text", np.array(["a", "b"], dtype=object))],
            "2 rows",
        ),
        ([("id", "bigint", np.arange(3)), ("money", "money", np.arange(3))], "unsupported"),
        ([("id", "bigint", 1)], "array"),
    ],
)
def test_bad_columns_are_refused_and_nothing_is_written(columns, message):
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE copied (id bigint, code text, amount numeric(16, 2), "
            "label text, money money)"
        )
        with pytest.raises(ValueError, match=message):
            copy_binary(cursor.cursor, "copied", columns)
        cursor.execute("SELECT count(*) FROM copied")
        assert cursor.fetchone() == (0,)


def test_numbered_texts_pad_to_one_width_and_refuse_what_does_not_fit():
    texts = numbered_texts("Retour van aankoop D", np.array([0, 42]), suffix="!")

    assert texts.tolist() == [b"Retour van aankoop D000000000!", b"Retour van aankoop D000000042!"]
    assert numbered_texts("R", np.array([5]), digits=3).tolist() == [b"R005"]
    with pytest.raises(ValueError, match="0 to 999"):
        numbered_texts("R", np.array([1000]), digits=3)
    with pytest.raises(ValueError, match="0 to 999"):
        numbered_texts("R", np.array([-1]), digits=3)


def test_read_binary_returns_native_columns_and_refuses_nulls():
    query = (
        "SELECT * FROM (VALUES (1::bigint, 2::smallint, 1.5::float8, DATE '2000-01-03'),"
        " (-7, 32767::smallint, -0.25, DATE '1999-12-31')) AS t"
    )
    with connection.cursor() as cursor:
        ids, small, ratio, day = read_binary(
            cursor.cursor, query, ["bigint", "smallint", "double precision", "date"]
        )
        with pytest.raises(ValueError, match="NULL"):
            read_binary(cursor.cursor, "SELECT NULL::bigint", ["bigint"])
        with pytest.raises(ValueError, match="NULL"):
            read_binary(cursor.cursor, "SELECT 1::bigint, NULL::integer", ["bigint", "integer"])
        with pytest.raises(ValueError, match="not bigint"):
            read_binary(cursor.cursor, "SELECT 1::integer", ["bigint"])

    order = np.argsort(ids)  # rows come in no particular order; columns stay aligned
    assert ids[order].tolist() == [-7, 1] and ids.dtype == np.dtype("int64")
    assert small[order].tolist() == [32767, 2] and ratio[order].tolist() == [-0.25, 1.5]
    assert day[order].tolist() == [-1, 2]  # days since 2000-01-01


def test_read_binary_reads_many_packed_rows_and_none():
    # Ids over many KEY_SPAN ranges, so the rows travel in several packed messages.
    query = (
        "SELECT i::bigint, (i * 0.5)::float8, (i % 7)::smallint FROM generate_series(1, 50000) i"
    )
    with connection.cursor() as cursor:
        ids, halves, sevens = read_binary(
            cursor.cursor, query, ["bigint", "double precision", "smallint"]
        )
        (empty,) = read_binary(cursor.cursor, "SELECT 1::bigint WHERE false", ["bigint"])

    order = np.argsort(ids)
    assert ids[order].tolist() == list(range(1, 50001))
    assert np.array_equal(halves[order], np.arange(1, 50001) * 0.5)
    assert np.array_equal(sevens[order], np.arange(1, 50001) % 7)
    assert empty.dtype == np.dtype("int64") and len(empty) == 0


def test_read_binary_leaves_the_session_as_it_was():
    with connection.cursor() as cursor:
        cursor.execute("SHOW work_mem")
        (before,) = cursor.fetchone()
        read_binary(cursor.cursor, "SELECT 1::bigint", ["bigint"])
        cursor.execute("SHOW work_mem")
        assert cursor.fetchone() == (before,)
        # A query that fails inside a transaction: its own error, and the rollback undoes the SET.
        with pytest.raises(psycopg.errors.DivisionByZero), transaction.atomic():
            read_binary(cursor.cursor, "SELECT (1 / 0)::bigint", ["bigint"])
        cursor.execute("SHOW work_mem")
        assert cursor.fetchone() == (before,)
