"""Benchmark: seed a fresh PostgreSQL database with the demo generator at benchmark volume.

    DATABASE_URL is not needed: the script creates (and by default drops) its own database.
    .venv/bin/python bench/seed_large.py [--members 1000000] [--purchases 10000000]
                                         [--database loyalty_bench] [--keep]

Prints the wall time of every phase, rows per second, peak memory, and a baseline measured in
the same run: the bare binary COPY of the same purchase and ledger rows into tables without
indexes, constraints or keys (what PostgreSQL needs at least to take the rows in).
The target for 1M members / 10M purchases on the 2-core reference machine is 120 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--purchases", type=int, default=10_000_000)
    parser.add_argument("--database", default="loyalty_bench")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    admin = ["psql", "-h", args.host, "-U", "postgres", "-d", "postgres", "-qc"]
    subprocess.run([*admin, f"DROP DATABASE IF EXISTS {args.database}"], check=True)
    subprocess.run([*admin, f"CREATE DATABASE {args.database}"], check=True)
    os.environ["DATABASE_URL"] = f"postgres://postgres@{args.host}:5432/{args.database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings.local")
    os.environ.pop("REDIS_URL", None)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from loyalty import demo, pgcopy
    from loyalty.services import ledger_consistency_check

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    migrate_seconds = time.perf_counter() - started

    spec = demo.DemoSpec(
        seed=args.seed,
        members=args.members,
        purchases=args.purchases,
        lines=False,
        monthly_lots=True,
    )
    timings = demo.seed(spec, use_copy=True)

    # Baseline: the same rows, bare COPY into tables with no index, key or constraint; chunk
    # by chunk as the seed generates them (only the COPY is timed, not the generation).
    baseline = 0.0
    with transaction.atomic(), connection.cursor() as django_cursor:
        cursor = django_cursor.cursor
        cursor.execute(
            "CREATE TEMPORARY TABLE bare_purchase (id bigint, member bigint, "
            "amount numeric(12,2), at timestamptz, points integer) ON COMMIT DROP"
        )
        cursor.execute(
            "CREATE TEMPORARY TABLE bare_ledger (account bigint, points integer, "
            "after integer, at timestamptz, remaining integer) ON COMMIT DROP"
        )
        for data in demo.generate_chunks(spec):
            p, led = data.purchase, data.ledger
            owner = p["owner"] + data.first_member
            copy_started = time.perf_counter()
            pgcopy.copy_binary(
                cursor,
                "bare_purchase",
                [
                    ("id", "bigint", owner.astype("int64")),
                    ("member", "bigint", owner),
                    ("amount", "cents", p["cents"]),
                    ("at", "timestamptz", p["at"] - pgcopy.UNIX_EPOCH_US),
                    ("points", "integer", p["points"]),
                ],
            )
            pgcopy.copy_binary(
                cursor,
                "bare_ledger",
                [
                    ("account", "bigint", led["owner"] + data.first_member),
                    ("points", "integer", led["points"]),
                    ("after", "integer", led["balance_after"]),
                    ("at", "timestamptz", led["at"] - pgcopy.UNIX_EPOCH_US),
                    ("remaining", "integer", led["remaining"]),
                ],
            )
            baseline += time.perf_counter() - copy_started
            del data, p, led, owner

    check_started = time.perf_counter()
    check = ledger_consistency_check()
    check_seconds = time.perf_counter() - check_started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    rows = timings["purchase_rows"] + timings["ledger_rows"] + timings["member_rows"]
    print(
        f"\nSeed of {timings['member_rows']:,} members, {timings['purchase_rows']:,} purchases,"
        f" {timings['ledger_rows']:,} ledger entries into {args.database}"
    )
    print(f"  migrate (not counted)         {migrate_seconds:8.1f} s")
    for name, value in timings.items():
        if isinstance(value, float):
            print(f"  {name:<30}{value:8.1f} s")
    print(f"  rows per second (total)       {rows / timings['total']:10,.0f}")
    print(f"  baseline: bare COPY of the purchase and ledger rows {baseline:8.1f} s")
    print(f"  seed total / baseline         {timings['total'] / baseline:8.2f} x")
    print(f"  peak memory (this process)    {peak_mb:8.0f} MB")
    print(
        f"  consistency check             {check_seconds:8.1f} s, "
        f"{len(check.mismatches)} mismatches in {check.accounts_checked:,} accounts"
    )
    target = 120.0 * args.purchases / 10_000_000
    verdict = "met" if timings["total"] <= target else "NOT met"
    print(f"  target {target:.0f} s (120 s per 10M purchases): {verdict}")

    connection.close()
    if not args.keep:
        subprocess.run([*admin, f"DROP DATABASE IF EXISTS {args.database}"], check=True)


if __name__ == "__main__":
    main()
