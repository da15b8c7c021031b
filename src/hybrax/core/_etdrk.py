"""Exponential time differencing Runge–Kutta schemes of orders 1 to 4 (Cox & Matthews 2002;
the coefficients as in Kassam & Trefethen 2005)."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
from jaxtyping import Array, ArrayLike, PyTree

from ._contract import AbstractSemilinearDynamics, check_tendency
from ._etd_functions import check_contour, etd_values
from ._semilinear import AbstractSemilinearStepper
from ._state import is_inexact_array, mul, scalar_like, time_or_zero, with_time

__all__ = [
    "ETDRK1",
    "ETDRK2",
    "ETDRK3",
    "ETDRK4",
    "ETDCoefficients",
    "ETDRK4Coefficients",
    "etdrk4_coefficients",
]


class ETDCoefficients(eqx.Module):
    """Per-mode coefficients of `ETDRK1`, `ETDRK2` or `ETDRK3` for a diagonal linear part
    ``L`` and step ``h`` (``z = L h``); those a scheme does not use are ``None``."""

    exp_full: Array  # e^z
    exp_half: Array | None = None  # e^{z/2}
    q: Array | None = None  # h phi_1(z/2) / 2
    phi1: Array | None = None  # h phi_1(z)
    phi2: Array | None = None  # h phi_2(z)
    f1: Array | None = None  # h (phi_1 - 3 phi_2 + 4 phi_3)
    f2: Array | None = None  # h (phi_2 - 2 phi_3)
    f3: Array | None = None  # h (4 phi_3 - phi_2)


_ETDRK4_FUNCTIONS = ("exp_full", "exp_half", "q", "f1", "f2", "f3")


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
    values = etd_values(linear, dt, _ETDRK4_FUNCTIONS, num_contour_points, radius)
    return ETDRK4Coefficients(**values)


class AbstractETDRK(AbstractSemilinearStepper):
    """The shared part of the ETD Runge–Kutta schemes: fields, coefficients (the functions
    in ``_functions``, `hybrax.core._etd_functions`), and a ``step`` that evaluates ``N``
    at the start and hands the rest to `_stages` (on the modes ``N`` lives on; the other
    modes are multiplied by ``e^{L dt}``)."""

    dynamics: AbstractSemilinearDynamics
    dt: ArrayLike
    num_contour_points: int | None = eqx.field(static=True, default=None)
    coefficients: PyTree | None = None
    _functions: ClassVar[tuple[str, ...]]

    def __check_init__(self):
        check_contour(self.num_contour_points, 1.0)

    def _leaf_coefficients(self, linear: Array) -> ETDCoefficients:
        return ETDCoefficients(
            **etd_values(linear, self.dt, self._functions, self.num_contour_points)
        )

    def _leaf_propagator(self, coefficients: ETDCoefficients | ETDRK4Coefficients) -> Array:
        return coefficients.exp_full

    @abc.abstractmethod
    def _stages(
        self,
        u: PyTree,
        n_u: PyTree,
        t0: Array,
        h: Array,
        nonlinear: Callable[[PyTree, Array], PyTree],
        combine: Callable[..., PyTree],
    ) -> PyTree:
        """The new state (without its time) from ``u``, ``n_u = N(u, t0)``, ``nonlinear(v,
        t)`` and ``combine(fn, *trees)``, which applies ``fn(coefficients, *leaves)`` leaf
        by leaf to the inexact leaves (others are taken from the first tree)."""

    def step(self, state: PyTree) -> PyTree:
        dynamics = self.dynamics
        dynamics.check_state(state)
        coeffs, propagator = self._stage_coefficients()
        t0 = time_or_zero(state)
        h = scalar_like(self.dt, t0)

        def nonlinear(u, t):
            return dynamics.nonlinear_restricted(with_time(u, t), t)

        def combine(fn, *trees):
            def leaf(c, u, *rest):
                return fn(c, u, *rest) if is_inexact_array(u) else u

            return jax.tree.map(
                leaf,
                coeffs,
                *trees,
                is_leaf=lambda x: isinstance(x, (ETDCoefficients, ETDRK4Coefficients)),
            )

        # on the modes N lives on (all of them unless the model restricts N)
        u = dynamics.restrict(state)
        n_u = nonlinear(u, t0)
        check_tendency(n_u, u, dynamics, "nonlinear")
        out = self._stages(u, n_u, t0, h, nonlinear, combine)
        return with_time(self._finish(state, out, propagator), t0 + h)


class ETDRK1(AbstractETDRK):
    """First-order exponential time differencing (exponential Euler, "ETD1").

    ``u_{n+1} = e^{L h} u_n + h phi_1(L h) N(u_n, t_n)``, ``phi_1(z) = (e^z - 1) / z``
    (Cox & Matthews, J. Comput. Phys. 176, 2002, eq. 7): one evaluation of ``N`` per
    step; exact for ``N`` constant in time. ``L`` is treated exactly, so the step is
    limited by ``N`` alone, as for every scheme of this family (`ETDRK2`, `ETDRK3`,
    `ETDRK4`).

    Parameters
    ----------
    dynamics
        The semilinear right-hand side (an `AbstractSemilinearDynamics`).
    dt
        Time step (model time units), positive.
    num_contour_points
        ``None`` (default) evaluates the coefficients by Taylor series near zero and
        closed forms elsewhere; an int uses the Kassam–Trefethen contour integral with
        that many points (static). See `etdrk4_coefficients`.
    coefficients
        Precomputed coefficients (set by `prepare`; leave as ``None``).
    Examples
    --------
    >>> import hybrax
    >>> from hybrax.fluids import NavierStokes2D
    >>> model = NavierStokes2D.kolmogorov(num_points=32)
    >>> final, _ = hybrax.rollout(hybrax.ETDRK1(model, 0.01), model.initial_state(), 5,
    ...                           save_every=None)
    >>> round(float(final.time), 6)
    0.05
    """

    order: ClassVar[int] = 1
    _functions = ("exp_full", "phi1")

    def _stages(self, u, n_u, t0, h, nonlinear, combine):
        return combine(lambda c, u, n: mul(c.exp_full, u) + mul(c.phi1, n), u, n_u)


class ETDRK2(AbstractETDRK):
    """Second-order exponential time differencing Runge–Kutta ("ETD2RK").

    Cox & Matthews (J. Comput. Phys. 176, 2002, eqs. 20 and 22), two evaluations of ``N``
    per step::

        a       = e^{L h} u_n + h phi_1(L h) N(u_n, t_n)
        u_{n+1} = a + h phi_2(L h) (N(a, t_n + h) - N(u_n, t_n))

    with ``phi_2(z) = (e^z - 1 - z) / z^2``. Half the work of `ETDRK4` per step, at
    second order; exponax's default for its stepper (``order=2``).

    Parameters
    ----------
    dynamics
        The semilinear right-hand side (an `AbstractSemilinearDynamics`).
    dt
        Time step (model time units), positive.
    num_contour_points
        ``None`` (default) evaluates the coefficients by Taylor series near zero and
        closed forms elsewhere; an int uses the Kassam–Trefethen contour integral with
        that many points (static). See `etdrk4_coefficients`.
    coefficients
        Precomputed coefficients (set by `prepare`; leave as ``None``).
    Examples
    --------
    >>> import hybrax
    >>> from hybrax.fluids import NavierStokes2D
    >>> model = NavierStokes2D.kolmogorov(num_points=32)
    >>> final, _ = hybrax.rollout(hybrax.ETDRK2(model, 0.01), model.initial_state(), 4,
    ...                           save_every=None)
    >>> final.field_hat.shape
    (32, 17)
    """

    order: ClassVar[int] = 2
    _functions = ("exp_full", "phi1", "phi2")

    def _stages(self, u, n_u, t0, h, nonlinear, combine):
        a = combine(lambda c, u, n: mul(c.exp_full, u) + mul(c.phi1, n), u, n_u)
        n_a = nonlinear(a, t0 + h)
        return combine(lambda c, a, na, nu: a + mul(c.phi2, na - nu), a, n_a, n_u)


class ETDRK3(AbstractETDRK):
    """Third-order exponential time differencing Runge–Kutta ("ETD3RK").

    Cox & Matthews (J. Comput. Phys. 176, 2002, eqs. 23-25), three evaluations of ``N``
    per step::

        a       = e^{L h/2} u_n + (h/2) phi_1(L h/2) N(u_n, t_n)
        b       = e^{L h} u_n + h phi_1(L h) (2 N(a, t_n + h/2) - N(u_n, t_n))
        u_{n+1} = e^{L h} u_n + f_1 N(u_n, t_n) + 4 f_2 N(a, t_n + h/2) + f_3 N(b, t_n + h)

    with `ETDRK4`'s weights ``f_1 = h (phi_1 - 3 phi_2 + 4 phi_3)``,
    ``f_2 = h (phi_2 - 2 phi_3)``, ``f_3 = h (4 phi_3 - phi_2)`` (in their closed forms,
    which do not cancel for stiff modes).

    Parameters
    ----------
    dynamics
        The semilinear right-hand side (an `AbstractSemilinearDynamics`).
    dt
        Time step (model time units), positive.
    num_contour_points
        ``None`` (default) evaluates the coefficients by Taylor series near zero and
        closed forms elsewhere; an int uses the Kassam–Trefethen contour integral with
        that many points (static). See `etdrk4_coefficients`.
    coefficients
        Precomputed coefficients (set by `prepare`; leave as ``None``).
    Examples
    --------
    >>> import hybrax
    >>> from hybrax.fluids import NavierStokes2D
    >>> model = NavierStokes2D.kolmogorov(num_points=32)
    >>> final, _ = hybrax.rollout(hybrax.ETDRK3(model, 0.01), model.initial_state(), 5,
    ...                           save_every=None)
    >>> model.vorticity(final).shape
    (32, 32)
    """

    order: ClassVar[int] = 3
    _functions = ("exp_full", "exp_half", "q", "phi1", "f1", "f2", "f3")

    def _stages(self, u, n_u, t0, h, nonlinear, combine):
        t_half = t0 + 0.5 * h
        a = combine(lambda c, u, n: mul(c.exp_half, u) + mul(c.q, n), u, n_u)
        n_a = nonlinear(a, t_half)
        b = combine(lambda c, u, na, nu: mul(c.exp_full, u) + mul(c.phi1, 2 * na - nu), u, n_a, n_u)
        n_b = nonlinear(b, t0 + h)

        def last(c, u, nu, na, nb):
            return mul(c.exp_full, u) + mul(c.f1, nu) + mul(4 * c.f2, na) + mul(c.f3, nb)

        return combine(last, u, n_u, n_a, n_b)


class ETDRK4(AbstractETDRK):
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

    order: ClassVar[int] = 4
    _functions = _ETDRK4_FUNCTIONS

    def _leaf_coefficients(self, linear: Array) -> ETDRK4Coefficients:
        return etdrk4_coefficients(linear, self.dt, num_contour_points=self.num_contour_points)

    def _stages(self, u, n_u, t0, h, nonlinear, combine):
        t_half = t0 + 0.5 * h

        def half_step(c, u, n):
            return mul(c.exp_half, u) + mul(c.q, n)

        a = combine(half_step, u, n_u)
        n_a = nonlinear(a, t_half)
        b = combine(half_step, u, n_a)
        n_b = nonlinear(b, t_half)
        c = combine(lambda k, u, v, nb, nu: half_step(k, v, 2 * nb - nu), u, a, n_b, n_u)
        n_c = nonlinear(c, t0 + h)

        def full_step(k, u, nu, na, nb, nc):
            return mul(k.exp_full, u) + mul(k.f1, nu) + mul(2 * k.f2, na + nb) + mul(k.f3, nc)

        return combine(full_step, u, n_u, n_a, n_b, n_c)
