"""Steady states of any model: ``tendency(state) = 0`` by Newton's method (optimistix),
differentiated by the implicit function theorem."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import optimistix as optx
from jaxtyping import ArrayLike, PyTree

from ._contract import AbstractDynamics, check_dynamics
from ._errors import ConfigurationError, InstabilityError, NonFiniteStateError
from ._parameters import check_float, concrete_or_none
from ._state import get_time, is_inexact_array, time_or_zero, with_time

__all__ = ["steady_state"]


def _unknowns_spec(state: PyTree) -> PyTree:
    """True on the leaves solved for: every inexact array except the ``time`` leaf."""
    spec = jax.tree.map(is_inexact_array, state)
    if get_time(state) is not None:
        spec = eqx.tree_at(lambda s: s.time, spec, False)
    return spec


def _residual(unknowns: PyTree, args) -> PyTree:
    dynamics, rest, spec, t = args
    tendency = dynamics.tendency(eqx.combine(unknowns, rest), t)
    return eqx.filter(tendency, spec)


def steady_state(
    dynamics: AbstractDynamics,
    guess: PyTree,
    *,
    t: ArrayLike | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int = 256,
    solver: optx.AbstractRootFinder | None = None,
) -> PyTree:
    """The state where the model's tendency vanishes, found by Newton's method from ``guess``.

    Solves ``dynamics.tendency(state, t) = 0`` for the inexact (floating or complex) leaves
    of ``state`` other than its ``time``, with `optimistix.root_find` (default
    `optimistix.Newton`: dense Jacobian by forward-mode autodiff, linear solves by lineax).
    Gradients with respect to anything in ``dynamics`` (and ``t``) come from the implicit
    function theorem (`optimistix.ImplicitAdjoint`): ``dy*/dp = -(df/dy)^-1 df/dp`` at the
    solution, one linear solve, whatever the number of Newton steps. Newton finds the steady
    state nearest ``guess`` in its own sense, stable or not: to land on the *stable* state
    of a basin, first integrate in time (as `hybrax.climate.stable_steady_state` does).

    Parameters
    ----------
    dynamics
        A `hybrax.AbstractDynamics`.
    guess
        Starting state (a state record of the model); its non-inexact leaves and ``time``
        are kept as they are.
    t
        Time at which the tendency is evaluated (matters for forced models); default: the
        guess's ``time`` leaf, or 0.
    rtol, atol
        Newton's stopping tolerances on the step and on the tendency, in the state's units
        (default 1e-10 in float64; 1e-3 in float32, above the round-off of typical
        tendencies, after which Newton's last step has usually made the state far more
        accurate). Ignored when ``solver`` is given.
    max_steps
        Newton iterations allowed (static).
    solver
        Any `optimistix.AbstractRootFinder` (e.g. ``optimistix.Chord`` or ``optimistix.Newton``
        with another ``linear_solver=lineax...``); default ``optimistix.Newton(rtol, atol)``.

    Returns
    -------
    The steady state, a record like ``guess`` with ``time`` equal to ``t``.

    Raises
    ------
    hybrax.NonFiniteStateError
        The iteration produced NaN or inf.
    hybrax.InstabilityError
        No convergence within ``max_steps`` (no steady state near ``guess``, or a singular
        Jacobian). Under `jax.jit` both are raised through `equinox.error_if` (the message
        starts with the class name).

    Examples
    --------
    >>> import hybrax, jax.numpy as jnp
    >>> model = hybrax.climate.EnergyBalance0D()
    >>> state = hybrax.steady_state(model, model.initial_state(0.0))
    >>> bool(jnp.abs(state.temperature - model.equilibrium_temperature()) < 1e-4)
    True
    """
    check_dynamics(dynamics, "steady_state")
    if hasattr(dynamics, "check_state"):
        dynamics.check_state(guess)
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ConfigurationError(
            f"steady_state: max_steps must be an int >= 1, got {max_steps!r}; e.g. max_steps=256"
        )
    if solver is not None and not isinstance(solver, optx.AbstractRootFinder):
        raise ConfigurationError(
            "steady_state: solver must be an optimistix root finder such as "
            f"optimistix.Newton(rtol=1e-8, atol=1e-8), got {solver!r:.60}"
        )
    spec = _unknowns_spec(guess)
    unknowns, rest = eqx.partition(guess, spec)
    leaves = jax.tree.leaves(unknowns)
    if not leaves:
        raise ConfigurationError(
            "steady_state: the guess has no floating leaves besides its time; pass a model "
            "state, e.g. model.initial_state()"
        )
    wide = any(jnp.finfo(leaf.dtype).bits == 64 for leaf in leaves)
    default = 1e-10 if wide else 1e-3
    rtol = default if rtol is None else check_float(rtol, "rtol", positive=True)
    atol = default if atol is None else check_float(atol, "atol", positive=True)
    if solver is None:
        solver = optx.Newton(
            rtol=rtol, atol=atol, linear_solver=lx.AutoLinearSolver(well_posed=None)
        )
    time = time_or_zero(guess) if t is None else jnp.asarray(t)
    solution = optx.root_find(
        _residual,
        solver,
        unknowns,
        args=(dynamics, rest, spec, time),
        max_steps=max_steps,
        adjoint=optx.ImplicitAdjoint(),
        throw=False,
    )
    found = solution.value
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(found)]))
    converged = solution.result == optx.RESULTS.successful
    known = concrete_or_none((finite, converged))
    if known is not None:
        if not bool(known[0]):
            raise NonFiniteStateError(
                f"steady_state: Newton's iteration on {type(dynamics).__name__} produced NaN "
                "or inf; start from a guess closer to the steady state (e.g. after a short "
                "time integration) or check the model's parameters"
            )
        if not bool(known[1]):
            raise InstabilityError(
                f"steady_state: no steady state of {type(dynamics).__name__} found within "
                f"max_steps={max_steps} Newton steps ({optx.RESULTS[solution.result]}); "
                "start closer (e.g. after a time integration), raise max_steps or loosen "
                "rtol/atol"
            )
    else:
        found = eqx.error_if(
            found,
            jnp.logical_not(finite),
            "NonFiniteStateError: steady_state: Newton's iteration produced NaN or inf",
        )
        found = eqx.error_if(
            found,
            jnp.logical_not(converged),
            f"InstabilityError: steady_state: no steady state found within "
            f"max_steps={max_steps} Newton steps",
        )
    state = eqx.combine(found, rest)
    return with_time(state, time) if get_time(state) is not None else state
