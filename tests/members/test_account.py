"""A member's own account: profile, consent, password, new terms, FAQ/privacy, GDPR."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile

import pytest
from django.urls import reverse

from loyalty.models import LedgerEntry, PointsAccount, Purchase
from loyalty.services import points_credit, purchase_record
from members import services
from members.models import ConsentRecord, FaqItem, Member, MemberStatus, PrivacyStatement, User
from members.selectors import marketing_consent_granted
from rewards.services import reward_redeem
from tests.factories import (
    MemberFactory,
    PartnerFactory,
    RewardFactory,
    TermsVersionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

PASSWORD = "stroopwafels-every-day-7"


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def member(program):
    user = UserFactory(email="noor@example.com", password=PASSWORD)
    return MemberFactory(user=user, email="noor@example.com", language="en", first_name="Noor")


@pytest.fixture
def member_client(client, member):
    client.force_login(member.user)
    return client


def test_the_profile_is_saved_and_the_language_follows(member_client, member):
    response = member_client.post(
        reverse("members:account"),
        {
            "profile": "1",
            "first_name": "Noor",
            "last_name": "de Vries",
            "birth_date": "1990-05-17",
            "language": "nl",
        },
        follow=True,
    )

    member.refresh_from_db()
    assert (member.last_name, member.language) == ("de Vries", "nl")
    assert member.birth_date == dt.date(1990, 5, 17)
    assert "Je gegevens zijn opgeslagen." in response.content.decode()


def test_a_too_young_birth_date_is_a_form_error_and_changes_nothing(member_client, member):
    response = member_client.post(
        reverse("members:account"),
        {
            "profile": "1",
            "first_name": "X",
            "last_name": "Y",
            "birth_date": dt.date.today().isoformat(),
            "language": "en",
        },
    )

    assert "at least 16" in str(response.context["form"].errors)
    member.refresh_from_db()
    assert member.first_name == "Noor"


@pytest.mark.parametrize(
    ("birth_date", "fragment"), [("0001-01-01", "120 years"), ("2999-12-31", "future")]
)
def test_an_impossible_birth_date_is_a_form_error_and_changes_nothing(
    member_client, member, birth_date, fragment
):
    response = member_client.post(
        reverse("members:account"),
        {
            "profile": "1",
            "first_name": "X",
            "last_name": "Y",
            "birth_date": birth_date,
            "language": "en",
        },
    )

    assert fragment in " ".join(response.context["form"].errors["birth_date"])
    member.refresh_from_db()
    assert (member.first_name, member.birth_date) == ("Noor", dt.date(1985, 6, 15))


def test_consent_changes_are_recorded_one_by_one(member_client, member):
    member_client.post(reverse("members:consent"), {"granted": "on"})
    member_client.post(reverse("members:consent"), {"granted": "on"})  # no change, no record
    member_client.post(reverse("members:consent"), {})

    assert list(ConsentRecord.objects.filter(member=member).values_list("granted", "source")) == [
        (False, "portal"),
        (True, "portal"),
    ]
    assert not marketing_consent_granted(member=member)


def test_new_terms_are_asked_before_any_portal_page(member_client, member):
    terms = TermsVersionFactory(version="2027.1")

    response = member_client.get(reverse("rewards:catalogue"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("members:terms_accept"))

    refused = member_client.post(reverse("members:terms_accept"), {"next": "/portal/rewards/"})
    assert refused.status_code == 200
    accepted = member_client.post(
        reverse("members:terms_accept"), {"accept": "1", "next": "/portal/rewards/"}
    )
    assert accepted["Location"] == "/portal/rewards/"
    assert member.terms_acceptances.get().terms_version == terms
    assert member_client.get(reverse("rewards:catalogue")).status_code == 200


def test_faq_and_privacy_pages_show_the_published_text(client, program):
    FaqItem.objects.create(
        question_nl="Hoe spaar ik?",
        question_en="How do I save?",
        answer_nl="Zo.",
        answer_en="Like this.",
        position=1,
    )
    FaqItem.objects.create(
        question_nl="Verborgen",
        question_en="Hidden",
        answer_nl="-",
        answer_en="-",
        is_published=False,
    )
    PrivacyStatement.objects.create(version="1", body_nl="Wij beschermen.", body_en="We protect.")

    faq = client.get(reverse("members:faq")).content.decode()
    privacy = client.get(reverse("members:privacy")).content.decode()

    assert "How do I save?" in faq and "Hidden" not in faq
    assert "We protect." in privacy


def test_the_data_export_holds_profile_consents_points_purchases_and_rewards(member_client, member):
    services.consent_set(member=member, granted=True, source="enrolment")
    purchase_record(
        partner=PartnerFactory(name="Webshop"), external_id="W1", member=member, amount="42.50"
    )
    points_credit(member=member, points=500, reason="Welcome")
    reward_redeem(member=member, reward=RewardFactory(kind="product", name_en="Cake"))

    response = member_client.post(reverse("members:data_export"))

    assert response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        data = json.loads(archive.read("personal-data.json"))
    assert data["member"]["email"] == "noor@example.com"
    assert data["consent_records"][0]["granted"] is True
    assert data["purchases"][0]["external_id"] == "W1" and data["purchases"][0]["amount"] == "42.50"
    assert data["points"]["balance"] == PointsAccount.objects.get(member=member).balance
    assert (
        len(data["points"]["ledger"]) == LedgerEntry.objects.filter(account__member=member).count()
    )
    assert data["rewards"][0]["reward__name_en"] == "Cake"


def test_erasure_needs_the_password_and_keeps_the_accounts_whole(member_client, member):
    purchase_record(partner=PartnerFactory(), external_id="P1", member=member, amount="80.00")
    services.consent_set(member=member, granted=True, source="enrolment")
    ledger_sum = sum(LedgerEntry.objects.values_list("points", flat=True))

    wrong = member_client.post(reverse("members:erase"), {"password": "nope"})
    assert "not correct" in str(wrong.context["form"].errors)
    assert Member.objects.get(pk=member.pk).status == MemberStatus.ACTIVE

    member_client.post(reverse("members:erase"), {"password": PASSWORD})

    member.refresh_from_db()
    user = User.objects.get(pk=member.user_id)
    assert member.status == MemberStatus.ERASED
    assert (member.first_name, member.last_name, member.birth_date) == ("", "", None)
    assert member.email.endswith("@erased.invalid") and "noor" not in member.email
    assert not user.is_active and not user.has_usable_password()
    assert not marketing_consent_granted(member=member)
    assert sum(LedgerEntry.objects.values_list("points", flat=True)) == ledger_sum
    assert Purchase.objects.filter(member=member).count() == 1
    assert member_client.get(reverse("points:dashboard")).status_code == 302  # logged out


def test_the_admin_erases_after_confirmation_and_exports_on_request(admin_client, member):
    url = reverse("admin:members_member_changelist")

    ask = admin_client.post(url, {"action": "erase_selected", "_selected_action": [member.pk]})
    assert b"This cannot be undone." in ask.content
    assert Member.objects.get(pk=member.pk).status == MemberStatus.ACTIVE

    export = admin_client.get(reverse("admin:members_member_export", args=[member.pk]))
    assert export["Content-Type"] == "application/zip"

    done = admin_client.post(
        url,
        {"action": "erase_selected", "_selected_action": [member.pk], "confirm": "yes"},
        follow=True,
    )
    assert b"1 member(s) erased" in done.content
    assert Member.objects.get(pk=member.pk).status == MemberStatus.ERASED
    again = admin_client.post(
        url,
        {"action": "erase_selected", "_selected_action": [member.pk], "confirm": "yes"},
        follow=True,
    )
    assert b"already been erased" in again.content


def test_the_password_is_changed_with_the_old_one(member_client, member):
    url = reverse("members:password_change")
    new = "hagelslag-on-bread-42"

    wrong = member_client.post(
        url, {"old_password": "nope", "new_password1": new, "new_password2": new}
    )
    assert wrong.status_code == 200 and "old_password" in wrong.context["form"].errors

    member_client.post(url, {"old_password": PASSWORD, "new_password1": new, "new_password2": new})
    assert User.objects.get(pk=member.user_id).check_password(new)
