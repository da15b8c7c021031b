"""Evaluation of the ``fv-learned-interpolation`` models: vorticity correlation with the
reference, decorrelation times and cost."""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import numpy as np

import hybrax
from hybrax.fluids import FlowState, vorticity_correlation

from .._kolmogorov import decorrelation_times
from .._timing import fastest_rollout_seconds
from .data import FINEST, ForecastData, coarse_vorticity, restrict
from .settings import FVSettings

__all__ = ["correlation_curves", "decorrelation_times", "seconds_per_time_unit", "start_on"]


def start_on(starts: FlowState, settings: FVSettings, factor: int) -> FlowState:
    """Forecast starts (face averages on the 4x grid) face-averaged onto the grid ``factor``
    times the coarse one, projected (`IncompressibleNavierStokes.initial_state`)."""
    u, v = restrict(starts.u, starts.v, FINEST // factor)
    model = settings.model(factor)
    return jax.vmap(lambda a, b: model.initial_state(a, b, settings.real_dtype()))(u, v)


def correlation_curves(
    models: dict[str, tuple[Any, int]], data: ForecastData, settings: FVSettings
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Vorticity correlation with the reference after every coarse step of every forecast.

    Every model's velocity is face-averaged onto the coarse grid (`restrict`) and its
    corner vorticity (`coarse_vorticity`) is correlated with the reference's
    (`hybrax.fluids.vorticity_correlation`).

    Returns
    -------
    correlations, vorticity
        ``name -> (forecasts, horizon_steps)`` correlations, and ``name -> (forecasts,
        horizon_steps, N, N)`` coarse vorticity fields.
    """
    h = 2 * math.pi / settings.coarse_points
    horizon = data.targets.u.shape[1]
    truth = coarse_vorticity(data.targets.u, data.targets.v, h)
    correlations, fields = {}, {"reference": np.asarray(truth)}
    for name, (stepper, factor) in models.items():
        u, v = _forecast(stepper, start_on(data.starts, settings, factor), horizon, factor)
        w = coarse_vorticity(u, v, h)
        correlations[name] = np.asarray(vorticity_correlation(w, truth))
        fields[name] = np.asarray(w)
    return correlations, fields


@eqx.filter_jit
def _forecast(stepper, starts: FlowState, horizon: int, factor: int):
    def observe(state):
        return restrict(state.u, state.v, factor)

    def one(state):
        return hybrax.rollout(stepper, state, horizon * factor, save_every=factor, observe=observe)[
            1
        ]

    return jax.vmap(one)(starts)


def seconds_per_time_unit(
    models: dict[str, tuple[Any, int]],
    starts: FlowState,
    settings: FVSettings,
    *,
    rounds: int = 3,
) -> dict[str, float]:
    """Wall time per simulated time unit of one trajectory of each model, network
    included: ``timing_time`` in one jitted `hybrax.rollout` without saving from the first
    forecast start; compilation excluded, minimum over ``rounds`` interleaved rounds."""
    runs = {}
    for name, (stepper, factor) in models.items():
        state = jax.tree.map(lambda x: x[0], start_on(starts, settings, factor))
        runs[name] = (stepper, state, max(1, round(settings.timing_time / float(stepper.dt))))
    seconds = fastest_rollout_seconds(runs, rounds=rounds)
    return {name: seconds[name] / (n * float(runs[name][0].dt)) for name, (_, _, n) in runs.items()}
