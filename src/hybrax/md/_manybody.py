"""Many-body energies (EAM, Stillinger-Weber, Tersoff): per-atom neighbour tables built from
any `AbstractNeighborList`, the shared energy / per-atom energy / virial plumbing."""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from equinox import AbstractVar
from jaxtyping import Array, Bool, Float, Int

from hybrax.core import ConfigurationError, concrete_or_none

from ._cell_list import CellNeighborList
from ._dense_list import DenseNeighborList
from ._energy import AbstractEnergy
from ._neighbors import (
    AbstractNeighborList,
    _block_size,
    _check_positions_shape,
    _window_gather,
)
from ._space import AbstractBox, PeriodicBox

__all__ = ["AbstractManyBodyEnergy"]


def half_pairs(neighbors: AbstractNeighborList) -> tuple[Array, Array, Array]:
    """Candidate pairs ``(i, j, valid)``, each unordered pair once, from either list."""
    n = neighbors.num_atoms
    if isinstance(neighbors, DenseNeighborList):
        i, j = np.triu_indices(n, k=1)
        return jnp.asarray(i, jnp.int32), jnp.asarray(j, jnp.int32), jnp.ones(i.shape, bool)
    if isinstance(neighbors, CellNeighborList):
        rows, others, valid = [], [], []
        for q, width in enumerate(neighbors.widths):
            start = neighbors.window_start[:, q]
            others.append(_window_gather(neighbors.ext_ids, start, width))
            slots = jnp.arange(width, dtype=jnp.int32)[None, :]
            valid.append(slots < neighbors.window_count[:, q : q + 1].astype(jnp.int32))
            rows.append(jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32)[:, None], (n, width)))
        cat = lambda parts: jnp.concatenate(parts, axis=1).reshape(-1)  # noqa: E731
        return cat(rows), cat(others).astype(jnp.int32), cat(valid)
    raise ConfigurationError(
        f"many-body potentials need a CellNeighborList or DenseNeighborList, got "
        f"{type(neighbors).__name__}"
    )


def verlet_rows(neighbors: AbstractNeighborList) -> tuple[Array, Array] | None:
    """A full Verlet table's rows ``(table (N, W), valid (N, W))`` (every neighbour of every
    atom within the list radius, both directions) when ``neighbors`` holds one (a
    `CellNeighborList` of format ``"table"`` in an orthorhombic box), else None."""
    if (
        isinstance(neighbors, CellNeighborList)
        and neighbors.format == "table"
        and not neighbors.triclinic
    ):
        n, width = neighbors.num_atoms, neighbors.widths[0]
        table = neighbors.ext_ids.reshape(n, width)
        valid = jnp.arange(width, dtype=jnp.int32)[None, :] < neighbors.row_count[:, None]
        return table, valid
    return None


def _compact_rows(table, keep, capacity: int):
    """Each row's kept entries moved to its front (in order) in ``capacity`` columns: one
    pass over the row's columns carries the running count of kept entries and drops entry
    ``w`` into slot ``count`` (a chain of elementwise selects that XLA fuses into one loop
    over the ``(N, capacity)`` output: no sort, no scatter, no prefix-sum primitive, whose
    CPU lowerings cost several times more)."""
    n, width = table.shape
    slot = jnp.arange(capacity, dtype=jnp.int32)[None, :]
    compact = jnp.zeros((n, capacity), jnp.int32)
    count = jnp.zeros((n, 1), jnp.int32)
    for w in range(width):
        kept = keep[:, w : w + 1]
        compact = jnp.where(kept & (count == slot), table[:, w : w + 1].astype(jnp.int32), compact)
        count = count + kept.astype(jnp.int32)
    return compact, slot < count


def _filter_rows(positions, table, valid, box, cutoff: float, capacity: int, block: int = 4096):
    """The entries of each row of a full Verlet table within ``cutoff``, compacted to the
    row's front in ``capacity`` columns (`_compact_rows`): ``(table, mask, counts)``.
    Distances and compaction run as two loops over blocks of rows. Loop operands and results
    are buffers, so XLA can neither fuse the distances into every step of the compaction
    nor the compaction into every gather that reads the compacted table (either would be
    recomputed per use: several times slower), and each block's temporaries stay in cache."""
    n, width = table.shape
    block = max(1, min(block, -(-n // 2)))  # at least two blocks: the loops stay loops
    num_blocks = -(-n // block)
    pad = num_blocks * block - n
    atoms = jnp.minimum(jnp.arange(n + pad, dtype=jnp.int32), n - 1).reshape(num_blocks, block)
    table = jnp.pad(table, ((0, pad), (0, 0))).reshape(num_blocks, block, width)
    valid = jnp.pad(valid, ((0, pad), (0, 0))).reshape(num_blocks, block, width)

    def within(args):
        atoms, others, valid = args
        d = row_displacements(positions, atoms, others, box)
        return valid & (d[0] * d[0] + d[1] * d[1] + d[2] * d[2] < cutoff * cutoff)

    keep = jax.lax.map(within, (atoms, table, valid))
    compact, filled = jax.lax.map(lambda args: _compact_rows(*args, capacity), (table, keep))
    counts = jnp.sum(keep, axis=2, dtype=jnp.int32).reshape(-1)[:n]
    return compact.reshape(-1, capacity)[:n], filled.reshape(-1, capacity)[:n], counts


def neighbor_table(
    neighbors: AbstractNeighborList,
    positions: Float[Array, "N 3"],
    box: AbstractBox,
    cutoff: float,
    capacity: int,
) -> tuple[Int[Array, "N M"], Bool[Array, "N M"], Bool[Array, ""]]:
    """Every atom's neighbours within ``cutoff`` (both directions), at most ``capacity`` per
    atom: ``(table, mask, overflow)``; padded slots hold index 0 and ``mask = False``.
    Integer work only (no gradient flows through it).

    From a full Verlet table (`verlet_rows`) each row is filtered and compacted in place;
    from any other list the candidate pairs are sorted by atom."""
    n = neighbors.num_atoms
    positions = jax.lax.stop_gradient(positions)
    rows = verlet_rows(neighbors)
    if rows is not None:
        table, valid = rows
        table, mask, counts = _filter_rows(positions, table, valid, box, cutoff, capacity)
        return table, mask, jnp.max(counts) > capacity
    i, j, valid = half_pairs(neighbors)
    d = box.displacement(positions[i], positions[j])
    valid = valid & (jnp.sum(d * d, axis=-1) < cutoff * cutoff)
    # keep the pairs within the cut-off (at most n * capacity / 2 without an overflow)
    # before the sort: a few percent of the candidates
    limit = min(i.shape[0], n * capacity // 2 + 1)
    (kept,) = jnp.nonzero(valid, size=limit, fill_value=0)
    kept = kept.astype(jnp.int32)
    lost = jnp.sum(valid, dtype=jnp.int32) > limit
    valid = jnp.arange(limit, dtype=jnp.int32) < jnp.sum(valid, dtype=jnp.int32)
    i, j = i[kept], j[kept]
    rows = jnp.concatenate([jnp.where(valid, i, n), jnp.where(valid, j, n)])
    cols = jnp.concatenate([j, i])
    order = jnp.argsort(rows, stable=True)
    rows, cols = rows[order], cols[order]
    counts = jnp.bincount(rows, length=n + 1)[:n].astype(jnp.int32)
    starts = jnp.cumsum(counts, dtype=jnp.int32) - counts
    rank = jnp.arange(rows.shape[0], dtype=jnp.int32) - starts[jnp.minimum(rows, n - 1)]
    keep = (rows < n) & (rank < capacity)
    table = jnp.zeros((n, capacity), jnp.int32)
    table = table.at[jnp.where(keep, rows, n), jnp.where(keep, rank, 0)].set(cols, mode="drop")
    mask = jnp.arange(capacity, dtype=jnp.int32)[None, :] < counts[:, None]
    return table, mask, (jnp.max(counts) > capacity) | lost


def row_displacements(
    positions: Float[Array, "N 3"], atoms: Int[Array, " B"], others: Int[Array, "B W"], box
) -> list[Array]:
    """The three components of ``r_j - r_i`` (minimum image) for rows ``i = atoms`` and
    entries ``j = others``: in a `PeriodicBox` one scalar gather per component (a gather
    of ``(..., 3)`` rows is several times slower on CPU), else `AbstractBox.displacement`."""
    if isinstance(box, PeriodicBox):
        lengths = box.lengths.astype(positions.dtype)
        inverse = 1.0 / lengths
        out = []
        for a in range(3):
            column = positions[:, a]
            da = column[others] - column[atoms][:, None]
            out.append(da - lengths[a] * jnp.rint(da * inverse[a]))
        return out
    d = box.displacement(positions[others], positions[atoms][:, None, :])
    return [d[..., a] for a in range(3)]


def triplet_cosines(unit: Float[Array, "N M 3"]) -> Float[Array, "N M M"]:
    """``cos theta_jik`` of every pair of an atom's neighbour directions, by elementwise
    products (a batched product of tiny matrices is many times slower on CPU)."""
    return sum(unit[:, :, None, a] * unit[:, None, :, a] for a in range(3))


class AbstractManyBodyEnergy(AbstractEnergy):
    """A many-body energy ``U = sum_i E_i({r_ij})`` written in terms of neighbour
    displacements ``r_ij = r_j - r_i`` (minimum image) within ``cutoff``.

    Subclasses implement ``local_energy(d, mask, owner, other, species)``: per-atom
    energies ``(N,)`` from displacements ``d`` (``(..., 3)``; masked entries hold a
    harmless vector and ``mask = False``), each from atom ``owner`` to atom ``other``
    (integer arrays of ``d``'s leading shape), and the ``(N,)`` species. By default ``d``
    is a per-atom table ``(N, M, 3)`` of every neighbour of every atom (``owner[i, m] = i``,
    ``other`` the neighbour indices), which three-body terms need; a potential made of pair
    sums (EAM) may override ``_displacements`` to use each pair once. Forces and the
    virial tensor ``W = -sum r_ij (x) dU/dr_ij`` (`virial`) come from one gradient with
    respect to ``d``.

    The default table holds at most ``max_neighbors`` neighbours per atom (a static field
    of the subclass; three-body cost grows like its square, so size it to the system). A
    configuration with more, or a neighbour list that overflowed, makes the energy, forces
    and virial NaN (never silently wrong): raise ``max_neighbors`` or rebuild the list.
    """

    cutoff: AbstractVar[float]
    species: AbstractVar[Int[Array, " N"] | None]

    @abc.abstractmethod
    def local_energy(
        self,
        d: Float[Array, "... 3"],
        mask: Bool[Array, "..."],
        owner: Int[Array, "..."],
        other: Int[Array, "..."],
        species: Int[Array, " N"],
    ) -> Float[Array, " N"]:
        """Per-atom energies from the neighbour displacements (eV)."""

    @property
    def required_cutoff(self) -> float:
        return self.cutoff

    def _check_neighbors(self, positions, neighbors) -> None:
        if not isinstance(neighbors, AbstractNeighborList):
            raise ConfigurationError(
                f"{type(self).__name__} needs a neighbour list: build one with "
                f"hybrax.md.neighbor_list(positions, box, cutoff={self.cutoff})"
            )
        _check_positions_shape(positions, neighbors.num_atoms)
        if self.cutoff > neighbors.cutoff + 1e-12:
            raise ConfigurationError(
                f"{type(self).__name__} has cutoff {self.cutoff} but the neighbour list was "
                f"built for cutoff {neighbors.cutoff}; build it with "
                f"neighbor_list(positions, box, cutoff={self.cutoff})"
            )
        # a NaN or inf position fails every distance test, so its atom would silently drop
        # out of the sums (as in the pair path, `_neighbors._checked_pass`): an error when
        # the positions are known now; traced, `_nan_if_not_finite` makes the results NaN
        known = concrete_or_none(positions)
        if known is not None and not np.all(np.isfinite(known)):
            bad = int(np.argmax(~np.all(np.isfinite(known), axis=-1)))
            raise ConfigurationError(
                f"{type(self).__name__}: positions contain NaN or inf (first: atom {bad}, at "
                f"{np.asarray(known[bad]).tolist()}); the many-body sums would leave that atom "
                "out. Pass finite positions"
            )
        n = neighbors.num_atoms
        if self.species is not None and self.species.shape != (n,):
            raise ConfigurationError(
                f"{type(self).__name__}: species has shape {self.species.shape} but there are "
                f"{n} atoms; pass one integer per atom"
            )

    def _displacements(self, positions, neighbors, box):
        n = neighbors.num_atoms
        species = jnp.zeros(n, jnp.int32) if self.species is None else self.species
        table, mask, overflow = neighbor_table(
            neighbors, positions, box, self.cutoff, self.max_neighbors
        )
        atoms = jnp.arange(n, dtype=jnp.int32)
        owner = jnp.broadcast_to(atoms[:, None], table.shape)
        d = jnp.stack(row_displacements(positions, atoms, table, box), axis=-1)
        return self._guarded(d, mask, overflow | neighbors.overflow), mask, owner, table, species

    def _evaluate(self, positions, neighbors, box):
        """``(energy, forces, virial)``; by default one reverse pass through
        `local_energy` (`_reverse_pass`)."""
        return _reverse_pass(self, positions, neighbors, box)

    def _guarded(self, d, mask, bad):
        """Masked entries get a harmless vector; everything is NaN when the list is bad."""
        safe = jnp.asarray([0.5 * self.cutoff, 0.0, 0.0], d.dtype)
        d = jnp.where(mask[..., None], d, safe)
        return d * jnp.where(bad, jnp.nan, 1.0).astype(d.dtype)

    def per_atom_energy(
        self,
        positions: Float[Array, "N 3"],
        neighbors: AbstractNeighborList,
        box: AbstractBox,
    ) -> Float[Array, " N"]:
        """Each atom's energy ``E_i`` (eV), shape ``(N,)``; they sum to `energy`."""
        self._check_neighbors(positions, neighbors)
        return _per_atom_energy(self, positions, neighbors, box)

    def energy(self, positions, neighbors, box):
        return jnp.sum(self.per_atom_energy(positions, neighbors, box))

    def virial(
        self,
        positions: Float[Array, "N 3"],
        neighbors: AbstractNeighborList,
        box: AbstractBox,
    ) -> Float[Array, "3 3"]:
        """Virial tensor ``W_ab = -sum_ij r_ij,a dU/dr_ij,b`` (eV), as LAMMPS's
        ``compute pressure NULL virial`` times the volume (over ``nktv2p``); its trace
        over ``3 V`` is the configurational pressure."""
        self._check_neighbors(positions, neighbors)
        return _energy_forces_virial(self, positions, neighbors, box)[2]

    def energy_and_forces(self, positions, neighbors, box):
        """Energy and forces from one gradient with respect to the neighbour
        displacements (the same compiled program as `virial`)."""
        self._check_neighbors(positions, neighbors)
        return _energy_forces_virial(self, positions, neighbors, box)[:2]

    def forces(self, positions, neighbors, box):
        return self.energy_and_forces(positions, neighbors, box)[1]


@eqx.filter_jit
def _per_atom_energy(potential: AbstractManyBodyEnergy, positions, neighbors, box):
    """One compiled program for the per-atom energies (eager calls would otherwise compile
    each of the many small table operations separately)."""
    out = potential.local_energy(*potential._displacements(positions, neighbors, box))
    return _nan_if_not_finite(positions, out)


@eqx.filter_jit
def _energy_forces_virial(potential: AbstractManyBodyEnergy, positions, neighbors, box):
    """One compiled program for the energy, forces and virial (`_evaluate`)."""
    return _nan_if_not_finite(positions, *potential._evaluate(positions, neighbors, box))


def _nan_if_not_finite(positions, *outputs):
    """``outputs`` times NaN when a position is NaN or inf (one reduction over the
    positions): such an atom fails every distance test and would silently drop out of the
    sums. A product, not a select, so gradients through the outputs are NaN too."""
    factor = jnp.where(jnp.all(jnp.isfinite(positions)), 1.0, jnp.nan)
    out = tuple(x * factor.astype(x.dtype) for x in outputs)
    return out[0] if len(out) == 1 else out


def _reverse_pass(potential: AbstractManyBodyEnergy, positions, neighbors, box):
    """Energy, forces and virial from ``g = dU/dr_ij`` over the displacements
    ``r_ij = r_other - r_owner``: ``F = sum over owner of g - sum over other of g`` and
    ``W = -sum r_ij (x) g_ij``."""
    d, mask, owner, other, species = potential._displacements(positions, neighbors, box)
    energy = lambda x: jnp.sum(potential.local_energy(x, mask, owner, other, species))  # noqa: E731
    total, grad = jax.value_and_grad(energy)(d)
    grad = jnp.where(mask[..., None], grad, 0.0)
    n = positions.shape[0]
    if grad.ndim == 3:  # per-atom rows: the owner's sum is a row sum
        forces = jnp.sum(grad, axis=1)
    else:
        forces = jax.ops.segment_sum(grad, owner, num_segments=n)
    forces = forces - jax.ops.segment_sum(grad.reshape(-1, 3), other.reshape(-1), num_segments=n)
    virial = -jnp.einsum("pa,pb->ab", d.reshape(-1, 3), grad.reshape(-1, 3))
    return poisoned(d, total, forces, virial)


def row_block_pass(
    potential: AbstractManyBodyEnergy,
    positions,
    neighbors,
    box,
    row_terms,
    slots: int,
    block: int | None = None,
) -> tuple[Array, Array, Array]:
    """Energy, forces and virial of a three-body potential from its per-atom neighbour
    tables, over blocks of rows so each block's temporaries stay in cache.

    ``row_terms(d, mask, table, species, atoms)`` gives, for a block of rows ``atoms`` with
    displacements ``d`` ``(B, M, 3)`` to neighbours ``table`` (masked entries hold a
    harmless vector), each row's energy ``(B,)`` and ``dE/dr_ij`` ``(B, M, 3)``; ``slots``
    is the size of its largest temporary per row (``M``, or ``M * M`` for triplets), which
    sets the rows per block (``block`` overrides it).
    Forces: ``F_i = sum_m g[i, m] - sum over rows naming i of g`` (a row sum in the block,
    one scatter of the reactions after the loop); virial ``W = -sum r_ij (x) g_ij``."""
    n = neighbors.num_atoms
    species = jnp.zeros(n, jnp.int32) if potential.species is None else potential.species
    table, mask, overflow = neighbor_table(
        neighbors, positions, box, potential.cutoff, potential.max_neighbors
    )
    width = table.shape[1]
    block = _block_size(slots, n) if block is None else min(block, n)
    num_blocks = -(-n // block)
    pad = num_blocks * block - n
    atoms = jnp.minimum(jnp.arange(n + pad, dtype=jnp.int32), n - 1)
    blocks = (
        atoms.reshape(num_blocks, block),
        jnp.pad(table, ((0, pad), (0, 0))).reshape(num_blocks, block, width),
        jnp.pad(mask, ((0, pad), (0, 0))).reshape(num_blocks, block, width),
    )

    def one_block(args):
        atoms, others, mask = args
        d = jnp.stack(row_displacements(positions, atoms, others, box), axis=-1)
        d = potential._guarded(d, mask, False)
        energy, grad = row_terms(d, mask, others, species, atoms)
        grad = jnp.where(mask[..., None], grad, 0.0)
        own = jnp.sum(grad, axis=1)
        virial = -jnp.einsum("kma,kmb->ab", d, grad)
        return jnp.sum(energy), own, grad, virial

    energy, own, grad, virial = jax.lax.map(one_block, blocks)
    grad = grad.reshape(-1, width, 3)[:n]
    forces = own.reshape(-1, 3)[:n] - jax.ops.segment_sum(
        grad.reshape(-1, 3), table.reshape(-1), num_segments=n
    )
    bad = jnp.where(overflow | neighbors.overflow, jnp.nan, 1.0).astype(positions.dtype)
    return bad * jnp.sum(energy), bad * forces, bad * jnp.sum(virial, axis=0)


def poisoned(d: Array, *outputs: Array) -> tuple[Array, ...]:
    """``outputs`` made NaN when `AbstractManyBodyEnergy._guarded` made the displacements
    ``d`` NaN (a bad list): sums over masked entries would otherwise hide it."""
    factor = jnp.where(jnp.isnan(d.reshape(-1)[0]), jnp.nan, 1.0).astype(d.dtype)
    return tuple(factor * x for x in outputs)


def check_species(name: str, species, num_species: int) -> Array | None:
    """``species`` as an ``(N,)`` integer array with values in ``[0, num_species)``."""
    if species is None:
        return None
    try:
        species = jnp.asarray(species)
    except (TypeError, ValueError):
        species = None
    if species is None or species.ndim != 1 or not jnp.issubdtype(species.dtype, jnp.integer):
        raise ConfigurationError(
            f"{name}: species must be an (N,) integer array (one species index per atom)"
        )
    concrete = concrete_or_none(species)
    if concrete is not None and concrete.size:
        low, high = int(np.min(concrete)), int(np.max(concrete))
        if low < 0 or high >= num_species:
            raise ConfigurationError(
                f"{name}: species values must lie in [0, {num_species}) (the potential "
                f"defines {num_species} species), got values from {low} to {high}"
            )
    return species


def element_names(elements, count: int) -> tuple[str, ...]:
    """The species' element names (``type0``, ``type1``, ... when not given)."""
    return tuple(elements) if elements else tuple(f"type{k}" for k in range(count))


def check_max_neighbors(value, name: str) -> int:
    """A static neighbour capacity: a positive Python int."""
    concrete = concrete_or_none(value)
    if concrete is None or np.ndim(concrete) != 0 or int(concrete) != concrete or concrete < 1:
        raise ConfigurationError(
            f"{name}: max_neighbors must be a positive integer (static), got {value!r}"
        )
    return int(concrete)
