"""From the per-member purchase aggregate to every member's scores. Pure pandas, no Django.

The recalculation service reads the aggregate (run_inputs.purchase_aggregates) and the ids of
the members to score, calls `compute_scores`, and writes the frame it returns in bulk.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import clv, matrix, rfm
from .sorted_runs import SortedRuns

SCORE_COLUMNS = [
    "member_id",
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "segment",
    "quadrant",
    "expected_purchases",
    "p_alive",
    "clv",
]

# Fewer customers with purchases than this and the CLV models are not fitted (the run still
# scores RFM; CLV and P(alive) stay empty and the matrix puts everybody among the strangers).
MIN_CLV_CUSTOMERS = 20


@dataclass(frozen=True)
class Parameters:
    scale: int = 5
    horizon_months: int = 12
    monthly_discount_rate: float = 0.01
    margin: float = 0.3
    purchase_model: str = "mbgnbd"  # clv.PURCHASE_MODELS
    loyalty_threshold: float | None = None
    profitability_threshold: float | None = None
    # F by these purchase-count bands (lowest count per score) instead of quantiles if set.
    frequency_bands: tuple[int, ...] | None = None


# The columns of customer_summary: the CLV input of a customer.
SUMMARY_COLUMNS = ["frequency", "recency", "T", "monetary_value"]


def customer_summary(aggregates: pd.DataFrame) -> pd.DataFrame:
    """The BG/NBD / Gamma-Gamma input in whole days: repeat purchases, recency, age, mean
    repeat spend."""
    repeats = aggregates["purchases_total"].to_numpy(dtype="float64") - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        repeat_spend = np.where(
            repeats > 0,
            (aggregates["spend_total"].to_numpy() - aggregates["first_spend"].to_numpy()) / repeats,
            0.0,
        )
    # Whole days counted back from now, as lifetimes' summary_data_from_transaction_data does
    # with freq="D": the models barely notice, and a million customers share a few ten
    # thousand (frequency, T) pairs, on which clv computes the costly part of its predictions.
    first = np.floor(np.maximum(aggregates["days_since_first"].to_numpy(dtype="float64"), 0.0))
    last = np.floor(np.maximum(aggregates["days_since_last"].to_numpy(dtype="float64"), 0.0))
    return pd.DataFrame(
        {
            "frequency": repeats,
            "recency": np.maximum(first - last, 0.0),
            "T": first,
            # Refunds can make a mean negative; such a customer is expected to spend nothing.
            "monetary_value": np.maximum(repeat_spend, 0.0),
        },
        index=aggregates.index,
    )


@dataclass(frozen=True)
class GlobalFacts:
    """What scoring a part of the members needs to know about all of them (global_facts): the
    quantile thresholds of R, F and M (rfm.quantile_cuts, None for F by bands), the fitted CLV
    models (None: not fitted) and the matrix thresholds."""

    cuts: dict[str, list[float | None]]
    clv: clv.CustomerValueModel | None
    thresholds: matrix.Thresholds

    def as_json(self) -> dict:
        return {
            "cuts": self.cuts,
            "clv": None if self.clv is None else self.clv.as_json(),
            "thresholds": {
                "loyalty": self.thresholds.loyalty,
                "profitability": self.thresholds.profitability,
            },
        }

    @classmethod
    def from_json(cls, data: dict) -> GlobalFacts:
        return cls(
            cuts=data["cuts"],
            clv=None if data["clv"] is None else clv.CustomerValueModel.from_json(data["clv"]),
            thresholds=matrix.Thresholds(**data["thresholds"]),
        )


def _member_table(aggregates: pd.DataFrame, member_ids: pd.Series):
    """The members' aggregates in member order, and which have purchases / some in the window."""
    members = pd.DataFrame({"member_id": np.sort(member_ids.to_numpy(dtype="int64"))})
    data = members.merge(aggregates, on="member_id", how="left")
    for column in aggregates.columns.drop("member_id"):  # empty input merges as object
        data[column] = data[column].astype("float64")
    has_history = data["purchases_total"].notna().to_numpy() & (
        data["purchases_total"].fillna(0).to_numpy() > 0
    )
    in_window = has_history & (data["frequency"].fillna(0).to_numpy() > 0)
    return data, has_history, in_window


def _rated_columns(data: pd.DataFrame, in_window: np.ndarray) -> pd.DataFrame:
    window = data.loc[in_window, ["member_id", "days_since_last", "frequency", "monetary"]]
    return window.rename(columns={"days_since_last": "recency_days"})


def _predict(model: clv.CustomerValueModel, summary: pd.DataFrame, parameters: Parameters):
    return clv.predict_fitted(
        model,
        summary,
        months=parameters.horizon_months,
        monthly_discount_rate=parameters.monthly_discount_rate,
        margin=parameters.margin,
    )


def sample_keys(member_ids, seed: int) -> np.ndarray:
    """A pseudo-random number per member id, the same for the same id and seed (splitmix64 of
    the id offset by the seed): distinct ids get distinct keys."""
    offset = np.uint64(seed * 0x9E3779B97F4A7C15 % 2**64)
    keys = np.asarray(member_ids, dtype="int64").astype("uint64") + offset
    keys = (keys ^ (keys >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    keys = (keys ^ (keys >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return keys ^ (keys >> np.uint64(31))


# How the CLV sample is drawn, as the run records it.
SAMPLE_METHOD = "lowest seeded hash of the member id"


class CustomerSample:
    """A seeded random sample of `size` customers (None: all), drawn part by part: the
    customers with the lowest sample_keys of their member id. It holds at most twice the
    sample and one part, whatever the member count; it is all customers when there are no
    more, and the same customers however the members are split into parts."""

    def __init__(self, size: int | None, seed: int) -> None:
        self.size, self.seed = size, seed
        self._keys: list[np.ndarray] = []
        self._ids: list[np.ndarray] = []
        self._rows: list[pd.DataFrame] = []
        self._held = 0

    def add(self, member_ids, summary: pd.DataFrame) -> None:
        """Offer the customers `member_ids` with their CLV input `summary` (same order)."""
        self._ids.append(np.asarray(member_ids, dtype="int64"))
        self._keys.append(sample_keys(self._ids[-1], self.seed))
        self._rows.append(summary.reset_index(drop=True))
        self._held += len(summary)
        if self.size is not None and self._held > 2 * self.size:
            self._keep_lowest()

    def _keep_lowest(self) -> None:
        keys, ids = np.concatenate(self._keys), np.concatenate(self._ids)
        rows = pd.concat(self._rows, ignore_index=True)
        if self.size is not None and len(keys) > self.size:
            kept = np.argpartition(keys, self.size - 1)[: self.size]
            keys, ids, rows = keys[kept], ids[kept], rows.iloc[kept].reset_index(drop=True)
        self._keys, self._ids, self._rows, self._held = [keys], [ids], [rows], len(keys)

    def summary(self) -> pd.DataFrame:
        """The sample's CLV input, in member order."""
        if not self._rows:
            return pd.DataFrame(columns=SUMMARY_COLUMNS, dtype="float64")
        self._keep_lowest()
        order = np.argsort(self._ids[0], kind="stable")
        return self._rows[0].iloc[order].reset_index(drop=True)


def clv_sample(summary: pd.DataFrame, member_ids, size: int | None, seed: int) -> pd.DataFrame:
    """The CustomerSample of the customers `member_ids` with their CLV input `summary`."""
    sample = CustomerSample(size, seed)
    sample.add(member_ids, summary)
    return sample.summary()


def global_facts(
    parts: Iterable[tuple[pd.DataFrame, pd.Series]],
    parameters: Parameters,
    *,
    sample_size: int | None,
    seed: int,
) -> tuple[GlobalFacts, dict]:
    """The facts of the whole population, read part by part (`parts`: the aggregates and
    member ids of one member-id range each, as compute_scores takes them): the exact quantile
    thresholds of every in-window member's values, the CLV models fitted once on a seeded
    random sample of `sample_size` customers (CustomerSample: all of them when there are no
    more; None: all), and the matrix medians over every customer's prediction.

    Its memory does not grow with the member count: what it needs of every member (the R, F
    and M values, the CLV input, then the two predictions) goes to sorted runs and files in a
    temporary directory, part by part, about 72 bytes a customer on disk; it holds one or two
    parts, the sample and a few pages of the runs. Returns the facts and what the run records
    about them."""
    with tempfile.TemporaryDirectory(prefix="segmentation-facts-") as directory:
        return _global_facts(parts, parameters, sample_size, seed, Path(directory))


def _global_facts(
    parts: Iterable[tuple[pd.DataFrame, pd.Series]],
    parameters: Parameters,
    sample_size: int | None,
    seed: int,
    directory: Path,
) -> tuple[GlobalFacts, dict]:
    columns = ["recency_days", "frequency", "monetary"]
    if parameters.frequency_bands is not None:
        columns.remove("frequency")
    values = {column: SortedRuns(directory, column) for column in columns}
    sample = CustomerSample(sample_size, seed)
    summaries: list[Path] = []  # one file of CLV input per part, read back to predict
    members = customers = repeaters = 0
    for aggregates, member_ids in parts:
        data, has_history, in_window = _member_table(aggregates, member_ids)
        members += len(data)
        rated = _rated_columns(data, in_window)
        for column, runs in values.items():
            runs.add(rfm.ranked_numbers(rated[column], column != "recency_days"))
        history = data.loc[has_history]
        repeaters += int((history["purchases_total"] > 1).sum())
        summary = customer_summary(history)
        customers += len(summary)
        sample.add(history["member_id"].to_numpy(), summary)
        summaries.append(directory / f"summary-{len(summaries)}.npy")
        np.save(summaries[-1], summary[SUMMARY_COLUMNS].to_numpy(dtype="float64"))
        del data, history, rated, summary
    cuts = {
        column: rfm.quantile_cuts_of_runs(runs, parameters.scale) for column, runs in values.items()
    }
    info: dict = {"members": members, "with_purchases": customers}
    model = None
    loyalty = SortedRuns(directory, "loyalty")
    profitability = SortedRuns(directory, "profitability")
    if customers >= MIN_CLV_CUSTOMERS and repeaters > 0:
        fitted_on = sample.summary()
        del sample
        info["clv_sample"] = {
            "size": sample_size,
            "seed": seed,
            "customers": len(fitted_on),
            "method": SAMPLE_METHOD,
        }
        model = clv.fit_customer_value(
            fitted_on, purchase_model=parameters.purchase_model, max_rows=None
        )
        del fitted_on
        for path in summaries:  # part by part
            summary = pd.DataFrame(np.load(path), columns=SUMMARY_COLUMNS)
            predicted = _predict(model, summary, parameters)
            loyalty.add(predicted["expected_purchases"].dropna().to_numpy())
            profitability.add(predicted["clv"].round(2).dropna().to_numpy())
            del summary, predicted
        info["clv_parameters"] = model.fitted
    else:
        info["clv_skipped"] = "too few customers with repeat purchases"

    def threshold(given: float | None, runs: SortedRuns) -> float:
        return float(given) if given is not None else matrix.median_of_runs(runs)

    thresholds = matrix.Thresholds(
        loyalty=threshold(parameters.loyalty_threshold, loyalty),
        profitability=threshold(parameters.profitability_threshold, profitability),
    )
    info["thresholds"] = {"loyalty": thresholds.loyalty, "profitability": thresholds.profitability}
    return GlobalFacts(cuts=cuts, clv=model, thresholds=thresholds), info


def compute_scores(
    aggregates: pd.DataFrame,
    member_ids: pd.Series,
    parameters: Parameters,
    facts: GlobalFacts | None = None,
) -> tuple[pd.DataFrame, dict]:
    """One row per member in `member_ids` (SCORE_COLUMNS) and what the run should record.
    With `facts` (global_facts) the members may be a part of the population: quantiles, CLV
    models and matrix thresholds are those of the whole."""
    data, has_history, in_window = _member_table(aggregates, member_ids)

    scores = pd.DataFrame({"member_id": data["member_id"].to_numpy()})
    scores["recency_days"] = np.where(
        has_history, np.floor(data["days_since_last"].fillna(0).to_numpy()), np.nan
    )
    scores["frequency"] = data["frequency"].fillna(0).to_numpy(dtype="int64")
    scores["monetary"] = np.round(data["monetary"].fillna(0).to_numpy(dtype="float64"), 2)

    rated = rfm.score(
        _rated_columns(data, in_window),
        scale=parameters.scale,
        frequency_bands=parameters.frequency_bands,
        cuts=None if facts is None else facts.cuts,
    )
    for column in ("r_score", "f_score", "m_score"):
        values = np.full(len(scores), np.nan)
        values[in_window] = rated[column].to_numpy(dtype="float64")
        scores[column] = values
    segment = np.full(len(scores), rfm.NO_PURCHASES, dtype=object)
    segment[in_window] = rated["segment"].to_numpy()
    # Object columns stay object: pandas would otherwise convert a million names to its
    # string dtype, only for the COPY to turn them back into distinct values.
    scores["segment"] = pd.Series(segment, index=scores.index, dtype=object)

    info: dict = {"members": len(scores), "with_purchases": int(has_history.sum())}
    for column in ("expected_purchases", "p_alive", "clv"):
        scores[column] = np.nan
    history = data.loc[has_history]
    if facts is not None:
        model = facts.clv
    elif len(history) >= MIN_CLV_CUSTOMERS and (history["purchases_total"] > 1).any():
        model = clv.fit_customer_value(
            customer_summary(history), purchase_model=parameters.purchase_model
        )
    else:
        model = None
    if model is not None:
        # A range without customers predicts nothing.
        predictions = (
            _predict(model, customer_summary(history), parameters) if len(history) else None
        )
        for column in ("expected_purchases", "p_alive", "clv"):
            if predictions is None:
                break
            values = scores[column].to_numpy(copy=True)
            values[has_history] = predictions[column].to_numpy(dtype="float64")
            scores[column] = values
        scores["clv"] = scores["clv"].round(2)
        info["clv_parameters"] = model.fitted
    else:
        info["clv_skipped"] = "too few customers with repeat purchases"

    value = pd.DataFrame({"loyalty": scores["expected_purchases"], "profitability": scores["clv"]})
    if facts is not None:
        thresholds = facts.thresholds
    else:
        thresholds = matrix.thresholds_for(
            value, parameters.loyalty_threshold, parameters.profitability_threshold
        )
    scores["quadrant"] = matrix.assign_quadrants(value, thresholds)
    info["thresholds"] = {
        "loyalty": thresholds.loyalty,
        "profitability": thresholds.profitability,
    }
    return scores[SCORE_COLUMNS], info
