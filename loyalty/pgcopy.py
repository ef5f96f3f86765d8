"""Binary COPY of numpy columns into PostgreSQL, NULLs and text included. Plumbing for bulk writes.

PostgreSQL's binary COPY row is: field count (int16), then per field its length (int32) and
bytes, or length -1 for NULL. Rows of one shape (same NULL fields, same text values) have a
fixed layout, so they are built at once as a numpy structured array, and then put back in
their order; a segmentation run has a few dozen shapes for a million rows. When no column
varies in shape (no NULLs, text of one value or of one width per row, as in the demo's ten
million purchases) each chunk is one block, written as it is built.

The one encoder of binary COPY in the project (segmentation snapshots, the demo's COPY
writer); bench/pgcopy_vs_psycopg.py measures it against psycopg's own write_row.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from psycopg import pq

HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = (-1).to_bytes(2, "big", signed=True)
NUMERIC_TYPES = {
    "bigint": ">i8",
    "integer": ">i4",
    "smallint": ">i2",
    "double precision": ">f8",
    "timestamptz": ">i8",  # microseconds since 2000-01-01 UTC
    "date": ">i4",  # days since 2000-01-01
}
TEXT_TYPES = ("text", "jsonb")
UNIX_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since 1970: subtract it
CHUNK_ROWS = 100_000
KEY_SPAN = 4096  # read_binary: rows per message, at most
PACKING_MEMORY = "128MB"
# cents: numeric as four base-10000 digits (weight 2, two decimals), the last the cents.
_CENTS_DIGITS = 4
_CENTS_LIMIT = 10_000 ** (_CENTS_DIGITS - 1) * 100  # |cents| below this fits
_NUMERIC_NEGATIVE = 0x4000


@dataclass
class _Column:
    """One column prepared for encoding. `keys` per row: -1 for NULL, else (text, jsonb) the
    index of its value in `distinct`; None when every row has the same key, `fixed_key`."""

    name: str
    pgtype: str
    values: Any  # a numpy array of the rows, or one value for every row
    keys: np.ndarray | None
    fixed_key: int
    distinct: list[bytes]

    @property
    def per_row_bytes(self) -> bool:
        return self.pgtype in TEXT_TYPES and isinstance(self.values, np.ndarray)


def _encoded_text(pgtype: str, value: Any) -> bytes:
    data = value if isinstance(value, bytes) else str(value).encode()
    return b"\x01" + data if pgtype == "jsonb" else data  # jsonb: version 1, then the text


def _prepare(name: str, pgtype: str, values: Any, rows: int) -> _Column:
    if pgtype not in NUMERIC_TYPES and pgtype not in (*TEXT_TYPES, "cents"):
        raise ValueError(f"column {name}: unsupported type {pgtype!r}")
    if np.ndim(values) == 0:  # one value for every row
        if values is None or (isinstance(values, float) and np.isnan(values)):
            return _Column(name, pgtype, None, None, -1, [])
        if pgtype in TEXT_TYPES:
            return _Column(name, pgtype, None, None, 0, [_encoded_text(pgtype, values)])
        if pgtype == "cents":
            _check_cents(name, np.asarray([values], dtype="float64"))
        return _Column(name, pgtype, values, None, 0, [])
    array = np.asarray(values)
    if len(array) != rows:
        raise ValueError(f"column {name} has {len(array)} rows, not {rows}")
    if pgtype in TEXT_TYPES:
        if array.dtype.kind == "S" and pgtype == "text":  # fixed width: every value that long
            width = array.dtype.itemsize
            if rows and not array.view(np.uint8).reshape(rows, width)[:, -1].all():
                raise ValueError(f"column {name}: a bytes value shorter than {width} bytes")
            return _Column(name, pgtype, array, None, 0, [])
        codes, uniques = pd.factorize(pd.Series(array, dtype=object), use_na_sentinel=True)
        distinct = [_encoded_text(pgtype, value) for value in uniques]
        return _Column(name, pgtype, None, codes.astype("int64"), 0, distinct)
    if array.dtype == object:
        array = array.astype("float64")  # None becomes NaN, i.e. NULL
    if pgtype == "cents":
        _check_cents(name, array)
    if array.dtype.kind == "f":  # also integer columns with NULLs, passed as float
        missing = np.isnan(array)
        if missing.any():
            return _Column(name, pgtype, array, np.where(missing, -1, 0), 0, [])
    return _Column(name, pgtype, array, None, 0, [])


def _check_cents(name: str, cents: np.ndarray) -> None:
    """Whole numbers within four base-10000 digits (NaN, i.e. NULL, passes)."""
    if not len(cents):
        return
    if cents.dtype.kind == "f":
        present = cents[~np.isnan(cents)]
        if (present != np.floor(present)).any():
            raise ValueError(f"column {name}: cents must be whole numbers")
        cents = present
    if len(cents) and (cents.max() >= _CENTS_LIMIT or cents.min() <= -_CENTS_LIMIT):
        raise ValueError(f"column {name}: an amount beyond numeric's four digits")


def copy_binary(cursor, table: str, columns: list[tuple[str, str, Any]]) -> int:
    """COPY the rows into `table` (existing), in their order. `cursor` is a psycopg 3 cursor.
    Returns the number of rows written.

    Each column is (name, type, values): values an array of the rows, or one value for every
    row (None: NULL). Types: those of NUMERIC_TYPES (NaN means NULL; timestamps in
    microseconds since 2000-01-01, see UNIX_EPOCH_US), "cents" (numeric with two decimals from
    whole hundredths), "text" and "jsonb" (an object array, None meaning NULL; or, for text, a
    numpy bytes array whose values are all as long as its width, see numbered_texts). Bad
    input raises ValueError before anything is sent.

    The order matters: rows sorted by an index's key are appended at its right edge, rows in
    any other order split pages all over it (a million snapshot rows: 4.8 s against 7.9 s)."""
    arrays = [values for _name, _type, values in columns if np.ndim(values) != 0]
    if columns and not arrays:
        raise ValueError("at least one column must be an array of the rows")
    rows = len(arrays[0]) if arrays else 0
    prepared = [_prepare(name, pgtype, values, rows) for name, pgtype, values in columns]
    # One int64 per row for its shape (mixed radix over the keys of the columns that vary).
    code = None
    for column in prepared:
        if column.keys is not None:
            base = np.zeros(rows, dtype="int64") if code is None else code
            code = base * (int(column.keys.max(initial=-1)) + 2) + (column.keys + 1)
    names = ", ".join(column.name for column in prepared)
    with cursor.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(HEADER)
        for begin in range(0, rows, CHUNK_ROWS):
            end = min(begin + CHUNK_ROWS, rows)
            if code is None:  # every row of the same shape: one block, already in order
                shape = [column.fixed_key for column in prepared]
                copy.write(_block(prepared, shape, slice(begin, end), end - begin).data)
            else:
                copy.write(_chunk(prepared, code, np.arange(begin, end)))
        copy.write(TRAILER)
    return rows


def _chunk(columns: list[_Column], code: np.ndarray, chunk: np.ndarray) -> memoryview:
    """The rows of `chunk` (consecutive row numbers) encoded in order: each shape's rows are
    built at once as a structured array, placed left-aligned in a table of the longest row's
    width, and the table read row by row up to each row's own length."""
    order = np.argsort(code[chunk], kind="stable")
    boundaries = np.flatnonzero(np.diff(code[chunk][order])) + 1
    groups = []
    for local in np.split(order, boundaries):
        first = chunk[local[0]]
        shape = [
            column.fixed_key if column.keys is None else int(column.keys[first])
            for column in columns
        ]
        groups.append((local, _block(columns, shape, chunk[local], len(local))))
    width = max(block.dtype.itemsize for _local, block in groups)
    table = np.empty((len(chunk), width), dtype=np.uint8)
    sizes = np.empty(len(chunk), dtype="int64")
    for local, block in groups:
        size = block.dtype.itemsize
        table[local, :size] = block.view(np.uint8).reshape(len(local), size)
        sizes[local] = size
    return table[np.arange(width) < sizes[:, None]].data


def _block(columns: list[_Column], shape: list[int], selected, count: int) -> np.ndarray:
    """The `count` rows `selected` (an index array or a slice), all of one shape."""
    dtype: list[tuple[Any, ...]] = [("fields", ">i2")]
    for index, column in enumerate(columns):
        dtype.append((f"l{index}", ">i4"))
        if shape[index] == -1:
            continue
        if column.per_row_bytes:
            dtype.append((f"v{index}", column.values.dtype))
        elif column.pgtype in TEXT_TYPES:
            if column.distinct[shape[index]]:  # an empty text is a length 0 and no bytes
                dtype.append((f"v{index}", f"S{len(column.distinct[shape[index]])}"))
        elif column.pgtype == "cents":
            dtype.append((f"v{index}", ">i2", (4 + _CENTS_DIGITS,)))
        else:
            dtype.append((f"v{index}", NUMERIC_TYPES[column.pgtype]))
    block = np.empty(count, dtype=dtype)
    block["fields"] = len(columns)
    for index, column in enumerate(columns):
        length, value = f"l{index}", f"v{index}"
        if shape[index] == -1:
            block[length] = -1
        elif column.per_row_bytes:
            block[length] = column.values.dtype.itemsize
            block[value] = column.values[selected]
        elif column.pgtype in TEXT_TYPES:
            text = column.distinct[shape[index]]
            block[length] = len(text)
            if text:
                block[value] = text
        elif column.pgtype == "cents":
            block[length] = 2 * (4 + _CENTS_DIGITS)
            _cents_into(block[value], column, selected)
        else:
            block[length] = np.dtype(NUMERIC_TYPES[column.pgtype]).itemsize
            constant = np.ndim(column.values) == 0
            block[value] = column.values if constant else column.values[selected]
    return block


def _cents_into(target: np.ndarray, column: _Column, selected) -> None:
    """PostgreSQL's binary numeric: digit count, weight, sign, display scale, base-10000
    digits. Leading zero digits are allowed (the server strips them)."""
    cents = column.values if np.ndim(column.values) == 0 else column.values[selected]
    cents = np.asarray(cents).astype(np.int64)  # checked whole and in range by _prepare
    magnitude = np.abs(cents)
    euros = magnitude // 100
    target[..., 0] = _CENTS_DIGITS
    target[..., 1] = _CENTS_DIGITS - 2  # weight: the first digit counts 10000^2
    target[..., 2] = np.where(cents < 0, _NUMERIC_NEGATIVE, 0)
    target[..., 3] = 2  # display scale: cents
    target[..., 4] = euros // 10_000**2
    target[..., 5] = euros // 10_000 % 10_000
    target[..., 6] = euros % 10_000
    target[..., 7] = magnitude % 100 * 100


def numbered_texts(prefix: str, numbers: np.ndarray, *, suffix: str = "", digits: int = 9):
    """prefix + each number zero-padded to `digits` + suffix, as a numpy bytes array of one
    width (a text column for copy_binary, built without a Python string per row)."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if len(numbers) and (numbers.min() < 0 or numbers.max() >= 10**digits):
        raise ValueError(f"numbers must be 0 to {10**digits - 1}")
    head, tail = prefix.encode(), suffix.encode()
    width = len(head) + digits + len(tail)
    out = np.empty((len(numbers), width), dtype=np.uint8)
    out[:, : len(head)] = np.frombuffer(head, dtype=np.uint8)
    remaining = numbers.copy()
    for position in range(len(head) + digits - 1, len(head) - 1, -1):
        out[:, position] = 48 + remaining % 10
        remaining //= 10
    if tail:
        out[:, len(head) + digits :] = np.frombuffer(tail, dtype=np.uint8)
    return out.view(f"S{width}").ravel()


def read_binary(cursor, query: str, types: list[str]) -> list[np.ndarray]:
    """Run `query` (complete SQL, no parameters) through binary COPY and return one native
    numpy array per column. Every column must be one of NUMERIC_TYPES and never NULL, and the
    first an integer; a NULL or a column of another width raises ValueError (coalesce and cast
    in the query). Rows come back in no particular order.

    The server sends the rows packed as one array per column for each range of KEY_SPAN values
    of the first column: a COPY row is one protocol message, and reading a million one-row
    messages costs the client about a second of CPU that the database cores then lack; the
    client parses a few hundred rows of arrays instead. Binary, because then the server
    formats no numbers or dates and the client parses none."""
    names = [f"c{index}" for index in range(len(types))]
    packed = (
        f"SELECT {', '.join(f'array_agg({name})' for name in names)}"
        f" FROM ({query}) AS packed_rows({', '.join(names)}) GROUP BY c0 / {KEY_SPAN}"
    )
    buffer = bytearray()
    # Room to group (or sort) the rows in memory: the planner cannot tell that they fall into
    # a few hundred ranges, and at the default 4 MB it sorts a million of them on disk.
    cursor.execute(f"SET work_mem = '{PACKING_MEMORY}'")
    try:
        with cursor.copy(f"COPY ({packed}) TO STDOUT (FORMAT BINARY)") as copy:
            for block in copy:
                buffer += block
    finally:
        # A failed transaction undoes the SET itself (and refuses any statement until then).
        if cursor.connection.info.transaction_status != pq.TransactionStatus.INERROR:
            cursor.execute("RESET work_mem")
    if buffer[:11] != HEADER[:11]:
        raise ValueError("not a binary COPY stream")
    position = 19 + int.from_bytes(buffer[15:19], "big")  # skip the header extension, if any
    elements = [np.dtype([("length", ">i4"), ("value", NUMERIC_TYPES[t])]) for t in types]
    parts: list[list[np.ndarray]] = [[] for _type in types]
    while (fields := int.from_bytes(buffer[position : position + 2], "big", signed=True)) != -1:
        if fields != len(types):
            raise ValueError(f"rows without {len(types)} columns")
        position += 2
        for index, element in enumerate(elements):
            size = int.from_bytes(buffer[position : position + 4], "big", signed=True)
            # An array: dimensions, has-NULL flag, element type, then length and lower bound
            # of its one dimension, then each element as its length and bytes.
            _dimensions, has_null, _oid, count, _lower = struct.unpack_from(
                ">iiIii", buffer, position + 4
            )
            if has_null:
                raise ValueError(f"column {index} is NULL in some row")
            if size - 20 != count * element.itemsize:
                raise ValueError(f"column {index} is not {types[index]}")
            rows = np.frombuffer(buffer, dtype=element, count=count, offset=position + 24)
            parts[index].append(rows["value"])
            position += 4 + size
    return [
        np.concatenate(part).astype(NUMERIC_TYPES[pgtype][1:])
        if part
        else np.empty(0, dtype=NUMERIC_TYPES[pgtype][1:])
        for part, pgtype in zip(parts, types, strict=True)
    ]
