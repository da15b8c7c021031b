"""Verlet neighbour lists built from spatially sorted cells, in O(N) inside jit.

Layout (why it is fast on CPU)
------------------------------
Atoms are sorted by a cell index whose fastest axis is ``x``, so every column of cells
along ``x`` (fixed ``y``, ``z`` cell) is one contiguous run of the sorted array. For atom
``i`` and each of the columns within reach in ``y`` and ``z``, the atoms that can lie within
``cutoff + skin`` of ``i`` form one contiguous (periodically wrapping) window of that column:
the cells whose ``x`` range meets ``[x_i - w, x_i + w]``, with ``w`` the half chord of the
list sphere at the column's closest lateral distance. The list stores, per atom and column,
the window's start and length. Building it is a sort of ``N`` cell indices and a few
``(N, columns)`` table look-ups: no per-candidate distance pass, no compaction, no scatter.

The force pass reads each window with one slice gather from a column-major copy of the
positions (each column followed by a copy of its first atoms so wrapping windows stay
contiguous) and masks by the cut-off. It runs over blocks of atoms so that every
intermediate fits in cache.

Capacities (atoms per column, window widths) are static. When a rebuilt list would need
more, the list sets ``overflow``; `hybrax.md.simulate` grows the capacity and re-runs,
and the integrators raise by default.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Bool, Float, Int

from ._space import AbstractBox, PeriodicBox

__all__ = ["NeighborList", "neighbor_list"]

_BLOCK_ELEMENTS = 65536  # pair slots per block of the force pass (keeps temporaries in cache)


class NeighborList(eqx.Module):
    """A Verlet neighbour list: for every atom, the atoms within ``cutoff + skin``.

    Create one with `hybrax.md.neighbor_list` (outside jit: it sizes the static
    capacities from the configuration). Inside jit, `update` rebuilds it for new positions
    with the same capacities, `needs_update` tells whether any atom moved more than
    ``skin / 2`` since the last build, and `maybe_update` rebuilds only then (a
    `jax.lax.cond`, so rebuilds happen inside a scan with no host round trip).

    Every list is a superset of the pairs within ``cutoff`` as long as no atom moved more
    than ``skin / 2`` since the build. Pair sums (`accumulate`) mask by the cut-off, so
    energies equal the all-pairs (dense) energies.

    Attributes
    ----------
    cutoff, skin
        Interaction cut-off and Verlet skin (sigma); the list radius is their sum. Static.
    mode
        ``"cells"`` (sorted cell windows, O(N)) or ``"dense"`` (all pairs, O(N^2), for small
        systems and free space). Static.
    overflow
        True once a rebuild needed more room than the static capacities allow (sticky). The
        list is then incomplete: rebuild with `grow` (done for you by
        `hybrax.md.simulate`).
    max_counts, max_column_length
        Largest window count per column and largest column occupancy seen by any build
        (sticky); `grow` sizes the new capacities from them.
    num_builds
        How many times the list was built (diagnostic).
    """

    reference_positions: Float[Array, "N 3"]
    ext_ids: Int[Array, " E"]
    window_start: Int[Array, "N Q"]
    window_count: Int[Array, "N Q"]
    self_slot: Int[Array, " N"]
    overflow: Bool[Array, ""]
    max_counts: Int[Array, " Q"]
    max_column_length: Int[Array, ""]
    num_builds: Int[Array, ""]
    cutoff: float = eqx.field(static=True)
    skin: float = eqx.field(static=True)
    mode: str = eqx.field(static=True)
    grid: tuple[int, int, int] = eqx.field(static=True)
    columns: tuple[tuple[int, int], ...] = eqx.field(static=True)
    widths: tuple[int, ...] = eqx.field(static=True)
    column_capacity: int = eqx.field(static=True)
    block_size: int = eqx.field(static=True)

    # ------------------------------------------------------------------ structure
    @property
    def num_atoms(self) -> int:
        return self.reference_positions.shape[-2]

    @property
    def list_radius(self) -> float:
        return self.cutoff + self.skin

    @property
    def stride(self) -> int:
        return self.column_capacity + max(self.widths)

    @property
    def slots_per_atom(self) -> int:
        """Candidate slots per atom in the force pass (sum of window widths)."""
        return int(sum(self.widths))

    # ------------------------------------------------------------------ building
    def update(self, positions: Float[Array, "N 3"], box: AbstractBox) -> NeighborList:
        """Rebuild for ``positions`` with the same capacities (jit-compatible).

        Sets ``overflow`` if the capacities are too small for this configuration.
        """
        _check_positions_shape(positions, self.num_atoms)
        if self.mode == "dense":
            return eqx.tree_at(
                lambda n: (n.reference_positions, n.num_builds),
                self,
                (positions, self.num_builds + 1),
            )
        tables = _build_tables(
            positions,
            box,
            grid=self.grid,
            columns=self.columns,
            widths=self.widths,
            column_capacity=self.column_capacity,
            list_radius=self.list_radius,
        )
        ext_ids, start, count, self_slot, overflow, counts_needed, column_needed = tables
        return eqx.tree_at(
            lambda n: (
                n.reference_positions,
                n.ext_ids,
                n.window_start,
                n.window_count,
                n.self_slot,
                n.overflow,
                n.max_counts,
                n.max_column_length,
                n.num_builds,
            ),
            self,
            (
                positions,
                ext_ids,
                start,
                count,
                self_slot,
                self.overflow | overflow,
                jnp.maximum(self.max_counts, counts_needed),
                jnp.maximum(self.max_column_length, column_needed),
                self.num_builds + 1,
            ),
        )

    def max_displacement(self, positions: Float[Array, "N 3"], box: AbstractBox) -> Array:
        """Largest distance any atom moved since the last build (sigma)."""
        d = box.displacement(positions, self.reference_positions.astype(positions.dtype))
        return jnp.sqrt(jnp.max(jnp.sum(d * d, axis=-1)))

    def needs_update(self, positions: Float[Array, "N 3"], box: AbstractBox) -> Array:
        """True when some atom moved more than ``skin / 2`` since the last build."""
        d = box.displacement(positions, self.reference_positions.astype(positions.dtype))
        return jnp.max(jnp.sum(d * d, axis=-1)) > (0.5 * self.skin) ** 2

    def maybe_update(self, positions: Float[Array, "N 3"], box: AbstractBox) -> NeighborList:
        """`update` if `needs_update`, else ``self`` (one `jax.lax.cond`)."""
        if self.mode == "dense":
            return self  # all pairs: nothing to rebuild
        return lax.cond(
            self.needs_update(positions, box),
            lambda p: self.update(p, box),
            lambda p: self,
            positions,
        )

    def grow(
        self, positions: Float[Array, "N 3"], box: AbstractBox, factor: float = 1.25
    ) -> NeighborList:
        """A new list for ``positions`` whose capacities hold everything any earlier build
        needed (``max_counts``, ``max_column_length``) times ``factor``, and this
        configuration's needs (host side, not jit-compatible)."""
        counts = np.asarray(self.max_counts)
        column = int(self.max_column_length)
        return neighbor_list(
            positions,
            box,
            self.cutoff,
            skin=self.skin,
            mode=self.mode,
            capacity_multiplier=factor,
            minimum_capacity=(
                max(self.column_capacity, math.ceil(column * factor) + 2),
                tuple(
                    max(w, math.ceil(int(c) * factor) + 2)
                    for w, c in zip(self.widths, counts, strict=True)
                ),
            ),
        )

    # ------------------------------------------------------------------ pair sums
    def accumulate(
        self,
        positions: Float[Array, "N 3"],
        box: AbstractBox,
        pair_fn: Callable,
        *,
        cutoff: float | None = None,
        species: Int[Array, " N"] | None = None,
    ) -> tuple[Array, ...]:
        """Per-atom sums over neighbours ``j`` within ``cutoff`` of ``pair_fn``.

        ``pair_fn(d, r2, species_i, species_j)`` gets the displacement components
        ``d = (dx, dy, dz)`` of ``r_i - r_j`` (minimum image), their squared length ``r2``
        (pairs beyond the cut-off get ``r2 = cutoff**2`` so ``pair_fn`` stays finite; their
        values are discarded), and the species of ``i`` and ``j`` (``None`` without species).
        It returns a tuple of arrays shaped like ``r2``; the result is the tuple of their
        sums over each atom's neighbours, each of shape ``(N,)``. Every pair is seen from
        both sides (a full list), so energies need a factor 1/2.

        Differentiable with respect to positions and anything ``pair_fn`` closes over.
        """
        n = self.num_atoms
        _check_positions_shape(positions, n)
        cutoff = self.cutoff if cutoff is None else float(cutoff)
        if cutoff > self.cutoff + 1e-12:
            raise ValueError(
                f"a pair term with cutoff {cutoff} needs a neighbour list built for at "
                f"least that cutoff; this list has cutoff {self.cutoff}. Build it with "
                f"neighbor_list(positions, box, cutoff={cutoff}, ...)"
            )
        if species is not None and jnp.shape(species) != (n,):
            raise ValueError(
                f"species must have shape ({n},) (one integer per atom), got {jnp.shape(species)}"
            )
        dtype = positions.dtype
        periodic = isinstance(box, PeriodicBox)
        lengths = box.lengths.astype(dtype) if periodic else None
        coords = [positions[:, k] for k in range(3)]
        ext = self.ext_ids
        ext_coords = [c[ext] for c in coords]
        ext_species = None if species is None else species[ext]

        block = min(self.block_size, n)
        num_blocks = -(-n // block)
        pad = num_blocks * block - n

        def padded(x, fill=0):
            if pad == 0:
                return x
            widths = [(0, pad)] + [(0, 0)] * (x.ndim - 1)
            return jnp.pad(x, widths, constant_values=fill)

        atom_coords = jnp.stack([padded(c) for c in coords], axis=-1)
        starts = padded(self.window_start)
        counts = padded(self.window_count)
        self_slots = padded(self.self_slot, -1)
        atom_species = None if species is None else padded(species)
        slot_q = np.concatenate([np.full(w, q) for q, w in enumerate(self.widths)])
        slot_k = np.concatenate([np.arange(w) for w in self.widths])
        central = self.columns.index((0, 0))
        is_central = jnp.asarray(slot_q == central)
        slot_k_arr = jnp.asarray(slot_k, jnp.int32)
        cutoff_sq = cutoff * cutoff

        def windows(x_ext, start):
            parts = [
                jax.vmap(lambda s, w=w: lax.dynamic_slice(x_ext, (s,), (w,)))(start[:, q])
                for q, w in enumerate(self.widths)
            ]
            return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=1)

        def one_block(args):
            xi, start, count, self_k, si = args
            count_slots = (
                jnp.concatenate(
                    [
                        jnp.broadcast_to(count[:, q : q + 1], (block, w))
                        for q, w in enumerate(self.widths)
                    ],
                    axis=1,
                )
                if len(self.widths) > 1
                else jnp.broadcast_to(count, (block, self.widths[0]))
            )
            valid = slot_k_arr[None, :] < count_slots
            valid = valid & ~(is_central[None, :] & (slot_k_arr[None, :] == self_k[:, None]))
            d = []
            for k in range(3):
                dk = xi[:, k : k + 1] - windows(ext_coords[k], start)
                if periodic:
                    dk = dk - lengths[k] * jnp.round(dk / lengths[k])
                d.append(dk)
            r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
            mask = valid & (r2 < cutoff_sq)
            r2_safe = jnp.where(mask, r2, cutoff_sq)
            sj = None if ext_species is None else windows(ext_species, start)
            si_b = None if si is None else si[:, None]
            values = pair_fn(tuple(d), r2_safe, si_b, sj)
            return tuple(jnp.sum(jnp.where(mask, v, 0), axis=1) for v in values)

        xs = (
            atom_coords.reshape(num_blocks, block, 3),
            starts.reshape(num_blocks, block, -1),
            counts.reshape(num_blocks, block, -1),
            self_slots.reshape(num_blocks, block),
            None if atom_species is None else atom_species.reshape(num_blocks, block),
        )
        if num_blocks == 1:
            out = one_block(jax.tree.map(lambda x: x[0], xs))
        else:
            out = lax.map(one_block, xs)
        return tuple(o.reshape(num_blocks * block)[:n] for o in out)


def _check_positions_shape(positions, n: int | None = None) -> None:
    shape = jnp.shape(positions)
    if len(shape) != 2 or shape[1] != 3:
        hint = "; for a batch of systems use jax.vmap" if len(shape) == 3 else ""
        raise ValueError(f"positions must have shape (N, 3), got {shape}{hint}")
    if n is not None and shape[0] != n:
        raise ValueError(
            f"positions have {shape[0]} atoms but the neighbour list was built for {n}; "
            "build a new list with hybrax.md.neighbor_list"
        )
    if not jnp.issubdtype(jnp.result_type(positions), jnp.floating):
        raise ValueError(
            f"positions must be floating point (float32 or float64), got "
            f"{jnp.result_type(positions)}"
        )


# ---------------------------------------------------------------------- geometry
def _grid_for(lengths: np.ndarray, list_radius: float) -> tuple[tuple[int, int, int], tuple]:
    """Cell grid (nx, ny, nz) and the (dy, dz) column offsets within reach."""
    lx, ly, lz = (float(v) for v in lengths)
    nx = max(1, int(lx // (list_radius / 6.0)))
    ny = max(1, int(ly // (list_radius / 2.0)))
    nz = max(1, int(lz // (list_radius / 2.0)))
    hy, hz = ly / ny, lz / nz
    reach_y, reach_z = math.ceil(list_radius / hy), math.ceil(list_radius / hz)
    columns = tuple(
        (dy, dz)
        for dy in range(-reach_y, reach_y + 1)
        for dz in range(-reach_z, reach_z + 1)
        if (max(abs(dy) - 1, 0) * hy) ** 2 + (max(abs(dz) - 1, 0) * hz) ** 2 < list_radius**2
    )
    return (nx, ny, nz), columns, (reach_y, reach_z)


def _cell_windows(positions, box, *, grid, columns, list_radius):
    """Sort atoms into cells; every atom's window (start in its column, count) per column."""
    nx, ny, nz = grid
    num_cols = ny * nz
    dtype = positions.dtype
    lengths = box.lengths.astype(dtype)
    x, y, z = positions[:, 0], positions[:, 1], positions[:, 2]
    hy, hz = lengths[1] / ny, lengths[2] / nz
    cx = jnp.clip(jnp.floor(x * (nx / lengths[0])).astype(jnp.int32), 0, nx - 1)
    cy = jnp.clip(jnp.floor(y / hy).astype(jnp.int32), 0, ny - 1)
    cz = jnp.clip(jnp.floor(z / hz).astype(jnp.int32), 0, nz - 1)
    cell = (cz * ny + cy) * nx + cx
    order = jnp.argsort(cell).astype(jnp.int32)
    start = jnp.searchsorted(cell[order], jnp.arange(num_cols * nx + 1, dtype=jnp.int32)).astype(
        jnp.int32
    )

    dy = jnp.asarray([c[0] for c in columns], jnp.int32)
    dz = jnp.asarray([c[1] for c in columns], jnp.int32)
    y_in = (y - cy.astype(dtype) * hy)[:, None]
    z_in = (z - cz.astype(dtype) * hz)[:, None]

    def gap(offset, inside, h):
        above = offset.astype(dtype) * h - inside
        below = inside + (-offset - 1).astype(dtype) * h
        return jnp.where(offset > 0, above, jnp.where(offset < 0, below, 0.0))

    gy, gz = gap(dy[None], y_in, hy), gap(dz[None], z_in, hz)
    lateral_sq = gy * gy + gz * gz
    reachable = lateral_sq < list_radius**2
    half_chord = jnp.sqrt(jnp.maximum(list_radius**2 - lateral_sq, 0.0))
    lo = jnp.floor((x[:, None] - half_chord) * (nx / lengths[0])).astype(jnp.int32)
    hi = jnp.floor((x[:, None] + half_chord) * (nx / lengths[0])).astype(jnp.int32)
    full = (hi - lo + 1) >= nx
    lo_c, hi_c = jnp.mod(lo, nx), jnp.mod(hi, nx)
    column = jnp.mod(cz[:, None] + dz, nz) * ny + jnp.mod(cy[:, None] + dy, ny)
    base = column * nx
    row_start = start[base]
    row_length = start[base + nx] - row_start
    s = start[base + lo_c] - row_start
    e = start[base + hi_c + 1] - row_start
    count = jnp.where(lo_c > hi_c, e - s + row_length, e - s)
    count = jnp.where(full, row_length, count)
    s = jnp.where(full, 0, s)
    count = jnp.where(reachable, count, 0)
    col_start = start[jnp.arange(num_cols + 1, dtype=jnp.int32) * nx]
    return order, column, row_start, row_length, s, count, col_start


def _build_tables(positions, box, *, grid, columns, widths, column_capacity, list_radius):
    """The list's index tables for ``positions`` (jit-compatible, static capacities)."""
    n = positions.shape[0]
    stride = column_capacity + max(widths)
    order, column, row_start, row_length, s, count, col_start = _cell_windows(
        positions, box, grid=grid, columns=columns, list_radius=list_radius
    )
    rank = jnp.zeros(n, jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
    width_arr = jnp.asarray(widths, jnp.int32)
    col_length = col_start[1:] - col_start[:-1]
    counts_needed = jnp.max(count, axis=0)
    column_needed = jnp.max(col_length)
    overflow = jnp.any(counts_needed > width_arr) | (column_needed > column_capacity)
    count = jnp.minimum(count, width_arr[None, :])
    window_start = column * stride + jnp.minimum(s, column_capacity - 1)

    slot = jnp.arange(stride, dtype=jnp.int32)
    wrapped = jnp.mod(slot[None, :], jnp.maximum(col_length, 1)[:, None])
    ext_sorted = jnp.clip(col_start[:-1, None] + wrapped, 0, n - 1)
    ext_ids = order[ext_sorted].reshape(-1)

    central = columns.index((0, 0))
    own_length = jnp.maximum(row_length[:, central], 1)
    self_slot = jnp.mod(rank - row_start[:, central] - s[:, central], own_length)
    return ext_ids, window_start, count, self_slot, overflow, counts_needed, column_needed


def _requirements(positions, box, grid, columns, list_radius):
    """Largest column length and per-column window counts for a configuration."""
    *_, count, col_start = _cell_windows(
        positions, box, grid=grid, columns=columns, list_radius=list_radius
    )
    return jnp.max(col_start[1:] - col_start[:-1]), jnp.max(count, axis=0)


_requirements_jit = jax.jit(_requirements, static_argnums=(2, 3, 4))


def neighbor_list(
    positions: Float[Array, "N 3"],
    box: AbstractBox,
    cutoff: float,
    *,
    skin: float = 0.3,
    capacity_multiplier: float = 1.25,
    mode: str = "auto",
    minimum_capacity: tuple[int, tuple[int, ...]] | None = None,
) -> NeighborList:
    """Build a neighbour list for ``positions``, sizing its static capacities.

    Call outside `jax.jit` (it reads the configuration to choose capacities); rebuild
    inside jit with `NeighborList.update` / `NeighborList.maybe_update`.

    Parameters
    ----------
    positions
        ``(N, 3)`` positions inside the box (sigma).
    box
        A `PeriodicBox` (cell lists) or `FreeSpace` (dense mode only).
    cutoff
        Largest interaction cut-off the list must serve (sigma), e.g. 2.5.
    skin
        Verlet skin (sigma): the list holds pairs within ``cutoff + skin`` and is rebuilt
        when an atom has moved more than ``skin / 2``. Default 0.3 (LAMMPS in.lj).
    capacity_multiplier
        Head room over the current configuration's needs (liquids fluctuate). Default 1.25.
    mode
        ``"cells"``, ``"dense"`` (all pairs, O(N^2)), or ``"auto"``: cells when the
        periodic box is at least 2.5 list radii wide in y and z and N > 256, else dense.
    minimum_capacity
        ``(column_capacity, window_widths)`` lower bounds (used by `NeighborList.grow`).

    Returns
    -------
    NeighborList

    Examples
    --------
    >>> import hybrax.md as md
    >>> positions, box = md.lattice("fcc", (6, 6, 6), density=0.8442)
    >>> nbrs = md.neighbor_list(positions, box, cutoff=2.5, skin=0.3)
    >>> nbrs.mode
    'cells'
    """
    _check_positions_shape(positions)
    positions = jnp.asarray(positions)
    n = positions.shape[0]
    if not (float(cutoff) > 0 and float(skin) >= 0):
        raise ValueError(f"need cutoff > 0 and skin >= 0, got cutoff={cutoff}, skin={skin}")
    cutoff, skin = float(cutoff), float(skin)
    radius = cutoff + skin
    if mode not in ("auto", "cells", "dense"):
        raise ValueError(f'mode must be "auto", "cells" or "dense", got {mode!r}')
    periodic = isinstance(box, PeriodicBox)
    if periodic:
        lengths = np.asarray(box.lengths, dtype=np.float64)
        if np.any(lengths < 2 * cutoff):
            raise ValueError(
                f"box sides {lengths} are shorter than twice the cutoff {cutoff}: the "
                "minimum-image convention would miss periodic images. Use a larger box "
                "(more cells) or a shorter cutoff"
            )
        _check_inside(positions, lengths)
        grid, columns, reach = _grid_for(lengths, radius)
        cells_ok = grid[1] >= 2 * reach[0] + 1 and grid[2] >= 2 * reach[1] + 1
    else:
        cells_ok = False
    if mode == "cells" and not cells_ok:
        raise ValueError(
            "cell lists need a periodic box at least 2.5 * (cutoff + skin) wide in y and z "
            f"(here {2.5 * radius:.3f}); use mode='dense' for small or free-space systems"
        )
    if mode == "auto":
        mode = "cells" if (cells_ok and n > 256) else "dense"
    zeros = jnp.zeros((), jnp.int32)
    if mode == "dense":
        return NeighborList(
            reference_positions=positions,
            ext_ids=jnp.arange(n, dtype=jnp.int32),
            window_start=jnp.zeros((n, 1), jnp.int32),
            window_count=jnp.full((n, 1), n, jnp.int32),
            self_slot=jnp.arange(n, dtype=jnp.int32),
            overflow=jnp.zeros((), bool),
            max_counts=jnp.full((1,), n, jnp.int32),
            max_column_length=zeros + n,
            num_builds=zeros + 1,
            cutoff=cutoff,
            skin=skin,
            mode="dense",
            grid=(1, 1, 1),
            columns=((0, 0),),
            widths=(n,),
            column_capacity=n,
            block_size=_block_size(n, n),
        )
    col_need, window_need = _requirements_jit(positions, box, grid, columns, radius)
    col_need = int(col_need)
    window_need = np.asarray(window_need)
    column_capacity = min(n, math.ceil(col_need * capacity_multiplier) + 2)
    widths = tuple(min(n, math.ceil(int(w) * capacity_multiplier) + 2) for w in window_need)
    if minimum_capacity is not None:
        min_col, min_widths = minimum_capacity
        column_capacity = min(n, max(column_capacity, int(min_col)))
        widths = tuple(min(n, max(w, int(m))) for w, m in zip(widths, min_widths, strict=True))
    nl = NeighborList(
        reference_positions=positions,
        ext_ids=jnp.zeros(1, jnp.int32),
        window_start=jnp.zeros((n, len(columns)), jnp.int32),
        window_count=jnp.zeros((n, len(columns)), jnp.int32),
        self_slot=jnp.zeros(n, jnp.int32),
        overflow=jnp.zeros((), bool),
        max_counts=jnp.zeros(len(columns), jnp.int32),
        max_column_length=zeros,
        num_builds=zeros,
        cutoff=cutoff,
        skin=skin,
        mode="cells",
        grid=grid,
        columns=columns,
        widths=widths,
        column_capacity=column_capacity,
        block_size=_block_size(sum(widths), n),
    )
    return _update_jit(nl, positions, box)


@eqx.filter_jit
def _update_jit(nl: NeighborList, positions, box) -> NeighborList:
    return nl.update(positions, box)


def _block_size(slots: int, n: int) -> int:
    block = max(8, _BLOCK_ELEMENTS // max(slots, 1))
    block = 1 << (block.bit_length() - 1)  # power of two
    return max(1, min(block, n))


def _check_inside(positions, lengths) -> None:
    try:
        p = np.asarray(positions)
        lengths = np.asarray(lengths)
    except Exception:  # traced (inside jit): checked by the caller's own means
        return
    if not np.all(np.isfinite(p)):
        raise ValueError("positions contain NaN or inf")
    outside = np.any((p < 0) | (p >= lengths), axis=1)
    if np.any(outside):
        i = int(np.argmax(outside))
        raise ValueError(
            f"{int(outside.sum())} positions lie outside the periodic box [0, L) with "
            f"L = {lengths.tolist()} (first: atom {i} at {p[i].tolist()}); wrap them with "
            "box.wrap(positions)"
        )
