"""Hand-written adjoint of the staggered-grid momentum tendency with upwind and van Leer
advection (the walled grids' general path; central advection has `central_rates`).

The tendency of `IncompressibleNavierStokes` with ``scheme="upwind"`` or ``"van_leer"`` is,
per velocity component ``q_c`` (on the faces normal to axis ``c``),

    rate_c = nu sum_d D2_d P_cd - sum_d D_d (C_cd R_cd) - drag q_c (+ forcing on c = 0),

masked to zero on the boundary faces the boundaries set, plus the convective outflow rate.
``P_cd`` is ``q_c`` with two ghost layers along ``d`` (`pad_normal` for ``d = c``,
`pad_tangential` otherwise), the carrier ``C_cd`` is the mean of neighbouring ``P_dc``
along ``c``, and ``R_cd`` the face value the scheme reconstructs from ``P_cd`` on the
upwind side of ``C_cd``: the neighbour (upwind), or the neighbour plus half its van Leer
slope ``s = 2 l r / (l + r)`` (zero unless ``l r > 0``; ``l``, ``r`` the one-sided
differences).

The backward pass builds each padded field's cotangent in one stencil of the zero-padded
flux cotangents (the reconstruction's, the carriers' means and the second differences) and
folds its two ghost layers each side back onto the field's first and last layers by the
transpose of the padding. At the limiter's kinks it takes autodiff's one-sided choice: the
slope's derivative is zero wherever ``l r <= 0`` (ties included), and a carrier of exactly
zero picks the right-hand state (``velocity > 0`` is False), whose selection has no
derivative. The result equals the autodiff VJP to round-off
(``tests/fluids/test_walls_adjoint.py``).
"""

import jax.numpy as jnp
from jax import lax
from jaxtyping import Array

from ._boundaries import (
    Outflow,
    Periodic,
    Wall,
    first_tangential_axis,
    pad_normal,
    pad_tangential,
)
from ._central_adjoint import (
    _add_layer,
    _difference,
    _input_cotangents,
    _layer,
    _mean,
    _mirror_sign,
    _output_cotangents,
    _second,
    _slice,
    _total,
    _view,
    with_backward,
)
from ._fv_advection import VanLeerInterpolation

__all__ = ["tvd_rates"]


def _frame_along(x: Array, axis: int) -> Array:
    """``x`` with one layer of zeros each side of ``axis``."""
    config = [(0, 0, 0)] * x.ndim
    config[axis] = (1, 1, 0)
    return lax.pad(x, jnp.zeros((), x.dtype), config)


def _slopes(padded: Array, axis: int) -> tuple[Array, Array, Array]:
    """The van Leer slope at padded points ``1 .. n+2`` and its derivatives with respect to
    its left and right differences (all zero where the limiter clips, ``l r <= 0``)."""
    left = _slice(padded, axis, 1, -1) - _slice(padded, axis, 0, -2)
    right = _slice(padded, axis, 2, 0) - _slice(padded, axis, 1, -1)
    positive = left * right > 0
    inverse = jnp.where(positive, 1 / (left + right), 0.0)
    return 2 * left * right * inverse, 2 * (right * inverse) ** 2, 2 * (left * inverse) ** 2


def _faces(padded: Array, slope: Array, carrier: Array, axis: int) -> Array:
    """`VanLeerInterpolation`'s face values from the slopes ``slope`` of `_slopes`."""
    left = _slice(padded, axis, 1, -2) + 0.5 * _slice(slope, axis, 0, -1)
    right = _slice(padded, axis, 2, -1) - 0.5 * _slice(slope, axis, 1, 0)
    return jnp.where(carrier > 0, left, right)


def _padded_cotangent(weights, g_left, g_right, half, g_second, framed, axis):
    """Cotangent of a padded field ``P`` (``n + 4`` along ``axis``): its interior
    (``P[2 : n+2]``) and its ghosts ``P[0], P[1], P[n+2], P[n+3]``.

    ``P`` is read by the face values on its ``n + 1`` interfaces, whose cotangents
    ``g_left`` and ``g_right`` (framed by one zero each side of ``axis``) are those of
    the left state (``P[k+1]``, plus half the slope there) and the right state
    (``P[k+2]``, minus half the slope there); by a carrier, the mean of neighbours
    (cotangent ``2 half``, ``n + 1`` values); and by the second difference (cotangent
    ``g_second``: ``g`` times the weight, given `_frame`d as ``framed``, ``n`` values).
    """

    def left(start, stop):  # g_left[k] for k = m - 1 + start .. (the interior m = 2 .. n+1)
        return _slice(g_left, axis, start + 2, stop - 1)

    def right(start, stop):
        return _slice(g_right, axis, start + 1, stop - 2)

    interior = left(0, 0) + right(0, 0)
    interior = interior + _slice(half, axis, 1, 0) + _slice(half, axis, 0, -1)
    interior = interior + g_second * (_view(framed, axis, 2, 0) + _view(framed, axis, 0, -2))
    g = _view(framed, axis, 1, -1)
    first, last = _layer(g_second * g, axis, 0), _layer(g_second * g, axis, -1)
    low = _layer(g_left, axis, 1) + _layer(half, axis, 0) + first  # P[1]
    high = _layer(g_right, axis, -2) + _layer(half, axis, -1) + last  # P[n+2]
    if weights is None:  # upwind
        return interior, (None, low, high, None)
    # the slope s[j] (j = 1 .. n+2) carries g_s[j] = (g_left[j-1] - g_right[j-2]) / 2 and
    # reads P[j-1], P[j], P[j+1] with weights -w_l, w_l - w_r, w_r
    w_left, w_right = weights
    s_here = 0.5 * (left(0, 0) - right(0, 0))  # g_s[m]
    s_next = 0.5 * (left(1, 1) - right(1, 1))  # g_s[m+1]
    s_last = 0.5 * (left(-1, -1) - right(-1, -1))  # g_s[m-1]
    interior = interior + s_here * (_slice(w_left, axis, 1, -1) - _slice(w_right, axis, 1, -1))
    interior = (
        interior - s_next * _slice(w_left, axis, 2, 0) + s_last * _slice(w_right, axis, 0, -2)
    )

    def w(x, index):
        return _layer(x, axis, index)

    s1 = 0.5 * _layer(g_left, axis, 1)  # g_s[1] (g_right[-1] = 0)
    s2 = 0.5 * (_layer(g_left, axis, 2) - _layer(g_right, axis, 1))
    s_n1 = 0.5 * (_layer(g_left, axis, -2) - _layer(g_right, axis, -3))  # g_s[n+1]
    s_n2 = -0.5 * _layer(g_right, axis, -2)  # g_s[n+2] (g_left[n+1] = 0)
    outer_low = -s1 * w(w_left, 0)  # P[0]
    low = low + s1 * (w(w_left, 0) - w(w_right, 0)) - s2 * w(w_left, 1)
    high = high + s_n2 * (w(w_left, -1) - w(w_right, -1)) + s_n1 * w(w_right, -2)
    outer_high = s_n2 * w(w_right, -1)  # P[n+3]
    return interior, (outer_low, low, high, outer_high)


def _add_layers(x: Array, pairs, axis: int) -> Array:
    """``x`` with each ``(index, layer)``'s layer added to its layer ``index`` along ``axis``
    (``layer`` None: nothing), one update per index."""
    total = {}
    for index, layer in pairs:
        if layer is not None:
            index = index % x.shape[axis]
            total[index] = layer if index not in total else total[index] + layer
    for index, layer in total.items():
        x = _add_layer(x, layer, axis, index)
    return x


def _scaled(factor, layer):
    return None if layer is None else factor * layer


def _fold_tangential(x, ghosts, axis, lo, hi) -> Array:
    """Add the transpose of `pad_tangential` on its ghosts ``P[0], P[1], P[n+2], P[n+3]``
    (cotangents ``ghosts``, None for none) to ``x``."""
    g0, g1, g2, g3 = ghosts
    if isinstance(lo, Periodic):  # q[n-2], q[n-1] | q | q[0], q[1]
        return _add_layers(x, ((-2, g0), (-1, g1), (0, g2), (1, g3)), axis)
    s, t = _mirror_sign(lo), _mirror_sign(hi)  # mirrors of q[1], q[0] | q | q[n-1], q[n-2]
    pairs = ((1, _scaled(s, g0)), (0, _scaled(s, g1)), (-1, _scaled(t, g2)), (-2, _scaled(t, g3)))
    return _add_layers(x, pairs, axis)


def _fold_normal(x, ghosts, axis, lo, hi) -> Array:
    """Add the transpose of `pad_normal` on its ghosts ``P[0], P[1], P[N+2], P[N+3]``
    (cotangents ``ghosts``, None for none) to ``x``."""
    g0, g1, g2, g3 = ghosts
    if isinstance(lo, Periodic):  # q[N-3], q[N-2] | q | q[1], q[2]
        return _add_layers(x, ((-3, g0), (-2, g1), (1, g2), (2, g3)), axis)
    pairs = []
    for side, (outer, inner), (face, near, far) in (
        (lo, (g0, g1), (0, 1, 2)),
        (hi, (g3, g2), (-1, -2, -3)),
    ):
        if isinstance(side, Outflow):  # both ghosts copy the boundary face
            pairs += [(face, outer), (face, inner)]
        else:  # odd reflection: 2 q[face] - q[near], 2 q[face] - q[far]
            pairs += [(face, _scaled(2, inner)), (near, _scaled(-1, inner))]
            pairs += [(face, _scaled(2, outer)), (far, _scaled(-1, outer))]
    return _add_layers(x, pairs, axis)


def _tvd_bwd(residuals, grad_obj, perturbed, vjp_arg):
    del residuals
    velocity, model = vjp_arg
    perturbed_model = perturbed[1]
    ndim = len(velocity)
    spacing = model.grid.spacing
    like = velocity[0]
    van_leer = isinstance(model.scheme, VanLeerInterpolation)
    nu, sides, raw, masked, framed, grads, g_drag = _output_cotangents(velocity, grad_obj, model)
    g_nu = jnp.zeros((), like.dtype)
    g_walls = {}  # (axis, end) -> cotangent of that side's wall velocity

    # P_cd: component c padded along d (normal for d = c, tangential otherwise)
    padded = {}
    for c, q in enumerate(velocity):
        for d in range(ndim):
            if d == c:
                padded[(c, d)] = pad_normal(q, c, *sides[c])
            else:
                padded[(c, d)] = pad_tangential(q, d, *sides[d], component=c)
    # each in memory once: otherwise XLA keeps several slices and differences of each (13
    # full-size arrays for the 4 fields of the 256² cavity); 1.3x faster, upwind 1.5x
    padded = dict(zip(padded, lax.optimization_barrier(tuple(padded.values())), strict=True))
    halves, sides_of_faces, weights = {}, {}, dict.fromkeys(padded)
    for (c, d), field in padded.items():  # component c's flux along d, C_cd R_cd
        h = spacing[d]
        carrier = _mean(padded[(d, c)], c)
        g_flux = _difference(framed[c], d) / h
        g_faces = g_flux * carrier
        upwind = carrier > 0
        framed_sides = (
            _frame_along(jnp.where(upwind, g_faces, 0), d),  # the left states'
            _frame_along(jnp.where(upwind, 0, g_faces), d),  # the right states'
        )
        if van_leer:  # in memory: fused into the slopes' stencil (read 3 times each), the
            # pads' bounds tests make the backward pass 1.4x slower; upwind's (read once
            # each) is 1.4x faster with them fused
            framed_sides = lax.optimization_barrier(framed_sides)
        sides_of_faces[(c, d)] = framed_sides
        if van_leer:
            slope, *weights[(c, d)] = _slopes(field, d)
            faces = _faces(field, slope, carrier, d)
        else:
            faces = model.scheme(field, carrier, d)
        halves[(d, c)] = 0.5 * g_flux * faces  # on the means of P_dc
        if perturbed_model.viscosity:
            g_nu = g_nu + _total(masked[c] * _second(field, velocity[c], d, h))

    folds = []
    for c, d in padded:  # every interior first, then the ghost layers' transposes
        g_left, g_right = sides_of_faces[(c, d)]
        weight = nu / spacing[d] ** 2
        interior, ghosts = _padded_cotangent(
            weights[(c, d)], g_left, g_right, halves[(c, d)], weight, framed[c], d
        )
        grads[c] = grads[c] + interior  # (a fold in between splits the sum: 2x slower)
        folds.append((c, d, ghosts))

    for c, d, ghosts in folds:
        if c == d:
            if not isinstance(sides[d][0], Periodic):
                # the tendency is zero on the boundary faces (masked): the outer ghosts get
                # nothing, nor, without the slopes that read them, the inner ones
                ghosts = (None, *ghosts[1:3], None) if van_leer else (None,) * 4
            grads[c] = _fold_normal(grads[c], ghosts, d, *sides[d])
            continue
        grads[c] = _fold_tangential(grads[c], ghosts, d, *sides[d])
        if c == first_tangential_axis(d):  # a wall's ghosts: 2 U_wall - q
            for end, side in enumerate(sides[d]):
                if isinstance(side, Wall):
                    pair = [g for g in (ghosts[3 * end], ghosts[1 + end]) if g is not None]
                    g_walls[(d, end)] = 2 * sum(jnp.sum(g) for g in pair)

    return _input_cotangents(perturbed, vjp_arg, raw, masked, grads, g_nu, g_drag, g_walls)


tvd_rates = with_backward(_tvd_bwd)
"""The momentum tendency with upwind or van Leer advection and its hand-written backward
pass."""
