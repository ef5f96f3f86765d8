"""Benchmark: loyalty.pgcopy's binary COPY against psycopg's own, on the same rows.

    .venv/bin/python bench/pgcopy_vs_psycopg.py [--rows 2000000] [--rounds 3]
                                                [--dsn postgres://postgres@127.0.0.1:5432/postgres]

Purchase-like rows (bigint id, integer member, numeric(12,2) amount, timestamptz, text id)
start as numpy columns, as the demo generator and a segmentation run hold them, and go into a
temporary table (no WAL, no index) in three ways, each round in a fresh table:

  pgcopy           loyalty.pgcopy.copy_binary: the rows encoded by numpy, one block per chunk
  psycopg          cursor.copy(... FORMAT BINARY) + copy.set_types([...]) + write_row per row;
                   the Python rows (int, Decimal, datetime, str) built from the columns first,
                   timed apart ("build rows") and together
  pre-encoded      copy.write of blocks encoded beforehand (pgcopy's), so the time of the
                   server taking the rows in and nothing else: the floor of any encoder

Prints the median rows per second of each, the ratios, and whether the tables agree.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loyalty import pgcopy  # noqa: E402

TABLE = (
    "CREATE TEMPORARY TABLE copied (id bigint, member_id integer, amount numeric(12, 2), "
    "purchased_at timestamptz, external_id text) ON COMMIT DROP"
)
COPY = "COPY copied (id, member_id, amount, purchased_at, external_id) FROM STDIN (FORMAT BINARY)"
TYPES = ["int8", "int4", "numeric", "timestamptz", "text"]
PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
CHECK = (
    "SELECT count(*), sum(id), sum(member_id), sum(amount), min(purchased_at), "
    "max(purchased_at), md5(string_agg(external_id, ',' ORDER BY id)) FROM copied"
)


def columns(rows: int, seed: int = 42) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    start = int((dt.datetime(2024, 1, 1, tzinfo=dt.UTC) - PG_EPOCH).total_seconds() * 1e6)
    return {
        "id": np.arange(1, rows + 1, dtype=np.int64),
        "member_id": rng.integers(1, 1_000_000, rows).astype(np.int64),
        "cents": np.maximum(np.round(rng.lognormal(3.6, 0.8, rows) * 100), 195).astype(np.int64),
        "at": start + (rng.random(rows) * 3 * 365 * 86_400e6).astype(np.int64),  # since 2000
        "external_id": pgcopy.numbered_texts("D", np.arange(1, rows + 1)),
    }


def pgcopy_columns(data: dict[str, np.ndarray]) -> list[tuple[str, str, np.ndarray]]:
    return [
        ("id", "bigint", data["id"]),
        ("member_id", "integer", data["member_id"]),
        ("amount", "cents", data["cents"]),
        ("purchased_at", "timestamptz", data["at"]),
        ("external_id", "text", data["external_id"]),
    ]


def python_rows(data: dict[str, np.ndarray]) -> list[tuple]:
    """The rows as psycopg's write_row takes them: int, int, Decimal, datetime, str."""
    microseconds = dt.timedelta(microseconds=1)
    return list(
        zip(
            data["id"].tolist(),
            data["member_id"].tolist(),
            [Decimal(cents).scaleb(-2) for cents in data["cents"].tolist()],
            [PG_EPOCH + at * microseconds for at in data["at"].tolist()],
            data["external_id"].astype(str).tolist(),
            strict=True,
        )
    )


class _Recorder:
    """A stand-in cursor whose copy() keeps the blocks pgcopy writes (encoding, no server)."""

    def __init__(self) -> None:
        self.blocks: list[bytes] = []

    @contextmanager
    def copy(self, _statement: str):
        yield self

    def write(self, block) -> None:
        self.blocks.append(bytes(block))


def timed_copy(connection: psycopg.Connection, write) -> tuple[float, tuple]:
    with connection.cursor() as cursor:
        cursor.execute(TABLE)
        started = time.perf_counter()
        write(cursor)
        seconds = time.perf_counter() - started
        cursor.execute(CHECK)
        check = cursor.fetchone()
    connection.commit()
    return seconds, check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dsn", default="postgres://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    data = columns(args.rows)
    times: dict[str, list[float]] = {
        name: [] for name in ("pgcopy", "pgcopy encode", "build rows", "psycopg", "pre-encoded")
    }
    checks: dict[str, tuple] = {}
    with psycopg.connect(args.dsn) as connection:
        for _round in range(args.rounds):
            seconds, checks["pgcopy"] = timed_copy(
                connection,
                lambda cursor: pgcopy.copy_binary(cursor, "copied", pgcopy_columns(data)),
            )
            times["pgcopy"].append(seconds)

            started = time.perf_counter()
            rows = python_rows(data)
            times["build rows"].append(time.perf_counter() - started)

            def write_rows(cursor, rows=rows) -> None:
                with cursor.copy(COPY) as copy:
                    copy.set_types(TYPES)
                    for row in rows:
                        copy.write_row(row)

            seconds, checks["psycopg"] = timed_copy(connection, write_rows)
            times["psycopg"].append(seconds)
            del rows

            recorder = _Recorder()
            started = time.perf_counter()
            pgcopy.copy_binary(recorder, "copied", pgcopy_columns(data))
            times["pgcopy encode"].append(time.perf_counter() - started)

            def write_blocks(cursor, blocks=recorder.blocks) -> None:
                with cursor.copy(COPY) as copy:
                    for block in blocks:
                        copy.write(block)

            seconds, checks["pre-encoded"] = timed_copy(connection, write_blocks)
            times["pre-encoded"].append(seconds)

    median = {name: statistics.median(values) for name, values in times.items()}
    psycopg_total = median["build rows"] + median["psycopg"]
    print(f"\n{args.rows:,} rows ({', '.join(TYPES)}), {args.rounds} rounds")
    print("  medians                                  seconds      rows/s")
    for name, seconds in [
        ("pgcopy.copy_binary (encode + COPY)", median["pgcopy"]),
        ("  of which encoding alone", median["pgcopy encode"]),
        ("psycopg write_row, rows prebuilt", median["psycopg"]),
        ("psycopg: building the Python rows", median["build rows"]),
        ("psycopg from numpy (build + write_row)", psycopg_total),
        ("pre-encoded blocks, copy.write only", median["pre-encoded"]),
    ]:
        print(f"  {name:<40}{seconds:8.2f} {args.rows / seconds:12,.0f}")
    for name, ratio in [
        ("psycopg write_row / pgcopy", median["psycopg"] / median["pgcopy"]),
        ("psycopg from numpy / pgcopy", psycopg_total / median["pgcopy"]),
        ("pgcopy / pre-encoded floor", median["pgcopy"] / median["pre-encoded"]),
    ]:
        print(f"  {name:<40}{ratio:8.2f} x")
    agree = len(set(checks.values())) == 1
    print(f"  the three tables agree (sums, times, md5 of the ids): {'yes' if agree else 'NO'}")
    if not agree:
        for name, check in checks.items():
            print(f"    {name}: {check}")


if __name__ == "__main__":
    main()
