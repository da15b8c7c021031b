"""Hybrid models that fill the Dynamics and Stepper roles: Corrected, Closure, Emulator."""

from __future__ import annotations

from typing import Any

import equinox as eqx
from jaxtyping import ArrayLike, PyTree

from hybrax.core import (
    AbstractDynamics,
    AbstractSemilinearDynamics,
    AbstractStepper,
    AbstractStepperWrapper,
    ConfigurationError,
    concrete_or_none,
    get_time,
    scalar_like,
    time_or_zero,
    time_step,
    with_time,
)

from ._maps import (
    FromOutput,
    ToInput,
    add_output,
    check_part,
    check_same_structure,
    check_wrapper_parts,
    network_input,
    replace_output,
)

__all__ = ["Closure", "Corrected", "Emulator", "FrozenClosure", "SemilinearClosure"]


def _emulator_dt(dt):
    """Emulator's ``dt``, checked to be one positive, finite time step and kept as given
    (a Python float stays static, so `fit` does not train it)."""
    if concrete_or_none(dt) is None:  # traced: checked when the computation runs
        return time_step(dt, "Emulator dt")
    try:
        checked = time_step(dt)
    except ConfigurationError as error:
        raise ConfigurationError(f"Emulator: {error}") from error
    if checked.size != 1:
        raise ConfigurationError(
            f"Emulator: dt must be a single time step, got shape {checked.shape}"
        )
    return dt


def _apply(who, net, to_input, from_output, source, target, default, what):
    """``from_output(target, net(to_input(source)))`` with the default maps and checks."""
    output = net(network_input(source, to_input, net, who))
    if from_output is None:
        return default(target, output, who, what)
    result = from_output(target, output)
    check_same_structure(who, result, target, what)
    return result


def _closure_term(closure, who: str, state: PyTree, physics: PyTree, what: str) -> PyTree:
    """The physics term ``physics`` with the closure's learned term of ``state`` added
    (`Closure.tendency` and `SemilinearClosure.nonlinear`)."""
    return _apply(
        who, closure.net, closure.to_input, closure.from_output, state, physics, add_output, what
    )


class Corrected(AbstractStepperWrapper):
    """A solver step followed by a learned correction (solver in the loop).

    ``step(state) = from_output(s, net(to_input(s)))`` with ``s = stepper.step(state)``:
    the network sees the state after the physics step and corrects it (Um et al. 2020;
    Kochkov et al. 2021). By default the network's output is *added* to the state's single
    floating field (``u`` of an `ODEState`), so a network that outputs zero leaves the
    solver unchanged. ``dt`` is the inner stepper's; `prepare` is forwarded to it, and so
    are ``init``, ``state_of`` and ``with_state``: the carry is the inner stepper's (e.g.
    `hybrax.AdamsBashforth3`'s history) and the network corrects only the model state.

    Parameters
    ----------
    stepper
        The physics stepper (e.g. ``hybrax.RK4(model, dt)``), usually on a coarse grid.
    net
        The correction network (any callable pytree: a `hybrax.nn` network, a
        `hybrax.nn.FlaxModule`, an equinox module).
    to_input
        ``state -> network input`` (default: the single floating field besides ``time``).
        Static: pass a named function or keep the same object to avoid recompiling.
    from_output
        ``(state, output) -> corrected state`` (default: add ``output`` to that field).
        Must return a record of the state's structure, shapes and dtypes.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, hybrax
    >>> from hybrax.nn import MLP
    >>> model = hybrax.climate.Lorenz96(num_variables=8, forcing=8.0)
    >>> net = MLP(8, 8, width_size=16, depth=1, key=jax.random.key(0))
    >>> hybrid = hybrax.hybrid.Corrected(hybrax.RK4(model, 0.01), net)
    >>> final, _ = hybrax.rollout(hybrid, model.initial_state(dtype=net.dtype), 10)
    >>> final.u.shape
    (8,)
    """

    stepper: AbstractStepper
    net: Any
    to_input: ToInput | None = eqx.field(static=True, default=None)
    from_output: FromOutput | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        check_part("Corrected", "stepper", self.stepper, AbstractStepper)
        check_wrapper_parts("Corrected", self.net, self.to_input, self.from_output)

    def step(self, state: PyTree) -> PyTree:
        carry = self.stepper.step(state)
        stepped = self.stepper.state_of(carry)
        corrected = _apply(
            "Corrected",
            self.net,
            self.to_input,
            self.from_output,
            stepped,
            stepped,
            add_output,
            "state",
        )
        return self.stepper.with_state(carry, corrected)

    def prepare(self) -> Corrected:
        return eqx.tree_at(lambda c: c.stepper, self, self.stepper.prepare())


class Closure(AbstractDynamics):
    """Physics tendency plus a learned sub-grid term: a Dynamics.

    ``tendency(state, t) = from_output(dynamics.tendency(state, t), net(to_input(state)))``.
    By default the network's output is added to the tendency of the state's single floating
    field, i.e. ``du/dt = f(u) + net(u)``: the classic closure (parameterisation) of a
    coarse model (Wilks 2005 for two-scale Lorenz-96; eddy parameterisations of QG models).
    Integrate it with any stepper (``hybrax.RK4(Closure(model, net), dt)``); gradients
    reach the network through the solver. ``check_state`` is the wrapped model's.

    Parameters
    ----------
    dynamics
        The resolved physics.
    net
        The closure network (any callable pytree).
    to_input
        ``state -> network input`` (default: the single floating field besides ``time``).
    from_output
        ``(tendency, output) -> total tendency`` (default: add ``output`` to that field).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, hybrax
    >>> from hybrax.nn import MLP
    >>> model = hybrax.climate.Lorenz96(num_variables=8, forcing=20.0)
    >>> net = MLP(8, 8, width_size=16, depth=1, key=jax.random.key(0))
    >>> closure = hybrax.hybrid.Closure(model, net)
    >>> stepper = hybrax.RK4(closure, dt=0.005)
    >>> final, _ = hybrax.rollout(stepper, model.initial_state(dtype=net.dtype), 20)
    """

    dynamics: AbstractDynamics
    net: Any
    to_input: ToInput | None = eqx.field(static=True, default=None)
    from_output: FromOutput | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        check_part("Closure", "dynamics", self.dynamics, AbstractDynamics)
        check_wrapper_parts("Closure", self.net, self.to_input, self.from_output)

    def tendency(self, state: PyTree, t: ArrayLike) -> PyTree:
        return _closure_term(self, "Closure", state, self.dynamics.tendency(state, t), "tendency")

    def check_state(self, state: PyTree) -> None:
        self.dynamics.check_state(state)


class SemilinearClosure(AbstractSemilinearDynamics):
    """`Closure` for a semilinear model: the learned term joins the nonlinear part.

    ``L`` stays the wrapped model's (so `hybrax.ETDRK4` still integrates it exactly) and
    ``nonlinear(state, t) = from_output(dynamics.nonlinear(state, t), net(to_input(state)))``.
    For spectral states, ``to_input`` typically transforms to physical space and
    ``from_output`` back.

    Parameters
    ----------
    dynamics
        The resolved physics, an `hybrax.AbstractSemilinearDynamics`.
    net
        The closure network.
    to_input, from_output
        As for `Closure` (``from_output`` receives the nonlinear term).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, equinox as eqx, hybrax
    >>> from hybrax.hybrid import SemilinearClosure
    >>> class Decay(hybrax.AbstractSemilinearDynamics):
    ...     def linear_operator(self):
    ...         return hybrax.ODEState(-jnp.ones(4), 0.0)
    ...     def nonlinear(self, state, t):
    ...         return hybrax.ODEState(jnp.zeros_like(state.u), state.time)
    >>> net = hybrax.nn.MLP(4, 4, 8, 1, key=jax.random.key(0))
    >>> stepper = hybrax.ETDRK4(SemilinearClosure(Decay(), net), dt=0.1)
    >>> final, _ = hybrax.rollout(stepper, hybrax.ODEState(jnp.ones(4, net.dtype)), 5)
    """

    dynamics: AbstractDynamics  # must be semilinear: checked with a clear message below
    net: Any
    to_input: ToInput | None = eqx.field(static=True, default=None)
    from_output: FromOutput | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        check_wrapper_parts("SemilinearClosure", self.net, self.to_input, self.from_output)
        if not isinstance(self.dynamics, AbstractSemilinearDynamics):
            raise ConfigurationError(
                "SemilinearClosure needs an AbstractSemilinearDynamics (L u + N(u)), got "
                f"{type(self.dynamics).__name__}; use hybrax.hybrid.Closure instead"
            )

    def linear_operator(self) -> PyTree:
        return self.dynamics.linear_operator()

    def nonlinear(self, state: PyTree, t: ArrayLike) -> PyTree:
        physics = self.dynamics.nonlinear(state, t)
        return _closure_term(self, "SemilinearClosure", state, physics, "nonlinear term")

    def check_state(self, state: PyTree) -> None:
        self.dynamics.check_state(state)


class _HeldOutput(eqx.Module):
    """A stand-in network that returns one output computed earlier (`FrozenClosure`)."""

    output: Any

    def __call__(self, x: Any) -> Any:
        return self.output


def _no_input(state: PyTree) -> None:
    """``to_input`` of a held closure term: the stages' states are not looked at."""
    return None


class FrozenClosure(AbstractStepperWrapper):
    """A closure's learned term evaluated once per step and held over the stepper's stages.

    ``stepper`` integrates a `Closure` or `SemilinearClosure` (its ``dynamics``). A
    multi-stage integrator evaluates the tendency, and so the network, at every stage
    (four times per step for `hybrax.ETDRK4` and `hybrax.RK4`); here the network sees only
    the state at the start of the step, and its output ``net(to_input(u_n))`` is added (by
    the closure's ``from_output``) to the physics term at every stage. For ETDRK4 this
    integrates ``du/dt = L u + N(u) + c_n`` with the learned forcing ``c_n`` constant over
    the step, i.e. it adds ``dt * phi_1(L dt) c_n`` to the physics step: one network
    evaluation per step instead of one per stage, a first-order-in-time closure. ``dt``,
    `prepare` and the carry are the wrapped stepper's.

    Parameters
    ----------
    stepper
        A stepper whose ``dynamics`` is a `Closure` or `SemilinearClosure`, e.g.
        ``hybrax.ETDRK4(SemilinearClosure(model, net, to_input, from_output), dt)``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, hybrax
    >>> from hybrax.hybrid import Closure, FrozenClosure
    >>> model = hybrax.climate.Lorenz96(num_variables=8, forcing=8.0)
    >>> net = hybrax.nn.MLP(8, 8, width_size=16, depth=1, key=jax.random.key(0))
    >>> hybrid = FrozenClosure(hybrax.RK4(Closure(model, net), dt=0.01))
    >>> final, _ = hybrax.rollout(hybrid, model.initial_state(dtype=net.dtype), 10)
    >>> final.u.shape
    (8,)
    """

    stepper: AbstractStepper

    def __check_init__(self):
        check_part("FrozenClosure", "stepper", self.stepper, AbstractStepper)
        closure = getattr(self.stepper, "dynamics", None)
        if not isinstance(closure, (Closure, SemilinearClosure)):
            raise ConfigurationError(
                "FrozenClosure: stepper.dynamics must be a hybrax.hybrid.Closure or "
                f"SemilinearClosure, got {type(closure).__name__}; build the stepper around "
                "the closure, e.g. hybrax.ETDRK4(SemilinearClosure(model, net), dt)"
            )

    @property
    def closure(self) -> Closure | SemilinearClosure:
        """The wrapped stepper's closure model."""
        return self.stepper.dynamics

    def step(self, state: PyTree) -> PyTree:
        closure = self.closure
        who = f"FrozenClosure({type(closure).__name__})"
        x = network_input(self.stepper.state_of(state), closure.to_input, closure.net, who)
        held = type(closure)(
            closure.dynamics, _HeldOutput(closure.net(x)), _no_input, closure.from_output
        )
        return eqx.tree_at(lambda s: s.dynamics, self.stepper, held).step(state)

    def prepare(self) -> FrozenClosure:
        return eqx.tree_at(lambda c: c.stepper, self, self.stepper.prepare())


class Emulator(AbstractStepper):
    """A purely neural Stepper: ``step(state)`` is the network's prediction ``dt`` later.

    ``step(state) = from_output(state, net(to_input(state)))`` with ``time`` advanced by
    ``dt``. By default the output *replaces* the state's single floating field; for the
    usual residual form (the network predicts the increment) pass
    ``from_output=lambda s, out: eqx.tree_at(lambda s: s.u, s, s.u + out)``.

    Parameters
    ----------
    net
        The network mapping the input to the next field.
    dt
        The time between the network's input and output (model units, positive).
    to_input
        ``state -> network input`` (default: the single floating field besides ``time``).
    from_output
        ``(state, output) -> next state`` (default: replace that field by ``output``).
        Whatever it puts in ``time`` is overwritten by ``state.time + dt``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, hybrax
    >>> from hybrax.nn import MLP
    >>> net = MLP(3, 3, width_size=16, depth=2, key=jax.random.key(0))
    >>> emulator = hybrax.hybrid.Emulator(net, dt=0.05)
    >>> final, traj = hybrax.rollout(emulator, hybrax.ODEState(jnp.ones(3, net.dtype)), 4)
    >>> float(final.time)
    0.2...
    """

    net: Any
    dt: ArrayLike = eqx.field(converter=_emulator_dt)
    to_input: ToInput | None = eqx.field(static=True, default=None)
    from_output: FromOutput | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        check_wrapper_parts("Emulator", self.net, self.to_input, self.from_output)

    def step(self, state: PyTree) -> PyTree:
        new = _apply(
            "Emulator",
            self.net,
            self.to_input,
            self.from_output,
            state,
            state,
            replace_output,
            "state",
        )
        if get_time(state) is None:
            return new
        t0 = time_or_zero(state)
        return with_time(new, t0 + scalar_like(self.dt, t0))
