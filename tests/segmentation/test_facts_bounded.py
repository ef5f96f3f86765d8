"""The facts step of a chunked run with memory bounded by a part (pipeline.global_facts): order
statistics over sorted runs on disk equal the in-memory ones exactly, the CLV sample does not
depend on how the members are split, and the step's memory does not grow with the members."""

from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pandas as pd
import pytest

from segmentation import matrix, rfm, sorted_runs
from segmentation.pipeline import (
    SAMPLE_METHOD,
    CustomerSample,
    Parameters,
    _member_table,
    _predict,
    _rated_columns,
    clv_sample,
    customer_summary,
    global_facts,
)
from segmentation.sorted_runs import SortedRuns

AGGREGATE_COLUMNS = [
    "member_id",
    "days_since_last",
    "frequency",
    "monetary",
    "purchases_total",
    "spend_total",
    "days_since_first",
    "first_spend",
]


def _population(rng: np.random.Generator, kind: str, count: int) -> np.ndarray:
    """Values as the facts see them: continuous, integer counts with many ties, money in
    cents, few distinct values, with NaN, infinities and both zeros among them."""
    if kind == "continuous":
        values = rng.exponential(40.0, count)
    elif kind == "counts":
        values = rng.geometric(0.45, count).astype("float64")
    elif kind == "money":
        values = np.round(rng.lognormal(3.5, 1.0, count), 2)
    elif kind == "few":
        values = rng.integers(0, 3, count).astype("float64")
    else:  # odd: NaN, infinities, zeros of both signs, negatives
        values = rng.choice([np.nan, -np.inf, np.inf, 0.0, -0.0, -1.5, 2.0, 7.25], count)
    return values


@pytest.fixture(params=[2, 7, sorted_runs.BLOCK])
def block(request, monkeypatch):
    """Runs read in blocks of this many values: many blocks per run, or one."""
    monkeypatch.setattr(sorted_runs, "BLOCK", request.param)
    return request.param


def _split(values: np.ndarray, rng: np.random.Generator, parts: int) -> list[np.ndarray]:
    """`values` in `parts` consecutive pieces of random sizes, empty ones included."""
    bounds = np.sort(rng.integers(0, len(values) + 1, parts - 1))
    return np.split(values, bounds)


def _runs(tmp_path, pieces: list[np.ndarray], run_values: int | None = 1) -> SortedRuns:
    """The pieces as sorted runs: by default one run a piece (empty ones write none)."""
    runs = SortedRuns(tmp_path, "values", run_values)
    for piece in pieces:
        runs.add(piece)
    return runs


@pytest.mark.parametrize("kind", ["continuous", "counts", "money", "few", "odd"])
def test_quantile_cuts_of_runs_equal_quantile_cuts(tmp_path, kind, block):
    rng = np.random.default_rng(len(kind))
    for case in range(60):
        count = int(rng.choice([0, 1, 2, 3, 5, 10, 99, 100, 1000, 4001]))
        values = _population(rng, kind, count)
        scale = int(rng.integers(2, 9))
        higher_is_better = bool(case % 2)
        ranked = rfm.ranked_numbers(values, higher_is_better)
        parts = int(rng.choice([1, 2, 7]))
        directory = tmp_path / f"{case}"
        directory.mkdir()
        run_values = int(rng.choice([1, 37, 10**6]))  # a run a piece, a few, or one
        runs = _runs(directory, _split(ranked, rng, parts), run_values)
        expected = rfm.quantile_cuts(values, scale, higher_is_better=higher_is_better)
        assert rfm.quantile_cuts_of_runs(runs, scale) == expected, (kind, case, count, scale)


def test_the_cuts_score_every_value_as_quantile_scores_does(tmp_path):
    rng = np.random.default_rng(8)
    values = np.concatenate([rng.geometric(0.5, 3000), rng.integers(1, 40, 1000)]).astype(float)
    ranked = rfm.ranked_numbers(values, True)
    cuts = rfm.quantile_cuts_of_runs(_runs(tmp_path, _split(ranked, rng, 5)), 5)
    scored = rfm.scores_from_cuts(pd.Series(values), cuts)
    assert scored.tolist() == rfm.quantile_scores(pd.Series(values), 5).tolist()


@pytest.mark.parametrize("kind", ["continuous", "counts", "money", "few", "odd"])
def test_rank_value_is_the_value_at_that_rank(tmp_path, kind, block):
    rng = np.random.default_rng(3 + len(kind))
    values = _population(rng, kind, 777)
    values = values[~np.isnan(values)]
    runs = _runs(tmp_path, _split(values, rng, 6))
    ordered = np.sort(values)
    assert runs.count == len(values)
    for rank in [
        0,
        1,
        len(values) // 2,
        len(values) - 2,
        len(values) - 1,
        *rng.integers(0, 700, 20),
    ]:
        assert runs.rank_value(int(rank)) == ordered[rank]
    with pytest.raises(IndexError):
        runs.rank_value(len(values))


def test_a_run_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        SortedRuns(tmp_path, "values").add(np.array([1.0, np.nan]))


@pytest.mark.parametrize("count", [0, 1, 2, 3, 4, 10, 11, 1000, 1001])
def test_median_of_runs_equals_the_matrix_median(tmp_path, count, block):
    rng = np.random.default_rng(count)
    for case, kind in enumerate(["continuous", "money", "few", "odd"]):
        values = _population(rng, kind, count)
        values = np.where(np.isinf(values), 1e300, values) if kind == "odd" else values
        directory = tmp_path / f"{case}"
        directory.mkdir()
        present = values[~np.isnan(values)]
        runs = _runs(directory, _split(present, rng, 4))
        frame = pd.DataFrame({"loyalty": values, "profitability": values})
        expected = matrix.thresholds_for(frame).loyalty
        assert matrix.median_of_runs(runs) == expected, (kind, count)


def test_median_of_two_halves_is_their_mean(tmp_path):
    runs = _runs(tmp_path, [np.array([0.1, 5.0]), np.array([0.2, -3.0])])
    assert (
        matrix.median_of_runs(runs) == pd.Series([0.1, 5.0, 0.2, -3.0]).median() == (0.1 + 0.2) / 2
    )


def _summary(rng: np.random.Generator, count: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "frequency": rng.integers(0, 9, count).astype(float),
            "recency": rng.integers(0, 300, count).astype(float),
            "T": rng.integers(300, 600, count).astype(float),
            "monetary_value": rng.uniform(0, 80, count),
        }
    )


def test_the_clv_sample_does_not_depend_on_the_parts(tmp_path):
    rng = np.random.default_rng(5)
    ids = np.sort(rng.choice(10**7, 5000, replace=False))
    summary = _summary(rng, len(ids))
    whole = clv_sample(summary, ids, 700, seed=11)
    assert len(whole) == 700
    # Part by part, whatever the split: the same customers, in member order.
    for parts in (2, 9, 40):
        sample = CustomerSample(700, seed=11)
        bounds = [0, *np.sort(rng.integers(0, len(ids) + 1, parts - 1)), len(ids)]
        for start, end in itertools.pairwise(bounds):
            piece = summary.iloc[start:end]
            sample.add(ids[start:end], piece)
            assert sample._held <= 2 * 700 + len(piece)  # bounded by the sample and a part
        pd.testing.assert_frame_equal(sample.summary(), whole)
    # Another seed, other customers; as many as there are when there are no more.
    assert not clv_sample(summary, ids, 700, seed=12).equals(whole)
    pd.testing.assert_frame_equal(clv_sample(summary, ids, 5000, seed=11), summary)
    pd.testing.assert_frame_equal(clv_sample(summary, ids, None, seed=11), summary)


def test_the_clv_sample_is_uniform_over_the_member_ids():
    ids = np.arange(1, 200_001)
    summary = pd.DataFrame({"frequency": ids.astype(float)})
    taken = clv_sample(summary, ids, 20_000, seed=3)["frequency"].to_numpy()
    # Every tenth of the id range holds about a tenth of the sample (consecutive ids too).
    shares = np.histogram(taken, bins=10, range=(1, 200_001))[0] / 20_000
    assert np.all(np.abs(shares - 0.1) < 0.01)


def _aggregate(rng: np.random.Generator, first_id: int, members: int) -> tuple:
    """One part: `members` member ids, of whom most have purchases, with ties in R, F and M."""
    ids = np.arange(first_id, first_id + members)
    buyers = ids[rng.uniform(size=members) < 0.85]
    count = len(buyers)
    totals = rng.geometric(0.35, count)
    first = rng.uniform(5, 900, count).round(3)
    last = np.where(rng.uniform(size=count) < 0.2, 3.5, first * rng.uniform(0, 1, count))
    frequency = np.where(last < 365, np.minimum(totals, rng.integers(1, 6, count)), 0)
    spend = np.round(totals * rng.choice([9.99, 20.0, 35.5], count), 2)
    frame = pd.DataFrame(
        {
            "member_id": buyers,
            "days_since_last": last,
            "frequency": frequency,
            "monetary": np.where(frequency > 0, np.round(spend * 0.7, 2), 0.0),
            "purchases_total": totals,
            "spend_total": spend,
            "days_since_first": first,
            "first_spend": np.round(spend / totals, 2),
        },
        columns=AGGREGATE_COLUMNS,
    )
    return frame, pd.Series(ids)


def _parts(seed: int, parts: int, members: int) -> list[tuple]:
    rng = np.random.default_rng(seed)
    return [_aggregate(rng, 1 + number * members, members) for number in range(parts)]


def _reference(parts: list[tuple], parameters: Parameters, model) -> tuple[dict, dict]:
    """The cuts and matrix medians of the whole population, computed in memory."""
    aggregates = pd.concat([frame for frame, _ids in parts], ignore_index=True)
    ids = pd.concat([ids for _frame, ids in parts], ignore_index=True)
    data, has_history, in_window = _member_table(aggregates, ids)
    rated = _rated_columns(data, in_window)
    cuts = {
        column: rfm.quantile_cuts(
            rated[column], parameters.scale, higher_is_better=column != "recency_days"
        )
        for column in ("recency_days", "frequency", "monetary")
    }
    predicted = _predict(model, customer_summary(data.loc[has_history]), parameters)
    frame = pd.DataFrame(
        {"loyalty": predicted["expected_purchases"], "profitability": predicted["clv"].round(2)}
    )
    thresholds = matrix.thresholds_for(frame)
    return cuts, {"loyalty": thresholds.loyalty, "profitability": thresholds.profitability}


@pytest.mark.parametrize("parts", [1, 3, 8])
@pytest.mark.parametrize("run_values", [100, sorted_runs.RUN_VALUES])
def test_global_facts_equal_the_in_memory_facts(parts, run_values, block, monkeypatch):
    monkeypatch.setattr(sorted_runs, "RUN_VALUES", run_values)  # many runs, or one
    data = _parts(seed=parts, parts=parts, members=1500)
    # An empty part between the others changes nothing.
    data.insert(1, (data[0][0].iloc[:0], pd.Series([], dtype="int64")))
    parameters = Parameters()
    facts, info = global_facts(iter(data), parameters, sample_size=800, seed=7)
    cuts, thresholds = _reference(data, parameters, facts.clv)
    assert facts.cuts == cuts
    assert info["thresholds"] == thresholds
    assert info["clv_sample"] == {
        "size": 800,
        "seed": 7,
        "customers": 800,
        "method": SAMPLE_METHOD,
    }
    assert info["members"] == parts * 1500


def test_global_facts_with_the_whole_population_as_sample_fit_it_all():
    data = _parts(seed=4, parts=3, members=400)
    everyone, _info = global_facts(iter(data), Parameters(), sample_size=None, seed=7)
    one_part = [
        (
            pd.concat([frame for frame, _ids in data], ignore_index=True),
            pd.concat([ids for _frame, ids in data], ignore_index=True),
        )
    ]
    whole, info = global_facts(iter(one_part), Parameters(), sample_size=10**6, seed=7)
    assert info["clv_sample"]["customers"] == info["with_purchases"]
    assert everyone.as_json() == whole.as_json()


def _peak_bytes(parts: int, members: int) -> int:
    """The facts step's peak of traced memory (numpy and pandas report to tracemalloc) over
    `parts` parts generated one at a time."""

    def generated():
        rng = np.random.default_rng(1)
        for number in range(parts):
            yield _aggregate(rng, 1 + number * members, members)

    tracemalloc.start()
    try:
        global_facts(generated(), Parameters(), sample_size=2000, seed=7)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_memory_of_global_facts_does_not_grow_with_the_members(monkeypatch):
    # A run's buffer (a fixed 8 MB of values) at the scale of these parts: beyond it nothing
    # grows. Held in memory, the values and predictions of 12 parts would be several times
    # those of 2 (4x before the facts went to disk).
    monkeypatch.setattr(sorted_runs, "RUN_VALUES", 20_000)
    small, large = _peak_bytes(2, 20_000), _peak_bytes(12, 20_000)
    assert large < 1.25 * small, (small, large)
