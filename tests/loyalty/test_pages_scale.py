"""Back-office pages at a million members (issue 16): constant query counts, estimated counts
past a threshold, indexed member search, and KPI rollups equal to a recomputation."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from decimal import Decimal

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty import admin_paginator
from loyalty.kpis import kpi_rollup, program_kpis, program_kpis_recomputed
from loyalty.models import KpiDay, KpiRollup, PointsAccount, Purchase
from members.models import Member, MemberStatus
from tests.factories import (
    LedgerEntryFactory,
    MemberFactory,
    MemberScoreFactory,
    PartnerFactory,
    PointsAccountFactory,
    PurchaseFactory,
    RefundFactory,
    SegmentationRunFactory,
)

pytestmark = pytest.mark.django_db

AMSTERDAM = zoneinfo.ZoneInfo("Europe/Amsterdam")


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


def _rows(count: int) -> None:
    """`count` members, each with an account, a purchase, a refund and a ledger entry."""
    partner = PartnerFactory()
    for _number in range(count):
        member = MemberFactory()
        account = PointsAccountFactory(member=member, balance=120)
        purchase = PurchaseFactory(member=member, partner=partner)
        RefundFactory(purchase=purchase)
        LedgerEntryFactory(account=account, purchase=purchase)


LIST_PAGES = [
    "admin:members_member_changelist",
    "admin:loyalty_purchase_changelist",
    "admin:loyalty_ledgerentry_changelist",
    "admin:members_consentrecord_changelist",
    "admin:kpis",
]


@pytest.mark.parametrize("url_name", LIST_PAGES)
@pytest.mark.parametrize("rows", [5, 50])
def test_a_back_office_page_costs_the_same_queries_for_5_and_50_rows(
    admin_client, program, django_assert_max_num_queries, url_name, rows
):
    _rows(rows)
    kpi_rollup()
    admin_client.get(reverse(url_name))  # sessions, caches

    with django_assert_max_num_queries(14):
        response = admin_client.get(reverse(url_name))

    assert response.status_code == 200


@pytest.mark.parametrize("rows", [5, 50])
def test_the_segments_dashboard_costs_the_same_queries_for_5_and_50_scores(
    admin_client, django_assert_max_num_queries, rows
):
    run = SegmentationRunFactory(is_current=True, member_count=rows)
    for _number in range(rows):
        MemberScoreFactory(run=run)
    admin_client.get(reverse("admin:segmentation_dashboard"))

    with django_assert_max_num_queries(16):
        response = admin_client.get(reverse("admin:segmentation_dashboard"))

    assert response.status_code == 200


# --- the estimated count -------------------------------------------------------------------


@pytest.mark.postgres
def test_a_list_longer_than_the_threshold_shows_about_the_estimated_count(
    admin_client, monkeypatch
):
    _rows(12)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE loyalty_purchase")
    monkeypatch.setattr(admin_paginator, "EXACT_UP_TO", 5)

    response = admin_client.get(reverse("admin:loyalty_purchase_changelist"))

    paginator = response.context["cl"].paginator
    assert paginator.estimated is True
    assert paginator.count >= 6
    assert "about" in response.content.decode()


def test_a_list_within_the_threshold_counts_exactly(admin_client):
    _rows(3)

    response = admin_client.get(reverse("admin:loyalty_purchase_changelist"))

    paginator = response.context["cl"].paginator
    assert paginator.estimated is False
    assert paginator.count == 3
    assert "3 purchases" in response.content.decode()


@pytest.mark.postgres
def test_the_estimate_of_a_filtered_list_comes_from_the_planner():
    _rows(20)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE loyalty_purchase")

    unfiltered = admin_paginator.estimate_count(Purchase.objects.all())
    filtered = admin_paginator.estimate_count(Purchase.objects.filter(amount__gt=0))

    assert unfiltered == 20
    assert 1 <= filtered <= 20


# --- member search -------------------------------------------------------------------------


@pytest.fixture
def members():
    return [
        MemberFactory(first_name="Anna", last_name="Jansen", email="anna.jansen@example.com"),
        MemberFactory(first_name="Bert", last_name="de Vries", email="bert@example.org"),
        MemberFactory(first_name="Janneke", last_name="Bos", email="jb@example.net"),
    ]


def _found(admin_client, term: str) -> tuple[set[str], list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(reverse("admin:members_member_changelist"), {"q": term})
    assert response.status_code == 200
    found = {member.email for member in response.context["cl"].result_list}
    return found, [query["sql"] for query in queries.captured_queries]


def test_a_member_number_finds_that_member_by_equality(admin_client, members):
    found, sql = _found(admin_client, members[1].member_number)

    assert found == {"bert@example.org"}
    searched = [statement for statement in sql if "members_member" in statement]
    assert not any("LIKE" in statement for statement in searched)


def test_a_full_e_mail_address_in_any_case_finds_that_member(admin_client, members):
    found, sql = _found(admin_client, "  ANNA.Jansen@EXAMPLE.com ")

    assert found == {"anna.jansen@example.com"}
    assert any(re.search(r'LOWER\([^)]*"email"\) = ', statement) for statement in sql)
    assert not any("LIKE" in statement for statement in sql if "members_member" in statement)


def test_part_of_a_name_finds_every_member_whose_name_contains_it(admin_client, members):
    found, _sql = _found(admin_client, "jan")

    assert found == {"anna.jansen@example.com", "jb@example.net"}


def test_every_word_of_a_name_search_must_match(admin_client, members):
    found, _sql = _found(admin_client, "anna jans")

    assert found == {"anna.jansen@example.com"}


def test_purchases_and_ledger_are_found_by_member_number_and_e_mail(admin_client):
    _rows(3)
    member = Member.objects.first()

    purchases = admin_client.get(
        reverse("admin:loyalty_purchase_changelist"), {"q": member.member_number}
    )
    ledger = admin_client.get(
        reverse("admin:loyalty_ledgerentry_changelist"), {"q": member.email.upper()}
    )

    assert {p.member_id for p in purchases.context["cl"].result_list} == {member.pk}
    assert {e.account.member_id for e in ledger.context["cl"].result_list} == {member.pk}


def test_a_purchase_is_found_by_its_partner_id(admin_client):
    _rows(3)
    purchase = Purchase.objects.order_by("pk").last()

    response = admin_client.get(
        reverse("admin:loyalty_purchase_changelist"), {"q": purchase.external_id}
    )

    assert [p.pk for p in response.context["cl"].result_list] == [purchase.pk]


@pytest.mark.postgres
def test_the_name_search_can_use_the_trigram_indexes():
    MemberFactory(first_name="Anna", last_name="Jansen")
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT id FROM members_member WHERE UPPER(last_name::text) LIKE UPPER(%s)",
            ["%ans%"],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SET enable_seqscan = on")

    assert "member_last_name_trgm" in plan


# --- KPI rollups equal a recomputation -----------------------------------------------------

# Early in a month: the 12-month window starts almost a month before the first charted month.
# The window holds both DST changes of 2025.
NOW = dt.datetime(2026, 3, 2, 0, 30, tzinfo=AMSTERDAM)

purchases_strategy = st.lists(
    st.tuples(
        st.integers(0, 5),  # member
        st.integers(0, 430),  # days ago
        st.integers(0, 23),  # local hour
        st.integers(1, 500),  # amount, whole EUR
        st.sampled_from([None, "before", "after"]),  # refund recorded before/after the rollup
    ),
    max_size=25,
)
ledger_strategy = st.lists(
    st.tuples(
        st.integers(0, 5),
        st.integers(0, 430),
        st.integers(0, 23),
        st.sampled_from(["earn", "bonus", "redeem", "expire", "adjust"]),
        st.integers(1, 300),
    ),
    max_size=25,
)


def _at(days_ago: int, hour: int) -> dt.datetime:
    """A local time `days_ago` days before NOW; today's later hours become NOW (a purchase or
    a ledger entry is never in the future)."""
    day = NOW.date() - dt.timedelta(days=days_ago)
    return min(dt.datetime.combine(day, dt.time(hour, 17), tzinfo=AMSTERDAM), NOW)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    purchases=purchases_strategy,
    entries=ledger_strategy,
    enrolled=st.lists(
        st.tuples(st.integers(0, 430), st.integers(0, 23), st.sampled_from(MemberStatus.values)),
        min_size=6,
        max_size=6,
    ),
    rollup_days_ago=st.integers(0, 40),
)
def test_the_kpis_from_rollups_equal_a_recomputation(
    program, purchases, entries, enrolled, rollup_days_ago
):
    with time_machine.travel(NOW, tick=False), transaction.atomic():
        partner = PartnerFactory()
        members = [
            MemberFactory(enrolled_at=_at(days, hour), status=status)
            for days, hour, status in enrolled
        ]
        late_refunds = []
        for number, (member, days, hour, amount, refund) in enumerate(purchases):
            purchase = PurchaseFactory(
                partner=partner,
                member=members[member],
                external_id=f"p{number}",
                amount=Decimal(amount),
                purchased_at=_at(days, hour),
            )
            if refund == "before":
                RefundFactory(purchase=purchase, amount=Decimal(amount) / 2)
                Purchase.objects.filter(pk=purchase.pk).update(refunded_amount=Decimal(amount) / 2)
            elif refund == "after":
                late_refunds.append(purchase)
        balances = [0] * len(members)
        for member, days, hour, kind, points in entries:
            signed = -min(points, balances[member]) if kind in ("redeem", "expire") else points
            if signed == 0:
                continue
            balances[member] += signed
            account = PointsAccountFactory(member=members[member])
            LedgerEntryFactory(
                account=account,
                kind=kind,
                points=signed,
                balance_after=balances[member],
                created_at=_at(days, hour),
            )
        for member, balance in zip(members, balances, strict=True):
            PointsAccount.objects.update_or_create(member=member, defaults={"balance": balance})

        kpi_rollup(now=NOW - dt.timedelta(days=rollup_days_ago))
        # What happens after the rollup: refunds of purchases it summed.
        with time_machine.travel(NOW + dt.timedelta(seconds=1), tick=False):
            for purchase in late_refunds:
                RefundFactory(purchase=purchase, amount=purchase.amount)
                Purchase.objects.filter(pk=purchase.pk).update(refunded_amount=purchase.amount)

        later = NOW + dt.timedelta(minutes=5)
        from_rollup = program_kpis(now=later)
        recomputed = program_kpis_recomputed(now=later)

        assert KpiRollup.objects.get().complete_until <= later
        assert [(k.key, k.value) for k in from_rollup.kpis] == [
            (k.key, k.value) for k in recomputed.kpis
        ]
        assert from_rollup == recomputed
        transaction.set_rollback(True)


def test_the_rollup_returns_at_once_once_the_day_is_rolled_up(program):
    PurchaseFactory(purchased_at=timezone.now() - dt.timedelta(days=3))
    first = kpi_rollup()
    days = KpiDay.objects.count()
    PurchaseFactory(purchased_at=timezone.now() - dt.timedelta(days=2))

    again = kpi_rollup()

    assert again.computed_at == first.computed_at
    assert KpiDay.objects.count() == days
    assert kpi_rollup(force=True).computed_at >= first.computed_at
    assert KpiDay.objects.count() == days + 1


def test_the_kpi_page_reads_the_rollups_when_there_are_some(admin_client, program):
    _rows(3)
    kpi_rollup()

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(reverse("admin:kpis"))

    assert response.status_code == 200
    sql = " ".join(query["sql"] for query in queries.captured_queries)
    assert "loyalty_kpiday" in sql
    assert "COUNT(DISTINCT" not in sql.upper()


def test_the_rollup_task_is_scheduled_hourly_and_rolls_up_to_midnight(program):
    from django_celery_beat.models import PeriodicTask

    from loyalty.tasks import rollup_kpis

    scheduled = PeriodicTask.objects.get(task="loyalty.tasks.rollup_kpis")
    PurchaseFactory(purchased_at=timezone.now() - dt.timedelta(days=1))

    complete_until = rollup_kpis.delay().get()

    assert scheduled.crontab.minute == "5" and scheduled.crontab.hour == "*"
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    assert complete_until == midnight.isoformat()
    assert KpiDay.objects.filter(purchases=1).exists()
