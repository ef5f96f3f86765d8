"""Demo rewards, FAQ and privacy statement, and the Redemption of every redemption in the
demo's points history (once). The history (who redeemed how many points when) is the demo
generator's (loyalty.demo); this command adds what only rewards knows: which reward, its code,
whether it was used or delivered."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from loyalty.demo import REDEMPTION_MENU
from loyalty.models import EntryKind, EntrySource, LedgerEntry, Partner, Tier
from members.services import faq_item_add, privacy_statement_publish
from rewards import services
from rewards.models import (
    CodeStatus,
    Redemption,
    RedemptionStatus,
    Reward,
    RewardKind,
    VoucherCode,
)
from segmentation.models import RuleSegment

# The everyday rewards are the menu the demo history's redemptions are of (loyalty.demo).
(CASH_COST, CASH_NL, CASH_EN), (CINEMA_COST, CINEMA_NL, CINEMA_EN), (CUP_COST, CUP_NL, CUP_EN) = (
    REDEMPTION_MENU
)
REWARDS = [
    # name nl, name en, kind, points, cost EUR, stock, partner, codes, minimum tier, segment
    (
        CINEMA_NL,
        CINEMA_EN,
        "voucher",
        CINEMA_COST,
        "6.50",
        None,
        "Cadeaukaarten BV",
        300,
        None,
        None,
    ),
    (CASH_NL, CASH_EN, "discount", CASH_COST, "5.00", None, None, 0, None, None),
    (CUP_NL, CUP_EN, "product", CUP_COST, "4.20", 150, "Webshop", 0, None, None),
    ("Weekendje weg", "Weekend away", "product", 6000, "180.00", 10, None, 0, "Gold", None),
    (
        "Vroege toegang tot de sale",
        "Early access to the sale",
        "voucher",
        150,
        "0.50",
        None,
        "Webshop",
        200,
        None,
        "Champions with e-mail consent",
    ),
]
USED_SHARE = 0.7  # of the vouchers and discount codes handed out, used at the till
FULFILMENT_DAYS = (2, 7)  # a product reward is delivered this many days after it was asked

FAQ = [
    (
        "Hoe spaar ik punten?",
        "How do I collect points?",
        "Bij elke aankoop in de winkel, de webshop of de app. Laat je ledenpas scannen of log in.",
        "With every purchase in the shop, the webshop or the app. Have your member card scanned or log in.",
    ),
    (
        "Wanneer vervallen mijn punten?",
        "When do my points expire?",
        "Punten vervallen na de termijn in de programmavoorwaarden; de oudste punten vervallen eerst.",
        "Points expire after the period in the program terms; the oldest points expire first.",
    ),
    (
        "Hoe wissel ik een beloning in?",
        "How do I redeem a reward?",
        "Kies een beloning bij Beloningen, bevestig, en je krijgt je code direct en per e-mail.",
        "Choose a reward under Rewards, confirm, and you get your code at once and by e-mail.",
    ),
    (
        "Hoe verwijder ik mijn account?",
        "How do I delete my account?",
        "Bij Mijn account > Mijn account verwijderen, met je wachtwoord.",
        "Under My account > Delete my account, with your password.",
    ),
]


class Command(BaseCommand):
    help = "Create demo rewards, codes, FAQ, privacy statement and the redemption history (once)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--seed", type=int, default=42)

    def handle(self, *args, **options) -> None:
        if Reward.objects.exists():
            self.stdout.write("Rewards exist; demo rewards not loaded again.")
            return
        with transaction.atomic():
            rewards = self._catalogue()
            made = redemption_history(
                rewards={reward.points_cost: reward for reward in rewards[:3]},
                rng=np.random.default_rng(options["seed"]),
                now=timezone.now(),
            )
        self.stdout.write(
            f"{len(rewards)} rewards, {len(FAQ)} FAQ items and {made:,} redemptions of the "
            "demo history created."
        )

    def _catalogue(self) -> list[Reward]:
        for question_nl, question_en, answer_nl, answer_en in FAQ:
            faq_item_add(
                question_nl=question_nl,
                question_en=question_en,
                answer_nl=answer_nl,
                answer_en=answer_en,
            )
        privacy_statement_publish(
            version="2026.1",
            body_nl="Wij gebruiken je gegevens alleen voor het spaarprogramma. Je kunt ze "
            "altijd downloaden of laten wissen via Mijn account.",
            body_en="We use your data only for the loyalty program. You can download or "
            "erase it at any time under My account.",
        )
        rewards = []
        for name_nl, name_en, kind, points, cost, stock, partner, count, tier, segment in REWARDS:
            reward = Reward.objects.create(
                name_nl=name_nl,
                name_en=name_en,
                description_nl=f"{name_nl} voor {points} punten.",
                description_en=f"{name_en} for {points} points.",
                kind=kind,
                points_cost=points,
                cost_eur=Decimal(cost),
                stock=stock,
                partner=Partner.objects.filter(name=partner).first() if partner else None,
                minimum_tier=Tier.objects.filter(name=tier).first() if tier else None,
            )
            if segment and RuleSegment.objects.filter(name=segment).exists():
                reward.segments.add(RuleSegment.objects.get(name=segment))
            if count:
                services.codes_generate(reward=reward, count=count)
            rewards.append(reward)
        return rewards


def redemption_history(*, rewards: dict[int, Reward], rng: np.random.Generator, now) -> int:
    """A Redemption for every redemption entry of the demo ledger that has none: the menu's
    reward of that cost, redeemed when the entry was written, its code handed out then and
    used at the till (or still open), products delivered. Returns how many were made."""
    entries = list(
        LedgerEntry.objects.filter(kind=EntryKind.REDEEM, source=EntrySource.REDEMPTION)
        .exclude(
            pk__in=Redemption.objects.filter(ledger_entry__isnull=False).values("ledger_entry")
        )
        .order_by("created_at", "pk")
        .values_list("pk", "account__member_id", "points", "created_at")
    )
    unknown = {-points for _pk, _member, points, _at in entries} - set(rewards)
    if unknown:
        raise CommandError(f"No demo reward costs {sorted(unknown)} points.")
    by_reward: dict[int, list[tuple]] = {}
    for entry in entries:
        by_reward.setdefault(rewards[-entry[2]].pk, []).append(entry)
    made = 0
    for reward in rewards.values():
        history = by_reward.get(reward.pk, [])
        if not history:
            continue
        codes = _codes_for(reward, len(history)) if reward.kind != RewardKind.PRODUCT else []
        valid = dt.timedelta(days=reward.voucher_valid_days)
        used = rng.random(len(history)) < USED_SHARE
        after = rng.uniform(0, 1, len(history))
        redemptions = []
        for index, (entry_pk, member_id, points, at) in enumerate(history):
            voucher = codes[index] if codes else None
            if reward.kind == RewardKind.PRODUCT:
                delivered = at + dt.timedelta(
                    days=FULFILMENT_DAYS[0] + float(after[index]) * (FULFILMENT_DAYS[1] - 2)
                )
                done = delivered <= now
                status = RedemptionStatus.FULFILLED if done else RedemptionStatus.REQUESTED
                changed_at = delivered if done else None
            else:
                used_at = at + min(valid, now - at) * float(after[index])
                status = RedemptionStatus.USED if used[index] else RedemptionStatus.ISSUED
                changed_at = used_at if used[index] else None
                voucher.status = CodeStatus.USED if used[index] else CodeStatus.ISSUED
                voucher.used_at = changed_at
            redemptions.append(
                Redemption(
                    member_id=member_id,
                    reward=reward,
                    points=-points,
                    status=status,
                    voucher=voucher,
                    code=voucher.code if voucher else "",
                    ledger_entry_id=entry_pk,
                    valid_until=at + valid if reward.kind != RewardKind.PRODUCT else None,
                    created_at=at,
                    changed_at=changed_at,
                )
            )
        if codes:
            VoucherCode.objects.bulk_update(codes, ["status", "used_at"], batch_size=2000)
        Redemption.objects.bulk_create(redemptions, batch_size=5000)
        made += len(redemptions)
    return made


def _codes_for(reward: Reward, count: int) -> list[VoucherCode]:
    """`count` codes of the reward's pool to hand out: new ones, before the pool's own."""
    first_new = VoucherCode.objects.filter(reward=reward).order_by("-pk").values("pk").first()
    for begin in range(0, count, services.MAX_CODES_PER_CALL):
        services.codes_generate(
            reward=reward, count=min(services.MAX_CODES_PER_CALL, count - begin)
        )
    new = VoucherCode.objects.filter(reward=reward)
    if first_new:
        new = new.filter(pk__gt=first_new["pk"])
    return list(new.order_by("pk")[:count])
