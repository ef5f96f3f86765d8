"""Customer lifetime value: MBG/NBD or BG/NBD for purchases and P(alive), Gamma-Gamma for spend.

Pure numpy/scipy/pandas, no Django (a test checks it). Models and notation:
* BG/NBD, Fader, Hardie & Lee (2005), "Counting your customers the easy way": parameters r,
  alpha (purchase rate), a, b (dropout). Input per customer: frequency x (repeat purchases),
  recency t_x (time of the last purchase since the first) and age T, in one time unit.
  A customer can drop out only after a repeat purchase, so every one-time buyer has P(alive) 1.
* MBG/NBD, Batislam, Denizel & Filiztekin (2007), "Empirical validation and comparison of
  models for customer base analysis", with the conditional expectation of Wagner & Hoppe
  (2008), "Erratum on the MBG/NBD model": the same parameters, but a customer can also drop
  out at time 0, right after the first purchase, so a one-time buyer's P(alive) falls with the
  time since that purchase. The default (PURCHASE_MODELS).
* Gamma-Gamma, Fader & Hardie (2013), "The Gamma-Gamma model of monetary value": parameters p,
  q, v. Input: frequency x > 0 and the mean spend of the repeat purchases.

Fitting maximises the log-likelihood in log-parameter space. It runs on the distinct input
combinations with their counts as weights, which is exact; when there are more than
MAX_FIT_ROWS input rows (a million customers), it fits on a seeded random sample of that many
customers, whose estimates differ from the full fit by far
less than the parameters' own uncertainty. Predictions always cover every customer. A run split
by member-id range fits once on its own seeded sample (SegmentationSettings.clv_sample_size,
max_rows=None) and predicts range by range with the fitted models (predict_fitted).

A fit can end where its parameters mean nothing (spend that hardly varies drives Gamma-Gamma's
p to millions): fit_warnings names what makes a fit untrustworthy, the run records it and its
page shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TypeVar

import numpy as np
import pandas as pd
from scipy import optimize, special
from threadpoolctl import threadpool_limits

MAX_FIT_ROWS = 50_000


@dataclass(frozen=True)
class _CountingParams:
    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class BgNbdParams(_CountingParams):
    pass


@dataclass(frozen=True)
class MbgNbdParams(_CountingParams):
    pass


PurchaseParams = BgNbdParams | MbgNbdParams
Purchases = TypeVar("Purchases", bound=_CountingParams)


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    v: float


# The purchase models by the name the settings store; the first is the default.
PURCHASE_MODELS: dict[str, type[PurchaseParams]] = {"mbgnbd": MbgNbdParams, "bgnbd": BgNbdParams}


def _distinct(
    columns: dict[str, np.ndarray], weights: np.ndarray | None, max_rows: int | None = MAX_FIT_ROWS
) -> pd.DataFrame:
    frame = pd.DataFrame(columns)
    frame["weight"] = 1.0 if weights is None else np.asarray(weights, dtype="float64")
    if max_rows is not None and len(frame) > max_rows:
        frame = frame.sample(
            n=max_rows, weights="weight", random_state=20051, replace=weights is not None
        )
        frame["weight"] = 1.0
    return frame.groupby(list(columns), as_index=False, sort=True)["weight"].sum()


# Log-parameters stay within e^-15..e^15: data without dropout drives a and b to infinity,
# where the likelihood is flat; the bound ends that search instead of wandering off.
_LOG_BOUND = 15.0


@dataclass(frozen=True)
class FitOutcome:
    """How a fit's search ended: whether the optimiser reported convergence, and which
    parameters it left at the search bound (the likelihood still rose towards 0 or infinity)."""

    converged: bool
    at_bound: tuple[str, ...] = ()


def _maximise(
    negative_mean_log_likelihood, names: tuple[str, ...]
) -> tuple[np.ndarray, FitOutcome]:
    """Minimise over log-parameters with bounded L-BFGS-B from 1.0 (inputs are scaled); returns
    the log-parameters and how the search ended. The function returns its value and gradient:
    finite differences took five to six times as many evaluations."""
    count = len(names)
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
    at_bound = tuple(
        name for name, value in zip(names, result.x, strict=True) if abs(value) >= _LOG_BOUND - 1e-3
    )
    return result.x, FitOutcome(converged=bool(result.success), at_bound=at_bound)


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


def _mbgnbd_terms(params: MbgNbdParams, x: _ByFrequency, t_x, T):
    """As _bgnbd_terms, with MBG/NBD's B(a, b+x+1) in place of B(a, b+x) and A4 = ln a -
    ln(b+x) - (r+x) ln(alpha+t_x), which is finite without repeats too (t_x = 0 then): the
    customer who dropped out at time 0."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    xs = x.distinct
    by_count = x.per_customer(
        special.gammaln(r + xs)
        - special.gammaln(r)
        + r * np.log(alpha)
        + special.betaln(a, b + xs + 1)
        - special.betaln(a, b)
    )
    log_age, log_recency = np.log(alpha + T), np.log(alpha + t_x)
    a3 = -(r + x.x) * log_age
    a4 = np.log(a) - x.per_customer(np.log(b + xs)) - (r + x.x) * log_recency
    return by_count, a3, a4, log_age, log_recency


def _mbgnbd_log_likelihood_gradient(
    params: MbgNbdParams, x: _ByFrequency, t_x, T
) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's MBG/NBD log-likelihood and its derivatives by r, alpha, a and b (rows),
    in the same form as _bgnbd_log_likelihood_gradient."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    xs, psi = x.distinct, special.digamma
    by_count, a3, a4, log_age, log_recency = _mbgnbd_terms(params, x, t_x, T)
    bracket = np.logaddexp(a3, a4)
    w4 = np.exp(a4 - bracket)
    w3 = 1 - w4
    by_r = x.per_customer(psi(r + xs) - psi(r) + np.log(alpha)) - w3 * log_age - w4 * log_recency
    by_alpha = r / alpha - (r + x.x) * (w3 / (alpha + T) + w4 / (alpha + t_x))
    by_a = x.per_customer(psi(a + b) - psi(a + b + xs + 1)) + w4 / a
    by_b = x.per_customer(psi(b + xs + 1) - psi(a + b + xs + 1) - psi(b) + psi(a + b)) - w4 / (
        b + x.x
    )
    return by_count + bracket, np.vstack([by_r, by_alpha, by_a, by_b])


def mbgnbd_log_likelihood(params: MbgNbdParams, x, t_x, T) -> np.ndarray:
    """Each customer's MBG/NBD log-likelihood."""
    t_x, T = (np.asarray(value, dtype="float64") for value in (t_x, T))
    by_count, a3, a4, _log_age, _log_recency = _mbgnbd_terms(params, _ByFrequency(x), t_x, T)
    return by_count + np.logaddexp(a3, a4)


_GRADIENTS: dict[type, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    BgNbdParams: _bgnbd_log_likelihood_gradient,
    MbgNbdParams: _mbgnbd_log_likelihood_gradient,
}


def fit_bgnbd(frequency, recency, T, weights=None) -> BgNbdParams:
    """Maximum-likelihood BG/NBD parameters."""
    params, _outcome = fit_purchases(BgNbdParams, frequency, recency, T, weights)
    return params


def fit_mbgnbd(frequency, recency, T, weights=None) -> MbgNbdParams:
    """Maximum-likelihood MBG/NBD parameters."""
    params, _outcome = fit_purchases(MbgNbdParams, frequency, recency, T, weights)
    return params


def fit_purchases(
    model: type[Purchases],
    frequency,
    recency,
    T,
    weights=None,
    *,
    max_rows: int | None = MAX_FIT_ROWS,
) -> tuple[Purchases, FitOutcome]:
    """Maximum-likelihood parameters of `model` (BgNbdParams or MbgNbdParams), and how the
    search ended. Fitted on a seeded sample of `max_rows` customers if there are more (None:
    on all of them)."""
    data = _distinct(
        {
            "x": np.asarray(frequency, dtype="float64"),
            "t_x": np.asarray(recency, dtype="float64"),
            "T": np.asarray(T, dtype="float64"),
        },
        weights,
        max_rows,
    )
    x, t_x, age, weight = (data[column].to_numpy() for column in ("x", "t_x", "T", "weight"))
    scale = float(np.average(age, weights=weight)) or 1.0
    counts = _ByFrequency(x)

    share = weight / weight.sum()

    log_likelihood_gradient = _GRADIENTS[model]

    def negative(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha, a, b = np.exp(log_params)
        values, gradient = log_likelihood_gradient(model(r, alpha * scale, a, b), counts, t_x, age)
        # d/d log(theta) = theta * d/d theta; alpha * scale is the model's alpha.
        return -float(share @ values), -(gradient @ share) * [r, alpha * scale, a, b]

    log_params, outcome = _maximise(negative, ("r", "alpha", "a", "b"))
    r, alpha, a, b = np.exp(log_params)
    return model(r=float(r), alpha=float(alpha * scale), a=float(a), b=float(b)), outcome


def _prediction_b(params: PurchaseParams) -> float:
    """The b of the BG/NBD prediction formulas: MBG/NBD's P(alive) (Batislam et al. 2007, eq.
    5) and conditional expectation (Wagner & Hoppe 2008) are BG/NBD's (Fader et al. 2005, eq.
    10 and 13) with b + 1 in place of b, and without BG/NBD's exception for x = 0."""
    return params.b + 1 if isinstance(params, MbgNbdParams) else params.b


def _dropout_odds(params: PurchaseParams, x, t_x, T) -> np.ndarray:
    """The second term of the likelihood's bracket over the first: the odds that the customer
    dropped out after their last purchase. BG/NBD: 0 for customers without repeats."""
    r, alpha, a, b = params.r, params.alpha, params.a, _prediction_b(params)
    x, t_x, T = (np.asarray(value, dtype="float64") for value in (x, t_x, T))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_odds = (
            np.log(a)
            - np.log(np.maximum(b + x - 1, 1e-300))
            + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        )
        if isinstance(params, MbgNbdParams):
            return np.exp(log_odds)
        return np.where(x > 0, np.exp(log_odds), 0.0)


def probability_alive(params: PurchaseParams, frequency, recency, T) -> np.ndarray:
    """P(the customer has not dropped out), given their history."""
    return 1.0 / (1.0 + _dropout_odds(params, frequency, recency, T))


def _purchases_numerator(params: PurchaseParams, t: float, x, T) -> np.ndarray:
    """E[purchases in the next t] times the dropout bracket: it depends on x and T only."""
    r, alpha, a, b = params.r, params.alpha, params.a, _prediction_b(params)
    hyper = special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    first = (a + b + x - 1) / (a - 1)
    return first * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyper)


def _clip(values: np.ndarray) -> np.ndarray:
    return np.maximum(np.nan_to_num(values, nan=0.0), 0.0)


def expected_purchases(params: PurchaseParams, t: float, frequency, recency, T) -> np.ndarray:
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
    params, _outcome = fit_gamma_gamma_outcome(frequency, monetary_value, weights)
    return params


def fit_gamma_gamma_outcome(
    frequency, monetary_value, weights=None, *, max_rows: int | None = MAX_FIT_ROWS
) -> tuple[GammaGammaParams, FitOutcome]:
    """fit_gamma_gamma, and how the search ended (`max_rows` as in fit_purchases)."""
    frequency = np.asarray(frequency, dtype="float64")
    monetary_value = np.asarray(monetary_value, dtype="float64")
    keep = (frequency > 0) & (monetary_value > 0)
    data = _distinct(
        {"x": frequency[keep], "m": monetary_value[keep]},
        None if weights is None else np.asarray(weights)[keep],
        max_rows,
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

    log_params, outcome = _maximise(negative, ("p", "q", "v"))
    p, q, v = np.exp(log_params)
    return GammaGammaParams(p=float(p), q=float(q), v=float(v * scale)), outcome


# Gamma-Gamma shapes beyond this mean a degenerate fit: p is the shape of the spend of one
# customer's purchases (their coefficient of variation is 1/sqrt(p): 10% at 100, where shop
# baskets vary by 40% and more), q that of the customers' mean spend. CDNOW: p = 6.25, q = 3.74.
# When a customer's spend hardly varies, the likelihood is flat in p and the search ends
# anywhere from a hundred to millions (the demo: p = 2.6 million).
GAMMA_GAMMA_SHAPE_LIMIT = 100.0


def fit_warnings(model: str, params, outcome: FitOutcome) -> list[dict]:
    """What makes a fit of `model` (a PURCHASE_MODELS name or "gamma_gamma") untrustworthy, as
    {"model", "code"[, "parameter", "value", "limit"]}: "not_converged", "at_bound" (a parameter
    at the search bound), for Gamma-Gamma "too_large" (p or q beyond GAMMA_GAMMA_SHAPE_LIMIT)
    and "no_mean_spend" (q <= 1: the population's mean spend per purchase is infinite)."""
    values = asdict(params)
    warnings: list[dict] = []
    if not outcome.converged:
        warnings.append({"model": model, "code": "not_converged"})
    too_large = []
    if isinstance(params, GammaGammaParams):
        too_large = [name for name in ("p", "q") if values[name] > GAMMA_GAMMA_SHAPE_LIMIT]
    for name in outcome.at_bound:
        if name not in too_large:  # "too_large" says it more precisely
            warnings.append(
                {"model": model, "code": "at_bound", "parameter": name, "value": values[name]}
            )
    if isinstance(params, GammaGammaParams):
        for name in too_large:
            warnings.append(
                {
                    "model": model,
                    "code": "too_large",
                    "parameter": name,
                    "value": values[name],
                    "limit": GAMMA_GAMMA_SHAPE_LIMIT,
                }
            )
        if params.q <= 1:
            warnings.append(
                {"model": model, "code": "no_mean_spend", "parameter": "q", "value": params.q}
            )
    return warnings


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
    purchase_params: PurchaseParams,
    gamma_gamma: GammaGammaParams,
    summary: pd.DataFrame,
    *,
    months: int,
    monthly_discount_rate: float,
    margin: float,
    units_per_month: float,
    population_mean_spend: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Discounted margin over `months`: per month, the expected purchases in that month times
    the expected spend per purchase times the margin, divided by (1 + rate) ** month.

    Returns the value and the expected purchases over the whole horizon."""
    x, t_x, T = (
        summary[column].to_numpy(dtype="float64") for column in ("frequency", "recency", "T")
    )
    spend = expected_spend(
        gamma_gamma,
        x,
        summary["monetary_value"].to_numpy(dtype="float64"),
        population_mean=population_mean_spend,
    )
    # E[purchases up to t] = numerator(x, T, t) / (1 + dropout odds(x, t_x, T)): the costly
    # hypergeometric part is computed once per distinct (x, T) and month, not per customer.
    # With whole days (customer_summary) a million customers have a few ten thousand pairs.
    # (x, T) as one complex number: pandas factorizes that by hashing, in one pass.
    customer_pair, pairs = pd.factorize(x + 1j * T)
    discounted = np.zeros(len(pairs))
    previous = np.zeros(len(pairs))
    for month in range(1, months + 1):
        cumulative = _clip(
            _purchases_numerator(purchase_params, month * units_per_month, pairs.real, pairs.imag)
        )
        discounted += (cumulative - previous) / (1 + monthly_discount_rate) ** month
        previous = cumulative
    bracket = 1 + _dropout_odds(purchase_params, x, t_x, T)
    value = _clip(discounted[customer_pair] / bracket) * spend * margin
    return value, _clip(previous[customer_pair] / bracket)


@dataclass(frozen=True)
class CustomerValueModel:
    """Both fitted models, and the mean spend per purchase of customers without repeats when
    Gamma-Gamma's own is infinite (q <= 1): what predict_fitted needs besides the customers."""

    purchases: PurchaseParams
    gamma_gamma: GammaGammaParams
    mean_spend: float | None
    fitted: dict  # what a run records: the model's name, the parameters, the warnings

    def as_json(self) -> dict:
        """What a chunked run stores for its range tasks (from_json reads it back)."""
        return {"fitted": self.fitted, "mean_spend": self.mean_spend}

    @classmethod
    def from_json(cls, data: dict) -> CustomerValueModel:
        fitted = data["fitted"]
        name = fitted["purchase_model"]
        return cls(
            purchases=PURCHASE_MODELS[name](**fitted[name]),
            gamma_gamma=GammaGammaParams(**fitted["gamma_gamma"]),
            mean_spend=data["mean_spend"],
            fitted=fitted,
        )


def fit_customer_value(
    summary: pd.DataFrame, *, purchase_model: str = "mbgnbd", max_rows: int | None = MAX_FIT_ROWS
) -> CustomerValueModel:
    """Fit the purchase model (a PURCHASE_MODELS name) and Gamma-Gamma on `summary` (days; on
    a seeded sample of `max_rows` customers if there are more, None: all of them)."""
    purchase_params, purchase_outcome = fit_purchases(
        PURCHASE_MODELS[purchase_model],
        summary["frequency"],
        summary["recency"],
        summary["T"],
        max_rows=max_rows,
    )
    gamma_gamma, gamma_gamma_outcome = fit_gamma_gamma_outcome(
        summary["frequency"], summary["monetary_value"], max_rows=max_rows
    )
    x = summary["frequency"].to_numpy(dtype="float64")
    monetary = summary["monetary_value"].to_numpy(dtype="float64")
    # With q <= 1 the model's mean spend p v / (q - 1) is infinite (a warning says so): members
    # without repeats get the observed mean repeat spend instead of a negative one.
    mean_spend = None if gamma_gamma.q > 1 else float(monetary[(x > 0) & (monetary > 0)].mean())
    return CustomerValueModel(
        purchases=purchase_params,
        gamma_gamma=gamma_gamma,
        mean_spend=mean_spend,
        fitted={
            "purchase_model": purchase_model,
            purchase_model: asdict(purchase_params),
            "gamma_gamma": asdict(gamma_gamma),
            "warnings": fit_warnings(purchase_model, purchase_params, purchase_outcome)
            + fit_warnings("gamma_gamma", gamma_gamma, gamma_gamma_outcome),
        },
    )


def predict_fitted(
    model: CustomerValueModel,
    summary: pd.DataFrame,
    *,
    months: int,
    monthly_discount_rate: float,
    margin: float,
    units_per_month: float = 30.4375,
) -> pd.DataFrame:
    """Per customer of `summary` (days) over `months`: expected purchases, P(alive), expected
    spend per purchase and CLV, by the fitted `model`. Each customer's figures depend on their
    own row only, so a chunked run predicts range by range."""
    x, t_x, T = (
        summary[column].to_numpy(dtype="float64") for column in ("frequency", "recency", "T")
    )
    monetary = summary["monetary_value"].to_numpy(dtype="float64")
    value, purchases = customer_lifetime_value(
        model.purchases,
        model.gamma_gamma,
        summary,
        months=months,
        monthly_discount_rate=monthly_discount_rate,
        margin=margin,
        units_per_month=units_per_month,
        population_mean_spend=model.mean_spend,
    )
    return pd.DataFrame(
        {
            "expected_purchases": purchases,
            "p_alive": probability_alive(model.purchases, x, t_x, T),
            "expected_spend": expected_spend(
                model.gamma_gamma, x, monetary, population_mean=model.mean_spend
            ),
            "clv": value,
        },
        index=summary.index,
    )


def predict_customer_value(
    summary: pd.DataFrame,
    *,
    months: int,
    monthly_discount_rate: float,
    margin: float,
    units_per_month: float = 30.4375,
    purchase_model: str = "mbgnbd",
) -> tuple[pd.DataFrame, dict]:
    """Fit the purchase model (a PURCHASE_MODELS name) and Gamma-Gamma on `summary` (days) and
    predict per customer over `months`; returns the predictions and what was fitted: the model's
    name, both models' parameters and the warnings of fits that are not to be trusted."""
    model = fit_customer_value(summary, purchase_model=purchase_model)
    predictions = predict_fitted(
        model,
        summary,
        months=months,
        monthly_discount_rate=monthly_discount_rate,
        margin=margin,
        units_per_month=units_per_month,
    )
    return predictions, model.fitted
