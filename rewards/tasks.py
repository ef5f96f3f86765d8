"""Background jobs of rewards: thin wrappers that load by id and call a service."""

from __future__ import annotations

from celery import shared_task

from members.models import JobStatus
from members.tasks import EMAIL_RETRY

from .models import VoucherImport


@shared_task(**EMAIL_RETRY)
def send_redemption_email(redemption_id: int) -> None:
    from .services import redemption_email_send

    redemption_email_send(redemption_id=redemption_id)


@shared_task(acks_late=True)
def run_voucher_import(job_id: int) -> None:
    from .services import voucher_import_run

    job = VoucherImport.objects.filter(pk=job_id, status=JobStatus.QUEUED).first()
    if job is not None:
        voucher_import_run(job=job)
