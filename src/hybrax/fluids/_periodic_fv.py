"""The finite-volume operators of `IncompressibleNavierStokes` on a fully periodic box with
a built-in advection scheme, read from one periodic halo per velocity component.

The general operators pad every array with ghost layers that depend on each side's boundary
condition, per term, and slice stencils out of the padded arrays; on a periodic box that
costs several copies per term on a CPU (each pad is a concatenation that XLA does not fuse
into its consumers), and `jnp.roll` costs one copy per shift. Here each component's ``n``
distinct faces per axis (the state's face ``n`` is the copy of face ``0``) are wrapped once
by two ghost layers on every axis (`_Halo`), and every stencil point is a window of that
array, which XLA fuses into the arithmetic. The same stencils in the same order, so equal to
the general operators to round-off (tests/fluids/test_periodic_fast_path.py); the periodic
copy is appended at the end. A learned interpolation bound to the state
(`BoundInterpolation`: per flux, the stencil corrections on the cells or edges) adds its
correction to the same face values.
"""

from __future__ import annotations

import functools

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


_HALO = 2
"""Periodic ghost layers on each side of every axis: the widest stencils (van Leer's slopes,
a learned 4-point stencil) reach two points past the faces they update. (Computing the
periodic copy face too, instead of appending it, needs three and measured slower: the
windows then feed more fusions.)"""


class _Halo:
    """A field of the box's ``cells`` shape wrapped around by `_HALO` layers on every axis
    (one `jnp.pad`), read back as windows: XLA fuses the windows' slices into the
    arithmetic that uses them, where each `jnp.roll` would be a copy of its own."""

    def __init__(self, q: Array):
        self.shape = q.shape
        self.padded = jnp.pad(q, _HALO, mode="wrap")

    def window(self, ranges: dict[int, tuple[int, int]]) -> Array:
        """Points ``start .. stop - 1`` (may run past ``0 .. n - 1`` by up to `_HALO`) along
        each axis in ``ranges``, all ``n`` along the others."""
        bounds = [ranges.get(axis, (0, n)) for axis, n in enumerate(self.shape)]
        return lax.slice(
            self.padded, [_HALO + lo for lo, _ in bounds], [_HALO + hi for _, hi in bounds]
        )

    def along(self, axis: int, lo: int, hi: int) -> Array:
        """Points ``i + lo`` for ``i`` in ``0 .. n - 1 + hi - lo`` along ``axis``."""
        return self.window({axis: (lo, self.shape[axis] + hi)})


def _slope(left: Array, right: Array) -> Array:
    """van Leer's (1974) limited slope from the one-sided differences (zero at extrema)."""
    product = left * right
    positive = product > 0
    return jnp.where(positive, 2 * product / jnp.where(positive, left + right, 1.0), 0.0)


def _slopes(q: Array, axis: int) -> Array:
    """van Leer's slope at every point of the periodic field ``q`` along ``axis``."""
    return _slope(q - jnp.roll(q, 1, axis), jnp.roll(q, -1, axis) - q)


def _along(field: "_Halo", axis: int, o: int) -> Array:
    """Points ``k + o`` of the interfaces ``k = 0 .. n`` along ``axis``."""
    return field.along(axis, o, o + 1)


def _face_values(
    point, carrier: Array, scheme: str, d: Array | None, first: int, slope=None
) -> Array:
    """Face values on the interfaces between points ``k - 1`` and ``k`` of a field along one
    axis, advected by ``carrier`` there: ``point(o)`` returns the points ``k + o`` of every
    interface ``k``, ``slope(o)`` (or None) van Leer's slopes there. The built-in schemes of
    `_fv_advection` (central mean, upwind neighbour, van Leer's limited MUSCL states) plus,
    with ``d``, a learned interpolation's zero-sum correction
    ``sum_j d_j (q_{k+first+j+1} - q_{k+first+j})`` over the stencil ``k + first ..``
    (`_learned_interpolation._face_values`; ``first = -s/2`` for an ``s``-point stencil
    centred on the interface)."""
    behind, ahead = point(-1), point(0)
    if scheme == "central":
        values = 0.5 * (behind + ahead)
    elif scheme == "upwind":
        values = jnp.where(carrier > 0, behind, ahead)
    else:
        if slope is None:  # from the field's own points
            left_state = behind + 0.5 * _slope(behind - point(-2), ahead - behind)
            right_state = ahead - 0.5 * _slope(ahead - behind, point(1) - ahead)
        else:
            left_state = behind + 0.5 * slope(-1)
            right_state = ahead - 0.5 * slope(0)
        values = jnp.where(carrier > 0, left_state, right_state)
    if d is not None:
        for j in range(d.shape[0]):
            values = values + d[j] * (point(first + j + 1) - point(first + j))
    return values


def _wrapped(d: Array, axis: int, before: bool = True) -> Array:
    """``d`` (channels first) with one periodic point added along spatial ``axis``: the last
    before the first (``before``) or the first after the last."""
    axis = axis + 1
    if before:
        return jnp.concatenate([lax.slice_in_dim(d, -1, None, axis=axis), d], axis=axis)
    return jnp.concatenate([d, lax.slice_in_dim(d, 0, 1, axis=axis)], axis=axis)


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
    fields = [_Halo(q) for q in distinct]
    slopes = None
    if scheme == "van_leer" and len(distinct) == 3:
        # each point's limited slope along each axis computed once, then read through
        # windows: in 3-D XLA otherwise recomputes them in every consumer (32^3, one core:
        # 470 -> 860 steps per second); in 2-D the windows of the field itself are faster
        # (256^2: 1,440 against 870)
        slopes = [[_Halo(_slopes(q, b)) for b in range(q.ndim)] for q in distinct]
    shape = fields[0].shape
    rates = []
    for a, field in enumerate(fields):
        n = shape[a]

        def at(x, ranges=None, a=a, n=n):  # the faces 0 .. n - 1 along a
            return x.window({a: (0, n), **(ranges or {})})

        q = at(field)
        # along its own axis: interfaces k = 0 .. n between faces k - 1 and k (the cell
        # centres -1 .. n - 1), advected by the mean of those two faces
        d = None
        if corrections is not None:
            d = _wrapped(corrections[a][a], a)

        own = functools.partial(_along, field, a)  # faces k + o of the interfaces k
        centre = 0.5 * (own(-1) + own(0))
        slope = None if slopes is None else functools.partial(_along, slopes[a][a], a)
        flux = centre * _face_values(own, centre, scheme, d, _first(d), slope)
        advection = (
            lax.slice_in_dim(flux, 1, n + 1, axis=a) - lax.slice_in_dim(flux, 0, n, axis=a)
        ) / spacing[a]
        second = (field.along(a, -1, -1) - 2 * q + field.along(a, 1, 1)) / spacing[a] ** 2
        for b, carrier in enumerate(fields):
            if b == a:
                continue
            m = shape[b]
            # on the edges j = 0 .. m between points j - 1 and j of u_a along b: u_b averaged
            # along a (its faces j along b) carries u_a reconstructed along b
            edges = (0, m + 1)
            edge = 0.5 * (at(carrier, {b: edges}) + carrier.window({a: (-1, n - 1), b: edges}))
            d = None
            if corrections is not None:
                d = _wrapped(corrections[a][b], b, before=False)

            def across(o, x=field, b=b, m=m):  # points j + o of the edges j
                return at(x, {b: (o, m + 1 + o)})

            slope = None if slopes is None else functools.partial(across, x=slopes[a][b])
            flux = edge * _face_values(across, edge, scheme, d, _first(d), slope)
            advection = (
                advection
                + (lax.slice_in_dim(flux, 1, m + 1, axis=b) - lax.slice_in_dim(flux, 0, m, axis=b))
                / spacing[b]
            )
            neighbours = at(field, {b: (-1, m - 1)}) + at(field, {b: (1, m + 1)})
            second = second + (neighbours - 2 * q) / spacing[b] ** 2
        rate = viscosity * second - advection - drag * q
        if a == 0 and jnp.ndim(forcing) > 0:
            rate = rate + _distinct(forcing, 0)
        elif a == 0:
            rate = rate + forcing
        rates.append(_closed(rate, a))
    return tuple(rates)


def _first(d: Array | None) -> int:
    """Offset of a learned ``s``-point stencil's first point from its interface's second
    point (``-s/2``: centred); 0 without one."""
    return 0 if d is None else -((d.shape[0] + 1) // 2)


def project(
    velocity: tuple[Array, ...], spacing: tuple[float, ...]
) -> tuple[tuple[Array, ...], Array]:
    """The divergence-free part of ``velocity`` on a periodic box and ``phi`` with
    ``lap phi = div velocity`` (zero mean): the fast transform solve of the general
    projection, its divergence and gradient by periodic windows. The faces ``0 .. n - 1``
    of each axis count; the result's face ``n`` is its face ``0`` again."""
    closed = [  # face n set to face 0 in place (what the general path's boundaries do)
        lax.dynamic_update_slice_in_dim(q, lax.slice_in_dim(q, 0, 1, axis=a), q.shape[a] - 1, a)
        for a, q in enumerate(velocity)
    ]
    div = sum(
        (lax.slice_in_dim(q, 1, None, axis=a) - lax.slice_in_dim(q, 0, -1, axis=a)) / spacing[a]
        for a, q in enumerate(closed)
    )
    n = div.shape
    kinds = (("periodic", "periodic"),) * div.ndim
    phi = transform_solve(div, n, tuple(spacing), kinds)
    projected = []
    for a, q in enumerate(closed):
        wrapped = jnp.concatenate(  # phi at the cells -1 .. n along a
            [lax.slice_in_dim(phi, -1, None, axis=a), phi, lax.slice_in_dim(phi, 0, 1, axis=a)],
            axis=a,
        )
        gradient = lax.slice_in_dim(wrapped, 1, None, axis=a) - lax.slice_in_dim(
            wrapped, 0, -1, axis=a
        )
        projected.append(q - gradient / spacing[a])
    return tuple(projected), phi
