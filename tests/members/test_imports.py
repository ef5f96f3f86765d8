"""Background CSV imports (`members.imports`): starting one queues its task through the outbox;
the steps read the file, report progress and finish, for every kind of import."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from loyalty.outbox.models import OutboxMessage
from members.imports import import_finish, import_progress, import_rows, import_start
from members.models import InvitationImport, JobStatus
from rewards.models import VoucherImport
from tests.factories import RewardFactory

pytestmark = pytest.mark.django_db


def csv_file(text: str, name: str = "rows.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def test_starting_an_import_saves_it_queued_and_queues_its_task_in_the_outbox(
    admin_user, django_capture_on_commit_callbacks
):
    job = InvitationImport(file=csv_file("email\na@example.com\n"), status=JobStatus.DONE)

    with django_capture_on_commit_callbacks(execute=False):
        import_start(job=job, by=admin_user)

    job.refresh_from_db()
    assert (job.status, job.created_by) == (JobStatus.QUEUED, admin_user)
    message = OutboxMessage.objects.get()
    assert (message.task, message.args) == ("members.tasks.run_invitation_import", [job.pk])


def test_a_voucher_import_queues_the_rewards_task(admin_user, django_capture_on_commit_callbacks):
    job = VoucherImport(reward=RewardFactory(), file=csv_file("code\nABC\n"))

    with django_capture_on_commit_callbacks(execute=False):
        import_start(job=job, by=admin_user)

    assert OutboxMessage.objects.get().task == "rewards.tasks.run_voucher_import"


def test_the_steps_read_the_rows_report_progress_and_finish(admin_user):
    job = InvitationImport.objects.create(
        file=csv_file("Email,Name\na@example.com,A\n\nb@example.com,B\n"), created_by=admin_user
    )

    rows = import_rows(job=job, required="email", value_key="email")
    import_progress(job=job, processed=1, created=1)
    job.refresh_from_db()
    progress = (job.status, job.total_rows, job.processed_rows, job.created_rows)
    import_finish(job=job, created=1, errors=[{"row": 4, "email": "b@example.com", "error": "no"}])

    assert [(line, row["email"]) for line, row in rows] == [
        (2, "a@example.com"),
        (4, "b@example.com"),
    ]
    assert progress == (JobStatus.RUNNING, 2, 1, 1)
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.created_rows) == (JobStatus.DONE, 2, 1)
    assert job.finished_at is not None


def test_a_file_without_the_required_column_fails_the_import_with_the_reason(admin_user):
    job = InvitationImport.objects.create(file=csv_file("name\nA\n"), created_by=admin_user)

    rows = import_rows(job=job, required="email", value_key="email")

    job.refresh_from_db()
    assert rows is None
    assert job.status == JobStatus.FAILED
    assert job.errors[0]["row"] == 0 and "email" in job.errors[0]["error"]
