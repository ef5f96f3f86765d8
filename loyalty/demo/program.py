"""The program around the demo data: settings, terms, partners, tiers, earning rules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
from django.db import transaction

from members.models import ConsentRecord, Member, TermsAcceptance, TermsVersion

from ..models import (
    Channel,
    EarningRule,
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
from .generate import TIERS


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


def partner_for(channel: np.ndarray, partners: list[Partner]) -> np.ndarray:
    """The partner of each purchase: shop tills, web shop or app by its channel code."""
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
