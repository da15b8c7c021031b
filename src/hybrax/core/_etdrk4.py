"""Fourth-order exponential time differencing Runge–Kutta (Cox–Matthews / Kassam–Trefethen)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, PyTree

from ._contract import AbstractSemilinearDynamics, AbstractStepper
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
    linear: Array, dt: ArrayLike, *, num_contour_points: int = 32, radius: float = 1.0
) -> ETDRK4Coefficients:
    """ETDRK4 coefficients by the Kassam–Trefethen contour integral.

    Each phi-function is averaged over ``num_contour_points`` points on a circle of
    ``radius`` around ``z = L dt`` in the complex plane, which is free of the cancellation
    the closed forms suffer for small ``|z|`` (Kassam & Trefethen, SIAM J. Sci. Comput.
    26, 2005). Real ``L`` gives real coefficients.

    Parameters
    ----------
    linear
        Diagonal of ``L`` (any shape; real or complex).
    dt
        Time step.
    num_contour_points
        Points on the contour (32 is accurate to round-off in double precision).
    radius
        Contour radius.
    """
    linear = jnp.asarray(linear)
    real_input = not jnp.issubdtype(linear.dtype, jnp.complexfloating)
    ctype = complex_dtype(linear.dtype)
    rtype = jnp.finfo(ctype).dtype
    h = jnp.asarray(dt).astype(rtype)
    theta = (np.arange(1, num_contour_points + 1) - 0.5) / num_contour_points
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


class ETDRK4(AbstractStepper):
    """Fourth-order exponential time differencing Runge–Kutta for stiff semilinear problems.

    Integrates ``du/dt = L u + N(u, t)`` with ``L`` diagonal (an
    `AbstractSemilinearDynamics`) by treating ``L`` exactly and ``N`` with a fourth-order
    Runge–Kutta-like quadrature (Cox & Matthews, J. Comput. Phys. 176, 2002). Stable at
    time steps set by the nonlinear term alone, which makes it the standard choice for
    spectral solvers with diffusion or hyperviscosity.

    The coefficients depend on ``L`` and ``dt``. ``step`` recomputes them each call (always
    right, also when ``L`` carries a parameter being differentiated); `hybrax.rollout`
    calls `prepare` once per rollout so the loop reuses them.

    Parameters
    ----------
    dynamics
        The semilinear right-hand side.
    dt
        Time step (model time units), positive.
    num_contour_points
        Contour points for the coefficient integrals (static).
    coefficients
        Precomputed coefficients (set by `prepare`; leave as ``None``).
    """

    dynamics: AbstractSemilinearDynamics
    dt: ArrayLike
    num_contour_points: int = eqx.field(static=True, default=32)
    coefficients: PyTree[ETDRK4Coefficients] | None = None

    def __check_init__(self):
        if not isinstance(self.dynamics, AbstractSemilinearDynamics):
            raise ValueError(
                "ETDRK4 needs dynamics split as L u + N(u) (an AbstractSemilinearDynamics); "
                f"got {type(self.dynamics).__name__}. Use RK4 for a general right-hand side."
            )

    def _compute_coefficients(self) -> PyTree:
        linear = self.dynamics.linear_operator()

        def per_leaf(lin):
            lin = jnp.asarray(lin)
            if not jnp.issubdtype(lin.dtype, jnp.inexact):
                lin = lin.astype(jnp.result_type(float))
            return etdrk4_coefficients(lin, self.dt, num_contour_points=self.num_contour_points)

        return jax.tree.map(per_leaf, linear)

    def prepare(self) -> ETDRK4:
        if self.coefficients is not None:
            return self
        return ETDRK4(self.dynamics, self.dt, self.num_contour_points, self._compute_coefficients())

    def step(self, state: PyTree) -> PyTree:
        self.dynamics.check_state(state)
        coeffs = self.coefficients
        if coeffs is None:
            coeffs = self._compute_coefficients()
        t0 = time_or_zero(state)
        h = scalar_like(self.dt, t0)
        t_half = t0 + 0.5 * h

        def nonlinear(u, t):
            return self.dynamics.nonlinear(with_time(u, t), t)

        def combine(fn, *trees):
            def leaf(c, u, *rest):
                return fn(c, u, *rest) if is_inexact_array(u) else u

            return jax.tree.map(
                leaf, coeffs, *trees, is_leaf=lambda x: isinstance(x, ETDRK4Coefficients)
            )

        def half_step(c, u, n):
            return mul(c.exp_half, u) + mul(c.q, n)

        n_u = nonlinear(state, t0)
        a = with_time(combine(half_step, state, n_u), t_half)
        n_a = nonlinear(a, t_half)
        b = with_time(combine(half_step, state, n_a), t_half)
        n_b = nonlinear(b, t_half)
        c = combine(lambda k, u, v, nb, nu: half_step(k, v, 2 * nb - nu), state, a, n_b, n_u)
        n_c = nonlinear(with_time(c, t0 + h), t0 + h)

        def full_step(k, u, nu, na, nb, nc):
            return (
                mul(k.exp_full, u)
                + mul(k.f1, nu)
                + mul(2 * k.f2, na + nb)
                + mul(k.f3, nc)
            )

        out = combine(full_step, state, n_u, n_a, n_b, n_c)
        return with_time(out, t0 + h)
