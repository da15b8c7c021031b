"""`stress`: the full virial stress tensor from the derivative with respect to a strain."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from hybrax.core import ConfigurationError

from ._energy import AbstractEnergy
from ._neighbors import AbstractNeighborList
from ._space import AbstractBox, PeriodicBox
from ._triclinic import TriclinicBox, _StrainedCell

__all__ = ["stress"]


def stress(
    energy: AbstractEnergy,
    positions: Float[Array, "N 3"],
    box: AbstractBox,
    neighbors: AbstractNeighborList | None = None,
    *,
    velocities: Float[Array, "N 3"] | None = None,
    masses: ArrayLike = 1.0,
) -> Float[Array, "3 3"]:
    """The symmetric 3x3 stress tensor of a periodic system (energy / length^3).

    ``sigma = (1 / V) (dU/d(epsilon) - sum_i m_i v_i (x) v_i)``, with ``dU/d(epsilon)`` the
    derivative of the energy of the homogeneously strained system (positions ``r @ F`` and
    cell ``cell @ F``, ``F = 1 + epsilon``) at zero strain, symmetrised. For a pair energy
    this is ``-(1 / V) sum_{i<j} r_ij (x) f_ij``; for many-body energies it is their
    virial likewise, from ``jax.grad``, so it is right for any energy that sees the box
    only through minimum-image displacements (pair, many-body, bonded, neural). The sign is
    ASE's (and the continuum's): positive under tension, ``-trace(sigma) / 3`` is the
    pressure of `hybrax.md.pressure`; ``-sigma`` is LAMMPS's pressure tensor. Reduced
    units: epsilon / sigma^3; metal units: eV / Å^3 (times ``Units("metal").pressure`` for
    bar).

    Works for a `PeriodicBox` (its shear components too: the derivative is taken with the
    box as a general cell) and a `TriclinicBox`, with the list built for that box (the
    pairs do not change under an infinitesimal strain). Ewald and PME energies work too
    (their wave vectors follow the cell); energies that read the box's side lengths
    directly are not supported here: use `hybrax.md.pressure`.

    Parameters
    ----------
    energy
        Any `hybrax.md` energy.
    positions
        ``(N, 3)`` positions (length unit).
    box
        A `PeriodicBox` or `TriclinicBox`.
    neighbors
        The neighbour list the energy needs (None for energies without a cut-off).
    velocities, masses
        Optional: with velocities, the kinetic part ``- sum m v (x) v / V`` is included.

    Returns
    -------
    Array
        ``(3, 3)`` symmetric stress (Voigt order for ASE: xx, yy, zz, yz, xz, xy).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import hybrax.md as md
    >>> positions, box = md.lattice("fcc", 3, density=0.8442)
    >>> nbrs = md.neighbor_list(positions, box, cutoff=2.5)
    >>> sigma = md.stress(md.LennardJones(), positions, box, nbrs)
    >>> round(float(-jnp.trace(sigma) / 3), 3)  # the pressure (md.pressure): under tension
    -6.235
    >>> bool(jnp.allclose(sigma - jnp.diag(jnp.diag(sigma)), 0.0, atol=1e-5))  # cubic
    True
    """
    if isinstance(box, PeriodicBox):
        cell = jnp.diag(box.lengths)
    elif isinstance(box, TriclinicBox):
        cell = box.cell
    else:
        raise ConfigurationError(
            f"stress needs a periodic box (PeriodicBox or TriclinicBox: a volume), got "
            f"{type(box).__name__}"
        )
    try:
        return _stress(energy, positions, cell, neighbors, velocities, masses)
    except AttributeError as error:
        raise ConfigurationError(
            f"stress: {type(energy).__name__} reads the box's side lengths directly, which "
            "a general cell does not have; use hybrax.md.pressure for its pressure "
            f"({error})"
        ) from error


def strain_gradients(energy, positions, cell, neighbors):
    """The energy, its gradient with respect to the positions and the symmetrised
    derivative ``dU/dF`` with respect to a homogeneous deformation (positions ``r @ F``,
    cell ``cell @ F``) at ``F = 1``, in one reverse pass (the virial tensor is ``-dU/dF``).
    Used by `stress` and by the fully flexible barostat."""
    dtype = positions.dtype
    cell = cell.astype(dtype)

    def strained(x, deformation):
        return energy.energy(x @ deformation, neighbors, _StrainedCell(cell @ deformation))

    value, (gradient, derivative) = jax.value_and_grad(strained, argnums=(0, 1))(
        positions, jnp.eye(3, dtype=dtype)
    )
    return value, gradient, 0.5 * (derivative + derivative.T)


@eqx.filter_jit
def _stress(energy, positions, cell, neighbors, velocities, masses):
    dtype = positions.dtype
    cell = cell.astype(dtype)
    sigma = strain_gradients(energy, positions, cell, neighbors)[2]
    if velocities is not None:
        m = jnp.asarray(masses, dtype)
        m = m[:, None] if m.ndim == 1 else m
        sigma = sigma - jnp.einsum("na,nb->ab", m * velocities, velocities)
    return sigma / jnp.linalg.det(cell)
