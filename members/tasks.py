"""Celery tasks of members: thin wrappers that load by id and call a service."""

from celery import shared_task

from .models import InvitationImport, JobStatus

# SMTP unreachable or refusing for now (smtplib's errors are OSErrors): Celery tries again
# with growing, jittered delays (1, 2, 4 ... minutes, at most an hour apart).
EMAIL_RETRY = {
    "acks_late": True,
    "autoretry_for": (OSError,),
    "retry_backoff": 60,
    "retry_backoff_max": 3600,
    "retry_jitter": True,
    "max_retries": 8,
}


@shared_task(**EMAIL_RETRY)
def send_confirmation_email(member_id: int) -> None:
    from .services import confirmation_email_send

    confirmation_email_send(member_id=member_id)


@shared_task(**EMAIL_RETRY)
def send_already_member_email(member_id: int) -> None:
    from .services import already_member_email_send

    already_member_email_send(member_id=member_id)


@shared_task(**EMAIL_RETRY)
def send_invitation_email(invitation_id: int, requested: bool = False) -> None:
    from .services import invitation_send

    invitation_send(invitation_id=invitation_id, requested=requested)


@shared_task(acks_late=True)
def run_invitation_import(job_id: int) -> None:
    from .services import invitation_import_run

    job = InvitationImport.objects.filter(pk=job_id).first()
    if job is not None and job.status == JobStatus.QUEUED:
        invitation_import_run(job=job)


@shared_task(acks_late=True)
def end_sessions(user_id: int) -> int:
    """After an erasure: delete the login's sessions (safe to run twice)."""
    from .privacy import end_sessions as end

    return end(user_id=user_id)
