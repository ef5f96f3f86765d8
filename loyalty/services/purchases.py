"""Purchases and refunds: checked where they enter, recorded once per (partner, id), earning
points through the ledger; and what a purchase would earn (the admin's dry run).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import cast

from dateutil.relativedelta import relativedelta
from django.db import IntegrityError, connection, transaction
from django.db.models import DecimalField, Field, Model, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from members.errors import MemberNotActive
from members.models import Member, MemberStatus, User

from .. import events, rawsql, reasons
from ..audit.models import AuditAction
from ..audit.services import audit_record, change
from ..earning import EarningBreakdown, EarningTerms, LineInput, earning_calculate, earning_terms
from ..errors import (
    ApplicationError,
    DuplicatePurchaseConflict,
    InvalidAmount,
    InvalidPurchaseLines,
    PartnerInactive,
    RefundTooLarge,
    ValidationFailed,
    checked_text,
)
from ..formats import money_text
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
    TierBasis,
    TierChange,
)
from ..reasons import Reason
from .ledger import (
    _debit,
    _ensure_points_fit,
    _expire_due_lots,
    _expiry_for,
    _told,
    account_lock,
    accounts_lock,
    reason_fields,
)
from .tiers import TIER_POINT_SOURCES, rolling_figures, tier_change_told, tier_upgrade

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
            _("An amount can be at most %(max)s.") % {"max": money_text(AMOUNT_MAX)},
            max=str(AMOUNT_MAX),
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


@dataclass(frozen=True)
class PurchaseInput:
    """One purchase as a partner sends it, before the checks."""

    external_id: str
    member: Member
    amount: Decimal | str
    purchased_at: dt.datetime | None = None
    channel: str = "store"
    store: str = ""
    lines: Sequence[Mapping] = ()


@dataclass(frozen=True)
class _CheckedPurchase:
    external_id: str
    member: Member
    amount: Decimal
    purchased_at: dt.datetime
    channel: str
    store: str
    lines: list[dict]

    @property
    def line_inputs(self) -> list[LineInput]:
        return [LineInput(amount=line["amount"], category=line["category"]) for line in self.lines]


def _purchase_checked(item: PurchaseInput) -> _CheckedPurchase:
    """Every field checked against its column and the program's rules, or a ValidationFailed."""
    amount = money(item.amount)
    external_id = checked_text(item.external_id, model=Purchase, name="external_id")
    if not external_id:
        raise ValidationFailed(_("The purchase needs the partner's id."), field="external_id")
    channel = _checked_channel(item.channel)
    store = checked_text(item.store, model=Purchase, name="store")
    lines = _lines_checked(item.lines, amount)
    purchased_at = item.purchased_at or timezone.now()
    if timezone.is_naive(purchased_at):
        raise ValidationFailed(_("The purchase time needs a time zone."), field="purchased_at")
    if purchased_at > timezone.now() + dt.timedelta(minutes=5):
        raise ValidationFailed(_("The purchase time is in the future."), field="purchased_at")
    return _CheckedPurchase(
        external_id=external_id,
        member=item.member,
        amount=amount,
        purchased_at=purchased_at,
        channel=channel,
        store=store,
        lines=lines,
    )


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
    read, is what makes concurrent duplicates safe, and it is also what finds a repeat: a
    new purchase (the common case) costs no lookup.
    """
    item = _purchase_checked(
        PurchaseInput(
            external_id=external_id,
            member=member,
            amount=amount,
            purchased_at=purchased_at,
            channel=channel,
            store=store,
            lines=lines,
        )
    )
    if not partner.is_active:
        raise PartnerInactive()
    if member.status not in EARNING_STATUSES:
        existing = Purchase.objects.filter(partner=partner, external_id=item.external_id).first()
        if existing is not None:
            return _same_purchase(existing, member=member, amount=item.amount)
        raise MemberNotActive()
    try:
        [outcome] = _purchases_write(partner, [item])
    except IntegrityError:
        # Posted before (or concurrently, and that one committed first): its result.
        existing = Purchase.objects.filter(partner=partner, external_id=item.external_id).first()
        if existing is None:
            raise
        return _same_purchase(existing, member=member, amount=item.amount)
    if isinstance(outcome, ApplicationError):
        raise outcome
    return outcome


def purchases_record_batch(
    *, partner: Partner, items: Sequence[PurchaseInput]
) -> list[PurchaseResult | ApplicationError]:
    """Record many purchases at once (a till syncing after being offline), each by the rule of
    `purchase_record`: an outcome per item, in order, a result or the error of that item.

    Set-based: one lookup of the ids posted before, the accounts locked together (in id order,
    so batches cannot deadlock each other), one rolling-figure query, and each table written
    with one statement. A purchase with the same id posted meanwhile by someone else breaks the
    unique constraint: then the items go one by one.
    """
    if not partner.is_active:
        raise PartnerInactive()
    outcomes: list[PurchaseResult | ApplicationError | None] = [None] * len(items)
    checked: dict[int, _CheckedPurchase] = {}
    for index, raw in enumerate(items):
        try:
            checked[index] = _purchase_checked(raw)
        except ApplicationError as error:
            outcomes[index] = error
    earlier = {
        purchase.external_id: purchase
        for purchase in Purchase.objects.select_related("member").filter(
            partner=partner, external_id__in={item.external_id for item in checked.values()}
        )
    }
    to_write: list[int] = []
    first_of: dict[str, int] = {}
    repeats: list[int] = []
    for index, item in checked.items():
        if item.external_id in earlier:
            outcomes[index] = _same_or_error(earlier[item.external_id], item)
        elif item.external_id in first_of:
            repeats.append(index)  # the same id twice in this batch: answered by the first
        elif item.member.status not in EARNING_STATUSES:
            outcomes[index] = MemberNotActive()
        else:
            first_of[item.external_id] = index
            to_write.append(index)
    try:
        written = _purchases_write(partner, [checked[index] for index in to_write])
    except IntegrityError:
        written = [_outcome_of_one(partner, checked[index]) for index in to_write]
    for index, outcome in zip(to_write, written, strict=True):
        outcomes[index] = outcome
    for index in repeats:
        first = outcomes[first_of[checked[index].external_id]]
        outcomes[index] = (
            _same_or_error(first.purchase, checked[index])
            if isinstance(first, PurchaseResult)
            else first
        )
    return [outcome for outcome in outcomes if outcome is not None]


def _same_or_error(existing: Purchase, item: _CheckedPurchase) -> PurchaseResult | ApplicationError:
    try:
        return _same_purchase(existing, member=item.member, amount=item.amount)
    except ApplicationError as error:
        return error


def _outcome_of_one(partner: Partner, item: _CheckedPurchase) -> PurchaseResult | ApplicationError:
    try:  # the checked fields are purchase_record's arguments
        return purchase_record(
            partner=partner, **{field.name: getattr(item, field.name) for field in fields(item)}
        )
    except ApplicationError as error:
        return error


def _purchases_write(
    partner: Partner, items: Sequence[_CheckedPurchase]
) -> list[PurchaseResult | ApplicationError]:
    """Write new purchases of earning members with their points, in one transaction.

    Each item earns under the tier its account has at that point of the list (an upgrade by
    an earlier item counts for the later ones), exactly as if they were posted one by one.
    Raises IntegrityError when one of the ids exists already (nothing is written then).
    """
    if not items:
        return []
    now = timezone.now()
    program = ProgramSettings.load()
    terms = earning_terms()
    outcomes: list[PurchaseResult | ApplicationError] = []
    written: list[tuple[Purchase, _CheckedPurchase]] = []
    entries: list[LedgerEntry] = []
    changes: list[TierChange] = []
    with transaction.atomic():
        accounts = accounts_lock(member_ids={item.member.pk for item in items}, now=now)
        figures = _rolling_figures(accounts.values(), terms=terms, program=program, now=now)
        for item in items:
            account = accounts[item.member.pk]
            breakdown = earning_calculate(
                amount=item.amount,
                channel=item.channel,
                at=item.purchased_at,
                tier=account.tier,
                lines=item.line_inputs,
                program=program,
                rules=terms.rules_at(item.purchased_at),
                member_id=item.member.pk,
            )
            try:
                _ensure_points_fit(account, breakdown.points + breakdown.bonus_points)
            except ApplicationError as error:
                outcomes.append(error)
                continue
            purchase = Purchase(
                partner=partner,
                external_id=item.external_id,
                member=item.member,
                amount=item.amount,
                purchased_at=item.purchased_at,
                channel=item.channel,
                store=item.store,
                points_earned=breakdown.points,
                earning_breakdown=breakdown.as_dict(),
            )
            written.append((purchase, item))
            earned = _earning_entries(account, purchase, breakdown, program=program, now=now)
            entries.extend(earned)
            if account.member_id in figures:
                if program.tier_basis == TierBasis.POINTS:
                    figures[account.member_id] += sum(
                        entry.points for entry in earned if entry.source in TIER_POINT_SOURCES
                    )
                elif now - relativedelta(months=12) < item.purchased_at <= now:
                    figures[account.member_id] += item.amount
                change = tier_upgrade(
                    account=account,
                    figure=figures[account.member_id],
                    tiers=terms.tiers,
                    now=now,
                    program=program,
                )
                if change is not None:
                    changes.append(change)
            outcomes.append(
                PurchaseResult(
                    purchase=purchase,
                    created=True,
                    balance=account.balance,
                    tier=account.tier.name if account.tier else None,
                )
            )
        _written_save(
            purchases=[purchase for purchase, _item in written],
            lines=[
                PurchaseLine(purchase=purchase, **line)
                for purchase, item in written
                for line in item.lines
            ],
            entries=entries,
            accounts=list(accounts.values()),
            changes=changes,
        )
        # Asked once, not once per entry (each ask is a cache read): a batch has a thousand.
        if entries and events.has_subscribers("points.earned"):
            for entry in entries:
                _told(entry, member_id=entry.account.member_id)
        if changes and events.has_subscribers("tier.changed"):
            for change in changes:
                tier_change_told(change)
    return outcomes


ACCOUNT_FIELDS = ("balance", "tier", "tier_since", "tier_kept_until", "updated_at")


def _written_save(
    *,
    purchases: list[Purchase],
    lines: list[PurchaseLine],
    entries: list[LedgerEntry],
    accounts: list[PointsAccount],
    changes: list[TierChange],
) -> None:
    """Write what `_purchases_write` made: on PostgreSQL one statement for every table, however
    many purchases (a till's single purchase paid 5 ORM statements' compilation, about 2.5 ms);
    elsewhere (SQLite) one ORM statement per table."""
    if not purchases:  # every item was refused: the accounts are as they were
        return
    if connection.vendor != "postgresql":
        Purchase.objects.bulk_create(purchases)
        PurchaseLine.objects.bulk_create(lines)
        LedgerEntry.objects.bulk_create(entries)
        _accounts_save(accounts)
        TierChange.objects.bulk_create(changes)
        return
    purchase_fields, line_fields, entry_fields, change_fields, account_fields = _write_fields()
    counts = (len(purchases), len(lines), len(entries), len(accounts), len(changes))
    scalars = max(counts) <= SCALAR_ROWS_MAX
    sources = (
        rawsql.column_arrays(purchase_fields, purchases),
        [[line.purchase.external_id for line in lines], *rawsql.column_arrays(line_fields, lines)],
        [
            [entry.purchase.external_id for entry in entries],  # type: ignore[union-attr]
            *rawsql.column_arrays(entry_fields, entries),
        ],
        [[account.pk for account in accounts], *rawsql.column_arrays(account_fields, accounts)],
        rawsql.column_arrays(change_fields, changes),
    )
    with rawsql.cursor() as cursor:
        cursor.execute(
            _write_sql(counts if scalars else None, binary=rawsql.binds_on_server()),
            [
                value
                for columns in sources
                for value in (rawsql.row_values(columns) if scalars else columns)
            ],
        )
        written = cursor.fetchall()
    purchase_ids = {external_id: pk for table, pk, external_id in written if table == 0}
    for purchase in purchases:
        purchase.pk = purchase_ids[purchase.external_id]
        purchase._state.adding, purchase._state.db = False, connection.alias
    # Ids come from a sequence in the order the rows were inserted, which is the lists' order.
    for table, objects in ((1, entries), (2, changes)):
        ids = sorted(pk for kind, pk, _external_id in written if kind == table)
        for obj, pk in zip(objects, ids, strict=True):
            obj.pk = pk
            obj._state.adding, obj._state.db = False, connection.alias
    for entry in entries:
        entry.purchase_id = entry.purchase.pk  # type: ignore[union-attr]


@functools.cache
def _write_fields():
    return (
        rawsql.written_fields(Purchase),
        rawsql.written_fields(PurchaseLine, exclude={"purchase"}),
        rawsql.written_fields(LedgerEntry, exclude={"purchase"}),
        rawsql.written_fields(TierChange),
        [cast(Field, PointsAccount._meta.get_field(name)) for name in ACCOUNT_FIELDS],
    )


# A write of at most this many rows per table (a till's purchase: one purchase, its lines, one
# or two ledger entries) sends each value as a parameter of its own, in a statement made for
# those counts: psycopg adapts a scalar in C, an array element by element in Python (46 arrays
# were a third of a purchase's time). More rows (batches) send one array per column.
SCALAR_ROWS_MAX = 16


@functools.lru_cache(maxsize=64)
def _write_sql(counts: tuple[int, int, int, int, int] | None, *, binary: bool) -> str:
    """One INSERT per table and one UPDATE of the accounts as one statement (data-modifying
    WITH queries): the lines and ledger entries find their purchase's id by its external id
    (unique for the partner, whose purchases these all are). `counts`: the rows of purchases,
    lines, entries, accounts and changes, each value a parameter (tables without rows left
    out); None: one array parameter per column, for any number of rows (`binary`: see
    `rawsql.rows_source`). Answers (0, purchase id, external id) per purchase, (1, entry id,
    NULL) per entry and (2, change id, NULL) per tier change, each table's in the lists'
    order."""
    purchase_fields, line_fields, entry_fields, change_fields, account_fields = _write_fields()
    purchases, lines, entries, accounts, changes = counts or (None,) * 5
    names, table = rawsql.columns, rawsql.table

    def rows_source(fields, count, lead=()) -> str:
        return rawsql.rows_source(fields, count, lead=lead, binary=binary)

    def picked(fields) -> str:
        return ", ".join(f"x.c{index}" for index in range(len(fields)))

    parts = [
        f"new_purchase AS (INSERT INTO {table(Purchase)} ({names(purchase_fields)}) "
        f"SELECT {picked(purchase_fields)} FROM {rows_source(purchase_fields, purchases)} "
        "ORDER BY x.n RETURNING id, external_id)"
    ]
    answers = ["SELECT 0, id, external_id FROM new_purchase"]
    if lines != 0:
        parts.append(
            f"new_line AS (INSERT INTO {table(PurchaseLine)} (purchase_id, {names(line_fields)}) "
            f"SELECT p.id, {picked(line_fields)} "
            f"FROM {rows_source(line_fields, lines, ['varchar'])} "
            "JOIN new_purchase p ON p.external_id = x.l0)"
        )
    if entries != 0:
        parts.append(
            f"new_entry AS (INSERT INTO {table(LedgerEntry)} ({names(entry_fields)}, purchase_id) "
            f"SELECT {picked(entry_fields)}, p.id "
            f"FROM {rows_source(entry_fields, entries, ['varchar'])} "
            "JOIN new_purchase p ON p.external_id = x.l0 ORDER BY x.n RETURNING id)"
        )
        answers.append("SELECT 1, id, NULL FROM new_entry")
    if accounts != 0:
        parts.append(
            f"account_update AS (UPDATE {table(PointsAccount)} AS account SET "
            + ", ".join(
                f"{connection.ops.quote_name(field.column)} = x.c{index}"
                for index, field in enumerate(account_fields)
            )
            + f" FROM {rows_source(account_fields, accounts, ['bigint'])} "
            "WHERE account.id = x.l0)"
        )
    if changes != 0:
        parts.append(
            f"new_change AS (INSERT INTO {table(TierChange)} ({names(change_fields)}) "
            f"SELECT {picked(change_fields)} FROM {rows_source(change_fields, changes)} "
            "ORDER BY x.n RETURNING id)"
        )
        answers.append("SELECT 2, id, NULL FROM new_change")
    return "WITH " + ", ".join(parts) + " " + " UNION ALL ".join(answers)


def _accounts_save(accounts: list[PointsAccount]) -> None:
    """Write the (locked) accounts' balances and tiers back (SQLite; PostgreSQL writes them in
    `_written_save`'s statement): a plain UPDATE for one, the common case."""
    if len(accounts) == 1:
        [account] = accounts
        PointsAccount.objects.filter(pk=account.pk).update(
            **{name: getattr(account, name) for name in ACCOUNT_FIELDS}
        )
    else:
        PointsAccount.objects.bulk_update(accounts, ACCOUNT_FIELDS)


def _earning_entries(
    account: PointsAccount,
    purchase: Purchase,
    breakdown: EarningBreakdown,
    *,
    program: ProgramSettings,
    now: dt.datetime,
) -> list[LedgerEntry]:
    """The purchase's points as one lot and each bonus as its own, on the (locked) account,
    whose balance follows in memory."""
    credits: list[tuple[int, str, str | Reason, str]] = []
    if breakdown.points > 0:
        credits.append(
            (
                breakdown.points,
                EntryKind.EARN,
                Reason(reasons.PURCHASE, {"id": purchase.external_id}),
                EntrySource.PURCHASE,
            )
        )
    for bonus in breakdown.bonuses:
        credits.append(
            (
                bonus.points,
                EntryKind.BONUS,
                bonus.reason or checked_text(bonus.label, model=LedgerEntry, name="reason"),
                bonus.source,
            )
        )
    entries = []
    for points, kind, reason, source in credits:
        account.balance += points
        account.updated_at = now
        entries.append(
            LedgerEntry(
                account=account,
                kind=kind,
                points=points,
                balance_after=account.balance,
                **reason_fields(reason),
                source=source,
                purchase=purchase,
                created_at=now,
                expires_at=_expiry_for(now, program),
                remaining_points=points,
            )
        )
    return entries


def _rolling_figures(
    accounts: Iterable[PointsAccount],
    *,
    terms: EarningTerms,
    program: ProgramSettings,
    now: dt.datetime,
) -> dict[int, Decimal]:
    """The rolling 12-month figure (see `rolling_figure`) of the members who could still move
    up, by member id; one grouped query, none when everyone is in the top tier already."""
    top_rank = terms.tiers[-1].rank if terms.tiers else None
    candidates = [
        account.member_id
        for account in accounts
        if top_rank is not None and (account.tier is None or account.tier.rank < top_rank)
    ]
    if not candidates:
        return {}
    figures = rolling_figures(member_ids=candidates, at=now, basis=program.tier_basis)
    return {member_id: figures.get(member_id, Decimal(0)) for member_id in candidates}


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
            _("At most %(left)s of this purchase can still be refunded.")
            % {"left": money_text(left)},
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
            reason=Reason(reasons.REFUND, {"id": purchase.external_id}),
            source=EntrySource.REFUND,
            purchase=purchase,
            refund=refund,
            created_by=created_by,
            prefer_lot=earn_lot,
        )
    _bonuses_reverse(
        purchase=purchase,
        account=account,
        refund=refund,
        before=purchase.refunded_amount,
        after=refunded,
        created_by=created_by,
    )
    if created_by is not None:  # staff refunded it in the admin (partners' refunds are theirs)
        audit_record(
            actor=created_by,
            action=AuditAction.PURCHASE_REFUNDED,
            obj=purchase,
            description=gettext_noop("Refunded %(amount)s EUR of purchase %(id)s"),
            params={"amount": amount, "id": purchase.external_id},
            changes={
                "refunded_amount": change(purchase.refunded_amount, refunded),
                "points_reversed": change(purchase.points_reversed, reversed_target),
            },
        )
    purchase.refunded_amount = refunded
    purchase.points_reversed = reversed_target
    purchase.save(update_fields=["refunded_amount", "points_reversed"])
    return refund


def _share(points: int, refunded: Decimal, amount: Decimal) -> int:
    """What of `points` a refund of `refunded` out of `amount` takes back, rounded down."""
    if refunded >= amount:
        return points
    return int((Decimal(points) * refunded / amount).to_integral_value(rounding=ROUND_FLOOR))


def _bonuses_reverse(
    *,
    purchase: Purchase,
    account: PointsAccount,
    refund: Refund,
    before: Decimal,
    after: Decimal,
    created_by: User | None,
) -> None:
    """Take back the purchase's bonuses (a campaign's bonus offer) in the same proportion as
    its points, each as its own reversal entry with the bonus's reason (so a campaign's
    figures net it out). As for the points: the part of a bonus lot that expired is not
    taken from other lots, and nothing is taken below a zero balance. The purchase's and the
    refund's counters stay those of the purchase's own points; the shares follow from the
    refunded amounts before and after, so no bonus is reversed twice."""
    for lot in purchase.ledger_entries.filter(kind=EntryKind.BONUS, points__gt=0).order_by("pk"):
        due = _share(lot.points, after, purchase.amount) - _share(
            lot.points, before, purchase.amount
        )
        expired = min(_share(lot.points, after, purchase.amount), lot.expired_points) - min(
            _share(lot.points, before, purchase.amount), lot.expired_points
        )
        recoverable = min(due - max(0, expired), account.balance)
        if recoverable <= 0:
            continue
        _debit(
            account=account,
            points=recoverable,
            kind=EntryKind.REVERSAL,
            reason=(
                Reason(lot.reason_key, lot.reason_params or {})
                if lot.reason_key
                else Reason(reasons.REFUND, {"id": purchase.external_id})
            ),
            source=EntrySource.REFUND,
            purchase=purchase,
            refund=refund,
            created_by=created_by,
            prefer_lot=lot,
        )


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
