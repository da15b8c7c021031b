"""Hand-written adjoint of the staggered-grid momentum tendency with central advection.

The tendency of `IncompressibleNavierStokes` with ``scheme="central"`` is, per velocity
component ``q_a`` (on the faces normal to axis ``a``),

    rate_a = nu sum_b D2_b P_ab - sum_b D_b F_ab - drag q_a (+ forcing on a = 0),

masked to zero on the boundary faces the boundaries set, plus the convective outflow rate.
``P_ab`` is ``q_a`` with two ghost layers along ``b`` (`pad_normal` for ``b = a``,
`pad_tangential` otherwise), ``F_aa = c_a^2`` with ``c_a`` the mean of neighbouring
``P_aa``, and the edge flux ``F_ab = F_ba = E_ab E_ba`` (``E_ab`` the mean of neighbouring
``P_ab`` along ``b``) is shared by the two components' tendencies.

Reverse-mode autodiff of that code turns every slice into a pad of the cotangent and every
ghost layer into a scatter, about 40 full-size kernels against the forward's 11. The
backward here writes each component's cotangent as one gather stencil of the (zero-padded)
output cotangents: the interior of each padded field's cotangent is a mean of neighbouring
flux cotangents plus the Laplacian's two neighbours, and only the single ghost layer each
side that the central stencils read folds back into the first or last layer, with the sign
of the side's reflection. The result equals the autodiff VJP to round-off
(``tests/fluids/test_walls_adjoint.py``).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array

from hybrax.core import scalar_like

from ._boundaries import (
    _SIDE_NAMES,
    AbstractBoundary,
    Inflow,
    Outflow,
    Periodic,
    Wall,
    first_tangential_axis,
    fixed_normal_mask,
    pad_normal,
    pad_tangential,
)

__all__ = ["central_rates"]


def _slice(x: Array, axis: int, start: int, stop: int) -> Array:
    """``x[start : len + stop]`` along ``axis`` (``stop <= 0``)."""
    return lax.slice_in_dim(x, start, x.shape[axis] + stop, axis=axis)


def _layer(x: Array, axis: int, index: int) -> Array:
    start = index % x.shape[axis]
    return lax.slice_in_dim(x, start, start + 1, axis=axis)


def _add_layer(x: Array, layer: Array, axis: int, index: int) -> Array:
    """``x`` with the size-1 ``layer`` added to its layer ``index`` along ``axis`` (an
    in-place update of one layer, not a full-size pad)."""
    index = index % x.shape[axis]
    starts = [0] * x.ndim
    starts[axis] = index
    return lax.dynamic_update_slice(x, _layer(x, axis, index) + layer, starts)


def _mean(padded: Array, axis: int) -> Array:
    """``0.5 (P[k+1] + P[k+2])`` for ``k = 0..n`` of a field with two ghosts each side."""
    return 0.5 * (_slice(padded, axis, 1, -2) + _slice(padded, axis, 2, -1))


def _second(padded: Array, q: Array, axis: int, h: float) -> Array:
    return (_slice(padded, axis, 1, -3) - 2 * q + _slice(padded, axis, 3, -1)) / h**2


def _view(framed: Array, axis: int, start: int, stop: int) -> Array:
    """A field framed by one layer of zeros on every side (`_frame`), cut to
    ``start : len + stop`` along ``axis`` and to the field itself along the other axes."""
    starts = [1] * framed.ndim
    limits = [n - 1 for n in framed.shape]
    starts[axis] = start
    limits[axis] = framed.shape[axis] + stop
    return lax.slice(framed, starts, limits)


def _frame(g: Array) -> Array:
    """``g`` with one layer of zeros on every side: the cotangent stencils below then read
    it by slices alone (a pad inside a fused stencil costs a bounds test per element)."""
    return lax.pad(g, jnp.zeros((), g.dtype), [(1, 1, 0)] * g.ndim)


def _difference(framed: Array, axis: int) -> Array:
    """``g[k] - g[k-1]`` for ``k = 0..n`` (``g`` zero outside ``0..n-1``): the transpose of
    the flux divergence."""
    return _view(framed, axis, 1, 0) - _view(framed, axis, 0, -1)


def _padded_cotangent(g_mean: Array, framed: Array, axis: int, weight):
    """Cotangent of a padded field ``P`` (``n + 4`` along ``axis``) read by `_mean` (with
    cotangent ``g_mean``, ``n + 1`` values) and by the second difference (cotangent
    ``weight * g``, ``n`` values, ``g`` given `_frame`d): its interior (``P[2 : n+2]``) and
    the one ghost each side the stencils read, ``P[1]`` and ``P[n+2]`` (``P[0]``,
    ``P[n+3]`` get nothing)."""
    interior = 0.5 * (_slice(g_mean, axis, 1, 0) + _slice(g_mean, axis, 0, -1))
    interior = interior + weight * (_view(framed, axis, 2, 0) + _view(framed, axis, 0, -2))
    g = _view(framed, axis, 1, -1)
    low = 0.5 * _layer(g_mean, axis, 0) + weight * _layer(g, axis, 0)
    high = 0.5 * _layer(g_mean, axis, -1) + weight * _layer(g, axis, -1)
    return interior, low, high


def _mirror_sign(side: AbstractBoundary) -> int:
    """Sign of `pad_tangential`'s ghost value against the cell it mirrors."""
    return -1 if isinstance(side, (Wall, Inflow)) else 1


def _fold_tangential(x, low, high, axis, lo, hi) -> Array:
    """Add the transpose of `pad_tangential` on its ghosts ``P[1]``, ``P[n+2]`` (cotangents
    ``low``, ``high``) to ``x``."""
    if isinstance(lo, Periodic):  # P[1] = q[n-1], P[n+2] = q[0]
        return _add_layer(_add_layer(x, low, axis, -1), high, axis, 0)
    x = _add_layer(x, _mirror_sign(lo) * low, axis, 0)
    return _add_layer(x, _mirror_sign(hi) * high, axis, -1)


def _fold_normal(x, low, high, axis, lo, hi) -> Array:
    """Add the transpose of `pad_normal` on its ghosts ``P[1]``, ``P[N+2]`` (cotangents
    ``low``, ``high``) to ``x``."""
    if isinstance(lo, Periodic):  # P[1] = q[N-2], P[N+2] = q[1]
        return _add_layer(_add_layer(x, low, axis, -2), high, axis, 1)
    # Non-periodic sides: the tendency is zero on the boundary faces (masked), so the
    # flux cotangents on the outermost cells vanish and so do ``low`` and ``high``.
    return x


def _total(x: Array) -> Array:
    """The sum of all of ``x``'s values, as a product with a vector of ones: XLA:CPU fuses
    the elementwise expression that makes ``x`` into a plain reduction and runs the
    pair about 3x slower than the expression alone (256 x 257 float32, one core: 97 us
    against 30 us); the product keeps it a vectorised loop (35 us in all)."""
    rows = x.reshape(-1, x.shape[-1])
    return jnp.sum(rows @ jnp.ones(x.shape[-1], x.dtype))


def _reduce_to(g: Array, like) -> Array:
    """``g`` summed over the axes broadcasting added to ``like`` (a number or array)."""
    shape = jnp.shape(like)
    extra = g.ndim - len(shape)
    g = jnp.sum(g, axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return jnp.sum(g, axis=axes, keepdims=True).reshape(shape)


def _output_cotangents(velocity, grad_obj, model):
    """The start every hand-written backward pass of the tendency shares: the output
    cotangents masked to the faces the tendency sets (``masked``) and zero-framed for the
    gather stencils (``framed``), the diagonal terms' contribution to the input cotangents
    (``grads``: the Laplacian's centre and the drag) and the drag's cotangent. Returns
    ``(nu, sides, raw, masked, framed, grads, g_drag)`` (``raw``: the cotangents, zeros
    for ``None``)."""
    like = velocity[0]
    nu = scalar_like(model.viscosity, like)
    drag = scalar_like(model.drag, like)
    sides = [model.boundaries.sides(a) for a in range(len(velocity))]
    raw = [jnp.zeros_like(q) if g is None else g for q, g in zip(velocity, grad_obj, strict=True)]
    masked = []
    for a, (q, g) in enumerate(zip(velocity, raw, strict=True)):
        shape = [1] * q.ndim
        shape[a] = q.shape[a]
        mask = fixed_normal_mask(q.shape[a], *sides[a]).astype(q.dtype).reshape(shape)
        masked.append(g * mask)
    framed = [_frame(gm) for gm in masked]
    diagonal = -2 * nu * sum(1 / h**2 for h in model.grid.spacing) - drag
    grads = [diagonal * gm for gm in masked]
    g_drag = -sum(_total(gm * q) for gm, q in zip(masked, velocity, strict=True))
    return nu, sides, raw, masked, framed, grads, g_drag


def with_backward(backward):
    """The momentum tendency of ``model`` (the general path, `_advection_diffusion`) at the
    face velocities ``velocity``, called as ``rates((velocity, model))``, with the
    hand-written backward pass ``backward(residuals, grad_obj, perturbed, vjp_arg)``
    (equinox `filter_custom_vjp`); the forward pass is the model's own."""

    @eqx.filter_custom_vjp
    def rates(vjp_arg):
        velocity, model = vjp_arg
        return model._advection_diffusion(velocity)

    @rates.def_fwd
    def _forward(perturbed, vjp_arg):
        del perturbed
        return rates.fn(vjp_arg), None

    rates.def_bwd(backward)
    return rates


def _central_bwd(residuals, grad_obj, perturbed, vjp_arg):
    del residuals
    velocity, model = vjp_arg
    perturbed_model = perturbed[1]
    ndim = len(velocity)
    spacing = model.grid.spacing
    like = velocity[0]
    nu, sides, raw, masked, framed, grads, g_drag = _output_cotangents(velocity, grad_obj, model)
    folds = [[] for _ in range(ndim)]  # (fold, low, high, axis, lo, hi) per component
    g_nu = jnp.zeros((), like.dtype)
    g_walls = {}  # (axis, end) -> cotangent of that side's wall velocity

    for a, q in enumerate(velocity):  # along the component's own axis
        lo, hi = sides[a]
        h = spacing[a]
        padded = pad_normal(q, a, lo, hi)
        g_flux = 2 * _mean(padded, a) * _difference(framed[a], a) / h
        interior, low, high = _padded_cotangent(g_flux, framed[a], a, nu / h**2)
        grads[a] = grads[a] + interior
        folds[a].append((_fold_normal, low, high, a, lo, hi))
        if perturbed_model.viscosity:
            second = _second(padded, q, a, h)
            for b in range(ndim):
                if b != a:
                    tangential = pad_tangential(q, b, *sides[b], component=a)
                    second = second + _second(tangential, q, b, spacing[b])
            g_nu = g_nu + _total(masked[a] * second)

    for a in range(ndim):  # the edge flux F_ab = E_ab E_ba shared by components a and b
        for b in range(a + 1, ndim):
            e_ab = _mean(pad_tangential(velocity[a], b, *sides[b], component=a), b)
            e_ba = _mean(pad_tangential(velocity[b], a, *sides[a], component=b), a)
            g_flux = _difference(framed[a], b) / spacing[b] + _difference(framed[b], a) / spacing[a]
            for c, d, other in ((a, b, e_ba), (b, a, e_ab)):  # component c padded along d
                interior, low, high = _padded_cotangent(
                    g_flux * other, framed[c], d, nu / spacing[d] ** 2
                )
                grads[c] = grads[c] + interior
                folds[c].append((_fold_tangential, low, high, d, *sides[d]))
                if c == first_tangential_axis(d):  # a wall's ghost: 2 U_wall - q
                    for end, (side, ghost) in enumerate(zip(sides[d], (low, high), strict=True)):
                        if isinstance(side, Wall):
                            g_walls[(d, end)] = 2 * jnp.sum(ghost)

    for a in range(ndim):  # the ghost layers
        for fold, *args in folds[a]:
            grads[a] = fold(grads[a], *args)
    return _input_cotangents(perturbed, vjp_arg, raw, masked, grads, g_nu, g_drag, g_walls)


central_rates = with_backward(_central_bwd)
"""The momentum tendency with central advection and its hand-written backward pass."""


def _input_cotangents(perturbed, vjp_arg, raw, masked, grads, g_nu, g_drag, g_walls):
    """The end every hand-written backward pass of the tendency shares: the convective
    outflow faces' terms added to ``grads``, then the velocity cotangents (None where not
    perturbed) and the model's (`_model_cotangent`)."""
    velocity, model = vjp_arg
    perturbed_velocity, perturbed_model = perturbed
    g_speeds = {}  # (axis, end) -> cotangent of that side's convective velocity
    for a, q in enumerate(velocity):
        h = model.grid.spacing[a]
        sides = model.boundaries.sides(a)
        for end, (side, face, inner) in enumerate(zip(sides, (0, -1), (1, -2), strict=True)):
            if not (isinstance(side, Outflow) and side.convective_velocity is not None):
                continue
            speed = jnp.asarray(side.convective_velocity, q.dtype)
            g_face = _layer(raw[a], a, face)
            grads[a] = _add_layer(grads[a], -speed * g_face / h, a, face)
            grads[a] = _add_layer(grads[a], speed * g_face / h, a, inner)
            jump = _layer(q, a, face) - _layer(q, a, inner)
            g_speeds[(a, end)] = -jnp.sum(g_face * jump) / h

    g_velocity = tuple(g if p else None for g, p in zip(grads, perturbed_velocity, strict=True))
    g_model = _model_cotangent(
        model,
        perturbed_model,
        g_nu,
        g_drag,
        _reduce_to(masked[0], model.forcing),
        g_walls,
        g_speeds,
    )
    return g_velocity, g_model


def _model_cotangent(model, perturbed, g_nu, g_drag, g_forcing, g_walls, g_speeds):
    """The model-shaped cotangent: the tendency's parameters' entries, zero for every other
    floating leaf, None where ``perturbed`` is False."""

    def zero(x):
        return jnp.zeros_like(x) if eqx.is_inexact_array(x) else x

    def cast(value, leaf):
        return jnp.asarray(value).astype(jnp.result_type(leaf)).reshape(jnp.shape(leaf))

    full = jax.tree.map(zero, model)
    for where, value in (
        (lambda m: m.viscosity, g_nu),
        (lambda m: m.drag, g_drag),
        (lambda m: m.forcing, g_forcing),
    ):
        full = eqx.tree_at(where, full, cast(value, where(model)))
    for field, entries in (("velocity", g_walls), ("convective_velocity", g_speeds)):
        for (axis, end), value in entries.items():

            def where(m, name=_SIDE_NAMES[2 * axis + end], field=field):
                return getattr(getattr(m.boundaries, name), field)

            full = eqx.tree_at(where, full, cast(value, where(model)))
    return jax.tree.map(lambda x, p: x if p else None, full, perturbed)
