"""Background CSV imports: the steps every import runs through, whatever it creates.

An import is a `BackgroundImport` row (invitations here, voucher codes in rewards). Starting it
saves it queued and hands its task to the outbox in one transaction; the task's service reads
the rows, does its own per-row work, reports progress and finishes. Every entry point (admin,
API, command) starts an import with `import_start`.
"""

from __future__ import annotations

import csv
import io

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from loyalty.outbox.services import outbox_enqueue

from .models import BackgroundImport, JobStatus, User


@transaction.atomic
def import_start(*, job: BackgroundImport, by: User | None) -> BackgroundImport:
    """Save a new import queued and have its task (`type(job).import_task`) run it after the
    commit; the outbox hands it to Celery even if the broker is down right now."""
    task = getattr(type(job), "import_task", "")
    if not task:
        raise TypeError(f"{type(job).__name__} names no import_task.")
    job.created_by = by
    job.status = JobStatus.QUEUED
    job.save()
    outbox_enqueue(task, job.pk)
    return job


def import_rows(
    *, job: BackgroundImport, required: str, value_key: str
) -> list[tuple[int, dict]] | None:
    """Mark the job running and return (line number, row) pairs with lower-case keys; on an
    unreadable file or a missing `required` column, mark it failed with the reason (reported
    as row 0, with an empty `value_key`) and return None."""
    job.status = JobStatus.RUNNING
    job.save(update_fields=["status"])
    try:
        with job.file.open("rb") as handle:
            text = handle.read().decode("utf-8-sig")
        reader = csv.DictReader(io.StringIO(text))
        header = [name.strip().lower() for name in reader.fieldnames or []]
        if required not in header:
            raise ValueError(
                _("The CSV needs a header row with a '%(column)s' column.") % {"column": required}
            )
        reader.fieldnames = header
        # Line numbers of the file (blank lines are skipped, not counted away).
        rows = [(reader.line_num, row) for row in reader]
    except (UnicodeDecodeError, csv.Error, ValueError) as exc:
        job.status = JobStatus.FAILED
        job.errors = [{"row": 0, value_key: "", "error": str(exc)}]
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "errors", "finished_at"])
        return None
    job.total_rows = len(rows)
    job.save(update_fields=["total_rows"])
    return rows


def import_progress(*, job: BackgroundImport, processed: int, created: int) -> None:
    """Record how far the import is, for the progress page (one UPDATE, no other field)."""
    type(job)._default_manager.filter(pk=job.pk).update(
        processed_rows=processed, created_rows=created
    )


def import_finish(*, job: BackgroundImport, created: int, errors: list[dict]) -> None:
    """Mark the import done with what it created and the rows it refused."""
    job.processed_rows = job.total_rows
    job.created_rows = created
    job.errors = errors
    job.status = JobStatus.DONE
    job.finished_at = timezone.now()
    job.save(update_fields=["processed_rows", "created_rows", "errors", "status", "finished_at"])
