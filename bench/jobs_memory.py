"""Benchmark: time and peak memory of the whole-program jobs, each in a fresh process.

    .venv/bin/python bench/jobs_memory.py [--database loyalty_bench] [--days-ahead 7]
                                          [--only expiry|tiers|consistency]

Runs on a seeded database (seed_large.py --keep) and CHANGES it: the expiry run expires the
lots due `--days-ahead` days after now, the tier run moves the tiers that should move then.
Each job runs in its own Python process (so one job's memory does not count for the next);
the figure is that process's peak resident set (ru_maxrss) and its growth over the process
before the job (Django set up, nothing loaded), against the 1.5 GB per worker process target
(issue 16). The consistency check is read-only apart from the row it stores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JOBS = ("expiry", "tiers", "consistency")
TARGET_MB = 1536


def run_job(job: str, days_ahead: int) -> dict:
    """In this process: set Django up, run one job, return its figures."""
    import datetime as dt

    import django

    django.setup()
    from django.utils import timezone

    from loyalty.services import ledger_consistency_check, points_expire, tiers_recalculate_all

    before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    at = timezone.now() + dt.timedelta(days=days_ahead)
    started = time.perf_counter()
    if job == "expiry":
        result = f"{points_expire(now=at):,} points expired"
    elif job == "tiers":
        result = f"{tiers_recalculate_all(now=at):,} tier changes"
    else:
        check = ledger_consistency_check()
        result = f"{check.mismatch_count:,} mismatches in {check.accounts_checked:,} accounts"
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "job": job,
        "seconds": seconds,
        "peak_mb": peak_mb,
        "base_mb": before_mb,
        "result": result,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="loyalty_bench")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--days-ahead", type=int, default=7)
    parser.add_argument("--only", choices=JOBS)
    parser.add_argument("--job", choices=JOBS, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()

    if args.job:
        sys.path.insert(0, str(ROOT))  # the tree this script is in
        print(json.dumps(run_job(args.job, args.days_ahead)))
        return

    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@{args.host}:5432/{args.database}",
        "DJANGO_SETTINGS_MODULE": os.environ.get(
            "DJANGO_SETTINGS_MODULE", "loyalty.settings.local"
        ),
    }
    env.pop("REDIS_URL", None)
    print(
        f"Whole-program jobs on {args.database}, {args.days_ahead} days ahead; target {TARGET_MB} MB"
    )
    print(f"  {'job':<12}{'time':>10}{'peak RSS':>12}{'growth':>10}  result")
    for job in [args.only] if args.only else JOBS:
        output = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--job",
                job,
                "--days-ahead",
                str(args.days_ahead),
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        figures = json.loads(output.strip().splitlines()[-1])
        verdict = "met" if figures["peak_mb"] <= TARGET_MB else "NOT met"
        print(
            f"  {job:<12}{figures['seconds']:9.1f}s{figures['peak_mb']:9.0f} MB"
            f"{figures['peak_mb'] - figures['base_mb']:7.0f} MB  {figures['result']} ({verdict})"
        )


if __name__ == "__main__":
    main()
