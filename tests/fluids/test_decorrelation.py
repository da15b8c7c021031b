"""decorrelation_time: first crossing of a correlation threshold, interpolated."""

import numpy as np
import pytest

from hybrax.errors import ConfigurationError
from hybrax.fluids import decorrelation_time


def test_decorrelation_time():
    t = np.array([1.0, 2.0, 3.0, 4.0])
    time, censored = decorrelation_time(t, np.array([0.99, 0.97, 0.93, 0.5]))
    assert time == pytest.approx(2.5) and not censored
    # crossing before the first save: interpolated from (0, 1)
    assert decorrelation_time(t, np.array([0.9, 0.8, 0.7, 0.6]))[0] == pytest.approx(0.5)
    # never below: the horizon, flagged as censored
    assert decorrelation_time(t, np.full(4, 0.99)) == (4.0, True)
    # a non-finite correlation (a blown-up forecast) counts as decorrelated
    assert decorrelation_time(t, np.array([0.99, np.nan, 0.99, 0.99])) == (2.0, False)
    assert decorrelation_time(t, np.array([0.99, 0.98, 0.9, 0.1]), threshold=0.5)[0] > 3


def test_decorrelation_time_rejects_mismatched_curves():
    t = np.array([1.0, 2.0, 3.0])
    with pytest.raises(ConfigurationError, match="non-empty"):
        decorrelation_time(np.zeros(0), np.zeros(0))
    with pytest.raises(ConfigurationError, match="threshold"):
        decorrelation_time(t, np.ones(3), threshold=float("nan"))
