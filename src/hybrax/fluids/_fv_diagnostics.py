"""Diagnostics of staggered-grid flows: vorticity, divergence norm, drag and lift."""

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike

from ._obstacles import penalization_force

__all__ = ["drag_lift_coefficients", "staggered_vorticity"]


def staggered_vorticity(model, state) -> Array:
    """Vorticity ``dv/dx - du/dy`` (1/time) at the interior cell corners, shape
    ``(nx - 1, ny - 1)``."""
    dx, dy = model.grid.spacing
    dvdx = (state.v[1:, 1:-1] - state.v[:-1, 1:-1]) / dx
    dudy = (state.u[1:-1, 1:] - state.u[1:-1, :-1]) / dy
    return dvdx - dudy


def drag_lift_coefficients(
    model, state, dt: ArrayLike, velocity: ArrayLike, length: ArrayLike
) -> tuple[Array, Array]:
    """``(c_D, c_L) = 2 (F_x, F_y) / (velocity^2 length)`` from `penalization_force`
    (``velocity``: the reference speed, e.g. the mean inflow; ``length``: the body size)."""
    fx, fy = penalization_force(model, state, dt)
    scale = 2 / (jnp.asarray(velocity, fx.dtype) ** 2 * jnp.asarray(length, fx.dtype))
    return fx * scale, fy * scale
