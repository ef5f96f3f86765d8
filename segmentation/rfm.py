"""RFM scoring and named segments. Pure pandas/numpy: no Django (a test checks it).

Input: one row per member with purchases in the window: member_id, recency_days, frequency,
monetary. Output: R, F and M scores from 1 to `scale` by quantiles, the RFM cell and the named
segment (docs/rfm-segments.md).

Scoring: a value's score is 1 + floor(scale x (values below it + values equal to it / 2) / n),
i.e. by the middle of the share of members it stands for. Equal values get equal scores, the result does not depend on row
order, and degenerate inputs stay sensible (everybody equal: the middle score). Recency is
inverted: the most recent purchase scores highest.

Frequency can instead be scored by fixed purchase-count bands (`band_scores`, e.g. 1 / 2 / 3-4 /
5-9 / 10+): with many one-time buyers the ties put them all on one quantile score and leave the
next one empty, while bands give every count the same score in every run.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from .sorted_runs import SortedRuns

NO_PURCHASES = "no_purchases"

# (segment, R range, FM range) on the 1-5 scale, FM = ceil((F + M) / 2); first match wins.
SEGMENT_RULES: list[tuple[str, tuple[int, int], tuple[int, int]]] = [
    ("champions", (4, 5), (4, 5)),
    ("cant_lose", (1, 1), (4, 5)),
    ("at_risk", (1, 2), (3, 5)),
    ("loyal", (3, 5), (3, 5)),
    ("new", (5, 5), (1, 1)),
    ("promising", (4, 4), (1, 1)),
    ("potential_loyalist", (4, 5), (2, 2)),
    ("need_attention", (3, 3), (2, 2)),
    ("about_to_sleep", (3, 3), (1, 1)),
    ("lost", (1, 1), (1, 1)),
    ("hibernating", (1, 2), (1, 2)),
]


def quantile_scores(
    values: pd.Series, scale: int = 5, *, higher_is_better: bool = True
) -> pd.Series:
    """Scores 1..scale by mid-rank; ties share a score; NaN counts as the worst value."""
    if scale < 2:
        raise ValueError("scale must be at least 2")
    numbers = values.astype("float64").to_numpy()
    if not higher_is_better:
        numbers = -numbers
    numbers = np.where(np.isnan(numbers), -np.inf, numbers)
    count = len(numbers)
    if count == 0:
        return pd.Series([], index=values.index, dtype="int64")
    # One sort: the distinct values with how often each occurs and which one every row has.
    _distinct, which, equal = np.unique(numbers, return_inverse=True, return_counts=True)
    below = np.cumsum(equal) - equal
    position = (below[which] + equal[which] / 2) / count
    scores = 1 + np.floor(position * scale).astype("int64")
    return pd.Series(np.clip(scores, 1, scale), index=values.index, dtype="int64")


def ranked_numbers(values, higher_is_better: bool) -> np.ndarray:
    """The values as quantile_scores ranks them: higher is better, NaN the worst."""
    numbers = np.asarray(values, dtype="float64")
    if not higher_is_better:
        numbers = -numbers
    return np.where(np.isnan(numbers), -np.inf, numbers)


def quantile_cuts(values, scale: int = 5, *, higher_is_better: bool = True) -> list[float | None]:
    """The thresholds of quantile_scores over the whole population `values`: for each score
    2..scale the lowest (ranked) value that reaches it, None if no value does. Scores rise with
    the value, so scores_from_cuts gives every value of the population exactly the score
    quantile_scores gives it (a chunked run scores a range of members with them)."""
    if scale < 2:
        raise ValueError("scale must be at least 2")
    numbers = ranked_numbers(values, higher_is_better)
    if len(numbers) == 0:
        return [None] * (scale - 1)
    distinct, equal = np.unique(numbers, return_counts=True)
    below = np.cumsum(equal) - equal
    scores = np.clip(1 + np.floor((below + equal / 2) / len(numbers) * scale), 1, scale)
    cuts: list[float | None] = []
    for score in range(2, scale + 1):
        reached = np.flatnonzero(scores >= score)
        cuts.append(float(distinct[reached[0]]) if len(reached) else None)
    return cuts


def quantile_cuts_of_runs(runs: SortedRuns, scale: int = 5) -> list[float | None]:
    """quantile_cuts of a population held as sorted runs on disk (sorted_runs.SortedRuns of
    ranked_numbers), with the memory of a run: the same thresholds, found from a few ranks.

    Score s is first reached by the lowest value whose mid-rank (values below it + values
    equal to it / 2) reaches t = (s - 1) x n / scale: the value at rank floor(t) or the next
    one up (any lower value ends at or before floor(t), so its mid-rank is below t). Those
    candidates and the one below them, as a guard against rounding, are scored by exactly the
    arithmetic of quantile_cuts, and the first that reaches s is its cut."""
    if scale < 2:
        raise ValueError("scale must be at least 2")
    count = runs.count

    def score(value: float) -> int:
        below = runs.below(value)
        middle = (below + (runs.at_most(value) - below) / 2) / count * scale
        return int(min(max(1 + np.floor(middle), 1), scale))

    cuts: list[float | None] = []
    for target in range(2, scale + 1):
        if count == 0:
            cuts.append(None)
            continue
        value = runs.rank_value((target - 1) * count // scale)
        candidates = [runs.next_below(value), value, runs.next_above(value)]
        reached = [
            candidate
            for candidate in candidates
            if candidate is not None and score(candidate) >= target
        ]
        cuts.append(reached[0] if reached else None)
    return cuts


def scores_from_cuts(
    values: pd.Series, cuts: list[float | None], *, higher_is_better: bool = True
) -> pd.Series:
    """Scores 1..len(cuts)+1 of `values` by the thresholds quantile_cuts found."""
    numbers = ranked_numbers(values.to_numpy(), higher_is_better)
    thresholds = np.array([np.inf if cut is None else cut for cut in cuts], dtype="float64")
    scores = 1 + np.searchsorted(thresholds, numbers, side="right")
    return pd.Series(scores, index=values.index, dtype="int64")


# Lowest purchase count of scores 1..5 by default: 1 / 2 / 3-4 / 5-9 / 10+.
DEFAULT_FREQUENCY_BANDS: tuple[int, ...] = (1, 2, 3, 5, 10)


def bands_problem(bands: list[int] | tuple[int, ...], scale: int) -> str | None:
    """Why `bands` cannot score 1..scale, or None: "count", "start" or "order"."""
    if len(bands) != scale:
        return "count"
    if bands[0] != 1:
        return "start"
    if any(later <= earlier for earlier, later in itertools.pairwise(bands)):
        return "order"
    return None


def band_scores(values: pd.Series, bands: list[int] | tuple[int, ...]) -> pd.Series:
    """Scores 1..len(bands): a value's score is the number of bands whose lowest count it
    reaches (`bands` holds each score's lowest count, increasing, from 1)."""
    problem = bands_problem(bands, len(bands))
    if problem is not None or len(bands) < 2:
        raise ValueError(f"frequency bands {list(bands)} are not valid ({problem or 'count'})")
    numbers = np.nan_to_num(values.astype("float64").to_numpy(), nan=0.0)
    scores = np.searchsorted(np.asarray(bands, dtype="float64"), numbers, side="right")
    return pd.Series(np.clip(scores, 1, len(bands)), index=values.index, dtype="int64")


def to_five(scores: np.ndarray | pd.Series, scale: int) -> np.ndarray:
    """Scores on another scale mapped onto 1-5, where the segment rules are defined."""
    values = np.asarray(scores, dtype="float64")
    if scale == 5:
        return values.astype("int64")
    return (1 + np.floor((values - 1) * 4 / (scale - 1) + 0.5)).astype("int64")


def segment_for(r_five: np.ndarray, f_five: np.ndarray, m_five: np.ndarray) -> np.ndarray:
    """The named segment of every (R, F, M) on the 1-5 scale."""
    fm = (np.asarray(f_five) + np.asarray(m_five) + 1) // 2
    r = np.asarray(r_five)
    conditions = [
        (r >= r_low) & (r <= r_high) & (fm >= fm_low) & (fm <= fm_high)
        for _name, (r_low, r_high), (fm_low, fm_high) in SEGMENT_RULES
    ]
    return np.select(conditions, [name for name, _r, _fm in SEGMENT_RULES], default="")


def rfm_cell(r_score: int, f_score: int, m_score: int) -> str:
    """The combined cell, e.g. "545" (scores above 9 are written with two digits)."""
    return f"{r_score}{f_score}{m_score}"


def score(
    frame: pd.DataFrame,
    *,
    scale: int = 5,
    frequency_bands: list[int] | tuple[int, ...] | None = None,
    cuts: dict[str, list[float | None]] | None = None,
) -> pd.DataFrame:
    """R, F and M scores and the named segment for every member in `frame`; F by quantiles,
    or by `frequency_bands` (one lowest purchase count per score, see band_scores) if given.
    With `cuts` (quantile_cuts of the whole population per column: recency_days, frequency,
    monetary) `frame` may be part of the population: the quantiles are those of the whole."""
    if frequency_bands is not None and len(frequency_bands) != scale:
        raise ValueError(f"{len(frequency_bands)} frequency bands for a 1-{scale} scale")

    def quantiles(column: str, higher_is_better: bool = True) -> np.ndarray:
        if cuts is None:
            return quantile_scores(
                frame[column], scale, higher_is_better=higher_is_better
            ).to_numpy()
        return scores_from_cuts(
            frame[column], cuts[column], higher_is_better=higher_is_better
        ).to_numpy()

    result = pd.DataFrame({"member_id": frame["member_id"].to_numpy()})
    result["r_score"] = quantiles("recency_days", higher_is_better=False)
    if frequency_bands is None:
        result["f_score"] = quantiles("frequency")
    else:
        result["f_score"] = band_scores(frame["frequency"], frequency_bands).to_numpy()
    result["m_score"] = quantiles("monetary")
    result["segment"] = segment_for(
        to_five(result["r_score"], scale),
        to_five(result["f_score"], scale),
        to_five(result["m_score"], scale),
    )
    return result
