"""Courant–Friedrichs–Lewy time-step helpers."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from hybrax.core import ConfigurationError, check_float, check_parameter, time_step

from ._grid import Grid

__all__ = ["cfl_time_step", "courant_number"]


def cfl_time_step(
    grid: Grid, max_velocity: ArrayLike, courant: float = 0.5
) -> Float[Array, ""] | float:
    """The advective time step ``dt = courant * min_i(dx_i) / max_velocity``.

    Parameters
    ----------
    grid
        The grid (its smallest spacing sets the limit).
    max_velocity
        Largest flow speed expected during the run (model length / time units), > 0.
        For the Kolmogorov flow at Re 1000, 7 is customary (Kochkov et al. 2021).
    courant
        Target Courant number (default 0.5; explicit fourth-order schemes on spectral grids
        are typically stable up to about 1).

    Returns
    -------
    The time step (a Python float for Python inputs, else a scalar array).

    Examples
    --------
    >>> from hybrax.grids import Grid, cfl_time_step
    >>> round(cfl_time_step(Grid((256, 256)), max_velocity=7.0), 6)
    0.001753
    """
    courant = check_float(courant, "courant", positive=True)
    spacing = min(grid.spacing)
    if isinstance(max_velocity, (int, float)) and not isinstance(max_velocity, bool):
        max_velocity = check_float(max_velocity, "max_velocity", positive=True)
        return courant * spacing / max_velocity
    return courant * spacing / check_parameter(max_velocity, "max_velocity", positive=True)


def courant_number(
    grid: Grid, velocity: Float[Array, "ndim ..."], dt: ArrayLike
) -> Float[Array, ""]:
    """Courant number ``dt * max |u| / min_i(dx_i)`` of a velocity field (the inverse of
    `cfl_time_step`).

    Parameters
    ----------
    grid
        The grid.
    velocity
        Velocity components stacked on a leading axis, shape ``(ndim, *grid.shape)``.
    dt
        Time step.
    """
    dt = time_step(dt)
    velocity = jnp.asarray(velocity)
    if velocity.shape != (grid.ndim, *grid.shape):
        raise ConfigurationError(
            f"courant_number: velocity must have shape {(grid.ndim, *grid.shape)} "
            f"(components first), got {velocity.shape}"
        )
    speed = jnp.sqrt(jnp.sum(velocity**2, axis=0))
    return jnp.asarray(dt).astype(speed.dtype) * jnp.max(speed) / min(grid.spacing)
