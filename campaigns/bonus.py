"""A campaign's bonus offer through the earning engine (loyalty.earning): extra points on the
purchases a recipient makes within `bonus_days` after their e-mail was sent.

The purchase path asks every bonus provider about every purchase, so the common case (no
bonus offer running) must cost nothing: the campaigns with an offer that can still pay out
are one tuple kept in each process's memory (loyalty/process_cache.py; saving or deleting a
campaign calls `process_cache.changed`, see apps.py). A purchase whose time falls in one of
their windows costs one query on the recipients' (member, sent_at) index; any other purchase,
none.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from django.utils import timezone

from loyalty import process_cache, reasons
from loyalty.earning import Bonus, PurchaseFacts
from loyalty.models import EntrySource
from loyalty.reasons import Reason

from .models import BonusKind, Campaign, CampaignStatus, Recipient, RecipientStatus

# A purchase can reach us late (a till that was offline): an offer stays in the tuple this
# long after its last window closed, so a late purchase made within its window still earns.
LATE_PURCHASES = dt.timedelta(days=30)
# A worker may record a send shortly after the campaign was cancelled or marked finished.
SEND_SLACK = dt.timedelta(hours=1)


@dataclass(frozen=True)
class LiveBonus:
    campaign_id: int
    name: str
    kind: str
    points: int
    multiplier: Decimal
    days: int
    min_amount: Decimal | None
    starts: dt.datetime  # no recipient was sent before
    ends: dt.datetime | None  # no window is open after (None: still sending)

    def covers(self, at: dt.datetime) -> bool:
        return self.starts <= at and (self.ends is None or at < self.ends)

    def takes_late_purchases(self, now: dt.datetime) -> bool:
        """Whether a purchase posted `now` can still earn it (at most LATE_PURCHASES after its
        last window closed): asked at each purchase, so it does not depend on when the tuple
        of offers was last read."""
        return self.ends is None or now <= self.ends + LATE_PURCHASES

    def points_for(self, facts: PurchaseFacts) -> int:
        if self.min_amount is not None and facts.amount < self.min_amount:
            return 0
        if self.kind == BonusKind.FIXED:
            return self.points
        extra = Decimal(facts.points) * (self.multiplier - 1)
        return max(0, int(extra.to_integral_value(rounding=ROUND_FLOOR)))


def _live_bonuses_read(now: dt.datetime) -> tuple[LiveBonus, ...]:
    offers = []
    for campaign in (
        Campaign.objects.exclude(bonus_kind=BonusKind.NONE)
        .filter(started_at__isnull=False)
        .exclude(status__in=[CampaignStatus.DRAFT, CampaignStatus.SCHEDULED])
        .only(
            "pk",
            "name",
            "bonus_kind",
            "bonus_points",
            "bonus_multiplier",
            "bonus_days",
            "bonus_min_amount",
            "started_at",
            "finished_at",
        )
    ):
        window = dt.timedelta(days=campaign.bonus_days)
        ends = (
            campaign.finished_at + SEND_SLACK + window if campaign.finished_at is not None else None
        )
        offer = LiveBonus(
            campaign_id=campaign.pk,
            name=campaign.name,
            kind=campaign.bonus_kind,
            points=campaign.bonus_points or 0,
            multiplier=campaign.bonus_multiplier or Decimal(1),
            days=campaign.bonus_days,
            min_amount=campaign.bonus_min_amount,
            starts=campaign.started_at,
            ends=ends,
        )
        if not offer.takes_late_purchases(now):
            continue
        if offer.points if offer.kind == BonusKind.FIXED else offer.multiplier > 1:
            offers.append(offer)
    return tuple(offers)


def live_bonuses() -> tuple[LiveBonus, ...]:
    """The campaigns whose bonus offer can still pay out (none: the common case). Kept until a
    campaign changes, so an offer can outlive its last window here: `covers` and
    `takes_late_purchases`, asked at each purchase, refuse what it no longer pays for."""
    return process_cache.cached(
        "campaigns:live-bonuses", lambda: _live_bonuses_read(timezone.now())
    )


def campaign_bonuses(facts: PurchaseFacts) -> Iterator[Bonus]:
    """The bonus provider: one bonus per campaign whose e-mail the member was sent at most
    `bonus_days` before the purchase (never the holdout, the skipped or the failed)."""
    now = timezone.now()
    offers = [
        offer
        for offer in live_bonuses()
        if offer.covers(facts.at) and offer.takes_late_purchases(now)
    ]
    if not offers:
        return
    longest = max(offer.days for offer in offers)
    sent = dict(
        Recipient.objects.filter(
            member_id=facts.member_id,
            sent_at__lte=facts.at,
            sent_at__gt=facts.at - dt.timedelta(days=longest),
            status=RecipientStatus.SENT,
            campaign_id__in=[offer.campaign_id for offer in offers],
        ).values_list("campaign_id", "sent_at")
    )
    for offer in offers:
        sent_at = sent.get(offer.campaign_id)
        if sent_at is None or not sent_at <= facts.at < sent_at + dt.timedelta(days=offer.days):
            continue
        points = offer.points_for(facts)
        if points > 0:
            yield Bonus(
                points=points,
                label=offer.name,
                source=EntrySource.CAMPAIGN,
                reference=f"campaign:{offer.campaign_id}",
                reason=Reason(
                    reasons.CAMPAIGN_BONUS,
                    {"campaign": offer.name, "campaign_id": offer.campaign_id},
                ),
            )
