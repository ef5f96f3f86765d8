"""Binary COPY of numpy columns into PostgreSQL, NULLs and text included. Plumbing for bulk writes.

PostgreSQL's binary COPY row is: field count (int16), then per field its length (int32) and
bytes, or length -1 for NULL. Rows of one shape (same NULL fields, same text values) have a
fixed layout, so they are built at once as a numpy structured array, and then put back in
their order; a segmentation run has a few dozen shapes for a million rows.
"""

from __future__ import annotations

import struct

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
CHUNK_ROWS = 100_000
KEY_SPAN = 4096  # read_binary: rows per message, at most
PACKING_MEMORY = "128MB"


def _as_array(pgtype: str, values) -> np.ndarray:
    array = np.asarray(values)
    if pgtype != "text" and array.dtype == object:
        array = array.astype("float64")  # None becomes NaN, i.e. NULL
    return array


def _column_keys(pgtype: str, values: np.ndarray) -> tuple[np.ndarray, list]:
    """Per row a small integer: -1 for NULL, else (text) the index of its distinct value."""
    if pgtype == "text":
        codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
        return codes.astype("int64"), [str(value).encode() for value in uniques]
    if values.dtype.kind == "f":  # also integer columns with NULLs, passed as float
        return np.where(np.isnan(values), -1, 0), []
    return np.zeros(len(values), dtype="int64"), []


def copy_binary(cursor, table: str, columns: list[tuple[str, str, np.ndarray]]) -> int:
    """COPY the rows into `table` (existing), in their order; NaN means NULL, text columns are
    object arrays. `cursor` is a psycopg 3 cursor. Returns the number of rows written.

    The order matters: rows sorted by an index's key are appended at its right edge, rows in
    any other order split pages all over it (a million snapshot rows: 4.8 s against 7.9 s)."""
    rows = len(columns[0][2]) if columns else 0
    keys, texts = [], []
    columns = [(name, pgtype, _as_array(pgtype, values)) for name, pgtype, values in columns]
    for _name, pgtype, values in columns:
        key, distinct = _column_keys(pgtype, values)
        keys.append(key)
        texts.append(distinct)
    # One int64 per row for its shape (mixed radix over the per-column keys).
    code = np.zeros(rows, dtype="int64")
    for key in keys:
        code = code * (int(key.max(initial=-1)) + 2) + (key + 1)
    names = ", ".join(name for name, _type, _values in columns)
    with cursor.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(HEADER)
        for begin in range(0, rows, CHUNK_ROWS):
            chunk = np.arange(begin, min(begin + CHUNK_ROWS, rows))
            copy.write(_chunk(columns, texts, keys, code, chunk))
        copy.write(TRAILER)
    return rows


def _chunk(columns, texts, keys, code, chunk: np.ndarray) -> memoryview:
    """The rows of `chunk` (consecutive row numbers) encoded in order: each shape's rows are
    built at once as a structured array, placed left-aligned in a table of the longest row's
    width, and the table read row by row up to each row's own length."""
    order = np.argsort(code[chunk], kind="stable")
    boundaries = np.flatnonzero(np.diff(code[chunk][order])) + 1
    groups = []
    for local in np.split(order, boundaries):
        shape = [int(key[chunk[local[0]]]) for key in keys]
        groups.append((local, _block(columns, texts, shape, chunk[local])))
    width = max(block.dtype.itemsize for _local, block in groups)
    table = np.empty((len(chunk), width), dtype=np.uint8)
    sizes = np.empty(len(chunk), dtype="int64")
    for local, block in groups:
        size = block.dtype.itemsize
        table[local, :size] = block.view(np.uint8).reshape(len(local), size)
        sizes[local] = size
    return table[np.arange(width) < sizes[:, None]].data


def _block(columns, texts, shape, selected: np.ndarray) -> np.ndarray:
    dtype: list[tuple[str, str]] = [("fields", ">i2")]
    for index, (_name, pgtype, _values) in enumerate(columns):
        dtype.append((f"l{index}", ">i4"))
        if shape[index] == -1:
            continue
        if pgtype == "text":
            if texts[index][shape[index]]:  # an empty text is a length 0 and no bytes
                dtype.append((f"v{index}", f"S{len(texts[index][shape[index]])}"))
        else:
            dtype.append((f"v{index}", NUMERIC_TYPES[pgtype]))
    block = np.empty(len(selected), dtype=dtype)
    block["fields"] = len(columns)
    for index, (_name, pgtype, values) in enumerate(columns):
        if shape[index] == -1:
            block[f"l{index}"] = -1
        elif pgtype == "text":
            text = texts[index][shape[index]]
            block[f"l{index}"] = len(text)
            if text:
                block[f"v{index}"] = text
        else:
            block[f"l{index}"] = np.dtype(NUMERIC_TYPES[pgtype]).itemsize
            block[f"v{index}"] = np.asarray(values)[selected]
    return block


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
