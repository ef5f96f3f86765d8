"""What a message may say about its member: one context, built from other apps' selectors.

Every member's context has exactly the keys of the sample context (both come from
`_context`), so a template that renders against the sample without an unknown variable renders
for every member. Values are text in the active language ("1.234", "€ 12,50", "3 januari
2027"): the program manager writes `{{ points.balance }}`, not a format filter.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from loyalty.formats import money_text, points_text
from loyalty.models import ProgramSettings, TierBasis
from loyalty.selectors import member_balance, points_expiring, points_expiring_on, tier_progress
from members.models import Member
from members.selectors import profiling_objection
from rewards.selectors import catalogue_for
from segmentation.models import Segment
from segmentation.selectors import member_current_score

# Points that expire within this time count as "expiring soon".
EXPIRING_SOON = dt.timedelta(days=60)
AFFORDABLE_REWARDS = 3

# The variables a message may use, for the admin's help text.
VARIABLES = (
    "member.first_name",
    "member.last_name",
    "member.member_number",
    "points.balance",
    "points.name",
    "points.expiring",
    "points.expiring_on",
    "expiry.points",
    "expiry.date",
    "tier.name",
    "tier.next",
    "tier.missing",
    "segment",
    "rewards (name, points, url)",
    "portal_url",
    "unsubscribe_url",
    "program.name",
)


@dataclass(frozen=True)
class MemberFacts:
    first_name: str
    last_name: str
    member_number: str
    balance: int
    tier: str
    next_tier: str
    missing: Decimal
    tier_basis: str
    segment: str
    expiring: int
    expiring_on: dt.datetime | None
    rewards: list[tuple[str, int]] = field(default_factory=list)
    # A points-expiring automation's occurrence: the points that expire on that day.
    expiry_points: int = 0
    expiry_date: dt.date | None = None


EXPIRY_OCCURRENCE = "expiry:"


def expiry_occurrence(day: dt.date) -> str:
    """The occurrence of a points-expiring automation: the day the points expire."""
    return f"{EXPIRY_OCCURRENCE}{day.isoformat()}"


def _expiry_day(occurrence: str) -> dt.date | None:
    if not occurrence.startswith(EXPIRY_OCCURRENCE):
        return None
    try:
        return dt.date.fromisoformat(occurrence.removeprefix(EXPIRY_OCCURRENCE))
    except ValueError:
        return None


def member_facts(*, member: Member, occurrence: str = "") -> MemberFacts:
    """Read what the member's messages may show (a few queries per member); `occurrence` is the
    recipient's (an automation's expiry day fills `expiry`)."""
    progress = tier_progress(member=member)
    segment = ""
    # The segment is a profiling result: not used to address a member who objects to it.
    if not profiling_objection(member=member):
        score = member_current_score(member=member)
        if score is not None and score.segment in Segment.values:
            segment = str(Segment(score.segment).label)
    expiring = points_expiring(member=member, within=EXPIRING_SOON)
    expiry_day = _expiry_day(occurrence)
    affordable = sorted(
        (item.reward for item in catalogue_for(member=member) if item.can_redeem),
        key=lambda reward: (-reward.points_cost, reward.pk),
    )[:AFFORDABLE_REWARDS]
    return MemberFacts(
        first_name=member.first_name,
        last_name=member.last_name,
        member_number=member.member_number,
        balance=member_balance(member=member),
        tier=progress.current.name if progress.current else "",
        next_tier=progress.next.name if progress.next else "",
        missing=progress.missing,
        tier_basis=progress.basis,
        segment=segment,
        expiring=expiring.points,
        expiring_on=expiring.first_expiry,
        rewards=[(reward.name, reward.points_cost) for reward in affordable],
        expiry_points=(
            points_expiring_on(member_id=member.pk, day=expiry_day) if expiry_day else 0
        ),
        expiry_date=expiry_day,
    )


def sample_facts() -> MemberFacts:
    """An invented member with every field filled: templates are checked against it."""
    return MemberFacts(
        first_name="Sanne",
        last_name="de Vries",
        member_number="123456789012",
        balance=1250,
        tier="Silver",
        next_tier="Gold",
        missing=Decimal("120.00"),
        tier_basis=TierBasis.SPEND,
        segment=str(Segment.LOYAL.label),
        expiring=150,
        expiring_on=timezone.now() + dt.timedelta(days=21),
        rewards=[("Cinema ticket", 1000), ("Coffee", 250), ("Tote bag", 200)],
        expiry_points=150,
        expiry_date=timezone.localdate() + dt.timedelta(days=21),
    )


def _absolute(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def message_context(*, facts: MemberFacts, unsubscribe_url: str) -> dict:
    """The template context, in the active language."""
    program = ProgramSettings.load()
    missing = (
        money_text(facts.missing)
        if facts.tier_basis == TierBasis.SPEND
        else f"{points_text(facts.missing)} {program.points_label}"
    )
    rewards_url = _absolute(reverse("rewards:catalogue"))
    return {
        "member": {
            "first_name": facts.first_name,
            "last_name": facts.last_name,
            "member_number": facts.member_number,
        },
        "points": {
            "balance": points_text(facts.balance),
            "name": program.points_label,
            "expiring": points_text(facts.expiring) if facts.expiring else "",
            "expiring_on": (
                date_format(timezone.localtime(facts.expiring_on), "DATE_FORMAT")
                if facts.expiring_on
                else ""
            ),
        },
        "expiry": {
            "points": points_text(facts.expiry_points) if facts.expiry_points else "",
            "date": date_format(facts.expiry_date, "DATE_FORMAT") if facts.expiry_date else "",
        },
        "tier": {
            "name": facts.tier,
            "next": facts.next_tier,
            "missing": missing if facts.next_tier else "",
        },
        "segment": facts.segment,
        "rewards": [
            {"name": name, "points": points_text(points), "url": rewards_url}
            for name, points in facts.rewards
        ],
        "portal_url": _absolute(reverse("points:dashboard")),
        "unsubscribe_url": unsubscribe_url,
        "program": {"name": program.name},
    }


def sample_unsubscribe_url() -> str:
    return _absolute(reverse("campaigns:unsubscribe", args=["sample"]))
