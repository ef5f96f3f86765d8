"""Realistic demo data: a Dutch retail program whose members behave like real customers.

One generator (numpy, seeded) produces members with different purchase behaviour (frequent
and loyal, big spenders, low-spend regulars, one-time buyers, new, at risk, lapsed ...),
their purchases, refunds, redemptions, expiry and the points ledger. Two writers store it:
Django's bulk_create for the embedded demo, and PostgreSQL binary COPY for benchmark volumes
such as 1M members and 10M purchases.

    generate.py     the generator (numpy, seeded; writes nothing), in member chunks
    program.py      the program around the data (settings, terms, partners, tiers, rules), flush
    breakdown.py    each purchase's earning breakdown as JSON, built with numpy
    orm_writer.py   writer 1: bulk_create, any database
    copy_writer.py  writer 2: binary COPY through loyalty.pgcopy, two connections
    seed() below    the one entry point: program, generation, one of the writers
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from django.db import transaction
from django.utils import timezone

from .copy_writer import write_copy
from .generate import (
    REDEMPTION_MENU,
    DemoData,
    DemoSpec,
    generate,
    generate_chunks,
    member_numbers,
)
from .orm_writer import write_orm
from .program import flush, program_setup, terms_in_force, terms_setup

__all__ = [
    "REDEMPTION_MENU",
    "DemoData",
    "DemoSpec",
    "flush",
    "generate",
    "generate_chunks",
    "member_numbers",
    "program_setup",
    "seed",
    "terms_in_force",
    "terms_setup",
    "write_copy",
    "write_orm",
]


def seed(
    spec: DemoSpec, *, use_copy: bool = False, progress: Callable[[str, int], None] | None = None
) -> dict[str, float]:
    """Create the demo program and its members; returns seconds per phase and row counts.

    The data is generated and written in member chunks (generate_chunks), so the memory of
    the process stays bounded whatever the member count."""
    started = time.perf_counter()
    now = spec.now or timezone.now().replace(microsecond=0)
    spec.now = now
    with transaction.atomic():
        program, partners, tiers, terms = program_setup(now)
    timings: dict[str, float] = {"setup": round(time.perf_counter() - started, 2)}
    write_started = time.perf_counter()
    counts = {"member_rows": 0, "purchase_rows": 0, "ledger_rows": 0}
    generated: dict[str, float] = {}

    def chunks() -> Iterator[DemoData]:
        for data in generate_chunks(spec, program=program):
            for name, seconds in data.timings.items():
                generated[name] = generated.get(name, 0.0) + seconds
            counts["member_rows"] += data.member_count
            counts["purchase_rows"] += len(data.purchase["owner"])
            counts["ledger_rows"] += len(data.ledger["owner"])
            yield data

    if use_copy:
        timings.update(
            write_copy(chunks(), partners=partners, tiers=tiers, terms=terms, progress=progress)
        )
    else:
        with transaction.atomic():
            for data in chunks():
                write_orm(data, partners=partners, tiers=tiers, terms=terms, progress=progress)
    timings.update({name: round(seconds, 2) for name, seconds in generated.items()})
    timings["generate and write"] = round(time.perf_counter() - write_started, 2)
    timings["total"] = round(time.perf_counter() - started, 2)
    return {**timings, **counts}
