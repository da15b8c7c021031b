"""Evaluation of the ``kolmogorov-correction`` models: correlation with the reference,
decorrelation times and cost."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import numpy as np

import hybrax
from hybrax.fluids import vorticity_correlation
from hybrax.grids import SpectralState

from .._kolmogorov import decorrelation_times
from .._timing import fastest_rollout_seconds
from .data import ForecastData, band_observer, start_on
from .settings import CorrectionSettings

__all__ = ["correlation_curves", "decorrelation_times", "seconds_per_time_unit"]


def correlation_curves(
    models: dict[str, tuple[Any, int]],
    data: ForecastData,
    settings: CorrectionSettings,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Vorticity correlation with the reference along every held-out forecast.

    Parameters
    ----------
    models
        ``name -> (stepper, factor)``: a stepper on the grid ``factor`` times the coarse
        one, stepping ``time_step(factor)``.
    data
        The held-out forecasts (`make_forecast_data`).
    settings
        The experiment's settings.

    Returns
    -------
    correlations, trajectories
        ``name -> array (forecasts, horizon_steps)``: the correlation on the coarse band
        after every coarse step; and ``name -> array (forecasts, horizon_steps, N,
        N // 2 + 1)``: the forecasts' coarse-band spectral vorticity at those steps.
    """
    grid = settings.grid(1)
    horizon = data.targets.field_hat.shape[1]
    truth = grid.to_physical(data.targets.field_hat)
    correlations, trajectories = {}, {}
    for name, (stepper, factor) in models.items():
        starts = start_on(data.starts, settings, factor)
        saved = _forecast(stepper, starts, settings, horizon, factor)
        predicted = grid.to_physical(saved)
        correlations[name] = np.asarray(vorticity_correlation(predicted, truth))
        trajectories[name] = np.asarray(saved)
    return correlations, trajectories


@eqx.filter_jit
def _forecast(stepper, starts: SpectralState, settings, horizon: int, factor: int):
    observe = band_observer(settings, factor)

    def one(state):
        saved = hybrax.rollout(
            stepper, state, horizon * factor, save_every=factor, observe=observe
        )[1]
        return saved.field_hat

    return jax.vmap(one)(starts)


def seconds_per_time_unit(
    models: dict[str, tuple[Any, int]],
    start: SpectralState,
    settings: CorrectionSettings,
    *,
    rounds: int = 3,
) -> dict[str, float]:
    """Wall time per simulated time unit of one trajectory of each model.

    Each model runs ``timing_time`` (in steps of its own ``dt``) from ``start`` (a single
    state on the 4x band, coarse-grained to the model's grid) in one jitted
    `hybrax.rollout` without saving; compilation is excluded, and the minimum over
    ``rounds`` interleaved rounds is kept (every model timed once per round, so load from
    other processes hits all alike).
    """
    runs = {}
    for name, (stepper, factor) in models.items():
        state = start_on(start, settings, factor)
        runs[name] = (stepper, state, max(1, round(settings.timing_time / float(stepper.dt))))
    seconds = fastest_rollout_seconds(runs, rounds=rounds)
    return {name: seconds[name] / (n * float(runs[name][0].dt)) for name, (_, _, n) in runs.items()}
