"""Demo rewards, FAQ and privacy statement, and some redemptions by demo members (once)."""

from __future__ import annotations

import random
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.test.utils import override_settings
from django.utils import timezone
from tqdm import tqdm

from loyalty.errors import ApplicationError
from loyalty.models import Partner, PointsAccount, Tier
from members.models import MemberStatus
from members.services import faq_item_add, privacy_statement_publish
from rewards import services
from rewards.models import Reward
from segmentation.models import RuleSegment

REWARDS = [
    # name nl, name en, kind, points, cost EUR, stock, partner, codes, minimum tier, segment
    (
        "Bioscoopkaartje",
        "Cinema ticket",
        "voucher",
        400,
        "6.50",
        None,
        "Cadeaukaarten BV",
        300,
        None,
        None,
    ),
    ("€ 5 korting", "€ 5 off", "discount", 250, "5.00", None, None, 0, None, None),
    (
        "Koffiebeker van bamboe",
        "Bamboo coffee cup",
        "product",
        600,
        "4.20",
        150,
        "Webshop",
        0,
        None,
        None,
    ),
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
    help = "Create demo rewards, codes, FAQ, privacy statement and redemptions (once)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--redemptions", type=int, default=300)
        parser.add_argument("--seed", type=int, default=42)

    def handle(self, *args, **options) -> None:
        if Reward.objects.exists():
            self.stdout.write("Rewards exist; demo rewards not loaded again.")
            return
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

        rng = random.Random(options["seed"])
        accounts = list(
            PointsAccount.objects.filter(member__status=MemberStatus.ACTIVE, balance__gte=250)
            .select_related("member")
            .order_by("pk")
        )
        made = 0
        # Demo members get no e-mail: their vouchers are in the portal.
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            for account in tqdm(
                rng.sample(accounts, min(len(accounts), options["redemptions"])), desc="redemptions"
            ):
                try:
                    services.reward_redeem(member=account.member, reward=rng.choice(rewards))
                    made += 1
                except ApplicationError:
                    continue
        self.stdout.write(
            f"{len(rewards)} rewards, {len(FAQ)} FAQ items and {made} redemptions created "
            f"({timezone.localdate():%Y-%m-%d})."
        )
