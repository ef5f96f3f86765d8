"""From the purchase aggregate to scores (pure): who is scored how, and the CLV summary."""

import numpy as np
import pandas as pd
import pytest

from segmentation.pipeline import MIN_CLV_CUSTOMERS, Parameters, compute_scores, customer_summary


def aggregate(rows):
    return pd.DataFrame(
        rows,
        columns=[
            "member_id",
            "days_since_last",
            "frequency",
            "monetary",
            "purchases_total",
            "spend_total",
            "days_since_first",
            "first_spend",
        ],
    )


def test_the_clv_summary_uses_repeat_purchases_only():
    summary = customer_summary(
        aggregate(
            [(1, 10.5, 2, 80.0, 3, 180.0, 400.0, 100.0), (2, 5.0, 1, 20.0, 1, 20.0, 5.0, 20.0)]
        )
    )

    assert summary.loc[0].to_dict() == {
        "frequency": 2.0,
        "recency": 390.0,  # whole days: the first 400 days ago, the last 10 (10.5) days ago
        "T": 400.0,
        "monetary_value": 40.0,  # (180 - 100) / 2: the first purchase is not a repeat
    }
    assert summary.loc[1, "frequency"] == 0 and summary.loc[1, "monetary_value"] == 0


def test_members_without_purchases_in_the_window_get_their_own_state():
    rows = [(1, 3.0, 4, 200.0, 4, 200.0, 300.0, 50.0), (2, 500.0, 0, 0.0, 2, 60.0, 700.0, 30.0)]
    scores, info = compute_scores(aggregate(rows), pd.Series([1, 2, 3]), Parameters())

    by_member = scores.set_index("member_id")
    assert by_member.loc[1, "segment"] != "no_purchases"
    assert by_member.loc[1, "r_score"] == 3  # alone in the window: the middle score
    assert by_member.loc[2, "segment"] == "no_purchases"
    assert by_member.loc[2, "recency_days"] == 500 and np.isnan(by_member.loc[2, "r_score"])
    assert by_member.loc[3, "segment"] == "no_purchases"
    assert np.isnan(by_member.loc[3, "recency_days"]) and by_member.loc[3, "frequency"] == 0
    # Too few customers to fit CLV: nobody is loyal or profitable.
    assert "clv_skipped" in info and set(by_member["quadrant"]) == {"strangers"}


def test_with_enough_customers_clv_and_the_matrix_are_filled():
    rng = np.random.default_rng(3)
    count = MIN_CLV_CUSTOMERS * 10
    totals = rng.integers(1, 12, count)
    first = rng.uniform(30, 700, count)
    last = first * rng.uniform(0, 1, count)
    rows = [
        (
            i + 1,
            last[i],
            int(totals[i]),
            30.0 * totals[i],
            int(totals[i]),
            30.0 * totals[i],
            first[i],
            30.0,
        )
        for i in range(count)
    ]
    scores, info = compute_scores(aggregate(rows), pd.Series(range(1, count + 2)), Parameters())

    assert set(info["clv_parameters"]) == {"purchase_model", "mbgnbd", "gamma_gamma", "warnings"}
    buyers = scores[scores["member_id"] <= count]
    assert buyers["clv"].notna().all() and (buyers["clv"] >= 0).all()
    assert ((buyers["p_alive"] > 0) & (buyers["p_alive"] <= 1)).all()
    loyal = buyers["expected_purchases"] >= info["thresholds"]["loyalty"]
    profitable = buyers["clv"] >= info["thresholds"]["profitability"]
    expected = np.select(
        [loyal & profitable, profitable, loyal],
        ["true_friends", "butterflies", "barnacles"],
        "strangers",
    )
    assert (buyers["quadrant"].to_numpy() == expected).all()
    assert {"true_friends", "strangers"} <= set(buyers["quadrant"])
    assert scores.set_index("member_id").loc[count + 1, "quadrant"] == "strangers"
    assert info["thresholds"]["loyalty"] == pytest.approx(buyers["expected_purchases"].median())
