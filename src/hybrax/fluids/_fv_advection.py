"""Face reconstruction for finite-volume advection: central, upwind and van Leer (TVD)."""

import jax.numpy as jnp
from jax import lax
from jaxtyping import Array

__all__ = ["SCHEMES", "interface_values"]

SCHEMES = ("central", "upwind", "van_leer")


def _shift(q: Array, axis: int, start: int, stop: int) -> Array:
    return lax.slice_in_dim(q, start, q.shape[axis] + stop, axis=axis)


def _van_leer_slope(q: Array, axis: int) -> Array:
    """Limited slope at points 1..n-2 of ``q`` along ``axis`` (van Leer 1974 harmonic mean
    of the one-sided differences, zero at extrema)."""
    left = _shift(q, axis, 1, -1) - _shift(q, axis, 0, -2)
    right = _shift(q, axis, 2, 0) - _shift(q, axis, 1, -1)
    product = left * right
    positive = product > 0
    total = jnp.where(positive, left + right, 1.0)
    return jnp.where(positive, 2 * product / total, 0.0)


def interface_values(q: Array, velocity: Array, axis: int, scheme: str) -> Array:
    """``q`` reconstructed on the interfaces between consecutive points along ``axis``.

    ``q`` carries two ghost layers on each side of ``axis`` (``n + 4`` points for ``n`` real
    ones); the result has the ``n + 1`` interfaces between points ``-1|0, 0|1, ..., n-1|n``
    of the real range extended by one ghost each side, i.e. between padded points ``k+1``
    and ``k+2`` for ``k = 0..n``. ``velocity`` is the advecting velocity on those
    interfaces (it picks the upwind side).
    """
    left = _shift(q, axis, 1, -2)  # padded points 1 .. n+1
    right = _shift(q, axis, 2, -1)  # padded points 2 .. n+2
    if scheme == "central":
        return 0.5 * (left + right)
    if scheme == "upwind":
        return jnp.where(velocity > 0, left, right)
    slope = _van_leer_slope(q, axis)  # at padded points 1 .. n+2
    left_state = left + 0.5 * _shift(slope, axis, 0, -1)
    right_state = right - 0.5 * _shift(slope, axis, 1, 0)
    return jnp.where(velocity > 0, left_state, right_state)
