"""Purchase and refund imports (`loyalty.imports`): a partner's CSV or Excel file, streamed, row by
row through the purchase services, idempotent on re-upload, with a per-row error report."""

import csv
import datetime as dt
import io
import tracemalloc
from collections import Counter
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import Workbook

from loyalty import imports
from loyalty.imports import purchase_file_rows, purchase_import_claim, purchase_import_run
from loyalty.models import LedgerEntry, PointsAccount, Purchase, PurchaseImport, Refund
from loyalty.outbox.models import OutboxMessage
from loyalty.services import purchase_record
from loyalty.tasks import run_purchase_import
from members.models import JobStatus
from tests.concurrency import race
from tests.factories import MemberFactory, PartnerFactory

pytestmark = pytest.mark.django_db

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


@pytest.fixture(autouse=True)
def english_and_own_media(settings, tmp_path):
    settings.LANGUAGE_CODE = "en"
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def anna(db):
    return MemberFactory(member_number="100000009", email="anna@example.com")


@pytest.fixture
def bram(db):
    return MemberFactory(member_number="100000017", email="bram@example.com")


def job_for(partner, content: bytes | str, name: str = "purchases.csv", by=None) -> PurchaseImport:
    data = content.encode() if isinstance(content, str) else content
    return PurchaseImport.objects.create(
        partner=partner, file=ContentFile(data, name=name), created_by=by
    )


def run(partner, content, name: str = "purchases.csv") -> PurchaseImport:
    job = purchase_import_run(job=job_for(partner, content, name))
    job.refresh_from_db()
    return job


def xlsx(rows: list[list]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_a_dutch_excel_csv_with_semicolons_records_purchases_and_refunds(program, partner, anna):
    content = (
        "Type;External_ID;Member_Number;Amount;Purchased_At;Channel;Store;"
        "Purchase_External_ID;Refund_ID\n"
        "purchase;B-1;100000009;12,50;31-05-2024 14:30;store;Utrecht;;\n"
        ";B-2;100000009;1.234,00;01-06-2024 09:00;;;;\n"
        "refund;;;2,50;;;;B-1;R-1\n"
    )

    job = run(partner, content)

    assert (job.status, job.total_rows, job.processed_rows) == (JobStatus.DONE, 3, 3)
    assert (job.created_rows, job.replayed_rows, job.error_rows, job.errors) == (3, 0, 0, [])
    first = Purchase.objects.get(partner=partner, external_id="B-1")
    assert (first.member, first.amount, first.store, first.channel) == (
        anna,
        Decimal("12.50"),
        "Utrecht",
        "store",
    )
    assert first.purchased_at == dt.datetime(2024, 5, 31, 14, 30, tzinfo=AMSTERDAM)
    assert first.refunded_amount == Decimal("2.50")
    assert Refund.objects.get().external_id == "R-1"
    assert Purchase.objects.get(external_id="B-2").amount == Decimal("1234.00")


def test_a_comma_csv_finds_members_by_email_and_reads_iso_times(program, partner, anna):
    content = (
        "external_id,email,amount,purchased_at,channel\n"
        "W-1,ANNA@example.com,40.00,2024-06-01T10:15:00+02:00,webshop\n"
        "W-2,anna@example.com,2.00,2024-06-02 08:00,app\n"
    )

    job = run(partner, content)

    assert (job.created_rows, job.errors) == (2, [])
    purchases = {p.external_id: p for p in Purchase.objects.filter(member=anna)}
    assert purchases["W-1"].purchased_at == dt.datetime(2024, 6, 1, 8, 15, tzinfo=dt.UTC)
    assert purchases["W-1"].channel == "webshop"
    assert purchases["W-2"].purchased_at == dt.datetime(2024, 6, 2, 8, 0, tzinfo=AMSTERDAM)
    assert PointsAccount.objects.get(member=anna).balance == 42


def test_an_excel_workbook_is_recorded_with_its_dates_numbers_and_refunds(program, partner, anna):
    content = xlsx(
        [
            ["type", "external_id", "member_number", "amount", "purchased_at",
             "purchase_external_id", "refund_id"],
            ["purchase", "X-1", 100000009, 25.5, dt.datetime(2024, 3, 1, 12, 0), None, None],
            [None, None, None, None, None, None, None],
            ["refund", None, None, 5, None, "X-1", 7],
        ]
    )  # fmt: skip

    job = run(partner, content, name="kassa.xlsx")

    assert (job.status, job.created_rows, job.errors) == (JobStatus.DONE, 2, [])
    purchase = Purchase.objects.get(external_id="X-1")
    assert (purchase.member, purchase.amount, purchase.refunded_amount) == (
        anna,
        Decimal("25.50"),
        Decimal("5.00"),
    )
    assert purchase.purchased_at == dt.datetime(2024, 3, 1, 12, 0, tzinfo=AMSTERDAM)
    assert Refund.objects.get().external_id == "7"


def test_bad_rows_are_reported_with_row_id_and_code_while_the_good_rows_are_recorded(
    program, partner, anna, bram
):
    purchase_record(partner=partner, external_id="OLD", member=anna, amount="10.00")
    content = (
        "type,external_id,member_number,amount,purchased_at,purchase_external_id,refund_id\n"
        "purchase,G-1,100000009,20.00,2024-05-01 10:00,,\n"
        "purchase,U-1,999999999,20.00,2024-05-01 10:00,,\n"
        "purchase,A-1,100000017,twelve,2024-05-01 10:00,,\n"
        "purchase,OLD,100000017,10.00,2024-05-01 10:00,,\n"
        "refund,,,5.00,,NOPE,R-9\n"
        "refund,,,5.00,,G-1,\n"
        "gift,T-1,100000009,1.00,2024-05-01 10:00,,\n"
        "purchase,D-1,100000009,1.00,yesterday,,\n"
        "purchase,G-2,100000017,30.00,2024-05-01 11:00,,\n"
    )

    job = run(partner, content)

    assert (job.status, job.created_rows, job.replayed_rows, job.error_rows) == (
        JobStatus.DONE,
        2,
        0,
        7,
    )
    assert [(e["row"], e["external_id"], e["code"]) for e in job.errors] == [
        (3, "U-1", "member_not_found"),
        (4, "A-1", "invalid_amount"),
        (5, "OLD", "duplicate_purchase_conflict"),
        (6, "R-9", "purchase_not_found"),
        (7, "G-1", "refund_id_required"),
        (8, "T-1", "invalid_type"),
        (9, "D-1", "invalid_purchased_at"),
    ]
    assert all(error["error"] for error in job.errors)
    assert set(Purchase.objects.values_list("external_id", flat=True)) == {"OLD", "G-1", "G-2"}
    assert not Refund.objects.exists()


def test_uploading_the_same_file_again_creates_nothing_and_counts_its_rows_as_already_there(
    program, partner, anna, bram
):
    content = (
        "type;external_id;member_number;amount;purchased_at;purchase_external_id;refund_id\n"
        "purchase;S-1;100000009;10,00;01-05-2024 10:00;;\n"
        "purchase;S-2;100000017;20,00;01-05-2024 11:00;;\n"
        "refund;;;4,00;;S-2;RF-1\n"
    )
    run(partner, content)
    entries = LedgerEntry.objects.count()
    overlapping = content + "purchase;S-3;100000017;5,00;02-05-2024 11:00;;\n"

    again = run(partner, content)
    overlap = run(partner, overlapping)

    assert (again.created_rows, again.replayed_rows, again.error_rows) == (0, 3, 0)
    assert (overlap.created_rows, overlap.replayed_rows, overlap.error_rows) == (1, 3, 0)
    assert Purchase.objects.count() == 3 and Refund.objects.count() == 1
    assert LedgerEntry.objects.count() == entries + 1
    assert Purchase.objects.get(external_id="S-2").refunded_amount == Decimal("4.00")


def test_a_refund_id_used_again_with_another_amount_is_a_conflict(program, partner, anna):
    head = "type,external_id,member_number,amount,purchased_at,purchase_external_id,refund_id\n"
    run(partner, head + "purchase,P-1,100000009,50.00,2024-05-01 10:00,,\nrefund,,,5.00,,P-1,R\n")

    job = run(partner, head + "refund,,,6.00,,P-1,R\n")

    assert [(e["row"], e["code"]) for e in job.errors] == [(2, "duplicate_purchase_conflict")]
    assert Purchase.objects.get().refunded_amount == Decimal("5.00")


def test_progress_is_written_after_every_chunk(program, partner, anna, monkeypatch):
    monkeypatch.setattr(imports, "IMPORT_CHUNK", 2)
    seen = []
    real_progress = imports.import_progress

    def recording_progress(*, job, processed, created):
        real_progress(job=job, processed=processed, created=created)
        stored = PurchaseImport.objects.get(pk=job.pk)
        seen.append((stored.total_rows, stored.processed_rows, stored.progress_percent))

    monkeypatch.setattr(imports, "import_progress", recording_progress)
    rows = "".join(f"C-{n},100000009,1.00,2024-05-01 10:00\n" for n in range(5))

    run(partner, "external_id,member_number,amount,purchased_at\n" + rows)

    assert seen == [(5, 2, 40), (5, 4, 80), (5, 5, 100)]


def test_the_stored_error_list_is_capped_and_the_rest_counted(program, partner, anna, monkeypatch):
    monkeypatch.setattr(imports, "ERRORS_KEPT", 2)
    rows = "".join(f"E-{n},999999999,1.00,2024-05-01 10:00\n" for n in range(5))

    job = run(partner, "external_id,member_number,amount,purchased_at\n" + rows)

    assert (len(job.errors), job.error_rows) == (2, 5)
    lines = list(imports.purchase_import_errors_csv(job=job))
    assert "3 more rows refused" in lines[-1]


def test_an_unreadable_file_fails_the_job_with_the_reason_and_records_nothing(
    program, partner, anna
):
    job = run(partner, b"external_id;amount\n" + b"\xff\xfe;1\n")
    no_header = run(partner, "who,what\nanna,1\n")

    assert (job.status, job.errors[0]["code"]) == (JobStatus.FAILED, "invalid_import_file")
    assert no_header.status == JobStatus.FAILED
    assert "amount" in no_header.errors[0]["error"]
    assert not Purchase.objects.exists()


def test_an_import_for_an_inactive_partner_fails_without_reading_the_rows(program, anna):
    partner = PartnerFactory(name="Gone", is_active=False)

    job = run(
        partner, "external_id,member_number,amount,purchased_at\nI-1,100000009,1,2024-05-01\n"
    )

    assert job.status == JobStatus.FAILED and "not active" in job.errors[0]["error"]
    assert not Purchase.objects.exists()


def test_a_task_delivered_twice_runs_the_import_once(program, partner, anna):
    job = job_for(
        partner, "external_id,member_number,amount,purchased_at\nT-1,100000009,3,2024-05-01\n"
    )

    run_purchase_import(job.pk)
    run_purchase_import(job.pk)

    job.refresh_from_db()
    assert (job.status, job.created_rows, job.replayed_rows) == (JobStatus.DONE, 1, 0)
    assert purchase_import_claim(job_id=job.pk) is None


def test_the_admin_upload_runs_the_import_shows_progress_and_serves_the_error_csv(
    admin_client, admin_user, program, partner, anna, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile(
        "kassa.csv",
        b"external_id;member_number;amount;purchased_at\n"
        b"K-1;100000009;10,00;01-05-2024 10:00\n"
        b"=HYPERLINK(1);999999999;1,00;01-05-2024 10:00\n",
        content_type="text/csv",
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:loyalty_purchaseimport_add"), {"partner": partner.pk, "file": upload}
        )

    job = PurchaseImport.objects.get()
    assert response.status_code == 302
    assert OutboxMessage.objects.get().task == "loyalty.tasks.run_purchase_import"
    assert (job.status, job.created_by, job.created_rows, job.error_rows) == (
        JobStatus.DONE,
        admin_user,
        1,
        1,
    )
    page = admin_client.get(reverse("admin:loyalty_purchaseimport_change", args=[job.pk]))
    assert b'<progress max="100" value="100"' in page.content
    assert b"No such member." in page.content
    listing = admin_client.get(reverse("admin:loyalty_purchaseimport_changelist"))
    assert listing.status_code == 200 and partner.name.encode() in listing.content
    download = admin_client.get(reverse("admin:loyalty_purchaseimport_errors", args=[job.pk]))
    assert download["Content-Type"].startswith("text/csv")
    text = b"".join(download.streaming_content).decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(text))) == [
        ["row", "external_id", "code", "error"],
        ["3", "'=HYPERLINK(1)", "member_not_found", "No such member."],
    ]


def test_an_excel_file_uploaded_in_the_admin_is_checked_and_imported(
    admin_client, program, partner, anna, django_capture_on_commit_callbacks
):
    content = xlsx([["external_id", "member_number", "amount", "purchased_at"],
                    ["XL-1", "100000009", "7,50", "01-05-2024 10:00"]])  # fmt: skip
    upload = SimpleUploadedFile("kassa.xlsx", content)

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("admin:loyalty_purchaseimport_add"), {"partner": partner.pk, "file": upload}
        )

    job = PurchaseImport.objects.get()
    # Imported, and the uploaded file (it may name members by e-mail) is gone.
    assert (job.status, job.created_rows, bool(job.file)) == (JobStatus.DONE, 1, False)
    assert Purchase.objects.get().amount == Decimal("7.50")


def test_the_upload_form_refuses_a_file_without_the_needed_columns_and_queues_nothing(
    admin_client, program, partner
):
    upload = SimpleUploadedFile("wrong.csv", b"email,name\na@example.com,A\n")
    other = SimpleUploadedFile("wrong.pdf", b"%PDF")

    response = admin_client.post(
        reverse("admin:loyalty_purchaseimport_add"), {"partner": partner.pk, "file": upload}
    )
    pdf = admin_client.post(
        reverse("admin:loyalty_purchaseimport_add"), {"partner": partner.pk, "file": other}
    )

    assert "amount" in str(response.context["adminform"].form.errors["file"])
    assert "xlsx" in str(pdf.context["adminform"].form.errors["file"])
    assert not PurchaseImport.objects.exists() and not OutboxMessage.objects.exists()


def test_the_reader_streams_a_200000_row_file_in_a_fraction_of_its_size(tmp_path):
    path = tmp_path / "big.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(["external_id", "member_number", "amount", "purchased_at", "store"])
        for number in range(200_000):
            writer.writerow([f"BIG-{number}", "100000009", "12,50", "31-05-2024 14:30", "Utrecht"])
    size = path.stat().st_size

    tracemalloc.start()
    try:
        with path.open("rb") as handle:
            count = sum(1 for _row in purchase_file_rows(handle, name="big.csv"))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert count == 200_000
    # Loaded whole, the rows would take several times the file's size; streamed, a few rows.
    assert peak < size / 50, (peak, size)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_importing_the_same_file_at_once_record_each_purchase_once(
    program, partner, anna, bram
):
    rows = "".join(
        f"R-{n},{'100000009' if n % 2 else '100000017'},2.00,2024-05-01 10:00\n" for n in range(40)
    )
    content = "external_id,member_number,amount,purchased_at\n" + rows
    jobs = [job_for(partner, content), job_for(partner, content)]

    outcomes = race(2, lambda index: purchase_import_run(job=jobs[index]) and "ran")

    assert outcomes == Counter({"ran": 2})
    for job in jobs:
        job.refresh_from_db()
    assert sum(job.created_rows for job in jobs) == 40
    assert sum(job.replayed_rows for job in jobs) == 40
    assert all(job.error_rows == 0 for job in jobs)
    assert Purchase.objects.count() == 40
    assert LedgerEntry.objects.filter(kind="earn").count() == 40
