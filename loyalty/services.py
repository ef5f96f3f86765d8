"""Writes of the program core: purchases, refunds, the points ledger, expiry and tiers.

Every change of points goes through `_credit` or `_debit`, which run with the member's
PointsAccount row locked, append the ledger entry and update the cached balance in the
same transaction. Lock order everywhere: purchase row, then account row, then lots.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, InvalidOperation

from dateutil.relativedelta import relativedelta
from django.db import IntegrityError, transaction
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.models import DecimalField, F, Model, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from members.errors import MemberNotActive
from members.models import Member, MemberStatus, User

from .earning import LineInput, earning_calculate
from .errors import (
    DuplicatePurchaseConflict,
    InsufficientPoints,
    InvalidAmount,
    InvalidPoints,
    InvalidPurchaseLines,
    PartnerInactive,
    ReasonRequired,
    RefundTooLarge,
    ValidationFailed,
    checked_text,
)
from .models import (
    Channel,
    ConsistencyCheck,
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
    TierBasis,
    TierChange,
)

logger = logging.getLogger(__name__)

EARNING_STATUSES = (MemberStatus.ACTIVE, MemberStatus.PENDING)
CENT = Decimal("0.01")


def _decimal_max(model: type[Model], name: str) -> Decimal:
    """The largest value a DecimalField's column holds, e.g. 9999999999.99 for (12, 2)."""
    field = model._meta.get_field(name)
    assert isinstance(field, DecimalField)
    return Decimal(10) ** (field.max_digits - field.decimal_places) - Decimal(10) ** (
        -field.decimal_places
    )


# Read from the columns, so that a service check and the column cannot drift apart.
AMOUNT_MAX = _decimal_max(Purchase, "amount")
QUANTITY_MAX = _decimal_max(PurchaseLine, "quantity")
QUANTITY_PLACES = PurchaseLine._meta.get_field("quantity").decimal_places
# Points, balances and points_earned are IntegerFields: 32 bits on PostgreSQL.
POINTS_MAX = BaseDatabaseOperations.integer_field_ranges["IntegerField"][1]


# --- amounts -------------------------------------------------------------------------------


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


def _checked_reason(reason: str) -> str:
    """A ledger reason: required, stripped, and within the column."""
    if not isinstance(reason, str) or not reason.strip():
        raise ReasonRequired()
    return checked_text(reason, model=LedgerEntry, name="reason")


def _in_member_language(member_id: int, message: str, **params: object) -> str:
    """A ledger reason written in the member's language: the portal shows it as stored."""
    language = Member.objects.filter(pk=member_id).values_list("language", flat=True).first()
    with translation.override(language or None):
        text = _(message)
    return text % params if params else text


# --- the ledger ----------------------------------------------------------------------------


def account_lock(*, member: Member) -> PointsAccount:
    """The member's account row, locked for this transaction (created on first use)."""
    account = PointsAccount.objects.select_for_update().filter(member=member).first()
    if account is None:
        try:
            with transaction.atomic():
                PointsAccount.objects.create(member=member)
        except IntegrityError:
            pass  # created concurrently; lock the winner's row below
        account = PointsAccount.objects.select_for_update().get(member=member)
    return account


def _expiry_for(at: dt.datetime, program: ProgramSettings) -> dt.datetime | None:
    if not program.points_expiry_months:
        return None
    return at + relativedelta(months=program.points_expiry_months)


def _ensure_points_fit(account: PointsAccount, points: int) -> None:
    """Refuse a credit the integer columns cannot hold (rather than a database error)."""
    if points > POINTS_MAX or account.balance + points > POINTS_MAX:
        raise InvalidPoints(
            _("An account can hold at most %(max)d points.") % {"max": POINTS_MAX},
            max=POINTS_MAX,
        )


def _credit(
    *,
    account: PointsAccount,
    points: int,
    kind: str,
    reason: str,
    source: str,
    purchase: Purchase | None = None,
    refund: Refund | None = None,
    created_by: User | None = None,
    at: dt.datetime | None = None,
) -> LedgerEntry:
    at = at or timezone.now()
    _ensure_points_fit(account, points)
    account.balance += points
    PointsAccount.objects.filter(pk=account.pk).update(
        balance=F("balance") + points, updated_at=timezone.now()
    )
    return LedgerEntry.objects.create(
        account=account,
        kind=kind,
        points=points,
        balance_after=account.balance,
        reason=reason,
        source=source,
        purchase=purchase,
        refund=refund,
        created_by=created_by,
        created_at=at,
        expires_at=_expiry_for(at, ProgramSettings.load()),
        remaining_points=points,
    )


def _expire_due_lots(*, account: PointsAccount, now: dt.datetime) -> LedgerEntry | None:
    lots = list(
        LedgerEntry.objects.select_for_update()
        .filter(account=account, remaining_points__gt=0, expires_at__lte=now)
        .order_by("pk")
    )
    expired = sum(lot.remaining_points for lot in lots)
    if not expired:
        return None
    LedgerEntry.objects.filter(pk__in=[lot.pk for lot in lots]).update(
        expired_points=F("expired_points") + F("remaining_points"), remaining_points=0
    )
    account.balance -= expired
    PointsAccount.objects.filter(pk=account.pk).update(
        balance=F("balance") - expired, updated_at=timezone.now()
    )
    return LedgerEntry.objects.create(
        account=account,
        kind=EntryKind.EXPIRE,
        points=-expired,
        balance_after=account.balance,
        reason=_in_member_language(account.member_id, gettext_noop("Points expired")),
        source=EntrySource.SYSTEM,
        created_at=now,
    )


def _debit(
    *,
    account: PointsAccount,
    points: int,
    kind: str,
    reason: str,
    source: str,
    purchase: Purchase | None = None,
    refund: Refund | None = None,
    created_by: User | None = None,
    prefer_lot: LedgerEntry | None = None,
) -> LedgerEntry:
    """Take points from the oldest lots first (a preferred lot before them), never below 0."""
    now = timezone.now()
    _expire_due_lots(account=account, now=now)  # expired points cannot be spent
    if points > account.balance:
        raise InsufficientPoints(
            _("%(needed)d points needed, %(balance)d available.")
            % {"needed": points, "balance": account.balance},
            needed=points,
            balance=account.balance,
        )
    lots = list(
        LedgerEntry.objects.select_for_update()
        .filter(account=account, remaining_points__gt=0)
        .order_by(F("expires_at").asc(nulls_last=True), "created_at", "pk")
    )
    if prefer_lot is not None:
        lots.sort(key=lambda lot: lot.pk != prefer_lot.pk)  # stable: the rest stay FIFO
    left = points
    changed = []
    for lot in lots:
        if not left:
            break
        take = min(left, lot.remaining_points)
        lot.remaining_points -= take
        left -= take
        changed.append(lot)
    if left:  # the lots disagree with the cached balance: refuse rather than corrupt
        raise InsufficientPoints(_("The points lots do not cover this debit."))
    LedgerEntry.objects.bulk_update(changed, ["remaining_points"])
    account.balance -= points
    PointsAccount.objects.filter(pk=account.pk).update(
        balance=F("balance") - points, updated_at=now
    )
    return LedgerEntry.objects.create(
        account=account,
        kind=kind,
        points=-points,
        balance_after=account.balance,
        reason=reason,
        source=source,
        purchase=purchase,
        refund=refund,
        created_by=created_by,
        created_at=now,
    )


def _whole_points(points: int) -> int:
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        raise InvalidPoints()
    return points


@transaction.atomic
def points_credit(
    *,
    member: Member,
    points: int,
    kind: str = EntryKind.BONUS,
    reason: str,
    source: str = EntrySource.SYSTEM,
    created_by: User | None = None,
) -> LedgerEntry:
    """Add points (bonus, campaign, refund of a cancelled redemption) as a new lot."""
    if _whole_points(points) < 0:
        raise InvalidPoints(_("Use points_debit to take points away."))
    reason = _checked_reason(reason)
    account = account_lock(member=member)
    return _credit(
        account=account,
        points=points,
        kind=kind,
        reason=reason,
        source=source,
        created_by=created_by,
    )


@transaction.atomic
def points_debit(
    *,
    member: Member,
    points: int,
    kind: str = EntryKind.REDEEM,
    reason: str,
    source: str = EntrySource.REDEMPTION,
    created_by: User | None = None,
) -> LedgerEntry:
    """Take points away, oldest lots first, or raise InsufficientPoints and change nothing."""
    if _whole_points(points) < 0:
        raise InvalidPoints(_("Debit a positive number of points."))
    reason = _checked_reason(reason)
    account = account_lock(member=member)
    return _debit(
        account=account,
        points=points,
        kind=kind,
        reason=reason,
        source=source,
        created_by=created_by,
    )


@transaction.atomic
def points_adjust(*, member: Member, points: int, reason: str, staff_user: User) -> LedgerEntry:
    """A staff correction with a mandatory reason; audited by the entry's `created_by`."""
    _whole_points(points)
    reason = _checked_reason(reason)
    account = account_lock(member=member)
    if points > 0:
        entry = _credit(
            account=account,
            points=points,
            kind=EntryKind.ADJUST,
            reason=reason,
            source=EntrySource.STAFF,
            created_by=staff_user,
        )
    else:
        entry = _debit(
            account=account,
            points=-points,
            kind=EntryKind.ADJUST,
            reason=reason,
            source=EntrySource.STAFF,
            created_by=staff_user,
        )
    logger.info(
        "points adjusted",
        extra={"member": member.pk, "points": points, "staff_user": staff_user.pk},
    )
    return entry


def points_expire(*, now: dt.datetime | None = None) -> int:
    """Expire what remains of every lot past its expiry date; returns the points expired.

    One short transaction per account, so the nightly run never holds many locks; running it
    twice expires nothing more.
    """
    now = now or timezone.now()
    account_ids = list(
        LedgerEntry.objects.filter(remaining_points__gt=0, expires_at__lte=now)
        .values_list("account_id", flat=True)
        .distinct()
        .order_by("account_id")
    )
    total = 0
    for account_id in account_ids:
        with transaction.atomic():
            account = PointsAccount.objects.select_for_update().get(pk=account_id)
            entry = _expire_due_lots(account=account, now=now)
            total += -entry.points if entry else 0
    return total


# --- purchases and refunds -----------------------------------------------------------------


@dataclass(frozen=True)
class PurchaseResult:
    purchase: Purchase
    created: bool


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
    if channel not in Channel.values:
        raise ValidationFailed(
            _("Unknown channel %(channel)s; use one of %(choices)s.")
            % {"channel": channel, "choices": ", ".join(Channel.values)},
            field="channel",
            choices=list(Channel.values),
        )
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
            purchase = Purchase.objects.create(
                partner=partner,
                external_id=external_id,
                member=member,
                amount=amount,
                purchased_at=purchased_at,
                channel=channel,
                store=store,
            )
            PurchaseLine.objects.bulk_create(
                PurchaseLine(purchase=purchase, **line) for line in checked_lines
            )
            _earn_for_purchase(purchase=purchase, member=member, lines=line_inputs)
    except IntegrityError:
        # A concurrent post of the same purchase committed first: answer with its result.
        existing = Purchase.objects.filter(partner=partner, external_id=external_id).first()
        if existing is None:
            raise
        return _same_purchase(existing, member=member, amount=amount)
    return PurchaseResult(purchase=purchase, created=True)


def _earn_for_purchase(*, purchase: Purchase, member: Member, lines: list[LineInput]) -> None:
    account = account_lock(member=member)
    breakdown = earning_calculate(
        amount=purchase.amount,
        channel=purchase.channel,
        at=purchase.purchased_at,
        tier=account.tier,
        lines=lines,
    )
    _ensure_points_fit(account, breakdown.points)
    purchase.points_earned = breakdown.points
    purchase.earning_breakdown = breakdown.as_dict()
    purchase.save(update_fields=["points_earned", "earning_breakdown"])
    if breakdown.points > 0:
        _credit(
            account=account,
            points=breakdown.points,
            kind=EntryKind.EARN,
            reason=_in_member_language(
                member.pk, gettext_noop("Purchase %(id)s"), id=purchase.external_id
            ),
            source=EntrySource.PURCHASE,
            purchase=purchase,
        )
    tier_recalculate(account=account, allow_downgrade=False)


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


# --- tiers ---------------------------------------------------------------------------------


def rolling_figure(
    *, account: PointsAccount, at: dt.datetime | None = None, basis: str | None = None
) -> Decimal:
    """The member's rolling 12-month spend (net of refunds) or points earned."""
    at = at or timezone.now()
    since = at - relativedelta(months=12)
    basis = basis or ProgramSettings.load().tier_basis
    if basis == TierBasis.POINTS:
        total = account.entries.filter(
            created_at__gt=since,
            created_at__lte=at,
            kind__in=[EntryKind.EARN, EntryKind.BONUS, EntryKind.REVERSAL],
            source__in=[EntrySource.PURCHASE, EntrySource.REFUND, EntrySource.CAMPAIGN],
        ).aggregate(total=Coalesce(Sum("points"), 0))["total"]
        return Decimal(total)
    return Purchase.objects.filter(
        member_id=account.member_id,
        purchased_at__gt=since,
        purchased_at__lte=at,
    ).aggregate(total=Coalesce(Sum(F("amount") - F("refunded_amount")), Decimal("0")))["total"]


def qualifying_tier(figure: Decimal, tiers: Sequence[Tier] | None = None) -> Tier | None:
    tiers = list(Tier.objects.order_by("rank")) if tiers is None else tiers
    reached = [tier for tier in tiers if tier.threshold <= figure]
    return max(reached, key=lambda tier: tier.rank) if reached else None


def tier_recalculate(
    *,
    account: PointsAccount,
    allow_downgrade: bool,
    now: dt.datetime | None = None,
    tiers: Sequence[Tier] | None = None,
) -> TierChange | None:
    """Move a (locked) account to the tier its rolling figure qualifies for.

    Upgrades happen at once (on every purchase). Downgrades happen only in the nightly run
    (`allow_downgrade`) and only after the reached tier's grace period has passed; then the
    member drops to the tier the figure qualifies for, possibly several levels.
    """
    now = now or timezone.now()
    program = ProgramSettings.load()
    figure = rolling_figure(account=account, at=now, basis=program.tier_basis)
    target = qualifying_tier(figure, tiers)
    current = account.tier
    current_rank = current.rank if current else -1
    target_rank = target.rank if target else -1
    if target_rank > current_rank:
        reason = "upgrade"
    elif (
        target_rank < current_rank
        and allow_downgrade
        and (account.tier_kept_until is None or account.tier_kept_until <= now)
    ):
        reason = "downgrade"
    else:
        return None
    account.tier = target
    account.tier_since = now
    account.tier_kept_until = now + relativedelta(months=program.tier_grace_months)
    PointsAccount.objects.filter(pk=account.pk).update(
        tier=target, tier_since=now, tier_kept_until=account.tier_kept_until
    )
    return TierChange.objects.create(
        account=account,
        from_tier=current,
        to_tier=target,
        figure=figure,
        reason=reason,
        changed_at=now,
    )


def tiers_recalculate_all(*, now: dt.datetime | None = None) -> int:
    """The nightly run; returns the number of tier changes.

    One grouped query finds every member's rolling figure; only the accounts whose tier
    should move are then locked and changed, each in its own short transaction (the change
    is re-checked under the lock, so a purchase in between is respected).
    """
    now = now or timezone.now()
    program = ProgramSettings.load()
    tiers = list(Tier.objects.order_by("rank"))
    since = now - relativedelta(months=12)
    if program.tier_basis == TierBasis.POINTS:
        figures = dict(
            LedgerEntry.objects.filter(
                created_at__gt=since,
                created_at__lte=now,
                kind__in=[EntryKind.EARN, EntryKind.BONUS, EntryKind.REVERSAL],
                source__in=[EntrySource.PURCHASE, EntrySource.REFUND, EntrySource.CAMPAIGN],
            )
            .values("account__member_id")
            .annotate(total=Sum("points"))
            .values_list("account__member_id", "total")
        )
    else:
        figures = dict(
            Purchase.objects.filter(purchased_at__gt=since, purchased_at__lte=now)
            .values("member_id")
            .annotate(total=Sum(F("amount") - F("refunded_amount")))
            .values_list("member_id", "total")
        )
    changes = 0
    accounts = PointsAccount.objects.order_by("pk").values_list(
        "pk", "member_id", "tier__rank", "tier_kept_until"
    )
    for account_id, member_id, rank, kept_until in accounts.iterator(chunk_size=10_000):
        target = qualifying_tier(Decimal(figures.get(member_id) or 0), tiers)
        target_rank = target.rank if target else -1
        current_rank = rank if rank is not None else -1
        if target_rank == current_rank or (
            target_rank < current_rank and kept_until is not None and kept_until > now
        ):
            continue
        with transaction.atomic():
            # of=("self",): lock the account only; its tier may be NULL (an outer join).
            account = (
                PointsAccount.objects.select_for_update(of=("self",))
                .select_related("tier")
                .get(pk=account_id)
            )
            if tier_recalculate(account=account, allow_downgrade=True, now=now, tiers=tiers):
                changes += 1
    return changes


# --- consistency ---------------------------------------------------------------------------


def ledger_consistency_check() -> ConsistencyCheck:
    """Compare every cached balance with its ledger sum and its open lots; change nothing.

    Two grouped queries over the whole table; differences are stored and logged as errors
    for the admin to see, never corrected silently.
    """
    ledger_mismatches = (
        PointsAccount.objects.annotate(ledger_sum=Coalesce(Sum("entries__points"), 0))
        .exclude(balance=F("ledger_sum"))
        .values("pk", "member_id", "balance", "ledger_sum")
    )
    lot_mismatches = (
        PointsAccount.objects.annotate(lots_sum=Coalesce(Sum("entries__remaining_points"), 0))
        .exclude(balance=F("lots_sum"))
        .values("pk", "member_id", "balance", "lots_sum")
    )
    mismatches = [
        {
            "account": row["pk"],
            "member": row["member_id"],
            "balance": row["balance"],
            "ledger_sum": row["ledger_sum"],
            "kind": "ledger",
        }
        for row in ledger_mismatches
    ] + [
        {
            "account": row["pk"],
            "member": row["member_id"],
            "balance": row["balance"],
            "lots_sum": row["lots_sum"],
            "kind": "lots",
        }
        for row in lot_mismatches
    ]
    check = ConsistencyCheck.objects.create(
        accounts_checked=PointsAccount.objects.count(), mismatches=mismatches
    )
    if mismatches:
        logger.error(
            "ledger consistency check found %d mismatches",
            len(mismatches),
            extra={"check": check.pk},
        )
    return check
