"""The Nosé–Hoover chain pieces shared by `NoseHooverChain` (NVT) and `MartynaTobiasKlein`
(NPT, one chain on the particles and one on the barostat): the static checks, the chain
masses, the Trotter half step of Martyna et al. (1996) and the chain's energy."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array

from hybrax.core import ConfigurationError

from ._integrators import _is_int, _scalar
from ._state import NoseHooverChainState


def check_chain(chain_length, degrees_of_freedom) -> None:
    """Raise `ConfigurationError` unless ``chain_length`` is an int >= 1 and
    ``degrees_of_freedom`` None or an int >= 1."""
    if not _is_int(chain_length) or chain_length < 1:
        raise ConfigurationError(
            f"chain_length must be an int >= 1, got {chain_length!r}; pass e.g. chain_length=3"
        )
    if degrees_of_freedom is not None and (
        not _is_int(degrees_of_freedom) or degrees_of_freedom < 1
    ):
        raise ConfigurationError(
            f"degrees_of_freedom must be None (3N - 3) or an int >= 1, got {degrees_of_freedom!r}"
        )


def particle_dof(degrees_of_freedom: int | None, positions: Array) -> int:
    """``degrees_of_freedom``, or ``3 N - 3`` (momentum conserved) when it is None."""
    if degrees_of_freedom is not None:
        return degrees_of_freedom
    return 3 * positions.shape[0] - 3


def zero_chain(chain_length: int, like: Array) -> NoseHooverChainState:
    """A chain at rest: zero positions and velocities, in ``like``'s dtype."""
    zeros = jnp.zeros(chain_length, like.dtype)
    return NoseHooverChainState(zeros, zeros)


def chain_masses(temperature, tau, chain_length: int, dof, like: Array) -> Array:
    """Thermostat masses ``Q_1 = dof kT tau^2``, ``Q_k = kT tau^2`` (epsilon tau^2)."""
    kT = _scalar(temperature, like)
    tau = _scalar(tau, like)
    q = jnp.full(chain_length, 1.0, like.dtype) * kT * tau * tau
    return q.at[0].multiply(dof)


def chain_half_step(
    kinetic2: Array, chain: NoseHooverChainState, masses: Array, dof, kT: Array, dt: Array
) -> tuple[Array, NoseHooverChainState]:
    """Propagate a Nosé–Hoover chain over ``dt / 2`` (the Suzuki–Yoshida-free Trotter
    splitting of Martyna et al. 1996) for the degrees of freedom whose kinetic energy is
    ``kinetic2 / 2`` (``kinetic2 = sum m v^2``, ``dof`` of them). Returns the factor by which
    those velocities are scaled and the new chain."""
    m = masses.shape[0]
    xi, vxi = chain.positions, chain.velocities
    quarter, eighth = 0.25 * dt, 0.125 * dt

    def force(k, vxi, kinetic2):
        if k == 0:
            return (kinetic2 - dof * kT) / masses[0]
        return (masses[k - 1] * vxi[k - 1] ** 2 - kT) / masses[k]

    def link(k, vxi, kinetic2):
        scale = jnp.exp(-eighth * vxi[k + 1])
        return vxi.at[k].set((vxi[k] * scale + quarter * force(k, vxi, kinetic2)) * scale)

    vxi = vxi.at[m - 1].add(quarter * force(m - 1, vxi, kinetic2))
    for k in range(m - 2, -1, -1):
        vxi = link(k, vxi, kinetic2)
    xi = xi + 0.5 * dt * vxi
    scale = jnp.exp(-0.5 * dt * vxi[0])
    kinetic2 = kinetic2 * scale * scale
    for k in range(m - 1):
        vxi = link(k, vxi, kinetic2)
    vxi = vxi.at[m - 1].add(quarter * force(m - 1, vxi, kinetic2))
    return scale, NoseHooverChainState(xi, vxi)


def chain_energy(chain: NoseHooverChainState, masses: Array, dof, kT: Array) -> Array:
    """The chain's energy ``sum Q_k v_k^2 / 2 + dof kT xi_1 + kT sum_{k>1} xi_k``
    (epsilon)."""
    energy = 0.5 * jnp.sum(masses * chain.velocities**2)
    return energy + dof * kT * chain.positions[0] + kT * jnp.sum(chain.positions[1:])
