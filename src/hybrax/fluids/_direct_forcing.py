"""Direct-forcing immersed boundary with linear interpolation (Fadlun et al. 2000)."""

import jax.numpy as jnp
from jax import lax
from jaxtyping import Array

__all__ = ["closed_cells", "constrained_faces", "direct_forcing", "impose_body"]

ITERATIONS = 30  # conjugate-gradient steps of close_divergence


def _shift(x: Array, axis: int, step: int, fill) -> Array:
    """``x`` at index ``i + step`` along ``axis`` (``step`` is +1 or -1), ``fill`` beyond."""
    pad = [(0, 0)] * x.ndim
    pad[axis] = (0, 1) if step > 0 else (1, 0)
    padded = jnp.pad(x, pad, constant_values=fill)
    start = 1 if step > 0 else 0
    return lax.slice_in_dim(padded, start, start + x.shape[axis], axis=axis)


def direct_forcing(q: Array, distance: Array, spacing) -> Array:
    """One velocity component ``q`` on its faces with the body imposed by direct forcing.

    ``distance`` is the body's signed distance at the same faces (negative inside). Faces
    inside the body get 0. A fluid face (``distance >= 0``) with a neighbour inside along
    a grid line gets the value that a straight line from zero on the surface through the
    face's other neighbour on that line takes at the face: ``q_0 = q_far theta / (1 +
    theta)``, with ``theta = d_0 / (d_0 - d_in)`` the distance to the surface along the
    line in units of the spacing (the signed distance interpolated linearly between the
    face and its inside neighbour). Where several lines cross the surface the values are
    averaged with weights ``((d_0 - d_in) / h)^2``, about the square of the surface
    normal's component along the line, so the line closest to the normal counts most. The
    rule is second-order in the cell size and depends smoothly on the body's parameters
    through the distances (a face changes role only where a distance changes sign).
    """
    big = jnp.asarray(jnp.finfo(q.dtype).max / 4, q.dtype)
    fluid = distance >= 0
    total = jnp.zeros_like(q)
    weights = jnp.zeros_like(q)
    for axis, h in enumerate(spacing):
        for step in (1, -1):
            d_in = _shift(distance, axis, step, big)
            d_far = _shift(distance, axis, -step, big)
            q_far = _shift(q, axis, -step, 0)
            crossing = fluid & (d_in < 0) & (d_far >= 0)
            gap = jnp.where(crossing, distance - d_in, 1)
            theta = jnp.where(crossing, distance / gap, 0)
            weight = jnp.where(crossing, (gap / h) ** 2, 0)
            total = total + weight * q_far * theta / (1 + theta)
            weights = weights + weight
    forced = weights > 0
    value = total / jnp.where(forced, weights, 1)
    return jnp.where(fluid, jnp.where(forced, value, q), 0)


def constrained_faces(distance: Array) -> Array:
    """True on the faces that `direct_forcing` sets: inside the body, or a fluid face with
    an inside neighbour along a grid line whose other neighbour is fluid."""
    big = jnp.asarray(jnp.finfo(distance.dtype).max / 4, distance.dtype)
    fluid = distance >= 0
    constrained = ~fluid
    for axis in range(distance.ndim):
        for step in (1, -1):
            d_in = _shift(distance, axis, step, big)
            d_far = _shift(distance, axis, -step, big)
            constrained = constrained | (fluid & (d_in < 0) & (d_far >= 0))
    return constrained


def closed_cells(constrained: tuple[Array, ...]) -> Array:
    """True on the cells all of whose faces are constrained (their divergence is set by
    the forcing, not by the flow)."""
    closed = None
    for axis, c in enumerate(constrained):
        n = c.shape[axis]
        both = lax.slice_in_dim(c, 0, n - 1, axis=axis) & lax.slice_in_dim(c, 1, n, axis=axis)
        closed = both if closed is None else closed & both
    return closed


def _cell_gradient(chi: Array, axis: int, h: float) -> Array:
    """``d chi / d x_axis`` on the faces normal to ``axis`` (zero beyond the domain)."""
    pad = [(0, 0)] * chi.ndim
    pad[axis] = (1, 1)
    return jnp.diff(jnp.pad(chi, pad), axis=axis) / h


def _face_divergence(faces, spacing) -> Array:
    total = 0
    for axis, (q, h) in enumerate(zip(faces, spacing, strict=True)):
        total = total + jnp.diff(q, axis=axis) / h
    return total


def close_divergence(
    velocity: tuple[Array, ...],
    constrained: tuple[Array, ...],
    closed: Array,
    spacing,
    iterations: int = ITERATIONS,
) -> tuple[Array, ...]:
    """The smallest change of the constrained faces' values (in the least-squares sense,
    a gradient ``grad chi`` of a potential living on the closed cells) that makes every
    closed cell divergence-free; conjugate gradients, ``iterations`` steps."""
    dtype = velocity[0].dtype
    mask = closed.astype(dtype)
    weights = tuple(c.astype(dtype) for c in constrained)

    def operator(chi):  # -div(M grad chi) on the closed cells: symmetric positive definite
        chi = chi * mask
        pairs = enumerate(zip(weights, spacing, strict=True))
        faces = tuple(w * _cell_gradient(chi, a, h) for a, (w, h) in pairs)
        return -_face_divergence(faces, spacing) * mask

    rhs = -_face_divergence(velocity, spacing) * mask
    chi = jnp.zeros_like(rhs)
    r = rhs
    p = r
    rr = jnp.sum(r * r)
    tiny = jnp.finfo(dtype).tiny

    def body(_, carry):
        chi, r, p, rr = carry
        ap = operator(p)
        alpha = rr / jnp.maximum(jnp.sum(p * ap), tiny)
        chi = chi + alpha * p
        r = r - alpha * ap
        rr_new = jnp.sum(r * r)
        p = r + rr_new / jnp.maximum(rr, tiny) * p
        return chi, r, p, rr_new

    chi, *_ = lax.fori_loop(0, iterations, body, (chi, r, p, rr))
    return tuple(
        q - w * _cell_gradient(chi * mask, a, h)
        for a, (q, w, h) in enumerate(zip(velocity, weights, spacing, strict=True))
    )


def impose_body(
    velocity: tuple[Array, ...], distances: tuple[Array, ...], spacing
) -> tuple[Array, ...]:
    """Face velocities with a resting body imposed: `direct_forcing` on each component
    (``distances``: the body's signed distance on each component's faces), then the
    forced values corrected by `close_divergence`, so that the cells the forcing closes
    carry no mass source."""
    forced = tuple(direct_forcing(q, d, spacing) for q, d in zip(velocity, distances, strict=True))
    constrained = tuple(constrained_faces(d) for d in distances)
    return close_divergence(forced, constrained, closed_cells(constrained), spacing)
