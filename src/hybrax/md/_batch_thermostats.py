"""Thermostats and the barostat inside a padded batch (`hybrax.md.simulate_batch`): a
system's `LangevinBAOAB` or `NoseHooverChain` wrapped with its padding mask, so that padding
atoms feel no noise and never move, and a chain (also `MartynaTobiasKlein`'s) counts the
system's own ``3 n_b - 3`` degrees of freedom instead of the padded ``3 N - 3``.

Why wrappers: a batch's steppers are built under `jax.vmap`, so they share one static
structure, while `NoseHooverChain.degrees_of_freedom` is static (one value per stepper). The
per-system count therefore travels here as an array leaf computed from the batch's mask,
next to the user's stepper (whose parameters stay the leaves that `jax.grad` reaches)."""

import dataclasses

import jax
import jax.numpy as jnp
from equinox import AbstractVar
from jaxtyping import Array, Bool, Int

from hybrax.core import ConfigurationError

from . import _nose_hoover as nhc
from ._barostats import MartynaTobiasKlein
from ._energy import AbstractEnergy
from ._integrators import AbstractMDStepper, VelocityVerlet, _scalar
from ._space import AbstractBox
from ._state import MDState, NoseHooverChainState
from ._thermostats import LangevinBAOAB, NoseHooverChain

SUPPORTED = (
    "VelocityVerlet (NVE), LangevinBAOAB or NoseHooverChain (NVT), or MartynaTobiasKlein (NPT)"
)


class _AbstractPaddedStepper(AbstractMDStepper):
    """One system's ``stepper`` with its padding ``mask`` (True for real atoms); the
    energy, box, masses, time step and checks are the wrapped stepper's."""

    stepper: AbstractVar[AbstractMDStepper]
    mask: AbstractVar[Bool[Array, " N"]]

    @property
    def energy(self) -> AbstractEnergy:
        return self.stepper.energy

    @property
    def box(self) -> AbstractBox:
        return self.stepper.box

    @property
    def masses(self) -> Array:
        return self.stepper.masses

    @property
    def dt(self) -> Array:
        return self.stepper.dt

    @property
    def on_overflow(self) -> str:
        return self.stepper.on_overflow

    @property
    def max_displacement(self) -> float | None:
        return self.stepper.max_displacement


class PaddedLangevinBAOAB(_AbstractPaddedStepper):
    """`LangevinBAOAB`'s step with the noise switched off for padding atoms: they keep zero
    velocity (no force, no noise, friction scales zero) and stay exactly where they are.
    The real atoms draw the same numbers as the system alone (``normal(key, (N, 3))``
    starts with ``normal(key, (n, 3))`` under JAX's partitionable threefry)."""

    stepper: LangevinBAOAB
    mask: Bool[Array, " N"]

    @property
    def temperature(self) -> Array:
        return self.stepper.temperature

    @property
    def friction(self) -> Array:
        return self.stepper.friction

    def _noise(self, key, v: Array) -> Array:
        return jnp.where(self.mask[:, None], jax.random.normal(key, v.shape, v.dtype), 0)

    def step(self, state: MDState) -> MDState:
        # LangevinBAOAB's own step (one implementation of the splitting), run on this
        # wrapper: it reads dt, masses, box, temperature and friction from here and draws
        # the masked noise above
        return LangevinBAOAB.step(self, state)


class PaddedNoseHooverChain(_AbstractPaddedStepper):
    """`NoseHooverChain`'s step with the chain driven by the real atoms' kinetic energy
    and ``degrees_of_freedom`` (``3 n_b - 3``, an array leaf: it differs between the
    systems of one vmapped batch). Padding atoms have zero velocity and feel no force, so
    the chain's scaling leaves them at rest."""

    stepper: NoseHooverChain
    mask: Bool[Array, " N"]
    degrees_of_freedom: Int[Array, ""]

    def _init_thermostat(self, positions) -> NoseHooverChainState:
        return nhc.zero_chain(self.stepper.chain_length, positions)

    def _half_step(self, v, chain: NoseHooverChainState, inv_m, dt):
        thermostat = self.stepper
        kT = _scalar(thermostat.temperature, v)
        dof = _scalar(self.degrees_of_freedom, v)
        masses = nhc.chain_masses(
            thermostat.temperature, thermostat.tau, thermostat.chain_length, dof, v
        )
        kinetic2 = jnp.sum(jnp.where(self.mask[:, None], v * v / inv_m, 0))  # sum m v^2
        scale, chain = nhc.chain_half_step(kinetic2, chain, masses, dof, kT, dt)
        return v * scale, chain

    def step(self, state: MDState) -> MDState:
        # NoseHooverChain's own Trotter step (one implementation of the splitting), run on
        # this wrapper: it reads dt, masses, box and the guards from here, and calls the
        # masked, per-system-count `_half_step` above
        return NoseHooverChain.step(self, state)


class PaddedMartynaTobiasKlein(MartynaTobiasKlein):
    """`MartynaTobiasKlein` counting the system's own ``3 n_b - 3`` particle degrees of
    freedom (``particle_dof``, an array leaf: it differs between the systems of one vmapped
    batch) in the chains, the barostat mass and the kinetic coupling. Everything else is
    MTK's own step: padding atoms have zero velocity and feel no force, so the kicks and
    chain scalings leave them at rest; they only ride the box's affine deformation (they
    interact with nothing) and each system's box moves with its own pressure."""

    particle_dof: Int[Array, ""] | None = None

    def _dof(self, positions):
        return _scalar(self.particle_dof, positions)


def pad_stepper(stepper: AbstractMDStepper, mask: Array) -> AbstractMDStepper:
    """One system's stepper ready for its padded batch (called under `jax.vmap`):
    `VelocityVerlet` as it is (padding atoms have no force and zero velocity, so they stay
    put), `LangevinBAOAB` and `NoseHooverChain` wrapped with the mask, `MartynaTobiasKlein`
    with the system's degrees of freedom; any other kind is a `ConfigurationError` listing
    the supported ones."""
    if isinstance(stepper, VelocityVerlet):
        return stepper
    if isinstance(stepper, MartynaTobiasKlein):
        _check_default_dof(stepper, "MartynaTobiasKlein")
        fields = {f.name: getattr(stepper, f.name) for f in dataclasses.fields(stepper)}
        return PaddedMartynaTobiasKlein(**fields, particle_dof=3 * jnp.sum(mask) - 3)
    if isinstance(stepper, LangevinBAOAB):
        return PaddedLangevinBAOAB(stepper, mask)
    if isinstance(stepper, NoseHooverChain):
        _check_default_dof(stepper, "NoseHooverChain")
        return PaddedNoseHooverChain(stepper, mask, 3 * jnp.sum(mask) - 3)
    raise ConfigurationError(
        f"simulate_batch: {type(stepper).__name__} is not supported yet in padded batches; "
        f"make_stepper must return {SUPPORTED}"
    )


def _check_default_dof(stepper, name: str) -> None:
    if stepper.degrees_of_freedom is not None:
        raise ConfigurationError(
            f"simulate_batch: {name}(degrees_of_freedom={stepper.degrees_of_freedom}) would "
            "give every system of the batch the same count; leave degrees_of_freedom=None: "
            "each system's chain counts its own 3 n_b - 3 (n_b real atoms, from batch.mask)"
        )
