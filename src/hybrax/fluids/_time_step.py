"""Checking a stepper's time step against the advective CFL limit of a given state."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import PyTree

from hybrax.core import (
    AbstractStepper,
    ConfigurationError,
    check_float,
    concrete_or_none,
)
from hybrax.grids import cfl_time_step

__all__ = ["check_time_step"]


def check_time_step(stepper: AbstractStepper, state: PyTree, max_courant: float = 1.0) -> PyTree:
    """Reject a time step beyond the advective stability limit for ``state``.

    The Courant number is ``C = dt * max_velocity / min(dx)`` with the model's
    ``max_velocity(state)`` (the flow speed for `NavierStokes2D`, ``max |u|`` for Burgers
    and Kuramoto–Sivashinsky). `hybrax.CrankNicolsonRK4` and `hybrax.ETDRK4` on the
    pseudo-spectral models here are stable up to about ``C = 1``; 0.5 is the customary
    safe choice. Call it once on the initial state; the speed can grow during a run.

    Parameters
    ----------
    stepper
        A stepper with a ``dynamics`` that has a ``grid`` and a ``max_velocity(state)``
        method (every model in `hybrax.fluids`).
    state
        The state to check (typically the initial state).
    max_courant
        Largest accepted Courant number (default 1).

    Returns
    -------
    ``state`` unchanged. Outside `jax.jit` a violation raises
    `hybrax.ConfigurationError` at once; under
    `jax.jit` the returned state carries an `equinox.error_if` check that raises when
    the computation runs.

    Examples
    --------
    >>> import hybrax
    >>> from hybrax.fluids import KolmogorovFlow, check_time_step
    >>> model = KolmogorovFlow(64)
    >>> state = model.initial_state()  # maximum speed 7
    >>> stepper = hybrax.ETDRK4(model, dt=0.05)
    >>> check_time_step(stepper, state)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: time step dt=0.05 gives Courant number 3.56 for this state ...
    """
    dynamics = getattr(stepper, "dynamics", None)
    grid = getattr(dynamics, "grid", None)
    if grid is None or not hasattr(dynamics, "max_velocity"):
        raise ConfigurationError(
            f"check_time_step needs a stepper over a hybrax.fluids model (with .dynamics.grid "
            f"and .dynamics.max_velocity), got {type(stepper).__name__}"
        )
    max_courant = check_float(max_courant, "max_courant", positive=True)
    speed = dynamics.max_velocity(state)
    dt = jnp.asarray(stepper.dt).astype(speed.dtype)
    courant = dt * speed / min(grid.spacing)
    concrete = concrete_or_none(courant)
    if concrete is None:
        return eqx.error_if(
            state,
            courant > max_courant,
            f"check_time_step: the time step gives a Courant number above {max_courant} for "
            "this state; reduce dt (see hybrax.grids.cfl_time_step)",
        )
    value, speed_value, dt_value = float(concrete), float(speed), float(dt)
    if value > max_courant:
        safe = cfl_time_step(grid, speed_value, 0.5)
        raise ConfigurationError(
            f"time step dt={dt_value:.4g} gives Courant number {value:.3g} for this state "
            f"(max speed {speed_value:.4g}, dx {min(grid.spacing):.4g}), above the limit "
            f"{max_courant}; use dt <= {safe:.4g} (Courant 0.5: "
            f"hybrax.grids.cfl_time_step(grid, {speed_value:.3g}, 0.5))"
        )
    return state
