"""Fourth-order exponential time differencing Runge–Kutta (Cox–Matthews / Kassam–Trefethen)."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, PyTree

from ._contract import AbstractSemilinearDynamics, check_tendency
from ._errors import ConfigurationError
from ._parameters import check_parameter
from ._semilinear import AbstractSemilinearStepper
from ._state import complex_dtype, is_inexact_array, mul, scalar_like, time_or_zero, with_time

__all__ = ["ETDRK4", "etdrk4_coefficients"]


class ETDRK4Coefficients(eqx.Module):
    """Per-mode coefficients of ETDRK4 for a diagonal linear part ``L`` and step ``h``."""

    exp_full: Array  # e^{L h}
    exp_half: Array  # e^{L h / 2}
    q: Array  # h * phi_1(L h / 2) / 2  (half-step weight)
    f1: Array
    f2: Array
    f3: Array


def etdrk4_coefficients(
    linear: Array,
    dt: ArrayLike,
    *,
    num_contour_points: int | None = None,
    radius: float = 1.0,
) -> ETDRK4Coefficients:
    """ETDRK4 coefficients for ``z = L dt``, free of cancellation near ``z = 0``.

    The coefficients are ``E = e^z``, ``E2 = e^{z/2}``, ``Q = dt/2 phi_1(z/2)`` and
    ``f1 = dt (phi_1 - 3 phi_2 + 4 phi_3)``, ``f2 = dt (phi_2 - 2 phi_3)``,
    ``f3 = dt (-phi_2 + 4 phi_3)`` (Cox & Matthews 2002), with
    ``phi_k(z) = sum_n z^n / (n + k)!``. Evaluated naively, the closed forms lose all
    accuracy as ``|z| -> 0`` (e.g. ``(e^z - 1 - z - z^2/2) / z^3``).

    Two stable evaluations:

    - default (``num_contour_points=None``): the Taylor series (28 terms, Horner) where
      ``|z| < 2`` and the closed forms elsewhere: two exponentials per mode.
    - ``num_contour_points=M``: the Kassam–Trefethen contour integral, averaging each
      function over ``M`` points on a circle of ``radius`` around ``z`` (Kassam &
      Trefethen, SIAM J. Sci. Comput. 26, 2005). Same accuracy, ``M`` times the work.

    Real ``L`` gives real coefficients; complex ``L`` (dispersive or advective linear
    parts) complex ones.

    Parameters
    ----------
    linear
        Diagonal of ``L`` (any shape; real or complex).
    dt
        Time step.
    num_contour_points
        ``None`` for series/closed forms, or the number of contour points (32 is accurate
        to round-off in double precision).
    radius
        Contour radius (contour method only).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> c = etdrk4_coefficients(jnp.array([0.0, -1.0, -100.0]), 0.1)
    >>> c.f1.shape
    (3,)
    """
    _check_contour(num_contour_points, radius)
    linear = jnp.asarray(linear)
    real_input = not jnp.issubdtype(linear.dtype, jnp.complexfloating)
    ctype = complex_dtype(linear.dtype)
    rtype = jnp.finfo(ctype).dtype
    h = jnp.asarray(dt).astype(rtype)
    if num_contour_points is not None:
        return _contour_coefficients(linear, h, num_contour_points, radius, real_input, ctype)
    z = linear * h.astype(linear.dtype)
    hz = h.astype(z.dtype)
    q, f1, f2, f3 = _etd_functions(z)
    return ETDRK4Coefficients(
        exp_full=jnp.exp(z),
        exp_half=jnp.exp(z / 2),
        q=hz * q,
        f1=hz * f1,
        f2=hz * f2,
        f3=hz * f3,
    )


def _check_contour(num_contour_points, radius) -> None:
    if num_contour_points is not None and (
        isinstance(num_contour_points, bool)
        or not isinstance(num_contour_points, int)
        or num_contour_points < 1
    ):
        raise ConfigurationError(
            f"num_contour_points must be None (series) or an int >= 1 (32 is accurate to "
            f"round-off), got {num_contour_points!r}"
        )
    check_parameter(radius, "radius", positive=True, scalar=True, example="radius=1.0")


_SERIES_RADIUS = 2.0
_TAYLOR_TERMS = 28


def _series_coefficients() -> dict[str, np.ndarray]:
    """Taylor coefficients (of ``z^n``) of ``Q/h``, ``f1/h``, ``f2/h``, ``f3/h``."""
    n = np.arange(_TAYLOR_TERMS)
    inv = np.array([1 / math.factorial(int(m)) for m in range(_TAYLOR_TERMS + 3)])
    phi = {k: inv[n + k] for k in (1, 2, 3)}  # phi_k(z) = sum z^n / (n+k)!
    return {
        "q": 0.5 * phi[1] / 2.0**n,  # (1/2) phi_1(z/2)
        "f1": phi[1] - 3 * phi[2] + 4 * phi[3],
        "f2": phi[2] - 2 * phi[3],
        "f3": 4 * phi[3] - phi[2],
    }


_SERIES = _series_coefficients()


def _etd_functions(z: Array) -> tuple[Array, Array, Array, Array]:
    """``Q/h, f1/h, f2/h, f3/h`` at ``z``: Taylor series for ``|z| < 2``, the closed forms
    of Cox & Matthews elsewhere.

    The closed forms are used as written (not as sums of phi-functions, whose leading
    terms cancel for large ``|z|``); near zero they cancel instead, which the series
    avoids. Both branches get safe arguments (the series 0, the closed forms 2), so
    nothing overflows or divides by zero and gradients through `jnp.where` stay finite.
    """
    small = jnp.abs(z) < _SERIES_RADIUS
    zs = jnp.where(small, z, jnp.zeros_like(z))
    zc = jnp.where(small, jnp.full_like(z, _SERIES_RADIUS), z)

    def series(name):
        coefficients = _SERIES[name]
        total = jnp.full_like(zs, float(coefficients[-1]))
        for c in coefficients[-2::-1]:
            total = total * zs + float(c)
        return total

    e, e_half = jnp.exp(zc), jnp.exp(zc / 2)
    z3 = zc**3
    closed = {
        "q": (e_half - 1) / zc,
        "f1": (-4 - zc + e * (4 - 3 * zc + zc**2)) / z3,
        "f2": (2 + zc + e * (zc - 2)) / z3,
        "f3": (-4 - 3 * zc - zc**2 + e * (4 - zc)) / z3,
    }
    return tuple(jnp.where(small, series(name), closed[name]) for name in ("q", "f1", "f2", "f3"))


def _contour_coefficients(linear, h, num_points, radius, real_input, ctype):
    theta = (np.arange(1, num_points + 1) - 0.5) / num_points
    roots = jnp.asarray(radius * np.exp(2j * np.pi * theta), dtype=ctype)
    hc = h.astype(ctype)
    z0 = linear.astype(ctype) * hc
    z = z0[..., None] + roots  # contour around each L h
    ez = jnp.exp(z)
    ez2 = jnp.exp(z / 2)
    z3 = z**3

    def h_mean(x):  # h times the contour average
        m = hc * jnp.mean(x, axis=-1)
        return m.real if real_input else m

    q = h_mean((ez2 - 1) / z)
    f1 = h_mean((-4 - z + ez * (4 - 3 * z + z**2)) / z3)
    f2 = h_mean((2 + z + ez * (z - 2)) / z3)
    f3 = h_mean((-4 - 3 * z - z**2 + ez * (4 - z)) / z3)
    exp_full = jnp.exp(z0)
    exp_half = jnp.exp(z0 / 2)
    if real_input:
        exp_full, exp_half = exp_full.real, exp_half.real
    return ETDRK4Coefficients(exp_full, exp_half, q, f1, f2, f3)


class ETDRK4(AbstractSemilinearStepper):
    """Fourth-order exponential time differencing Runge–Kutta for stiff semilinear problems.

    Integrates ``du/dt = L u + N(u, t)`` with ``L`` diagonal (an
    `AbstractSemilinearDynamics`) by treating ``L`` exactly and ``N`` with a fourth-order
    Runge–Kutta-like quadrature (Cox & Matthews, J. Comput. Phys. 176, 2002). Stable at
    time steps set by the nonlinear term alone, which makes it the standard choice for
    spectral solvers with diffusion or hyperviscosity.

    The coefficients depend on ``L`` and ``dt``. ``step`` recomputes them each call (always
    right, also when ``L`` carries a parameter being differentiated); `hybrax.rollout`
    calls `prepare` once per rollout so the loop reuses them. For a model whose ``N`` lives
    on some of its modes only (`AbstractSemilinearDynamics.nonlinear_is_restricted`, e.g.
    `hybrax.fluids.NavierStokes3D` under the 2/3 rule) the stages run on those modes and
    the others are multiplied by ``e^{L dt}``: the same result with less memory traffic.

    Parameters
    ----------
    dynamics
        The semilinear right-hand side.
    dt
        Time step (model time units), positive.
    num_contour_points
        ``None`` (default) evaluates the coefficients by Taylor series near zero and
        closed forms elsewhere; an int uses the Kassam–Trefethen contour integral with
        that many points (static). See `etdrk4_coefficients`.
    coefficients
        Precomputed coefficients (set by `prepare`; leave as ``None``).
    """

    dynamics: AbstractSemilinearDynamics
    dt: ArrayLike
    num_contour_points: int | None = eqx.field(static=True, default=None)
    coefficients: PyTree[ETDRK4Coefficients] | None = None
    order = 4

    def __check_init__(self):
        _check_contour(self.num_contour_points, 1.0)

    def _leaf_coefficients(self, linear: Array) -> ETDRK4Coefficients:
        return etdrk4_coefficients(linear, self.dt, num_contour_points=self.num_contour_points)

    def _leaf_propagator(self, coefficients: ETDRK4Coefficients) -> Array:
        return coefficients.exp_full

    def step(self, state: PyTree) -> PyTree:
        dynamics = self.dynamics
        dynamics.check_state(state)
        coeffs, propagator = self._stage_coefficients()
        t0 = time_or_zero(state)
        h = scalar_like(self.dt, t0)
        t_half = t0 + 0.5 * h

        def nonlinear(u, t):
            return dynamics.nonlinear_restricted(with_time(u, t), t)

        def combine(fn, *trees):
            def leaf(c, u, *rest):
                return fn(c, u, *rest) if is_inexact_array(u) else u

            return jax.tree.map(
                leaf, coeffs, *trees, is_leaf=lambda x: isinstance(x, ETDRK4Coefficients)
            )

        def half_step(c, u, n):
            return mul(c.exp_half, u) + mul(c.q, n)

        # on the modes N lives on (all of them unless the model restricts N)
        u = dynamics.restrict(state)
        n_u = nonlinear(u, t0)
        check_tendency(n_u, u, dynamics, "nonlinear")
        a = with_time(combine(half_step, u, n_u), t_half)
        n_a = nonlinear(a, t_half)
        b = with_time(combine(half_step, u, n_a), t_half)
        n_b = nonlinear(b, t_half)
        c = combine(lambda k, u, v, nb, nu: half_step(k, v, 2 * nb - nu), u, a, n_b, n_u)
        n_c = nonlinear(with_time(c, t0 + h), t0 + h)

        def full_step(k, u, nu, na, nb, nc):
            return mul(k.exp_full, u) + mul(k.f1, nu) + mul(2 * k.f2, na + nb) + mul(k.f3, nc)

        out = combine(full_step, u, n_u, n_a, n_b, n_c)
        return with_time(self._finish(state, out, propagator), t0 + h)
