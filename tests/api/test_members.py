"""Members on the partner API: enrolment (the portal's rules), lookup, the CRM list, language
and consent; no internal id goes out and nothing but the language can be changed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from loyalty.models import LedgerEntry, PartnerKind, PointsAccount
from loyalty.partner_api.models import ApiScope
from members.models import ConsentRecord, EnrolmentSource, Member, MemberStatus
from tests.api.conftest import client_for
from tests.factories import MemberFactory, PartnerFactory, TermsVersionFactory

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"


@pytest.fixture
def terms(db):
    return TermsVersionFactory(version="2025-1")


@pytest.fixture
def crm(db, program):
    return client_for(PartnerFactory(name="CRM", kind=PartnerKind.CRM))


def enrolment(**changes) -> dict:
    return {
        "email": "Sanne@Example.com",
        "first_name": "Sanne",
        "last_name": "de Vries",
        "birth_date": "1990-04-01",
        "language": "en",
        "terms_version": "2025-1",
        "consent": {"email": True},
        **changes,
    }


# --- enrol ---------------------------------------------------------------------------------


def test_enrolling_creates_a_pending_partner_member_with_consent_and_terms(api, terms):
    response = api.post("/api/v1/members/", enrolment(), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    member = Member.objects.get()
    assert body["member_number"] == member.member_number
    assert "id" not in body and "user" not in body
    assert (body["email"], body["status"], body["language"]) == (
        "sanne@example.com",
        "pending",
        "en",
    )
    assert body["consent"] == {"email": True, "sms": None, "post": None, "profiling": True}
    assert member.enrolment_source == EnrolmentSource.PARTNER
    assert member.terms_acceptances.get().terms_version == terms


def test_enrolling_with_another_terms_version_is_refused_and_changes_nothing(api, terms):
    response = api.post("/api/v1/members/", enrolment(terms_version="2024-9"), format="json")

    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert response.json()["code"] == "terms_not_accepted"
    assert response.json()["current_terms_version"] == "2025-1"
    assert not Member.objects.exists()


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"terms_version": ""}, "terms_not_accepted"),
        (
            {"birth_date": dt.date.today().replace(year=dt.date.today().year - 10).isoformat()},
            "too_young",
        ),
        ({"birth_date": None}, "birth_date_required"),
        ({"email": "sanne@staff.example"}, "excluded_domain"),
        ({"email": "not an address"}, "invalid_email"),
    ],
)
def test_enrolment_follows_the_portals_rules(api, terms, changes, code):
    response = api.post("/api/v1/members/", enrolment(**changes), format="json")

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert not Member.objects.exists()


def test_bad_input_at_enrolment_is_400_naming_the_field(api, terms):
    response = api.post(
        "/api/v1/members/", enrolment(language="de", consent={"fax": True}), format="json"
    )

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"language", "consent"}
    assert not Member.objects.exists()


def test_an_address_already_enrolled_is_409_with_its_member_number(api, terms):
    existing = MemberFactory(email="sanne@example.com")

    response = api.post("/api/v1/members/", enrolment(), format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"
    assert response.json()["member_number"] == existing.member_number
    assert Member.objects.count() == 1


def test_a_key_that_may_not_read_members_gets_no_member_number_with_409(shop, program, terms):
    MemberFactory(email="sanne@example.com")
    writer = client_for(shop, ApiScope.MEMBERS_WRITE)

    response = writer.post("/api/v1/members/", enrolment(), format="json")

    assert response.status_code == 409 and response.json()["code"] == "email_taken"
    assert "member_number" not in response.json()


def test_status_points_and_tier_cannot_be_set_at_enrolment(api, terms):
    response = api.post(
        "/api/v1/members/",
        enrolment(status="active", points=5000, balance=5000, tier="Gold", member_number="1"),
        format="json",
    )

    assert response.status_code == 201
    member = Member.objects.get()
    assert member.status == MemberStatus.PENDING and member.member_number != "1"
    assert not PointsAccount.objects.filter(member=member, balance__gt=0).exists()
    assert not LedgerEntry.objects.exists()


def test_enrolling_needs_members_write(shop, program, terms):
    reader = client_for(shop, ApiScope.MEMBERS_READ)

    response = reader.post("/api/v1/members/", enrolment(), format="json")

    assert response.status_code == 403 and response.json()["code"] == "missing_scope"
    assert not Member.objects.exists()


# --- look up -------------------------------------------------------------------------------


def test_a_member_is_looked_up_by_member_number(api, customer):
    response = api.get(f"/api/v1/members/{customer.member_number}/")

    assert response.status_code == 200
    assert response.json()["member_number"] == customer.member_number
    assert response.json()["consent"] == {
        "email": None,
        "sms": None,
        "post": None,
        "profiling": True,
    }
    assert "id" not in response.json()


def test_an_unknown_member_number_is_404_member_not_found(api, customer):
    response = api.get("/api/v1/members/999999/")

    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM
    assert response.json()["code"] == "member_not_found"


def test_any_partner_looks_a_member_up_by_email_in_any_case(api, customer):
    MemberFactory()

    response = api.get("/api/v1/members/", {"email": customer.email.upper()})

    assert response.status_code == 200
    assert [m["member_number"] for m in response.json()["results"]] == [customer.member_number]


def test_listing_all_members_is_403_for_a_partner_that_is_not_a_crm(api, customer):
    response = api.get("/api/v1/members/")

    assert response.status_code == 403
    assert response.json()["code"] == "not_allowed_for_partner_kind"


def test_a_crm_lists_members_filtered_by_status_language_and_enrolment(crm):
    long_ago = timezone.now() - dt.timedelta(days=400)
    wanted = MemberFactory(language="en")
    MemberFactory(language="en", enrolled_at=long_ago)
    MemberFactory(language="nl")
    MemberFactory(language="en", status=MemberStatus.BLOCKED)
    since = (timezone.now() - dt.timedelta(days=1)).isoformat()

    response = crm.get(
        "/api/v1/members/", {"status": "active", "language": "en", "enrolled_since": since}
    )

    assert response.status_code == 200, response.json()
    assert [m["member_number"] for m in response.json()["results"]] == [wanted.member_number]


def test_the_crm_list_pages_with_a_cursor(crm):
    members = MemberFactory.create_batch(5)

    first = crm.get("/api/v1/members/", {"page_size": 2}).json()
    second = crm.get(first["next"]).json()
    third = crm.get(second["next"]).json()

    numbers = [m["member_number"] for page in (first, second, third) for m in page["results"]]
    assert numbers == [m.member_number for m in reversed(members)]
    assert third["next"] is None


def test_a_page_holds_at_most_1000_members(crm):
    Member.objects.bulk_create(
        Member(email=f"m{i}@example.com", member_number=f"9{i:08d}", enrolment_source="import")
        for i in range(1001)
    )

    response = crm.get("/api/v1/members/", {"page_size": 5000})

    assert len(response.json()["results"]) == 1000
    assert response.json()["next"]


def test_the_crm_list_costs_the_same_queries_for_any_page_size(crm, django_assert_max_num_queries):
    MemberFactory.create_batch(30)

    with django_assert_max_num_queries(5):  # key, last-used, the page (consent in a subquery)
        response = crm.get("/api/v1/members/", {"page_size": 30})

    assert len(response.json()["results"]) == 30


# --- language and consent ------------------------------------------------------------------


def test_patching_the_language_changes_only_the_language(api, customer):
    response = api.patch(
        f"/api/v1/members/{customer.member_number}/", {"language": "nl"}, format="json"
    )

    assert response.status_code == 200 and response.json()["language"] == "nl"
    customer.refresh_from_db()
    assert customer.language == "nl"


@pytest.mark.parametrize(
    "field",
    [
        {"status": "blocked"},
        {"email": "other@example.com"},
        {"points": 100},
        {"balance": 100},
        {"tier": "Gold"},
        {"member_number": "1"},
    ],
)
def test_patching_anything_but_the_language_is_400_and_changes_nothing(api, customer, field):
    response = api.patch(
        f"/api/v1/members/{customer.member_number}/", {"language": "nl", **field}, format="json"
    )

    assert response.status_code == 400
    assert set(response.json()["errors"]) == set(field)
    customer.refresh_from_db()
    assert (customer.language, customer.status) == ("en", MemberStatus.ACTIVE)


def test_an_unknown_language_is_400(api, customer):
    response = api.patch(
        f"/api/v1/members/{customer.member_number}/", {"language": "de"}, format="json"
    )

    assert response.status_code == 400 and "language" in response.json()["errors"]


def test_consent_is_recorded_once_with_the_partner_as_source(api, customer):
    url = f"/api/v1/members/{customer.member_number}/consent/"

    first = api.post(url, {"channel": "email", "granted": True}, format="json")
    again = api.post(url, {"channel": "email", "granted": True}, format="json")

    assert first.status_code == again.status_code == 200
    assert (first.json()["changed"], again.json()["changed"]) == (True, False)
    record = ConsentRecord.objects.get(member=customer)
    assert (record.granted, record.source) == (True, "api:Webshop")


def test_consent_for_an_unknown_channel_is_400_and_records_nothing(api, customer):
    response = api.post(
        f"/api/v1/members/{customer.member_number}/consent/",
        {"channel": "carrier-pigeon", "granted": True},
        format="json",
    )

    assert response.status_code == 400 and "channel" in response.json()["errors"]
    assert not ConsentRecord.objects.exists()


def test_changing_a_member_needs_members_write(shop, program, customer):
    reader = client_for(shop, ApiScope.MEMBERS_READ)

    patch = reader.patch(
        f"/api/v1/members/{customer.member_number}/", {"language": "nl"}, format="json"
    )
    consent = reader.post(
        f"/api/v1/members/{customer.member_number}/consent/",
        {"channel": "email", "granted": True},
        format="json",
    )

    assert patch.status_code == consent.status_code == 403
    customer.refresh_from_db()
    assert customer.language == "en" and not ConsentRecord.objects.exists()
