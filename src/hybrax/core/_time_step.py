"""One CFL interface: a model's ``courant_number(state, dt)``, checked or inverted here."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, PyTree

from ._contract import AbstractDynamics, AbstractStepper
from ._errors import ConfigurationError
from ._parameters import check_float, concrete_or_none

__all__ = ["check_time_step", "courant_number", "max_time_step"]


def _dynamics_of(model: AbstractStepper | AbstractDynamics, where: str) -> AbstractDynamics:
    if isinstance(model, AbstractDynamics):
        return model
    if isinstance(model, AbstractStepper):
        # An integrator holds its model as .dynamics; a wrapper (Filtered, Corrected) holds
        # the integrator as .stepper.
        dynamics = getattr(model, "dynamics", None)
        if isinstance(dynamics, AbstractDynamics):
            return dynamics
        inner = getattr(model, "stepper", None)
        if isinstance(inner, AbstractStepper):
            return _dynamics_of(inner, where)
        raise ConfigurationError(
            f"{where}: {type(model).__name__} has no model (a .dynamics that is a "
            "hybrax.AbstractDynamics), so it has no time-step limit to check; pass an "
            "integrator over a model, e.g. hybrax.RK4(model, dt)"
        )
    raise ConfigurationError(
        f"{where}: needs a stepper (e.g. hybrax.RK4(model, dt)) or a model "
        f"(a hybrax.AbstractDynamics), got {type(model).__name__}"
    )


def _model_state(stepper: AbstractStepper, state: PyTree) -> PyTree:
    """The model state inside ``state``, which may be the stepper's carry (e.g. an AB3State)."""
    return stepper.state_of(stepper.init(state))


def courant_number(stepper: AbstractStepper, state: PyTree) -> Array:
    """The stepper's stability number for ``state``: its model's
    ``courant_number(state, stepper.dt)`` (see `hybrax.AbstractDynamics.courant_number`).

    Examples
    --------
    >>> import hybrax
    >>> model = hybrax.fluids.NavierStokes2D.kolmogorov(32)
    >>> float(hybrax.courant_number(hybrax.ETDRK4(model, 0.01), model.initial_state())) < 1
    True
    """
    dynamics = _dynamics_of(stepper, "courant_number")
    if not isinstance(stepper, AbstractStepper):
        raise ConfigurationError(
            "courant_number: needs a stepper (its dt sets the step), got a model; use "
            "model.courant_number(state, dt)"
        )
    return jnp.asarray(dynamics.courant_number(_model_state(stepper, state), stepper.dt))


def max_time_step(
    model: AbstractStepper | AbstractDynamics, state: PyTree, max_courant: float = 1.0
) -> float:
    """The largest time step whose stability number for ``state`` is ``max_courant``.

    Parameters
    ----------
    model
        A model (a `hybrax.AbstractDynamics` with ``courant_number``) or a stepper over one.
    state
        The state the limit is taken for (e.g. the initial state; flows speed up).
    max_courant
        The accepted stability number; its meaning and the usual steppers' limits are in the
        model's ``courant_number`` docstring.

    Returns
    -------
    float
        ``max_courant / courant_number(state, 1)`` in the model's time unit. Needs concrete
        values (not under `jax.jit`).

    Examples
    --------
    >>> import hybrax
    >>> model = hybrax.fluids.NavierStokes2D.kolmogorov(32)
    >>> dt = hybrax.max_time_step(model, model.initial_state(), 0.5)
    >>> stepper = hybrax.ETDRK4(model, dt)
    """
    dynamics = _dynamics_of(model, "max_time_step")
    max_courant = check_float(max_courant, "max_courant", positive=True)
    if isinstance(model, AbstractStepper):
        state = _model_state(model, state)
    per_unit = concrete_or_none(dynamics.courant_number(state, 1.0))
    if per_unit is None:
        raise ConfigurationError(
            "max_time_step: the state or the model's parameters are traced (inside jax.jit "
            "or jax.grad); call it outside with concrete values"
        )
    per_unit = float(per_unit)
    if per_unit <= 0.0:
        return float("inf")
    return max_courant / per_unit


def check_time_step(stepper: AbstractStepper, state: PyTree, max_courant: float = 1.0) -> PyTree:
    """Reject a time step whose stability number for ``state`` is above ``max_courant``.

    Parameters
    ----------
    stepper
        A stepper over a model that defines ``courant_number(state, dt)`` (every flow in
        `hybrax.fluids`, `hybrax.climate.TwoLayerQG`, `hybrax.climate.ShallowWater`).
    state
        The state to check (typically the initial state; the speed can grow in a run).
    max_courant
        Largest accepted stability number (default 1; the model's ``courant_number``
        docstring gives the limits of the usual steppers).

    Returns
    -------
    ``state`` unchanged. With concrete values a violation raises
    `hybrax.ConfigurationError` at once, naming the largest stable ``dt``; under `jax.jit`
    the returned state carries an `equinox.error_if` check that raises when it runs.

    Examples
    --------
    >>> import hybrax
    >>> model = hybrax.fluids.NavierStokes2D.kolmogorov(64)
    >>> state = model.initial_state()  # maximum speed 7
    >>> hybrax.check_time_step(hybrax.ETDRK4(model, 0.05), state)
    Traceback (most recent call last):
    ...
    hybrax.core._errors.ConfigurationError: ETDRK4 over NavierStokes2D...
    """
    dynamics = _dynamics_of(stepper, "check_time_step")
    if not isinstance(stepper, AbstractStepper):
        raise ConfigurationError(
            "check_time_step: needs a stepper (its dt is checked), got a model; use "
            "hybrax.max_time_step(model, state) for the limit"
        )
    max_courant = check_float(max_courant, "max_courant", positive=True)
    courant = jnp.asarray(dynamics.courant_number(_model_state(stepper, state), stepper.dt))
    value = concrete_or_none(courant)
    if value is None:
        return eqx.error_if(
            state,
            courant > max_courant,
            f"check_time_step: the time step gives a Courant number above {max_courant} for "
            "this state; reduce dt (see hybrax.max_time_step)",
        )
    value = float(value)
    if value > max_courant:
        dt = float(concrete_or_none(jnp.asarray(stepper.dt)))
        largest = dt * max_courant / value
        raise ConfigurationError(
            f"{type(stepper).__name__} over {type(dynamics).__name__}: dt={dt:.4g} gives a "
            f"Courant number {value:.3g} for this state, above the limit {max_courant:g}; use "
            f"dt <= {largest:.4g} (hybrax.max_time_step(model, state, {max_courant:g}))"
        )
    return state
