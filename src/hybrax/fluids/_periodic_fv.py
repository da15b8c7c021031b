"""The finite-volume operators of `IncompressibleNavierStokes` on a fully periodic box with
a built-in advection scheme, written with periodic shifts of the ``n`` distinct faces per
axis.

The general operators pad every array with ghost layers that depend on each side's boundary
condition and slice stencils out of the padded arrays; on a periodic box that costs several
copies per term on a CPU (each pad is a concatenation that XLA does not fuse into its
consumers). These compute the same numbers (the same stencils in the same order, so equal to
round-off: tests/fluids/test_periodic_fast_path.py) from the faces ``0 .. n-1`` of each axis
with `jnp.roll`, then append the periodic copy (face ``n`` = face ``0``) that the state keeps.
A learned interpolation bound to the state (`BoundInterpolation`: per flux, the stencil
corrections on the cells or edges) adds its correction to the same face values.
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


def _face_values(q: Array, carrier: Array, axis: int, scheme: str) -> Array:
    """``q`` reconstructed on the interfaces between its points ``i`` and ``i + 1`` along
    ``axis`` (index ``i``), advected by ``carrier`` there: the built-in schemes of
    `_fv_advection` (central mean, upwind neighbour, van Leer's limited MUSCL states)."""
    ahead = jnp.roll(q, -1, axis)
    if scheme == "central":
        return 0.5 * (q + ahead)
    if scheme == "upwind":
        return jnp.where(carrier > 0, q, ahead)
    left, right = q - jnp.roll(q, 1, axis), ahead - q  # one-sided differences at point i
    product = left * right
    positive = product > 0
    slope = jnp.where(positive, 2 * product / jnp.where(positive, left + right, 1.0), 0.0)
    left_state = q + 0.5 * slope
    right_state = ahead - 0.5 * jnp.roll(slope, -1, axis)
    return jnp.where(carrier > 0, left_state, right_state)


def _learned_correction(q: Array, d: Array, axis: int, first: int) -> Array:
    """``sum_j d_j (q_{i+first+j+1} - q_{i+first+j})`` at every index ``i`` along ``axis``:
    a learned interpolation's zero-sum correction over a stencil whose first point is
    ``first`` points from ``i`` (`_learned_interpolation._face_values`, by shifts)."""
    difference = jnp.roll(q, -1, axis) - q
    terms = [d[j] * jnp.roll(difference, -(first + j), axis) for j in range(d.shape[0])]
    return sum(terms[1:], terms[0])


def momentum_rates(
    velocity: tuple[Array, ...],
    spacing: tuple[float, ...],
    viscosity: Array,
    drag: Array,
    forcing: Array,
    scheme: str = "central",
    corrections: tuple[tuple[Array, ...], ...] | None = None,
) -> tuple[Array, ...]:
    """``d u_a / dt`` without pressure, on every face of a periodic box: ``nu lap u_a``
    minus the flux-form advection ``sum_b d(u_b u_a)/dx_b`` (face values by ``scheme``:
    "central", "upwind" or "van_leer") minus ``drag u_a``, plus ``forcing`` (already on
    the x-faces' shape, or a scalar) on ``u_0``. ``corrections[a][b]``, shape
    ``(s - 1, *cells)``, adds a learned interpolation's stencil correction (stencil size
    ``s``) to the face values of component ``a`` along axis ``b``: on the cells for
    ``b == a`` (interface ``i`` between faces ``i`` and ``i + 1``), on the edges across
    (edge ``j`` between points ``j - 1`` and ``j``), as `BoundInterpolation` holds them."""
    distinct = [_distinct(q, a) for a, q in enumerate(velocity)]
    rates = []
    for a, q in enumerate(distinct):
        h = spacing[a]
        centre = 0.5 * (q + jnp.roll(q, -1, a))  # the carrier at the cell centres along a
        values = _face_values(q, centre, a, scheme)
        if corrections is not None:
            d = corrections[a][a]
            values = values + _learned_correction(q, d, a, 1 - (d.shape[0] + 1) // 2)
        flux = centre * values
        advection = (flux - jnp.roll(flux, 1, a)) / h
        second = (jnp.roll(q, 1, a) - 2 * q + jnp.roll(q, -1, a)) / h**2
        for b, carrier in enumerate(distinct):
            if b == a:
                continue
            k = spacing[b]
            # on the edges between a-faces and b-faces (edge j lies between points j - 1
            # and j of q along b): u_b averaged along a carries u_a reconstructed along b
            edge = 0.5 * (carrier + jnp.roll(carrier, 1, a))
            ahead = jnp.roll(edge, -1, b)  # the carrier on interface j (points j, j + 1)
            values = jnp.roll(_face_values(q, ahead, b, scheme), 1, b)
            if corrections is not None:
                d = corrections[a][b]
                values = values + _learned_correction(q, d, b, -((d.shape[0] + 1) // 2))
            flux = edge * values
            advection = advection + (jnp.roll(flux, -1, b) - flux) / k
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
