"""The demo data: deterministic, realistic spread, and a ledger that adds up."""

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db.models import Count, Max, Sum

from loyalty.models import LedgerEntry, PointsAccount, Purchase, Tier
from loyalty.services import ledger_consistency_check
from members.models import Member
from members.numbers import luhn_valid

NOW = "2026-11-01T12:00:00+00:00"


def load(members=300, **options):
    out = io.StringIO()
    call_command("demo_data", members=members, seed=7, now=NOW, verbosity=0, stdout=out, **options)
    return out.getvalue()


def fingerprint():
    return (
        list(Member.objects.order_by("member_number").values_list("member_number", "email")),
        Purchase.objects.aggregate(total=Sum("amount"), count=Count("pk")),
        LedgerEntry.objects.aggregate(total=Sum("points"), count=Count("pk")),
    )


def assert_ledger_adds_up():
    for account in PointsAccount.objects.all():
        entries = LedgerEntry.objects.filter(account=account)
        assert account.balance >= 0
        assert account.balance == (entries.aggregate(s=Sum("points"))["s"] or 0)
        assert account.balance == (entries.aggregate(s=Sum("remaining_points"))["s"] or 0)
    assert not LedgerEntry.objects.filter(balance_after__lt=0).exists()
    assert ledger_consistency_check().mismatches == []
    assert_every_account_has_a_tier()


def assert_every_account_has_a_tier():
    """At least the base tier (threshold 0) from enrolment, as the program gives every account;
    a higher tier with its grace period, the base tier without one."""
    base = Tier.objects.order_by("rank").first()
    assert not PointsAccount.objects.filter(tier__isnull=True).exists()
    assert not PointsAccount.objects.filter(tier_since__isnull=True).exists()
    on_base = PointsAccount.objects.filter(tier=base)
    assert on_base.exists() and PointsAccount.objects.exclude(tier=base).exists()
    assert not on_base.filter(tier_kept_until__isnull=False).exists()
    assert (
        not PointsAccount.objects.exclude(tier=base).filter(tier_kept_until__isnull=True).exists()
    )


@pytest.mark.django_db
def test_the_demo_is_deterministic_for_a_seed():
    load()
    first = fingerprint()

    load(flush=True)

    assert fingerprint() == first


@pytest.mark.django_db
def test_every_balance_equals_its_ledger_and_its_open_lots():
    load()

    assert_ledger_adds_up()
    assert all(
        luhn_valid(number) for number in Member.objects.values_list("member_number", flat=True)
    )


@pytest.mark.django_db
def test_the_members_behave_like_different_kinds_of_customers():
    load(members=600)
    now = dt.datetime.fromisoformat(NOW)
    stats = Member.objects.annotate(
        count=Count("purchases"),
        spend=Sum("purchases__amount"),
        last=Max("purchases__purchased_at"),
    )

    assert stats.filter(count=1).count() > 30  # one-time buyers
    assert stats.filter(count__gt=20).count() > 20  # frequent buyers
    assert stats.filter(last__lt=now - dt.timedelta(days=365)).count() > 30  # lapsed
    assert stats.filter(last__gt=now - dt.timedelta(days=30)).count() > 100  # recent
    assert stats.filter(count__lte=5, spend__gt=600).count() > 5  # big, rare spenders
    assert stats.filter(count=0).exists()  # members who never bought
    assert PointsAccount.objects.values("tier__name").distinct().count() == 3  # none without one
    assert LedgerEntry.objects.values("kind").distinct().count() == 5


@pytest.mark.django_db
def test_if_empty_leaves_existing_data_alone():
    load()
    before = fingerprint()

    out = load(members=50, if_empty=True)

    assert "not loaded again" in out
    assert fingerprint() == before


@pytest.mark.django_db
def test_loading_over_existing_members_needs_flush():
    load(members=50)

    with pytest.raises(Exception, match="--flush"):
        load(members=50)


@pytest.mark.django_db
def test_demo_admin_prints_logins_that_work(client):
    load(members=300)
    out = io.StringIO()

    call_command("demo_admin", url="http://demo.test", stdout=out)

    text = out.getvalue()
    assert "admin@example.com / demo-admin-2026" in text
    assert "http://demo.test/admin/" in text
    assert client.login(username="admin@example.com", password="demo-admin-2026")
    client.logout()
    assert client.login(username="demo@example.com", password="demo-member-2026")
    member = Member.objects.get(email="demo@example.com")
    assert member.purchases.exists()
    assert client.get("/portal/").status_code == 200


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_copy_loader_writes_the_same_kind_of_consistent_data():
    out = load(members=2000, copy=True)

    assert "COPY" in out
    assert Member.objects.count() == 2000
    assert Purchase.objects.count() > 15000
    assert_ledger_adds_up()
    load(members=2000, copy=True, flush=True)
    assert Member.objects.count() == 2000
