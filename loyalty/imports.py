"""Purchases and refunds imported from a partner's CSV or Excel file (the admin's upload).

The file is streamed, never loaded whole: a 500,000-row file costs the memory of one chunk.
Each chunk of rows is one transaction; a bad row is reported (row number, external id, code,
message) and leaves no trace while the others are recorded. Runs of purchase rows go through
`purchases_record_batch`, refund rows through `purchase_refund`, whose (partner, external id)
and (purchase, refund id) rules make a re-upload create nothing twice: rows already recorded
count as "already there".
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.db import OperationalError, transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _

from members.errors import MemberNotFound
from members.imports import import_finish, import_progress
from members.models import JobStatus, Member

from .errors import ApplicationError, NotFound, PartnerInactive, ValidationFailed
from .models import Purchase, PurchaseImport, Refund
from .services import PurchaseInput, purchase_refund, purchases_record_batch

# Rows per transaction; progress is written after each. The chunk's transaction keeps the
# points accounts of its members locked until it commits: 500 rows (a fraction of a second
# through the set-based batch) keeps live purchases of those members from waiting long.
IMPORT_CHUNK = 500
CHUNK_ATTEMPTS = 3
ERRORS_KEPT = 10_000  # row errors stored on the job; the rest are only counted
COLUMNS = (
    "type",
    "external_id",
    "member_number",
    "email",
    "amount",
    "purchased_at",
    "channel",
    "store",
    "purchase_external_id",
    "refund_id",
)
PURCHASE, REFUND = "purchase", "refund"
DATE_FORMATS = ("%d-%m-%Y %H:%M", "%d-%m-%Y %H:%M:%S", "%d-%m-%Y")


class ImportFileInvalid(ValidationFailed):
    code = "invalid_import_file"
    field = "file"


class InvalidRowType(ValidationFailed):
    code = "invalid_type"
    field = "type"


class InvalidPurchaseTime(ValidationFailed):
    code = "invalid_purchased_at"
    field = "purchased_at"


class RefundIdRequired(ValidationFailed):
    code = "refund_id_required"
    field = "refund_id"


class PurchaseNotFound(NotFound):
    code = "purchase_not_found"
    field = "purchase_external_id"


# --- reading: one row at a time ------------------------------------------------------------


def _is_excel(name: str) -> bool:
    return name.lower().endswith(".xlsx")


def _header(values: Any) -> list[str]:
    return [str(value or "").strip().lower() for value in values]


def _header_check(header: list[str]) -> None:
    if "amount" not in header or not {"external_id", "purchase_external_id"} & set(header):
        raise ImportFileInvalid(
            _(
                "The file needs a header row with an 'amount' column and an 'external_id' "
                "(or, for refunds only, 'purchase_external_id') column."
            )
        )


def _csv_rows(handle: IO[bytes]) -> Iterator[tuple[int, dict[str, Any]]]:
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
    try:
        first = text.readline()
        # Dutch Excel writes ';' (the comma is its decimal separator); others write ','.
        delimiter = ";" if first.count(";") > first.count(",") else ","
        header = _header(next(csv.reader([first], delimiter=delimiter), []))
        _header_check(header)
        reader = csv.reader(text, delimiter=delimiter)
        for values in reader:
            if not any(value.strip() for value in values):
                continue
            # The line number in the file: the header was line 1.
            yield reader.line_num + 1, dict(zip(header, values, strict=False))
    finally:
        text.detach()  # the caller's file stays open (the upload form reads it again)


def _excel_rows(handle: IO[bytes]) -> Iterator[tuple[int, dict[str, Any]]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(handle, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError and XML errors alike
        raise ImportFileInvalid(_("The file is not a readable Excel (.xlsx) workbook.")) from exc
    try:
        rows = workbook.worksheets[0].iter_rows(values_only=True)
        header = _header(next(rows, ()))
        _header_check(header)
        for number, values in enumerate(rows, start=2):
            if all(value is None or str(value).strip() == "" for value in values):
                continue
            yield number, dict(zip(header, values, strict=False))
    finally:
        workbook.close()


def purchase_file_rows(handle: IO[bytes], *, name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, values by lower-case column) of each non-empty row of a CSV (UTF-8, `,` or
    `;`) or .xlsx file, read as it goes; ImportFileInvalid for an unreadable file or header."""
    try:
        yield from (_excel_rows(handle) if _is_excel(name) else _csv_rows(handle))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ImportFileInvalid(
            _("The file is not a readable CSV (UTF-8, separated by ',' or ';'): %(reason)s")
            % {"reason": exc}
        ) from exc


def purchase_file_check(*, handle: IO[bytes], name: str) -> None:
    """Raise ImportFileInvalid unless the file opens and its header names the needed columns
    (what the upload form checks before a job is queued)."""
    for _row in purchase_file_rows(handle, name=name):
        break


def _rows_counted(job: PurchaseImport) -> int:
    """The number of data rows, for the progress bar: a streaming pass (an .xlsx file names
    its size in its header, which openpyxl reads without the rows)."""
    with job.file.open("rb") as handle:
        if _is_excel(job.file.name):
            from openpyxl import load_workbook

            workbook = load_workbook(handle, read_only=True)
            try:
                sheet = workbook.worksheets[0]
                if sheet.max_row is not None:
                    return max(sheet.max_row - 1, 0)
            finally:
                workbook.close()
            handle.seek(0)  # no size in the header: count the rows
        return sum(1 for _row in purchase_file_rows(handle, name=job.file.name))


# --- one row -------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a number typed into Excel: 123.0 is the id 123
    return str(value).strip()


def _amount(value: Any) -> str:
    """The amount as the services read it: '12,50' and '1.234,50' (Dutch) become 12.50."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    text = _text(value).replace(" ", "").replace("€", "")
    if "," in text:
        if "." in text and text.rindex(".") > text.rindex(","):
            text = text.replace(",", "")  # 1,234.50
        else:
            text = text.replace(".", "").replace(",", ".")  # 1.234,50 or 12,50
    return text


def _time_parsed(text: str) -> dt.datetime:
    if not text:
        raise InvalidPurchaseTime(_("The purchase needs its time (purchased_at)."))
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        pass
    for pattern in DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, pattern)
        except ValueError:
            continue
    raise InvalidPurchaseTime(
        _("Write the time as 2024-05-31T14:30 or 31-05-2024 14:30, not %(value)s.")
        % {"value": text}
    )


def _purchased_at(value: Any) -> dt.datetime:
    """An aware time from an Excel date, ISO 8601 or `dd-mm-yyyy HH:MM`; a time without a zone
    is in the program's time zone."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value, dt.time())
    else:
        moment = _time_parsed(_text(value))
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_default_timezone())
    return moment


def _row_type(row: dict[str, Any]) -> str:
    kind = _text(row.get("type")).lower() or PURCHASE
    if kind not in (PURCHASE, REFUND):
        raise InvalidRowType(
            _("The type is 'purchase' or 'refund', not %(value)s.") % {"value": kind}
        )
    return kind


@dataclass
class _Members:
    """The chunk's members by number and by lower-case e-mail: two queries a chunk."""

    by_number: dict[str, Member] = field(default_factory=dict)
    by_email: dict[str, Member] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: list[tuple[int, dict[str, Any]]]) -> _Members:
        numbers = {_text(row.get("member_number")) for _line, row in rows} - {""}
        emails = {_text(row.get("email")).lower() for _line, row in rows} - {""}
        found = cls()
        if numbers:
            found.by_number = {
                member.member_number: member
                for member in Member.objects.filter(member_number__in=numbers)
            }
        if emails:
            found.by_email = {
                member.email_lower: member
                for member in Member.objects.annotate(email_lower=Lower("email")).filter(
                    email_lower__in=emails
                )
            }
        return found

    def get(self, row: dict[str, Any]) -> Member:
        number = _text(row.get("member_number"))
        member = (
            self.by_number.get(number)
            if number
            else self.by_email.get(_text(row.get("email")).lower())
        )
        if member is None:
            raise MemberNotFound()
        return member


def _record_purchases(
    job: PurchaseImport, rows: list[tuple[int, dict[str, Any]]], members: _Members, chunk: _Tally
) -> None:
    """A run of purchase rows through the set-based batch: a handful of statements for all."""
    inputs, recorded = [], []
    for line, row in rows:
        try:
            inputs.append(
                PurchaseInput(
                    external_id=_text(row.get("external_id")),
                    member=members.get(row),
                    amount=_amount(row.get("amount")),
                    purchased_at=_purchased_at(row.get("purchased_at")),
                    channel=_text(row.get("channel")).lower() or "store",
                    store=_text(row.get("store")),
                )
            )
        except ApplicationError as error:
            chunk.refuse(line, row, error)
        else:
            recorded.append((line, row))
    outcomes = purchases_record_batch(partner=job.partner, items=inputs)
    for (line, row), outcome in zip(recorded, outcomes, strict=True):
        if isinstance(outcome, ApplicationError):
            chunk.refuse(line, row, outcome)
        else:
            chunk.created += outcome.created
            chunk.replayed += not outcome.created


def _record_refund(job: PurchaseImport, row: dict[str, Any]) -> bool:
    refund_id = _text(row.get("refund_id"))
    if not refund_id:
        # Without its id a refund cannot be recognised on a re-upload: it would count twice.
        raise RefundIdRequired(_("A refund row needs its refund_id."))
    purchase_id = _text(row.get("purchase_external_id")) or _text(row.get("external_id"))
    purchase = Purchase.objects.filter(partner=job.partner, external_id=purchase_id).first()
    if purchase is None:
        raise PurchaseNotFound(
            _("This partner has no purchase %(id)s to refund.") % {"id": purchase_id}
        )
    known = Refund.objects.filter(purchase=purchase, external_id=refund_id).exists()
    purchase_refund(
        purchase=purchase,
        amount=_amount(row.get("amount")),
        external_id=refund_id,
        created_by=job.created_by,
    )
    return not known


def _row_id(row: dict[str, Any]) -> str:
    kind = _text(row.get("type")).lower()
    if kind == REFUND:
        return _text(row.get("refund_id")) or _text(row.get("purchase_external_id"))
    return _text(row.get("external_id"))


# --- the run -------------------------------------------------------------------------------


@dataclass
class _Tally:
    processed: int = 0
    created: int = 0
    replayed: int = 0
    refused: int = 0
    errors: list[dict] = field(default_factory=list)

    def refuse(self, line: int, row: dict[str, Any], error: ApplicationError) -> None:
        self.refused += 1
        if len(self.errors) < ERRORS_KEPT:
            self.errors.append(
                {
                    "row": line,
                    "external_id": _row_id(row)[:100],
                    "code": error.code,
                    "error": str(error.message),
                }
            )


def _import_chunk(job: PurchaseImport, rows: list[tuple[int, dict[str, Any]]], tally: _Tally):
    """One transaction for the chunk. Each row's service runs in its own savepoint (its
    `atomic`), so a refused row leaves no trace and the others go ahead. A deadlock with
    another import or a live purchase rolls the chunk back: it is run again, which is safe
    because every row is idempotent."""
    for attempt in range(CHUNK_ATTEMPTS):
        chunk = _Tally()
        try:
            members = _Members.of(rows)
            with transaction.atomic():
                purchases: list[tuple[int, dict[str, Any]]] = []
                for line, row in rows:
                    try:
                        if _row_type(row) == PURCHASE:
                            purchases.append((line, row))
                            continue
                        # A refund may be of a purchase above it: those are written first.
                        _record_purchases(job, purchases, members, chunk)
                        purchases = []
                        created = _record_refund(job, row)
                    except ApplicationError as error:
                        chunk.refuse(line, row, error)
                    else:
                        chunk.created += created
                        chunk.replayed += not created
                _record_purchases(job, purchases, members, chunk)
                chunk.errors.sort(key=lambda error: error["row"])
            break
        except OperationalError:  # deadlock detected, serialization failure
            if attempt == CHUNK_ATTEMPTS - 1:
                raise
            time.sleep(0.1 * (attempt + 1))
    tally.processed += len(rows)
    tally.created += chunk.created
    tally.replayed += chunk.replayed
    tally.refused += chunk.refused
    tally.errors.extend(chunk.errors[: max(ERRORS_KEPT - len(tally.errors), 0)])
    import_progress(job=job, processed=tally.processed, created=tally.created)
    PurchaseImport.objects.filter(pk=job.pk).update(
        replayed_rows=tally.replayed, error_rows=tally.refused
    )


def _fail(job: PurchaseImport, message: str) -> PurchaseImport:
    job.status = JobStatus.FAILED
    job.errors = [{"row": 0, "external_id": "", "code": "invalid_import_file", "error": message}]
    job.error_rows = 1
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "errors", "error_rows", "finished_at"])
    return job


def purchase_import_run(*, job: PurchaseImport) -> PurchaseImport:
    """Record every purchase and refund row of the job's file for its partner.

    Rows already recorded (same partner and id, same member and amount; same refund id and
    amount) count as already there; conflicting and invalid rows are refused with their row
    number, id, error code and message (the first ERRORS_KEPT of them kept). A file that cannot
    be read, or an inactive partner, fails the job with the reason and records nothing.
    """
    job.status = JobStatus.RUNNING
    job.save(update_fields=["status"])
    if not job.partner.is_active:
        return _fail(job, str(PartnerInactive().message))
    try:
        with job.file.open("rb") as handle:
            purchase_file_check(handle=handle, name=job.file.name)
        job.total_rows = _rows_counted(job)
    except ImportFileInvalid as error:
        return _fail(job, str(error.message))
    job.save(update_fields=["total_rows"])

    tally = _Tally()
    try:
        with job.file.open("rb") as handle:
            chunk: list[tuple[int, dict[str, Any]]] = []
            for line, row in purchase_file_rows(handle, name=job.file.name):
                chunk.append((line, row))
                if len(chunk) == IMPORT_CHUNK:
                    _import_chunk(job, chunk, tally)
                    chunk = []
            if chunk:
                _import_chunk(job, chunk, tally)
    except ImportFileInvalid as error:  # unreadable past what the first pass read
        return _fail(job, str(error.message))

    job.total_rows = tally.processed
    job.replayed_rows = tally.replayed
    job.error_rows = tally.refused
    job.save(update_fields=["total_rows", "replayed_rows", "error_rows"])
    import_finish(job=job, created=tally.created, errors=tally.errors)
    # The file may name members by e-mail: once its rows are in the database (and the refused
    # ones in the report), it is deleted rather than kept for erasure to chase (GDPR).
    job.file.delete(save=True)
    return job


def purchase_import_claim(*, job_id: int) -> PurchaseImport | None:
    """The queued job with this id, now marked running, or None when it is gone or another
    worker has it already (a task delivered twice runs the import once)."""
    claimed = PurchaseImport.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING
    )
    if not claimed:
        return None
    return PurchaseImport.objects.select_related("partner", "created_by").get(pk=job_id)


def purchase_import_errors_csv(*, job: PurchaseImport) -> Iterator[str]:
    """The job's row errors as CSV lines (row, external_id, code, error), for the download;
    a value a spreadsheet would run as a formula is written as text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: list[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    def safe(value: Any) -> str:
        text = str(value)
        return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text

    yield line(["row", "external_id", "code", "error"])
    for error in job.errors:
        yield line(
            [
                error.get("row", ""),
                safe(error.get("external_id", "")),
                error.get("code", ""),
                safe(error.get("error", "")),
            ]
        )
    hidden = job.error_rows - len(job.errors)
    if hidden > 0:
        yield line(
            ["", "", "", _("... and %(count)d more rows refused (not listed).") % {"count": hidden}]
        )
