"""How many points a purchase earns: base rate x the best matching rule x the tier multiplier,
and the bonuses that later apps offer on top (a campaign's bonus offer is one).

Bonus providers are registered by the apps to the right of loyalty, in their AppConfig.ready():
`register_bonus_provider(provider)`, where `provider(facts)` returns the `Bonus`es a purchase
earns. Each bonus is credited as its own ledger entry (kind bonus), so the member and the
campaign's results see it apart from the purchase's points.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal

from . import process_cache
from .models import EarningRule, ProgramSettings, Tier
from .reasons import Reason, reason_render


@dataclass(frozen=True)
class LineInput:
    amount: Decimal
    category: str = ""


@dataclass
class LineEarning:
    amount: Decimal
    category: str
    rule: str | None
    rule_multiplier: Decimal
    points: Decimal


@dataclass(frozen=True)
class PurchaseFacts:
    """What a bonus provider is told about a purchase being earned."""

    member_id: int
    amount: Decimal
    channel: str
    at: dt.datetime
    tier: str | None
    categories: tuple[str, ...]
    points: int  # what the purchase earns before bonuses


@dataclass(frozen=True)
class Bonus:
    points: int
    label: str  # shown to the member and in the breakdown, e.g. the campaign's name
    source: str = "campaign"  # an EntrySource value
    reference: str = ""  # what gave it, e.g. "campaign:12", for the provider's own figures
    # The ledger reason (read in the reader's language); without one, the label as typed.
    reason: Reason | None = None

    def as_dict(self) -> dict:
        data: dict = {"points": self.points, "label": self.label, "reference": self.reference}
        if self.reason is not None:
            data["reason_key"] = self.reason.key
            data["reason_params"] = dict(self.reason.params)
        return data


def bonus_text(data: dict) -> str:
    """A stored breakdown's bonus (`Bonus.as_dict`) in the reader's language."""
    return reason_render(
        data.get("reason_key", ""), data.get("reason_params"), fallback=data.get("label", "")
    )


BonusProvider = Callable[[PurchaseFacts], Iterable[Bonus]]
_bonus_providers: list[BonusProvider] = []


def register_bonus_provider(provider: BonusProvider) -> None:
    if provider not in _bonus_providers:
        _bonus_providers.append(provider)


def unregister_bonus_provider(provider: BonusProvider) -> None:
    if provider in _bonus_providers:
        _bonus_providers.remove(provider)


@dataclass
class EarningBreakdown:
    base_rate: Decimal
    tier: str | None
    tier_multiplier: Decimal
    lines: list[LineEarning] = field(default_factory=list)
    points: int = 0
    bonuses: list[Bonus] = field(default_factory=list)

    @property
    def bonus_points(self) -> int:
        return sum(bonus.points for bonus in self.bonuses)

    def as_dict(self) -> dict:
        return {
            "base_rate": str(self.base_rate),
            "tier": self.tier,
            "tier_multiplier": str(self.tier_multiplier),
            "lines": [
                {
                    "amount": str(line.amount),
                    "category": line.category,
                    "rule": line.rule,
                    "rule_multiplier": str(line.rule_multiplier),
                    "points": str(line.points),
                }
                for line in self.lines
            ],
            "points": self.points,
            "bonuses": [bonus.as_dict() for bonus in self.bonuses],
        }


@dataclass(frozen=True)
class EarningTerms:
    """The tiers and the active earning rules, which every purchase reads and the program
    manager changes a few times a year: kept in memory instead of two queries a purchase."""

    tiers: tuple[Tier, ...]  # by rank, lowest first
    rules: tuple[EarningRule, ...]  # active ones, best first; their dates are checked per use

    def rules_at(self, at: dt.datetime) -> list[EarningRule]:
        return [
            rule
            for rule in self.rules
            if (rule.valid_from is None or rule.valid_from <= at)
            and (rule.valid_until is None or rule.valid_until > at)
        ]

    def tier(self, tier_id: int | None) -> Tier | None:
        return next((tier for tier in self.tiers if tier.pk == tier_id), None)


def _earning_terms_read() -> EarningTerms:
    return EarningTerms(
        tiers=tuple(Tier.objects.order_by("rank")),
        rules=tuple(
            EarningRule.objects.filter(is_active=True).order_by("-priority", "-multiplier", "pk")
        ),
    )


def earning_terms() -> EarningTerms:
    """The current terms, kept in the process's memory (loyalty/process_cache.py; the save and
    delete signals of tiers and rules call `process_cache.changed`). Shared: never changed."""
    return process_cache.cached("earning-terms", _earning_terms_read)


def active_rules(*, at: dt.datetime) -> list[EarningRule]:
    return earning_terms().rules_at(at)


def _best_rule(
    rules: Iterable[EarningRule], *, tier: Tier | None, channel: str, category: str
) -> EarningRule | None:
    for rule in rules:  # already ordered best first
        if rule.tier_id is not None and (tier is None or rule.tier_id != tier.pk):
            continue
        if rule.channel and rule.channel != channel:
            continue
        if rule.product_category and rule.product_category.lower() != category.lower():
            continue
        return rule
    return None


def earning_calculate(
    *,
    amount: Decimal,
    channel: str,
    at: dt.datetime,
    tier: Tier | None,
    lines: Sequence[LineInput] = (),
    program: ProgramSettings | None = None,
    rules: list[EarningRule] | None = None,
    member_id: int | None = None,
) -> EarningBreakdown:
    """The points a purchase earns, with the reasoning, rounded down to whole points; with a
    member, also the registered providers' bonuses (a preview without one has none)."""
    program = program or ProgramSettings.load()
    rules = active_rules(at=at) if rules is None else rules
    tier_multiplier = tier.multiplier if tier is not None else Decimal("1")
    breakdown = EarningBreakdown(
        base_rate=program.points_per_euro,
        tier=tier.name if tier else None,
        tier_multiplier=tier_multiplier,
    )
    total = Decimal("0")
    for line in lines or [LineInput(amount=amount)]:
        rule = _best_rule(rules, tier=tier, channel=channel, category=line.category)
        rule_multiplier = rule.multiplier if rule else Decimal("1")
        points = line.amount * program.points_per_euro * rule_multiplier * tier_multiplier
        breakdown.lines.append(
            LineEarning(
                amount=line.amount,
                category=line.category,
                rule=rule.name if rule else None,
                rule_multiplier=rule_multiplier,
                points=points,
            )
        )
        total += points
    breakdown.points = int(total.to_integral_value(rounding=ROUND_FLOOR))
    if member_id is not None and _bonus_providers:
        facts = PurchaseFacts(
            member_id=member_id,
            amount=amount,
            channel=channel,
            at=at,
            tier=breakdown.tier,
            categories=tuple(line.category for line in lines),
            points=breakdown.points,
        )
        for provider in _bonus_providers:
            breakdown.bonuses.extend(bonus for bonus in provider(facts) if bonus.points > 0)
    return breakdown
