"""The demo's history is believable and tells one story on every page.

Each purchase carries the breakdown the earning rules give; expiry and redemptions are spread
over the past; every redemption entry of the ledger has its Redemption, so the KPI page, the
reward performance page, the members' ledgers and their balances agree; spend varies per
purchase as real spend does (a sane Gamma-Gamma fit); the terms were published before the
members accepted them.
"""

import datetime as dt
import io
import statistics
from collections import defaultdict
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from loyalty import demo
from loyalty.earning import LineInput, earning_calculate, earning_terms
from loyalty.kpis import program_kpis
from loyalty.models import EntryKind, LedgerEntry, PointsAccount, ProgramSettings, Purchase, Tier
from loyalty.selectors import ledger_for_member, member_balance
from members.models import ConsentRecord, Member, TermsAcceptance, TermsVersion
from rewards.models import Redemption, RedemptionStatus
from rewards.selectors import reward_performance

NOW = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)


def load(members: int, **options) -> None:
    call_command("demo_data", members=members, seed=7, now=NOW.isoformat(), verbosity=0, **options)


def assert_breakdowns_are_the_earning_rules(purchases) -> int:
    """Recompute each purchase with the earning service, under the tier its breakdown names."""
    program = ProgramSettings.load()
    terms = earning_terms()
    tiers = {tier.name: tier for tier in Tier.objects.all()}
    checked = 0
    for purchase in purchases.prefetch_related("lines"):
        stored = purchase.earning_breakdown
        lines = [
            LineInput(amount=line.amount, category=line.category)
            for line in sorted(purchase.lines.all(), key=lambda line: line.pk)
        ]
        expected = earning_calculate(
            amount=purchase.amount,
            channel=purchase.channel,
            at=purchase.purchased_at,
            tier=tiers[stored["tier"]] if stored["tier"] else None,
            lines=lines,
            program=program,
            rules=terms.rules_at(purchase.purchased_at),
        ).as_dict()
        assert stored == expected, purchase.external_id
        assert purchase.points_earned == stored["points"]
        checked += 1
    return checked


@pytest.mark.django_db
def test_every_purchase_has_the_breakdown_the_earning_rules_give():
    load(members=300)

    purchases = Purchase.objects.order_by("pk")
    checked = assert_breakdowns_are_the_earning_rules(purchases)

    assert checked == Purchase.objects.count() > 2000
    rules = {line["rule"] for p in purchases for line in p.earning_breakdown["lines"]}
    assert rules == {None, "Dubbele punten op duurzaam", "Webshop actie"}
    assert {p.earning_breakdown["tier"] for p in purchases} == {"Bronze", "Silver", "Gold"}


@pytest.mark.django_db
def test_purchases_without_lines_have_a_breakdown_of_one_line():
    load(members=150, no_lines=True)

    assert assert_breakdowns_are_the_earning_rules(Purchase.objects.order_by("pk")) > 1000
    assert all(len(p.earning_breakdown["lines"]) == 1 for p in Purchase.objects.all())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_copy_loader_writes_the_same_breakdowns():
    load(members=1500, copy=True)

    sample = Purchase.objects.order_by("?")[:400]
    assert assert_breakdowns_are_the_earning_rules(Purchase.objects.filter(pk__in=sample)) == 400


@pytest.fixture
def demo_history(db):
    with time_machine.travel(NOW, tick=False):
        load(members=600)
        call_command("demo_rewards", stdout=io.StringIO())
        yield


def test_every_redemption_entry_has_its_redemption(demo_history):
    entries = LedgerEntry.objects.filter(kind=EntryKind.REDEEM).select_related("account")
    redemptions = {r.ledger_entry_id: r for r in Redemption.objects.select_related("reward")}

    assert entries.count() == len(redemptions) > 50
    for entry in entries:
        redemption = redemptions[entry.pk]
        assert redemption.member_id == entry.account.member_id
        assert redemption.points == -entry.points == redemption.reward.points_cost
        assert redemption.created_at == entry.created_at
        assert entry.reason == f"Beloning: {redemption.reward.name_nl}"
        assert entry.reason_key == "Reward: %(reward)s"
        assert entry.reason_params["reward"]["en"] == redemption.reward.name_en
    assert not Redemption.objects.filter(status=RedemptionStatus.CANCELLED).exists()


def test_expiry_and_redemptions_are_spread_over_the_past(demo_history):
    def months(kind) -> dict[str, int]:
        counts = defaultdict(int)
        for at in LedgerEntry.objects.filter(kind=kind).values_list("created_at", flat=True):
            counts[timezone.localtime(at).strftime("%Y-%m")] += 1
        return counts

    expiry, redeemed = months(EntryKind.EXPIRE), months(EntryKind.REDEEM)
    this_month = timezone.localtime(NOW).strftime("%Y-%m")

    assert len(expiry) >= 10 and len(redeemed) >= 24
    assert expiry.get(this_month, 0) < 0.2 * sum(expiry.values())
    assert redeemed.get(this_month, 0) < 0.1 * sum(redeemed.values())
    assert not LedgerEntry.objects.filter(created_at__gt=NOW).exists()


def test_the_kpi_page_reward_performance_ledgers_and_balances_agree(demo_history):
    with time_machine.travel(NOW, tick=False):
        kpis = program_kpis(now=NOW)
        performance = reward_performance(months=12)
    by_key = {kpi.key: kpi.value for kpi in kpis.kpis}

    # Month by month: the KPI chart's points redeemed are the reward performance's points.
    assert performance["chart"]["months"] == kpis.months
    per_month = [sum(s["points"][i] for s in performance["chart"]["series"]) for i in range(12)]
    assert per_month == kpis.points_redeemed and sum(per_month) > 5000
    assert sum(t["points"] for t in performance["totals"].values()) == sum(per_month)
    # The KPI's rolling 12 months: the ledger's redemptions are the Redemption records'.
    window = {"created_at__gt": NOW - dt.timedelta(days=365), "created_at__lte": NOW}
    records = Redemption.objects.filter(**window).aggregate(s=Sum("points"))["s"]
    assert by_key["points_redeemed"] == records
    # All time, and per member: ledgers, balances, redemption records, liability.
    assert (
        -LedgerEntry.objects.filter(kind=EntryKind.REDEEM).aggregate(s=Sum("points"))["s"]
        == Redemption.objects.aggregate(s=Sum("points"))["s"]
    )
    balances = 0
    for member in Member.objects.filter(points_account__isnull=False)[:150]:
        ledger = list(ledger_for_member(member=member))
        assert member_balance(member=member) == sum(e.points for e in ledger)
        assert (ledger[0].balance_after if ledger else 0) == member_balance(member=member)
        redeemed = sum(-e.points for e in ledger if e.kind == EntryKind.REDEEM)
        assert redeemed == sum(r.points for r in member.redemptions.all())
        balances += member_balance(member=member)
    assert balances > 0
    total = PointsAccount.objects.aggregate(s=Sum("balance"))["s"]
    assert by_key["liability"] == (Decimal(total) * Decimal("0.0100")).quantize(Decimal("0.01"))
    assert total == LedgerEntry.objects.aggregate(s=Sum("points"))["s"]


@pytest.mark.django_db
def test_spend_varies_per_purchase_and_the_gamma_gamma_fit_is_sane():
    from segmentation.services import recalculate

    demo.seed(demo.DemoSpec(members=1500, lines=False, now=NOW, seed=3))
    amounts = defaultdict(list)
    for member, amount in Purchase.objects.values_list("member_id", "amount"):
        amounts[member].append(float(amount))
    variation = [
        statistics.pstdev(values) / statistics.fmean(values)
        for values in amounts.values()
        if len(values) >= 8
    ]
    run = recalculate(now=NOW)

    assert 0.45 <= statistics.median(variation) <= 0.9
    gamma_gamma = run.parameters["clv_parameters"]["gamma_gamma"]
    assert all(1 <= gamma_gamma[name] <= 100 for name in ("p", "q", "v")), gamma_gamma


@pytest.mark.django_db
def test_terms_versions_are_dated_by_their_names_and_precede_who_accepted_them():
    load(members=400)

    versions = list(TermsVersion.objects.order_by("published_at"))
    assert len(versions) >= 3
    for version in versions:
        assert version.version == f"{version.published_at.year}.1"
        assert version.published_at <= NOW
    assert TermsAcceptance.objects.count() > 300
    for acceptance in TermsAcceptance.objects.select_related("terms_version", "member"):
        assert acceptance.terms_version.published_at <= acceptance.accepted_at <= NOW
        assert acceptance.member.created_at <= acceptance.accepted_at
    for consent in ConsentRecord.objects.select_related("terms_version", "member"):
        assert consent.terms_version.published_at <= consent.recorded_at
    # Members buying since the latest revision have accepted it (the portal would ask).
    latest = versions[-1]
    recent_buyers = Member.objects.filter(purchases__purchased_at__gte=latest.published_at)
    assert recent_buyers.exists()
    assert not recent_buyers.exclude(terms_acceptances__terms_version=latest).exists()
