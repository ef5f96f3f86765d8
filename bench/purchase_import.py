"""Benchmark: a 500,000-row purchase and refund file through the admin's import (loyalty.imports).

    DATABASE_URL is not needed: the script creates (and by default drops) its own database.
    .venv/bin/python bench/purchase_import.py [--rows 500000] [--members 20000]
                                              [--database loyalty_bench_import] [--keep]
                                              [--replay ROWS]

Writes a CSV (`;`, Dutch amounts and times) of purchases with 5% refunds of earlier purchases
and 0.1% rows naming no member, then runs `purchase_import_run` on it as the worker does,
on PostgreSQL. Prints rows per second, the resident memory the import added at its peak (the
file's rows are never all in memory), and a baseline measured in the same run: the streaming
reader alone (what the import costs without the database). `--replay N` imports the first N
rows again and prints the rate of rows that are already there.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    """The process's resident memory now, in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_file(path: Path, *, rows: int, members: int, seed: int) -> None:
    rng = random.Random(seed)
    start = dt.datetime(2024, 1, 1, 8, 0)
    header = [
        "type",
        "external_id",
        "member_number",
        "amount",
        "purchased_at",
        "channel",
        "store",
        "purchase_external_id",
        "refund_id",
    ]
    amounts: dict[int, int] = {}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(header)
        for number in range(rows):
            if number > 100 and rng.random() < 0.05:
                target = rng.randrange(number - 100)
                if target in amounts:  # a purchase earlier in the file, refunded once
                    cents = amounts.pop(target) // 2 or 1
                    writer.writerow(
                        ["refund", "", "", f"{cents // 100},{cents % 100:02d}", "", "", "",
                         f"BENCH-{target}", f"RF-{target}"]
                    )  # fmt: skip
                    continue
            member = 10_000_000 + rng.randrange(members)
            if rng.random() < 0.001:
                member = 99_000_000 + number  # no such member: a refused row
            cents = rng.randrange(195, 25_000)
            amounts[number] = cents
            at = start + dt.timedelta(minutes=rng.randrange(60 * 24 * 600))
            writer.writerow(
                ["purchase", f"BENCH-{number}", str(member), f"{cents // 100},{cents % 100:02d}",
                 at.strftime("%d-%m-%Y %H:%M"), rng.choice(["store", "webshop", "app"]),
                 f"Store {rng.randrange(40)}", "", ""]
            )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--database", default="loyalty_bench_import")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    parser.add_argument("--replay", type=int, default=0, help="Import the first N rows again.")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    admin = ["psql", "-h", args.host, "-U", "postgres", "-d", "postgres", "-qc"]
    subprocess.run([*admin, f"DROP DATABASE IF EXISTS {args.database}"], check=True)
    subprocess.run([*admin, f"CREATE DATABASE {args.database}"], check=True)
    os.environ["DATABASE_URL"] = f"postgres://postgres@{args.host}:5432/{args.database}"
    os.environ["DEBUG"] = "false"  # no query log growing with every row
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings.local")
    os.environ.pop("REDIS_URL", None)
    workdir = Path(tempfile.mkdtemp(prefix="purchase-import-"))
    os.environ["MEDIA_ROOT"] = str(workdir / "media")

    import django

    django.setup()
    from django.core.files import File
    from django.core.management import call_command
    from django.utils import timezone

    from loyalty.imports import purchase_file_rows, purchase_import_run
    from loyalty.models import Partner, ProgramSettings, Purchase, PurchaseImport, Refund
    from members.models import Member

    try:
        call_command("migrate", verbosity=0)
        ProgramSettings.load()
        partner = Partner.objects.create(name="Bench POS", kind="pos")
        now = timezone.now()
        Member.objects.bulk_create(
            (
                Member(
                    email=f"bench{n}@example.com",
                    member_number=str(10_000_000 + n),
                    status="active",
                    enrolled_at=now,
                    enrolment_source="import",
                )
                for n in range(args.members)
            ),
            batch_size=5000,
        )
        path = workdir / "purchases.csv"
        write_file(path, rows=args.rows, members=args.members, seed=args.seed)
        size_mb = path.stat().st_size / 2**20
        print(f"file: {args.rows:,} rows, {size_mb:.1f} MB; {args.members:,} members")

        started = time.perf_counter()
        with path.open("rb") as handle:
            read = sum(1 for _row in purchase_file_rows(handle, name=path.name))
        reader_seconds = time.perf_counter() - started
        print(f"baseline, reader alone: {read / reader_seconds:,.0f} rows/s")

        with path.open("rb") as handle:
            job = PurchaseImport.objects.create(partner=partner, file=File(handle, name=path.name))
        before_mb, peak_before_mb = rss_mb(), peak_rss_mb()
        started = time.perf_counter()
        purchase_import_run(job=job)
        seconds = time.perf_counter() - started
        job.refresh_from_db()
        grown_mb = max(peak_rss_mb(), peak_before_mb) - before_mb
        print(
            f"import: {job.total_rows:,} rows in {seconds:.1f} s = {job.total_rows / seconds:,.0f} "
            f"rows/s; created {job.created_rows:,}, already there {job.replayed_rows:,}, "
            f"refused {job.error_rows:,}; status {job.status}"
        )
        print(
            f"memory: {before_mb:.0f} MB before, peak resident growth during the import "
            f"{grown_mb:.0f} MB (file {size_mb:.1f} MB)"
        )
        print(f"purchases {Purchase.objects.count():,}, refunds {Refund.objects.count():,}")

        if args.replay:
            replay = workdir / "replay.csv"
            with path.open(encoding="utf-8") as source, replay.open("w", encoding="utf-8") as out:
                for number, line in enumerate(source):
                    if number > args.replay:
                        break
                    out.write(line)
            with replay.open("rb") as handle:
                again = PurchaseImport.objects.create(
                    partner=partner, file=File(handle, name=replay.name)
                )
            started = time.perf_counter()
            purchase_import_run(job=again)
            seconds = time.perf_counter() - started
            again.refresh_from_db()
            print(
                f"replay: {again.total_rows:,} rows in {seconds:.1f} s = "
                f"{again.total_rows / seconds:,.0f} rows/s; created {again.created_rows:,}, "
                f"already there {again.replayed_rows:,}, refused {again.error_rows:,}"
            )
    finally:
        from django.db import connections

        connections.close_all()
        shutil.rmtree(workdir, ignore_errors=True)
        if not args.keep:
            subprocess.run([*admin, f"DROP DATABASE IF EXISTS {args.database}"], check=True)


if __name__ == "__main__":
    main()
