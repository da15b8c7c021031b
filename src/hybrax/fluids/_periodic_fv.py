"""The finite-volume operators of `IncompressibleNavierStokes` on a fully periodic box with
central advection, written with periodic shifts of the ``n`` distinct faces per axis.

The general operators pad every array with ghost layers that depend on each side's boundary
condition and slice stencils out of the padded arrays; on a periodic box that costs several
copies per term on a CPU (each pad is a concatenation that XLA does not fuse into its
consumers). These compute the same numbers (the same stencils in the same order, so equal to
round-off: tests/fluids/test_periodic_fast_path.py) from the faces ``0 .. n-1`` of each axis
with `jnp.roll`, then append the periodic copy (face ``n`` = face ``0``) that the state keeps.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax
from jaxtyping import Array

from ._poisson_transforms import transform_solve


def _distinct(q: Array, axis: int) -> Array:
    """The ``n`` distinct faces along ``axis`` (the state's last face is the first's copy)."""
    return lax.slice_in_dim(q, 0, q.shape[axis] - 1, axis=axis)


def _closed(q: Array, axis: int) -> Array:
    """``q`` with its periodic copy appended along ``axis`` (face ``n`` = face ``0``)."""
    return jnp.concatenate([q, lax.slice_in_dim(q, 0, 1, axis=axis)], axis=axis)


def central_rates(
    velocity: tuple[Array, ...],
    spacing: tuple[float, ...],
    viscosity: Array,
    drag: Array,
    forcing: Array,
) -> tuple[Array, ...]:
    """``d u_a / dt`` without pressure, on every face of a periodic box: ``nu lap u_a``
    minus the central flux-form advection ``sum_b d(u_b u_a)/dx_b`` minus ``drag u_a``,
    plus ``forcing`` (already on the x-faces' shape, or a scalar) on ``u_0``."""
    distinct = [_distinct(q, a) for a, q in enumerate(velocity)]
    rates = []
    for a, q in enumerate(distinct):
        h = spacing[a]
        centre = 0.5 * (q + jnp.roll(q, -1, a))  # at the cell centres along a
        flux = centre * centre
        advection = (flux - jnp.roll(flux, 1, a)) / h
        second = (jnp.roll(q, 1, a) - 2 * q + jnp.roll(q, -1, a)) / h**2
        for b, carrier in enumerate(distinct):
            if b == a:
                continue
            k = spacing[b]
            # on the edges between a-faces and b-faces: u_b averaged along a, u_a along b
            edge = 0.5 * (carrier + jnp.roll(carrier, 1, a)) * 0.5 * (q + jnp.roll(q, 1, b))
            advection = advection + (jnp.roll(edge, -1, b) - edge) / k
            second = second + (jnp.roll(q, 1, b) - 2 * q + jnp.roll(q, -1, b)) / k**2
        rate = viscosity * second - advection - drag * q
        if a == 0:
            rate = rate + (forcing if jnp.ndim(forcing) == 0 else _distinct(forcing, 0))
        rates.append(_closed(rate, a))
    return tuple(rates)


def project(
    velocity: tuple[Array, ...], spacing: tuple[float, ...]
) -> tuple[tuple[Array, ...], Array]:
    """The divergence-free part of ``velocity`` on a periodic box and ``phi`` with
    ``lap phi = div velocity`` (zero mean): the fast transform solve of the general
    projection, its divergence and gradient by periodic shifts."""
    distinct = [_distinct(q, a) for a, q in enumerate(velocity)]
    div = sum((jnp.roll(q, -1, a) - q) / spacing[a] for a, q in enumerate(distinct))
    n = div.shape
    kinds = (("periodic", "periodic"),) * div.ndim
    phi = transform_solve(div, n, tuple(spacing), kinds)
    projected = tuple(
        _closed(q - (phi - jnp.roll(phi, 1, a)) / spacing[a], a) for a, q in enumerate(distinct)
    )
    return projected, phi
