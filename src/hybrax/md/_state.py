"""The MD state record."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._neighbors import AbstractNeighborList

__all__ = ["BarostatState", "MDState", "NoseHooverChainState"]


class NoseHooverChainState(eqx.Module):
    """Thermostat variables of a Nosé–Hoover chain: positions ``xi`` (dimensionless) and
    velocities ``v_xi`` (1/tau) of the ``M`` chain links."""

    positions: Float[Array, " M"]
    velocities: Float[Array, " M"]


class BarostatState(eqx.Module):
    """Barostat variables of an NPT run (`hybrax.md.MartynaTobiasKlein`): the evolving box
    ``lengths`` (sigma), the strain rates ``velocities`` ``d ln L / dt`` (1/tau; one value
    when isotropic, three for independent axes), the ``virial`` ``-dU/d strain`` at the
    current positions (epsilon; under uniform strain when isotropic, else per axis), the
    box ``reference_lengths`` of the last neighbour-list build (sigma) with the
    ``reference_fingerprint`` (sum of the list's reference positions) that tells whether
    the list was replaced since, and the barostat's own Nosé–Hoover ``chain``."""

    lengths: Float[Array, "3"]
    velocities: Float[Array, " A"]
    virial: Float[Array, " A"]
    reference_lengths: Float[Array, "3"]
    reference_fingerprint: Float[Array, ""]
    chain: NoseHooverChainState


class MDState(eqx.Module):
    """State of a molecular-dynamics run (reduced LJ units throughout).

    Parameters
    ----------
    positions
        ``(N, 3)`` positions (sigma), inside the box for periodic systems.
    velocities
        ``(N, 3)`` velocities (sigma / tau).
    forces
        ``(N, 3)`` forces at ``positions`` (epsilon / sigma).
    potential_energy
        Potential energy at ``positions`` (epsilon).
    neighbors
        The `AbstractNeighborList` the integrator keeps up to date, or None (no pair terms).
    key
        PRNG key for stochastic integrators (Langevin, Brownian), or None.
    time
        Simulation time (tau), scalar of the positions' dtype.
    thermostat
        Thermostat variables (`NoseHooverChainState`) or None.
    barostat
        Barostat variables and the evolving box (`BarostatState`, NPT runs) or None.

    Notes
    -----
    Integrators create states with their ``init`` method; `hybrax.rollout` and
    `hybrax.md.simulate` advance them.
    """

    positions: Float[Array, "N 3"]
    velocities: Float[Array, "N 3"]
    forces: Float[Array, "N 3"]
    potential_energy: Float[Array, ""]
    neighbors: AbstractNeighborList | None
    key: PRNGKeyArray | None
    time: Float[Array, ""]
    thermostat: NoseHooverChainState | None = None
    barostat: BarostatState | None = None

    def __init__(
        self,
        positions: ArrayLike,
        velocities: ArrayLike,
        forces: ArrayLike,
        potential_energy: ArrayLike,
        neighbors: AbstractNeighborList | None = None,
        key: PRNGKeyArray | None = None,
        time: ArrayLike | None = None,
        thermostat: NoseHooverChainState | None = None,
        barostat: BarostatState | None = None,
    ):
        self.positions = jnp.asarray(positions)
        dtype = self.positions.dtype
        self.velocities = jnp.asarray(velocities, dtype)
        self.forces = jnp.asarray(forces, dtype)
        self.potential_energy = jnp.asarray(potential_energy, dtype)
        self.neighbors = neighbors
        self.key = key
        self.time = jnp.asarray(0 if time is None else time, dtype)
        self.thermostat = thermostat
        self.barostat = barostat
