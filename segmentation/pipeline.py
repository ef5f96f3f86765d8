"""From the per-member purchase aggregate to every member's scores. Pure pandas, no Django.

The recalculation service reads the aggregate (run_inputs.purchase_aggregates) and the ids of
the members to score, calls `compute_scores`, and writes the frame it returns in bulk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import clv, matrix, rfm

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


def compute_scores(
    aggregates: pd.DataFrame, member_ids: pd.Series, parameters: Parameters
) -> tuple[pd.DataFrame, dict]:
    """One row per member in `member_ids` (SCORE_COLUMNS) and what the run should record."""
    members = pd.DataFrame({"member_id": np.sort(member_ids.to_numpy(dtype="int64"))})
    data = members.merge(aggregates, on="member_id", how="left")
    for column in aggregates.columns.drop("member_id"):  # empty input merges as object
        data[column] = data[column].astype("float64")
    has_history = data["purchases_total"].notna().to_numpy() & (
        data["purchases_total"].fillna(0).to_numpy() > 0
    )
    in_window = has_history & (data["frequency"].fillna(0).to_numpy() > 0)

    scores = pd.DataFrame({"member_id": data["member_id"].to_numpy()})
    scores["recency_days"] = np.where(
        has_history, np.floor(data["days_since_last"].fillna(0).to_numpy()), np.nan
    )
    scores["frequency"] = data["frequency"].fillna(0).to_numpy(dtype="int64")
    scores["monetary"] = np.round(data["monetary"].fillna(0).to_numpy(dtype="float64"), 2)

    window = data.loc[in_window, ["member_id", "days_since_last", "frequency", "monetary"]]
    rated = rfm.score(
        window.rename(columns={"days_since_last": "recency_days"}),
        scale=parameters.scale,
        frequency_bands=parameters.frequency_bands,
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
    if len(history) >= MIN_CLV_CUSTOMERS and (history["purchases_total"] > 1).any():
        predictions, fitted = clv.predict_customer_value(
            customer_summary(history),
            months=parameters.horizon_months,
            monthly_discount_rate=parameters.monthly_discount_rate,
            margin=parameters.margin,
            purchase_model=parameters.purchase_model,
        )
        for column in ("expected_purchases", "p_alive", "clv"):
            values = scores[column].to_numpy(copy=True)
            values[has_history] = predictions[column].to_numpy(dtype="float64")
            scores[column] = values
        scores["clv"] = scores["clv"].round(2)
        info["clv_parameters"] = fitted
    else:
        info["clv_skipped"] = "too few customers with repeat purchases"

    value = pd.DataFrame({"loyalty": scores["expected_purchases"], "profitability": scores["clv"]})
    thresholds = matrix.thresholds_for(
        value, parameters.loyalty_threshold, parameters.profitability_threshold
    )
    scores["quadrant"] = matrix.assign_quadrants(value, thresholds)
    info["thresholds"] = {
        "loyalty": thresholds.loyalty,
        "profitability": thresholds.profitability,
    }
    return scores[SCORE_COLUMNS], info
