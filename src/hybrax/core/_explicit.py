"""Explicit Runge–Kutta steppers defined by their Butcher tableaux."""

from typing import ClassVar

from equinox import AbstractVar
from jaxtyping import ArrayLike, PyTree

from ._contract import AbstractDynamics, AbstractStepper, check_dynamics, check_tendency
from ._state import scalar_like, time_or_zero, tree_lincomb, with_time

__all__ = ["RK4", "SSPRK3", "AbstractExplicitRK", "Euler", "Heun"]


class AbstractExplicitRK(AbstractStepper):
    """An explicit Runge–Kutta method over an `AbstractDynamics`.

    Concrete methods only declare the class-level Butcher tableau ``(a, b, c)``: ``a`` is
    the strictly lower-triangular stage matrix as rows of Python floats, ``b`` the weights,
    ``c`` the nodes; and the tableau's ``order`` of accuracy.
    """

    dynamics: AbstractVar[AbstractDynamics]
    a: ClassVar[tuple[tuple[float, ...], ...]]
    b: ClassVar[tuple[float, ...]]
    c: ClassVar[tuple[float, ...]]
    order: ClassVar[int]

    def __check_init__(self):
        check_dynamics(self.dynamics, type(self).__name__)

    def step(self, state: PyTree) -> PyTree:
        self.dynamics.check_state(state)
        t0 = time_or_zero(state)
        h = self.dt
        ht = scalar_like(h, t0)
        stages = []
        for i, ci in enumerate(self.c):
            row = self.a[i - 1] if i > 0 else ()
            y = tree_lincomb(state, row, tuple(stages[: len(row)]), h)
            t = t0 + ci * ht
            y = with_time(y, t)
            k = self.dynamics.tendency(y, t)
            check_tendency(k, state, self.dynamics)
            stages.append(k)
        out = tree_lincomb(state, self.b, tuple(stages), h)
        return with_time(out, t0 + ht)


class Euler(AbstractExplicitRK):
    """Forward Euler, first order: ``u_{n+1} = u_n + dt f(u_n, t_n)``.

    Parameters
    ----------
    dynamics
        The right-hand side.
    dt
        Time step (model time units), positive.
    """

    dynamics: AbstractDynamics
    dt: ArrayLike
    a = ()
    b = (1.0,)
    c = (0.0,)
    order = 1


class Heun(AbstractExplicitRK):
    """Heun's method (explicit trapezoidal rule), second order.

    Parameters
    ----------
    dynamics
        The right-hand side.
    dt
        Time step (model time units), positive.
    """

    dynamics: AbstractDynamics
    dt: ArrayLike
    a = ((1.0,),)
    b = (0.5, 0.5)
    c = (0.0, 1.0)
    order = 2


class SSPRK3(AbstractExplicitRK):
    """Shu–Osher strong-stability-preserving third-order Runge–Kutta (SSP-RK3).

    Preserves any convex property (TVD, positivity) that forward Euler preserves, under the
    same step size; the usual choice for hyperbolic problems.

    Parameters
    ----------
    dynamics
        The right-hand side.
    dt
        Time step (model time units), positive.
    """

    dynamics: AbstractDynamics
    dt: ArrayLike
    a = ((1.0,), (0.25, 0.25))
    b = (1 / 6, 1 / 6, 2 / 3)
    c = (0.0, 1.0, 0.5)
    order = 3


class RK4(AbstractExplicitRK):
    """The classic fourth-order Runge–Kutta method.

    Parameters
    ----------
    dynamics
        The right-hand side.
    dt
        Time step (model time units), positive.

    Examples
    --------
    >>> import hybrax
    >>> stepper = hybrax.RK4(hybrax.climate.Lorenz96(), dt=0.01)
    >>> state = hybrax.climate.Lorenz96().initial_state()
    >>> final, _ = hybrax.rollout(stepper, state, 100)
    >>> final.u.shape
    (40,)
    """

    dynamics: AbstractDynamics
    dt: ArrayLike
    a = ((0.5,), (0.0, 0.5), (0.0, 0.0, 1.0))
    b = (1 / 6, 1 / 3, 1 / 3, 1 / 6)
    c = (0.0, 0.5, 0.5, 1.0)
    order = 4
