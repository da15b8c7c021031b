"""Energy-balance climate models: the global (0-D) model and the Budyko–Sellers (1-D) model.

Time is in years, temperature in degrees Celsius, fluxes in W m^-2. Heat capacities are
therefore in W yr m^-2 K^-1 (1 W yr m^-2 K^-1 = 3.156e7 J m^-2 K^-1, the heat capacity
of about 7.6 m of sea water).
"""

from __future__ import annotations

from collections.abc import Callable

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
    check_dtype,
    check_dynamics,
    check_float,
    check_parameter,
    parameter,
)

__all__ = [
    "BudykoSellers",
    "ConstantAlbedo",
    "EBMState",
    "EnergyBalance0D",
    "HysteresisSweep",
    "IceAlbedo",
    "hysteresis_sweep",
    "steady_state",
]

Forcing = Callable[[Array], ArrayLike]


def _like(parameter: ArrayLike, x: Array) -> Array:
    return jnp.asarray(parameter).astype(x.dtype)


def _forcing_value(forcing: Forcing | None, t: ArrayLike, x: Array) -> Array | float:
    if forcing is None:
        return 0.0
    return jnp.asarray(forcing(jnp.asarray(t).astype(x.dtype))).astype(x.dtype)


class EBMState(eqx.Module):
    """State of an energy-balance model: surface temperature and model time.

    Parameters
    ----------
    temperature
        Surface temperature in degrees Celsius: a scalar for `EnergyBalance0D`, shape
        ``(num_points,)`` for `BudykoSellers`.
    time
        Model time in years (scalar, the temperature's dtype); defaults to 0.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> state = EBMState(jnp.asarray(15.0))
    >>> float(state.time)
    0.0
    """

    temperature: Float[Array, "*points"]
    time: Float[Array, ""]

    def __init__(self, temperature: ArrayLike, time: ArrayLike | None = None):
        temperature = jnp.asarray(temperature)
        if not jnp.issubdtype(temperature.dtype, jnp.floating):
            temperature = temperature.astype(jnp.result_type(float))
        self.temperature = temperature
        self.time = jnp.asarray(0 if time is None else time, dtype=temperature.dtype)


def _check_ebm_state(state, shape: tuple[int, ...], model: str) -> None:
    if not isinstance(state, EBMState):
        raise ConfigurationError(
            f"{model} expects an EBMState, got {type(state).__name__}; "
            f"build one with {model}(...).initial_state()"
        )
    actual = tuple(jnp.shape(state.temperature))
    if actual != shape:
        hint = ""
        if len(actual) > len(shape) and actual[len(actual) - len(shape) :] == shape:
            hint = "; for an ensemble use jax.vmap over the leading axis"
        raise ConfigurationError(
            f"{model}: state.temperature must have shape {shape}, got {actual}{hint}"
        )
    if not jnp.issubdtype(jnp.result_type(state.temperature), jnp.floating):
        raise ConfigurationError(
            f"{model}: state.temperature must be floating (float32 or float64), "
            f"got {jnp.result_type(state.temperature)}"
        )


class EnergyBalance0D(AbstractDynamics):
    """The zero-dimensional (global-mean) energy-balance model.

    .. math::
        C \\frac{dT}{dt} = (1 - \\alpha) \\frac{S}{4} - (A + B T) + F(t)

    with ``T`` the global-mean surface temperature (°C), ``S`` the solar constant, ``alpha``
    the planetary albedo, ``A + B T`` the linearised outgoing long-wave radiation (Budyko
    1969; ``B`` is the climate feedback parameter) and ``F(t)`` an optional radiative
    forcing. With constant forcing ``F`` the temperature relaxes exponentially, with time
    scale ``C / B`` (about 4 years with the defaults), to the equilibrium
    ``T* = ((1 - alpha) S / 4 - A + F) / B`` (16.7 °C with the defaults).

    State: `EBMState` with a scalar temperature; time in years.

    Parameters
    ----------
    solar_constant
        ``S`` in W m^-2 (default 1361).
    albedo
        Planetary albedo, dimensionless (default 0.3).
    olr_intercept
        ``A`` in W m^-2 (default 203.3, North et al. 1981).
    olr_slope
        ``B`` in W m^-2 K^-1 (default 2.09, North et al. 1981).
    heat_capacity
        ``C`` in W yr m^-2 K^-1 (default 8.0, about a 60 m ocean mixed layer).
    forcing
        ``F(t)``: a callable from time (years) to W m^-2, e.g. the bound ``evaluate`` of a
        `diffrax.LinearInterpolation` of a forcing record; ``None`` (default) means 0.

    All numerical parameters are differentiable leaves.

    Examples
    --------
    >>> import hybrax
    >>> model = hybrax.climate.EnergyBalance0D()
    >>> stepper = hybrax.DiffraxStepper(model, dt=1.0)
    >>> final, _ = hybrax.rollout(stepper, model.initial_state(0.0), 60, save_every=None)
    >>> bool(abs(final.temperature - model.equilibrium_temperature()) < 1e-3)
    True
    """

    solar_constant: Float[Array, ""] = parameter(
        "solar_constant", nonnegative=True, scalar=True, example="solar_constant=1361.0"
    )
    albedo: Float[Array, ""] = parameter("albedo", scalar=True, example="albedo=0.3")
    olr_intercept: Float[Array, ""] = parameter(
        "olr_intercept", scalar=True, example="olr_intercept=203.3"
    )
    olr_slope: Float[Array, ""] = parameter(
        "olr_slope", positive=True, scalar=True, example="olr_slope=2.09"
    )
    heat_capacity: Float[Array, ""] = parameter(
        "heat_capacity", positive=True, scalar=True, example="heat_capacity=8.0"
    )
    forcing: Forcing | None = None

    def __init__(
        self,
        solar_constant: ArrayLike = 1361.0,
        albedo: ArrayLike = 0.3,
        olr_intercept: ArrayLike = 203.3,
        olr_slope: ArrayLike = 2.09,
        heat_capacity: ArrayLike = 8.0,
        forcing: Forcing | None = None,
    ):
        self.solar_constant = solar_constant
        self.albedo = albedo
        self.olr_intercept = olr_intercept
        self.olr_slope = olr_slope
        self.heat_capacity = heat_capacity
        self.forcing = forcing

    def tendency(self, state: EBMState, t: ArrayLike) -> EBMState:
        self.check_state(state)
        temperature = state.temperature
        s, alpha, a, b, c = (
            _like(p, temperature)
            for p in (
                self.solar_constant,
                self.albedo,
                self.olr_intercept,
                self.olr_slope,
                self.heat_capacity,
            )
        )
        net = (1 - alpha) * s / 4 - (a + b * temperature)
        net = net + _forcing_value(self.forcing, t, temperature)
        return EBMState(net / c, state.time)

    def check_state(self, state: EBMState) -> None:
        _check_ebm_state(state, (), "EnergyBalance0D")

    def equilibrium_temperature(self, forcing: ArrayLike = 0.0) -> Array:
        """``T* = ((1 - alpha) S / 4 - A + F) / B`` in °C for a constant forcing ``F``."""
        return (
            (1 - self.albedo) * self.solar_constant / 4 - self.olr_intercept + forcing
        ) / self.olr_slope

    def initial_state(self, temperature: ArrayLike | None = None, dtype=None) -> EBMState:
        """A state at time 0: the given temperature (°C) or, by default, the equilibrium
        without forcing."""
        if temperature is None:
            temperature = self.equilibrium_temperature()
        temperature = check_parameter(temperature, "temperature", example="temperature=15.0 (°C)")
        dtype = check_dtype(dtype, "EnergyBalance0D.initial_state") or temperature.dtype
        return EBMState(jnp.asarray(temperature, dtype=dtype))


class ConstantAlbedo(eqx.Module):
    """A surface albedo that does not depend on temperature or latitude.

    Parameters
    ----------
    value
        The albedo, dimensionless (default 0.3); differentiable.

    Examples
    --------
    >>> import hybrax, jax.numpy as jnp
    >>> float(hybrax.climate.ConstantAlbedo(0.3)(jnp.zeros(3), jnp.zeros(3))[0])
    0.3...
    """

    value: Float[Array, ""] = parameter("value", scalar=True, example="value=0.3")

    def __init__(self, value: ArrayLike = 0.3):
        self.value = value

    def __call__(
        self, temperature: Float[Array, " n"], sin_latitude: Float[Array, " n"]
    ) -> Float[Array, " n"]:
        return jnp.broadcast_to(_like(self.value, temperature), jnp.shape(temperature))


class IceAlbedo(eqx.Module):
    """Ice–albedo feedback: a bright ice cap where the surface is colder than a threshold.

    .. math::
        \\alpha(T, x) = \\alpha_\\text{ice} + (\\alpha_0 + \\alpha_2 P_2(x) - \\alpha_\\text{ice})
            \\, \\tfrac12 \\left[1 + \\tanh\\frac{T - T_\\text{ice}}{w}\\right]

    with ``x`` the sine of latitude and ``P_2(x) = (3x^2 - 1)/2``. The ice-free albedo
    ``alpha_0 + alpha_2 P_2`` grows toward the poles (North et al. 1981). The transition is a
    smooth ``tanh`` step of width ``w`` so that the model, its steady states and their
    gradients are differentiable; ``w -> 0`` recovers the step albedo of Budyko (1969) and
    North (1975), whose ice edge sits where ``T = T_ice``.

    Parameters
    ----------
    ice_free
        ``alpha_0`` (default 0.319: co-albedo 0.681 as North et al. 1981).
    ice_free_p2
        ``alpha_2`` (default 0.202, North et al. 1981).
    ice
        ``alpha_ice`` (default 0.62).
    threshold_temperature
        ``T_ice`` in °C (default -10).
    transition_width
        ``w`` in K (default 1.0).

    All parameters are differentiable leaves.

    Examples
    --------
    >>> import hybrax, jax.numpy as jnp
    >>> albedo = hybrax.climate.IceAlbedo()
    >>> a = albedo(jnp.array([-30.0, 20.0]), jnp.array([0.9, 0.0]))
    >>> bool(a[0] > 0.6 and a[1] < 0.3)
    True
    """

    ice_free: Float[Array, ""] = parameter("ice_free", scalar=True, example="ice_free=0.319")
    ice_free_p2: Float[Array, ""] = parameter(
        "ice_free_p2", scalar=True, example="ice_free_p2=0.202"
    )
    ice: Float[Array, ""] = parameter("ice", scalar=True, example="ice=0.62")
    threshold_temperature: Float[Array, ""] = parameter(
        "threshold_temperature", scalar=True, example="threshold_temperature=-10.0"
    )
    transition_width: Float[Array, ""] = parameter(
        "transition_width", positive=True, scalar=True, example="transition_width=1.0"
    )

    def __init__(
        self,
        ice_free: ArrayLike = 0.319,
        ice_free_p2: ArrayLike = 0.202,
        ice: ArrayLike = 0.62,
        threshold_temperature: ArrayLike = -10.0,
        transition_width: ArrayLike = 1.0,
    ):
        self.ice_free = ice_free
        self.ice_free_p2 = ice_free_p2
        self.ice = ice
        self.threshold_temperature = threshold_temperature
        self.transition_width = transition_width

    def __call__(
        self, temperature: Float[Array, " n"], sin_latitude: Float[Array, " n"]
    ) -> Float[Array, " n"]:
        a0, a2, ai, t_ice, width = (
            _like(p, temperature)
            for p in (
                self.ice_free,
                self.ice_free_p2,
                self.ice,
                self.threshold_temperature,
                self.transition_width,
            )
        )
        x = sin_latitude.astype(temperature.dtype)
        ice_free = a0 + a2 * (1.5 * x * x - 0.5)
        melted = 0.5 * (1 + jnp.tanh((temperature - t_ice) / width))
        return ai + (ice_free - ai) * melted


class BudykoSellers(AbstractDynamics):
    """The one-dimensional (latitude) energy-balance model with diffusive heat transport.

    .. math::
        C \\frac{\\partial T}{\\partial t} = Q\\, s(x) \\,[1 - \\alpha(T, x)] - (A + B T)
            + D \\frac{\\partial}{\\partial x}\\left[(1 - x^2)\\frac{\\partial T}{\\partial x}
            \\right] + F(t)

    in the coordinate ``x = sin(latitude)`` (North 1975), pole to pole. ``Q = S / 4`` is the
    mean insolation, ``s(x) = 1 + s_2 P_2(x)`` its annual-mean distribution, ``alpha`` the
    albedo (by default with ice–albedo feedback, `IceAlbedo`), ``A + B T`` the outgoing
    long-wave radiation and ``D`` the heat-transport coefficient. The ``(1 - x^2)`` factor
    makes the transport vanish at the poles, so no boundary condition is needed.

    Discretisation: ``num_points`` finite-volume cells of equal width in ``x`` (hence of
    equal area, so the global mean is the plain cell average); transport is a conservative
    flux difference (it moves heat, never creates it) and is second-order accurate. With a
    constant albedo the steady state is known in closed form,
    ``T = (Q (1-alpha) - A)/B + Q (1-alpha) s_2 P_2(x) / (B + 6 D)``; with ice–albedo
    feedback the model has several steady states for a range of ``S`` (ice-line
    hysteresis, see `hysteresis_sweep`).

    State: `EBMState` with temperature of shape ``(num_points,)`` in °C, south to north;
    time in years. The transport is stiff on fine grids: integrate with an implicit diffrax
    solver, e.g. ``hybrax.DiffraxStepper(model, dt, solver=diffrax.Kvaerno5(), ...)``, or
    go straight to equilibrium with `steady_state`.

    Parameters
    ----------
    num_points
        Number of latitude cells (static, >= 4; default 90, i.e. about 2° near the equator).
    solar_constant
        ``S`` in W m^-2 (default 1337.6 = 4 x 334.4, the value North et al. (1981) tuned
        the model with: the defaults then put the ice edge at 72° and the global mean at
        14.3 °C).
    olr_intercept, olr_slope
        ``A`` (W m^-2, default 203.3) and ``B`` (W m^-2 K^-1, default 2.09).
    diffusivity
        ``D`` in W m^-2 K^-1 (default 0.649, North et al. 1981).
    heat_capacity
        ``C`` in W yr m^-2 K^-1 (default 8.0).
    insolation_p2
        ``s_2`` (default -0.482).
    albedo
        A callable module ``albedo(temperature, sin_latitude)``; default `IceAlbedo()`.
    forcing
        Optional globally uniform radiative forcing ``F(t)`` in W m^-2.

    Examples
    --------
    >>> import hybrax
    >>> model = hybrax.climate.BudykoSellers()
    >>> warm = hybrax.climate.steady_state(model, model.initial_state(15.0))
    >>> bool(60 < model.ice_edge_latitude(warm) < 80)
    True
    """

    num_points: int = eqx.field(static=True)
    solar_constant: Float[Array, ""] = parameter(
        "solar_constant", nonnegative=True, scalar=True, example="solar_constant=1361.0"
    )
    olr_intercept: Float[Array, ""] = parameter(
        "olr_intercept", scalar=True, example="olr_intercept=203.3"
    )
    olr_slope: Float[Array, ""] = parameter(
        "olr_slope", positive=True, scalar=True, example="olr_slope=2.09"
    )
    diffusivity: Float[Array, ""] = parameter(
        "diffusivity", nonnegative=True, scalar=True, example="diffusivity=0.649"
    )
    heat_capacity: Float[Array, ""] = parameter(
        "heat_capacity", positive=True, scalar=True, example="heat_capacity=8.0"
    )
    insolation_p2: Float[Array, ""] = parameter(
        "insolation_p2", scalar=True, example="insolation_p2=-0.482"
    )
    albedo: Callable[[Array, Array], Array]
    forcing: Forcing | None = None

    def __init__(
        self,
        num_points: int = 90,
        solar_constant: ArrayLike = 1337.6,
        olr_intercept: ArrayLike = 203.3,
        olr_slope: ArrayLike = 2.09,
        diffusivity: ArrayLike = 0.649,
        heat_capacity: ArrayLike = 8.0,
        insolation_p2: ArrayLike = -0.482,
        albedo: Callable[[Array, Array], Array] | None = None,
        forcing: Forcing | None = None,
    ):
        if isinstance(num_points, bool) or not isinstance(num_points, int) or num_points < 4:
            raise ConfigurationError(
                f"BudykoSellers needs num_points >= 4 (an int), got {num_points!r}; "
                "90 cells resolve the ice edge to about 2 degrees"
            )
        self.num_points = num_points
        self.solar_constant = solar_constant
        self.olr_intercept = olr_intercept
        self.olr_slope = olr_slope
        self.diffusivity = diffusivity
        self.heat_capacity = heat_capacity
        self.insolation_p2 = insolation_p2
        self.albedo = IceAlbedo() if albedo is None else albedo
        self.forcing = forcing

    def sin_latitude(self, dtype=None) -> Float[Array, " n"]:
        """Cell centres in ``x = sin(latitude)``, south to north, shape ``(num_points,)``."""
        n = self.num_points
        return jnp.asarray(-1 + (np.arange(n) + 0.5) * (2 / n), dtype=dtype)

    def latitude(self, dtype=None) -> Float[Array, " n"]:
        """Cell-centre latitudes in degrees."""
        return jnp.degrees(jnp.arcsin(self.sin_latitude(dtype)))

    def insolation(self, dtype=None) -> Float[Array, " n"]:
        """Annual-mean insolation ``Q s(x)`` at the cell centres, W m^-2."""
        x = self.sin_latitude(dtype)
        s, s2 = (jnp.asarray(p, dtype=x.dtype) for p in (self.solar_constant, self.insolation_p2))
        return s / 4 * (1 + s2 * (1.5 * x * x - 0.5))

    def tendency(self, state: EBMState, t: ArrayLike) -> EBMState:
        self.check_state(state)
        temperature = state.temperature
        dtype = temperature.dtype
        x = self.sin_latitude(dtype)
        a, b, d, c = (
            _like(p, temperature)
            for p in (self.olr_intercept, self.olr_slope, self.diffusivity, self.heat_capacity)
        )
        absorbed = self.insolation(dtype) * (1 - self.albedo(temperature, x).astype(dtype))
        net = absorbed - (a + b * temperature) + _forcing_value(self.forcing, t, temperature)
        return EBMState((net + d * self._transport(temperature)) / c, state.time)

    def _transport(self, temperature: Array) -> Array:
        """``d/dx[(1 - x^2) dT/dx]`` as a flux difference; zero flux through the poles."""
        n = self.num_points
        dx = 2 / n
        faces = jnp.asarray(-1 + np.arange(1, n) * dx, dtype=temperature.dtype)
        flux = (1 - faces * faces) * jnp.diff(temperature) / dx
        zero = jnp.zeros((*temperature.shape[:-1], 1), temperature.dtype)
        return jnp.diff(jnp.concatenate([zero, flux, zero], axis=-1)) / dx

    def check_state(self, state: EBMState) -> None:
        _check_ebm_state(state, (self.num_points,), "BudykoSellers")

    def initial_state(self, temperature: ArrayLike = 15.0, dtype=None) -> EBMState:
        """A state at time 0 with uniform (scalar) or given (``(num_points,)``) temperature in
        °C. Start warm (e.g. 15) for the present-day branch, cold (e.g. -40) for the
        snowball branch."""
        temperature = check_parameter(temperature, "temperature", example="temperature=15.0 (°C)")
        dtype = check_dtype(dtype, "BudykoSellers.initial_state") or temperature.dtype
        temperature = jnp.broadcast_to(jnp.asarray(temperature, dtype), (self.num_points,))
        return EBMState(temperature)

    def global_mean(self, state: EBMState) -> Array:
        """Area-weighted global-mean temperature (°C): the cell average (equal-area cells)."""
        return jnp.mean(state.temperature, axis=-1)

    def ice_edge_latitude(self, state: EBMState) -> Array:
        """Latitude (degrees) of the northern ice edge, where ``T`` falls through the albedo's
        ``threshold_temperature`` (default -10 °C), linearly interpolated between cells.

        90 means ice-free, 0 an ice-covered (snowball) hemisphere.
        """
        temperature = state.temperature
        threshold = getattr(self.albedo, "threshold_temperature", -10.0)
        half = self.num_points // 2
        excess = temperature[..., self.num_points - half :] - _like(threshold, temperature)
        x = self.sin_latitude(temperature.dtype)[self.num_points - half :]
        frozen = excess < 0
        first = jnp.argmax(frozen, axis=-1)
        any_frozen = jnp.any(frozen, axis=-1)
        previous = jnp.maximum(first - 1, 0)
        f0 = jnp.take_along_axis(excess, previous[..., None], -1)[..., 0]
        f1 = jnp.take_along_axis(excess, first[..., None], -1)[..., 0]
        weight = f0 / jnp.where(f0 - f1 == 0, 1, f0 - f1)
        edge = x[previous] + weight * (x[first] - x[previous])
        edge = jnp.where(first == 0, 0.0, edge)
        edge = jnp.where(any_frozen, edge, 1.0)
        return jnp.degrees(jnp.arcsin(jnp.clip(edge, 0, 1)))


def steady_state(
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
    """Integrate an energy-balance model from ``state`` until it stops changing.

    Runs `diffrax.diffeqsolve` with an implicit, L-stable solver (default
    `diffrax.ImplicitEuler`) under adaptive step control and stops once the RMS of
    ``dT/dt`` (K/yr) falls below ``atol + rtol * RMS(T)`` (a steady-state event). Because it
    follows the time evolution, it lands on a *stable* steady state, the one whose basin
    holds ``state`` (the warm or the snowball branch). Only the basin matters, not the
    transient's accuracy, so the steps are controlled loosely (``transient_tolerance``);
    two Newton steps then polish the state to round-off. Gradients use the implicit
    function theorem (``dT/dp = -(df/dT)^-1 df/dp``, one dense linear solve), so they are
    those of the fixed point itself, not of the transient.

    Parameters
    ----------
    dynamics
        An energy-balance model (`EnergyBalance0D`, `BudykoSellers`) without time-dependent
        forcing.
    state
        Starting state.
    rtol, atol
        Steady-state tolerances on ``dT/dt`` (K/yr); default 1e-7 in float64 and 1e-5 in
        float32 (its round-off level).
    solver
        A diffrax solver (default ``diffrax.ImplicitEuler`` with a chord root finder at
        ``transient_tolerance``; higher-order implicit solvers such as ``Kvaerno5`` stall
        in float32 on this stiff problem).
    transient_tolerance
        Relative and absolute tolerance of the step-size controller (and of the default
        root finder) during the transient (default 1e-3).
    max_steps
        Maximum solver steps (static); exceeding it raises an error.
    initial_dt
        First step, years.

    Returns
    -------
    EBMState
        The steady state; its ``time`` is the model time at which it was reached.

    Examples
    --------
    >>> import hybrax
    >>> model = hybrax.climate.EnergyBalance0D()
    >>> eq = hybrax.climate.steady_state(model, model.initial_state(0.0))
    >>> bool(abs(eq.temperature - model.equilibrium_temperature()) < 1e-4)
    True
    """
    check_dynamics(dynamics, "steady_state")
    dynamics.check_state(state)
    for name, value in (("rtol", rtol), ("atol", atol)):
        if value is not None:
            check_parameter(value, name, positive=True, scalar=True, example=f"{name}=1e-6")
    transient_tolerance = check_float(transient_tolerance, "transient_tolerance", positive=True)
    initial_dt = check_float(initial_dt, "initial_dt", positive=True)
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ConfigurationError(f"steady_state: max_steps must be an int >= 1, got {max_steps!r}")
    if solver is not None and not isinstance(solver, diffrax.AbstractSolver):
        raise ConfigurationError(
            f"steady_state: solver must be a diffrax solver such as diffrax.ImplicitEuler(), "
            f"got {solver!r:.60}"
        )
    if solver is None:
        chord = diffrax.VeryChord(
            rtol=transient_tolerance, atol=transient_tolerance, norm=optx.rms_norm
        )
        solver = diffrax.ImplicitEuler(root_finder=chord)
    # The time integration finds the stable state; it is not differentiated.
    frozen = jax.tree.map(
        lambda x: jax.lax.stop_gradient(x) if eqx.is_array(x) else x, (dynamics, state)
    )
    # Tolerances on dT/dt (K/yr) reachable in the state's precision: float32 round-off in
    # the tendency is about 1e-6 K/yr.
    default = 1e-7 if jnp.finfo(state.temperature.dtype).bits == 64 else 1e-5
    rtol = default if rtol is None else rtol
    atol = default if atol is None else atol
    solution = _solve_to_steady_state(
        *frozen, solver, initial_dt, rtol, atol, transient_tolerance, max_steps
    )
    time = solution.ts[0].astype(state.temperature.dtype)
    shape = solution.ys[0].shape

    def residual(flat):
        return dynamics.tendency(EBMState(flat.reshape(shape), time), time).temperature.ravel()

    # Two Newton steps on f(T) = 0 from the state reached polish it to round-off; with the
    # Jacobian held fixed, the last one carries exactly the implicit-function-theorem
    # gradient dT/dp = -(df/dT)^-1 df/dp to the model's parameters.
    flat = solution.ys[0].ravel()
    for _ in range(2):
        jacobian = jax.lax.stop_gradient(jax.jacfwd(residual)(flat))
        flat = flat - jnp.linalg.solve(jacobian, residual(flat)[:, None])[:, 0]
    return EBMState(flat.reshape(shape), time)


def _vector_field(t, temperature, model):
    return model.tendency(EBMState(temperature, t), t).temperature


@eqx.filter_jit
def _solve_to_steady_state(dynamics, state, solver, initial_dt, rtol, atol, loose, max_steps):
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
    run to its steady state from the previous one (`steady_state`), as a slow change of
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
        Passed to `steady_state` (``None``: its precision-dependent defaults).

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
            out = steady_state(m, EBMState(temperature), rtol=rtol, atol=atol, max_steps=max_steps)
            return out.temperature, (model.ice_edge_latitude(out), model.global_mean(out))

        first = jnp.full((model.num_points,), start, dtype)
        _, (edge, mean) = lax.scan(body, first, values)
        return edge, mean

    edge_up, mean_up = sweep(solar, cold_start)
    edge_down, mean_down = sweep(solar[::-1], warm_start)
    return HysteresisSweep(solar, edge_up, edge_down[::-1], mean_up, mean_down[::-1])
