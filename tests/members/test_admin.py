"""The members back office: search, filters, invitations (single and CSV), no N+1."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from loyalty.services import purchase_record
from members.models import Invitation, InvitationImport, JobStatus, Member, MemberStatus
from tests.factories import MemberFactory, PartnerFactory, TierFactory, email_address_of_length

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english(settings):
    """These tests read English texts; the product's default language is Dutch."""
    settings.LANGUAGE_CODE = "en"


def test_members_are_found_by_member_number_and_by_email(admin_client, program):
    anna = MemberFactory(email="anna@example.com")
    MemberFactory(email="bert@example.com")
    url = reverse("admin:members_member_changelist")

    by_number = admin_client.get(url, {"q": anna.member_number})
    by_email = admin_client.get(url, {"q": "ANNA@example"})

    assert list(by_number.context["cl"].result_list) == [anna]
    assert list(by_email.context["cl"].result_list) == [anna]


def test_members_are_filtered_by_tier(admin_client, program):
    gold = TierFactory(name="Gold", rank=2, threshold=100)
    TierFactory(name="Bronze", rank=1, threshold=0)
    partner = PartnerFactory()
    big, small = MemberFactory(), MemberFactory()
    purchase_record(partner=partner, external_id="1", member=big, amount="150.00")
    purchase_record(partner=partner, external_id="2", member=small, amount="10.00")

    response = admin_client.get(reverse("admin:members_member_changelist"), {"tier": str(gold.pk)})

    assert list(response.context["cl"].result_list) == [big]


def test_the_member_list_costs_the_same_queries_for_5_or_50_members(
    admin_client, program, django_assert_num_queries
):
    url = reverse("admin:members_member_changelist")
    MemberFactory.create_batch(5)
    admin_client.get(url)
    with CaptureQueriesContext(connection) as few:
        admin_client.get(url)
    MemberFactory.create_batch(45)

    with django_assert_num_queries(len(few.captured_queries)):
        response = admin_client.get(url)
    assert len(response.context["cl"].result_list) == 50


def test_the_member_page_shows_balance_tier_and_latest_ledger(admin_client, program):
    member = MemberFactory()
    purchase_record(partner=PartnerFactory(), external_id="X1", member=member, amount="42.00")

    response = admin_client.get(reverse("admin:members_member_change", args=[member.pk]))

    assert response.status_code == 200
    assert response.context["points_account"].balance == 42
    assert [entry.points for entry in response.context["ledger_entries"]] == [42]


def test_members_cannot_be_deleted_in_the_admin(admin_client, program):
    member = MemberFactory()

    response = admin_client.post(
        reverse("admin:members_member_delete", args=[member.pk]), {"post": "yes"}
    )

    assert response.status_code == 403
    assert Member.objects.filter(pk=member.pk).exists()


def test_inviting_a_customer_from_the_admin(
    admin_client, program, django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:members_member_invite"),
            {"email": "nieuw@example.com", "first_name": "Nina", "last_name": "", "language": "nl"},
        )

    assert response.status_code == 302
    member = Member.objects.get(email="nieuw@example.com")
    assert member.status == MemberStatus.INVITED
    assert Invitation.objects.get(member=member).sent_at is not None
    assert mailoutbox[0].to == ["nieuw@example.com"]


def test_inviting_an_excluded_domain_shows_the_error_and_creates_nothing(admin_client, program):
    response = admin_client.post(
        reverse("admin:members_member_invite"), {"email": "baas@staff.example", "language": "nl"}
    )

    assert response.status_code == 200
    assert "email" in response.context["form"].errors
    assert Member.objects.count() == 0


def test_inviting_an_over_long_address_or_name_is_a_form_error_and_creates_nothing(
    admin_client, program
):
    url = reverse("admin:members_member_invite")

    long_address = admin_client.post(url, {"email": email_address_of_length(255), "language": "nl"})
    long_name = admin_client.post(
        url, {"email": "nina@example.com", "first_name": "n" * 151, "language": "nl"}
    )

    assert "email" in long_address.context["form"].errors
    assert "first_name" in long_name.context["form"].errors
    assert Member.objects.count() == 0


def test_a_csv_import_reports_over_long_addresses_and_names_per_row(
    admin_client, program, django_capture_on_commit_callbacks
):
    rows = (
        "email,first_name,last_name,language\n"
        f"{email_address_of_length(254)},Ada,Ant,nl\n"
        f"{email_address_of_length(255)},Bas,Bos,nl\n"
        f"c@example.com,{'c' * 151},Cat,nl\n"
        f"d@example.com,Dirk,{'d' * 151},nl\n"
    )
    upload = SimpleUploadedFile("customers.csv", rows.encode(), content_type="text/csv")

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:members_invitationimport_add"), {"file": upload})

    job = InvitationImport.objects.get()
    assert (job.status, job.created_rows) == (JobStatus.DONE, 1)
    assert [error["row"] for error in job.errors] == [3, 4, 5]
    assert "254" in job.errors[0]["error"] and "150" in job.errors[1]["error"]
    assert list(Member.objects.values_list("email", flat=True)) == [email_address_of_length(254)]


def test_resending_confirmation_reports_members_that_are_not_pending(
    admin_client, program, mailoutbox, django_capture_on_commit_callbacks
):
    pending = MemberFactory(status=MemberStatus.PENDING)
    active = MemberFactory(status=MemberStatus.ACTIVE)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:members_member_changelist"),
            {"action": "resend_confirmation", "_selected_action": [pending.pk, active.pk]},
            follow=True,
        )

    texts = [str(m) for m in response.context["messages"]]
    assert any("1 confirmation" in text for text in texts)
    assert any(active.member_number in text for text in texts)
    assert [m.to for m in mailoutbox] == [[pending.email]]


CSV = (
    "email,first_name,last_name,language\n"
    "a@example.com,Ada,Ant,nl\n"
    "b@example.com,Bas,Bos,en\n"
    "a@example.com,Ada,Again,nl\n"
    "chef@staff.example,Chef,Staff,nl\n"
    "not-an-address,X,Y,nl\n"
    "c@example.com,Cor,Cat,fr\n"
)


def test_a_csv_import_invites_good_rows_and_reports_the_bad_ones(
    admin_client, program, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile("customers.csv", CSV.encode(), content_type="text/csv")

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:members_invitationimport_add"), {"file": upload}
        )

    job = InvitationImport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:members_invitationimport_change", args=[job.pk])
    assert job.status == JobStatus.DONE
    assert (job.total_rows, job.processed_rows, job.created_rows) == (6, 6, 2)
    assert [(e["row"], e["email"]) for e in job.errors] == [
        (4, "a@example.com"),
        (5, "chef@staff.example"),
        (6, "not-an-address"),
        (7, "c@example.com"),
    ]
    assert set(Member.objects.values_list("email", flat=True)) == {"a@example.com", "b@example.com"}
    page = admin_client.get(response["Location"])
    assert b"chef@staff.example" in page.content


def test_a_csv_without_an_email_column_fails_with_a_clear_report(
    admin_client, program, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile("bad.csv", b"naam,taal\nPiet,nl\n", content_type="text/csv")

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:members_invitationimport_add"), {"file": upload})

    job = InvitationImport.objects.get()
    assert job.status == JobStatus.FAILED
    assert "email" in job.errors[0]["error"]
    assert Member.objects.count() == 0


def test_a_file_that_is_not_csv_is_refused(admin_client, program):
    upload = SimpleUploadedFile("list.xlsx", b"PK\x03\x04", content_type="application/zip")

    response = admin_client.post(reverse("admin:members_invitationimport_add"), {"file": upload})

    assert response.status_code == 200
    assert "file" in response.context["adminform"].form.errors
    assert InvitationImport.objects.count() == 0


def test_an_impossible_birth_date_is_a_form_error_on_the_member_page(admin_client, program):
    member = MemberFactory(first_name="Ada", last_name="Lovelace")
    url = reverse("admin:members_member_change", args=[member.pk])
    form = {
        "status": member.status,
        "email": member.email,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "birth_date": "0001-01-01",
        "language": "nl",
        "consent_records-TOTAL_FORMS": "0",
        "consent_records-INITIAL_FORMS": "0",
    }

    response = admin_client.post(url, form)

    assert response.status_code == 200
    assert "birth_date" in response.context["adminform"].form.errors
    member.refresh_from_db()
    assert member.birth_date.year > 1900
