"""Third-order Adams–Bashforth, the multistep scheme of pyqg, with its history in the state."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Int, PyTree

from ._contract import AbstractDynamics, AbstractStepper, check_dynamics, check_tendency
from ._errors import ConfigurationError
from ._state import get_time, is_inexact_array, mul, scalar_like, time_or_zero, with_time

__all__ = ["AB3State", "AdamsBashforth3"]


class AB3State(eqx.Module):
    """A model state together with the Adams–Bashforth history it needs.

    This is `AdamsBashforth3`'s carry (see `hybrax.AbstractStepper`): build it with
    `AdamsBashforth3.init`; `AdamsBashforth3.step` maps it to the next one, so the stepper
    stays a pure ``step(carry) -> carry`` and `hybrax.rollout`, `jax.vmap` and `jax.grad`
    work unchanged. `AdamsBashforth3.state_of` returns the model state.

    Attributes
    ----------
    state
        The model state (e.g. a `hybrax.grids.SpectralState`); ``state.time`` is the time.
    previous, before_previous
        Tendencies ``f_{n-1}`` and ``f_{n-2}`` (records like ``state``; zeros until filled).
    level
        Number of stored tendencies that are valid (0, 1 or 2; int32).
    """

    state: PyTree
    previous: PyTree
    before_previous: PyTree
    level: Int[Array, ""]

    @property
    def time(self) -> Array | None:
        """The model state's time."""
        return get_time(self.state)


class AdamsBashforth3(AbstractStepper):
    """Third-order Adams–Bashforth: one tendency evaluation per step.

    .. math::
        u_{n+1} = u_n + \\Delta t \\left(\\tfrac{23}{12} f_n - \\tfrac{16}{12} f_{n-1}
            + \\tfrac{5}{12} f_{n-2}\\right)

    Start-up as in pyqg: the first step is forward Euler, the second second-order
    Adams–Bashforth (``3/2 f_1 - 1/2 f_0``), third order from the third step on. The
    history lives in the carry, an `AB3State` (see `init`, `state_of`), so ``step`` is
    pure; `hybrax.rollout` wraps a model state itself and hands ``observe`` model states.

    Cheap (one right-hand side per step instead of four for `hybrax.RK4`) but with a small
    stability region: on the imaginary axis (advection, waves) about
    ``|omega dt| < 0.72``. For spectral advection that means a Courant number
    ``dt max|u| / dx`` below about ``0.72 / pi = 0.23``.

    Parameters
    ----------
    dynamics
        The right-hand side.
    dt
        Time step (model time units), positive.

    Examples
    --------
    >>> import hybrax
    >>> model = hybrax.climate.Lorenz63()
    >>> stepper = hybrax.AdamsBashforth3(model, dt=0.005)
    >>> carry, trajectory = hybrax.rollout(stepper, model.initial_state(), 200)
    >>> stepper.state_of(carry).u.shape, trajectory.u.shape
    ((3,), (200, 3))
    """

    dynamics: AbstractDynamics
    dt: ArrayLike
    order = 3

    def __check_init__(self):
        check_dynamics(self.dynamics, "AdamsBashforth3")

    def init(self, state: PyTree) -> AB3State:
        """Wrap a model state with an empty history (the next step will be forward Euler).

        An `AB3State` is returned unchanged (``init`` is idempotent)."""
        if isinstance(state, AB3State):
            return state
        self.dynamics.check_state(state)
        zeros = jax.tree.map(lambda x: jnp.zeros_like(x) if is_inexact_array(x) else x, state)
        return AB3State(state, zeros, zeros, jnp.zeros((), jnp.int32))

    def state_of(self, carry: AB3State) -> PyTree:
        """The model state inside ``carry``."""
        return _check_carry(carry, "state_of").state

    def with_state(self, carry: AB3State, state: PyTree) -> AB3State:
        """``carry`` with its model state replaced by ``state`` (the history is kept)."""
        return eqx.tree_at(lambda c: c.state, _check_carry(carry, "with_state"), state)

    def step(self, state: AB3State) -> AB3State:
        _check_carry(state, "step")
        inner = state.state
        self.dynamics.check_state(inner)
        t0 = time_or_zero(inner)
        h = scalar_like(self.dt, t0)
        tendency = self.dynamics.tendency(inner, t0)
        check_tendency(tendency, inner, self.dynamics)
        level = state.level
        real = jnp.result_type(t0)
        # Euler, AB2, AB3 weights by the number of stored tendencies.
        w0 = jnp.where(level == 0, 1.0, jnp.where(level == 1, 1.5, 23 / 12)).astype(real)
        w1 = jnp.where(level == 0, 0.0, jnp.where(level == 1, -0.5, -16 / 12)).astype(real)
        w2 = jnp.where(level >= 2, 5 / 12, 0.0).astype(real)

        def update(u, f0, f1, f2):
            if not is_inexact_array(u):
                return u
            hw0, hw1, hw2 = ((h * w).astype(jnp.finfo(u.dtype).dtype) for w in (w0, w1, w2))
            return u + mul(hw0, f0) + mul(hw1, f1) + mul(hw2, f2)

        new = jax.tree.map(update, inner, tendency, state.previous, state.before_previous)
        new = with_time(new, t0 + h)
        return AB3State(new, tendency, state.previous, jnp.minimum(level + 1, 2))


def _check_carry(carry, method: str) -> AB3State:
    if not isinstance(carry, AB3State):
        raise ConfigurationError(
            f"AdamsBashforth3.{method} needs an AB3State (the model state plus its tendency "
            f"history), got {type(carry).__name__}; wrap the model state with "
            "stepper.init(state) (hybrax.rollout does this itself)"
        )
    return carry
