"""Evaluation of the ``qg-parameterization`` models: long coarse runs, the distances of Ross
et al. (2023) to the filtered reference, blow-ups and cost."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import hybrax
from hybrax.climate import qg_distances
from hybrax.grids import SpectralState

from .._timing import fastest_rollout_seconds
from .data import ReferenceData
from .settings import DAYS, SPECTRAL_METRICS, QGParameterizationSettings

__all__ = ["ModelRun", "evaluate_model", "seconds_per_simulated_day", "spectral_score"]


@dataclasses.dataclass
class ModelRun:
    """One model's evaluation runs and what was measured on them.

    Attributes
    ----------
    states
        The coarse runs at the reference's evaluation snapshots (``field_hat``
        ``(members, eval_snapshots, 2, N, N // 2 + 1)``).
    blow_up_day
        ``None`` if every run stayed finite; else the first snapshot time (days after the
        start) at which a run was NaN or inf.
    distances
        `hybrax.climate.qg_distances` to the filtered reference (floats; empty after a
        blow-up).
    """

    states: SpectralState
    blow_up_day: float | None
    distances: dict[str, float]


@eqx.filter_jit
def _runs(stepper, starts: SpectralState, n_steps: int, save_every: int) -> SpectralState:
    def one(state):
        return hybrax.rollout(stepper, state, n_steps, save_every=save_every, check_finite=False)[1]

    return jax.vmap(one)(starts)


def evaluate_model(
    stepper, data: ReferenceData, settings: QGParameterizationSettings, configuration: str
) -> ModelRun:
    """Run ``stepper`` (a coarse stepper, parameterised or not) from every member's filtered
    evaluation start for ``eval_days`` and compare with the filtered reference
    (`hybrax.climate.qg_distances`, over all ``eval_snapshots``; the distributions over the
    last ``num_ending_steps``). A run that turns NaN or inf is caught and reported
    (``blow_up_day``) instead of raising."""
    s = settings
    per_snapshot = s.steps(s.eval_days) // s.eval_snapshots
    states = _runs(stepper, data.eval_start, s.eval_snapshots * per_snapshot, per_snapshot)
    finite = np.asarray(jnp.all(jnp.isfinite(states.field_hat), axis=(-3, -2, -1)))
    if not finite.all():
        first = int(np.min(np.argmin(finite, axis=1)[~finite.all(axis=1)]))
        day = (first + 1) * per_snapshot * s.time_step / DAYS
        return ModelRun(states, day, {})
    model = s.model(configuration, s.coarse_points)
    distances = qg_distances(
        model, states, model, data.eval_states, num_ending_steps=s.num_ending_steps
    )
    return ModelRun(states, None, {k: float(v) for k, v in distances.items()})


def spectral_score(distances: dict[str, float], baseline: dict[str, float]) -> float:
    """Mean over the four spectral distances (KE and enstrophy spectra, both layers) of the
    distance relative to the ``baseline``'s (the unparameterised model's): 1 is no better
    than the baseline, 0 a perfect match; ``inf`` after a blow-up."""
    if not distances:
        return math.inf
    return float(np.mean([distances[k] / baseline[k] for k in SPECTRAL_METRICS]))


def seconds_per_simulated_day(
    steppers: dict[str, Any],
    start: SpectralState,
    settings: QGParameterizationSettings,
    *,
    rounds: int = 3,
) -> dict[str, float]:
    """Wall time per simulated day of one coarse run of each model, network included.

    Each stepper runs ``timing_days`` from ``start`` in one jitted `hybrax.rollout` without
    saving; compilation is excluded and the minimum over ``rounds`` interleaved rounds is
    kept (every model timed once per round, so load from other processes hits all alike).
    """
    n_steps = settings.steps(settings.timing_days)
    simulated = n_steps * settings.time_step / DAYS
    runs = {name: (stepper, start, n_steps) for name, stepper in steppers.items()}
    seconds = fastest_rollout_seconds(runs, rounds=rounds, check_finite=False)
    return {name: t / simulated for name, t in seconds.items()}
