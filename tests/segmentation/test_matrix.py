"""The loyalty x profitability matrix: quadrants, thresholds and their edges."""

import numpy as np
import pandas as pd

from segmentation import matrix


def frame(loyalty, profitability):
    return pd.DataFrame({"loyalty": loyalty, "profitability": profitability})


def test_each_quadrant_from_its_side_of_both_thresholds():
    data = frame([5.0, 0.5, 5.0, 0.5], [900.0, 900.0, 10.0, 10.0])
    thresholds = matrix.Thresholds(loyalty=2.0, profitability=100.0)

    quadrants = matrix.assign_quadrants(data, thresholds)

    assert list(quadrants) == [
        matrix.TRUE_FRIENDS,
        matrix.BUTTERFLIES,
        matrix.BARNACLES,
        matrix.STRANGERS,
    ]


def test_a_value_on_the_threshold_counts_as_loyal_and_profitable():
    data = frame([2.0], [100.0])

    quadrants = matrix.assign_quadrants(data, matrix.Thresholds(2.0, 100.0))

    assert list(quadrants) == [matrix.TRUE_FRIENDS]


def test_members_without_a_value_are_strangers():
    data = frame([np.nan, 3.0], [np.nan, np.nan])

    quadrants = matrix.assign_quadrants(data, matrix.Thresholds(1.0, 1.0))

    assert list(quadrants) == [matrix.STRANGERS, matrix.BARNACLES]


def test_default_thresholds_are_the_medians_of_known_values():
    data = frame([1.0, 2.0, 3.0, np.nan], [10.0, 30.0, 20.0, np.nan])

    thresholds = matrix.thresholds_for(data)

    assert thresholds == matrix.Thresholds(loyalty=2.0, profitability=20.0)
    assert matrix.thresholds_for(data, loyalty=0.5).loyalty == 0.5


def test_every_quadrant_has_advice():
    from segmentation.models import Quadrant
    from segmentation.selectors import QUADRANT_ADVICE

    assert (
        set(QUADRANT_ADVICE)
        == set(Quadrant)
        == {
            matrix.TRUE_FRIENDS,
            matrix.BUTTERFLIES,
            matrix.BARNACLES,
            matrix.STRANGERS,
        }
    )
