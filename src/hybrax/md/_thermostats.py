"""MD thermostats (Steppers): Langevin BAOAB, Nosé–Hoover chain, Brownian dynamics."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from hybrax.core import ConfigurationError, time_step

from . import _nose_hoover as nhc
from ._energy import AbstractEnergy
from ._integrators import (
    AbstractMDStepper,
    OnOverflow,
    _checked,
    _max_displacement,
    _on_overflow,
    _scalar,
)
from ._space import AbstractBox
from ._state import MDState, NoseHooverChainState

__all__ = ["BrownianDynamics", "LangevinBAOAB", "NoseHooverChain"]


class LangevinBAOAB(AbstractMDStepper):
    """NVT Langevin dynamics with the BAOAB splitting (Leimkuhler & Matthews 2013).

    .. math::
        dv = \\frac{F}{m} dt - \\gamma v\\, dt + \\sqrt{2 \\gamma k_B T / m}\\, dW

    B: half kick, A: half drift, O: exact Ornstein–Uhlenbeck velocity update
    ``v <- c v + sqrt((1 - c^2) kT / m) xi`` with ``c = exp(-gamma dt)``, A, force, B.
    Configurational averages are accurate to second order in ``dt``. The random numbers
    come from ``state.key`` (split every step), so runs are reproducible.

    Parameters
    ----------
    energy, box, dt, masses, on_overflow, max_displacement
        As in `VelocityVerlet`.
    temperature
        Target ``k_B T`` (epsilon), >= 0; differentiable.
    friction
        ``gamma`` (1/tau), >= 0 (0 is NVE), default 1; differentiable.

    Examples
    --------
    >>> import jax, hybrax.md as md
    >>> positions, box = md.lattice("fcc", (4, 4, 4), density=0.8442)
    >>> stepper = md.LangevinBAOAB(md.LennardJones(), box, dt=0.005, temperature=1.5)
    >>> state = stepper.init(positions, None, md.neighbor_list(positions, box, 2.5),
    ...     key=jax.random.key(0))
    """

    energy: AbstractEnergy
    box: AbstractBox
    dt: Array = eqx.field(converter=time_step)
    temperature: Array = eqx.field(
        converter=_checked("temperature", nonnegative=True, scalar=True, example="temperature=1.0")
    )
    friction: Array = eqx.field(
        default=1.0,
        converter=_checked("friction", nonnegative=True, scalar=True, example="friction=1.0"),
    )
    masses: Array = eqx.field(
        default=1.0, converter=_checked("masses", positive=True, example="masses=1.0")
    )
    on_overflow: OnOverflow = eqx.field(static=True, default="raise", converter=_on_overflow)
    max_displacement: float | None = eqx.field(
        static=True, default=None, converter=_max_displacement
    )

    def step(self, state: MDState) -> MDState:
        x, v = state.positions, state.velocities
        key, noise_key = self._key(state)
        dt = _scalar(self.dt, x)
        inv_m = self._inverse_mass(x)
        kT = _scalar(self.temperature, x)
        c = jnp.exp(-_scalar(self.friction, x) * dt)
        v = v + 0.5 * dt * state.forces * inv_m
        x = self.box.shift(x, 0.5 * dt * v)
        v = c * v + jnp.sqrt((1.0 - c * c) * kT * inv_m) * self._noise(noise_key, v)
        x = self.box.shift(x, 0.5 * dt * v)
        neighbors, energy, forces = self._evaluate(x, state.neighbors)
        v = v + 0.5 * dt * forces * inv_m
        new = MDState(x, v, forces, energy, neighbors, key, state.time + dt, state.thermostat)
        return self._guard(new)

    def _noise(self, key, v: Array) -> Array:
        """The O step's standard normal numbers, shaped like ``v`` (padded batches switch
        them off for padding atoms)."""
        return jax.random.normal(key, v.shape, v.dtype)


class NoseHooverChain(AbstractMDStepper):
    """NVT molecular dynamics with a Nosé–Hoover chain thermostat (Martyna, Klein &
    Tuckerman 1992), integrated with the Trotter splitting of Martyna et al. (1996):
    a thermostat half step, velocity Verlet, another thermostat half step.

    Deterministic; the extended energy `nose_hoover_energy` is conserved, and the kinetic
    temperature fluctuates around ``temperature`` with relaxation time about ``tau``.

    Parameters
    ----------
    energy, box, dt, masses, on_overflow, max_displacement
        As in `VelocityVerlet`.
    temperature
        Target ``k_B T`` (epsilon), > 0 (the chain masses are proportional to it);
        differentiable.
    tau
        Thermostat period (tau), > 0, default 0.5 (about ``100 dt``); differentiable.
    chain_length
        Number of links ``M`` (static), default 3.
    degrees_of_freedom
        ``N_f`` (static); default ``3 N - 3`` (momentum conserved).

    Examples
    --------
    >>> import hybrax.md as md
    >>> positions, box = md.lattice("fcc", (4, 4, 4), density=0.8442)
    >>> stepper = md.NoseHooverChain(md.LennardJones(), box, dt=0.005, temperature=1.5,
    ...     tau=0.5)
    """

    energy: AbstractEnergy
    box: AbstractBox
    dt: Array = eqx.field(converter=time_step)
    temperature: Array = eqx.field(
        converter=_checked("temperature", positive=True, scalar=True, example="temperature=1.5")
    )
    tau: Array = eqx.field(
        default=0.5, converter=_checked("tau", positive=True, scalar=True, example="tau=0.5")
    )
    chain_length: int = eqx.field(static=True, default=3)
    degrees_of_freedom: int | None = eqx.field(static=True, default=None)
    masses: Array = eqx.field(
        default=1.0, converter=_checked("masses", positive=True, example="masses=1.0")
    )
    on_overflow: OnOverflow = eqx.field(static=True, default="raise", converter=_on_overflow)
    max_displacement: float | None = eqx.field(
        static=True, default=None, converter=_max_displacement
    )

    def __check_init__(self):
        nhc.check_chain(self.chain_length, self.degrees_of_freedom)

    def _init_thermostat(self, positions):
        return nhc.zero_chain(self.chain_length, positions)

    def _dof(self, positions) -> int:
        return nhc.particle_dof(self.degrees_of_freedom, positions)

    def chain_masses(self, positions: Array) -> Array:
        """Thermostat masses ``Q_1 = N_f kT tau^2``, ``Q_k = kT tau^2``."""
        return nhc.chain_masses(
            self.temperature, self.tau, self.chain_length, self._dof(positions), positions
        )

    def _half_step(self, v, chain: NoseHooverChainState, inv_m, dt):
        """Propagate the chain and scale velocities over ``dt / 2``."""
        kT = _scalar(self.temperature, v)
        kinetic2 = jnp.sum(v * v / inv_m)  # sum m v^2
        scale, chain = nhc.chain_half_step(
            kinetic2, chain, self.chain_masses(v), self._dof(v), kT, dt
        )
        return v * scale, chain

    def step(self, state: MDState) -> MDState:
        if state.thermostat is None:
            raise ConfigurationError(
                "NoseHooverChain needs thermostat variables in the state: create it with "
                "this stepper's init(...)"
            )
        x = state.positions
        dt = _scalar(self.dt, x)
        inv_m = self._inverse_mass(x)
        v, chain = self._half_step(state.velocities, state.thermostat, inv_m, dt)
        v = v + 0.5 * dt * state.forces * inv_m
        x = self.box.shift(x, dt * v)
        neighbors, energy, forces = self._evaluate(x, state.neighbors)
        v = v + 0.5 * dt * forces * inv_m
        v, chain = self._half_step(v, chain, inv_m, dt)
        new = MDState(x, v, forces, energy, neighbors, state.key, state.time + dt, chain)
        return self._guard(new)

    def extended_energy(self, state: MDState) -> Array:
        """The conserved quantity: kinetic + potential + thermostat energy (epsilon)."""
        x = state.positions
        kT = _scalar(self.temperature, x)
        q = self.chain_masses(x)
        inv_m = self._inverse_mass(x)
        kinetic = 0.5 * jnp.sum(state.velocities**2 / inv_m)
        thermo = nhc.chain_energy(state.thermostat, q, self._dof(x), kT)
        return kinetic + state.potential_energy + thermo


class BrownianDynamics(AbstractMDStepper):
    """Overdamped Langevin (Brownian) dynamics, Euler–Maruyama.

    .. math::
        x' = x + \\frac{dt}{\\gamma m} F(x) + \\sqrt{\\frac{2 k_B T\\, dt}{\\gamma m}}\\,\\xi

    The diffusion coefficient of a free particle is ``D = kT / (gamma m)``; the stationary
    distribution is Boltzmann's ``exp(-U / kT)`` (to first order in ``dt``). Velocities
    are not used; the state keeps the last displacement divided by ``dt``.

    Parameters
    ----------
    energy, box, dt, masses, on_overflow, max_displacement
        As in `VelocityVerlet`.
    temperature
        ``k_B T`` (epsilon), >= 0; differentiable.
    friction
        ``gamma`` (1/tau), > 0, default 1; differentiable.

    Examples
    --------
    >>> import jax, hybrax.md as md
    >>> positions, box = md.lattice("sc", (6, 6, 6), density=0.3)
    >>> stepper = md.BrownianDynamics(md.SoftSphere(), box, dt=1e-3, temperature=1.0)
    """

    energy: AbstractEnergy
    box: AbstractBox
    dt: Array = eqx.field(converter=time_step)
    temperature: Array = eqx.field(
        converter=_checked("temperature", nonnegative=True, scalar=True, example="temperature=1.0")
    )
    friction: Array = eqx.field(
        default=1.0,
        converter=_checked("friction", positive=True, scalar=True, example="friction=1.0"),
    )
    masses: Array = eqx.field(
        default=1.0, converter=_checked("masses", positive=True, example="masses=1.0")
    )
    on_overflow: OnOverflow = eqx.field(static=True, default="raise", converter=_on_overflow)
    max_displacement: float | None = eqx.field(
        static=True, default=None, converter=_max_displacement
    )

    def step(self, state: MDState) -> MDState:
        x = state.positions
        key, noise_key = self._key(state)
        dt = _scalar(self.dt, x)
        mobility = self._inverse_mass(x) / _scalar(self.friction, x)
        kT = _scalar(self.temperature, x)
        noise = jax.random.normal(noise_key, x.shape, x.dtype)
        dx = dt * mobility * state.forces + jnp.sqrt(2.0 * kT * dt * mobility) * noise
        x = self.box.shift(x, dx)
        neighbors, energy, forces = self._evaluate(x, state.neighbors)
        new = MDState(x, dx / dt, forces, energy, neighbors, key, state.time + dt, state.thermostat)
        return self._guard(new)
