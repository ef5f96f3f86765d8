"""Realistic demo data: a Dutch retail program whose members behave like real customers.

One generator (numpy, seeded) produces members with different purchase behaviour (frequent
and loyal, big spenders, low-spend regulars, one-time buyers, new, at risk, lapsed ...),
their purchases, refunds, redemptions, expiry and the points ledger. Two writers store it:
Django's bulk_create for the embedded demo, and PostgreSQL binary COPY (through unlogged
staging tables) for benchmark volumes such as 1M members and 10M purchases.

The generator reproduces what the services would have written instead of calling them per
purchase (which would take hours at benchmark volume):
* points per line = amount x points per euro x the best matching earning rule x the tier
  multiplier, the tier being the one the rolling 12-month spend before the purchase reaches;
* a refund reverses floor(points x refunded / amount) from the purchase's own lot;
* redemptions consume lots oldest first; lots expire 730 days after they were earned and
  what remains of expired lots is expired in one entry per member, as the nightly run does;
* the account's tier is the highest tier reached in the last 12 months (the grace period).
So every balance equals its ledger sum and its open lots, and never goes negative.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from members.models import (
    ConsentRecord,
    EnrolmentSource,
    Member,
    MemberStatus,
    TermsAcceptance,
    TermsVersion,
)

from . import pgcopy
from .models import (
    Channel,
    EarningRule,
    EntryKind,
    EntrySource,
    LedgerEntry,
    Partner,
    PartnerKind,
    PointsAccount,
    ProgramSettings,
    Purchase,
    PurchaseLine,
    Refund,
    Tier,
    TierBasis,
)

DAY_US = 86_400 * 1_000_000
YEAR_US = 365 * DAY_US
EXPIRY_US = 730 * DAY_US
PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

FIRST_NAMES = [
    "Emma",
    "Noah",
    "Julia",
    "Daan",
    "Mila",
    "Sem",
    "Tess",
    "Lucas",
    "Sophie",
    "Levi",
    "Zoe",
    "Finn",
    "Sara",
    "Jesse",
    "Anna",
    "Milan",
    "Evi",
    "Luuk",
    "Lotte",
    "Bram",
    "Fleur",
    "Thijs",
    "Noor",
    "Ruben",
    "Lisa",
    "Jan",
    "Eva",
    "Kees",
    "Sanne",
    "Pieter",
    "Mohamed",
    "Fatima",
    "Yusuf",
    "Amira",
    "Joost",
]
LAST_NAMES = [
    "de Jong",
    "Jansen",
    "de Vries",
    "van den Berg",
    "van Dijk",
    "Bakker",
    "Janssen",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "de Groot",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "van Leeuwen",
    "Dekker",
    "Brouwer",
    "de Wit",
    "Dijkstra",
    "Smits",
    "de Graaf",
    "van der Meer",
    "Kok",
    "Jacobs",
    "Yilmaz",
    "El Amrani",
    "Willems",
]
STORES = [
    "Amsterdam Kalverstraat",
    "Utrecht Hoog Catharijne",
    "Rotterdam Lijnbaan",
    "Den Haag Spuistraat",
    "Eindhoven Demer",
    "Groningen Herestraat",
]
CATEGORIES = ["kleding", "schoenen", "accessoires", "duurzaam", "wonen", "sport"]
CHANNELS = [Channel.STORE, Channel.WEBSHOP, Channel.APP]
REWARD_COSTS = np.array([250, 500, 750, 1000])

TIERS = [
    ("Bronze", 1, Decimal("0"), Decimal("1.00"), "#b0773f"),
    ("Silver", 2, Decimal("500"), Decimal("1.25"), "#8c96a0"),
    ("Gold", 3, Decimal("1500"), Decimal("1.50"), "#d4a017"),
]

# name, share, purchases per year, mean amount (EUR), active from (days ago, range),
# active until (days ago, range); "until" 0 means still buying.
PROFILES = [
    ("champion", 0.08, 26.0, 55.0, (700, 1100), (0, 10)),
    ("loyal", 0.11, 12.0, 45.0, (500, 1100), (0, 40)),
    ("big_spender", 0.06, 3.5, 260.0, (300, 1000), (0, 60)),
    ("barnacle", 0.06, 22.0, 9.0, (500, 1100), (0, 20)),
    ("promising", 0.08, 6.0, 40.0, (60, 150), (0, 30)),
    ("new", 0.06, 1.0, 45.0, (1, 30), (0, 0)),
    ("one_time", 0.13, 0.0, 40.0, (30, 1095), (0, 0)),
    ("occasional", 0.13, 4.0, 35.0, (400, 1100), (40, 120)),
    ("at_risk", 0.08, 18.0, 70.0, (500, 1100), (150, 320)),
    ("hibernating", 0.09, 3.0, 30.0, (700, 1100), (250, 500)),
    ("lost", 0.08, 2.0, 25.0, (900, 1095), (500, 900)),
    ("no_purchases", 0.04, 0.0, 0.0, (1, 700), (0, 0)),
]


@dataclass
class DemoSpec:
    seed: int = 42
    members: int = 3000
    purchases: int | None = None  # default: about 10 per member
    now: dt.datetime | None = None
    lines: bool = True  # purchase lines with categories (off at benchmark volume)
    monthly_lots: bool = False  # one earn entry per member per 30 days (benchmark volume)


@dataclass
class DemoData:
    now_us: int
    member_count: int
    member: dict[str, np.ndarray]
    purchase: dict[str, np.ndarray]
    lines: dict[str, np.ndarray]
    ledger: dict[str, np.ndarray]
    account: dict[str, np.ndarray]
    timings: dict[str, float] = field(default_factory=dict)


def _to_us(value: dt.datetime) -> int:
    return int(value.timestamp() * 1_000_000)


def _from_us(value: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(value / 1_000_000, tz=dt.UTC)


def member_numbers(count: int, seed: int) -> np.ndarray:
    """Distinct 12-digit numbers with a Luhn check digit, deterministic for the seed."""
    modulus = 9 * 10**10
    multiplier = 7_919_000_003  # odd and not a multiple of 3 or 5: coprime to the modulus
    offset = (seed * 2_654_435_761) % modulus
    bodies = (np.arange(count, dtype=np.int64) * multiplier + offset) % modulus + 10**10
    return bodies * 10 + _luhn_digits(bodies, 11)


def _luhn_digits(bodies: np.ndarray, length: int) -> np.ndarray:
    """members.numbers.luhn_check_digit for many numbers at once."""
    total = np.zeros(len(bodies), dtype=np.int64)
    remaining = bodies.copy()
    for position in range(length):  # from the right; the rightmost digit is doubled
        digit = remaining % 10
        remaining //= 10
        if position % 2 == 0:
            digit = digit * 2
            digit = np.where(digit > 9, digit - 9, digit)
        total += digit
    return (10 - total % 10) % 10


# --- generation ----------------------------------------------------------------------------


def generate_in_stages(
    spec: DemoSpec,
    *,
    program: ProgramSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[DemoData, Callable[[], DemoData]]:
    started = time.perf_counter()
    rng = np.random.default_rng(spec.seed)
    now = spec.now or timezone.now().replace(microsecond=0)
    now_us = _to_us(now)
    count = spec.members
    target = spec.purchases if spec.purchases is not None else count * 10
    points_per_euro = float(program.points_per_euro if program else Decimal("1"))

    # Members and their behaviour.
    shares = np.array([profile[1] for profile in PROFILES])
    profile = rng.choice(len(PROFILES), size=count, p=shares / shares.sum())
    rate = np.array([p[2] for p in PROFILES])[profile]
    mean_amount = np.array([p[3] for p in PROFILES])[profile]
    start_low, start_high = (np.array([p[4][i] for p in PROFILES])[profile] for i in (0, 1))
    end_low, end_high = (np.array([p[5][i] for p in PROFILES])[profile] for i in (0, 1))
    start_days = rng.uniform(start_low, start_high + 1)
    end_days = np.minimum(rng.uniform(end_low, end_high + 1), start_days)
    start_us = now_us - (start_days * DAY_US).astype(np.int64)
    end_us = now_us - (end_days * DAY_US).astype(np.int64)
    years = (end_us - start_us) / YEAR_US
    name = [p[0] for p in PROFILES]
    buys = profile != name.index("no_purchases")

    expected = rate * years
    expected[profile == name.index("one_time")] = 1
    expected[profile == name.index("new")] = 1
    scale = max(target - buys.sum(), 0) / max(float(np.maximum(expected[buys] - 1, 0).sum()), 1.0)
    counts = np.where(buys, 1 + rng.poisson(np.maximum(expected - 1, 0) * scale), 0)
    single = np.isin(profile, [name.index("one_time"), name.index("new")])
    counts[single] = 1

    status = np.full(count, MemberStatus.ACTIVE, dtype=object)
    special = rng.random(count)
    status[(~buys) & (special < 0.25)] = MemberStatus.INVITED
    status[(~buys) & (special >= 0.25) & (special < 0.5)] = MemberStatus.PENDING
    enrolled_us = np.minimum(start_us, now_us) - (rng.uniform(0, 3, count) * DAY_US).astype(
        np.int64
    )
    birth_year = rng.integers(1950, 2006, count)
    member = {
        "number": member_numbers(count, spec.seed),
        "first_name": rng.integers(0, len(FIRST_NAMES), count),
        "last_name": rng.integers(0, len(LAST_NAMES), count),
        # Days since 2000-01-01 (PostgreSQL's date epoch); 1950 to 2005.
        "birth_days": ((birth_year - 2000) * 365.25 + rng.integers(0, 365, count)).astype(np.int64),
        "language": np.where(rng.random(count) < 0.8, "nl", "en"),
        "status": status,
        "enrolled_us": enrolled_us,
        "consent": rng.random(count) < 0.72,
        "profile": profile,
    }

    # Purchases, sorted by member then time.
    total = int(counts.sum())
    owner = np.repeat(np.arange(count), counts)
    span = (end_us - start_us)[owner]
    at = start_us[owner] + (rng.random(total) * span).astype(np.int64)
    # owner is already grouped (np.repeat); sort by time within it with one int64 key.
    order = np.argsort(_owner_time_key(owner, at, int(at.min()) if total else 0), kind="stable")
    owner, at = owner[order], at[order]
    amount = rng.lognormal(np.log(mean_amount[owner]) - 0.125, 0.5)
    cents = np.maximum(np.round(amount * 100), 195).astype(np.int64)
    channel = rng.choice(3, size=total, p=[0.64, 0.31, 0.05])
    store = np.where(channel == 0, rng.integers(0, len(STORES), total), -1)
    if progress:
        progress("purchases")

    # Lines: 1-3 per purchase with categories; amounts split so they add up exactly.
    if spec.lines:
        per = rng.integers(1, 4, total)
        line_owner = np.repeat(np.arange(total), per)
        weights = rng.random(len(line_owner)) + 0.2
        sums = np.bincount(line_owner, weights=weights)
        line_cents = np.floor(weights / sums[line_owner] * cents[line_owner]).astype(np.int64)
        first_of = np.r_[0, np.cumsum(per)[:-1]]
        line_cents[first_of] += cents - np.bincount(
            line_owner, weights=line_cents, minlength=total
        ).astype(np.int64)
        line_category = rng.integers(0, len(CATEGORIES), len(line_owner))
    else:
        line_owner = np.arange(total)
        line_cents = cents.copy()
        line_category = np.full(total, -1)

    # Earning: the best rule per line (category "duurzaam" x2 beats web shop x1.5 in its
    # window), then the tier that the rolling 12-month spend before the purchase reaches.
    webshop_from, webshop_until = now_us - 90 * DAY_US, now_us + 30 * DAY_US
    line_at = at[line_owner]
    rule = np.ones(len(line_owner))
    webshop = (channel[line_owner] == 1) & (line_at >= webshop_from) & (line_at < webshop_until)
    rule[webshop] = 1.5
    rule[line_category == CATEGORIES.index("duurzaam")] = 2.0

    cumulative = np.cumsum(cents)
    origin = int(at.min()) - YEAR_US - 1_000_000 if total else 0
    keys = _owner_time_key(owner, at, origin)
    window_start = np.searchsorted(keys, _owner_time_key(owner, at - YEAR_US, origin), side="right")
    # Spend of the same member in the 12 months before each purchase (the window never
    # reaches into another member's purchases: the key sorts by member first).
    window_before = (cumulative - cents) - np.where(
        window_start > 0, cumulative[window_start - 1], 0
    )
    thresholds = np.array([int(t[2] * 100) for t in TIERS])
    multipliers = np.array([float(t[3]) for t in TIERS])
    tier_before = np.searchsorted(thresholds, window_before, side="right") - 1
    tier_multiplier = multipliers[np.maximum(tier_before, 0)]
    line_points = line_cents / 100 * points_per_euro * rule * tier_multiplier[line_owner]
    points = np.floor(np.bincount(line_owner, weights=line_points, minlength=total) + 1e-9)
    points = points.astype(np.int64)

    # Refunds: 1.5% of purchases, half of them in full, a few days after the purchase.
    refunded = rng.random(total) < 0.015
    full = rng.random(total) < 0.5
    refund_cents = np.where(refunded, np.where(full, cents, cents // 2), 0)
    refund_cents[refunded & ~full & (refund_cents == 0)] = 0
    refunded &= refund_cents > 0
    refund_at = np.minimum(
        at + (rng.uniform(1, 10, total) * DAY_US).astype(np.int64), now_us - DAY_US
    )
    refund_at = np.maximum(refund_at, at + 1)
    reversed_points = np.where(refunded, (points * refund_cents) // np.maximum(cents, 1), 0)

    # Account tiers: the highest tier reached after any purchase in the last 12 months.
    after = window_before + cents
    tier_after = np.searchsorted(thresholds, after, side="right") - 1
    recent = at > now_us - YEAR_US
    account_tier = np.full(count, -1)
    np.maximum.at(account_tier, owner[recent], tier_after[recent])
    tier_since = np.zeros(count, dtype=np.int64)
    reached = recent & (tier_after == account_tier[owner])
    np.maximum.at(tier_since, owner[reached], at[reached])

    purchase = {
        "owner": owner,
        "at": at,
        "cents": cents,
        "channel": channel,
        "store": store,
        "points": points,
        "refund_cents": refund_cents,
        "refund_at": refund_at,
        "reversed": reversed_points,
        "tier_before": tier_before,
    }
    lines = {"owner": line_owner, "cents": line_cents, "category": line_category, "rule": rule}
    if progress:
        progress("earning")

    data = DemoData(
        now_us=now_us,
        member_count=count,
        member=member,
        purchase=purchase,
        lines=lines,
        ledger={},
        account={},
    )
    data.timings["generate: purchases"] = round(time.perf_counter() - started, 2)

    def finish() -> DemoData:
        """The ledger and the accounts (a separate stage so loading can start earlier)."""
        began = time.perf_counter()
        ledger = _ledger(
            rng,
            count=count,
            now_us=now_us,
            purchase=purchase,
            status=status,
            with_adjustments=spec.lines,
            monthly_lots=spec.monthly_lots,
        )
        balance = np.bincount(ledger["owner"], weights=ledger["points"], minlength=count)
        data.ledger = ledger
        data.account = {
            "balance": balance.astype(np.int64),
            "tier": account_tier,
            "tier_since": tier_since,
            "has": np.bincount(ledger["owner"], minlength=count) > 0,
        }
        data.timings["generate: ledger"] = round(time.perf_counter() - began, 2)
        return data

    return data, finish


def generate(
    spec: DemoSpec,
    *,
    program: ProgramSettings | None = None,
) -> DemoData:
    """All demo data: purchases first, then the ledger and accounts that follow from them."""
    _data, finish = generate_in_stages(spec, program=program)
    return finish()


def _owner_time_key(owner: np.ndarray, at: np.ndarray, origin: int) -> np.ndarray:
    """An int64 key sorting by member, then time in seconds since `origin` (2^28 s > 8 y)."""
    seconds = np.clip((at - origin) // 1_000_000, 0, 2**28 - 1)
    return owner.astype(np.int64) * 2**28 + seconds


def _ledger(
    rng,
    *,
    count: int,
    now_us: int,
    purchase: dict,
    status: np.ndarray,
    with_adjustments: bool,
    monthly_lots: bool = False,
) -> dict[str, np.ndarray]:
    """Earn, reversal, redemption, adjustment and expiry entries with consistent lots."""
    owner, at, points = purchase["owner"], purchase["at"], purchase["points"]
    earning = points > 0
    earn_index = np.flatnonzero(earning)
    lot_owner = owner[earning]
    lot_at = at[earning]
    lot_points = points[earning]
    lot_remaining = lot_points.copy()
    lot_expires = lot_at + EXPIRY_US
    lot_kind = np.full(len(lot_points), 0)  # 0 earn, 3 adjust

    # Reversals come from the refunded purchase's own lot (refunds follow within days).
    reversal = purchase["reversed"][earning]
    lot_remaining -= reversal
    entries_owner = [lot_owner]
    entries_at = [lot_at]
    entries_points = [lot_points]
    entries_kind = [np.full(len(lot_points), 0)]
    entries_purchase = [earn_index]
    entries_expires = [lot_expires]
    entries_remaining: list[np.ndarray] = []  # filled after redemptions and expiry
    has_reversal = reversal > 0
    entries_owner.append(lot_owner[has_reversal])
    entries_at.append(purchase["refund_at"][earning][has_reversal])
    entries_points.append(-reversal[has_reversal])
    entries_kind.append(np.full(int(has_reversal.sum()), 5))
    entries_purchase.append(earn_index[has_reversal])
    entries_expires.append(np.full(int(has_reversal.sum()), -1))

    if monthly_lots:
        # Benchmark volume: one earn entry (one lot) per member per 30 days of purchases,
        # dated at the first of them; the reversals above still name their purchase.
        bucket = (lot_at - (int(lot_at.min()) if len(lot_at) else 0)) // (30 * DAY_US)
        key = lot_owner * 4096 + bucket
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else key
        lot_points = np.add.reduceat(lot_points, starts) if len(key) else lot_points
        lot_remaining = np.add.reduceat(lot_remaining, starts) if len(key) else lot_remaining
        lot_owner, lot_at = lot_owner[starts], lot_at[starts]
        lot_expires = lot_at + EXPIRY_US
        lot_kind = np.full(len(lot_points), 0)
        entries_owner[0], entries_at[0], entries_points[0] = lot_owner, lot_at, lot_points
        entries_kind[0] = np.full(len(lot_points), 0)
        entries_purchase[0] = np.full(len(lot_points), -1)
        entries_expires[0] = lot_expires

    # Staff adjustments: a goodwill credit for about 1% of members (embedded demo only).
    if with_adjustments:
        lucky = np.flatnonzero((rng.random(count) < 0.01) & (status == MemberStatus.ACTIVE))
        adjust_at = now_us - (rng.uniform(1, 300, len(lucky)) * DAY_US).astype(np.int64)
        lot_owner = np.r_[lot_owner, lucky]
        lot_at = np.r_[lot_at, adjust_at]
        lot_points = np.r_[lot_points, np.full(len(lucky), 50)]
        lot_remaining = np.r_[lot_remaining, np.full(len(lucky), 50)]
        lot_expires = np.r_[lot_expires, adjust_at + EXPIRY_US]
        lot_kind = np.r_[lot_kind, np.full(len(lucky), 3)]
        entries_owner.append(lucky)
        entries_at.append(adjust_at)
        entries_points.append(np.full(len(lucky), 50))
        entries_kind.append(np.full(len(lucky), 3))
        entries_purchase.append(np.full(len(lucky), -1))
        entries_expires.append(adjust_at + EXPIRY_US)

    # Redemptions: about a third of the members with points redeem a reward now and then;
    # lots are consumed oldest first, skipping lots already expired at that moment.
    order = np.argsort(
        _owner_time_key(lot_owner, lot_at, int(lot_at.min()) if len(lot_at) else 0),
        kind="stable",
    )
    lot_owner, lot_at, lot_points = lot_owner[order], lot_at[order], lot_points[order]
    lot_remaining, lot_expires, lot_kind = lot_remaining[order], lot_expires[order], lot_kind[order]
    bounds = np.searchsorted(lot_owner, np.arange(count + 1))
    has_lots = np.diff(bounds) > 0
    first_lot = np.where(has_lots, lot_at[np.minimum(bounds[:-1], max(len(lot_at) - 1, 0))], 0)
    group_start = bounds[:-1][lot_owner]
    red_owner_parts, red_at_parts, red_points_parts = [], [], []
    for _round in range(2):  # each member redeems up to twice; each round is vectorised
        redeemer = has_lots & (rng.random(count) < 0.3)
        last = now_us - DAY_US
        moment = first_lot + (rng.random(count) * np.maximum(last - first_lot, 0)).astype(np.int64)
        at_moment = moment[lot_owner]
        usable = redeemer[lot_owner] & (lot_at <= at_moment) & (at_moment < lot_expires)
        usable_points = np.where(usable, lot_remaining, 0)
        available = np.bincount(lot_owner, weights=usable_points, minlength=count).astype(np.int64)
        affordable = np.searchsorted(REWARD_COSTS, available, side="right")
        pick = (rng.random(count) * affordable).astype(np.int64)
        cost = np.where(affordable > 0, REWARD_COSTS[np.minimum(pick, len(REWARD_COSTS) - 1)], 0)
        # Oldest lots first: the member's earlier usable lots cover the cost before this one.
        running = np.cumsum(usable_points)
        before = (
            running
            - usable_points
            - np.where(group_start > 0, running[np.maximum(group_start - 1, 0)], 0)
        )
        take = np.clip(cost[lot_owner] - before, 0, usable_points)
        lot_remaining -= take
        paying = np.flatnonzero(cost > 0)
        red_owner_parts.append(paying)
        red_at_parts.append(moment[paying])
        red_points_parts.append(-cost[paying])
    red_owner = np.concatenate(red_owner_parts)
    red_at = np.concatenate(red_at_parts)
    red_points = np.concatenate(red_points_parts)
    entries_owner.append(red_owner)
    entries_at.append(red_at)
    entries_points.append(red_points)
    entries_kind.append(np.full(len(red_owner), 1))
    entries_purchase.append(np.full(len(red_owner), -1))
    entries_expires.append(np.full(len(red_owner), -1))

    # Expiry: what remains of lots expired by now, in one entry per member (the nightly run).
    expired = lot_expires <= now_us
    expired_points = np.bincount(
        lot_owner[expired], weights=lot_remaining[expired], minlength=count
    ).astype(np.int64)
    lot_expired = np.where(expired, lot_remaining, 0)
    lot_remaining[expired] = 0
    expiring = np.flatnonzero(expired_points > 0)
    entries_owner.append(expiring)
    entries_at.append(np.full(len(expiring), now_us - 3600 * 1_000_000))
    entries_points.append(-expired_points[expiring])
    entries_kind.append(np.full(len(expiring), 2))
    entries_purchase.append(np.full(len(expiring), -1))
    entries_expires.append(np.full(len(expiring), -1))

    # Remaining per credit entry: map the (sorted) lots back to the earn/adjust entries.
    earn_count = len(entries_points[0])

    def per_entry(by_sorted_lot: np.ndarray) -> list[np.ndarray]:
        by_lot = np.empty_like(by_sorted_lot)
        by_lot[order] = by_sorted_lot
        parts = [by_lot[:earn_count], np.zeros(int(has_reversal.sum()), dtype=np.int64)]
        if with_adjustments:
            parts.append(by_lot[earn_count:])
        return parts + [
            np.zeros(len(red_owner), dtype=np.int64),
            np.zeros(len(expiring), dtype=np.int64),
        ]

    entries_remaining = per_entry(lot_remaining)
    entries_expired = per_entry(lot_expired)

    ledger = {
        "owner": np.concatenate(entries_owner).astype(np.int64),
        "at": np.concatenate(entries_at).astype(np.int64),
        "points": np.concatenate(entries_points).astype(np.int64),
        "kind": np.concatenate(entries_kind).astype(np.int64),
        "purchase": np.concatenate(entries_purchase).astype(np.int64),
        "expires": np.concatenate(entries_expires).astype(np.int64),
        "remaining": np.concatenate(entries_remaining).astype(np.int64),
        "expired": np.concatenate(entries_expired).astype(np.int64),
    }
    origin = int(ledger["at"].min()) if len(ledger["at"]) else 0
    order = np.argsort(
        _owner_time_key(ledger["owner"], ledger["at"], origin) * 8 + ledger["kind"],
        kind="stable",
    )
    ledger = {key: value[order] for key, value in ledger.items()}
    cumulative = np.cumsum(ledger["points"])
    starts = np.searchsorted(ledger["owner"], ledger["owner"], side="left")
    ledger["balance_after"] = cumulative - np.where(starts > 0, cumulative[starts - 1], 0)
    return ledger


KIND_CODES = [
    EntryKind.EARN,
    EntryKind.REDEEM,
    EntryKind.EXPIRE,
    EntryKind.ADJUST,
    EntryKind.BONUS,
    EntryKind.REVERSAL,
]
SOURCE_BY_KIND = [
    EntrySource.PURCHASE,
    EntrySource.REDEMPTION,
    EntrySource.SYSTEM,
    EntrySource.STAFF,
    EntrySource.SYSTEM,
    EntrySource.REFUND,
]
MONTHLY_EARN_REASON = "Aankopen van de maand"
REASON_BY_KIND = [
    "Aankoop {id}",
    "Beloning ingewisseld",
    "Punten verlopen",
    "Goodwill (klantenservice)",
    "Bonus",
    "Retour van aankoop {id}",
]


# --- the program around the data ----------------------------------------------------------


def program_setup(now: dt.datetime) -> tuple[ProgramSettings, list[Partner], list[Tier]]:
    """Program settings, terms, partners, tiers and earning rules of the demo program."""
    program = ProgramSettings.load()
    program.name = "Klantenclub Demo"
    program.points_name = "punten"
    program.points_per_euro = Decimal("1.00")
    program.point_value_eur = Decimal("0.0100")
    program.points_expiry_months = 24
    program.tier_basis = TierBasis.SPEND
    program.minimum_age = 16
    program.excluded_domains = "klantenclub-demo.nl"
    program.target_active_members = 1000
    program.target_purchases_per_member = Decimal("8.00")
    program.target_spend_per_member = Decimal("350.00")
    program.target_redemption_rate = Decimal("25.00")
    program.save()
    TermsVersion.objects.get_or_create(
        version="2026.1",
        defaults={
            "published_at": now - dt.timedelta(days=1200),
            "body_nl": "Algemene voorwaarden van Klantenclub Demo.\n\nJe spaart punten bij elke "
            "aankoop. Punten vervallen 24 maanden nadat je ze hebt gespaard.",
            "body_en": "Terms and conditions of Klantenclub Demo.\n\nYou collect points with every "
            "purchase. Points expire 24 months after you earned them.",
        },
    )
    partners = [
        Partner.objects.get_or_create(name=name, defaults={"kind": kind, "contact_email": email})[0]
        for name, kind, email in [
            ("Winkels (kassa)", PartnerKind.POS, "kassa@klantenclub-demo.nl"),
            ("Webshop", PartnerKind.WEBSHOP, "webshop@klantenclub-demo.nl"),
            ("App", PartnerKind.WEBSHOP, "app@klantenclub-demo.nl"),
            ("Cadeaukaarten BV", PartnerKind.REWARD_SUPPLIER, "info@cadeaukaarten.example"),
            ("CRM", PartnerKind.CRM, "crm@klantenclub-demo.nl"),
        ]
    ]
    tiers = [
        Tier.objects.update_or_create(
            name=name,
            defaults={
                "rank": rank,
                "threshold": threshold,
                "multiplier": multiplier,
                "color": color,
            },
        )[0]
        for name, rank, threshold, multiplier, color in TIERS
    ]
    EarningRule.objects.get_or_create(
        name="Dubbele punten op duurzaam",
        defaults={"multiplier": Decimal("2.00"), "product_category": "duurzaam", "priority": 10},
    )
    EarningRule.objects.get_or_create(
        name="Webshop actie",
        defaults={
            "multiplier": Decimal("1.50"),
            "channel": Channel.WEBSHOP,
            "priority": 5,
            "valid_from": now - dt.timedelta(days=90),
            "valid_until": now + dt.timedelta(days=30),
        },
    )
    return program, partners, tiers


def _partner_for(channel: np.ndarray, partners: list[Partner]) -> np.ndarray:
    return np.array([partners[0].pk, partners[1].pk, partners[2].pk])[channel]


def flush() -> None:
    """Remove members and everything that hangs off them (the demo's own tables)."""
    with transaction.atomic():
        LedgerEntry.objects.all().delete()
        Refund.objects.all().delete()
        PurchaseLine.objects.all().delete()
        Purchase.objects.all().delete()
        PointsAccount.objects.all().delete()
        ConsentRecord.objects.all().delete()
        TermsAcceptance.objects.all().delete()
        Member.objects.all().delete()


# --- writer 1: Django bulk_create (any database) -------------------------------------------


def write_orm(
    data: DemoData,
    *,
    partners: list[Partner],
    tiers: list[Tier],
    terms: TermsVersion | None,
    batch: int = 5000,
    progress: Callable[[str, int], None] | None = None,
) -> None:
    tick = progress or (lambda stage, done: None)
    m, p = data.member, data.purchase
    with transaction.atomic():
        members = Member.objects.bulk_create(
            [
                Member(
                    member_number=str(m["number"][i]),
                    email=_email(m, i),
                    first_name=FIRST_NAMES[m["first_name"][i]],
                    last_name=LAST_NAMES[m["last_name"][i]],
                    birth_date=PG_EPOCH.date() + dt.timedelta(days=int(m["birth_days"][i])),
                    language=m["language"][i],
                    status=m["status"][i],
                    enrolled_at=(
                        _from_us(int(m["enrolled_us"][i]))
                        if m["status"][i] == MemberStatus.ACTIVE
                        else None
                    ),
                    enrolment_source=EnrolmentSource.INVITATION
                    if m["status"][i] == MemberStatus.INVITED
                    else EnrolmentSource.PORTAL,
                    created_at=_from_us(int(m["enrolled_us"][i])),
                )
                for i in range(data.member_count)
            ],
            batch_size=batch,
        )
        member_pk = np.array([member.pk for member in members])
        tick("members", data.member_count)
        ConsentRecord.objects.bulk_create(
            [
                ConsentRecord(
                    member_id=member_pk[i],
                    channel="email",
                    granted=bool(m["consent"][i]),
                    source="enrolment:demo",
                    terms_version=terms,
                    recorded_at=_from_us(int(m["enrolled_us"][i])),
                )
                for i in range(data.member_count)
                if m["status"][i] != MemberStatus.INVITED
            ],
            batch_size=batch,
        )
        if terms is not None:
            TermsAcceptance.objects.bulk_create(
                [
                    TermsAcceptance(
                        member_id=member_pk[i],
                        terms_version=terms,
                        accepted_at=_from_us(int(m["enrolled_us"][i])),
                    )
                    for i in range(data.member_count)
                    if m["status"][i] != MemberStatus.INVITED
                ],
                batch_size=batch,
            )
        partner_pk = _partner_for(p["channel"], partners)
        purchases = Purchase.objects.bulk_create(
            [
                Purchase(
                    partner_id=partner_pk[i],
                    external_id=f"D{i + 1:09d}",
                    member_id=member_pk[p["owner"][i]],
                    amount=_euros(p["cents"][i]),
                    purchased_at=_from_us(int(p["at"][i])),
                    channel=CHANNELS[p["channel"][i]],
                    store=STORES[p["store"][i]] if p["store"][i] >= 0 else "",
                    points_earned=int(p["points"][i]),
                    refunded_amount=_euros(p["refund_cents"][i]),
                    points_reversed=int(p["reversed"][i]),
                    created_at=_from_us(int(p["at"][i])),
                )
                for i in range(len(p["owner"]))
            ],
            batch_size=batch,
        )
        purchase_pk = np.array([purchase.pk for purchase in purchases])
        tick("purchases", len(purchases))
        lines = data.lines
        PurchaseLine.objects.bulk_create(
            [
                PurchaseLine(
                    purchase_id=purchase_pk[lines["owner"][i]],
                    category=CATEGORIES[lines["category"][i]] if lines["category"][i] >= 0 else "",
                    amount=_euros(lines["cents"][i]),
                )
                for i in range(len(lines["owner"]))
            ],
            batch_size=batch,
        )
        refunded = np.flatnonzero(p["refund_cents"] > 0)
        refunds = Refund.objects.bulk_create(
            [
                Refund(
                    purchase_id=purchase_pk[i],
                    external_id=f"R{i + 1:09d}",
                    amount=_euros(p["refund_cents"][i]),
                    points_reversed=int(p["reversed"][i]),
                    created_at=_from_us(int(p["refund_at"][i])),
                )
                for i in refunded
            ],
            batch_size=batch,
        )
        refund_pk = dict(zip(refunded.tolist(), [refund.pk for refund in refunds], strict=True))
        a = data.account
        tier_pk = [tier.pk for tier in tiers]
        grace = dt.timedelta(days=365)
        accounts = PointsAccount.objects.bulk_create(
            [
                PointsAccount(
                    member_id=member_pk[i],
                    balance=int(a["balance"][i]),
                    tier_id=tier_pk[a["tier"][i]] if a["tier"][i] >= 0 else None,
                    tier_since=_from_us(int(a["tier_since"][i])) if a["tier"][i] >= 0 else None,
                    tier_kept_until=_from_us(int(a["tier_since"][i])) + grace
                    if a["tier"][i] >= 0
                    else None,
                )
                for i in np.flatnonzero(a["has"])
            ],
            batch_size=batch,
        )
        account_pk = np.zeros(data.member_count, dtype=np.int64)
        account_pk[np.flatnonzero(a["has"])] = [account.pk for account in accounts]
        led = data.ledger
        LedgerEntry.objects.bulk_create(
            [
                _entry(led, i, account_pk, purchase_pk, refund_pk, p)
                for i in range(len(led["owner"]))
            ],
            batch_size=batch,
        )
        tick("ledger", len(led["owner"]))


def _entry(led, i, account_pk, purchase_pk, refund_pk, p) -> LedgerEntry:
    kind = int(led["kind"][i])
    purchase_index = int(led["purchase"][i])
    external = f"D{purchase_index + 1:09d}" if purchase_index >= 0 else ""
    return LedgerEntry(
        account_id=account_pk[led["owner"][i]],
        kind=KIND_CODES[kind],
        points=int(led["points"][i]),
        balance_after=int(led["balance_after"][i]),
        reason=REASON_BY_KIND[kind].format(id=external),
        source=SOURCE_BY_KIND[kind],
        purchase_id=purchase_pk[purchase_index] if purchase_index >= 0 else None,
        refund_id=refund_pk.get(purchase_index) if kind == 5 else None,
        created_at=_from_us(int(led["at"][i])),
        expires_at=_from_us(int(led["expires"][i])) if led["expires"][i] >= 0 else None,
        remaining_points=int(led["remaining"][i]),
        expired_points=int(led["expired"][i]),
    )


def _email(m: dict, i: int) -> str:
    first = FIRST_NAMES[m["first_name"][i]].lower()
    last = LAST_NAMES[m["last_name"][i]].lower().replace(" ", "")
    return f"{first}.{last}.{i + 1}@example.nl"


def _euros(cents) -> Decimal:
    return Decimal(int(cents)).scaleb(-2)


# --- writer 2: PostgreSQL binary COPY (benchmark volumes) ----------------------------------

_COPY_HEADER, _COPY_TRAILER, _PG_TYPES = pgcopy.HEADER, pgcopy.TRAILER, pgcopy.NUMERIC_TYPES
_PG_EPOCH_US = _to_us(PG_EPOCH)


def _copy_binary(cursor, table: str, columns: list[tuple[str, str, np.ndarray]]) -> None:
    """Create a temporary table and fill it with binary COPY built by numpy (no NULLs)."""
    cursor.execute(
        f"CREATE TEMPORARY TABLE {table} ("
        + ", ".join(f"{name} {pgtype}" for name, pgtype, _ in columns)
        + ") ON COMMIT DROP"
    )
    rows = len(columns[0][2])
    dtype = [("fields", ">i2")]
    for index, (_name, pgtype, _values) in enumerate(columns):
        dtype += [(f"l{index}", ">i4"), (f"v{index}", _PG_TYPES[pgtype])]
    chunk = 1_000_000
    with cursor.copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(_COPY_HEADER)
        for begin in range(0, rows, chunk):
            end = min(begin + chunk, rows)
            block = np.empty(end - begin, dtype=dtype)
            block["fields"] = len(columns)
            for index, (_name, pgtype, values) in enumerate(columns):
                part = values[begin:end]
                if pgtype == "timestamptz":
                    part = part - _PG_EPOCH_US
                block[f"l{index}"] = np.dtype(_PG_TYPES[pgtype]).itemsize
                block[f"v{index}"] = part
            copy.write(block.tobytes())
        copy.write(_COPY_TRAILER)


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


def _fixed_ids(prefix: str, numbers: np.ndarray, suffix: str = "") -> np.ndarray:
    """prefix + the number zero-padded to 9 digits + suffix, as fixed-width bytes (fast)."""
    head, tail = prefix.encode(), suffix.encode()
    width = len(head) + 9 + len(tail)
    out = np.empty((len(numbers), width), dtype=np.uint8)
    out[:, : len(head)] = np.frombuffer(head, dtype=np.uint8)
    remaining = np.asarray(numbers, dtype=np.int64).copy()
    for position in range(len(head) + 8, len(head) - 1, -1):
        out[:, position] = 48 + remaining % 10
        remaining //= 10
    if tail:
        out[:, len(head) + 9 :] = np.frombuffer(tail, dtype=np.uint8)
    return out.view(f"S{width}").ravel()


_FIELD_TYPES = {"int8": ">i8", "ts": ">i8", "int4": ">i4", "int2": ">i2"}


def _copy_rows(cursor, table: str, fields: list[tuple[str, str, object]]) -> None:
    """Binary COPY straight into `table`; every row of a call has the same layout.

    Kinds: int8/int4/int2, ts (microseconds since the Unix epoch), numeric (cents, written as
    three base-10000 digits with scale 2), text (one value for all rows), textarr (fixed-width
    bytes per row), jsonb (one value), null.
    """
    rows = next(len(values) for _n, kind, values in fields if kind not in ("text", "jsonb", "null"))
    dtype: list = [("fields", ">i2")]
    for index, (_name, kind, values) in enumerate(fields):
        dtype.append((f"l{index}", ">i4"))
        if kind in _FIELD_TYPES:
            dtype.append((f"v{index}", _FIELD_TYPES[kind]))
        elif kind == "numeric":
            dtype.append((f"v{index}", ">i2", (7,)))
        elif kind == "text":
            dtype.append((f"v{index}", f"S{max(len(values), 1)}"))
        elif kind == "jsonb":
            dtype.append((f"v{index}", f"S{len(values) + 1}"))
        elif kind == "textarr":
            dtype.append((f"v{index}", values.dtype))
    columns = ", ".join(name for name, _kind, _values in fields)
    chunk = 500_000
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(_COPY_HEADER)
        for begin in range(0, rows, chunk):
            end = min(begin + chunk, rows)
            block = np.zeros(end - begin, dtype=dtype)
            block["fields"] = len(fields)
            for index, (_name, kind, values) in enumerate(fields):
                if kind == "null":
                    block[f"l{index}"] = -1
                elif kind == "text":
                    block[f"l{index}"] = len(values)
                    if values:
                        block[f"v{index}"] = values
                elif kind == "jsonb":
                    block[f"l{index}"] = len(values) + 1
                    block[f"v{index}"] = b"\x01" + values
                elif kind == "textarr":
                    block[f"l{index}"] = values.dtype.itemsize
                    block[f"v{index}"] = values[begin:end]
                elif kind == "numeric":
                    cents = values[begin:end]
                    euros = cents // 100
                    digits = block[f"v{index}"]
                    digits[:, 0] = 3  # ndigits
                    digits[:, 1] = 1  # weight: the first digit counts 10000^1
                    digits[:, 2] = 0  # sign: positive
                    digits[:, 3] = 2  # display scale: cents
                    digits[:, 4] = euros // 10000
                    digits[:, 5] = euros % 10000
                    digits[:, 6] = (cents % 100) * 100
                    block[f"l{index}"] = 14
                else:
                    part = values[begin:end]
                    if kind == "ts":
                        part = part - _PG_EPOCH_US
                    block[f"l{index}"] = np.dtype(_FIELD_TYPES[kind]).itemsize
                    block[f"v{index}"] = part
            data = block.tobytes()
            if any(kind == "text" and not values for _n, kind, values in fields):
                data = _strip_empty_text(block, fields)
            copy.write(data)
        copy.write(_COPY_TRAILER)


def _strip_empty_text(block: np.ndarray, fields) -> bytes:
    """Rebuild rows without the 1-byte placeholder that numpy needs for an empty string."""
    keep = [
        name
        for name in block.dtype.names
        if not (
            name.startswith("v")
            and fields[int(name[1:])][1] == "text"
            and not fields[int(name[1:])][2]
        )
    ]
    compact = np.empty(len(block), dtype=[(name, block.dtype[name]) for name in keep])
    for name in keep:
        compact[name] = block[name]
    return compact.tobytes()


def _next_id(cursor, table: str) -> int:
    cursor.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")
    return int(cursor.fetchone()[0])


def write_copy(
    data: DemoData,
    *,
    partners: list[Partner],
    tiers: list[Tier],
    terms: TermsVersion | None,
    finish: Callable[[], DemoData] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, float]:
    """Load the generated data with binary COPY, two database connections in parallel.

    With `finish` (see generate_in_stages) the purchases start loading while the ledger is
    still being generated: the members-and-ledger connection has time to spare.

    Purchases load on one connection while members, accounts and the ledger load on the
    other (2 cores, 2 PostgreSQL backends), each dropping and rebuilding its tables'
    secondary indexes. Each connection is one transaction; should either fail, everything
    loaded is removed again, so the database is never left half-seeded.
    """
    tick = progress or (lambda stage, done: None)
    timings: dict[str, float] = {}
    m, p = data.member, data.purchase
    tables = {
        model: model._meta.db_table
        for model in (Member, Purchase, PointsAccount, LedgerEntry, ConsentRecord, Refund)
    }
    with connection.cursor() as cursor:
        member_base = _next_id(cursor, tables[Member])
        purchase_base = _next_id(cursor, tables[Purchase])
        account_base = _next_id(cursor, tables[PointsAccount])
        refund_base = _next_id(cursor, tables[Refund])
        ledger_base = _next_id(cursor, tables[LedgerEntry])
    count = data.member_count
    total = len(p["owner"])
    member_ids = np.arange(member_base, member_base + count, dtype=np.int64)
    purchase_ids = purchase_base + np.arange(total, dtype=np.int64)
    refunded = np.flatnonzero(p["refund_cents"] > 0)
    refund_ids = np.full(total, -1, dtype=np.int64)
    refund_ids[refunded] = refund_base + np.arange(len(refunded))
    status_codes = [MemberStatus.ACTIVE, MemberStatus.INVITED, MemberStatus.PENDING]
    status = np.select([m["status"] == code for code in status_codes], [0, 1, 2])

    def load_purchases(cursor) -> None:
        partner_ids = _partner_for(p["channel"], partners).astype(np.int64)
        external = _fixed_ids("D", np.arange(1, total + 1))
        store_names = [*STORES, ""]
        for channel_code in range(len(CHANNELS)):
            for store_code in range(-1, len(STORES)):
                rows = np.flatnonzero((p["channel"] == channel_code) & (p["store"] == store_code))
                if not len(rows):
                    continue
                _copy_rows(
                    cursor,
                    tables[Purchase],
                    [
                        ("id", "int8", purchase_ids[rows]),
                        ("partner_id", "int8", partner_ids[rows]),
                        ("external_id", "textarr", external[rows]),
                        ("member_id", "int8", member_ids[p["owner"][rows]]),
                        ("amount", "numeric", p["cents"][rows]),
                        ("purchased_at", "ts", p["at"][rows]),
                        ("channel", "text", str(CHANNELS[channel_code]).encode()),
                        ("store", "text", store_names[store_code].encode()),
                        ("points_earned", "int4", p["points"][rows]),
                        ("refunded_amount", "numeric", p["refund_cents"][rows]),
                        ("points_reversed", "int4", p["reversed"][rows]),
                        ("earning_breakdown", "jsonb", b"{}"),
                        ("created_at", "ts", p["at"][rows]),
                    ],
                )
        _copy_rows(
            cursor,
            tables[Refund],
            [
                ("id", "int8", refund_ids[refunded]),
                ("purchase_id", "int8", purchase_ids[refunded]),
                ("external_id", "textarr", _fixed_ids("R", refunded + 1)),
                ("amount", "numeric", p["refund_cents"][refunded]),
                ("points_reversed", "int4", p["reversed"][refunded]),
                ("points_not_recovered", "int4", np.zeros(len(refunded), dtype=np.int64)),
                ("created_by_id", "null", None),
                ("created_at", "ts", p["refund_at"][refunded]),
            ],
        )
        tick("purchases", total)

    def load_members_and_ledger(cursor) -> None:
        _copy_binary(
            cursor,
            "demo_member",
            [
                ("idx", "bigint", np.arange(count, dtype=np.int64)),
                ("number", "bigint", m["number"].astype(np.int64)),
                ("first", "smallint", m["first_name"]),
                ("last", "smallint", m["last_name"]),
                ("birth", "date", m["birth_days"]),
                ("lang", "smallint", (m["language"] == "en").astype(np.int64)),
                ("status", "smallint", status),
                ("enrolled", "timestamptz", m["enrolled_us"]),
                ("consent", "smallint", m["consent"].astype(np.int64)),
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
        consent_terms = terms.pk if terms else "NULL"
        cursor.execute(f"""
            INSERT INTO {tables[ConsentRecord]} (member_id, channel, granted, recorded_at,
                source, terms_version_id)
            SELECT {member_base} + idx, 'email', consent = 1, enrolled, 'enrolment:demo',
                   {consent_terms}
            FROM demo_member WHERE status <> 1""")
        tick("members", count)

        tier_ids = np.array([tier.pk for tier in tiers] + [-1])[a["tier"][holders]]
        _copy_binary(
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
                    np.where(a["tier"][holders] >= 0, a["tier_since"][holders], data.now_us),
                ),
            ],
        )
        cursor.execute(f"""
            INSERT INTO {tables[PointsAccount]} (id, member_id, balance, tier_id,
                tier_since, tier_kept_until, updated_at)
            SELECT id, member, balance, NULLIF(tier, -1),
                   CASE WHEN tier <> -1 THEN since END,
                   CASE WHEN tier <> -1 THEN since + interval '365 days' END, now()
            FROM demo_account""")

        purchase_index = led["purchase"]
        for kind_code, kind in enumerate(KIND_CODES):
            rows = np.flatnonzero(led["kind"] == kind_code)
            if not len(rows):
                continue
            linked = purchase_index[rows]
            reason = REASON_BY_KIND[kind_code]
            names_purchase = bool(len(linked)) and bool((linked >= 0).all())
            if kind_code == 0 and not names_purchase:
                reason = MONTHLY_EARN_REASON
            if "{id}" in reason:
                prefix, suffix = reason.split("{id}")
                reason_field = (
                    "reason",
                    "textarr",
                    _fixed_ids(prefix + "D", linked + 1, suffix=suffix),
                )
            else:
                reason_field = ("reason", "text", reason.encode())
            credit = kind_code in (0, 3, 4)
            _copy_rows(
                cursor,
                tables[LedgerEntry],
                [
                    ("id", "int8", ledger_ids[rows]),
                    ("account_id", "int8", account_ids[led["owner"][rows]]),
                    ("kind", "text", str(kind).encode()),
                    ("points", "int4", led["points"][rows]),
                    ("balance_after", "int4", led["balance_after"][rows]),
                    reason_field,
                    ("source", "text", str(SOURCE_BY_KIND[kind_code]).encode()),
                    ("purchase_id", "int8", purchase_base + linked)
                    if kind_code in (0, 5) and names_purchase
                    else ("purchase_id", "null", None),
                    ("refund_id", "int8", refund_ids[linked])
                    if kind_code == 5
                    else ("refund_id", "null", None),
                    ("created_by_id", "null", None),
                    ("created_at", "ts", led["at"][rows]),
                    ("expires_at", "ts", led["expires"][rows])
                    if credit
                    else ("expires_at", "null", None),
                    ("remaining_points", "int4", led["remaining"][rows]),
                    ("expired_points", "int4", led["expired"][rows]),
                ],
            )
        tick("ledger", entries)

    phases = [
        ("purchases", [tables[Purchase], tables[Refund]], load_purchases),
        (
            "members and ledger",
            [tables[Member], tables[ConsentRecord], tables[PointsAccount], tables[LedgerEntry]],
            load_members_and_ledger,
        ),
    ]

    def run(name: str, phase_tables: list[str], load: Callable) -> None:
        began = time.perf_counter()
        try:
            with transaction.atomic(), connection.cursor() as django_cursor:
                cursor = django_cursor.cursor  # psycopg's own cursor: copy()
                # The generator guarantees the foreign keys; checking 20M rows one by one
                # would dominate the load, so triggers (FK checks) are off for this load.
                cursor.execute("SET LOCAL session_replication_role = replica")
                cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
                with _without_secondary_indexes(cursor, phase_tables):
                    load(cursor)
                    timings[f"{name}: copy"] = round(time.perf_counter() - began, 2)
                for table in phase_tables:
                    cursor.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"coalesce((SELECT max(id) FROM {table}), 1))"
                    )
            timings[f"{name}: total"] = round(time.perf_counter() - began, 2)
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=len(phases)) as pool:
        futures = [pool.submit(run, *phases[0])]
        if finish is not None:
            finish()
        a, led = data.account, data.ledger
        entries = len(led["owner"])
        ledger_ids = ledger_base + np.arange(entries, dtype=np.int64)
        holders = np.flatnonzero(a["has"])
        account_ids = np.zeros(count, dtype=np.int64)
        account_ids[holders] = account_base + np.arange(len(holders))
        futures.append(pool.submit(run, *phases[1]))
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


# --- orchestration -------------------------------------------------------------------------


def seed(
    spec: DemoSpec, *, use_copy: bool = False, progress: Callable[[str, int], None] | None = None
) -> dict[str, float]:
    """Create the demo program and its members; returns seconds per phase."""
    started = time.perf_counter()
    now = spec.now or timezone.now().replace(microsecond=0)
    spec.now = now
    with transaction.atomic():
        program, partners, tiers = program_setup(now)
    terms = TermsVersion.objects.filter(version="2026.1").first()
    timings = {"setup": round(time.perf_counter() - started, 2)}
    write_started = time.perf_counter()
    data, finish = generate_in_stages(spec, program=program)
    if use_copy:
        timings.update(
            write_copy(
                data,
                partners=partners,
                tiers=tiers,
                terms=terms,
                finish=finish,
                progress=progress,
            )
        )
    else:
        finish()
        write_orm(data, partners=partners, tiers=tiers, terms=terms, progress=progress)
    timings.update(data.timings)
    timings["generate and write"] = round(time.perf_counter() - write_started, 2)
    timings["total"] = round(time.perf_counter() - started, 2)
    counts = {
        "member_rows": data.member_count,
        "purchase_rows": len(data.purchase["owner"]),
        "ledger_rows": len(data.ledger["owner"]),
    }
    return {**timings, **counts}
