"""Benchmark: segmentation recalculation on the 1M-member / 10M-purchase database.

    .venv/bin/python bench/seed_large.py --keep          # once: creates loyalty_bench
    .venv/bin/python bench/segmentation.py [--database loyalty_bench]

In one process it measures
  (a) the baseline: the bare SQL aggregate of recency, frequency and monetary per member
      (max(purchased_at), count(*), sum(amount) grouped by member, streamed to the client),
      as PostgreSQL plans it by default, and also with the session settings and the binary
      output format (b) uses; the ratio is printed against the default and the fastest;
  (b) the full recalculation: purchase aggregate, RFM scores, named segments, BG/NBD and
      Gamma-Gamma fit and prediction, matrix, the snapshot write, the example rule segments
      and the swap (services.recalculate, exactly what the Celery task runs), from the run's
      start to its swap; the prune of snapshots beyond the retention that follows in its own
      task is printed separately;
  (c) the CLV fit and prediction alone, on the same customer summary.
It runs --repeat rounds (default 3) of (a) then (b), so that each (b) is compared with an (a)
measured right before it (a shared 2-core machine varies by a third from minute to minute), and
prints every round, the medians of the wall times and of the per-round ratios (b)/(a), the
stages of the fastest round, and the peak memory of the process.
Targets on the 2-core reference machine: (b) <= 10 s and <= 2.0 x (a), peak <= 1.5 GB,
(c) <= 30 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="loyalty_bench")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of (a) then (b); medians are reported"
    )
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = f"postgres://postgres@{args.host}:5432/{args.database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings.local")
    os.environ.pop("REDIS_URL", None)

    import django

    django.setup()
    from django.conf import settings as django_settings
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from loyalty.memory import keep_freed_memory
    from loyalty.models import Purchase
    from members.models import Member
    from segmentation import clv, services
    from segmentation.management.commands.demo_segments import EXAMPLES
    from segmentation.models import RuleSegment, RunStatus, SegmentationSettings
    from segmentation.pipeline import customer_summary
    from segmentation.run_inputs import purchase_aggregates

    # The recalculation runs here as in a Celery worker process, with the worker's memory
    # policy (loyalty/memory.py); round 1 is a fresh process, the others a worker's next runs.
    policy = django_settings.WORKER_KEEP_FREED_MEMORY and keep_freed_memory()
    call_command("migrate", verbosity=0)
    members = Member.objects.count()
    purchases = Purchase.objects.count()
    if members < 1000:
        sys.exit(f"{args.database} has {members} members: run bench/seed_large.py --keep first.")
    for name, description, rule in EXAMPLES:
        RuleSegment.objects.get_or_create(
            name=name, defaults={"description": description, "rule": rule}
        )
    settings = SegmentationSettings.load()
    print(f"database {args.database}: {members:,} members, {purchases:,} purchases")
    print(
        f"window {settings.window_days} days, scale 1-{settings.score_scale}, "
        f"CLV horizon {settings.clv_horizon_months} months, "
        f"{RuleSegment.objects.filter(is_active=True).count()} rule segments, "
        f"worker memory policy: {'keep freed memory' if policy else 'glibc default'}\n"
    )

    table = Purchase._meta.db_table
    bare = (
        f"SELECT member_id, max(purchased_at), count(*), sum(amount) FROM {table} "
        "GROUP BY member_id"
    )

    def baseline(settings_sql: list[str], options: str = "") -> float:
        with connection.cursor() as cursor:
            for statement in settings_sql:
                cursor.execute(statement)
            started = time.perf_counter()
            size = 0
            with cursor.cursor.copy(f"COPY ({bare}) TO STDOUT {options}") as copy:
                for block in copy:
                    size += len(block)
            seconds = time.perf_counter() - started
            cursor.execute("RESET ALL")
        return seconds

    serial = [
        "SET max_parallel_workers_per_gather = 0",
        "SET jit = off",
        "SET enable_hashagg = off",
    ]
    baseline(["RESET ALL"])  # warm the cache: every measurement reads the table from memory
    rounds = []
    for number in range(1, args.repeat + 1):
        # (a) right before each (b): on a shared machine both see the same conditions.
        a_default = baseline(["RESET ALL"])
        a_tuned = baseline(serial)
        a_binary = baseline(serial, "(FORMAT BINARY)")  # the output format (b) reads
        connection.close()
        started = time.perf_counter()
        run = services.recalculate()  # without a broker the prune runs inline after the swap
        wall_seconds = time.perf_counter() - started
        if run.status != RunStatus.DONE:
            sys.exit(f"the recalculation failed: {run.error}")
        b_seconds = run.duration_seconds or wall_seconds  # start to swap
        rounds.append(
            {
                "a_default": a_default,
                "a_tuned": a_tuned,
                "a_binary": a_binary,
                "b": b_seconds,
                "prune": wall_seconds - b_seconds,
                "timings": run.timings,
            }
        )
        print(
            f"round {number}: (a) {a_default:5.2f} / {a_tuned:5.2f} / {a_binary:5.2f} s,"
            f" (b) {b_seconds:5.2f} s = {b_seconds / a_default:4.2f} x default,"
            f" {b_seconds / min(a_default, a_tuned, a_binary):4.2f} x fastest;"
            + ", ".join(f" {stage} {seconds:.2f}" for stage, seconds in run.timings.items())
        )

    now = timezone.now()
    aggregates = purchase_aggregates(now=now, window_start=now - dt.timedelta(days=365))
    summary = customer_summary(aggregates)
    started = time.perf_counter()
    _predictions, fitted = clv.predict_customer_value(
        summary,
        months=settings.clv_horizon_months,
        monthly_discount_rate=float(settings.monthly_discount_rate),
        margin=float(settings.margin),
    )
    c_seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def median(key: str) -> float:
        return statistics.median(entry[key] for entry in rounds)

    a_default, a_tuned, a_binary, b_seconds = (
        median(key) for key in ("a_default", "a_tuned", "a_binary", "b")
    )
    ratio_default = statistics.median(entry["b"] / entry["a_default"] for entry in rounds)
    ratio_fastest = statistics.median(
        entry["b"] / min(entry["a_default"], entry["a_tuned"], entry["a_binary"])
        for entry in rounds
    )
    best = min(rounds, key=lambda entry: entry["b"])
    print(f"\nmedians of {len(rounds)} rounds")
    print(f"(a) bare RFM aggregate, default plan      {a_default:7.2f} s")
    print(f"    same, serial plan without JIT         {a_tuned:7.2f} s")
    print(f"    same, serial, binary COPY             {a_binary:7.2f} s")
    print(
        f"(b) full recalculation, start to swap     {b_seconds:7.2f} s   ({run.member_count:,} members)"
    )
    print(f"    fastest round {best['b']:.2f} s:")
    for stage, seconds in best["timings"].items():
        print(f"      {stage:<34} {seconds:7.2f} s")
    print(f"    rule segments: {run.parameters['rule_segments']}")
    print(f"    then, in its own task: pruning old snapshots {median('prune'):5.2f} s")
    print(
        f"(c) CLV fit and prediction                {c_seconds:7.2f} s   ({len(summary):,} customers)"
    )
    print(f"    BG/NBD {fitted['bgnbd']}")
    print(f"    Gamma-Gamma {fitted['gamma_gamma']}")
    print(f"(b)/(a) against the fastest baseline        {ratio_fastest:7.2f} x")
    print(f"(b)/(a) against the default plan           {ratio_default:7.2f} x")
    print(f"peak memory (this process)               {peak_mb:7.0f} MB")
    checks = [
        ("(b) <= 10 s", b_seconds <= 10),
        ("(b) <= 2.0 x (a) default plan", ratio_default <= 2.0),
        ("(b) <= 2.0 x (a) fastest", ratio_fastest <= 2.0),
        ("peak <= 1.5 GB", peak_mb <= 1536),
        ("(c) <= 30 s", c_seconds <= 30),
    ]
    print("targets: " + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in checks))


if __name__ == "__main__":
    main()
