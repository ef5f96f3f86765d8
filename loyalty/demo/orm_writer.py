"""Writer 1: the generated data through Django's bulk_create (any database; the embedded demo)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal

import numpy as np
from django.db import transaction

from members.models import (
    ConsentRecord,
    EnrolmentSource,
    Member,
    MemberStatus,
    TermsAcceptance,
    TermsVersion,
)

from ..models import (
    EntryKind,
    LedgerEntry,
    Partner,
    PointsAccount,
    Purchase,
    PurchaseLine,
    Refund,
    Tier,
)
from .generate import (
    CATEGORIES,
    CHANNELS,
    FIRST_NAMES,
    KIND_CODES,
    LAST_NAMES,
    PG_EPOCH,
    REASON_KEY_BY_KIND,
    SOURCE_BY_KIND,
    STORES,
    DemoData,
    from_us,
    reason_templates,
    redemption_reasons,
)
from .program import partner_for, terms_acceptances, terms_in_force


def write_orm(
    data: DemoData,
    *,
    partners: list[Partner],
    tiers: list[Tier],
    terms: list[TermsVersion],
    batch: int = 5000,
    progress: Callable[[str, int], None] | None = None,
) -> None:
    tick = progress or (lambda stage, done: None)
    m, p = data.member, data.purchase
    in_force = terms_in_force(terms, m["enrolled_us"]) if terms else None
    breakdowns = data.breakdowns()
    with transaction.atomic():
        members = Member.objects.bulk_create(
            [
                Member(
                    member_number=str(m["number"][i]),
                    email=_email(m, i, data.first_member),
                    first_name=FIRST_NAMES[m["first_name"][i]],
                    last_name=LAST_NAMES[m["last_name"][i]],
                    birth_date=PG_EPOCH.date() + dt.timedelta(days=int(m["birth_days"][i])),
                    language=m["language"][i],
                    status=m["status"][i],
                    enrolled_at=(
                        from_us(int(m["enrolled_us"][i]))
                        if m["status"][i] == MemberStatus.ACTIVE
                        else None
                    ),
                    enrolment_source=EnrolmentSource.INVITATION
                    if m["status"][i] == MemberStatus.INVITED
                    else EnrolmentSource.PORTAL,
                    created_at=from_us(int(m["enrolled_us"][i])),
                )
                for i in range(data.member_count)
            ],
            batch_size=batch,
        )
        member_pk = np.array([member.pk for member in members])
        tick("members", data.first_member + data.member_count)
        ConsentRecord.objects.bulk_create(
            [
                ConsentRecord(
                    member_id=member_pk[i],
                    channel="email",
                    granted=bool(m["consent"][i]),
                    source="enrolment:demo",
                    terms_version=terms[in_force[i]] if terms else None,
                    recorded_at=from_us(int(m["enrolled_us"][i])),
                )
                for i in range(data.member_count)
                if m["status"][i] != MemberStatus.INVITED
            ],
            batch_size=batch,
        )
        if terms:
            accepted_by, accepted, accepted_at = terms_acceptances(
                terms,
                enrolled_us=m["enrolled_us"],
                accepting=m["status"] != MemberStatus.INVITED,
                purchase_owner=p["owner"],
                purchase_at=p["at"],
            )
            TermsAcceptance.objects.bulk_create(
                [
                    TermsAcceptance(
                        member_id=member_pk[member],
                        terms_version=terms[version],
                        accepted_at=from_us(int(at)),
                    )
                    for member, version, at in zip(accepted_by, accepted, accepted_at, strict=True)
                ],
                batch_size=batch,
            )
        partner_pk = partner_for(p["channel"], partners)
        purchases = Purchase.objects.bulk_create(
            [
                Purchase(
                    partner_id=partner_pk[i],
                    external_id=f"D{data.first_purchase + i + 1:09d}",
                    member_id=member_pk[p["owner"][i]],
                    amount=_euros(p["cents"][i]),
                    purchased_at=from_us(int(p["at"][i])),
                    channel=CHANNELS[p["channel"][i]],
                    store=STORES[p["store"][i]] if p["store"][i] >= 0 else "",
                    points_earned=int(p["points"][i]),
                    refunded_amount=_euros(p["refund_cents"][i]),
                    points_reversed=int(p["reversed"][i]),
                    earning_breakdown=json.loads(breakdowns[i]),
                    created_at=from_us(int(p["at"][i])),
                )
                for i in range(len(p["owner"]))
            ],
            batch_size=batch,
        )
        purchase_pk = np.array([purchase.pk for purchase in purchases])
        tick("purchases", data.first_purchase + len(purchases))
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
                    external_id=f"R{data.first_purchase + i + 1:09d}",
                    amount=_euros(p["refund_cents"][i]),
                    points_reversed=int(p["reversed"][i]),
                    created_at=from_us(int(p["refund_at"][i])),
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
                    tier_since=from_us(int(a["tier_since"][i])) if a["tier"][i] >= 0 else None,
                    # The base tier (index 0) is never lost, so it has no grace period.
                    tier_kept_until=from_us(int(a["tier_since"][i])) + grace
                    if a["tier"][i] > 0
                    else None,
                )
                for i in np.flatnonzero(a["has"])
            ],
            batch_size=batch,
        )
        account_pk = np.zeros(data.member_count, dtype=np.int64)
        account_pk[np.flatnonzero(a["has"])] = [account.pk for account in accounts]
        led = data.ledger
        templates = reason_templates()
        reasons = np.array([templates[kind] for kind in led["kind"]], dtype=object)
        params = np.full(len(reasons), None, dtype=object)
        redeemed = led["kind"] == KIND_CODES.index(EntryKind.REDEEM)
        reasons[redeemed], redemption_params = redemption_reasons(led["points"][redeemed])
        params[redeemed] = [json.loads(text) for text in redemption_params]
        LedgerEntry.objects.bulk_create(
            [
                _entry(
                    led,
                    i,
                    account_pk,
                    purchase_pk,
                    refund_pk,
                    reasons[i],
                    params[i],
                    first_purchase=data.first_purchase,
                )
                for i in range(len(led["owner"]))
            ],
            batch_size=batch,
        )
        tick("ledger", len(led["owner"]))


def _entry(
    led, i, account_pk, purchase_pk, refund_pk, reason: str, params, *, first_purchase: int = 0
) -> LedgerEntry:
    kind = int(led["kind"][i])
    purchase_index = int(led["purchase"][i])
    external = f"D{first_purchase + purchase_index + 1:09d}" if purchase_index >= 0 else ""
    return LedgerEntry(
        account_id=account_pk[led["owner"][i]],
        kind=KIND_CODES[kind],
        points=int(led["points"][i]),
        balance_after=int(led["balance_after"][i]),
        reason=reason.format(id=external) if "{id}" in reason else reason,
        reason_key=REASON_KEY_BY_KIND[kind],
        reason_params={"id": external} if external else params,
        source=SOURCE_BY_KIND[kind],
        purchase_id=purchase_pk[purchase_index] if purchase_index >= 0 else None,
        refund_id=refund_pk.get(purchase_index) if kind == 5 else None,
        created_at=from_us(int(led["at"][i])),
        expires_at=from_us(int(led["expires"][i])) if led["expires"][i] >= 0 else None,
        remaining_points=int(led["remaining"][i]),
        expired_points=int(led["expired"][i]),
    )


def _email(m: dict, i: int, first_member: int = 0) -> str:
    first = FIRST_NAMES[m["first_name"][i]].lower()
    last = LAST_NAMES[m["last_name"][i]].lower().replace(" ", "")
    return f"{first}.{last}.{first_member + i + 1}@example.nl"


def _euros(cents) -> Decimal:
    return Decimal(int(cents)).scaleb(-2)
