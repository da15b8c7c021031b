"""Neighbour lists, energies and forces of a `SystemBatch`: masked lists of one shape
across the batch, regrown for the whole batch when any system overflows."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from hybrax.core import ConfigurationError, concrete_or_none

from ._batch import SystemBatch, _box
from ._cell_geometry import grid_for
from ._cell_list import CellNeighborList
from ._dense_list import DenseNeighborList
from ._energy import AbstractEnergy
from ._manybody import AbstractManyBodyEnergy
from ._masked_list import MaskedNeighborList
from ._neighbors import (
    AbstractNeighborList,
    _multiplier,
    _static_length,
    retry_with_grown_list,
)
from ._pair import AbstractPairEnergy
from ._stress import stress

__all__ = ["batch_energy_and_forces", "batch_neighbor_list", "batch_stress"]


# ---------------------------------------------------------------------- neighbour lists
def batch_neighbor_list(
    batch: SystemBatch,
    cutoff: float,
    *,
    skin: float = 0.3,
    capacity_multiplier: float = 1.25,
    cells: bool | None = None,
) -> MaskedNeighborList:
    """One `MaskedNeighborList` per system of ``batch``, stacked along a leading axis.

    Shapes must match across the batch (for `jax.vmap`), so every system gets the same
    kind of list with the same static capacities: the largest any system needs. A
    `CellNeighborList` when every box gives the same cell grid and (by default) the
    systems hold more than 256 atoms; otherwise all pairs (`DenseNeighborList`, the right
    list for small systems, and the list of triclinic batches). If any system's list
    overflows, the lists of the whole batch are rebuilt with more room (shared capacity), so
    no system is ever silently wrong.

    Parameters
    ----------
    batch
        The `SystemBatch`.
    cutoff, skin
        Interaction cut-off and Verlet skin (sigma), as `hybrax.md.neighbor_list`.
    capacity_multiplier
        Head room of cell-list capacities (>= 1).
    cells
        None: choose as above; True: cell lists (a `hybrax.ConfigurationError` if the boxes
        do not allow one common grid, or are triclinic); False: all pairs.

    Raises
    ------
    hybrax.ConfigurationError
        A box shorter than twice the cut-off, for a triclinic cell a perpendicular width
        (the message names the system).

    Examples
    --------
    >>> import hybrax.md as md
    >>> a, box_a = md.lattice("fcc", 3, density=0.8442)
    >>> b, box_b = md.lattice("fcc", 3, density=0.8)
    >>> batch = md.SystemBatch.from_systems([(a[:100], box_a), (b, box_b)])
    >>> nbrs = md.batch_neighbor_list(batch, cutoff=2.5)
    >>> nbrs.mask.shape
    (2, 108)
    """
    if not isinstance(batch, SystemBatch):
        raise ConfigurationError(
            f"batch_neighbor_list needs a hybrax.md.SystemBatch, got {type(batch).__name__}"
        )
    cutoff = _static_length(cutoff, "cutoff", positive=True, example="cutoff=2.5")
    skin = _static_length(skin, "skin", positive=False, example="skin=0.3")
    capacity_multiplier = _multiplier(capacity_multiplier, "capacity_multiplier")
    lengths = concrete_or_none(batch.lengths)
    if lengths is None:
        raise ConfigurationError(
            "batch_neighbor_list sizes static capacities from the boxes: call it outside "
            "jax.jit; inside jit use the lists' update method"
        )
    lengths = np.asarray(lengths, np.float64)
    triclinic = batch.cells is not None
    short = np.any(lengths < 2 * cutoff, axis=1)
    if np.any(short):
        b = int(np.argmax(short))
        what = "a cell of perpendicular widths" if triclinic else "box sides"
        raise ConfigurationError(
            f"batch_neighbor_list: system {b} has {what} {lengths[b].tolist()}, shorter "
            f"than twice the cutoff {cutoff}: the minimum-image convention would miss "
            "periodic images. Use a larger box (or a less tilted cell) for that system or a "
            "shorter cutoff"
        )
    if triclinic:
        common = False  # one cell grid for different cells: not yet
    else:
        grids = {grid_for(row, cutoff + skin) for row in lengths}
        common = len(grids) == 1 and next(iter(grids))[2]
    if cells is None:
        cells = common and batch.positions.shape[1] > 256
    elif cells and not common:
        raise ConfigurationError(
            "batch_neighbor_list(cells=True): the boxes need different cell grids (or are "
            "too small for cell lists, or triclinic), so their lists cannot share one shape; "
            "use cells=False (all pairs) or orthorhombic boxes of similar size"
        )
    box0 = _box(batch.geometry[0])
    if cells:
        template = CellNeighborList.build(
            batch.positions[0],
            box0,
            cutoff,
            skin=skin,
            capacity_multiplier=capacity_multiplier,
        )
    else:
        template = DenseNeighborList.build(batch.positions[0], box0, cutoff, skin=skin)
    _, lists = retry_with_grown_list(
        lambda t: _overflowed(_update_all(t, batch.positions, batch.geometry)),
        lambda t, lists: grown_template(lists, batch.positions[0], batch.geometry[0]),
        template,
        max_regrowths=5,
        message=(
            "batch_neighbor_list: the lists still overflowed after 5 rebuilds; some system "
            "may hold a collapsed configuration (check the positions)"
        ),
    )
    return MaskedNeighborList(lists, batch.mask)


def grown_template(lists: AbstractNeighborList, positions, geometry) -> AbstractNeighborList:
    """A single (unmasked) list with room for everything any system of the stacked
    ``lists`` needed, built for ``positions`` in the box of ``geometry`` (one system's
    `SystemBatch.geometry`; host side)."""
    inner = lists.inner if isinstance(lists, MaskedNeighborList) else lists
    first = jax.tree.map(lambda x: x[0], inner)
    return first.with_needs_of(inner).grow(positions, _box(geometry))


def _overflowed(lists: AbstractNeighborList) -> tuple[AbstractNeighborList, bool]:
    return lists, bool(jnp.any(lists.overflow))


@eqx.filter_jit
def _update_all(template: AbstractNeighborList, positions, geometry) -> AbstractNeighborList:
    return jax.vmap(lambda p, g: template.update(p, _box(g)))(positions, geometry)


# ---------------------------------------------------------------------- energies
def check_batch_energy(energy: AbstractEnergy, owner: str) -> None:
    """Energies a batch can evaluate: pair energies (masked through the list) and sums of
    them; many-body energies read the list's raw tables and are refused."""
    if not isinstance(energy, AbstractEnergy):
        raise ConfigurationError(
            f"{owner}: energy must be a hybrax.md energy (e.g. hybrax.md.LennardJones()), got "
            f"{type(energy).__name__}"
        )
    terms = jax.tree.leaves(energy, is_leaf=lambda x: isinstance(x, AbstractManyBodyEnergy))
    many = [t for t in terms if isinstance(t, AbstractManyBodyEnergy)]
    if many:
        raise ConfigurationError(
            f"{owner}: {type(many[0]).__name__} is a many-body energy, which batches of "
            "padded systems do not support yet (its padding atoms would interact); use pair "
            "energies, or run such systems one at a time"
        )


def check_batch_inputs(batch, neighbors, owner: str) -> None:
    """A `SystemBatch` and its stacked lists from `batch_neighbor_list`, or an error."""
    if not isinstance(batch, SystemBatch):
        raise ConfigurationError(
            f"{owner} needs a hybrax.md.SystemBatch, got {type(batch).__name__}"
        )
    if not isinstance(neighbors, MaskedNeighborList):
        raise ConfigurationError(
            f"{owner} needs the batch's lists from hybrax.md.batch_neighbor_list(batch, "
            f"cutoff), got {type(neighbors).__name__}"
        )
    if neighbors.mask.shape != batch.mask.shape:
        raise ConfigurationError(
            f"{owner}: the lists were built for mask shape {neighbors.mask.shape}, the batch "
            f"has {batch.mask.shape}; build them with hybrax.md.batch_neighbor_list(batch, ...)"
        )


def check_batch_species(energy: AbstractEnergy, batch: SystemBatch, owner: str) -> None:
    """The batch's species (its real atoms'), when concrete, must index every
    species-aware pair term's parameter matrices: the check each term makes when built
    (`bind_species` swaps species in without it, and an index past the matrices would be
    clamped by the gather, silently reading another species' parameters)."""
    if batch.species is None:
        return
    species, mask = concrete_or_none(batch.species), concrete_or_none(batch.mask)
    if species is None or mask is None:
        return
    real = jnp.asarray(species[mask.astype(bool)])
    terms = jax.tree.leaves(energy, is_leaf=lambda x: isinstance(x, AbstractPairEnergy))
    for term in terms:
        if isinstance(term, AbstractPairEnergy) and term.species is not None:
            bound = eqx.tree_at(lambda e: e.species, term, real.astype(term.species.dtype))
            try:
                bound.__check_init__()
            except ConfigurationError as error:
                raise ConfigurationError(f"{owner}: batch.species: {error}") from None


def bind_species(energy: AbstractEnergy, species: Array | None) -> AbstractEnergy:
    """``energy`` with each species-aware pair term reading ``species`` (one system's)."""
    if species is None:
        return energy

    def bind(node):
        if isinstance(node, AbstractPairEnergy) and node.species is not None:
            return eqx.tree_at(lambda e: e.species, node, species)
        return node

    return jax.tree.map(bind, energy, is_leaf=lambda x: isinstance(x, AbstractPairEnergy))


def batch_energy_and_forces(
    energy: AbstractEnergy, batch: SystemBatch, neighbors: MaskedNeighborList
) -> tuple[Float[Array, " B"], Float[Array, "B N 3"]]:
    """Potential energies ``(B,)`` (epsilon) and forces ``(B, N, 3)`` (epsilon / sigma) of
    every system of ``batch``, with zero rows for padding atoms: the labels for training a
    potential on structures of different sizes. jit-, vmap- and grad-compatible
    (``jax.grad`` of the summed energies reaches the energy's parameters).

    ``energy`` is a pair energy or a sum of them (many-body energies are refused); its
    species-aware terms read each system's ``batch.species`` (give the term any ``(N,)``
    species array when building it, e.g. ``batch.species[0]``). An overflowed list (see
    `batch_neighbor_list`) gives NaN, never silently wrong values.

    Examples
    --------
    >>> import hybrax.md as md
    >>> a, box_a = md.lattice("fcc", 2, density=0.8442)
    >>> b, box_b = md.lattice("fcc", 3, density=0.8442)
    >>> batch = md.SystemBatch.from_systems([(a, box_a), (b, box_b)])
    >>> nbrs = md.batch_neighbor_list(batch, cutoff=1.5)
    >>> energies, forces = md.batch_energy_and_forces(md.LennardJones(cutoff=1.5), batch, nbrs)
    >>> energies.shape, forces.shape
    ((2,), (2, 108, 3))
    """
    check_batch_energy(energy, "batch_energy_and_forces")
    check_batch_inputs(batch, neighbors, "batch_energy_and_forces")
    check_batch_species(energy, batch, "batch_energy_and_forces")
    return _batch_energy_and_forces(energy, batch, neighbors)


@eqx.filter_jit
def _batch_energy_and_forces(energy, batch: SystemBatch, neighbors: MaskedNeighborList):
    def one(positions, geometry, species, nbrs):
        return bind_species(energy, species).energy_and_forces(positions, nbrs, _box(geometry))

    energies, forces = jax.vmap(one)(batch.positions, batch.geometry, batch.species, neighbors)
    return energies, jnp.where(batch.mask[..., None], forces, 0)


def batch_stress(
    energy: AbstractEnergy,
    batch: SystemBatch,
    neighbors: MaskedNeighborList,
    *,
    velocities: Float[Array, "B N 3"] | None = None,
) -> Float[Array, "B 3 3"]:
    """The ``(B, 3, 3)`` stress tensors (epsilon / sigma^3) of every system of ``batch``,
    each `hybrax.md.stress` of the system alone in its own box (orthorhombic or
    triclinic): ``sigma = (1 / V) (dU/d epsilon - sum_i m_i v_i (x) v_i)``, padding atoms
    adding nothing. Without ``velocities`` the configurational part only (what a potential
    is trained on); pass ``batch.velocities`` for the full stress (minus the pressure
    tensor). Energies and bad input as `batch_energy_and_forces`.

    Examples
    --------
    >>> import hybrax.md as md
    >>> a, box_a = md.lattice("fcc", 2, density=0.8442)
    >>> b, box_b = md.lattice("fcc", 3, density=0.8442)
    >>> batch = md.SystemBatch.from_systems([(a, box_a), (b, box_b)])
    >>> nbrs = md.batch_neighbor_list(batch, cutoff=1.5)
    >>> md.batch_stress(md.LennardJones(cutoff=1.5), batch, nbrs).shape
    (2, 3, 3)
    """
    check_batch_energy(energy, "batch_stress")
    check_batch_inputs(batch, neighbors, "batch_stress")
    check_batch_species(energy, batch, "batch_stress")
    if velocities is not None and jnp.shape(velocities) != batch.positions.shape:
        raise ConfigurationError(
            f"batch_stress: velocities must have the batch's shape {batch.positions.shape} "
            f"(e.g. batch.velocities), got {jnp.shape(velocities)}"
        )
    return _batch_stress(energy, batch, neighbors, velocities)


@eqx.filter_jit
def _batch_stress(energy, batch: SystemBatch, neighbors: MaskedNeighborList, velocities):
    # padding atoms: zero velocity (their own, or the caller's masked out) and no pairs
    if velocities is not None:
        velocities = jnp.where(batch.mask[..., None], velocities, 0)

    def one(positions, geometry, species, nbrs, masses, v):
        system = bind_species(energy, species)
        return stress(system, positions, _box(geometry), nbrs, velocities=v, masses=masses)

    return jax.vmap(one)(
        batch.positions, batch.geometry, batch.species, neighbors, batch.masses, velocities
    )
