"""RFM scoring: hand-computed cases, determinism, degenerate inputs, all 125 cells named."""

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentation import rfm
from segmentation.models import Segment

ROOT = Path(__file__).resolve().parents[2]


def frame(recency, frequency, monetary):
    return pd.DataFrame(
        {
            "member_id": range(1, len(recency) + 1),
            "recency_days": recency,
            "frequency": frequency,
            "monetary": monetary,
        }
    )


def test_ten_distinct_values_fall_into_five_equal_quintiles():
    scores = rfm.quantile_scores(pd.Series(range(10)), 5)

    assert list(scores) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_recency_is_inverted_the_most_recent_scores_highest():
    scores = rfm.quantile_scores(pd.Series([1, 400, 30, 90, 7]), 5, higher_is_better=False)

    assert list(scores) == [5, 1, 3, 2, 4]


def test_equal_values_share_a_score_and_everybody_equal_is_the_middle():
    assert list(rfm.quantile_scores(pd.Series([10, 10, 10, 10]), 5)) == [3, 3, 3, 3]
    tied = rfm.quantile_scores(pd.Series([1, 2, 2, 2, 9]), 5)
    assert tied[1] == tied[2] == tied[3]


def test_fewer_members_than_score_levels_still_spread():
    assert list(rfm.quantile_scores(pd.Series([5, 1, 3]), 5)) == [5, 1, 3]
    assert list(rfm.quantile_scores(pd.Series([42]), 5)) == [3]
    assert list(rfm.quantile_scores(pd.Series([], dtype=float), 5)) == []


def test_missing_values_count_as_the_worst():
    scores = rfm.quantile_scores(pd.Series([np.nan, 5.0, 9.0]), 3)

    assert scores[0] == 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 700), st.integers(1, 40), st.integers(1, 5000)),
        min_size=1,
        max_size=60,
    ),
    st.randoms(use_true_random=False),
    st.sampled_from([3, 5, 10]),
)
def test_scores_do_not_depend_on_row_order_and_stay_in_range(rows, random, scale):
    data = frame(*zip(*rows, strict=True))
    shuffled = data.sample(frac=1, random_state=random.randint(0, 10**6))

    first = rfm.score(data, scale=scale).set_index("member_id").sort_index()
    second = rfm.score(shuffled, scale=scale).set_index("member_id").sort_index()

    pd.testing.assert_frame_equal(first, second)
    for column in ("r_score", "f_score", "m_score"):
        assert first[column].between(1, scale).all()
    assert first["segment"].isin(Segment.values).all()


def test_every_one_of_the_125_cells_has_exactly_one_name():
    cells = list(itertools.product(range(1, 6), repeat=3))
    r, f, m = (np.array(column) for column in zip(*cells, strict=True))

    names = rfm.segment_for(r, f, m)

    assert "" not in set(names)
    for (r_score, f_score, m_score), name in zip(cells, names, strict=True):
        fm = (f_score + m_score + 1) // 2
        matching = [
            rule
            for rule, (r_lo, r_hi), (fm_lo, fm_hi) in rfm.SEGMENT_RULES
            if r_lo <= r_score <= r_hi and fm_lo <= fm <= fm_hi
        ]
        assert matching[0] == name
    named = set(names)
    assert named == {value for value in Segment.values if value != rfm.NO_PURCHASES}


def test_hand_computed_members_land_in_their_segments():
    data = frame(
        recency=[2, 3, 300, 350, 5, 200, 60, 400, 9, 100],
        frequency=[30, 25, 28, 1, 1, 2, 6, 1, 12, 3],
        monetary=[3000, 2500, 2800, 20, 30, 60, 400, 15, 900, 150],
    )

    result = rfm.score(data).set_index("member_id")

    assert result.loc[1, "segment"] == "champions"
    assert result.loc[3, "segment"] in {"cant_lose", "at_risk"}
    assert result.loc[8, "segment"] == "lost"
    assert result.loc[5, "segment"] in {"new", "promising", "potential_loyalist"}
    assert rfm.rfm_cell(*result.loc[1, ["r_score", "f_score", "m_score"]]) == "555"


def test_other_scales_map_onto_the_five_point_rules():
    assert list(rfm.to_five(np.array([1, 2, 3]), 3)) == [1, 3, 5]
    assert list(rfm.to_five(np.array([1, 10]), 10)) == [1, 5]
    with pytest.raises(ValueError):
        rfm.quantile_scores(pd.Series([1, 2]), 1)


def test_the_analytics_modules_import_nothing_from_django():
    code = (
        "import sys; import segmentation.rfm, segmentation.matrix, segmentation.clv, "
        "segmentation.pipeline; "
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules)"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
