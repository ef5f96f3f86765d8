"""The program around the demo data: settings, terms, partners, tiers, earning rules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
from django.db import transaction

from members.models import ConsentRecord, Member, TermsAcceptance, TermsVersion

from ..models import (
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
from .generate import DURABLE_RULE, TIERS, WEBSHOP_RULE, WEBSHOP_RULE_DAYS

PROGRAM_AGE_DAYS = 1200  # the program started this long before the demo's "now"
TERMS_REVISED_ON = (1, 15)  # month and day the terms are revised every year after the start


def terms_setup(now: dt.datetime) -> list[TermsVersion]:
    """The terms as published over the program's life, oldest first: version "<year>.1"
    at the start and then in the middle of January of each year up to now."""
    started = now - dt.timedelta(days=PROGRAM_AGE_DAYS)
    dates = [started] + [
        dt.datetime(year, *TERMS_REVISED_ON, 9, tzinfo=dt.UTC)
        for year in range(started.year + 1, now.year + 1)
        if dt.datetime(year, *TERMS_REVISED_ON, 9, tzinfo=dt.UTC) <= now
    ]
    versions = []
    for published_at in dates:
        version, _created = TermsVersion.objects.get_or_create(
            version=f"{published_at.year}.1",
            defaults={
                "published_at": published_at,
                "body_nl": "Algemene voorwaarden van Klantenclub Demo.\n\nJe spaart punten bij "
                "elke aankoop. Punten vervallen 24 maanden nadat je ze hebt gespaard.",
                "body_en": "Terms and conditions of Klantenclub Demo.\n\nYou collect points "
                "with every purchase. Points expire 24 months after you earned them.",
            },
        )
        versions.append(version)
    return sorted(versions, key=lambda version: version.published_at)


def terms_in_force(terms: list[TermsVersion], at_us: np.ndarray) -> np.ndarray:
    """Per moment (microseconds since 1970) the index of the version then in force: the last
    one published at or before it (the first for moments before the program started)."""
    published = np.array([int(version.published_at.timestamp() * 1_000_000) for version in terms])
    return np.maximum(np.searchsorted(published, at_us, side="right") - 1, 0)


def terms_acceptances(
    terms: list[TermsVersion],
    *,
    enrolled_us: np.ndarray,
    accepting: np.ndarray,
    purchase_owner: np.ndarray,
    purchase_at: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Who accepted which version when: the `accepting` members the version in force when
    they enrolled, and those still buying after the latest revision that one too, at their
    first purchase after it (the portal asks before anything else). Returns member indexes,
    version indexes and moments, one row per acceptance."""
    at_enrolment = terms_in_force(terms, enrolled_us)
    members = np.flatnonzero(accepting)
    rows = [(members, at_enrolment[members], enrolled_us[members])]
    latest = len(terms) - 1
    published = int(terms[latest].published_at.timestamp() * 1_000_000)
    after = np.flatnonzero(purchase_at >= published)
    # Purchases are sorted by member, then time: the first of each member is the earliest.
    buyers, first = np.unique(purchase_owner[after], return_index=True)
    renewing = accepting[buyers] & (at_enrolment[buyers] != latest)
    rows.append(
        (
            buyers[renewing],
            np.full(int(renewing.sum()), latest),
            purchase_at[after][first][renewing],
        )
    )
    return tuple(np.concatenate(column) for column in zip(*rows, strict=True))


def program_setup(
    now: dt.datetime,
) -> tuple[ProgramSettings, list[Partner], list[Tier], list[TermsVersion]]:
    """Program settings, terms, partners, tiers and earning rules of the demo program."""
    program = ProgramSettings.load()
    program.name = "Klantenclub Demo"
    program.points_name = "punten"
    program.points_name_en = "points"
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
    terms = terms_setup(now)
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
    name, multiplier, category, priority = DURABLE_RULE
    EarningRule.objects.get_or_create(
        name=name,
        defaults={"multiplier": multiplier, "product_category": category, "priority": priority},
    )
    name, multiplier, channel, priority = WEBSHOP_RULE
    EarningRule.objects.get_or_create(
        name=name,
        defaults={
            "multiplier": multiplier,
            "channel": channel,
            "priority": priority,
            "valid_from": now - dt.timedelta(days=WEBSHOP_RULE_DAYS[0]),
            "valid_until": now + dt.timedelta(days=WEBSHOP_RULE_DAYS[1]),
        },
    )
    return program, partners, tiers, terms


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
