"""Writer 2: the generated data through PostgreSQL binary COPY (benchmark volumes).

Encoding is loyalty.pgcopy's; this module decides what goes where, on which connection, and
with which indexes and triggers out of the way.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction

from members.models import ConsentRecord, Member, MemberStatus, TermsAcceptance, TermsVersion

from .. import pgcopy
from ..models import EntryKind, LedgerEntry, Partner, PointsAccount, Purchase, Refund, Tier
from .generate import (
    CHANNELS,
    FIRST_NAMES,
    KIND_CODES,
    LAST_NAMES,
    MONTHLY_EARN_REASON,
    REASON_KEY_BY_KIND,
    SOURCE_BY_KIND,
    STORES,
    DemoData,
    reason_templates,
    redemption_reasons,
)
from .program import flush, partner_for, terms_acceptances, terms_in_force

BREAKDOWN_ROWS = 250_000  # purchases per COPY statement: their breakdown texts, built at once


def _since_2000(unix_us: np.ndarray) -> np.ndarray:
    """Microseconds since 1970 (the generator's) as pgcopy's: since 2000-01-01."""
    return unix_us - pgcopy.UNIX_EPOCH_US


def _temporary_table(cursor, table: str, columns: list[tuple[str, str, np.ndarray]]) -> None:
    """Create a temporary table (dropped at commit) and fill it through binary COPY."""
    cursor.execute(
        f"CREATE TEMPORARY TABLE {table} ("
        + ", ".join(f"{name} {pgtype}" for name, pgtype, _ in columns)
        + ") ON COMMIT DROP"
    )
    pgcopy.copy_binary(cursor, table, columns)


def _sql_array(values: list[str]) -> str:
    return "(ARRAY[" + ", ".join("'" + value.replace("'", "''") + "'" for value in values) + "])"


@contextmanager
def _without_secondary_indexes(cursor, tables: list[str]) -> Iterator[None]:
    """Drop secondary indexes and unique constraints for the load; rebuild them after."""
    cursor.execute(
        "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) "
        "FROM pg_constraint c WHERE c.contype = 'u' AND c.conrelid::regclass::text = ANY(%s)",
        [tables],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid::regclass::text = ANY(%s) AND NOT i.indisprimary AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        [tables],
    )
    indexes = cursor.fetchall()
    for table, name, _definition in constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _definition in indexes:
        cursor.execute(f"DROP INDEX {name}")
    yield
    cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
    cursor.execute("SET LOCAL max_parallel_maintenance_workers = 2")
    for table, name, definition in constraints:
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    for _name, definition in indexes:
        cursor.execute(definition)


def _next_id(cursor, table: str) -> int:
    cursor.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")
    return int(cursor.fetchone()[0])


@dataclass
class _Ids:
    """A chunk's rows' ids in the whole load (numbered on from the tables' next ids)."""

    member: np.ndarray  # per member of the chunk
    purchase: np.ndarray  # per purchase
    refund: np.ndarray  # per purchase: its refund's id, -1 without one
    account: np.ndarray  # per member: its account's id, 0 without one
    ledger: np.ndarray  # per ledger entry


def write_copy(
    chunks: Iterable[DemoData],
    *,
    partners: list[Partner],
    tiers: list[Tier],
    terms: list[TermsVersion],
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, float]:
    """Load the generated data with binary COPY, two database connections in parallel.

    The data comes in member chunks (generate_chunks): while the two connections write one
    chunk, the next is generated, so the process holds two or three chunks at most, whatever
    the member count (bench/README.md has the peak at 1M members).

    Purchases load on one connection while members, accounts and the ledger load on the
    other (2 cores, 2 PostgreSQL backends), each dropping its tables' secondary indexes once
    and rebuilding them after the last chunk. Each connection is one transaction; should
    either fail, everything loaded is removed again, so the database is never left
    half-seeded.
    """
    tick = progress or (lambda stage, done: None)
    timings: dict[str, float] = {}
    tables = {
        model: model._meta.db_table
        for model in (
            Member,
            Purchase,
            PointsAccount,
            LedgerEntry,
            ConsentRecord,
            TermsAcceptance,
            Refund,
        )
    }
    with connection.cursor() as cursor:
        member_base = _next_id(cursor, tables[Member])
        purchase_base = _next_id(cursor, tables[Purchase])
        account_base = _next_id(cursor, tables[PointsAccount])
        refund_base = _next_id(cursor, tables[Refund])
        ledger_base = _next_id(cursor, tables[LedgerEntry])
    status_codes = [MemberStatus.ACTIVE, MemberStatus.INVITED, MemberStatus.PENDING]
    terms_ids = np.array([version.pk for version in terms] + [-1], dtype=np.int64)
    written = {"purchases": 0, "members": 0, "ledger": 0}

    def load_purchases(cursor, data: DemoData, ids: _Ids) -> None:
        p = data.purchase
        total = len(p["owner"])
        purchase_ids, member_ids, refund_ids = ids.purchase, ids.member, ids.refund
        refunded = np.flatnonzero(p["refund_cents"] > 0)
        partner_ids = partner_for(p["channel"], partners).astype(np.int64)
        external = pgcopy.numbered_texts("D", data.first_purchase + np.arange(1, total + 1))
        store_names = [*STORES, ""]
        pieces = []
        for channel_code in range(len(CHANNELS)):
            for store_code in range(-1, len(STORES)):
                rows = np.flatnonzero((p["channel"] == channel_code) & (p["store"] == store_code))
                pieces += [
                    (channel_code, store_code, rows[begin : begin + BREAKDOWN_ROWS])
                    for begin in range(0, len(rows), BREAKDOWN_ROWS)
                ]

        def copy_piece(channel_code: int, store_code: int, rows, breakdowns) -> None:
            at = _since_2000(p["at"][rows])
            pgcopy.copy_binary(
                cursor,
                tables[Purchase],
                [
                    ("id", "bigint", purchase_ids[rows]),
                    ("partner_id", "bigint", partner_ids[rows]),
                    ("external_id", "text", external[rows]),
                    ("member_id", "bigint", member_ids[p["owner"][rows]]),
                    ("amount", "cents", p["cents"][rows]),
                    ("purchased_at", "timestamptz", at),
                    ("channel", "text", str(CHANNELS[channel_code])),
                    ("store", "text", store_names[store_code]),
                    ("points_earned", "integer", p["points"][rows]),
                    ("refunded_amount", "cents", p["refund_cents"][rows]),
                    ("points_reversed", "integer", p["reversed"][rows]),
                    # jsonb's binary form is a version byte (1) and the JSON text: the
                    # texts are one width (padded), so they go as fixed-width "text".
                    ("earning_breakdown", "text", breakdowns),
                    ("created_at", "timestamptz", at),
                ],
            )

        # The next pieces' breakdown texts are built while one is sent (numpy and the socket
        # both release the GIL): the client's share of the work overlaps the server's.
        with ThreadPoolExecutor(max_workers=1) as builder:
            upcoming = [
                builder.submit(data.breakdowns, rows, prefix=b"\x01")
                for _channel, _store, rows in pieces[:2]
            ]
            for index, piece in enumerate(pieces):
                breakdowns = upcoming[index].result()
                upcoming[index] = None  # sent below, then freed
                if index + 2 < len(pieces):
                    upcoming.append(
                        builder.submit(data.breakdowns, pieces[index + 2][2], prefix=b"\x01")
                    )
                copy_piece(*piece, breakdowns)
                del breakdowns
        pgcopy.copy_binary(
            cursor,
            tables[Refund],
            [
                ("id", "bigint", refund_ids[refunded]),
                ("purchase_id", "bigint", purchase_ids[refunded]),
                (
                    "external_id",
                    "text",
                    pgcopy.numbered_texts("R", data.first_purchase + refunded + 1),
                ),
                ("amount", "cents", p["refund_cents"][refunded]),
                ("points_reversed", "integer", p["reversed"][refunded]),
                ("points_not_recovered", "integer", np.zeros(len(refunded), dtype=np.int64)),
                ("created_by_id", "bigint", None),
                ("created_at", "timestamptz", _since_2000(p["refund_at"][refunded])),
            ],
        )
        written["purchases"] += total
        tick("purchases", written["purchases"])

    def load_members_and_ledger(cursor, data: DemoData, ids: _Ids) -> None:
        m, p, a, led = data.member, data.purchase, data.account, data.ledger
        count, entries = data.member_count, len(data.ledger["owner"])
        member_ids, account_ids, ledger_ids = ids.member, ids.account, ids.ledger
        status = np.select([m["status"] == code for code in status_codes], [0, 1, 2])
        in_force = terms_in_force(terms, m["enrolled_us"]) if terms else np.full(count, -1)
        holders = np.flatnonzero(a["has"])
        _temporary_table(
            cursor,
            "demo_member",
            [
                ("idx", "bigint", data.first_member + np.arange(count, dtype=np.int64)),
                ("number", "bigint", m["number"].astype(np.int64)),
                ("first", "smallint", m["first_name"]),
                ("last", "smallint", m["last_name"]),
                ("birth", "date", m["birth_days"]),
                ("lang", "smallint", (m["language"] == "en").astype(np.int64)),
                ("status", "smallint", status),
                ("enrolled", "timestamptz", _since_2000(m["enrolled_us"])),
                ("consent", "smallint", m["consent"].astype(np.int64)),
                ("terms", "bigint", terms_ids[in_force]),
            ],
        )
        first_names, last_names = _sql_array(FIRST_NAMES), _sql_array(LAST_NAMES)
        cursor.execute(f"""
            INSERT INTO {tables[Member]} (id, user_id, email, first_name, last_name,
                birth_date, language, member_number, status, enrolled_at,
                enrolment_source, created_at)
            SELECT {member_base} + idx, NULL,
                   lower({first_names}[first + 1]) || '.'
                     || replace(lower({last_names}[last + 1]), ' ', '') || '.'
                     || (idx + 1) || '@example.nl',
                   {first_names}[first + 1], {last_names}[last + 1], birth,
                   CASE lang WHEN 1 THEN 'en' ELSE 'nl' END, number::text,
                   (ARRAY['active', 'invited', 'pending'])[status + 1],
                   CASE WHEN status = 0 THEN enrolled END,
                   CASE WHEN status = 1 THEN 'invitation' ELSE 'portal' END, enrolled
            FROM demo_member""")
        cursor.execute(f"""
            INSERT INTO {tables[ConsentRecord]} (member_id, channel, granted, recorded_at,
                source, terms_version_id)
            SELECT {member_base} + idx, 'email', consent = 1, enrolled, 'enrolment:demo',
                   NULLIF(terms, -1)
            FROM demo_member WHERE status <> 1""")
        cursor.execute("DROP TABLE demo_member")
        if terms:
            accepted_by, accepted, accepted_at = terms_acceptances(
                terms,
                enrolled_us=m["enrolled_us"],
                accepting=status != 1,
                purchase_owner=p["owner"],
                purchase_at=p["at"],
            )
            pgcopy.copy_binary(
                cursor,
                tables[TermsAcceptance],
                [
                    ("member_id", "bigint", member_ids[accepted_by]),
                    ("terms_version_id", "bigint", terms_ids[accepted]),
                    ("accepted_at", "timestamptz", _since_2000(accepted_at)),
                ],
            )
        written["members"] += count
        tick("members", written["members"])

        tier_ids = np.array([tier.pk for tier in tiers] + [-1])[a["tier"][holders]]
        _temporary_table(
            cursor,
            "demo_account",
            [
                ("id", "bigint", account_ids[holders]),
                ("member", "bigint", member_ids[holders]),
                ("balance", "integer", a["balance"][holders]),
                ("tier", "bigint", tier_ids),
                (
                    "since",
                    "timestamptz",
                    _since_2000(
                        np.where(a["tier"][holders] >= 0, a["tier_since"][holders], data.now_us)
                    ),
                ),
            ],
        )
        cursor.execute(f"""
            INSERT INTO {tables[PointsAccount]} (id, member_id, balance, tier_id,
                tier_since, tier_kept_until, updated_at)
            SELECT id, member, balance, NULLIF(tier, -1),
                   CASE WHEN tier <> -1 THEN since END,
                   CASE WHEN tier NOT IN (-1, {int(tiers[0].pk)}) THEN since + interval '365 days' END,
                   now()
            FROM demo_account""")
        cursor.execute("DROP TABLE demo_account")

        purchase_index = led["purchase"]
        templates = reason_templates()
        for kind_code, kind in enumerate(KIND_CODES):
            rows = np.flatnonzero(led["kind"] == kind_code)
            if not len(rows):
                continue
            linked = purchase_index[rows]
            reason, key = templates[kind_code], REASON_KEY_BY_KIND[kind_code]
            names_purchase = bool(len(linked)) and bool((linked >= 0).all())
            if kind_code == 0 and not names_purchase:
                reason, key = MONTHLY_EARN_REASON, ""
            params_field: tuple = ("reason_params", "jsonb", None)
            if kind == EntryKind.REDEEM:
                texts, params = redemption_reasons(led["points"][rows])
                reason_field = ("reason", "text", texts)
                params_field = ("reason_params", "jsonb", params)
            elif "{id}" in reason:
                prefix, suffix = reason.split("{id}")
                reason_field = (
                    "reason",
                    "text",
                    pgcopy.numbered_texts(
                        prefix + "D", data.first_purchase + linked + 1, suffix=suffix
                    ),
                )
                # jsonb's binary form: version byte 1, then the text (all one width).
                params_field = (
                    "reason_params",
                    "text",
                    pgcopy.numbered_texts(
                        '\x01{"id":"D', data.first_purchase + linked + 1, suffix='"}'
                    ),
                )
            else:
                reason_field = ("reason", "text", reason)
            credit = kind_code in (0, 3, 4)
            pgcopy.copy_binary(
                cursor,
                tables[LedgerEntry],
                [
                    ("id", "bigint", ledger_ids[rows]),
                    ("account_id", "bigint", account_ids[led["owner"][rows]]),
                    ("kind", "text", str(kind)),
                    ("points", "integer", led["points"][rows]),
                    ("balance_after", "integer", led["balance_after"][rows]),
                    reason_field,
                    ("reason_key", "text", key),
                    params_field,
                    ("source", "text", str(SOURCE_BY_KIND[kind_code])),
                    ("purchase_id", "bigint", ids.purchase[linked])
                    if kind_code in (0, 5) and names_purchase
                    else ("purchase_id", "bigint", None),
                    ("refund_id", "bigint", ids.refund[linked])
                    if kind_code == 5
                    else ("refund_id", "bigint", None),
                    ("created_by_id", "bigint", None),
                    ("created_at", "timestamptz", _since_2000(led["at"][rows])),
                    ("expires_at", "timestamptz", _since_2000(led["expires"][rows]))
                    if credit
                    else ("expires_at", "timestamptz", None),
                    ("remaining_points", "integer", led["remaining"][rows]),
                    ("expired_points", "integer", led["expired"][rows]),
                ],
            )
        written["ledger"] += entries
        tick("ledger", written["ledger"])

    phases = [
        ("purchases", [tables[Purchase], tables[Refund]], load_purchases),
        (
            "members and ledger",
            [
                tables[Member],
                tables[ConsentRecord],
                tables[TermsAcceptance],
                tables[PointsAccount],
                tables[LedgerEntry],
            ],
            load_members_and_ledger,
        ),
    ]

    def run(name: str, phase_tables: list[str], load: Callable, inbox: queue.Queue) -> None:
        began = time.perf_counter()
        try:
            with transaction.atomic(), connection.cursor() as django_cursor:
                cursor = django_cursor.cursor  # psycopg's own cursor: copy()
                # The generator guarantees the foreign keys; checking 20M rows one by one
                # would dominate the load, so triggers (FK checks) are off for this load.
                cursor.execute("SET LOCAL session_replication_role = replica")
                cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
                with _without_secondary_indexes(cursor, phase_tables):
                    while (chunk := inbox.get()) is not None:
                        load(cursor, *chunk)
                        del chunk  # freed before the next one arrives
                    timings[f"{name}: copy"] = round(time.perf_counter() - began, 2)
                for table in phase_tables:
                    cursor.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"coalesce((SELECT max(id) FROM {table}), 1))"
                    )
            timings[f"{name}: total"] = round(time.perf_counter() - began, 2)
        except BaseException:
            while inbox.get() is not None:  # never leave the generator blocked on a put
                pass
            raise
        finally:
            connection.close()  # this thread's own connection

    # One chunk waits in each connection's inbox while the connections write the one before
    # and the next is generated: at most three chunks in memory.
    inboxes: list[queue.Queue] = [queue.Queue(maxsize=1) for _ in phases]
    with ThreadPoolExecutor(max_workers=len(phases)) as pool:
        futures = [
            pool.submit(run, *phase, inbox) for phase, inbox in zip(phases, inboxes, strict=True)
        ]
        next_refund, next_account, next_entry = refund_base, account_base, ledger_base
        try:
            for data in chunks:
                if any(future.done() for future in futures):
                    break  # a connection failed: stop generating
                ids = _chunk_ids(
                    data,
                    member=member_base + data.first_member,
                    purchase=purchase_base + data.first_purchase,
                    refund=next_refund,
                    account=next_account,
                    ledger=next_entry,
                )
                next_refund += int((data.purchase["refund_cents"] > 0).sum())
                next_account += int(data.account["has"].sum())
                next_entry += len(data.ledger["owner"])
                for inbox in inboxes:
                    inbox.put((data, ids))
                del data, ids
        finally:
            for inbox in inboxes:
                inbox.put(None)
        errors = [future.exception() for future in futures]
    if any(errors):
        flush()  # a phase may have committed: remove it, never leave half a seed
        raise next(error for error in errors if error)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for table in tables.values():
            cursor.execute(f"ANALYZE {table}")
    timings["analyze"] = round(time.perf_counter() - started, 2)
    return timings


def _chunk_ids(
    data: DemoData, *, member: int, purchase: int, refund: int, account: int, ledger: int
) -> _Ids:
    """The ids of a chunk's rows, numbered on from the first id of each kind given."""
    p = data.purchase
    total = len(p["owner"])
    refunded = np.flatnonzero(p["refund_cents"] > 0)
    refund_ids = np.full(total, -1, dtype=np.int64)
    refund_ids[refunded] = refund + np.arange(len(refunded))
    holders = np.flatnonzero(data.account["has"])
    account_ids = np.zeros(data.member_count, dtype=np.int64)
    account_ids[holders] = account + np.arange(len(holders))
    return _Ids(
        member=member + np.arange(data.member_count, dtype=np.int64),
        purchase=purchase + np.arange(total, dtype=np.int64),
        refund=refund_ids,
        account=account_ids,
        ledger=ledger + np.arange(len(data.ledger["owner"]), dtype=np.int64),
    )
