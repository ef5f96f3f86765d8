"""Customer lifetime value: BG/NBD for purchases and P(alive), Gamma-Gamma for spend.

Pure numpy/scipy/pandas, no Django (a test checks it). Models and notation:
* BG/NBD, Fader, Hardie & Lee (2005), "Counting your customers the easy way": parameters r,
  alpha (purchase rate), a, b (dropout). Input per customer: frequency x (repeat purchases),
  recency t_x (time of the last purchase since the first) and age T, in one time unit.
* Gamma-Gamma, Fader & Hardie (2013), "The Gamma-Gamma model of monetary value": parameters p,
  q, v. Input: frequency x > 0 and the mean spend of the repeat purchases.

Fitting maximises the log-likelihood in log-parameter space. It runs on the distinct input
combinations with their counts as weights, which is exact; when there are more than
MAX_FIT_ROWS input rows (a million customers), it fits on a seeded random sample of that many
customers, whose estimates differ from the full fit by far
less than the parameters' own uncertainty. Predictions always cover every customer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special
from threadpoolctl import threadpool_limits

MAX_FIT_ROWS = 50_000


@dataclass(frozen=True)
class BgNbdParams:
    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    v: float


def _distinct(columns: dict[str, np.ndarray], weights: np.ndarray | None) -> pd.DataFrame:
    frame = pd.DataFrame(columns)
    frame["weight"] = 1.0 if weights is None else np.asarray(weights, dtype="float64")
    if len(frame) > MAX_FIT_ROWS:
        frame = frame.sample(
            n=MAX_FIT_ROWS, weights="weight", random_state=20051, replace=weights is not None
        )
        frame["weight"] = 1.0
    return frame.groupby(list(columns), as_index=False, sort=True)["weight"].sum()


# Log-parameters stay within e^-15..e^15: data without dropout drives a and b to infinity,
# where the likelihood is flat; the bound ends that search instead of wandering off.
_LOG_BOUND = 15.0


def _maximise(negative_mean_log_likelihood, count: int) -> np.ndarray:
    """Minimise over log-parameters with bounded L-BFGS-B from 1.0 (inputs are scaled). The
    function returns its value and gradient: finite differences took five to six times as
    many evaluations."""
    # One BLAS thread: L-BFGS-B makes many BLAS calls on vectors of 3-4 numbers, and waking
    # OpenBLAS's threads for each took 1.6 ms a call (a Gamma-Gamma fit: 0.38 s, 0.11 s with one
    # thread), while they spun on the cores the database needs.
    with threadpool_limits(limits=1, user_api="blas"):
        result = optimize.minimize(
            negative_mean_log_likelihood,
            np.zeros(count),
            jac=True,
            method="L-BFGS-B",
            bounds=[(-_LOG_BOUND, _LOG_BOUND)] * count,
            options={"maxiter": 500, "ftol": 1e-12, "gtol": 1e-8},
        )
    return result.x


class _ByFrequency:
    """Repeat-purchase counts and, per customer, the index of theirs among the distinct ones:
    the likelihoods' gamma and beta functions depend on the count only, so they are computed
    once per distinct count (a few dozen) instead of once per customer."""

    def __init__(self, frequency) -> None:
        self.x = np.asarray(frequency, dtype="float64")
        self.distinct, self.index = np.unique(self.x, return_inverse=True)
        self.index = self.index.reshape(-1)

    def per_customer(self, values: np.ndarray) -> np.ndarray:
        return values[self.index]


def _bgnbd_terms(params: BgNbdParams, x: _ByFrequency, t_x, T):
    """The likelihood's parts: what depends on the count only (per customer), A3 = -(r+x)
    ln(alpha+T) and A4 = ln a - ln(b+x-1) - (r+x) ln(alpha+t_x) (-inf without repeats), whose
    log-sum-exp is the bracket, and ln(alpha+T), ln(alpha+t_x)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    xs = x.distinct
    with np.errstate(divide="ignore", invalid="ignore"):
        log_b_x = np.log(np.maximum(b + xs - 1, 1e-300))
    by_count = x.per_customer(
        special.gammaln(r + xs)
        - special.gammaln(r)
        + r * np.log(alpha)
        + special.betaln(a, b + xs)
        - special.betaln(a, b)
    )
    log_age, log_recency = np.log(alpha + T), np.log(alpha + t_x)
    a3 = -(r + x.x) * log_age
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(
            x.x > 0, np.log(a) - x.per_customer(log_b_x) - (r + x.x) * log_recency, -np.inf
        )
    return by_count, a3, a4, log_age, log_recency


def _bgnbd_log_likelihood(params: BgNbdParams, x: _ByFrequency, t_x, T) -> np.ndarray:
    by_count, a3, a4, _log_age, _log_recency = _bgnbd_terms(params, x, t_x, T)
    return by_count + np.logaddexp(a3, a4)


def _bgnbd_log_likelihood_gradient(
    params: BgNbdParams, x: _ByFrequency, t_x, T
) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's BG/NBD log-likelihood and its derivatives by r, alpha, a and b (rows):
    digamma functions of the count, and the derivatives of A3 and A4 weighted by their shares
    w3, w4 of the bracket."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    xs, psi = x.distinct, special.digamma
    by_count, a3, a4, log_age, log_recency = _bgnbd_terms(params, x, t_x, T)
    bracket = np.logaddexp(a3, a4)
    w4 = np.exp(a4 - bracket)
    w3 = 1 - w4
    by_r = x.per_customer(psi(r + xs) - psi(r) + np.log(alpha)) - w3 * log_age - w4 * log_recency
    by_alpha = r / alpha - (r + x.x) * (w3 / (alpha + T) + w4 / (alpha + t_x))
    by_a = x.per_customer(psi(a + b) - psi(a + b + xs)) + w4 / a
    with np.errstate(divide="ignore", invalid="ignore"):
        dropout = np.where(x.x > 0, w4 / (b + x.x - 1), 0.0)
    by_b = x.per_customer(psi(b + xs) - psi(a + b + xs) - psi(b) + psi(a + b)) - dropout
    return by_count + bracket, np.vstack([by_r, by_alpha, by_a, by_b])


def bgnbd_log_likelihood(params: BgNbdParams, x, t_x, T) -> np.ndarray:
    """Each customer's BG/NBD log-likelihood."""
    t_x, T = (np.asarray(value, dtype="float64") for value in (t_x, T))
    return _bgnbd_log_likelihood(params, _ByFrequency(x), t_x, T)


def fit_bgnbd(frequency, recency, T, weights=None) -> BgNbdParams:
    """Maximum-likelihood BG/NBD parameters."""
    data = _distinct(
        {
            "x": np.asarray(frequency, dtype="float64"),
            "t_x": np.asarray(recency, dtype="float64"),
            "T": np.asarray(T, dtype="float64"),
        },
        weights,
    )
    x, t_x, age, weight = (data[column].to_numpy() for column in ("x", "t_x", "T", "weight"))
    scale = float(np.average(age, weights=weight)) or 1.0
    counts = _ByFrequency(x)

    share = weight / weight.sum()

    def negative(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha, a, b = np.exp(log_params)
        values, gradient = _bgnbd_log_likelihood_gradient(
            BgNbdParams(r, alpha * scale, a, b), counts, t_x, age
        )
        # d/d log(theta) = theta * d/d theta; alpha * scale is the model's alpha.
        return -float(share @ values), -(gradient @ share) * [r, alpha * scale, a, b]

    r, alpha, a, b = np.exp(_maximise(negative, 4))
    return BgNbdParams(r=float(r), alpha=float(alpha * scale), a=float(a), b=float(b))


def _dropout_odds(params: BgNbdParams, x, t_x, T) -> np.ndarray:
    """The second term of the BG/NBD likelihood's bracket: 0 for customers without repeats."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x, t_x, T = (np.asarray(value, dtype="float64") for value in (x, t_x, T))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_odds = (
            np.log(a)
            - np.log(np.maximum(b + x - 1, 1e-300))
            + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        )
        return np.where(x > 0, np.exp(log_odds), 0.0)


def probability_alive(params: BgNbdParams, frequency, recency, T) -> np.ndarray:
    """P(the customer has not dropped out), given their history."""
    return 1.0 / (1.0 + _dropout_odds(params, frequency, recency, T))


def _purchases_numerator(params: BgNbdParams, t: float, x, T) -> np.ndarray:
    """E[purchases in the next t] times the dropout bracket: it depends on x and T only."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    hyper = special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    first = (a + b + x - 1) / (a - 1)
    return first * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyper)


def _clip(values: np.ndarray) -> np.ndarray:
    return np.maximum(np.nan_to_num(values, nan=0.0), 0.0)


def expected_purchases(params: BgNbdParams, t: float, frequency, recency, T) -> np.ndarray:
    """Expected number of purchases in the next `t` time units, given the history."""
    x, T = np.asarray(frequency, dtype="float64"), np.asarray(T, dtype="float64")
    numerator = _purchases_numerator(params, t, x, T)
    return _clip(numerator / (1 + _dropout_odds(params, frequency, recency, T)))


def _gamma_gamma_log_likelihood(
    params: GammaGammaParams, x: _ByFrequency, log_x, monetary, log_m
) -> np.ndarray:
    p, q, v = params.p, params.q, params.v
    xs = x.distinct
    by_count = x.per_customer(
        special.gammaln(p * xs + q) - special.gammaln(p * xs) - special.gammaln(q) + q * np.log(v)
    )
    px = p * x.x
    return by_count + (px - 1) * log_m + px * log_x - (px + q) * np.log(x.x * monetary + v)


def _gamma_gamma_gradient(
    params: GammaGammaParams, x: _ByFrequency, log_x, monetary, log_m
) -> np.ndarray:
    """Derivatives of each customer's Gamma-Gamma log-likelihood by p, q and v (rows)."""
    p, q, v = params.p, params.q, params.v
    xs, psi = x.distinct, special.digamma
    log_spend = np.log(x.x * monetary + v)
    by_p = x.x * (x.per_customer(psi(p * xs + q) - psi(p * xs)) + log_m + log_x - log_spend)
    by_q = x.per_customer(psi(p * xs + q) - psi(q) + np.log(v)) - log_spend
    by_v = q / v - (p * x.x + q) / (x.x * monetary + v)
    return np.vstack([by_p, by_q, by_v])


def gamma_gamma_log_likelihood(params: GammaGammaParams, frequency, monetary) -> np.ndarray:
    x, m = np.asarray(frequency, dtype="float64"), np.asarray(monetary, dtype="float64")
    return _gamma_gamma_log_likelihood(params, _ByFrequency(x), np.log(x), m, np.log(m))


def fit_gamma_gamma(frequency, monetary_value, weights=None) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma parameters from customers with repeat purchases."""
    frequency = np.asarray(frequency, dtype="float64")
    monetary_value = np.asarray(monetary_value, dtype="float64")
    keep = (frequency > 0) & (monetary_value > 0)
    data = _distinct(
        {"x": frequency[keep], "m": monetary_value[keep]},
        None if weights is None else np.asarray(weights)[keep],
    )
    x, m, weight = (data[column].to_numpy() for column in ("x", "m", "weight"))
    scale = float(np.average(m, weights=weight)) or 1.0
    counts, log_x, log_m = _ByFrequency(x), np.log(x), np.log(m)

    share = weight / weight.sum()

    def negative(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        p, q, v = np.exp(log_params)
        params = GammaGammaParams(p, q, v * scale)
        values = _gamma_gamma_log_likelihood(params, counts, log_x, m, log_m)
        gradient = _gamma_gamma_gradient(params, counts, log_x, m, log_m)
        return -float(share @ values), -(gradient @ share) * [p, q, v * scale]

    p, q, v = np.exp(_maximise(negative, 3))
    return GammaGammaParams(p=float(p), q=float(q), v=float(v * scale))


def expected_spend(
    params: GammaGammaParams, frequency, monetary_value, population_mean: float | None = None
) -> np.ndarray:
    """Expected spend per purchase; customers without repeats get the population mean."""
    p, q, v = params.p, params.q, params.v
    x = np.asarray(frequency, dtype="float64")
    m = np.asarray(monetary_value, dtype="float64")
    mean = population_mean if population_mean is not None else p * v / (q - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        conditional = p * (v + x * m) / (p * x + q - 1)
    return np.where(x > 0, conditional, mean)


def customer_lifetime_value(
    bgnbd: BgNbdParams,
    gamma_gamma: GammaGammaParams,
    summary: pd.DataFrame,
    *,
    months: int,
    monthly_discount_rate: float,
    margin: float,
    units_per_month: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Discounted margin over `months`: per month, the expected purchases in that month times
    the expected spend per purchase times the margin, divided by (1 + rate) ** month.

    Returns the value and the expected purchases over the whole horizon."""
    x, t_x, T = (
        summary[column].to_numpy(dtype="float64") for column in ("frequency", "recency", "T")
    )
    spend = expected_spend(gamma_gamma, x, summary["monetary_value"].to_numpy(dtype="float64"))
    # E[purchases up to t] = numerator(x, T, t) / (1 + dropout odds(x, t_x, T)): the costly
    # hypergeometric part is computed once per distinct (x, T) and month, not per customer.
    # With whole days (customer_summary) a million customers have a few ten thousand pairs.
    # (x, T) as one complex number: pandas factorizes that by hashing, in one pass.
    customer_pair, pairs = pd.factorize(x + 1j * T)
    discounted = np.zeros(len(pairs))
    previous = np.zeros(len(pairs))
    for month in range(1, months + 1):
        cumulative = _clip(
            _purchases_numerator(bgnbd, month * units_per_month, pairs.real, pairs.imag)
        )
        discounted += (cumulative - previous) / (1 + monthly_discount_rate) ** month
        previous = cumulative
    bracket = 1 + _dropout_odds(bgnbd, x, t_x, T)
    value = _clip(discounted[customer_pair] / bracket) * spend * margin
    return value, _clip(previous[customer_pair] / bracket)


def predict_customer_value(
    summary: pd.DataFrame,
    *,
    months: int,
    monthly_discount_rate: float,
    margin: float,
    units_per_month: float = 30.4375,
) -> tuple[pd.DataFrame, dict]:
    """Fit both models on `summary` (days) and predict per customer over `months`; returns the
    predictions and the fitted parameters."""
    bgnbd = fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])
    gamma_gamma = fit_gamma_gamma(summary["frequency"], summary["monetary_value"])
    x, t_x, T = (
        summary[column].to_numpy(dtype="float64") for column in ("frequency", "recency", "T")
    )
    value, purchases = customer_lifetime_value(
        bgnbd,
        gamma_gamma,
        summary,
        months=months,
        monthly_discount_rate=monthly_discount_rate,
        margin=margin,
        units_per_month=units_per_month,
    )
    predictions = pd.DataFrame(
        {
            "expected_purchases": purchases,
            "p_alive": probability_alive(bgnbd, x, t_x, T),
            "expected_spend": expected_spend(gamma_gamma, x, summary["monetary_value"].to_numpy()),
            "clv": value,
        },
        index=summary.index,
    )
    return predictions, {"bgnbd": asdict(bgnbd), "gamma_gamma": asdict(gamma_gamma)}
