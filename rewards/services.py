"""Writes of rewards: redeeming, cancelling, fulfilling, voucher use and code pools.

One lock order for every path that touches a redemption, its code and the points:

    reward -> redemption -> voucher code -> the member's points account (-> its lots)

A path may skip a step but never takes them in another order (using a voucher at the till does
not lock the reward; it starts at the redemption). Purchases and refunds lock only the account
and the lots, so no two paths wait on each other in reverse (docs/decisions.md).
"""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from loyalty import events, reasons
from loyalty.audit.models import AuditAction
from loyalty.audit.services import audit_record, change
from loyalty.models import EntryKind, EntrySource, Partner
from loyalty.outbox.services import outbox_enqueue
from loyalty.reasons import Reason, per_language
from loyalty.services import points_credit, points_debit
from members.emails import send_templated_email
from members.imports import import_finish, import_progress, import_rows
from members.models import Member, User

from . import codes
from .errors import (
    InvalidCodeCount,
    NotCancellable,
    NotFulfillable,
    OutOfStock,
    VoucherAlreadyUsed,
    VoucherInvalid,
    VoucherNotValid,
)
from .models import (
    CodeStatus,
    Redemption,
    RedemptionStatus,
    Reward,
    RewardKind,
    VoucherCode,
    VoucherImport,
)
from .qr import voucher_qr_png
from .selectors import reward_check

MAX_CODES_PER_CALL = 100_000


@transaction.atomic
def reward_redeem(*, member: Member, reward: Reward, partner: Partner | None = None) -> Redemption:
    """Debit the points, take one from stock, claim a code and record the redemption, or
    raise why not and change nothing. The voucher e-mail goes out after the commit.

    `partner`: the partner whose API key asks (only it sees the redemption on the API)."""
    reward = (
        Reward.objects.select_for_update(of=("self",))
        .select_related("minimum_tier")
        .get(pk=reward.pk)
    )
    now = timezone.now()
    reward_check(member=member, reward=reward, now=now)
    voucher = None
    if reward.kind == RewardKind.VOUCHER:
        voucher = (
            VoucherCode.objects.select_for_update(skip_locked=True)
            .filter(reward=reward, status=CodeStatus.AVAILABLE)
            .order_by("pk")
            .first()
        )
        if voucher is None:
            raise OutOfStock()
    elif reward.kind == RewardKind.DISCOUNT:  # a personal code made now, shown at the till
        voucher = _new_personal_code(reward)
    entry = points_debit(
        member=member,
        points=reward.points_cost,
        kind=EntryKind.REDEEM,
        reason=_reward_reason(reasons.REWARD, reward),
        source=EntrySource.REDEMPTION,
    )
    if reward.stock is not None:
        Reward.objects.filter(pk=reward.pk).update(stock=reward.stock - 1)
    if voucher is not None and voucher.status != CodeStatus.ISSUED:
        voucher.status = CodeStatus.ISSUED
        voucher.save(update_fields=["status"])
    redemption = Redemption.objects.create(
        member=member,
        reward=reward,
        points=reward.points_cost,
        status=RedemptionStatus.REQUESTED
        if reward.kind == RewardKind.PRODUCT
        else RedemptionStatus.ISSUED,
        voucher=voucher,
        code=voucher.code if voucher else "",
        ledger_entry=entry,
        partner=partner,
        valid_until=now + dt.timedelta(days=reward.voucher_valid_days)
        if reward.kind != RewardKind.PRODUCT
        else None,
        created_at=now,
    )
    outbox_enqueue("rewards.tasks.send_redemption_email", redemption.pk)
    events.emit(
        "reward.redeemed",
        member_id=member.pk,
        redemption_id=redemption.pk,
        reward_id=reward.pk,
        points=redemption.points,
        status=redemption.status,
    )
    return redemption


def _reward_reason(key: str, reward: Reward) -> Reason:
    """The ledger reason naming the reward, read in the reader's language."""
    return Reason(key, {"reward": per_language(nl=reward.name_nl, en=reward.name_en)})


def _new_personal_code(reward: Reward) -> VoucherCode:
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return VoucherCode.objects.create(
                    reward=reward, code=codes.generate(), status=CodeStatus.ISSUED
                )
        except IntegrityError:  # one in 10^14: draw again
            continue
    raise RuntimeError("could not draw a unique voucher code")


@transaction.atomic
def redemption_cancel(*, redemption: Redemption, by: User | None = None) -> Redemption:
    """Give the points back and return the stock; refused once used or delivered.

    A code that was handed out has been seen by the member (e-mail, portal, data export), so it
    is voided, never returned to the pool: it fails validation at the till from now on."""
    reward = Reward.objects.select_for_update().get(pk=redemption.reward_id)
    redemption = (
        Redemption.objects.select_for_update(of=("self",))
        .select_related("member")
        .get(pk=redemption.pk)
    )
    if redemption.status not in (RedemptionStatus.ISSUED, RedemptionStatus.REQUESTED):
        raise NotCancellable()
    if redemption.voucher_id is not None:
        VoucherCode.objects.select_for_update().filter(pk=redemption.voucher_id).update(
            status=CodeStatus.VOID
        )
    redemption.refund_entry = points_credit(
        member=redemption.member,
        points=redemption.points,
        kind=EntryKind.REVERSAL,
        reason=_reward_reason(reasons.REWARD_CANCELLED, reward),
        source=EntrySource.REDEMPTION,
        created_by=by,
    )
    if reward.stock is not None:
        Reward.objects.filter(pk=reward.pk).update(stock=F("stock") + 1)
    if by is not None:  # staff cancelled it (a member's own cancellation is not staff's)
        audit_record(
            actor=by,
            action=AuditAction.REDEMPTION_CANCELLED,
            obj=redemption,
            object_repr=f"{reward} — {redemption.member.member_number}",
            description=gettext_noop(
                "Redemption of %(reward)s by member %(member)s cancelled; %(points)d points back"
            ),
            params={
                "reward": str(reward),
                "member": redemption.member.member_number,
                "points": redemption.points,
            },
            changes={"status": change(redemption.status, RedemptionStatus.CANCELLED)},
        )
    redemption.status = RedemptionStatus.CANCELLED
    redemption.changed_at = timezone.now()
    redemption.changed_by = by
    redemption.save(update_fields=["refund_entry", "status", "changed_at", "changed_by"])
    events.emit(
        "redemption.cancelled",
        member_id=redemption.member_id,
        redemption_id=redemption.pk,
        reward_id=reward.pk,
        points_returned=redemption.points,
    )
    return redemption


@transaction.atomic
def redemption_fulfil(*, redemption: Redemption, by: User | None = None) -> Redemption:
    """A partner delivered the product."""
    redemption = Redemption.objects.select_for_update().get(pk=redemption.pk)
    if redemption.status != RedemptionStatus.REQUESTED:
        raise NotFulfillable()
    redemption.status = RedemptionStatus.FULFILLED
    redemption.changed_at = timezone.now()
    redemption.changed_by = by
    redemption.save(update_fields=["status", "changed_at", "changed_by"])
    return redemption


def _codes_of(partner: Partner | None):
    """Voucher codes a caller may know about: a supplying partner only its own rewards' (to
    others a code answers as if it did not exist); staff and the portal every code."""
    if partner is None:
        return VoucherCode.objects.all()
    return VoucherCode.objects.filter(reward__partner=partner)


def voucher_validate(
    *, code: str, now: dt.datetime | None = None, partner: Partner | None = None
) -> Redemption:
    """The redemption behind a code that can be used now, or why it cannot."""
    now = now or timezone.now()
    voucher = _codes_of(partner).filter(code=codes.normalise(code)).first()
    if voucher is None:
        raise VoucherInvalid()
    redemption = Redemption.objects.filter(voucher=voucher).select_related("reward").first()
    return _usable(voucher=voucher, redemption=redemption, now=now)


def _usable(*, voucher: VoucherCode, redemption: Redemption | None, now: dt.datetime) -> Redemption:
    """The code's redemption if the code can be used now; otherwise raise why not."""
    if voucher.status == CodeStatus.USED:
        raise VoucherAlreadyUsed(
            _("This voucher was used on %(date)s.")
            % {"date": timezone.localtime(voucher.used_at).strftime("%d-%m-%Y %H:%M")},
            used_at=timezone.localtime(voucher.used_at).isoformat() if voucher.used_at else None,
        )
    if voucher.status == CodeStatus.VOID or (
        redemption is not None and redemption.status == RedemptionStatus.CANCELLED
    ):
        raise VoucherNotValid(_("This voucher was cancelled and can no longer be used."))
    if voucher.status != CodeStatus.ISSUED or redemption is None:
        raise VoucherNotValid(_("This voucher has not been issued to a member."))
    if redemption.valid_until and now >= redemption.valid_until:
        raise VoucherNotValid(_("This voucher has expired."))
    return redemption


@transaction.atomic
def voucher_use(*, code: str, by: User | None = None, partner: Partner | None = None) -> Redemption:
    """Mark a voucher used, once; a second use is refused with the moment of the first.
    A `partner` may use only codes of the rewards it supplies (others: VoucherInvalid).

    Locks the redemption before the code (the module's lock order), so a cancellation of the
    same redemption at the same moment waits for this one, or this one for it, and the second
    gets a clean refusal."""
    normalised = codes.normalise(code)
    known = _codes_of(partner)
    redemption_id = (
        Redemption.objects.filter(voucher__in=known.filter(code=normalised))
        .values_list("pk", flat=True)
        .first()
    )
    locked = None
    if redemption_id is not None:
        locked = (
            Redemption.objects.select_for_update(of=("self",))
            .select_related("reward")
            .get(pk=redemption_id)
        )
    voucher = known.select_for_update(of=("self",)).filter(code=normalised).first()
    if voucher is None:
        raise VoucherInvalid()
    now = timezone.now()
    redemption = _usable(voucher=voucher, redemption=locked, now=now)
    VoucherCode.objects.filter(pk=voucher.pk).update(status=CodeStatus.USED, used_at=now)
    redemption.status = RedemptionStatus.USED
    redemption.changed_at = now
    redemption.changed_by = by
    redemption.save(update_fields=["status", "changed_at", "changed_by"])
    return redemption


def codes_generate(*, reward: Reward, count: int) -> int:
    """Add `count` new unique codes to the reward's pool (bulk, collisions retried)."""
    if not 1 <= count <= MAX_CODES_PER_CALL:
        raise InvalidCodeCount()
    created = 0
    with transaction.atomic():
        while created < count:
            batch = {codes.generate() for _ in range(count - created)}
            existing = set(
                VoucherCode.objects.filter(code__in=batch).values_list("code", flat=True)
            )
            fresh = [VoucherCode(reward=reward, code=code) for code in batch - existing]
            VoucherCode.objects.bulk_create(fresh, batch_size=5000)
            created += len(fresh)
    return created


IMPORT_CHUNK = 1000
MAX_CODE_LENGTH = 40  # VoucherCode.code


def voucher_import_run(*, job: VoucherImport) -> VoucherImport:
    """Add a partner's codes (CSV with a `code` column) to the job's reward.

    Empty, too long, repeated or already known codes are reported per row and skipped; the
    others are inserted in chunks, each chunk in one transaction. Progress per chunk."""
    read = import_rows(job=job, required="code", value_key="code")
    if read is None:
        return job
    rows = [(line, codes.normalise(row.get("code") or "")) for line, row in read]
    errors: list[dict] = []
    seen: set[str] = set()
    created = 0
    for begin in range(0, len(rows), IMPORT_CHUNK):
        chunk = rows[begin : begin + IMPORT_CHUNK]
        known = set(
            VoucherCode.objects.filter(code__in=[code for _row, code in chunk]).values_list(
                "code", flat=True
            )
        )
        fresh = []
        for index, code in chunk:
            if not code:
                errors.append({"row": index, "code": code, "error": _("The code is empty.")})
            elif len(code) > MAX_CODE_LENGTH:
                errors.append({"row": index, "code": code, "error": _("The code is too long.")})
            elif code in seen:
                errors.append(
                    {"row": index, "code": code, "error": _("The code appears twice in the file.")}
                )
            elif code in known:
                errors.append({"row": index, "code": code, "error": _("The code already exists.")})
            else:
                seen.add(code)
                fresh.append(VoucherCode(reward_id=job.reward_id, code=code))
        try:
            with transaction.atomic():
                VoucherCode.objects.bulk_create(fresh)
            created += len(fresh)
        except IntegrityError:  # another import added one of these meanwhile: row by row
            for voucher in fresh:
                try:
                    with transaction.atomic():
                        voucher.save()
                    created += 1
                except IntegrityError:
                    errors.append(
                        {"row": 0, "code": voucher.code, "error": _("The code already exists.")}
                    )
        import_progress(job=job, processed=begin + len(chunk), created=created)
    import_finish(job=job, created=created, errors=errors)
    return job


def redemption_email_send(*, redemption_id: int) -> bool:
    """The benefit carrier: the reward, its code with a scannable QR code, and its validity;
    False when the redemption was cancelled before the mail went out."""
    redemption = (
        Redemption.objects.select_related("member", "reward", "reward__partner")
        .filter(pk=redemption_id)
        .exclude(status=RedemptionStatus.CANCELLED)
        .first()
    )
    if redemption is None:
        return False
    images = {"voucher-qr": voucher_qr_png(redemption.code)} if redemption.code else {}
    send_templated_email(
        to=redemption.member.email,
        template="redemption",
        language=redemption.member.language,
        context={
            "member": redemption.member,
            "redemption": redemption,
            "reward": redemption.reward,
            "code": codes.display(redemption.code) if redemption.code else "",
        },
        inline_images=images,
    )
    return True
