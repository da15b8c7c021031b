"""Evaluation of the ``lorenz96-closure`` models: forecast error and climate PDF."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import numpy as np
from jaxtyping import ArrayLike

import hybrax
from hybrax.core import ConfigurationError, ODEState

from .._workflow import finite_or_none
from .data import TruthData
from .model import coarse_stepper
from .settings import ClosureSettings

__all__ = ["evaluate", "hellinger_distance"]


def hellinger_distance(samples_p: ArrayLike, samples_q: ArrayLike, bins: ArrayLike) -> float:
    """Hellinger distance ``sqrt(1 - sum_i sqrt(p_i q_i))`` between the histograms of two
    sample sets on the given bin edges (samples outside the edges count in no bin, so a
    model that leaves the truth's range is penalised)."""
    p, _ = np.histogram(np.asarray(samples_p).ravel(), bins=np.asarray(bins))
    q, _ = np.histogram(np.asarray(samples_q).ravel(), bins=np.asarray(bins))
    n_p, n_q = np.asarray(samples_p).size, np.asarray(samples_q).size
    if n_p == 0 or n_q == 0:
        raise ConfigurationError("hellinger_distance: empty sample set")
    overlap = np.sum(np.sqrt((p / n_p) * (q / n_q)))
    return float(np.sqrt(max(0.0, 1.0 - overlap)))


def evaluate(
    closures: dict[str, Any],
    forecast_truth: TruthData,
    climate_truth: TruthData,
    settings: ClosureSettings,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Forecast RMSE by lead and Hellinger distance of the ``X`` PDF for each closure.

    ``forecast_truth``: truth ``X`` from the forecast start (index 0) every coarse step up
    to the longest lead (see `forecast_windows`); ``climate_truth``: long truth runs, whose
    first states start the models' long runs (the first 10 % of every run is discarded as
    spin-up).

    Returns ``(metrics, curves)``: the metrics dict of ``metrics.json`` and the RMSE-vs-lead
    curves and samples used for the plots.
    """
    lead_steps = [round(lead / settings.coarse_dt) for lead in settings.leads]
    horizon = max(lead_steps)
    x0 = ODEState(forecast_truth.x[:, 0], forecast_truth.time[:, 0])
    truth_x = forecast_truth.x[:, 1 : horizon + 1]
    climate_steps = climate_truth.x.shape[1] - 1
    discard = climate_steps // 10
    truth_samples = np.asarray(climate_truth.x[:, 1 + discard :])
    lo, hi = float(truth_samples.min()), float(truth_samples.max())
    pad = 0.05 * (hi - lo)
    bins = np.linspace(lo - pad, hi + pad, settings.histogram_bins + 1)
    start = ODEState(climate_truth.x[:, 0], climate_truth.time[:, 0])

    metrics: dict[str, Any] = {"forecast_rmse": {}, "pdf_hellinger": {}}
    curves: dict[str, Any] = {"lead_times": (np.arange(1, horizon + 1) * settings.coarse_dt)}
    curves["bins"], curves["truth_samples"] = bins, truth_samples
    for name, closure in closures.items():
        stepper = coarse_stepper(closure, settings)
        forecasts, climate = _forecast_and_climate(stepper, x0, horizon, start, climate_steps)
        rmse = np.sqrt(np.mean((np.asarray(forecasts) - np.asarray(truth_x)) ** 2, axis=(0, 2)))
        metrics["forecast_rmse"][name] = {
            f"{lead:.1f}": finite_or_none(rmse[steps - 1])
            for lead, steps in zip(settings.leads, lead_steps, strict=True)
        }
        samples = np.asarray(climate)[:, discard:]
        finite = np.isfinite(samples).all()
        metrics["pdf_hellinger"][name] = (
            hellinger_distance(samples, truth_samples, bins) if finite else 1.0
        )
        curves[name] = {"rmse": rmse, "samples": samples}
    return metrics, curves


def truth_noise_floor(other_truth: TruthData, curves: dict[str, Any]) -> float:
    """Hellinger distance between a second, independent truth ensemble and the one in
    ``curves`` (the sampling noise of the PDF metric)."""
    discard = other_truth.x.shape[1] // 10
    return hellinger_distance(
        other_truth.x[:, 1 + discard :], curves["truth_samples"], curves["bins"]
    )


@eqx.filter_jit
def _forecast_and_climate(stepper, x0: ODEState, horizon: int, start: ODEState, n_steps: int):
    """Forecasts from ``x0`` (batched) and long runs from ``start`` (batched), one jit."""

    def run(state, length):
        return hybrax.rollout(stepper, state, length, observe=_state_u)[1]

    forecasts = jax.vmap(lambda s: run(s, horizon))(x0)
    climate = jax.vmap(lambda s: run(s, n_steps))(start)
    return forecasts, climate


def _state_u(state):
    return state.u
