"""Equilibria of the energy-balance models: the stable steady state reached from a starting
state, and the quasi-static hysteresis sweep through the ice-line bistability."""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jax import lax
from jaxtyping import Array, ArrayLike, Float

from hybrax.core import (
    AbstractDynamics,
    ConfigurationError,
    check_dynamics,
    check_float,
    check_parameter,
    steady_state,
)

from ._ebm import BudykoSellers, EBMState

__all__ = ["HysteresisSweep", "hysteresis_sweep", "stable_steady_state"]


def stable_steady_state(
    dynamics: AbstractDynamics,
    state: EBMState,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    solver: diffrax.AbstractSolver | None = None,
    transient_tolerance: float = 1e-3,
    max_steps: int = 4096,
    initial_dt: float = 0.1,
) -> EBMState:
    """The stable steady state of an energy-balance model whose basin holds ``state``.

    Two phases. First `diffrax.diffeqsolve` follows the time evolution with an implicit,
    L-stable solver (default `diffrax.ImplicitEuler`) under loose adaptive step control
    (``transient_tolerance``) until the RMS of ``dT/dt`` (K/yr) falls below
    ``atol + rtol * RMS(T)`` (a steady-state event): following the evolution selects the
    *stable* state of ``state``'s basin (the warm or the snowball branch), which Newton's
    method alone would not. Then `hybrax.steady_state` (Newton, optimistix) converges from
    there to round-off. Only the second phase is differentiated, by the implicit function
    theorem (``dT/dp = -(df/dT)^-1 df/dp``), so gradients are those of the fixed point
    itself, not of the transient.

    Parameters
    ----------
    dynamics
        An energy-balance model (`EnergyBalance0D`, `BudykoSellers`) without time-dependent
        forcing.
    state
        Starting state.
    rtol, atol
        Tolerances on ``dT/dt`` (K/yr) that end the transient; default 1e-7 in float64 and
        1e-5 in float32 (its round-off level).
    solver
        A diffrax solver for the transient (default ``diffrax.ImplicitEuler`` with a chord
        root finder at ``transient_tolerance``; higher-order implicit solvers such as
        ``Kvaerno5`` stall in float32 on this stiff problem).
    transient_tolerance
        Relative and absolute tolerance of the step-size controller (and of the default
        root finder) during the transient (default 1e-3).
    max_steps
        Maximum transient solver steps (static); exceeding it raises an error.
    initial_dt
        First step, years.

    Returns
    -------
    EBMState
        The steady state; its ``time`` is the model time at which the transient reached it.

    Raises
    ------
    hybrax.InstabilityError, hybrax.NonFiniteStateError
        From `hybrax.steady_state` when Newton's polish does not converge.

    Examples
    --------
    >>> import hybrax
    >>> model = hybrax.climate.EnergyBalance0D()
    >>> eq = hybrax.climate.stable_steady_state(model, model.initial_state(0.0))
    >>> bool(abs(eq.temperature - model.equilibrium_temperature()) < 1e-4)
    True
    """
    check_dynamics(dynamics, "stable_steady_state")
    dynamics.check_state(state)
    for name, value in (("rtol", rtol), ("atol", atol)):
        if value is not None:
            check_parameter(value, name, positive=True, scalar=True, example=f"{name}=1e-6")
    transient_tolerance = check_float(transient_tolerance, "transient_tolerance", positive=True)
    initial_dt = check_float(initial_dt, "initial_dt", positive=True)
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ConfigurationError(
            f"stable_steady_state: max_steps must be an int >= 1, got {max_steps!r}"
        )
    if solver is not None and not isinstance(solver, diffrax.AbstractSolver):
        raise ConfigurationError(
            "stable_steady_state: solver must be a diffrax solver such as "
            f"diffrax.ImplicitEuler(), got {solver!r:.60}"
        )
    if solver is None:
        chord = diffrax.VeryChord(
            rtol=transient_tolerance, atol=transient_tolerance, norm=optx.rms_norm
        )
        solver = diffrax.ImplicitEuler(root_finder=chord)
    # The time integration finds the stable state's basin; it is not differentiated.
    frozen = jax.tree.map(
        lambda x: jax.lax.stop_gradient(x) if eqx.is_array(x) else x, (dynamics, state)
    )
    # Tolerances on dT/dt (K/yr) reachable in the state's precision: float32 round-off in
    # the tendency is about 1e-6 K/yr.
    default = 1e-7 if jnp.finfo(state.temperature.dtype).bits == 64 else 1e-5
    rtol = default if rtol is None else rtol
    atol = default if atol is None else atol
    solution = _relax(*frozen, solver, initial_dt, rtol, atol, transient_tolerance, max_steps)
    time = solution.ts[0].astype(state.temperature.dtype)
    reached = EBMState(solution.ys[0], time)
    # Newton from the state reached: round-off accuracy and implicit-function gradients.
    return steady_state(dynamics, reached, t=time)


def _vector_field(t, temperature, model):
    return model.tendency(EBMState(temperature, t), t).temperature


@eqx.filter_jit
def _relax(dynamics, state, solver, initial_dt, rtol, atol, loose, max_steps):
    # Jitted here so that repeated calls reuse the compilation (the event's condition
    # function is a fresh closure on every call, which diffeqsolve's own cache keys on).
    # diffrax multiplies time by an integer direction, which strict dtype promotion
    # rejects: its internals run with standard promotion.
    with jax.numpy_dtype_promotion("standard"):
        return diffrax.diffeqsolve(
            diffrax.ODETerm(_vector_field),
            solver,
            t0=state.time,
            t1=jnp.inf,
            dt0=jnp.asarray(initial_dt, state.time.dtype),
            y0=state.temperature,
            args=dynamics,
            stepsize_controller=diffrax.PIDController(rtol=loose, atol=loose),
            event=diffrax.Event(diffrax.steady_state_event(rtol=rtol, atol=atol)),
            max_steps=max_steps,
        )


class HysteresisSweep(eqx.Module):
    """Result of `hysteresis_sweep`: steady states along increasing and decreasing forcing.

    Attributes
    ----------
    solar_constant
        The swept values of ``S`` (W m^-2), increasing, shape ``(m,)``.
    ice_edge_increasing, ice_edge_decreasing
        Northern ice-edge latitude (degrees) of the steady state reached when ``S`` is
        raised step by step from the snowball state, or lowered from the warm state.
    mean_temperature_increasing, mean_temperature_decreasing
        Global-mean temperatures (°C) of the same states.
    """

    solar_constant: Float[Array, " m"]
    ice_edge_increasing: Float[Array, " m"]
    ice_edge_decreasing: Float[Array, " m"]
    mean_temperature_increasing: Float[Array, " m"]
    mean_temperature_decreasing: Float[Array, " m"]


def hysteresis_sweep(
    model: BudykoSellers,
    solar_constants: Float[ArrayLike, " m"],
    *,
    cold_start: ArrayLike = -50.0,
    warm_start: ArrayLike = 30.0,
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int = 4096,
) -> HysteresisSweep:
    """Quasi-static sweep of the solar constant up and down through the ice-line hysteresis.

    Starting from a uniformly cold planet at the smallest ``S`` (resp. a warm one at the
    largest), ``S`` is stepped through ``solar_constants`` and at each value the model is
    run to its steady state from the previous one (`stable_steady_state`), as a slow change of
    forcing would. Where the ice–albedo feedback allows two stable climates the two sweeps
    disagree: the rising sweep stays frozen, the falling one keeps a partial ice cap until
    it collapses to the snowball (Budyko 1969; Sellers 1969; North 1975).

    Parameters
    ----------
    model
        A `BudykoSellers` model (its own ``solar_constant`` is replaced by the sweep).
    solar_constants
        Increasing values of ``S`` (W m^-2), shape ``(m,)``.
    cold_start, warm_start
        Uniform starting temperatures (°C) for the rising and falling sweeps.
    rtol, atol, max_steps
        Passed to `stable_steady_state` (``None``: its precision-dependent defaults).

    Returns
    -------
    HysteresisSweep

    Examples
    --------
    >>> import hybrax, jax.numpy as jnp
    >>> model = hybrax.climate.BudykoSellers(num_points=30)
    >>> sweep = hybrax.climate.hysteresis_sweep(model, jnp.linspace(1200.0, 1700.0, 6))
    >>> sweep.ice_edge_decreasing.shape
    (6,)
    """
    shape = np.shape(solar_constants)
    if len(shape) != 1 or shape[0] < 1:
        raise ConfigurationError(
            f"hysteresis_sweep: solar_constants must be a 1-D array of increasing values, "
            f"got shape {shape}"
        )
    solar = check_parameter(solar_constants, "solar_constants", positive=True)
    cold_start = check_parameter(cold_start, "cold_start", scalar=True)
    warm_start = check_parameter(warm_start, "warm_start", scalar=True)
    dtype = jnp.result_type(solar, float)
    solar = solar.astype(dtype)

    def sweep(values, start):
        def body(temperature, s):
            m = eqx.tree_at(lambda mm: mm.solar_constant, model, s)
            out = stable_steady_state(
                m, EBMState(temperature), rtol=rtol, atol=atol, max_steps=max_steps
            )
            return out.temperature, (model.ice_edge_latitude(out), model.global_mean(out))

        first = jnp.full((model.num_points,), start, dtype)
        _, (edge, mean) = lax.scan(body, first, values)
        return edge, mean

    edge_up, mean_up = sweep(solar, cold_start)
    edge_down, mean_down = sweep(solar[::-1], warm_start)
    return HysteresisSweep(solar, edge_up, edge_down[::-1], mean_up, mean_down[::-1])
