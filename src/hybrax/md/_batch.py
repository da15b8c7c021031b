"""Batches of MD systems of different sizes: padded to a common atom count with a mask,
each with its own periodic box; masked neighbour lists shared in shape across the batch;
batched energies, forces and kinetic observables."""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from hybrax.core import ConfigurationError, concrete_or_none

from ._cell_geometry import grid_for
from ._cell_list import CellNeighborList
from ._dense_list import DenseNeighborList
from ._energy import AbstractEnergy
from ._manybody import AbstractManyBodyEnergy
from ._neighbors import (
    AbstractNeighborList,
    Sums,
    _multiplier,
    _split,
    _static_length,
    retry_with_grown_list,
)
from ._pair import AbstractPairEnergy
from ._space import AbstractBox, PeriodicBox

__all__ = ["MaskedNeighborList", "SystemBatch", "batch_energy_and_forces", "batch_neighbor_list"]

# R3 low-discrepancy sequence: where padding atoms sit (spread through the box, so a cell
# list's columns stay evenly filled; they never interact)
_R3 = np.array([0.8191725133961645, 0.6710436067037893, 0.5497004779019703])


class MaskedNeighborList(AbstractNeighborList):
    """A neighbour list in which only atoms with ``mask`` True interact.

    Wraps any `AbstractNeighborList` (``inner``): every pair that involves a masked-out
    atom is dropped from every pair sum (energies, forces, per-atom sums), so such atoms
    feel no force and add nothing. This is how a `SystemBatch` pads systems of different
    sizes to one shape. Building, updating and growing are those of ``inner``.

    Parameters
    ----------
    inner
        The neighbour list over all ``N`` atoms (real and padding).
    mask
        ``(N,)`` booleans, True for real atoms.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import hybrax.md as md
    >>> positions, box = md.lattice("fcc", 3, density=0.8442)
    >>> inner = md.DenseNeighborList.build(positions, box, cutoff=2.5)
    >>> mask = jnp.arange(108) < 100  # the last 8 atoms are ghosts
    >>> nbrs = md.MaskedNeighborList(inner, mask)
    >>> forces = md.LennardJones().forces(positions, nbrs, box)
    >>> bool(jnp.all(forces[100:] == 0))
    True
    """

    inner: AbstractNeighborList
    mask: Bool[Array, "*batch N"]

    def __check_init__(self):
        if not isinstance(self.inner, AbstractNeighborList):
            raise ConfigurationError(
                "MaskedNeighborList: inner must be a hybrax.md neighbour list, got "
                f"{type(self.inner).__name__}"
            )
        if isinstance(self.inner, MaskedNeighborList):
            raise ConfigurationError("MaskedNeighborList: inner is already masked")
        if jnp.shape(self.mask)[-1:] != jnp.shape(self.inner.reference_positions)[-2:-1] or (
            jnp.result_type(self.mask) != jnp.bool_
        ):
            raise ConfigurationError(
                f"MaskedNeighborList: mask must be a boolean array of shape "
                f"({self.inner.num_atoms},) (one per atom of the list), got shape "
                f"{jnp.shape(self.mask)} and dtype {jnp.result_type(self.mask)}"
            )

    # the list's own state is the inner list's
    @property
    def reference_positions(self):
        return self.inner.reference_positions

    @property
    def overflow(self):
        return self.inner.overflow

    @property
    def num_builds(self):
        return self.inner.num_builds

    @property
    def cutoff(self) -> float:
        return self.inner.cutoff

    @property
    def skin(self) -> float:
        return self.inner.skin

    @property
    def block_size(self) -> int:
        return self.inner.block_size

    @property
    def slots_per_atom(self) -> int:
        return self.inner.slots_per_atom

    def covers(self, box: AbstractBox) -> Bool[Array, ""]:
        return self.inner.covers(box)

    def update(self, positions: Float[Array, "N 3"], box: AbstractBox) -> MaskedNeighborList:
        return MaskedNeighborList(self.inner.update(positions, box), self.mask)

    def maybe_update(self, positions: Float[Array, "N 3"], box: AbstractBox) -> MaskedNeighborList:
        return MaskedNeighborList(self.inner.maybe_update(positions, box), self.mask)

    def grow(
        self, positions: Float[Array, "N 3"], box: AbstractBox, factor: float = 1.15
    ) -> MaskedNeighborList:
        return MaskedNeighborList(self.inner.grow(positions, box, factor), self.mask)

    def with_needs_of(self, lists: AbstractNeighborList) -> MaskedNeighborList:
        inner = lists.inner if isinstance(lists, MaskedNeighborList) else lists
        return MaskedNeighborList(self.inner.with_needs_of(inner), self.mask)

    def _pass(self, positions, box, pair_fn, cutoff, species, sums: Sums):
        # the mask travels as the species code -1, which both kinds of list gather for the
        # second atom of every pair; the pair function sees the real species (or None)
        base = jnp.zeros(self.mask.shape, jnp.int32) if species is None else species
        code = jnp.where(self.mask, base.astype(jnp.int32), -1)
        cutoff_sq = cutoff * cutoff

        def masked(r2, species_i, species_j):
            keep = (species_i >= 0) & (species_j >= 0)
            r2 = jnp.where(keep, r2, cutoff_sq)  # finite values (and gradients) for dropped pairs
            if species is None:
                out = pair_fn(r2, None, None)
            else:
                out = pair_fn(r2, jnp.maximum(species_i, 0), jnp.maximum(species_j, 0))
            scalars, weights = _split(out, "pair_fn")
            return (
                tuple(jnp.where(keep, s, 0) for s in scalars),
                tuple(jnp.where(keep, w, 0) for w in weights),
            )

        return self.inner._pass(positions, box, masked, cutoff, code, sums)


class SystemBatch(eqx.Module):
    """``B`` periodic systems of different sizes padded to ``N`` atoms (the largest), for
    batched energies, forces, training labels and simulations (`hybrax.md.simulate_batch`).

    Padding atoms (``mask`` False) sit at fixed points inside their box, have zero
    velocity and unit mass, never interact (`MaskedNeighborList`), feel no force and are left
    out of the kinetic energy, the temperature and the degrees of freedom.

    Attributes
    ----------
    positions, velocities
        ``(B, N, 3)`` (sigma, sigma / tau).
    masses
        ``(B, N)`` (m); 1 for padding.
    mask
        ``(B, N)`` booleans, True for real atoms.
    lengths
        ``(B, 3)`` box sides (sigma): system ``b`` lives in ``PeriodicBox(lengths[b])``.
    species
        ``(B, N)`` integer species (0 for padding), or None.

    Examples
    --------
    >>> import hybrax.md as md
    >>> small, small_box = md.lattice("fcc", 2, density=0.8442)
    >>> large, large_box = md.lattice("fcc", 3, density=0.8)
    >>> batch = md.SystemBatch.from_systems([(small, small_box), (large, large_box)])
    >>> batch.positions.shape, batch.num_atoms
    ((2, 108, 3), (32, 108))
    >>> [p.shape for p in batch.unpad(batch.positions)]
    [(32, 3), (108, 3)]
    """

    positions: Float[Array, "B N 3"]
    velocities: Float[Array, "B N 3"]
    masses: Float[Array, "B N"]
    mask: Bool[Array, "B N"]
    lengths: Float[Array, "B 3"]
    species: Int[Array, "B N"] | None = None

    @classmethod
    def from_systems(cls, systems: Sequence[tuple]) -> SystemBatch:
        """Pad a list of systems to one batch.

        Parameters
        ----------
        systems
            A non-empty sequence of tuples ``(positions, box[, velocities[, masses[,
            species]]])``: ``(n_b, 3)`` positions (sigma), a `PeriodicBox`, ``(n_b, 3)``
            velocities (default 0), masses (scalar or ``(n_b,)``, default 1) and ``(n_b,)``
            integer species (give them for every system or for none). All positions share
            one floating dtype; they are wrapped into their box.

        Raises
        ------
        hybrax.ConfigurationError
            An empty list, a system that is not such a tuple, positions that are not
            ``(n, 3)`` floats, a box that is not a `PeriodicBox`, mismatched shapes or
            dtypes; the message names the system's index.
        """
        if not isinstance(systems, Sequence) or isinstance(systems, (str, bytes)):
            raise ConfigurationError(
                "SystemBatch.from_systems: systems must be a list of (positions, box[, "
                f"velocities[, masses[, species]]]) tuples, got {type(systems).__name__}"
            )
        if len(systems) == 0:
            raise ConfigurationError(
                "SystemBatch.from_systems: got an empty list of systems; pass at least one "
                "(positions, box) tuple"
            )
        parsed = [_parse_system(index, system) for index, system in enumerate(systems)]
        dtypes = {p[0].dtype for p in parsed}
        if len(dtypes) > 1:
            raise ConfigurationError(
                "SystemBatch.from_systems: all systems need positions of one floating dtype, got "
                f"{sorted(str(d) for d in dtypes)}; convert them (e.g. .astype(jnp.float64))"
            )
        with_species = [p[4] is not None for p in parsed]
        if any(with_species) and not all(with_species):
            missing = with_species.index(False)
            raise ConfigurationError(
                f"SystemBatch.from_systems: system {missing} has no species but others do; "
                "give species for every system or for none"
            )
        dtype = parsed[0][0].dtype
        n_max = max(p[0].shape[0] for p in parsed)
        positions, velocities, masses, mask, lengths, species = [], [], [], [], [], []
        for p, box, v, m, s in parsed:
            n, pad = p.shape[0], n_max - p.shape[0]
            box_lengths = jnp.asarray(box.lengths).astype(dtype)
            ghosts = jnp.asarray(((np.arange(pad)[:, None] + 1) * _R3) % 1.0, dtype)
            positions.append(jnp.concatenate([box.wrap(p), ghosts * box_lengths]))
            velocities.append(jnp.concatenate([v, jnp.zeros((pad, 3), dtype)]))
            masses.append(jnp.concatenate([m, jnp.ones((pad,), dtype)]))
            mask.append(jnp.arange(n_max) < n)
            lengths.append(box_lengths)
            if s is not None:
                species.append(jnp.concatenate([s, jnp.zeros((pad,), s.dtype)]))
        return cls(
            jnp.stack(positions),
            jnp.stack(velocities),
            jnp.stack(masses),
            jnp.stack(mask),
            jnp.stack(lengths),
            jnp.stack(species) if species else None,
        )

    # ------------------------------------------------------------------ structure
    @property
    def num_systems(self) -> int:
        return self.positions.shape[0]

    @property
    def num_atoms(self) -> tuple[int, ...]:
        """Real atoms per system (host ints; needs a concrete mask)."""
        return tuple(int(k) for k in np.sum(np.asarray(self.mask), axis=1))

    @property
    def box(self) -> PeriodicBox:
        """The ``B`` boxes as one `PeriodicBox` with ``(B, 3)`` lengths (for `jax.vmap`)."""
        return _stacked_box(self.lengths)

    def boxes(self) -> list[PeriodicBox]:
        """Each system's `PeriodicBox`."""
        return [PeriodicBox(self.lengths[b]) for b in range(self.num_systems)]

    def unpad(self, values: Array) -> list[Array]:
        """Split ``(B, N, ...)`` per-atom values into each system's ``(n_b, ...)``."""
        return [values[b, :n] for b, n in enumerate(self.num_atoms)]

    def systems(self) -> list[tuple]:
        """Back to ``(positions, box, velocities, masses[, species])`` tuples, unpadded."""
        parts = [self.unpad(x) for x in (self.positions, self.velocities, self.masses)]
        out = []
        for b, box in enumerate(self.boxes()):
            system = (parts[0][b], box, parts[1][b], parts[2][b])
            if self.species is not None:
                system = (*system, self.species[b, : self.num_atoms[b]])
            out.append(system)
        return out

    def replace(self, positions: Array, velocities: Array) -> SystemBatch:
        """This batch with new ``(B, N, 3)`` positions and velocities (e.g. the final state
        of `hybrax.md.simulate_batch`)."""
        return eqx.tree_at(lambda s: (s.positions, s.velocities), self, (positions, velocities))

    # ------------------------------------------------------------------ observables
    def kinetic_energy(self, velocities: Float[Array, "B N 3"] | None = None) -> Array:
        """``(B,)`` kinetic energies ``sum_i m_i |v_i|^2 / 2`` over real atoms (epsilon);
        ``velocities`` default to the batch's."""
        v = self.velocities if velocities is None else velocities
        weight = jnp.where(self.mask, self.masses.astype(v.dtype), 0)
        return 0.5 * jnp.sum(weight[..., None] * v * v, axis=(1, 2))

    def temperature(self, velocities: Float[Array, "B N 3"] | None = None) -> Array:
        """``(B,)`` kinetic temperatures ``2 KE / (3 n_b - 3)`` (epsilon / k_B), as
        `hybrax.md.temperature` for each system alone."""
        ke = self.kinetic_energy(velocities)
        dof = 3 * jnp.sum(self.mask, axis=1) - 3
        return 2.0 * ke / dof.astype(ke.dtype)


def _stacked_box(lengths: Array) -> PeriodicBox:
    # a PeriodicBox whose leaf has a leading batch axis (what jax.vmap maps over)
    template = PeriodicBox(jnp.ones(3, lengths.dtype))
    return eqx.tree_at(lambda b: b.lengths, template, lengths)


def _parse_system(index: int, system):
    where = f"SystemBatch.from_systems: system {index}"
    if not isinstance(system, (tuple, list)) or not 2 <= len(system) <= 5:
        raise ConfigurationError(
            f"{where} must be a tuple (positions, box[, velocities[, masses[, species]]]), "
            f"got {type(system).__name__}"
            + (f" of length {len(system)}" if isinstance(system, (tuple, list)) else "")
        )
    positions, box, velocities, masses, species = (*system, None, None, None)[:5]
    try:
        positions = jnp.asarray(positions)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(f"{where}: positions must be an (n, 3) array") from error
    if positions.ndim != 2 or positions.shape[1] != 3 or positions.shape[0] < 1:
        raise ConfigurationError(
            f"{where}: positions must have shape (n, 3) with n >= 1 (all systems are "
            f"three-dimensional), got {positions.shape}"
        )
    if not jnp.issubdtype(positions.dtype, jnp.floating):
        raise ConfigurationError(
            f"{where}: positions must be floating point, got dtype {positions.dtype}"
        )
    if not isinstance(box, PeriodicBox):
        raise ConfigurationError(
            f"{where}: box must be a hybrax.md.PeriodicBox, got {type(box).__name__}"
        )
    n, dtype = positions.shape[0], positions.dtype
    concrete = concrete_or_none(positions)
    if concrete is not None and not np.all(np.isfinite(concrete)):
        raise ConfigurationError(f"{where}: positions contain NaN or inf")
    velocities = jnp.zeros_like(positions) if velocities is None else jnp.asarray(velocities)
    if velocities.shape != positions.shape or not jnp.issubdtype(velocities.dtype, jnp.floating):
        raise ConfigurationError(
            f"{where}: velocities must be floats of the positions' shape {positions.shape}, got "
            f"shape {velocities.shape} and dtype {velocities.dtype}"
        )
    masses = jnp.ones((n,), dtype) if masses is None else jnp.asarray(masses)
    if masses.ndim == 0:
        masses = jnp.broadcast_to(masses, (n,))
    if masses.shape != (n,):
        raise ConfigurationError(
            f"{where}: masses must be a number or one per atom ({n},), got shape {masses.shape}"
        )
    concrete = concrete_or_none(masses)
    if concrete is not None and not np.all(np.isfinite(concrete) & (concrete > 0)):
        raise ConfigurationError(f"{where}: masses must be positive and finite")
    if species is not None:
        species = jnp.asarray(species)
        if species.shape != (n,) or not jnp.issubdtype(species.dtype, jnp.integer):
            raise ConfigurationError(
                f"{where}: species must be ({n},) integers, got shape {species.shape} and "
                f"dtype {species.dtype}"
            )
        species = species.astype(jnp.int32)
    return positions, box, velocities.astype(dtype), masses.astype(dtype), species


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
    list for small systems). If any system's list overflows, the lists of the whole batch
    are rebuilt with more room (shared capacity), so no system is ever silently wrong.

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
        do not allow one common grid); False: all pairs.

    Raises
    ------
    hybrax.ConfigurationError
        A box shorter than twice the cut-off (the message names the system).

    Examples
    --------
    >>> import hybrax.md as md
    >>> a, box_a = md.lattice("fcc", 3, density=0.8442)
    >>> b, box_b = md.lattice("fcc", 3, density=0.9)
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
    short = np.any(lengths < 2 * cutoff, axis=1)
    if np.any(short):
        b = int(np.argmax(short))
        raise ConfigurationError(
            f"batch_neighbor_list: system {b} has box sides {lengths[b].tolist()}, shorter "
            f"than twice the cutoff {cutoff}: the minimum-image convention would miss "
            "periodic images. Use a larger box for that system or a shorter cutoff"
        )
    grids = {grid_for(row, cutoff + skin) for row in lengths}
    common = len(grids) == 1 and next(iter(grids))[2]
    if cells is None:
        cells = common and batch.positions.shape[1] > 256
    elif cells and not common:
        raise ConfigurationError(
            "batch_neighbor_list(cells=True): the boxes need different cell grids (or are "
            "too small for cell lists), so their lists cannot share one shape; use "
            "cells=False (all pairs) or boxes of similar size"
        )
    box0 = PeriodicBox(batch.lengths[0])
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
        lambda t: _overflowed(_update_all(t, batch.positions, batch.lengths)),
        lambda t, lists: grown_template(lists, batch.positions[0], batch.lengths[0]),
        template,
        max_regrowths=5,
        message=(
            "batch_neighbor_list: the lists still overflowed after 5 rebuilds; some system "
            "may hold a collapsed configuration (check the positions)"
        ),
    )
    return MaskedNeighborList(lists, batch.mask)


def grown_template(lists: AbstractNeighborList, positions, lengths) -> AbstractNeighborList:
    """A single (unmasked) list with room for everything any system of the stacked
    ``lists`` needed, built for ``positions`` in ``PeriodicBox(lengths)`` (host side)."""
    inner = lists.inner if isinstance(lists, MaskedNeighborList) else lists
    first = jax.tree.map(lambda x: x[0], inner)
    return first.with_needs_of(inner).grow(positions, PeriodicBox(lengths))


def _overflowed(lists: AbstractNeighborList) -> tuple[AbstractNeighborList, bool]:
    return lists, bool(jnp.any(lists.overflow))


@eqx.filter_jit
def _update_all(template: AbstractNeighborList, positions, lengths) -> AbstractNeighborList:
    return jax.vmap(lambda p, L: template.update(p, _box(L)))(positions, lengths)


def _box(lengths: Array) -> PeriodicBox:
    # inside vmap: the lengths were checked when the batch was built
    return eqx.tree_at(lambda b: b.lengths, PeriodicBox(1.0), lengths)


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
    if not isinstance(batch, SystemBatch):
        raise ConfigurationError(
            f"batch_energy_and_forces needs a hybrax.md.SystemBatch, got {type(batch).__name__}"
        )
    if not isinstance(neighbors, MaskedNeighborList):
        raise ConfigurationError(
            "batch_energy_and_forces needs the batch's lists from "
            f"hybrax.md.batch_neighbor_list(batch, cutoff), got {type(neighbors).__name__}"
        )

    return _batch_energy_and_forces(energy, batch, neighbors)


@eqx.filter_jit
def _batch_energy_and_forces(energy, batch: SystemBatch, neighbors: MaskedNeighborList):
    def one(positions, lengths, species, nbrs):
        return bind_species(energy, species).energy_and_forces(positions, nbrs, _box(lengths))

    energies, forces = jax.vmap(one)(batch.positions, batch.lengths, batch.species, neighbors)
    return energies, jnp.where(batch.mask[..., None], forces, 0)
