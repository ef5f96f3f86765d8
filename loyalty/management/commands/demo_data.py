"""Load a realistic demo program: `manage.py demo_data [--members N] [--seed S] [--copy]`."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from tqdm import tqdm

from loyalty import demo
from members.models import Member


class Command(BaseCommand):
    help = "Create the demo program with members, purchases and a consistent points ledger."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--members", type=int, default=3000)
        parser.add_argument(
            "--purchases",
            type=int,
            default=None,
            help="Total purchases (default: about 10 per member).",
        )
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--now", help="Anchor time (ISO 8601); default: now.")
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing when members exist (used by `make demo`).",
        )
        parser.add_argument(
            "--flush",
            action="store_true",
            help="Delete existing members, purchases and ledger first.",
        )
        parser.add_argument(
            "--copy",
            action="store_true",
            help="Bulk load with PostgreSQL binary COPY (benchmark volumes). "
            "Default on PostgreSQL from 100,000 members.",
        )
        parser.add_argument(
            "--no-lines",
            action="store_true",
            help="Purchases without product lines (default for --copy).",
        )

    def handle(self, *args, **options) -> None:
        if options["if_empty"] and Member.objects.exists():
            self.stdout.write("Members exist; demo data not loaded again.")
            return
        if options["members"] < 1:
            raise CommandError("--members must be at least 1.")
        postgres = connection.vendor == "postgresql"
        use_copy = options["copy"] or (postgres and options["members"] >= 100_000)
        if use_copy and not postgres:
            raise CommandError("--copy needs PostgreSQL (set DATABASE_URL).")
        now = None
        if options["now"]:
            now = parse_datetime(options["now"])
            if now is None:
                raise CommandError("--now must be an ISO 8601 date-time.")
            if timezone.is_naive(now):
                now = timezone.make_aware(now, dt.UTC)
        if options["flush"] or Member.objects.exists():
            if not options["flush"]:
                raise CommandError(
                    "Members exist already: use --flush to replace them, or "
                    "--if-empty to keep them."
                )
            self.stdout.write("Removing existing members, purchases and ledger ...")
            demo.flush()
        spec = demo.DemoSpec(
            seed=options["seed"],
            members=options["members"],
            purchases=options["purchases"],
            now=now,
            lines=not (options["no_lines"] or use_copy),
            # Benchmark volume: one earn entry per member-month keeps the ledger to a third.
            monthly_lots=use_copy,
        )
        # The seed works in member chunks and reports each stage's rows so far, per chunk.
        with tqdm(
            total=spec.members, desc="demo data", unit="member", disable=options["verbosity"] == 0
        ) as bar:
            bar.set_postfix_str("generating")

            def progress(stage: str, done: int) -> None:
                bar.set_postfix_str(f"{stage}: {done:,} rows")
                if stage == "members":
                    bar.update(done - bar.n)

            timings = demo.seed(spec, use_copy=use_copy, progress=progress)
            bar.update(bar.total - bar.n)
        phases = ", ".join(
            f"{name} {value}s" for name, value in timings.items() if isinstance(value, float)
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Loaded {timings['member_rows']:,} members, {timings['purchase_rows']:,} purchases "
                f"and {timings['ledger_rows']:,} ledger entries in {timings['total']} s "
                f"({'COPY' if use_copy else 'bulk_create'}; {phases})."
            )
        )
