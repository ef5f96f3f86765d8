"""MBG/NBD: the published CDNOW fit, its predictions checked against the model's definition, and
what it changes for one-time buyers; the warnings of degenerate fits."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special

from segmentation import clv

CDNOW = pd.read_csv(Path(__file__).parent / "data" / "cdnow_summary.csv")
COLUMNS = ("frequency", "recency", "T")


@pytest.fixture(scope="module")
def mbgnbd():
    return clv.fit_mbgnbd(*(CDNOW[column] for column in COLUMNS))


def test_mbgnbd_reproduces_the_published_cdnow_fit(mbgnbd):
    """BTYDplus (Platzer) and lifetimes' tests: r = 0.525, alpha = 6.183, a = 0.891, b = 1.614,
    on the same 2,357 customers; the fit agrees to the published three decimals."""
    published = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}

    for name, value in published.items():
        assert abs(getattr(mbgnbd, name) - value) <= 0.0005, (name, mbgnbd)
    # The optimum: the log-likelihood there (BTYDplus: -9582.13) and no better point nearby.
    x, t_x, T = (CDNOW[column].to_numpy(dtype="float64") for column in COLUMNS)
    best = clv.mbgnbd_log_likelihood(mbgnbd, x, t_x, T).sum()
    assert best == pytest.approx(-9582.13, abs=0.01)
    for name in published:
        for factor in (0.99, 1.01):
            moved = clv.MbgNbdParams(**{**vars(mbgnbd), name: getattr(mbgnbd, name) * factor})
            assert clv.mbgnbd_log_likelihood(moved, x, t_x, T).sum() < best


def test_the_fit_ends_converged_within_the_search_bounds():
    for model in (clv.BgNbdParams, clv.MbgNbdParams):
        _params, outcome = clv.fit_purchases(model, *(CDNOW[column] for column in COLUMNS))
        assert outcome == clv.FitOutcome(converged=True, at_bound=())


def central_differences(log_likelihood, params: tuple) -> list[np.ndarray]:
    derivatives = []
    for index, value in enumerate(params):
        step = 1e-6 * value
        up, down = list(params), list(params)
        up[index] += step
        down[index] -= step
        derivatives.append((log_likelihood(up) - log_likelihood(down)) / (2 * step))
    return derivatives


@pytest.mark.parametrize(
    "params", [(0.525, 6.183, 0.891, 1.614), (2.0, 40.0, 0.3, 0.6), (0.05, 0.5, 5.0, 30.0)]
)
def test_the_mbgnbd_gradient_matches_finite_differences(params):
    """Per customer (with and without repeat purchases), by each parameter."""
    x, t_x, T = (CDNOW[column].to_numpy(dtype="float64") for column in COLUMNS)
    _values, gradient = clv._mbgnbd_log_likelihood_gradient(
        clv.MbgNbdParams(*params), clv._ByFrequency(x), t_x, T
    )
    numeric = central_differences(
        lambda values: clv.mbgnbd_log_likelihood(clv.MbgNbdParams(*values), x, t_x, T), params
    )
    for index in range(4):
        assert np.allclose(gradient[index], numeric[index], rtol=1e-5, atol=1e-6), index


def from_the_definition(params, x: float, t_x: float, T: float, t: float) -> tuple[float, float]:
    """P(alive) and E[purchases in the next t] by integrating over the dropout probability p
    the model as defined: purchases at rate lambda ~ Gamma(r, alpha) while alive, and dropout
    with probability p ~ Beta(a, b) after every repeat purchase (BG/NBD) and, for MBG/NBD, also
    right after the first purchase. Lambda is integrated in closed form (a gamma integral);
    while alive, E[purchases in t | lambda, p] = (1 - exp(-lambda p t)) / p."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    modified = isinstance(params, clv.MbgNbdParams)

    def log_gamma_part(age: float) -> float:  # ln of E[lambda^x exp(-lambda age)]
        return (
            special.gammaln(r + x)
            - special.gammaln(r)
            + r * np.log(alpha)
            - (r + x) * np.log(alpha + age)
        )

    def alive_weight(p):  # P(no dropout yet | p)
        return (1 - p) ** (x + 1 if modified else x)

    def dropped_weight(p):  # P(dropout right after the last purchase | p)
        if modified:
            return p * (1 - p) ** x
        return p * (1 - p) ** (x - 1) if x > 0 else 0.0

    def beta_integral(function) -> float:  # the Beta(a, b) mean of function(p)
        value, _error = integrate.quad(
            function, 0, 1, weight="alg", wvar=(a - 1, b - 1), epsabs=0, epsrel=1e-11, limit=200
        )
        return value / special.beta(a, b)

    alive_at_T, dropped_at_t_x = np.exp(log_gamma_part(T)), np.exp(log_gamma_part(t_x))
    likelihood = beta_integral(
        lambda p: alive_weight(p) * alive_at_T + dropped_weight(p) * dropped_at_t_x
    )
    alive = beta_integral(lambda p: alive_weight(p) * alive_at_T) / likelihood

    def future(p):
        # E[lambda^x exp(-lambda T) (1 - exp(-lambda p t))] / p, without cancellation at p ~ 0
        if p == 0:
            return alive_at_T * (r + x) * t / (alpha + T)
        shrink = np.expm1(-(r + x) * np.log1p(p * t / (alpha + T)))
        return alive_weight(p) * alive_at_T * -shrink / p

    return alive, beta_integral(future) / likelihood


HISTORIES = [(0, 0, 38.0), (0, 0, 2.0), (1, 5.0, 39.0), (2, 30.43, 38.86), (7, 35.0, 39.0)]


@pytest.mark.parametrize(
    "params",
    [
        clv.MbgNbdParams(0.525, 6.183, 0.891, 1.614),
        clv.MbgNbdParams(2.0, 40.0, 1.7, 3.0),
        clv.BgNbdParams(0.243, 4.414, 0.793, 2.426),
    ],
    ids=["mbgnbd-cdnow", "mbgnbd-a-above-1", "bgnbd-cdnow"],
)
@pytest.mark.parametrize("history", HISTORIES, ids=[str(history) for history in HISTORIES])
def test_p_alive_and_expected_purchases_follow_from_the_models_definition(params, history):
    """The closed forms (Batislam et al. 2007 eq. 5; Wagner & Hoppe 2008) against numerical
    integration of the model itself, for one-time and repeat buyers, recent and long ago."""
    x, t_x, T = history
    for horizon in (10.0, 39.0):
        alive, purchases = from_the_definition(params, x, t_x, T, horizon)

        assert clv.probability_alive(params, [x], [t_x], [T])[0] == pytest.approx(alive, rel=1e-8)
        assert clv.expected_purchases(params, horizon, [x], [t_x], [T])[0] == pytest.approx(
            purchases, rel=1e-7
        )


def test_a_one_time_buyer_long_ago_is_probably_gone_and_less_alive_than_a_recent_one(mbgnbd):
    """CDNOW's weeks: one purchase 38 weeks ago against one 2 weeks ago. BG/NBD calls both
    certainly alive; MBG/NBD gives the old one a low P(alive), and the longer ago the lower."""
    ages = [2.0, 10.0, 20.0, 38.0, 78.0]
    zeros = [0.0] * len(ages)

    alive = clv.probability_alive(mbgnbd, zeros, zeros, ages)
    bgnbd = clv.fit_bgnbd(*(CDNOW[column] for column in COLUMNS))

    assert (np.diff(alive) < 0).all()
    assert alive[3] < 0.4 < 0.6 < alive[0]
    assert (clv.probability_alive(bgnbd, zeros, zeros, ages) == 1).all()
    # Among CDNOW's one-time buyers (all 27-39 weeks old) the mean falls from 1 to about 0.4.
    x, t_x, T = (CDNOW[column].to_numpy(dtype="float64") for column in COLUMNS)
    once = x == 0
    assert clv.probability_alive(mbgnbd, x, t_x, T)[once].mean() < 0.45
    assert (clv.probability_alive(bgnbd, x, t_x, T)[once] == 1).all()


def test_the_mbgnbd_prediction_matches_the_holdout_period(mbgnbd):
    """The 2,357 customers made 1,788 repeat purchases in the 39 weeks after calibration; the
    MBG/NBD forecast (like BG/NBD's, 1,573) is within 15% of that."""
    total = clv.expected_purchases(mbgnbd, 39, *(CDNOW[column] for column in COLUMNS)).sum()

    assert abs(total - 1788) < 0.15 * 1788


def test_predict_customer_value_uses_the_chosen_model_and_records_it():
    summary = CDNOW.assign(
        monetary_value=CDNOW["monetary_value"].where(CDNOW["frequency"] > 0, 0.0)
    )
    kwargs = {"months": 12, "monthly_discount_rate": 0.01, "margin": 0.3, "units_per_month": 4.3}

    default, fitted = clv.predict_customer_value(summary, **kwargs)
    classic, classic_fitted = clv.predict_customer_value(summary, purchase_model="bgnbd", **kwargs)

    assert fitted["purchase_model"] == "mbgnbd" and "bgnbd" not in fitted
    assert fitted["mbgnbd"]["r"] == pytest.approx(0.525, abs=0.0005)
    assert classic_fitted["purchase_model"] == "bgnbd"
    assert classic_fitted["bgnbd"]["r"] == pytest.approx(0.243, rel=0.01)
    assert fitted["warnings"] == classic_fitted["warnings"] == []
    once = (summary["frequency"] == 0).to_numpy()
    assert (classic["p_alive"][once] == 1).all()
    assert default["p_alive"][once].max() < 0.7
    assert (default["clv"] >= 0).all()


# --- degenerate fits -------------------------------------------------------------------------


def spend_summary(rng, count: int, spread_within: float, q: float = 4.0) -> pd.DataFrame:
    """Customers with 1-8 repeat purchases whose mean spend varies between customers (Gamma
    with shape q) and, per purchase, around that mean by `spread_within` (relative)."""
    frequency = rng.integers(1, 9, count).astype("float64")
    means = 40.0 * rng.gamma(q, 1 / q, count)
    monetary = np.array(
        [
            (mean * (1 + spread_within * rng.standard_normal(int(x)))).mean()
            for mean, x in zip(means, frequency, strict=True)
        ]
    )
    return pd.DataFrame({"frequency": frequency, "monetary_value": np.round(monetary, 2)})


def test_a_gamma_gamma_fit_on_spend_that_hardly_varies_is_flagged():
    """Every purchase of a customer costs the same, and the customers' amounts are spread as
    Gamma-Gamma's limit for p -> infinity has them (inverse gamma): the search runs off."""
    rng = np.random.default_rng(3)
    frequency = rng.integers(1, 9, 2000).astype("float64")
    monetary = np.round(120.0 / rng.gamma(4.0, 1.0, 2000), 2)

    params, outcome = clv.fit_gamma_gamma_outcome(frequency, monetary)
    warnings = clv.fit_warnings("gamma_gamma", params, outcome)

    assert params.p > clv.GAMMA_GAMMA_SHAPE_LIMIT
    flagged = [warning for warning in warnings if warning.get("parameter") == "p"]
    assert flagged and flagged[0]["code"] == "too_large"
    assert flagged[0]["value"] == params.p
    assert all(warning["model"] == "gamma_gamma" for warning in warnings)


def test_a_gamma_gamma_fit_on_varying_spend_is_not_flagged():
    rng = np.random.default_rng(26)
    varied = spend_summary(rng, 2000, spread_within=0.4)
    repeat = CDNOW[CDNOW["frequency"] > 0]

    for frequency, monetary in (
        (varied["frequency"], varied["monetary_value"]),
        (repeat["frequency"], repeat["monetary_value"]),
    ):
        params, outcome = clv.fit_gamma_gamma_outcome(frequency, monetary)
        assert clv.fit_warnings("gamma_gamma", params, outcome) == [], params
        assert params.p < 100


def test_each_kind_of_degenerate_fit_gets_its_own_warning():
    healthy = clv.GammaGammaParams(p=6.25, q=3.74, v=15.44)
    converged = clv.FitOutcome(converged=True)

    assert clv.fit_warnings("gamma_gamma", healthy, converged) == []
    assert clv.fit_warnings("gamma_gamma", healthy, clv.FitOutcome(converged=False)) == [
        {"model": "gamma_gamma", "code": "not_converged"}
    ]
    assert clv.fit_warnings(
        "gamma_gamma", clv.GammaGammaParams(p=6.25, q=2500.0, v=15.44), converged
    ) == [
        {
            "model": "gamma_gamma",
            "code": "too_large",
            "parameter": "q",
            "value": 2500.0,
            "limit": clv.GAMMA_GAMMA_SHAPE_LIMIT,
        }
    ]
    assert clv.fit_warnings(
        "gamma_gamma", clv.GammaGammaParams(p=6.25, q=0.8, v=15.44), converged
    ) == [{"model": "gamma_gamma", "code": "no_mean_spend", "parameter": "q", "value": 0.8}]
    dropout_free = clv.MbgNbdParams(r=1.0, alpha=30.0, a=3.1e-7, b=2.0)
    assert clv.fit_warnings(
        "mbgnbd", dropout_free, clv.FitOutcome(converged=True, at_bound=("a",))
    ) == [{"model": "mbgnbd", "code": "at_bound", "parameter": "a", "value": 3.1e-7}]


def test_predictions_carry_the_warnings_and_stay_non_negative_when_mean_spend_is_infinite():
    """Mean spend so heavy-tailed between customers that Gamma-Gamma's q ends at or below 1:
    its population mean p v / (q - 1) is meaningless, so customers without repeats get the
    observed mean repeat spend instead, and the run is told."""
    rng = np.random.default_rng(7)
    count = 1500
    spend = spend_summary(rng, count, spread_within=0.3, q=4.0)
    spend["monetary_value"] *= rng.pareto(0.7, count) + 0.05
    once = rng.random(count) < 0.4
    summary = pd.DataFrame(
        {
            "frequency": np.where(once, 0.0, spend["frequency"]),
            "recency": np.where(once, 0.0, 200.0),
            "T": np.full(count, 400.0),
            "monetary_value": np.where(once, 0.0, spend["monetary_value"]),
        }
    )

    predictions, fitted = clv.predict_customer_value(
        summary, months=12, monthly_discount_rate=0.01, margin=0.3
    )

    assert fitted["gamma_gamma"]["q"] <= 1
    assert {"model": "gamma_gamma", "code": "no_mean_spend"}.items() <= fitted["warnings"][
        -1
    ].items()
    observed = summary.loc[~once, "monetary_value"].mean()
    assert predictions.loc[once, "expected_spend"].to_numpy() == pytest.approx(observed)
    assert (predictions["clv"] >= 0).all() and (predictions["expected_spend"] > 0).all()
