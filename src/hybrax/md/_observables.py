"""Observables: energies, temperature, momentum, virial pressure, g(r), MSD."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, ArrayLike, Float

from hybrax.core import ConfigurationError, concrete_or_none

from ._energy import AbstractEnergy
from ._neighbors import AbstractNeighborList, _static_length
from ._space import AbstractBox, PeriodicBox
from ._state import MDState
from ._triclinic import TriclinicBox

__all__ = [
    "kinetic_energy",
    "mean_squared_displacement",
    "momentum",
    "pressure",
    "radial_distribution",
    "temperature",
    "total_energy",
    "unwrap",
]


def _mass_column(masses: ArrayLike, like: Array) -> Array:
    m = jnp.asarray(masses).astype(like.dtype)
    return m[:, None] if m.ndim == 1 else m


def kinetic_energy(velocities: Float[Array, "N 3"], masses: ArrayLike = 1.0) -> Array:
    """``sum_i m_i |v_i|^2 / 2`` (epsilon)."""
    return 0.5 * jnp.sum(_mass_column(masses, velocities) * velocities * velocities)


def temperature(
    velocities: Float[Array, "N 3"], masses: ArrayLike = 1.0, degrees_of_freedom: int | None = None
) -> Array:
    """Kinetic temperature ``2 KE / N_f`` (epsilon / k_B), ``N_f = 3N - 3`` by default
    (total momentum fixed), as LAMMPS ``compute temp``."""
    dof = 3 * velocities.shape[-2] - 3 if degrees_of_freedom is None else degrees_of_freedom
    return 2.0 * kinetic_energy(velocities, masses) / dof


def momentum(velocities: Float[Array, "N 3"], masses: ArrayLike = 1.0) -> Float[Array, "3"]:
    """Total momentum ``sum_i m_i v_i``."""
    return jnp.sum(_mass_column(masses, velocities) * velocities, axis=0)


def total_energy(state: MDState, masses: ArrayLike = 1.0) -> Array:
    """Kinetic plus potential energy of a state (epsilon)."""
    return kinetic_energy(state.velocities, masses) + state.potential_energy


def pressure(
    energy: AbstractEnergy,
    positions: Float[Array, "N 3"],
    box: PeriodicBox | TriclinicBox,
    neighbors: AbstractNeighborList | None = None,
    velocities: Float[Array, "N 3"] | None = None,
    masses: ArrayLike = 1.0,
) -> Array:
    """Virial pressure ``P = (2 KE + W) / (3 V)`` (epsilon / sigma^3).

    The virial ``W = -dU/d(epsilon)`` comes from differentiating the energy of the
    uniformly strained system (positions and box scaled by ``1 + epsilon``) at zero strain,
    i.e. from ``jax.grad`` with respect to the box, so it is right for any energy (pair,
    bonded, neural). Without velocities the kinetic term is left out. For the full tensor
    (shear components too) see `hybrax.md.stress`; ``P = -trace(stress) / 3``.

    Examples
    --------
    >>> import hybrax.md as md
    >>> positions, box = md.lattice("fcc", 6, density=0.8442)
    >>> nbrs = md.neighbor_list(positions, box, cutoff=2.5)
    >>> p = md.pressure(md.LennardJones(), positions, box, nbrs)
    """
    if not isinstance(box, PeriodicBox | TriclinicBox):
        raise ConfigurationError(
            f"pressure needs a PeriodicBox or TriclinicBox (a volume), got {type(box).__name__}"
        )
    dtype = positions.dtype

    def strained(strain):
        scale = 1.0 + strain
        return energy.energy(positions * scale, neighbors, box.scaled(scale))

    virial = -jax.grad(strained)(jnp.zeros((), dtype))
    kinetic = jnp.zeros((), dtype) if velocities is None else kinetic_energy(velocities, masses)
    return (2.0 * kinetic + virial) / (3.0 * box.volume.astype(dtype))


def radial_distribution(
    positions: Float[Array, "N 3"],
    box: PeriodicBox,
    *,
    r_max: float,
    num_bins: int = 100,
    smoothing: float | None = None,
) -> tuple[Float[Array, " B"], Float[Array, " B"]]:
    """Radial distribution function ``g(r)`` of one configuration.

    Counts all pairs (in blocks of atoms, so memory stays ``O(N)``) into ``num_bins`` shells
    up to ``r_max`` and normalises by the ideal-gas count ``rho 4 pi r^2 dr N / 2``. With
    ``smoothing`` (sigma) each pair adds a Gaussian of that width instead of a hard count,
    which makes ``g(r)`` differentiable with respect to the positions (used to fit
    potentials to a target structure). Average over frames with `jax.vmap`.

    Returns
    -------
    r, g
        Bin centres (sigma) and ``g(r)``.

    Examples
    --------
    >>> import hybrax.md as md
    >>> positions, box = md.lattice("fcc", 4, density=0.8442)
    >>> r, g = md.radial_distribution(positions, box, r_max=3.0, num_bins=60)
    """
    if not isinstance(box, PeriodicBox):
        raise ConfigurationError("radial_distribution needs a PeriodicBox (a density)")
    n = positions.shape[0]
    dtype = positions.dtype
    lengths = box.lengths.astype(dtype)
    r_max = _static_length(r_max, "r_max", positive=True, example="r_max=3.0")
    if isinstance(num_bins, bool) or not isinstance(num_bins, int) or num_bins < 1:
        raise ConfigurationError(f"num_bins must be a positive int, got {num_bins!r}")
    if smoothing is not None:
        smoothing = _static_length(smoothing, "smoothing", positive=True, example="smoothing=0.05")
    concrete = concrete_or_none(lengths)
    half = np.inf if concrete is None else 0.5 * float(np.min(concrete))  # traced: no check
    if r_max > half + 1e-9:
        raise ConfigurationError(
            f"r_max={r_max} exceeds half the box ({half:.4g}); minimum-image distances "
            "beyond that are incomplete"
        )
    width = r_max / num_bins
    edges = jnp.arange(num_bins + 1, dtype=dtype) * width
    centres = 0.5 * (edges[1:] + edges[:-1])
    block = max(1, min(n, 2**17 // max(n, 1)))
    num_blocks = -(-n // block)
    index = jnp.arange(num_blocks * block).reshape(num_blocks, block)

    def counts(rows):
        xi = positions[jnp.minimum(rows, n - 1)]
        d = box.displacement(xi[:, None, :], positions[None, :, :])
        r = jnp.sqrt(jnp.sum(d * d, axis=-1) + jnp.where(rows[:, None] == jnp.arange(n), 1.0, 0.0))
        keep = (rows[:, None] < n) & (rows[:, None] != jnp.arange(n)[None, :]) & (r < r_max)
        if smoothing is None:
            bins = jnp.clip(jnp.floor(r / width).astype(jnp.int32), 0, num_bins - 1)
            return jnp.zeros(num_bins, dtype).at[bins.ravel()].add(keep.ravel().astype(dtype))
        z = (r[..., None] - centres) / smoothing
        weight = jnp.exp(-0.5 * z * z) * (width / (smoothing * jnp.sqrt(2.0 * jnp.pi)))
        return jnp.sum(jnp.where(keep[..., None], weight, 0.0), axis=(0, 1))

    total = jnp.sum(lax.map(counts, index), axis=0)
    density = n / jnp.prod(lengths)
    shell = 4.0 / 3.0 * jnp.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    return centres, total / (n * density * shell)


def unwrap(trajectory: Float[Array, "T N 3"], box: AbstractBox) -> Float[Array, "T N 3"]:
    """Undo periodic wrapping along a trajectory (frames close enough that no atom moves
    more than half a box between them): cumulative minimum-image displacements."""
    steps = box.displacement(trajectory[1:], trajectory[:-1])
    moved = jnp.concatenate([jnp.zeros_like(trajectory[:1]), jnp.cumsum(steps, axis=0)])
    return trajectory[:1] + moved


def mean_squared_displacement(
    trajectory: Float[Array, "T N 3"], box: AbstractBox
) -> Float[Array, " T"]:
    """Mean-squared displacement from the first frame, ``< |r_i(t) - r_i(0)|^2 >_i``
    (sigma^2), for each frame of a wrapped trajectory (see `unwrap`). For a liquid it grows
    like ``6 D t`` at long times."""
    unwrapped = unwrap(trajectory, box)
    d = unwrapped - unwrapped[:1]
    return jnp.mean(jnp.sum(d * d, axis=-1), axis=-1)
