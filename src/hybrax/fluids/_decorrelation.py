"""When does a forecast stop resembling the truth: the decorrelation time."""

from __future__ import annotations

import numpy as np
from jaxtyping import Float

from hybrax.core import ConfigurationError

__all__ = ["decorrelation_time"]


def decorrelation_time(
    times: Float[np.ndarray, " steps"],
    correlation: Float[np.ndarray, " steps"],
    threshold: float = 0.95,
) -> tuple[float, bool]:
    """First time at which a forecast's ``correlation`` with the truth falls below
    ``threshold``: the decorrelation time of Kochkov et al. (2021).

    ``correlation`` is typically `vorticity_correlation` of a forecast with the reference,
    saved at ``times`` after the forecast start (at time 0 the correlation is 1). The
    crossing is interpolated linearly between the last saved time above the threshold and
    the first below (between ``(0, 1)`` and the first save if the very first one is
    below). A non-finite correlation (a blown-up forecast) counts as below. Host-side
    (NumPy), for finished forecasts.

    Parameters
    ----------
    times
        Saved times, increasing, shape ``(steps,)``.
    correlation
        Correlation at those times, shape ``(steps,)``.
    threshold
        Correlation below which the forecast counts as decorrelated (default 0.95).

    Returns
    -------
    time, censored
        The crossing time, or ``times[-1]`` with ``censored=True`` if the curve never falls
        below the threshold within the saved times (the decorrelation time is then only a
        lower bound).

    Examples
    --------
    >>> import numpy as np
    >>> from hybrax.fluids import decorrelation_time
    >>> time, censored = decorrelation_time(np.array([1.0, 2.0, 3.0]), np.array([0.99, 0.97, 0.93]))
    >>> round(time, 6), censored
    (2.5, False)
    """
    times = np.asarray(times, dtype=float)
    correlation = np.asarray(correlation, dtype=float)
    if times.shape != correlation.shape or times.ndim != 1 or times.size == 0:
        raise ConfigurationError(
            f"decorrelation_time: times and correlation must be matching non-empty 1D "
            f"arrays, got shapes {times.shape} and {correlation.shape}"
        )
    if not np.isfinite(threshold):
        raise ConfigurationError(
            f"decorrelation_time: threshold must be a finite number such as 0.95, got {threshold!r}"
        )
    below = ~(correlation >= threshold)
    if not below.any():
        return float(times[-1]), True
    i = int(np.argmax(below))
    t_prev, c_prev = (0.0, 1.0) if i == 0 else (times[i - 1], correlation[i - 1])
    c_now = correlation[i]
    if not np.isfinite(c_now) or c_prev == c_now:
        return float(times[i]), False
    fraction = (c_prev - threshold) / (c_prev - c_now)
    return float(t_prev + fraction * (times[i] - t_prev)), False
