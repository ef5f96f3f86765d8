"""A member is on the lowest tier (threshold 0) from enrolment, not from the nightly run, and
the dashboard's level text is right for the lowest, a middle and the top tier, and without
tiers."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from loyalty.models import PointsAccount, Tier, TierChange
from loyalty.services import points_credit, purchase_record
from members import services as member_services
from members.models import Member
from tests.factories import (
    MemberFactory,
    MemberWithLoginFactory,
    PartnerFactory,
    TermsVersionFactory,
    TierFactory,
)

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def tiers(program):
    return {
        "bronze": TierFactory(name="Bronze", rank=1, threshold=Decimal("0")),
        "silver": TierFactory(name="Silver", rank=2, threshold=Decimal("500")),
        "gold": TierFactory(name="Gold", rank=3, threshold=Decimal("2000")),
    }


def enrol(email="sanne@example.com"):
    return member_services.member_enrol(
        email=email,
        first_name="Sanne",
        birth_date=dt.date(1990, 5, 17),
        password="stroopwafels-every-day-7",
        accepted_terms=True,
    )


def test_enrolling_puts_the_member_on_the_lowest_tier_with_an_enrolment_change(tiers):
    TermsVersionFactory()

    member = enrol()

    account = PointsAccount.objects.get(member=member)
    assert account.tier == tiers["bronze"]
    assert account.tier_since is not None
    [change] = TierChange.objects.filter(account=account)
    assert (change.from_tier, change.to_tier, change.reason) == (None, tiers["bronze"], "enrolment")


def test_enrolling_through_the_portal_form_does_the_same(client, tiers):
    TermsVersionFactory()

    client.post(
        reverse("members:enrol"),
        {
            "email": "fleur@example.com",
            "first_name": "Fleur",
            "last_name": "Jansen",
            "birth_date": "1990-05-17",
            "language": "en",
            "password1": "stroopwafels-every-day-7",
            "password2": "stroopwafels-every-day-7",
            "accept_terms": "on",
        },
    )

    member = Member.objects.get(email="fleur@example.com")
    assert member.points_account.tier == tiers["bronze"]


def test_a_new_account_opened_by_a_first_credit_starts_on_the_lowest_tier(tiers):
    member = MemberFactory()  # made without enrolment: no account yet

    points_credit(member=member, points=10, reason="Welcome")

    assert PointsAccount.objects.get(member=member).tier == tiers["bronze"]
    assert TierChange.objects.filter(account__member=member, reason="enrolment").count() == 1


def test_without_a_tier_at_zero_a_new_member_has_no_tier(program):
    TierFactory(name="Silver", rank=2, threshold=Decimal("500"))
    TermsVersionFactory()

    member = enrol()

    assert PointsAccount.objects.get(member=member).tier is None
    assert not TierChange.objects.exists()


def test_a_purchase_that_qualifies_at_once_moves_on_from_the_lowest_tier(tiers):
    member = MemberFactory()

    purchase_record(partner=PartnerFactory(), external_id="1", member=member, amount="600.00")

    account = PointsAccount.objects.get(member=member)
    assert account.tier == tiers["silver"]
    assert list(
        TierChange.objects.filter(account=account).order_by("pk").values_list("reason", flat=True)
    ) == ["enrolment", "upgrade"]


# --- what the dashboard says ------------------------------------------------------------------


@pytest.fixture
def logged_in(client, program):
    member = MemberWithLoginFactory(first_name="Fleur", language="en")
    client.login(username=member.email, password=PASSWORD)
    return member


def dashboard(client) -> str:
    return client.get(reverse("points:dashboard"), HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_on_the_lowest_tier_the_dashboard_shows_it_and_the_way_to_the_next(
    client, logged_in, tiers
):
    points_credit(member=logged_in, points=1, reason="Welcome")  # opens the account

    page = dashboard(client)

    assert "Bronze" in page and "No level yet" not in page
    assert "500.00 more in the next 12 months to reach Silver" in page
    assert 'aria-valuenow="0"' in page


def test_on_a_middle_tier_the_dashboard_shows_the_way_to_the_top(client, logged_in, tiers):
    purchase_record(partner=PartnerFactory(), external_id="1", member=logged_in, amount="800.00")

    page = dashboard(client)

    assert "Silver" in page
    assert "1,200.00 more in the next 12 months to reach Gold" in page
    assert 'aria-valuenow="20"' in page


def test_on_the_top_tier_there_is_no_next_tier(client, logged_in, tiers):
    purchase_record(partner=PartnerFactory(), external_id="1", member=logged_in, amount="2500.00")

    page = dashboard(client)

    assert "Gold" in page
    assert "You have reached the highest level." in page
    assert "to reach" not in page and 'role="progressbar"' not in page


def test_without_tiers_the_dashboard_shows_no_level_at_all(client, logged_in):
    points_credit(member=logged_in, points=1, reason="Welcome")

    page = dashboard(client)

    assert "Your level" not in page and "No level yet" not in page
    assert 'role="progressbar"' not in page


def test_the_migration_puts_accounts_without_a_tier_on_the_base_tier(program):
    import importlib
    from types import SimpleNamespace

    from django.apps import apps as django_apps
    from django.db import connection

    bronze = TierFactory(name="Bronze", rank=1, threshold=Decimal("0"))
    TierFactory(name="Silver", rank=2, threshold=Decimal("500"))
    without = [MemberFactory() for _ in range(3)]
    for member in without:
        PointsAccount.objects.create(member=member)  # opened before accounts started on a tier
    on_silver = MemberFactory()
    silver = Tier.objects.get(name="Silver")
    PointsAccount.objects.create(member=on_silver, tier=silver)
    migration = importlib.import_module(
        "loyalty.migrations.0013_accounts_without_tier_to_base_tier"
    )

    migration.accounts_to_base_tier(django_apps, SimpleNamespace(connection=connection))

    accounts = PointsAccount.objects.filter(member__in=without)
    assert {account.tier_id for account in accounts} == {bronze.pk}
    assert all(account.tier_since is not None for account in accounts)
    changes = TierChange.objects.filter(account__in=accounts)
    assert (
        sorted(changes.values_list("reason", "to_tier__name", "from_tier"))
        == [("enrolment", "Bronze", None)] * 3
    )
    assert PointsAccount.objects.get(member=on_silver).tier == silver
    assert not TierChange.objects.filter(account__member=on_silver).exists()
