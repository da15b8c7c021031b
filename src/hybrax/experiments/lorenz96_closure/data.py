"""Truth data of the ``lorenz96-closure`` workflow: the two-scale model, sampled coarsely."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

import hybrax
from hybrax.climate import TwoScaleLorenz96
from hybrax.core import ConfigurationError, ODEState
from hybrax.hybrid import generate_trajectories, sliding_windows

from .settings import FULL, ClosureSettings

__all__ = ["TruthData", "forecast_windows", "make_truth_data", "truth_model"]


def truth_model() -> TwoScaleLorenz96:
    """The two-scale Lorenz-96 truth: K=8, J=32, F=20, h=1, b=10, c=10."""
    return TwoScaleLorenz96(8, 32, forcing=20.0, coupling=1.0, amplitude_ratio=10.0,
                            time_scale_ratio=10.0)  # fmt: skip


class TruthData(eqx.Module):
    """Truth ``X`` and coupling term ``U`` sampled every coarse step.

    ``x`` and ``u`` have shape ``(members, times, K)``; ``time`` ``(members, times)`` (one
    state, as made inside a rollout: ``(K,)`` and ``()``).
    """

    x: Float[Array, "*batch K"]
    u: Float[Array, "*batch K"]
    time: Float[Array, "*batch"]

    def states(self) -> ODEState:
        """``X`` as one-scale `ODEState` trajectories (for losses and forecasts)."""
        return ODEState(self.x, self.time)


def make_truth_data(
    key: PRNGKeyArray, members: int, duration: float, settings: ClosureSettings = FULL
) -> TruthData:
    """Run the two-scale truth from random states: spin-up, then ``duration`` time units.

    All members are advanced together (vmapped, jitted); ``X`` and the coupling term are
    kept every coarse step, starting right after spin-up.
    """
    model = truth_model()
    stepper = hybrax.RK4(model, settings.truth_dt)
    dtype = jnp.zeros(()).dtype
    coarse_steps = round(duration / settings.coarse_dt)

    def observe(state):
        return TruthData(state.x, model.coupling_tendency(state.x, state.y), state.time)

    return generate_trajectories(
        stepper,
        lambda k: model.initial_state(k, dtype=dtype),
        key,
        n=members,
        n_steps=coarse_steps * settings.save_every,
        save_every=settings.save_every,
        spin_up_steps=round(settings.spin_up_time / settings.truth_dt),
        observe=observe,
    )


def forecast_windows(truth: TruthData, settings: ClosureSettings = FULL) -> TruthData:
    """``num_forecasts`` truth segments (start state + the longest lead) for forecast tests.

    Cut from long truth runs (e.g. the climate ensemble, which no model is trained on):
    segment starts are ``forecast_spacing`` time units apart within a run, then
    ``num_forecasts`` of them are taken evenly spread over all runs.
    """
    horizon = round(max(settings.leads) / settings.coarse_dt)
    spacing = max(1, round(settings.forecast_spacing / settings.coarse_dt))
    windows = sliding_windows(truth, horizon + 1, stride=spacing)
    available = windows.x.shape[0]
    if available < settings.num_forecasts:
        raise ConfigurationError(
            f"forecast_windows: the truth runs give {available} segments "
            f"{settings.forecast_spacing} time units apart, fewer than num_forecasts="
            f"{settings.num_forecasts}; lengthen the runs or lower num_forecasts"
        )
    pick = np.linspace(0, available - 1, settings.num_forecasts).round().astype(int)
    return jax.tree.map(lambda x: x[pick], windows)
