"""The per-member purchase aggregate a recalculation starts from, on SQLite and PostgreSQL."""

import datetime as dt

import pytest
from django.utils import timezone

from loyalty.services import purchase_record, purchase_refund
from segmentation.run_inputs import purchase_aggregates, scored_member_ids
from tests.factories import MemberFactory, PartnerFactory

pytestmark = pytest.mark.django_db


def test_the_aggregate_has_window_and_lifetime_figures_per_member(program):
    partner = PartnerFactory()
    now = timezone.now().replace(microsecond=0)
    anna, bert = MemberFactory(), MemberFactory()
    recorded = {}
    for days, amount, member, external in [
        (400, "100.00", anna, "a1"),
        (30, "50.00", anna, "a2"),
        (10, "30.00", anna, "a3"),
        (5, "20.00", bert, "b1"),
    ]:
        recorded[external] = purchase_record(
            partner=partner,
            external_id=external,
            member=member,
            amount=amount,
            purchased_at=now - dt.timedelta(days=days),
        ).purchase
    # A partial refund: the stored net cents (PostgreSQL reads only those) follow it.
    purchase_refund(purchase=recorded["a3"], amount="10.00")
    refunded = purchase_record(
        partner=partner,
        external_id="b2",
        member=bert,
        amount="40.00",
        purchased_at=now - dt.timedelta(days=2),
    ).purchase
    purchase_refund(purchase=refunded, amount="40.00")

    frame = purchase_aggregates(now=now, window_start=now - dt.timedelta(days=365), recent_days=[7])
    rows = frame.set_index("member_id")

    assert set(rows.index) == {anna.pk, bert.pk}
    a = rows.loc[anna.pk]
    assert a["frequency"] == 2 and a["purchases_total"] == 3
    assert a["monetary"] == pytest.approx(70.0)
    assert a["spend_total"] == pytest.approx(170.0)
    assert a["first_spend"] == pytest.approx(100.0)
    assert a["days_since_last"] == pytest.approx(10.0, abs=1e-3)
    assert a["days_since_first"] == pytest.approx(400.0, abs=1e-3)
    b = rows.loc[bert.pk]
    assert b["monetary"] == pytest.approx(20.0)  # the refunded purchase counts for nothing
    assert b["days_since_last"] == pytest.approx(2.0, abs=1e-3)
    # The rule segments' recent windows: spend net of refunds, every purchase counted.
    assert b["spend_7"] == pytest.approx(20.0) and b["purchases_7"] == 2
    assert a["spend_7"] == 0 and a["purchases_7"] == 0


def test_only_active_members_are_scored(program):
    active = MemberFactory()
    MemberFactory(status="blocked")

    assert list(scored_member_ids()) == [active.pk]
