"""Purchases and refunds: checked where they enter, recorded once per (partner, id), earning
points through the ledger; and what a purchase would earn (the admin's dry run).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.db.models import DecimalField, Model, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from members.errors import MemberNotActive
from members.models import Member, MemberStatus, User

from ..earning import EarningBreakdown, LineInput, earning_calculate
from ..errors import (
    DuplicatePurchaseConflict,
    InvalidAmount,
    InvalidPurchaseLines,
    PartnerInactive,
    RefundTooLarge,
    ValidationFailed,
    checked_text,
)
from ..models import (
    Channel,
    EntryKind,
    EntrySource,
    LedgerEntry,
    Partner,
    PointsAccount,
    ProgramSettings,
    Purchase,
    PurchaseLine,
    Refund,
    Tier,
)
from .ledger import (
    _credit,
    _debit,
    _ensure_points_fit,
    _expire_due_lots,
    _in_member_language,
    account_lock,
)
from .tiers import tier_recalculate

EARNING_STATUSES = (MemberStatus.ACTIVE, MemberStatus.PENDING)

CENT = Decimal("0.01")


def _decimal_max(model: type[Model], name: str) -> Decimal:
    """The largest value a DecimalField's column holds, e.g. 9999999999.99 for (12, 2)."""
    field = model._meta.get_field(name)
    assert isinstance(field, DecimalField)
    return Decimal(10) ** (field.max_digits - field.decimal_places) - Decimal(10) ** (
        -field.decimal_places
    )


AMOUNT_MAX = _decimal_max(Purchase, "amount")
QUANTITY_MAX = _decimal_max(PurchaseLine, "quantity")
QUANTITY_PLACES = PurchaseLine._meta.get_field("quantity").decimal_places


# Read from the columns, so that a service check and the column cannot drift apart.


def money(value: Decimal | str | int | float) -> Decimal:
    """A positive euro amount with at most two decimals, or InvalidAmount."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise InvalidAmount(_("Enter an amount in euros, like 12.50.")) from exc
    if not amount.is_finite() or amount <= 0:
        raise InvalidAmount()
    if amount != amount.quantize(CENT):
        raise InvalidAmount(_("An amount has at most two decimals (cents)."))
    if amount > AMOUNT_MAX:
        raise InvalidAmount(
            _("An amount can be at most %(max)s EUR.") % {"max": AMOUNT_MAX}, max=str(AMOUNT_MAX)
        )
    return amount


@dataclass(frozen=True)
class PurchaseResult:
    purchase: Purchase
    created: bool
    # The member's balance and tier right after a new purchase (None for a replay), so that a
    # caller answering a till need not read the account again.
    balance: int | None = None
    tier: str | None = None


def _quantity(value: object) -> Decimal:
    """A line's quantity: more than zero and within the column (default 1)."""
    if value is None or value == "":
        return Decimal(1)
    try:
        if isinstance(value, bool):
            raise TypeError
        quantity = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        quantity = Decimal(0)
    step = Decimal(10) ** -QUANTITY_PLACES
    if not quantity.is_finite() or not 0 < quantity <= QUANTITY_MAX or quantity % step:
        raise ValidationFailed(
            _("The quantity must be above 0 and at most %(max)s, with %(places)d decimals at most.")
            % {"max": QUANTITY_MAX, "places": QUANTITY_PLACES},
            field="quantity",
            max=str(QUANTITY_MAX),
        )
    return quantity


def _line_checked(line: object) -> dict:
    if not isinstance(line, Mapping) or line.get("amount") in (None, ""):
        raise InvalidPurchaseLines(_("Every line needs an amount."), field="amount")
    return {
        "amount": money(line["amount"]),
        **{
            name: checked_text(line.get(name), model=PurchaseLine, name=name)
            for name in ("category", "product_code", "description")
        },
        "quantity": _quantity(line.get("quantity")),
    }


def _lines_checked(lines: Sequence[Mapping], amount: Decimal) -> list[dict]:
    """The purchase lines as they will be stored, every field checked against its column.

    An error names the line's field as `lines[<index>].<name>` (index from 0) and the line
    by its number (from 1) in the message.
    """
    if not isinstance(lines, list | tuple):
        raise InvalidPurchaseLines(_("The lines must be a list."))
    checked = []
    for index, line in enumerate(lines):
        try:
            checked.append(_line_checked(line))
        except ValidationFailed as exc:
            raise type(exc)(
                _("Line %(number)d: %(problem)s") % {"number": index + 1, "problem": exc.message},
                field=f"lines[{index}].{exc.field}",
                **exc.extra,
            ) from exc
    if checked and sum(line["amount"] for line in checked) != amount:
        raise InvalidPurchaseLines()
    return checked


def _checked_channel(channel: str) -> str:
    if channel not in Channel.values:
        raise ValidationFailed(
            _("Unknown channel %(channel)s; use one of %(choices)s.")
            % {"channel": channel, "choices": ", ".join(Channel.values)},
            field="channel",
            choices=list(Channel.values),
        )
    return channel


def _same_purchase(existing: Purchase, *, member: Member, amount: Decimal) -> PurchaseResult:
    if existing.member_id != member.pk or existing.amount != amount:
        raise DuplicatePurchaseConflict(purchase_id=existing.pk)
    return PurchaseResult(purchase=existing, created=False)


def purchase_record(
    *,
    partner: Partner,
    external_id: str,
    member: Member,
    amount: Decimal | str,
    purchased_at: dt.datetime | None = None,
    channel: str = "store",
    store: str = "",
    lines: Sequence[dict] = (),
) -> PurchaseResult:
    """Record a partner's purchase and earn its points, exactly once per (partner, id).

    Posting the same purchase again returns the first result (created=False); the same id
    with a different member or amount is a conflict. The unique constraint, not a prior
    read, is what makes concurrent duplicates safe.
    """
    amount = money(amount)
    external_id = checked_text(external_id, model=Purchase, name="external_id")
    if not external_id:
        raise ValidationFailed(_("The purchase needs the partner's id."), field="external_id")
    channel = _checked_channel(channel)
    store = checked_text(store, model=Purchase, name="store")
    if not partner.is_active:
        raise PartnerInactive()
    checked_lines = _lines_checked(lines, amount)
    line_inputs = [
        LineInput(amount=line["amount"], category=line["category"]) for line in checked_lines
    ]
    purchased_at = purchased_at or timezone.now()
    if timezone.is_naive(purchased_at):
        raise ValidationFailed(_("The purchase time needs a time zone."), field="purchased_at")
    if purchased_at > timezone.now() + dt.timedelta(minutes=5):
        raise ValidationFailed(_("The purchase time is in the future."), field="purchased_at")

    existing = Purchase.objects.filter(partner=partner, external_id=external_id).first()
    if existing is not None:
        return _same_purchase(existing, member=member, amount=amount)
    if member.status not in EARNING_STATUSES:
        raise MemberNotActive()
    try:
        with transaction.atomic():
            # The account first (its tier decides the points), then the purchase is written
            # once with them: no second UPDATE of the new row.
            account = account_lock(member=member)
            program = ProgramSettings.load()
            breakdown = earning_calculate(
                amount=amount,
                channel=channel,
                at=purchased_at,
                tier=account.tier,
                lines=line_inputs,
                program=program,
                member_id=member.pk,
            )
            _ensure_points_fit(account, breakdown.points + breakdown.bonus_points)
            purchase = Purchase.objects.create(
                partner=partner,
                external_id=external_id,
                member=member,
                amount=amount,
                purchased_at=purchased_at,
                channel=channel,
                store=store,
                points_earned=breakdown.points,
                earning_breakdown=breakdown.as_dict(),
            )
            if checked_lines:
                PurchaseLine.objects.bulk_create(
                    PurchaseLine(purchase=purchase, **line) for line in checked_lines
                )
            _credit_earnings(
                account=account,
                purchase=purchase,
                member=member,
                breakdown=breakdown,
                program=program,
            )
    except IntegrityError:
        # A concurrent post of the same purchase committed first: answer with its result.
        existing = Purchase.objects.filter(partner=partner, external_id=external_id).first()
        if existing is None:
            raise
        return _same_purchase(existing, member=member, amount=amount)
    return PurchaseResult(
        purchase=purchase,
        created=True,
        balance=account.balance,
        tier=account.tier.name if account.tier else None,
    )


def _credit_earnings(
    *,
    account: PointsAccount,
    purchase: Purchase,
    member: Member,
    breakdown: EarningBreakdown,
    program: ProgramSettings,
) -> None:
    """The purchase's points as one lot, each bonus as its own; then a tier upgrade if due."""
    if breakdown.points > 0:
        _credit(
            account=account,
            points=breakdown.points,
            kind=EntryKind.EARN,
            reason=_in_member_language(
                member.pk,
                gettext_noop("Purchase %(id)s"),
                language=member.language,
                id=purchase.external_id,
            ),
            source=EntrySource.PURCHASE,
            purchase=purchase,
            program=program,
        )
    for bonus in breakdown.bonuses:
        _credit(
            account=account,
            points=bonus.points,
            kind=EntryKind.BONUS,
            reason=checked_text(bonus.label, model=LedgerEntry, name="reason"),
            source=bonus.source,
            purchase=purchase,
            program=program,
        )
    tier_recalculate(account=account, allow_downgrade=False, program=program)


@transaction.atomic
def purchase_refund(
    *,
    purchase: Purchase,
    amount: Decimal | str,
    external_id: str = "",
    created_by: User | None = None,
) -> Refund:
    """Refund part or all of a purchase and reverse its points proportionally, never more.

    Whatever is due to expire is expired first. Points of this purchase that expired are not
    there to take back: they count towards the reversal (`points_expired`) and are never taken
    from other, still valid lots. Points already spent cannot be taken back below a zero
    balance: the part that could not be recovered is recorded (`points_not_recovered`).
    """
    amount = money(amount)
    external_id = checked_text(external_id, model=Refund, name="external_id")
    purchase = Purchase.objects.select_for_update().get(pk=purchase.pk)
    if external_id:
        previous = Refund.objects.filter(purchase=purchase, external_id=external_id).first()
        if previous is not None:
            if previous.amount != amount:
                raise DuplicatePurchaseConflict(
                    _("This refund id was already used with another amount.")
                )
            return previous
    left = purchase.amount - purchase.refunded_amount
    if amount > left:
        raise RefundTooLarge(
            _("At most %(left)s EUR of this purchase can still be refunded.") % {"left": left},
            refundable=str(left),
        )
    refunded = purchase.refunded_amount + amount
    if refunded == purchase.amount:
        reversed_target = purchase.points_earned
    else:
        reversed_target = int(
            (Decimal(purchase.points_earned) * refunded / purchase.amount).to_integral_value(
                rounding=ROUND_FLOOR
            )
        )
    to_reverse = reversed_target - purchase.points_reversed

    account = account_lock(member=purchase.member)
    _expire_due_lots(account=account, now=timezone.now())
    earn_lot = purchase.ledger_entries.filter(kind=EntryKind.EARN).first()
    expired_unclaimed = (earn_lot.expired_points if earn_lot else 0) - (
        purchase.refunds.aggregate(total=Coalesce(Sum("points_expired"), 0))["total"]
    )
    already_expired = max(0, min(to_reverse, expired_unclaimed))
    recoverable = min(to_reverse - already_expired, account.balance)
    refund = Refund.objects.create(
        purchase=purchase,
        external_id=external_id,
        amount=amount,
        points_reversed=recoverable,
        points_expired=already_expired,
        points_not_recovered=to_reverse - already_expired - recoverable,
        created_by=created_by,
    )
    if recoverable > 0:
        _debit(
            account=account,
            points=recoverable,
            kind=EntryKind.REVERSAL,
            reason=_in_member_language(
                purchase.member_id,
                gettext_noop("Refund of purchase %(id)s"),
                id=purchase.external_id,
            ),
            source=EntrySource.REFUND,
            purchase=purchase,
            refund=refund,
            created_by=created_by,
            prefer_lot=earn_lot,
        )
    purchase.refunded_amount = refunded
    purchase.points_reversed = reversed_target
    purchase.save(update_fields=["refunded_amount", "points_reversed"])
    return refund


def earning_preview(
    *,
    amount: Decimal | str,
    channel: str,
    tier: Tier | None = None,
    at: dt.datetime | None = None,
    lines: Sequence[Mapping] = (),
) -> EarningBreakdown:
    """The points a purchase would earn under the current rules, with the reasoning; writes
    nothing. The amount and lines are checked as `purchase_record` checks them."""
    amount = money(amount)
    checked_lines = _lines_checked(lines, amount)
    return earning_calculate(
        amount=amount,
        channel=_checked_channel(channel),
        at=at or timezone.now(),
        tier=tier,
        lines=[
            LineInput(amount=line["amount"], category=line["category"]) for line in checked_lines
        ],
    )
