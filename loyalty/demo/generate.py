"""Generation of the demo data: numpy, seeded, no database writes (see the package docstring).

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
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from django.utils import timezone

from members.models import MemberStatus

from .. import reasons
from ..models import Channel, EntryKind, EntrySource, ProgramSettings
from ..reasons import Reason, per_language
from .breakdown import SCALE, breakdown_json, hundredths, line_points_exact

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
# The earning rules of the demo program (program.py creates them): name, multiplier, category
# or channel, priority. The generator applies them as EarningRule's ordering does (priority).
DURABLE_RULE = ("Dubbele punten op duurzaam", Decimal("2.00"), "duurzaam", 10)
WEBSHOP_RULE = ("Webshop actie", Decimal("1.50"), Channel.WEBSHOP, 5)
WEBSHOP_RULE_DAYS = (90, 30)  # valid from 90 days before the demo's "now" to 30 days after
RULES = [WEBSHOP_RULE, DURABLE_RULE]  # codes 0 and 1 of the lines' "rule"; -1 none

# The everyday rewards of the demo catalogue, which the history's redemptions are of: points,
# name nl, name en. rewards' demo_rewards creates the catalogue from these and gives every
# redemption entry of the ledger its Redemption (one source of truth for both).
REDEMPTION_MENU = [
    (250, "€ 5 korting", "€ 5 off"),
    (400, "Bioscoopkaartje", "Cinema ticket"),
    (600, "Koffiebeker van bamboe", "Bamboo coffee cup"),
]
REWARD_COSTS = np.array([cost for cost, _nl, _en in REDEMPTION_MENU])
# Spend: each customer's own mean spend varies around the profile's (inverse gamma, shape
# CUSTOMER_SHAPE: coefficient of variation 1/sqrt(shape - 2) = 0.5), and each purchase around
# the customer's (gamma, shape SPEND_SHAPE: coefficient of variation 1/sqrt(shape) = 0.63),
# the heterogeneity the Gamma-Gamma spend model describes.
CUSTOMER_SHAPE = 6.0
SPEND_SHAPE = 2.5
# Members per chunk of generate_chunks: about 500k purchases at the benchmark's 10 a member,
# so a chunk's arrays take about 80 MB and generating one about 250 MB more (measured).
CHUNK_MEMBERS = 50_000
# Expiry runs nightly at 01:00 UTC and removes what is left of the lots expired by then.
EXPIRY_RUN_HOUR_US = 3600 * 1_000_000

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
    points_per_euro: Decimal = Decimal("1.00")
    first_member: int = 0  # a chunk's (generate_chunks) first member and purchase in the whole
    first_purchase: int = 0

    def breakdowns(self, rows: np.ndarray | None = None, *, prefix: bytes = b"") -> np.ndarray:
        """The earning breakdown (JSON, see breakdown.py) of the purchases `rows` (all by
        default), in their order: one numpy bytes array, all texts one width."""
        p, lines = self.purchase, self.lines
        rows = np.arange(len(p["owner"])) if rows is None else np.asarray(rows)
        first = np.searchsorted(lines["owner"], rows)
        per = np.searchsorted(lines["owner"], rows, side="right") - first
        owner = np.repeat(np.arange(len(rows)), per)
        line = np.repeat(first - np.r_[0, np.cumsum(per)[:-1]], per) + np.arange(len(owner))
        return breakdown_json(
            base_rate=self.points_per_euro,
            tier=p["tier_before"][rows],
            tier_names=[t[0] for t in TIERS],
            tier_multipliers=[t[3] for t in TIERS],
            points=p["points"][rows],
            line_owner=owner,
            line_cents=lines["cents"][line],
            line_category=lines["category"][line],
            categories=CATEGORIES,
            line_rule=lines["rule"][line],
            rule_names=[r[0] for r in RULES],
            rule_multipliers=[r[1] for r in RULES],
            prefix=prefix,
        )


def to_us(value: dt.datetime) -> int:
    return int(value.timestamp() * 1_000_000)


def from_us(value: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(value / 1_000_000, tz=dt.UTC)


def member_numbers(count: int, seed: int, start: int = 0) -> np.ndarray:
    """Distinct 12-digit numbers with a Luhn check digit, deterministic for the seed: those of
    members `start` to `start + count - 1`."""
    modulus = 9 * 10**10
    multiplier = 7_919_000_003  # odd and not a multiple of 3 or 5: coprime to the modulus
    offset = (seed * 2_654_435_761) % modulus
    index = np.arange(start, start + count, dtype=np.int64)
    bodies = (index * multiplier + offset) % modulus + 10**10
    return bodies * 10 + _luhn_digits(bodies, 11)


def _luhn_digits(bodies: np.ndarray, length: int) -> np.ndarray:
    """The Luhn check digit (stdnum.luhn.calc_check_digit) for many numbers at once."""
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


def _chunk_rng(seed: int, number: int) -> np.random.Generator:
    """The random stream of chunk `number`: the seed's own for the first (so one chunk is the
    generator's data from before it worked in chunks), one derived from it for the others."""
    return np.random.default_rng(seed if number == 0 else [seed, number])


def _profiles(rng: np.random.Generator, count: int, now_us: int) -> dict[str, np.ndarray]:
    """Who `count` members are: a profile each and the span they buy in, and how many
    purchases that span leads to expect (before scaling to the purchase target)."""
    shares = np.array([profile[1] for profile in PROFILES])
    profile = rng.choice(len(PROFILES), size=count, p=shares / shares.sum())
    rate = np.array([p[2] for p in PROFILES])[profile]
    start_low, start_high = (np.array([p[4][i] for p in PROFILES])[profile] for i in (0, 1))
    end_low, end_high = (np.array([p[5][i] for p in PROFILES])[profile] for i in (0, 1))
    start_days = rng.uniform(start_low, start_high + 1)
    end_days = np.minimum(rng.uniform(end_low, end_high + 1), start_days)
    start_us = now_us - (start_days * DAY_US).astype(np.int64)
    end_us = now_us - (end_days * DAY_US).astype(np.int64)
    name = [p[0] for p in PROFILES]
    expected = rate * (end_us - start_us) / YEAR_US
    single = np.isin(profile, [name.index("one_time"), name.index("new")])
    expected[single] = 1
    return {
        "profile": profile,
        "buys": profile != name.index("no_purchases"),
        "single": single,
        "expected": expected,
        "start_us": start_us,
        "end_us": end_us,
        "mean_amount": np.array([p[3] for p in PROFILES])[profile],
    }


def generate_chunks(
    spec: DemoSpec,
    *,
    program: ProgramSettings | None = None,
    chunk_members: int | None = None,
) -> Iterator[DemoData]:
    """The demo data in member chunks: each a DemoData of `chunk_members` consecutive members
    with all their purchases, lines, ledger and accounts (indexes local to the chunk;
    `first_member` and `first_purchase` place it in the whole). Memory is bounded by the
    chunk, whatever the member count: every chunk draws its members from its own random
    stream (`_chunk_rng`), twice: a first pass over the chunks only sums the purchases their
    profiles expect, to scale them to the purchase target; the second draws the same members
    again and their purchases. One chunk (up to `chunk_members` members) is the data of the
    generator before it worked in chunks; with more, the data is deterministic for the seed and
    the chunk size.
    """
    chunk_members = chunk_members or CHUNK_MEMBERS
    now = spec.now or timezone.now().replace(microsecond=0)
    now_us = to_us(now)
    count = spec.members
    target = spec.purchases if spec.purchases is not None else count * 10
    points_per_euro = program.points_per_euro if program else Decimal("1.00")
    bounds = [
        (low, min(low + chunk_members, count)) for low in range(0, max(count, 1), chunk_members)
    ]

    buyers, expected_repeats = 0, 0.0
    for number, (low, high) in enumerate(bounds):
        drawn = _profiles(_chunk_rng(spec.seed, number), high - low, now_us)
        buyers += int(drawn["buys"].sum())
        expected_repeats += float(np.maximum(drawn["expected"][drawn["buys"]] - 1, 0).sum())
    scale = max(target - buyers, 0) / max(expected_repeats, 1.0)

    first_purchase = 0
    for number, (low, high) in enumerate(bounds):
        rng = _chunk_rng(spec.seed, number)
        size = high - low
        drawn = _profiles(rng, size, now_us)
        buys = drawn["buys"]
        counts = np.where(buys, 1 + rng.poisson(np.maximum(drawn["expected"] - 1, 0) * scale), 0)
        counts[drawn["single"]] = 1
        status = np.full(size, MemberStatus.ACTIVE, dtype=object)
        special = rng.random(size)
        status[(~buys) & (special < 0.25)] = MemberStatus.INVITED
        status[(~buys) & (special >= 0.25) & (special < 0.5)] = MemberStatus.PENDING
        enrolled_us = np.minimum(drawn["start_us"], now_us) - (
            rng.uniform(0, 3, size) * DAY_US
        ).astype(np.int64)
        birth_year = rng.integers(1950, 2006, size)
        member = {
            "number": member_numbers(size, spec.seed, start=low),
            "first_name": rng.integers(0, len(FIRST_NAMES), size),
            "last_name": rng.integers(0, len(LAST_NAMES), size),
            # Days since 2000-01-01 (PostgreSQL's date epoch); 1950 to 2005.
            "birth_days": ((birth_year - 2000) * 365.25 + rng.integers(0, 365, size)).astype(
                np.int64
            ),
            "language": np.where(rng.random(size) < 0.8, "nl", "en"),
            "status": status,
            "enrolled_us": enrolled_us,
            "consent": rng.random(size) < 0.72,
            "profile": drawn["profile"],
        }
        behaviour = {
            "counts": counts,
            "start_us": drawn["start_us"],
            "end_us": drawn["end_us"],
            "mean_amount": drawn["mean_amount"],
        }
        data = _chunk(
            rng,
            spec,
            member=member,
            behaviour=behaviour,
            now_us=now_us,
            points_per_euro=points_per_euro,
        )
        data.first_member = low
        data.first_purchase = first_purchase
        first_purchase += len(data.purchase["owner"])
        yield data


def _chunk(
    rng,
    spec: DemoSpec,
    *,
    member: dict[str, np.ndarray],
    behaviour: dict[str, np.ndarray],
    now_us: int,
    points_per_euro: Decimal,
) -> DemoData:
    """One chunk of members: their purchases (with lines and earning), then their ledger and
    accounts; indexes are local to the chunk."""
    started = time.perf_counter()
    count = len(member["number"])
    counts, mean_amount = behaviour["counts"], behaviour["mean_amount"]
    start_us, end_us = behaviour["start_us"], behaviour["end_us"]
    status = member["status"]

    # Purchases, sorted by member then time.
    total = int(counts.sum())
    owner = np.repeat(np.arange(count), counts)
    span = (end_us - start_us)[owner]
    at = start_us[owner] + (rng.random(total) * span).astype(np.int64)
    # owner is already grouped (np.repeat); sort by time within it with one int64 key.
    order = np.argsort(_owner_time_key(owner, at, int(at.min()) if total else 0), kind="stable")
    owner, at = owner[order], at[order]
    customer_mean = mean_amount * (CUSTOMER_SHAPE - 1) / rng.gamma(CUSTOMER_SHAPE, 1.0, count)
    amount = rng.gamma(SPEND_SHAPE, customer_mean[owner] / SPEND_SHAPE)
    cents = np.maximum(np.round(amount * 100), 195).astype(np.int64)
    channel = rng.choice(3, size=total, p=[0.64, 0.31, 0.05])
    store = np.where(channel == 0, rng.integers(0, len(STORES), total), -1)

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
    webshop_from = now_us - WEBSHOP_RULE_DAYS[0] * DAY_US
    webshop_until = now_us + WEBSHOP_RULE_DAYS[1] * DAY_US
    line_at = at[line_owner]
    rule = np.full(len(line_owner), -1)
    webshop = (channel[line_owner] == CHANNELS.index(WEBSHOP_RULE[2])) & (
        (line_at >= webshop_from) & (line_at < webshop_until)
    )
    rule[webshop] = RULES.index(WEBSHOP_RULE)
    rule[line_category == CATEGORIES.index(DURABLE_RULE[2])] = RULES.index(DURABLE_RULE)

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
    tier_before = np.searchsorted(thresholds, window_before, side="right") - 1
    # Exactly as the service's Decimals: line points x 10^8 in integers, floored per purchase.
    tier_hundredths = np.array([hundredths(t[3]) for t in TIERS] + [100])
    rule_hundredths = np.array([hundredths(r[1]) for r in RULES] + [100])
    exact = line_points_exact(
        line_cents,
        base_hundredths=hundredths(points_per_euro),
        rule_hundredths=rule_hundredths[rule],
        tier_hundredths=tier_hundredths[tier_before[line_owner]],
    )
    if total:
        points = np.add.reduceat(exact, np.searchsorted(line_owner, np.arange(total))) // 10**SCALE
    else:
        points = np.zeros(0, dtype=np.int64)

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

    # Account tiers: the highest tier reached after any purchase in the last 12 months, and
    # at least the base tier (threshold 0) from enrolment, as the program gives every account.
    after = window_before + cents
    tier_after = np.searchsorted(thresholds, after, side="right") - 1
    recent = at > now_us - YEAR_US
    account_tier = np.zeros(count, dtype=np.int64)
    np.maximum.at(account_tier, owner[recent], tier_after[recent])
    tier_since = member["enrolled_us"].astype(np.int64)
    reached = recent & (tier_after == account_tier[owner]) & (tier_after > 0)
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

    data = DemoData(
        now_us=now_us,
        member_count=count,
        member=member,
        purchase=purchase,
        lines=lines,
        ledger={},
        account={},
        points_per_euro=points_per_euro,
    )
    data.timings["generate: purchases"] = round(time.perf_counter() - started, 2)

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


def generate(
    spec: DemoSpec,
    *,
    program: ProgramSettings | None = None,
) -> DemoData:
    """All demo data in one DemoData (small demos and tests: its memory grows with the member
    count; the writers take generate_chunks' chunks instead)."""
    chunks = list(generate_chunks(spec, program=program))
    if len(chunks) == 1:
        return chunks[0]
    return _joined(chunks)


def _joined(chunks: list[DemoData]) -> DemoData:
    """Chunks as one DemoData, their local indexes made global."""
    first = chunks[0]

    def join(part: str, shift: dict[str, str]) -> dict[str, np.ndarray]:
        columns = getattr(first, part).keys()
        joined = {}
        for column in columns:
            pieces = []
            offset = 0
            for chunk in chunks:
                values = getattr(chunk, part)[column]
                if column in shift:
                    base = {"member": chunk.first_member, "purchase": chunk.first_purchase}
                    base["line"] = offset
                    values = np.where(values >= 0, values + base[shift[column]], values)
                pieces.append(values)
                if part == "lines":
                    offset += len(chunk.purchase["owner"])
            joined[column] = np.concatenate(pieces)
        return joined

    return DemoData(
        now_us=first.now_us,
        member_count=sum(chunk.member_count for chunk in chunks),
        member=join("member", {}),
        purchase=join("purchase", {"owner": "member"}),
        lines=join("lines", {"owner": "line"}),
        ledger=join("ledger", {"owner": "member", "purchase": "purchase"}),
        account=join("account", {}),
        points_per_euro=first.points_per_euro,
    )


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
    # A member redeems while taking part: up to four months after the last points earned.
    last_lot = np.where(has_lots, lot_at[np.maximum(bounds[1:] - 1, 0)], 0)
    last = np.minimum(last_lot + 120 * DAY_US, now_us - DAY_US)
    red_owner_parts, red_at_parts, red_points_parts = [], [], []
    for _round in range(2):  # each member redeems up to twice; each round is vectorised
        redeemer = has_lots & (rng.random(count) < 0.3)
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

    # Expiry: the nightly run after a lot's expiry removes what is left of it, in one entry
    # per member and night; lots whose run is still to come stay open.
    run_at = (lot_expires - EXPIRY_RUN_HOUR_US + DAY_US - 1) // DAY_US * DAY_US
    run_at += EXPIRY_RUN_HOUR_US
    expired = run_at <= now_us
    lot_expired = np.where(expired, lot_remaining, 0)
    lot_remaining[expired] = 0
    taken = np.flatnonzero(lot_expired > 0)
    night = lot_owner[taken].astype(np.int64) * 2**20 + run_at[taken] // DAY_US
    _nights, first_of_night = np.unique(night, return_index=True)
    expired_points = np.add.reduceat(lot_expired[taken], first_of_night) if len(taken) else taken
    expiring = lot_owner[taken][first_of_night]
    entries_owner.append(expiring)
    entries_at.append(run_at[taken][first_of_night])
    entries_points.append(-expired_points)
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


def redemption_reasons(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reason of each redemption entry as reward_redeem writes it (the menu's reward of
    that cost): its text in the program's language and its parameters as JSON (object arrays).
    """
    menu = [
        Reason(reasons.REWARD, {"reward": per_language(nl=name_nl, en=name_en)})
        for _cost, name_nl, name_en in REDEMPTION_MENU
    ]
    texts = np.array([reason.stored_text() for reason in menu], dtype=object)
    params = np.array([json.dumps(dict(reason.params)) for reason in menu], dtype=object)
    chosen = np.searchsorted(REWARD_COSTS, -np.asarray(points))
    return texts[chosen], params[chosen]


def reason_templates() -> list[str]:
    """Per kind code, the stored reason: "{id}" stands for the purchase's external id."""
    return [
        Reason(key, {"id": "{id}"}).stored_text() if key else text
        for key, text in zip(REASON_KEY_BY_KIND, REASON_BY_KIND, strict=True)
    ]


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
# The reason keys (loyalty.reasons) the services write per kind; "" for staff's own text.
REASON_KEY_BY_KIND = [
    reasons.PURCHASE,
    reasons.REWARD,
    reasons.POINTS_EXPIRED,
    "",
    "",
    reasons.REFUND,
]
REASON_BY_KIND = [
    "",  # by key
    "",  # by key, per reward: redemption_reasons()
    "",  # by key
    "Goodwill (klantenservice)",
    "Bonus",
    "",  # by key
]
