"""Celery tasks of members: thin wrappers that load by id and call a service or send mail."""

from celery import shared_task
from django.urls import reverse

from .emails import send_templated_email
from .models import Invitation, InvitationImport, Member, MemberStatus


@shared_task(bind=True, acks_late=True, max_retries=5, default_retry_delay=60)
def send_confirmation_email(self, member_id: int) -> None:
    from .services import confirmation_token

    member = Member.objects.filter(pk=member_id, status=MemberStatus.PENDING).first()
    if member is None:
        return  # confirmed or erased meanwhile: nothing to send
    path = reverse("members:confirm", kwargs={"token": confirmation_token(member=member)})
    try:
        send_templated_email(
            to=member.email,
            template="confirm_email",
            language=member.language,
            context={"member": member, "confirm_path": path},
        )
    except OSError as exc:  # SMTP unreachable: try again later
        raise self.retry(exc=exc) from exc


@shared_task(bind=True, acks_late=True, max_retries=5, default_retry_delay=60)
def send_already_member_email(self, member_id: int) -> None:
    """Someone enrolled with this active member's address: point the owner to login/reset."""
    member = Member.objects.filter(pk=member_id, status=MemberStatus.ACTIVE).first()
    if member is None:
        return  # blocked or erased meanwhile: nothing to send
    try:
        send_templated_email(
            to=member.email,
            template="already_member",
            language=member.language,
            context={
                "member": member,
                "login_path": reverse("members:login"),
                "password_reset_path": reverse("members:password_reset"),
            },
        )
    except OSError as exc:  # SMTP unreachable: try again later
        raise self.retry(exc=exc) from exc


@shared_task(bind=True, acks_late=True, max_retries=5, default_retry_delay=60)
def send_invitation_email(self, invitation_id: int) -> None:
    from django.utils import timezone

    from .services import invitation_token

    invitation = (
        Invitation.objects.select_related("member")
        .filter(pk=invitation_id, accepted_at__isnull=True)
        .first()
    )
    if invitation is None:
        return
    member = invitation.member
    path = reverse("members:enrol") + "?invitation=" + invitation_token(member=member)
    try:
        send_templated_email(
            to=member.email,
            template="invitation",
            language=member.language,
            context={"member": member, "enrol_path": path},
        )
    except OSError as exc:
        raise self.retry(exc=exc) from exc
    Invitation.objects.filter(pk=invitation.pk).update(sent_at=timezone.now())


@shared_task(acks_late=True)
def run_invitation_import(job_id: int) -> None:
    from .services import invitation_import_run

    job = InvitationImport.objects.filter(pk=job_id).first()
    if job is not None and job.status == "queued":
        invitation_import_run(job=job)


@shared_task(acks_late=True)
def end_sessions(user_id: int) -> int:
    """After an erasure: delete the login's sessions (safe to run twice)."""
    from .privacy import end_sessions as end

    return end(user_id=user_id)
