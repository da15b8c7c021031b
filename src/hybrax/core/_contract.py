"""The two roles every solver and every network fills: Dynamics and Stepper."""

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from equinox import AbstractVar
from jaxtyping import ArrayLike, PyTree

from ._errors import ConfigurationError
from ._parameters import concrete_or_none, time_step
from ._state import is_inexact_array, mul

__all__ = [
    "AbstractDynamics",
    "AbstractSemilinearDynamics",
    "AbstractStepper",
    "AbstractStepperWrapper",
]


class AbstractDynamics(eqx.Module):
    """A right-hand side ``d state / dt = tendency(state, t)``.

    Subclasses hold their physical parameters as array leaves (so `jax.grad` reaches them)
    and their structure (sizes, counts) as static fields. ``tendency`` returns a pytree with
    the same structure as ``state``; if the state has a ``time`` field, the value the
    tendency puts there is ignored (integrators advance time themselves).

    Subclasses may implement ``check_state`` to reject a state of the wrong shape or dtype
    with a `hybrax.ConfigurationError` at trace time; integrators call it once per trace.
    """

    @abc.abstractmethod
    def tendency(self, state: PyTree, t: ArrayLike) -> PyTree:
        """Time derivative of ``state`` at time ``t``."""

    def check_state(self, state: PyTree) -> None:
        """Raise `hybrax.ConfigurationError` if ``state`` does not fit this model (default:
        accept)."""

    def courant_number(self, state: PyTree, dt: ArrayLike) -> jax.Array:
        """The stability number of a step of size ``dt`` from ``state`` (dimensionless).

        Models with a CFL-type limit override this; `hybrax.check_time_step` and
        `hybrax.max_time_step` read it. What the number measures is the model's to say in
        its docstring (the advective Courant number ``dt max|u| / dx`` for flows, the
        fastest wave frequency times ``dt`` for shallow water), together with the limits of
        the usual steppers. It must be linear in ``dt``. The default raises
        `hybrax.ConfigurationError`: the model declares no stability limit.
        """
        raise ConfigurationError(
            f"{type(self).__name__} declares no time-step limit (it does not define "
            "courant_number(state, dt)); choose dt from the model's time scales instead"
        )


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

    # A model whose N lives on a fixed subset of its modes (a dealiased spectral model: zero
    # outside the kept modes, and read from them only) may say so; ETDRK4 then runs its
    # stages on that subset and advance the other modes by the linear part
    # alone (exactly what the full stages do there, with less memory traffic). The four
    # defaults below declare no such subset, and the steppers take their full path.
    @property
    def nonlinear_is_restricted(self) -> bool:
        """Whether ``N`` is supported on the modes `restrict` keeps: zero on all others, and
        a function of those modes (and ``t``) only. Default ``False``.

        When ``True``, `hybrax.ETDRK4` evaluates `nonlinear_restricted` on
        ``restrict(state)`` and advances the other modes by the linear part alone, which is
        what the full stages do there when ``N`` vanishes (`hybrax.CrankNicolsonRK4` and
        other steppers call `nonlinear` on the whole state, as before).
        """
        return False

    def restrict(self, tree: PyTree) -> PyTree:
        """The modes of ``N``'s support from a pytree shaped like the state, or like
        `linear_operator` (leaves broadcastable to the state's); other leaves (``time``)
        unchanged. Default: ``tree`` itself."""
        return tree

    def embed(self, tree: PyTree, restricted: PyTree) -> PyTree:
        """``tree`` (shaped like the state) with the modes `restrict` keeps replaced by
        those of ``restricted``; other leaves (``time``) from ``restricted``. The inverse of
        `restrict` on those modes. Default: ``restricted``."""
        return restricted

    def nonlinear_restricted(self, state: PyTree, t: ArrayLike) -> PyTree:
        """``restrict(nonlinear(u, t))`` from ``state = restrict(u)``, for models with
        `nonlinear_is_restricted`. Default: ``nonlinear(state, t)``."""
        return self.nonlinear(state, t)


def _check_dt(dt) -> None:
    """Reject a concrete ``dt`` that is not one real, positive, finite number. A traced
    ``dt`` is checked at run time by `guard_time_step` (its shape is checked now)."""
    value = dt if concrete_or_none(dt) is None else time_step(dt)
    if jnp.size(value) != 1:
        raise ConfigurationError(
            f"dt must be a single time step, got shape {jnp.shape(value)}; for an ensemble of "
            "time steps use jax.vmap over steppers built from scalar dt"
        )


def guard_time_step(stepper: "AbstractStepper", state: PyTree) -> PyTree:
    """``state`` with a run-time check of ``stepper.dt`` attached when ``dt`` is traced
    (under `jax.jit`, `jax.vmap` or `jax.grad`; a concrete ``dt`` was checked when the
    stepper was built). One scalar comparison per rollout."""
    dt = stepper.dt
    if concrete_or_none(dt) is not None:
        return state
    dt = jnp.asarray(dt)
    bad = ~jnp.all(jnp.isfinite(dt) & (dt > 0))
    floating, other = eqx.partition(state, is_inexact_array)
    if not jax.tree.leaves(floating):
        return state
    floating = eqx.error_if(
        floating,
        bad,
        "ConfigurationError: the time step dt must be positive and finite (it was traced, so "
        "it is checked when the computation runs); pass e.g. dt=0.01 in model time units",
    )
    return eqx.combine(floating, other)


def _describe_object(value) -> str:
    if isinstance(value, type):
        return f"the class {value.__name__} (not an instance)"
    if isinstance(value, AbstractStepper):
        return f"{type(value).__name__} (a Stepper)"
    if isinstance(value, AbstractDynamics):
        return f"{type(value).__name__} (a Dynamics)"
    return "None" if value is None else f"a {type(value).__name__}"


def check_stepper(stepper, where: str) -> None:
    """Raise `ConfigurationError` unless ``stepper`` is an `AbstractStepper` instance."""
    if isinstance(stepper, AbstractStepper):
        return
    if isinstance(stepper, type) and issubclass(stepper, AbstractStepper):
        fix = f"construct it: hybrax.{stepper.__name__}(model, dt=0.01)"
    elif isinstance(stepper, AbstractDynamics):
        fix = "wrap the model in an integrator, e.g. hybrax.RK4(model, dt=0.01)"
    else:
        fix = (
            "pass an integrator such as hybrax.RK4(model, dt=0.01), or subclass "
            "hybrax.AbstractStepper (with a dt field and step(state))"
        )
    raise ConfigurationError(
        f"{where} needs a stepper such as hybrax.RK4(model, dt=...), got "
        f"{_describe_object(stepper)}; {fix}"
    )


def check_dynamics(dynamics, owner: str, *, semilinear: bool = False) -> None:
    """Raise `ConfigurationError` unless ``dynamics`` is an `AbstractDynamics` instance (an
    `AbstractSemilinearDynamics` when ``semilinear``)."""
    wanted = AbstractSemilinearDynamics if semilinear else AbstractDynamics
    if isinstance(dynamics, wanted):
        return
    if semilinear and isinstance(dynamics, AbstractDynamics):
        raise ConfigurationError(
            f"{owner} needs dynamics split as L u + N(u) (an AbstractSemilinearDynamics); "
            f"got {type(dynamics).__name__}. Use RK4 for a general right-hand side."
        )
    if isinstance(dynamics, AbstractStepper):
        fix = (
            f"{owner} wraps the model's right-hand side, not another stepper; pass the model "
            f"itself: hybrax.{owner}(model, dt) (the stepper's model is "
            f"{type(getattr(dynamics, 'dynamics', dynamics)).__name__})"
        )
    elif isinstance(dynamics, type):
        fix = f"construct it first, e.g. {dynamics.__name__}()"
    elif callable(getattr(dynamics, "tendency", None)):
        fix = (
            f"{type(dynamics).__name__} has a tendency method but is not a "
            "hybrax.AbstractDynamics; subclass hybrax.AbstractDynamics (an equinox Module) "
            "and implement tendency(state, t)"
        )
    else:
        fix = "pass a model such as hybrax.climate.Lorenz96()"
    raise ConfigurationError(
        f"{owner}: dynamics must be a hybrax.{wanted.__name__}, got "
        f"{_describe_object(dynamics)}; {fix}"
    )


def check_tendency(tendency: PyTree, state: PyTree, model, what: str = "tendency") -> None:
    """Raise `ConfigurationError` unless ``tendency`` has the structure of ``state``."""
    expected, got = jax.tree.structure(state), jax.tree.structure(tendency)
    if expected != got:
        name = type(model).__name__
        raise ConfigurationError(
            f"{name}.{what} must return a pytree shaped like the state "
            f"({type(state).__name__}), got {type(tendency).__name__}; return a state record, "
            f"e.g. {type(state).__name__}(...) with the time derivative of each field "
            f"(tendency structure {got}, state structure {expected})"
        )


class AbstractStepper(eqx.Module):
    """Advances a carry by one step of its own size ``dt``: ``step(carry) -> carry``.

    Integrators over an `AbstractDynamics`, neural emulators and hybrids all fill this role,
    so `hybrax.rollout`, `hybrax.lyapunov_spectrum`, training and sharding work on any of
    them.

    The carry and the model state. Like diffrax's ``solver_state``, what a stepper needs
    besides the model state (a multistep history, a thermostat's variables, FIRE's velocity
    and step size, an RNG key) lives in its *carry*; the *model state* is what users build,
    observe and compare with data. Three methods connect them, all identities by default
    (for the many steppers whose carry is the model state):

    - ``init(state) -> carry`` wraps a model state. It is idempotent: given a carry it made,
      it returns it unchanged, so callers may always call it (`hybrax.rollout` does, so a
      run can be started from a model state or continued from a returned carry).
    - ``state_of(carry) -> state`` the model state inside a carry.
    - ``with_state(carry, state) -> carry`` the carry with its model state replaced (what a
      wrapper such as `hybrax.hybrid.Corrected` or `hybrax.Filtered` uses to change the
      model state without touching the stepper's own state).

    Attributes
    ----------
    order
        Order of accuracy in ``dt`` of the global error (``p`` in ``O(dt^p)``) on smooth
        problems, read as ``stepper.order``. Declared as a class attribute, an ``int``
        (``order = 4`` in the class body). ``None`` (the default) means undeclared: neural
        emulators, wrappers that change the state (`hybrax.Filtered`), or steppers
        whose order depends on their configuration and cannot be read off it. A stepper
        whose order depends on an instance field may override it with a read-only property
        (`DiffraxStepper` reports its solver's order).
    """

    dt: AbstractVar[ArrayLike]
    order: ClassVar[int | None] = None

    @abc.abstractmethod
    def step(self, state: PyTree) -> PyTree:
        """Advance the carry ``state`` (see `init`) by ``dt``."""

    def init(self, state: PyTree) -> PyTree:
        """The carry that starts a run from the model state ``state`` (default: ``state``).

        Must be idempotent: ``init(carry)`` returns a carry this stepper made unchanged.
        """
        return state

    def state_of(self, carry: PyTree) -> PyTree:
        """The model state inside ``carry`` (default: ``carry`` itself)."""
        return carry

    def with_state(self, carry: PyTree, state: PyTree) -> PyTree:
        """``carry`` with its model state replaced by ``state`` (default: ``state``)."""
        return state

    def prepare(self) -> "AbstractStepper":
        """A stepper equal in effect to ``self`` with step-invariant work done once.

        `hybrax.rollout` calls this inside the traced function before the time loop, so
        coefficients that depend on differentiable parameters (e.g. ETDRK4's
        exponentials of ``L dt``) are computed once per rollout and still differentiated.
        The default does nothing.
        """
        return self

    def __check_init__(self):
        try:
            dt = self.dt
        except AttributeError as error:  # e.g. a wrapper around None instead of a stepper
            raise ConfigurationError(
                f"{type(self).__name__}: its time step dt could not be read ({error}); a "
                "wrapper needs a stepper such as hybrax.RK4(model, dt=0.01)"
            ) from error
        _check_dt(dt)


class AbstractStepperWrapper(AbstractStepper):
    """A stepper around another one (``stepper``) that shares its time step and its carry.

    ``dt``, ``init``, ``state_of`` and ``with_state`` are the wrapped stepper's, so a
    wrapper changes what a step does to the model state (`hybrax.Filtered`,
    `hybrax.hybrid.Corrected`) while the wrapped stepper's own state (e.g. a multistep
    history) passes through untouched. Subclasses declare the field ``stepper`` and
    implement ``step`` (and ``prepare``, forwarding it).
    """

    stepper: AbstractVar[AbstractStepper]

    @property
    def dt(self) -> ArrayLike:
        return self.stepper.dt

    def init(self, state: PyTree) -> PyTree:
        """The wrapped stepper's carry for ``state`` (its ``init``)."""
        return self.stepper.init(state)

    def state_of(self, carry: PyTree) -> PyTree:
        """The model state inside the wrapped stepper's ``carry``."""
        return self.stepper.state_of(carry)

    def with_state(self, carry: PyTree, state: PyTree) -> PyTree:
        """The wrapped stepper's ``carry`` with its model state replaced."""
        return self.stepper.with_state(carry, state)
