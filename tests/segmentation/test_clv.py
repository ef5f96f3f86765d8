"""CLV models: the published CDNOW reference fits, and the predictions' properties."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segmentation import clv

CDNOW = pd.read_csv(Path(__file__).parent / "data" / "cdnow_summary.csv")


def within_one_percent(fitted: float, published: float) -> bool:
    return abs(fitted - published) <= 0.01 * abs(published)


def test_bgnbd_reproduces_the_published_cdnow_fit():
    """Fader, Hardie & Lee (2005): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426."""
    assert len(CDNOW) == 2357

    params = clv.fit_bgnbd(CDNOW["frequency"], CDNOW["recency"], CDNOW["T"])

    for name, published in {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}.items():
        assert within_one_percent(getattr(params, name), published), (name, params)


def test_gamma_gamma_reproduces_the_published_cdnow_fit():
    """Fader & Hardie (2013), 946 repeat customers: p = 6.25, q = 3.74, v = 15.44."""
    repeat = CDNOW[CDNOW["frequency"] > 0]
    assert len(repeat) == 946

    params = clv.fit_gamma_gamma(repeat["frequency"], repeat["monetary_value"])

    for name, published in {"p": 6.25, "q": 3.74, "v": 15.44}.items():
        assert within_one_percent(getattr(params, name), published), (name, params)


def central_differences(log_likelihood, params: tuple) -> list[np.ndarray]:
    """Each customer's derivative of log_likelihood(params) by each parameter, numerically."""
    derivatives = []
    for index, value in enumerate(params):
        step = 1e-6 * value
        up, down = list(params), list(params)
        up[index] += step
        down[index] -= step
        derivatives.append((log_likelihood(up) - log_likelihood(down)) / (2 * step))
    return derivatives


@pytest.mark.parametrize(
    "params", [(0.243, 4.414, 0.793, 2.426), (2.0, 40.0, 0.3, 0.6), (0.05, 0.5, 5.0, 30.0)]
)
def test_the_bgnbd_gradient_matches_finite_differences(params):
    """Per customer (with and without repeat purchases), by each parameter."""
    x, t_x, T = (
        CDNOW[column].to_numpy(dtype="float64") for column in ("frequency", "recency", "T")
    )
    counts = clv._ByFrequency(x)
    _values, gradient = clv._bgnbd_log_likelihood_gradient(clv.BgNbdParams(*params), counts, t_x, T)
    numeric = central_differences(
        lambda values: clv.bgnbd_log_likelihood(clv.BgNbdParams(*values), x, t_x, T), params
    )
    for index in range(4):
        assert np.allclose(gradient[index], numeric[index], rtol=1e-5, atol=1e-6), index


@pytest.mark.parametrize("params", [(6.25, 3.74, 15.44), (0.8, 12.0, 2.0)])
def test_the_gamma_gamma_gradient_matches_finite_differences(params):
    repeat = CDNOW[CDNOW["frequency"] > 0]
    x, m = (repeat[column].to_numpy(dtype="float64") for column in ("frequency", "monetary_value"))
    gradient = clv._gamma_gamma_gradient(
        clv.GammaGammaParams(*params), clv._ByFrequency(x), np.log(x), m, np.log(m)
    )
    numeric = central_differences(
        lambda values: clv.gamma_gamma_log_likelihood(clv.GammaGammaParams(*values), x, m), params
    )
    for index in range(3):
        assert np.allclose(gradient[index], numeric[index], rtol=1e-5, atol=1e-6), index


def test_fitting_on_distinct_rows_with_weights_equals_fitting_every_row():
    doubled = pd.concat([CDNOW, CDNOW])
    counts = doubled.groupby(["frequency", "recency", "T"]).size().reset_index(name="n")

    weighted = clv.fit_bgnbd(
        counts["frequency"], counts["recency"], counts["T"], weights=counts["n"]
    )
    every_row = clv.fit_bgnbd(CDNOW["frequency"], CDNOW["recency"], CDNOW["T"])

    assert weighted.r == pytest.approx(every_row.r, rel=1e-3)
    assert weighted.b == pytest.approx(every_row.b, rel=1e-3)


@pytest.fixture(scope="module")
def fitted():
    return clv.fit_bgnbd(CDNOW["frequency"], CDNOW["recency"], CDNOW["T"])


def test_p_alive_is_a_probability_and_one_without_repeat_purchases(fitted):
    alive = clv.probability_alive(fitted, CDNOW["frequency"], CDNOW["recency"], CDNOW["T"])

    assert ((alive >= 0) & (alive <= 1)).all()
    assert (alive[CDNOW["frequency"].to_numpy() == 0] == 1).all()
    # A frequent buyer who stopped long ago is less likely alive than one who just bought.
    stale, fresh = clv.probability_alive(fitted, [10, 10], [5, 38], [39, 39])
    assert stale < fresh


def test_expected_purchases_are_non_negative_and_grow_with_the_horizon(fitted):
    args = (CDNOW["frequency"], CDNOW["recency"], CDNOW["T"])

    short = clv.expected_purchases(fitted, 10, *args)
    long = clv.expected_purchases(fitted, 52, *args)

    assert (short >= 0).all()
    assert (long >= short - 1e-12).all()
    total = clv.expected_purchases(fitted, 39, *args).sum()
    assert 1000 < total < 2500  # the hold-out period had 1,788 repeat purchases


def test_clv_is_lower_with_a_higher_discount_rate_and_scales_with_margin(fitted):
    spend = clv.fit_gamma_gamma(CDNOW["frequency"], CDNOW["monetary_value"])
    kwargs = {"months": 12, "units_per_month": 52 / 12}

    base, purchases = clv.customer_lifetime_value(
        fitted, spend, CDNOW, monthly_discount_rate=0.01, margin=0.3, **kwargs
    )
    steep, _ = clv.customer_lifetime_value(
        fitted, spend, CDNOW, monthly_discount_rate=0.1, margin=0.3, **kwargs
    )
    double, _ = clv.customer_lifetime_value(
        fitted, spend, CDNOW, monthly_discount_rate=0.01, margin=0.6, **kwargs
    )
    args = (CDNOW["frequency"], CDNOW["recency"], CDNOW["T"])
    assert np.allclose(purchases, clv.expected_purchases(fitted, 52, *args))

    assert (base >= 0).all()
    assert base.sum() > steep.sum()
    assert np.allclose(double, 2 * base)


def test_clv_equals_the_discounted_sum_of_each_months_expected_purchases(fitted):
    """The prediction shares its hypergeometric part between customers with equal (x, T);
    the result must be what each customer's own month-by-month sum gives."""
    spend_params = clv.fit_gamma_gamma(CDNOW["frequency"], CDNOW["monetary_value"])
    summary = pd.concat([CDNOW, CDNOW.assign(recency=CDNOW["recency"] / 2)], ignore_index=True)
    args = (summary["frequency"], summary["recency"], summary["T"])
    spend = clv.expected_spend(spend_params, summary["frequency"], summary["monetary_value"])

    value, purchases = clv.customer_lifetime_value(
        fitted,
        spend_params,
        summary,
        months=6,
        monthly_discount_rate=0.02,
        margin=0.25,
        units_per_month=4.0,
    )

    expected, previous = np.zeros(len(summary)), np.zeros(len(summary))
    for month in range(1, 7):
        cumulative = clv.expected_purchases(fitted, 4.0 * month, *args)
        expected += (cumulative - previous) * spend * 0.25 / 1.02**month
        previous = cumulative
    assert np.allclose(value, expected, rtol=1e-12, atol=1e-12)
    assert np.allclose(purchases, previous, rtol=1e-12, atol=1e-12)
    assert value.sum() > 0
