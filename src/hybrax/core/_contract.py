"""The two roles every solver and every network fills: Dynamics and Stepper."""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from equinox import AbstractVar
from jaxtyping import ArrayLike, PyTree

from ._state import mul

__all__ = ["AbstractDynamics", "AbstractSemilinearDynamics", "AbstractStepper"]


class AbstractDynamics(eqx.Module):
    """A right-hand side ``d state / dt = tendency(state, t)``.

    Subclasses hold their physical parameters as array leaves (so `jax.grad` reaches them)
    and their structure (sizes, counts) as static fields. ``tendency`` returns a pytree with
    the same structure as ``state``; if the state has a ``time`` field, the value the
    tendency puts there is ignored (integrators advance time themselves).

    Subclasses may implement ``check_state`` to reject a state of the wrong shape or dtype
    with a `ValueError` at trace time; integrators call it once per trace.
    """

    @abc.abstractmethod
    def tendency(self, state: PyTree, t: ArrayLike) -> PyTree:
        """Time derivative of ``state`` at time ``t``."""

    def check_state(self, state: PyTree) -> None:
        """Raise `ValueError` if ``state`` does not fit this model (default: accept)."""


class AbstractSemilinearDynamics(AbstractDynamics):
    """Dynamics split as ``d state / dt = L state + N(state, t)`` with ``L`` diagonal.

    This is the form exponential integrators (`ETDRK4`) exploit: the stiff linear part
    (diffusion, hyperviscosity, linear waves) is integrated exactly. ``linear_operator``
    returns the diagonal of ``L`` as a pytree matching the state (leaves broadcastable to
    the state's leaves; real or complex). Its ``time`` entry, if any, is ignored.
    """

    @abc.abstractmethod
    def linear_operator(self) -> PyTree:
        """Diagonal of the linear operator ``L``, structured like the state."""

    @abc.abstractmethod
    def nonlinear(self, state: PyTree, t: ArrayLike) -> PyTree:
        """The nonlinear (non-stiff) part ``N(state, t)``."""

    def tendency(self, state: PyTree, t: ArrayLike) -> PyTree:
        linear = self.linear_operator()
        nonlinear = self.nonlinear(state, t)
        return jax.tree.map(lambda lin, u, n: mul(lin, u) + n, linear, state, nonlinear)


def _check_dt(dt) -> None:
    try:
        value = float(jnp.min(jnp.asarray(dt)))
    except (jax.errors.ConcretizationTypeError, TypeError):
        return  # traced under jit/grad: the value is not known at trace time
    if not value > 0:
        raise ValueError(
            f"time step dt must be positive and finite, got dt={value!r}; "
            "pass e.g. dt=0.01 (in the model's time units)"
        )


class AbstractStepper(eqx.Module):
    """Advances a state by one step of its own size ``dt``: ``step(state) -> state``.

    Integrators over an `AbstractDynamics`, neural emulators and hybrids all fill this role,
    so `hybrax.rollout`, `hybrax.lyapunov_spectrum`, training and sharding work on any of
    them.
    """

    dt: AbstractVar[ArrayLike]

    @abc.abstractmethod
    def step(self, state: PyTree) -> PyTree:
        """Advance ``state`` by ``dt``."""

    def prepare(self) -> "AbstractStepper":
        """A stepper equal in effect to ``self`` with step-invariant work done once.

        `hybrax.rollout` calls this inside the traced function before the time loop, so
        coefficients that depend on differentiable parameters (e.g. ETDRK4's
        exponentials of ``L dt``) are computed once per rollout and still differentiated.
        The default does nothing.
        """
        return self

    def __check_init__(self):
        _check_dt(self.dt)
