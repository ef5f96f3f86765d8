"""Rule-based segments: validated JSON compiled to one ORM query."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from loyalty.services import purchase_record
from members.services import consent_set
from segmentation.errors import RuleInvalid
from segmentation.models import MemberScore, SegmentationRun
from segmentation.rules import rule_members, validate_rule
from tests.factories import MemberFactory, PartnerFactory, TierFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ([], "a group or a condition"),
        ({"all": []}, "at least one condition"),
        ({"all": [{"field": "tier", "op": "in", "value": ["Gold"]}], "any": []}, "exactly one"),
        ({"field": "shoe_size", "op": "gte", "value": 42}, "unknown field"),
        ({"field": "spend", "op": "gte", "value": 10}, "'days'"),
        ({"field": "spend", "op": "gte", "value": 10, "days": 0}, "'days'"),
        ({"field": "language", "op": "in", "value": ["fr"]}, "unknown value"),
        ({"field": "r_score", "op": "gte", "value": 2.5}, "whole number"),
        ({"field": "clv", "op": "between", "value": [10, 5]}, "must not exceed"),
        ({"field": "enrolled", "op": "before", "value": "31-01-2026"}, "2026-01-31"),
        ({"field": "consent", "op": "is", "value": "yes"}, "true or false"),
        ({"field": "birthday_month", "op": "in", "value": [13]}, "1 to 12"),
        ({"field": "tier", "op": "gte", "value": 1}, "operator"),
        ({"field": "language", "op": "in", "value": ["nl"], "colour": "red"}, "unexpected"),
    ],
)
def test_an_invalid_rule_is_refused_with_where_and_why(rule, fragment, settings):
    settings.LANGUAGE_CODE = "en"

    with pytest.raises(RuleInvalid) as raised:
        validate_rule(rule)

    assert fragment in str(raised.value.message)
    assert raised.value.field == "rule"


def test_a_deeply_nested_rule_is_refused():
    rule = {"field": "language", "op": "in", "value": ["nl"]}
    for _ in range(7):
        rule = {"all": [rule]}

    with pytest.raises(RuleInvalid):
        validate_rule(rule)


def test_profile_conditions_combine_with_and_and_or(program):
    dutch_may = MemberFactory(language="nl", birth_date=dt.date(1990, 5, 3))
    english_may = MemberFactory(language="en", birth_date=dt.date(1980, 5, 20))
    dutch_june = MemberFactory(language="nl", birth_date=dt.date(1985, 6, 1))
    rule = {
        "any": [
            {
                "all": [
                    {"field": "language", "op": "in", "value": ["nl"]},
                    {"field": "birthday_month", "op": "in", "value": [5]},
                ]
            },
            {"field": "language", "op": "in", "value": ["en"]},
        ]
    }

    members = set(rule_members(rule=rule, run_id=None))

    assert members == {dutch_may, english_may}
    assert dutch_june not in members


def test_purchase_conditions_look_back_over_the_last_n_days(program):
    partner = PartnerFactory()
    recent_big, old_big, small = MemberFactory(), MemberFactory(), MemberFactory()
    purchase_record(partner=partner, external_id="1", member=recent_big, amount="150.00")
    purchase_record(partner=partner, external_id="2", member=recent_big, amount="10.00")
    with time_machine.travel(timezone.now() - dt.timedelta(days=200)):
        purchase_record(partner=partner, external_id="3", member=old_big, amount="500.00")
    purchase_record(partner=partner, external_id="4", member=small, amount="20.00")

    big_spenders = rule_members(
        rule={"field": "spend", "op": "gte", "value": 100, "days": 90}, run_id=None
    )
    two_or_more = rule_members(
        rule={"field": "purchases", "op": "gte", "value": 2, "days": 90}, run_id=None
    )
    lapsed = rule_members(
        rule={
            "field": "last_purchase",
            "op": "before",
            "value": (timezone.localdate() - dt.timedelta(days=100)).isoformat(),
        },
        run_id=None,
    )

    assert list(big_spenders) == [recent_big]
    assert list(two_or_more) == [recent_big]
    assert list(lapsed) == [old_big]


def test_tier_consent_and_enrolment_conditions(program):
    TierFactory(name="Bronze", rank=1, threshold=Decimal("0"))
    TierFactory(name="Gold", rank=2, threshold=Decimal("100"))
    gold = MemberFactory(enrolled_at=timezone.now() - dt.timedelta(days=400))
    bronze = MemberFactory(enrolled_at=timezone.now() - dt.timedelta(days=10))
    purchase_record(partner=PartnerFactory(), external_id="g", member=gold, amount="120.00")
    purchase_record(partner=PartnerFactory(), external_id="b", member=bronze, amount="5.00")
    consent_set(member=gold, granted=True, source="test")
    consent_set(member=bronze, granted=True, source="test")
    consent_set(member=bronze, granted=False, source="unsubscribe")
    since = (timezone.localdate() - dt.timedelta(days=30)).isoformat()

    assert list(
        rule_members(rule={"field": "tier", "op": "in", "value": ["Gold"]}, run_id=None)
    ) == [gold]
    assert list(
        rule_members(rule={"field": "tier", "op": "not_in", "value": ["Gold"]}, run_id=None)
    ) == [bronze]
    assert list(
        rule_members(rule={"field": "consent", "op": "is", "value": True}, run_id=None)
    ) == [gold]
    assert list(
        rule_members(rule={"field": "enrolled", "op": "after", "value": since}, run_id=None)
    ) == [bronze]


def test_score_conditions_use_only_the_given_run(program):
    champion, sleeper = MemberFactory(), MemberFactory()
    old_run = SegmentationRun.objects.create(status="done")
    new_run = SegmentationRun.objects.create(status="done", is_current=True)
    MemberScore.objects.create(
        run=old_run,
        member=sleeper,
        frequency=9,
        monetary=500,
        segment="champions",
        quadrant="true_friends",
        r_score=5,
        clv=Decimal("900"),
    )
    MemberScore.objects.create(
        run=new_run,
        member=sleeper,
        frequency=0,
        monetary=0,
        segment="hibernating",
        quadrant="strangers",
        r_score=1,
        clv=Decimal("5"),
    )
    MemberScore.objects.create(
        run=new_run,
        member=champion,
        frequency=12,
        monetary=800,
        segment="champions",
        quadrant="true_friends",
        r_score=5,
        clv=Decimal("1200"),
    )

    champions = rule_members(
        rule={"field": "segment", "op": "in", "value": ["champions"]}, run_id=new_run.pk
    )
    not_champions = rule_members(
        rule={"field": "segment", "op": "not_in", "value": ["champions"]}, run_id=new_run.pk
    )
    valuable = rule_members(
        rule={
            "all": [
                {"field": "clv", "op": "gte", "value": 1000},
                {"field": "r_score", "op": "between", "value": [4, 5]},
            ]
        },
        run_id=new_run.pk,
    )

    assert list(champions) == [champion]
    assert list(not_champions) == [sleeper]
    assert list(valuable) == [champion]
    assert (
        list(
            rule_members(rule={"field": "segment", "op": "in", "value": ["champions"]}, run_id=None)
        )
        == []
    )
