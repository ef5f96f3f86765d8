"""The loyalty x profitability matrix (Reinartz & Kumar, HBR 2002). Pure pandas, no Django.

loyalty       = expected purchases in the CLV horizon (BG/NBD: how long and how often the
                relationship is expected to continue)
profitability = customer lifetime value in EUR (expected spend x margin, discounted)

A member is loyal when loyalty >= the loyalty threshold and profitable when profitability >=
the profitability threshold; both thresholds default to the median over the members scored.
Members with no value (no purchases ever) are neither.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .sorted_runs import SortedRuns

TRUE_FRIENDS = "true_friends"
BUTTERFLIES = "butterflies"
BARNACLES = "barnacles"
STRANGERS = "strangers"


@dataclass(frozen=True)
class Thresholds:
    loyalty: float
    profitability: float


def thresholds_for(
    frame: pd.DataFrame, loyalty: float | None = None, profitability: float | None = None
) -> Thresholds:
    """The given thresholds, or the medians of the members that have a value."""

    def median(column: str) -> float:
        values = frame[column].dropna()
        return float(values.median()) if len(values) else 0.0

    return Thresholds(
        loyalty=float(loyalty) if loyalty is not None else median("loyalty"),
        profitability=float(profitability)
        if profitability is not None
        else median("profitability"),
    )


def median_of_runs(runs: SortedRuns) -> float:
    """thresholds_for's median of a population held as sorted runs on disk (no NaN): the
    middle value, or the mean of the two middle values of an even count (as pandas); 0.0 for
    none."""
    if runs.count == 0:
        return 0.0
    upper = runs.rank_value(runs.count // 2)
    if runs.count % 2:
        return upper
    # As numpy's mean of the two: their sum, then halved.
    return float((np.float64(runs.rank_value(runs.count // 2 - 1)) + upper) / 2)


def assign_quadrants(frame: pd.DataFrame, thresholds: Thresholds) -> pd.Series:
    """The quadrant of every row of `frame` (columns `loyalty`, `profitability`)."""
    loyal = (frame["loyalty"] >= thresholds.loyalty).to_numpy() & frame[
        "loyalty"
    ].notna().to_numpy()
    profitable = (frame["profitability"] >= thresholds.profitability).to_numpy() & frame[
        "profitability"
    ].notna().to_numpy()
    # One small integer per row picks the name: no per-row string handling.
    names = np.array([STRANGERS, BARNACLES, BUTTERFLIES, TRUE_FRIENDS], dtype=object)
    quadrant = names[loyal.astype("int8") + 2 * profitable.astype("int8")]
    return pd.Series(quadrant, index=frame.index, name="quadrant", dtype=object)
