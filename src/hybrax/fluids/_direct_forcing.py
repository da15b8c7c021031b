"""Direct-forcing immersed boundary: linear interpolation along grid lines (Fadlun et al.
2000) or along the surface normal through an image point (Tseng & Ferziger 2003; Mittal et
al. 2008)."""

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, ArrayLike

__all__ = [
    "closed_cells",
    "constrained_faces",
    "direct_forcing",
    "image_point_forcing",
    "impose_body",
]

ITERATIONS = 30  # conjugate-gradient steps of close_divergence
IMAGE_REACH = (2.0, 3.0)  # distances of the image points from the surface, in cells
# fixed-point sweeps over forced faces that sit in each other's stencils, per forcing; the
# forcing runs at every stage, each starting from the last one's values, so a steady state
# is the same fixed point with one sweep as with three (DFG 2D-1 at 48 cells: the same
# c_D, c_L to 5 digits), at less cost
IMAGE_SWEEPS = 1
IMAGE_BLEND = 0.5  # how deep (in cells) a grid-line neighbour sinks before its face is forced


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


def surface_normals(obstacle, points: tuple[Array, ...]) -> tuple[Array, ...]:
    """Unit outward normals ``grad sdf / |grad sdf|`` of ``obstacle`` at ``points`` (the
    signed distance is pointwise, so the gradient of its sum is the gradient at each point)."""
    gradient = jax.grad(
        lambda *p: jnp.sum(obstacle.signed_distance(*p)), argnums=tuple(range(len(points)))
    )(*points)
    tiny = jnp.finfo(points[0].dtype).tiny
    norm = jnp.sqrt(sum(g * g for g in gradient) + tiny)
    return tuple(g / norm for g in gradient)


def _face_stencil(points, axis: int, spacing, shape):
    """Corners ``(weight, index)`` of the (bi/tri)linear stencil of ``points`` on the faces
    normal to ``axis`` (face ``i`` along ``b`` sits at ``(i + 1/2) h_b``, or ``i h_b`` along
    ``b = axis``); points beyond the outermost faces use the edge values."""
    dtype = points[0].dtype
    corners = [(jnp.ones((), dtype), ())]
    for b, (x, h, n) in enumerate(zip(points, spacing, shape, strict=True)):
        f = jnp.clip(x / h - (0.0 if b == axis else 0.5), 0.0, n - 1.0)
        i = jnp.clip(jnp.floor(f).astype(jnp.int32), 0, max(n - 2, 0))
        a = f - i.astype(dtype)
        corners = [
            (w * weight, (*index, i + shift))
            for w, index in corners
            for shift, weight in ((0, 1 - a), (1, a))
        ]
    return corners


def image_point_forcing(
    q: Array,
    distance: Array,
    normal: tuple[Array, ...],
    points: tuple[Array, ...],
    axis: int,
    spacing,
    reach: tuple[float, ...] = IMAGE_REACH,
    sweeps: int = IMAGE_SWEEPS,
    blend: ArrayLike = IMAGE_BLEND,
) -> Array:
    """One velocity component ``q`` (on the faces normal to ``axis``, at ``points``) with
    the body imposed through image points along the surface normal.

    Faces inside the body (``distance < 0``) get 0. Each forced face (`constrained_faces`:
    a fluid face with an inside neighbour along a grid line) at distance ``d`` from the
    surface takes the value at ``d`` of the polynomial in the distance along its outward
    unit ``normal`` (`surface_normals`) that is zero on the surface and passes through the
    image points ``x + (L_k - d) n``, ``L_k = reach[k] h`` from the surface (``h`` the
    largest spacing; the default, 2 and 3 cells, makes it a quadratic). Each image value
    is the (bi/tri)linear interpolation of the component's fluid faces (inside faces left
    out, the weights renormalised). A face
    whose inside neighbour lies less than ``blend`` cells deep (measured by its signed
    distance) is only partly forced: its value is ``w forced + (1 - w) q``,
    ``w = depth / blend`` (the deepest such neighbour counts), so a face turns from free to
    forced continuously as the body moves instead of jumping by the interpolation error;
    ``blend = 0`` forces every such face fully. Forced faces in each other's stencils are
    resolved by ``sweeps`` fixed-point sweeps starting from ``q`` (they contract: the
    weight of the near image point is at most 0.75 for the default reach; the forcing runs
    at every stage, so the sweeps carry on from step to step). Exact for a field linear in
    the coordinates that vanishes on a flat surface (bilinear, with the image points'
    interpolation; with ``sweeps`` enough for the forced faces' mutual dependence to
    converge).
    """
    h = max(spacing)
    big = jnp.asarray(jnp.finfo(distance.dtype).max / 4, distance.dtype)
    fluid = distance >= 0
    forced = constrained_faces(distance) & fluid
    dtype = q.dtype
    share = jnp.zeros_like(q)  # how far each forced face is forced, 0 .. 1
    for b, hb in enumerate(spacing):
        for step in (1, -1):
            d_in = _shift(distance, b, step, big)
            crossing = fluid & (d_in < 0) & (_shift(distance, b, -step, big) >= 0)
            positive = blend > 0
            width = jnp.where(positive, blend * hb, 1)
            depth = jnp.where(positive, jnp.clip(-d_in / width, 0, 1), 1)
            share = jnp.maximum(share, jnp.where(crossing, depth, 0))
    d = jnp.where(forced, distance, 0)
    nodes = [r * h for r in reach]
    stencils = []
    for k, length in enumerate(nodes):
        # Lagrange weight of this node in the polynomial through zero on the surface
        coefficient = d / length
        for other in nodes[:k] + nodes[k + 1 :]:
            coefficient = coefficient * (d - other) / (length - other)
        image = tuple(x + (length - d) * n for x, n in zip(points, normal, strict=True))
        corners = _face_stencil(image, axis, spacing, q.shape)
        weights = [w * fluid[index].astype(dtype) for w, index in corners]
        total = sum(weights)
        scale = jnp.where(forced & (total > 0), coefficient / jnp.where(total > 0, total, 1), 0)
        stencils += [(w * scale, index) for w, (_, index) in zip(weights, corners, strict=True)]
    free = jnp.where(fluid, q, 0)

    def sweep(_, work):
        value = sum(w * work[index] for w, index in stencils)
        return jnp.where(forced, share * value + (1 - share) * free, work)

    # a loop, not unrolled: each sweep reads the last one's result 8 times (2-D), so XLA's
    # CPU elemental emitter, fusing the unrolled sweeps, grew as 8^sweeps (12: > 24 GB)
    return lax.fori_loop(0, sweeps, sweep, free)


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
    # converged (or nothing to close): stop, so that neither the values nor their
    # derivatives divide by a vanishing residual (a 0/0 there makes tangents NaN)
    floor = jnp.finfo(dtype).eps ** 1.5 * rr

    def body(_, carry):
        chi, r, p, rr = carry
        ap = operator(p)
        pap = jnp.sum(p * ap)
        active = (rr > floor) & (pap > 0)
        alpha = jnp.where(active, rr / jnp.where(active, pap, 1), 0)
        chi = chi + alpha * p
        r = r - alpha * ap
        rr_new = jnp.sum(r * r)
        beta = jnp.where(active, rr_new / jnp.where(active, rr, 1), 0)
        p = jnp.where(active, r + beta * p, p)
        return chi, r, p, rr_new

    chi, *_ = lax.fori_loop(0, iterations, body, (chi, r, p, rr))
    return tuple(
        q - w * _cell_gradient(chi * mask, a, h)
        for a, (q, w, h) in enumerate(zip(velocity, weights, spacing, strict=True))
    )


def impose_body(
    velocity: tuple[Array, ...],
    distances: tuple[Array, ...],
    spacing,
    geometry: tuple[tuple[tuple[Array, ...], tuple[Array, ...]], ...] | None = None,
) -> tuple[Array, ...]:
    """Face velocities with a resting body imposed: `direct_forcing` on each component
    (``distances``: the body's signed distance on each component's faces), or
    `image_point_forcing` when ``geometry`` gives each component's ``(normals, points)``,
    then the forced values corrected by `close_divergence`, so that the cells the forcing
    closes carry no mass source."""
    if geometry is None:
        pairs = zip(velocity, distances, strict=True)
        forced = tuple(direct_forcing(q, d, spacing) for q, d in pairs)
    else:
        forced = tuple(
            image_point_forcing(q, d, normal, points, axis, spacing)
            for axis, (q, d, (normal, points)) in enumerate(
                zip(velocity, distances, geometry, strict=True)
            )
        )
    constrained = tuple(constrained_faces(d) for d in distances)
    closed = closed_cells(constrained)
    if geometry is not None:  # cells wholly inside the body are left alone
        closed = closed & ~closed_cells(tuple(d < 0 for d in distances))
    return close_divergence(forced, constrained, closed, spacing)
