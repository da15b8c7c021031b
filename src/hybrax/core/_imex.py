"""Implicit–explicit Runge–Kutta: Crank–Nicolson for the linear part, low-storage RK4 for
the rest (Carpenter–Kennedy "CN-RK4", as in jax-cfd and Kochkov et al. 2021)."""

from __future__ import annotations

from functools import partial
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, PyTree

from ._contract import AbstractSemilinearDynamics, check_tendency
from ._semilinear import AbstractSemilinearStepper
from ._state import is_inexact_array, mul, scalar_like, time_or_zero, with_time

__all__ = ["CrankNicolsonRK4"]


class _StageCoefficients(eqx.Module):
    """Per-mode factors of one stage: ``u <- growth * u + weight * h``."""

    growth: Array  # (1 + mu L) / (1 - mu L)
    weight: Array  # gamma dt / (1 - mu L)


class CrankNicolsonRK4(AbstractSemilinearStepper):
    """Crank–Nicolson / low-storage RK4 implicit–explicit scheme for ``du/dt = L u + N(u, t)``.

    The diagonal linear part ``L`` (viscosity, drag, hyperviscosity) is treated by the
    trapezoidal (Crank–Nicolson) rule over each of five stages, the nonlinear part ``N``
    explicitly by the Carpenter–Kennedy five-stage, fourth-order, two-register
    Runge–Kutta method (Carpenter & Kennedy 1994, NASA TM-109112; Canuto et al. 2007,
    App. D.3). Stage ``k`` (``h_0 = 0``)::

        h_k     = N(u_k, t + alpha_k dt) + beta_k h_{k-1}
        mu_k    = (alpha_{k+1} - alpha_k) dt / 2
        u_{k+1} = ((1 + mu_k L) u_k + gamma_k dt h_k) / (1 - mu_k L)

    Accuracy: fourth order in ``dt`` for the explicit part, second order for the implicit
    part (and for the coupling), which suits turbulence where advection dominates the
    error. It is A-stable in ``L``, so the step is limited by the advective CFL number only
    (Courant numbers up to about 1 are stable for 2D Navier–Stokes). One step costs five
    evaluations of ``N``. `ETDRK4` is the alternative with four evaluations and an exact
    linear part.

    Implicit solves are pointwise divisions because ``L`` is diagonal. The per-stage
    factors depend on ``L`` and ``dt`` only: ``step`` computes them each call (always
    right, also when ``L`` carries a parameter being differentiated), `prepare` (called by
    `hybrax.rollout`) computes them once per rollout.

    Parameters
    ----------
    dynamics
        The semilinear right-hand side (an `AbstractSemilinearDynamics`).
    dt
        Time step (model time units), positive.
    coefficients
        Precomputed stage factors (set by `prepare`; leave as ``None``).

    Examples
    --------
    >>> import hybrax
    >>> from hybrax.fluids import NavierStokes2D
    >>> model = NavierStokes2D.kolmogorov(num_points=64)
    >>> stepper = hybrax.CrankNicolsonRK4(model, dt=0.005)
    >>> final, _ = hybrax.rollout(stepper, model.initial_state(), 10, save_every=None)
    >>> final.field_hat.shape
    (64, 33)
    """

    dynamics: AbstractSemilinearDynamics
    dt: ArrayLike
    coefficients: PyTree[tuple[_StageCoefficients, ...]] | None = None
    #: Global order: 2 (Crank–Nicolson in ``L`` and the coupling); the explicit part
    #: alone (``L = 0``) is fourth order.
    order: ClassVar[int] = 2

    alphas: ClassVar[tuple[float, ...]] = (
        0.0,
        0.1496590219993,
        0.3704009573644,
        0.6222557631345,
        0.9582821306748,
        1.0,
    )
    betas: ClassVar[tuple[float, ...]] = (
        0.0,
        -0.4178904745,
        -1.192151694643,
        -1.697784692471,
        -1.514183444257,
    )
    gammas: ClassVar[tuple[float, ...]] = (
        0.1496590219993,
        0.3792103129999,
        0.8229550293869,
        0.6994504559488,
        0.1530572479681,
    )

    def _leaf_coefficients(self, linear: Array) -> tuple[_StageCoefficients, ...]:
        real = jnp.finfo(linear.dtype).dtype
        h = jnp.asarray(self.dt).astype(real)
        stages = []
        for k, gamma in enumerate(self.gammas):
            mu = (0.5 * (self.alphas[k + 1] - self.alphas[k]) * h).astype(linear.dtype)
            inverse = 1 / (1 - mu * linear)
            weight = (gamma * h).astype(linear.dtype) * inverse
            stages.append(_StageCoefficients((1 + mu * linear) * inverse, weight))
        return tuple(stages)

    def step(self, state: PyTree) -> PyTree:
        self.dynamics.check_state(state)
        coeffs = self.coefficients
        if coeffs is None:
            coeffs = self._compute_coefficients()
        t0 = time_or_zero(state)
        h = scalar_like(self.dt, t0)
        u, acc = state, None
        for k, beta in enumerate(self.betas):
            t = t0 + self.alphas[k] * h
            n = self.dynamics.nonlinear(with_time(u, t), t)
            if k == 0:
                check_tendency(n, state, self.dynamics, "nonlinear")
            acc = n if acc is None else jax.tree.map(partial(_accumulate, beta), n, acc)
            u = jax.tree.map(partial(_stage_update, k), coeffs, u, acc, is_leaf=_is_stages)
        return with_time(u, t0 + h)


def _is_stages(x) -> bool:
    return isinstance(x, tuple) and all(isinstance(c, _StageCoefficients) for c in x)


def _accumulate(beta: float, n: Array, acc: Array) -> Array:
    """``n + beta * acc`` (the low-storage register), on floating leaves."""
    return n + beta * acc if is_inexact_array(n) else n


def _stage_update(k: int, stages, u: Array, acc: Array) -> Array:
    """``growth_k * u + weight_k * acc``: stage ``k``'s Crank–Nicolson solve."""
    if not is_inexact_array(u):
        return u
    return mul(stages[k].growth, u) + mul(stages[k].weight, acc)
