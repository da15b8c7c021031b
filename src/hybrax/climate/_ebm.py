"""Energy-balance climate models: the global (0-D) model and the Budyko–Sellers (1-D) model.

Time is in years, temperature in degrees Celsius, fluxes in W m^-2. Heat capacities are
therefore in W yr m^-2 K^-1 (1 W yr m^-2 K^-1 = 3.156e7 J m^-2 K^-1, the heat capacity
of about 7.6 m of sea water).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from hybrax.core import (
    AbstractDynamics,
    ConfigurationError,
    check_dtype,
    check_field,
    check_parameter,
    parameter,
    scalar_like,
)

from ._albedo import IceAlbedo

__all__ = ["BudykoSellers", "EBMState", "EnergyBalance0D"]

Forcing = Callable[[Array], ArrayLike]


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
    check_field("state.temperature", state.temperature, shape, model=model)


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
        "solar_constant",
        default=1361.0,
        nonnegative=True,
        scalar=True,
        example="solar_constant=1361.0",
    )
    albedo: Float[Array, ""] = parameter("albedo", default=0.3, scalar=True, example="albedo=0.3")
    olr_intercept: Float[Array, ""] = parameter(
        "olr_intercept", default=203.3, scalar=True, example="olr_intercept=203.3"
    )
    olr_slope: Float[Array, ""] = parameter(
        "olr_slope", default=2.09, positive=True, scalar=True, example="olr_slope=2.09"
    )
    heat_capacity: Float[Array, ""] = parameter(
        "heat_capacity", default=8.0, positive=True, scalar=True, example="heat_capacity=8.0"
    )
    forcing: Forcing | None = None

    def tendency(self, state: EBMState, t: ArrayLike) -> EBMState:
        self.check_state(state)
        temperature = state.temperature
        s, alpha, a, b, c = (
            scalar_like(p, temperature)
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


def _default_albedo(albedo):
    return IceAlbedo() if albedo is None else albedo


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
    go straight to equilibrium with `stable_steady_state`.

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
    >>> warm = hybrax.climate.stable_steady_state(model, model.initial_state(15.0))
    >>> bool(60 < model.ice_edge_latitude(warm) < 80)
    True
    """

    num_points: int = eqx.field(default=90, static=True)
    solar_constant: Float[Array, ""] = parameter(
        "solar_constant",
        default=1337.6,
        nonnegative=True,
        scalar=True,
        example="solar_constant=1361.0",
    )
    olr_intercept: Float[Array, ""] = parameter(
        "olr_intercept", default=203.3, scalar=True, example="olr_intercept=203.3"
    )
    olr_slope: Float[Array, ""] = parameter(
        "olr_slope", default=2.09, positive=True, scalar=True, example="olr_slope=2.09"
    )
    diffusivity: Float[Array, ""] = parameter(
        "diffusivity", default=0.649, nonnegative=True, scalar=True, example="diffusivity=0.649"
    )
    heat_capacity: Float[Array, ""] = parameter(
        "heat_capacity", default=8.0, positive=True, scalar=True, example="heat_capacity=8.0"
    )
    insolation_p2: Float[Array, ""] = parameter(
        "insolation_p2", default=-0.482, scalar=True, example="insolation_p2=-0.482"
    )
    albedo: Callable[[Array, Array], Array] = eqx.field(default=None, converter=_default_albedo)
    forcing: Forcing | None = None

    def __check_init__(self):
        n = self.num_points
        if isinstance(n, bool) or not isinstance(n, int) or n < 4:
            raise ConfigurationError(
                f"BudykoSellers needs num_points >= 4 (an int), got {n!r}; "
                "90 cells resolve the ice edge to about 2 degrees"
            )

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
            scalar_like(p, temperature)
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
        excess = temperature[..., self.num_points - half :] - scalar_like(threshold, temperature)
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
