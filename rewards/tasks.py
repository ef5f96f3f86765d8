"""Background jobs of rewards."""

from __future__ import annotations

import io

import segno
from celery import shared_task

from members.emails import send_templated_email

from . import codes
from .models import Redemption, RedemptionStatus


def qr_png(text: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=8, border=2)
    return buffer.getvalue()


@shared_task(bind=True, acks_late=True, max_retries=5, default_retry_delay=60)
def send_redemption_email(self, redemption_id: int) -> None:
    """The benefit carrier: the reward, its code with a scannable QR code, and its validity."""
    redemption = (
        Redemption.objects.select_related("member", "reward", "reward__partner")
        .filter(pk=redemption_id)
        .exclude(status=RedemptionStatus.CANCELLED)
        .first()
    )
    if redemption is None:
        return  # cancelled before the mail went out
    images = {"voucher-qr": qr_png(redemption.code)} if redemption.code else {}
    try:
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
    except OSError as exc:  # SMTP unreachable: try again later
        raise self.retry(exc=exc) from exc


@shared_task(acks_late=True)
def run_voucher_import(job_id: int) -> None:
    from .models import VoucherImport
    from .services import voucher_import_run

    job = VoucherImport.objects.filter(pk=job_id, status="queued").first()
    if job is not None:
        voucher_import_run(job=job)
