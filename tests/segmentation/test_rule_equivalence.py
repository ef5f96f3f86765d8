"""A run evaluates rule segments in memory (rules.rule_mask); the live count and the
selectors use the ORM compiler (rules.rule_members). Both must select the same members, for
any rule: hypothesis writes the rules, the demo data is the population."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty import demo
from members.models import Member
from segmentation import services
from segmentation.models import Quadrant, RuleSegment, RuleSegmentMember, RunStatus, Segment
from segmentation.rules import rule_members

NOW = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)


def _subset(values):
    return st.lists(st.sampled_from(values), min_size=1, max_size=3, unique=True)


def _dates():
    return st.integers(-800, 30).map(
        lambda days: (NOW.date() + dt.timedelta(days=days)).isoformat()
    )


def _numbers(low, high, integer):
    value = (
        st.integers(low, high) if integer else st.integers(low * 4, high * 4).map(lambda v: v / 4)
    )
    between = st.tuples(value, value).map(lambda pair: sorted(pair))
    return st.one_of(
        st.tuples(st.sampled_from(["gte", "lte", "eq"]), value),
        st.tuples(st.just("between"), between),
    )


def _condition(field, values, **extra):
    return values.map(lambda pair: {"field": field, "op": pair[0], "value": pair[1], **extra})


def _set_condition(field, choices):
    return st.tuples(st.sampled_from(["in", "not_in"]), _subset(choices)).map(
        lambda pair: {"field": field, "op": pair[0], "value": pair[1]}
    )


conditions = st.one_of(
    _set_condition("segment", list(Segment.values)),
    _set_condition("quadrant", list(Quadrant.values)),
    _set_condition("tier", ["Bronze", "Silver", "Gold"]),
    _set_condition("language", ["nl", "en"]),
    _set_condition("birthday_month", list(range(1, 13))),
    _condition("r_score", _numbers(1, 5, True)),
    _condition("f_score", _numbers(1, 5, True)),
    _condition("m_score", _numbers(1, 5, True)),
    _condition("clv", _numbers(0, 80, False)),
    _condition("p_alive", _numbers(0, 1, False)),
    st.sampled_from([30, 90, 365]).flatmap(
        lambda days: _condition("spend", _numbers(0, 400, False), days=days)
    ),
    st.sampled_from([30, 90, 365]).flatmap(
        lambda days: _condition("purchases", _numbers(0, 8, True), days=days)
    ),
    _condition("last_purchase", st.tuples(st.sampled_from(["before", "after"]), _dates())),
    _condition("enrolled", st.tuples(st.sampled_from(["before", "after"]), _dates())),
    st.booleans().map(lambda granted: {"field": "consent", "op": "is", "value": granted}),
)
rules = st.recursive(
    conditions,
    lambda inner: st.tuples(
        st.sampled_from(["all", "any"]), st.lists(inner, min_size=1, max_size=3)
    ).map(lambda group: {group[0]: group[1]}),
    max_leaves=5,
)


@pytest.fixture
def population(db):
    """Seeded once per test; hypothesis' examples share it (they only add rule segments)."""
    demo.seed(demo.DemoSpec(members=250, lines=False, now=NOW, seed=11))


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(rules, min_size=12, max_size=12))
def test_a_run_materialises_what_the_orm_compiler_selects(population, generated):
    RuleSegment.objects.all().delete()
    segments = [
        RuleSegment.objects.create(name=f"rule {index}", rule=rule)
        for index, rule in enumerate(generated)
    ]

    run = services.recalculate(now=NOW)

    assert run.status == RunStatus.DONE, run.error
    for segment in segments:
        materialised = set(
            RuleSegmentMember.objects.filter(run=run, segment=segment).values_list(
                "member_id", flat=True
            )
        )
        compiled = set(
            rule_members(rule=segment.rule, run_id=run.pk, now=NOW).values_list("pk", flat=True)
        )
        assert materialised == compiled, segment.rule


def test_not_in_a_tier_includes_members_without_a_tier_inside_an_or(population):
    """Found by the property test: inside an OR, SQL's NULL logic dropped members without a
    tier from "tier not in", while the run kept them."""
    rule = {
        "any": [
            {
                "all": [
                    {"field": "tier", "op": "in", "value": ["Bronze"]},
                    {"field": "r_score", "op": "gte", "value": 1},
                ]
            },
            {"field": "tier", "op": "not_in", "value": ["Bronze"]},
        ]
    }
    segment = RuleSegment.objects.create(name="not bronze", rule=rule)

    run = services.recalculate(now=NOW)

    assert run.status == RunStatus.DONE, run.error
    materialised = set(
        RuleSegmentMember.objects.filter(run=run, segment=segment).values_list(
            "member_id", flat=True
        )
    )
    compiled = set(rule_members(rule=rule, run_id=run.pk, now=NOW).values_list("pk", flat=True))
    without_tier = set(
        Member.objects.filter(status="active", points_account__tier__isnull=True).values_list(
            "pk", flat=True
        )
    )
    assert without_tier and without_tier <= compiled
    assert materialised == compiled
