"""Verlet neighbour lists built from spatially sorted cells, in O(N) inside jit.

Layout (why it is fast on CPU)
------------------------------
Atoms are sorted by a cell index whose fastest axis is ``x``, so every column of cells
along ``x`` (fixed ``y``, ``z`` cell) is one contiguous run of the sorted array. For atom
``i`` and each column within reach in ``y`` and ``z``, the atoms that can lie within
``cutoff + skin`` of ``i`` form one contiguous (periodically wrapping) window of that column:
the cells whose ``x`` range meets ``[x_i - w, x_i + w]``, with ``w`` the half chord of the
list sphere at the column's closest lateral distance. Only a half shell of columns is kept
(the atom's own column, read forward from the atom, and the columns "above" it), so every
pair is listed once. The list stores, per atom and column, the window's start and length.
Building it is a sort of ``N`` cell indices and a few ``(N, columns)`` table look-ups: no
per-candidate distance pass, no compaction of a padded table, no element scatter.

The force pass reads each window with one slice gather from a column-major copy of the
positions (each column followed by a copy of its first atoms so wrapping windows stay
contiguous), applies the minimum image, masks by the cut-off, adds the pair terms to atom
``i`` and the reactions to the window with one windowed scatter-add (the transpose of the
gather; Newton's third law). It runs over blocks of atoms so intermediates stay in cache.

Capacities (atoms per column, window widths) and the cell grid are static. When a rebuilt
list would need more room, or the box has changed so much (an equation-of-state scan, a
compressed system) that the static grid and column set no longer reach ``cutoff + skin``,
the list sets ``overflow`` and every pair sum computed with it is NaN; `hybrax.md.simulate`
rebuilds the list (for the new box) and re-runs, and the integrators raise by default.
Positions need not be wrapped into the box: the list sorts atoms by their wrapped
coordinates and measures every pair by the minimum image.
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

from hybrax.core import ConfigurationError, check_float, concrete_or_none

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
    than ``skin / 2`` since the build. Pair sums (`pair_sums`) mask by the cut-off, so
    energies equal the all-pairs (dense) energies.

    Attributes
    ----------
    cutoff, skin
        Interaction cut-off and Verlet skin (sigma); the list radius is their sum. Static.
    mode
        ``"cells"`` (sorted cell windows, O(N)) or ``"dense"`` (all pairs, O(N^2), for small
        systems and free space). Static.
    overflow
        True once a rebuild needed more room than the static capacities allow, or was asked
        for a box that the static cell grid no longer covers (see `covers`); also for a
        periodic box shorter than twice the cutoff. Sticky. The list is then incomplete,
        and every pair sum computed with it is NaN (never silently wrong); rebuild with
        `grow` (done for you by `hybrax.md.simulate`; the integrators raise a
        `hybrax.NeighborListError` by default).
    max_counts, max_column_length
        Largest window count per column and largest column occupancy seen by any build
        (sticky); `grow` sizes the new capacities from them.
    num_builds
        How many times the list was built (diagnostic).
    """

    reference_positions: Float[Array, "N 3"]
    ext_ids: Int[Array, " E"]
    atom_slots: Int[Array, "N 2"]
    window_start: Int[Array, "N Q"]
    window_count: Int[Array, "N Q"]
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
    def covers(self, box: AbstractBox) -> Bool[Array, ""]:
        """Whether this list's static cell grid still reaches ``cutoff + skin`` in ``box``
        (jit- and vmap-compatible; True for dense lists in a box at least twice the cutoff
        wide, and in free space).

        A cell list fixes its grid (cells per side) and the set of neighbouring cell
        columns it reads when it is built. If the box then shrinks, the cells shrink with
        it and pairs within ``cutoff + skin`` can lie in columns the list never reads;
        `update` flags such a box as an overflow rather than miss them.
        """
        if not isinstance(box, PeriodicBox):
            if self.mode == "cells":
                raise ConfigurationError(
                    "a cell neighbour list needs the PeriodicBox it was built for, got "
                    f"{type(box).__name__}"
                )
            return jnp.ones((), bool)
        return ~_coverage_lost(
            box.lengths,
            mode=self.mode,
            grid=self.grid,
            columns=self.columns,
            cutoff=self.cutoff,
            list_radius=self.list_radius,
        )

    def update(self, positions: Float[Array, "N 3"], box: AbstractBox) -> NeighborList:
        """Rebuild for ``positions`` with the same capacities (jit-compatible).

        Sets ``overflow`` if the capacities are too small for this configuration, or if the
        static cell grid does not cover ``cutoff + skin`` in ``box`` (`covers`). Positions
        outside the periodic box (unwrapped trajectories) are fine: cells are assigned from
        the wrapped coordinates and pairs are measured by the minimum image.
        """
        _check_positions_shape(positions, self.num_atoms)
        lost = ~self.covers(box)
        if self.mode == "dense":
            return eqx.tree_at(
                lambda n: (n.reference_positions, n.overflow, n.num_builds),
                self,
                (positions, self.overflow | lost, self.num_builds + 1),
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
        ext_ids, atom_slots, start, count, overflow, counts_needed, column_needed = tables
        return eqx.tree_at(
            lambda n: (
                n.reference_positions,
                n.ext_ids,
                n.atom_slots,
                n.window_start,
                n.window_count,
                n.overflow,
                n.max_counts,
                n.max_column_length,
                n.num_builds,
            ),
            self,
            (
                positions,
                ext_ids,
                atom_slots,
                start,
                count,
                self.overflow | overflow | lost,
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
        self, positions: Float[Array, "N 3"], box: AbstractBox, factor: float = 1.15
    ) -> NeighborList:
        """A new list for ``positions`` in ``box`` whose capacities hold everything any
        earlier build needed (``max_counts``, ``max_column_length``) times ``factor``, and
        this configuration's needs (host side, not jit-compatible).

        If ``box`` needs another cell grid than this list's (it shrank or grew since the
        build), the new list gets the grid for ``box`` and capacities sized from
        ``positions`` alone.
        """
        factor = _multiplier(factor, "factor")
        counts = np.asarray(self.max_counts)
        column = int(self.max_column_length)
        minimum = (
            max(self.column_capacity, math.ceil(column * factor) + 2),
            tuple(
                max(w, math.ceil(int(c) * factor) + 2)
                for w, c in zip(self.widths, counts, strict=True)
            ),
        )
        mode = self.mode
        if mode == "cells":
            lengths = concrete_or_none(getattr(box, "lengths", None))
            same_grid = False
            if lengths is not None and lengths.shape == (3,) and np.all(np.isfinite(lengths)):
                grid, columns, _ = _grid_for(np.asarray(lengths, np.float64), self.list_radius)
                same_grid = grid == self.grid and columns == self.columns
            if not same_grid:  # another box: new grid, sized from these positions
                minimum, mode = None, "auto"
        return neighbor_list(
            positions,
            box,
            self.cutoff,
            skin=self.skin,
            mode=mode,
            capacity_multiplier=factor,
            minimum_capacity=minimum,
        )

    # ------------------------------------------------------------------ pair sums
    def pair_sums(
        self,
        positions: Float[Array, "N 3"],
        box: AbstractBox,
        pair_fn: Callable,
        *,
        cutoff: float | None = None,
        species: Int[Array, " N"] | None = None,
        per_atom_scalars: bool = True,
    ) -> tuple[tuple[Array, ...], tuple[Array, ...]]:
        """Per-atom sums over all neighbours ``j`` within ``cutoff``.

        ``pair_fn(r2, species_i, species_j)`` gets squared distances ``r2`` (pairs beyond
        the cut-off get ``r2 = cutoff**2`` so it stays finite; their values are discarded)
        and the species of both atoms (``None`` without species), and returns two tuples:
        ``scalars`` (symmetric in ``i, j``) and ``weights``. The result is
        ``(sum_j s_ij for s in scalars)`` as ``(N,)`` arrays and
        ``(sum_j w_ij (r_i - r_j) for w in weights)`` as ``(N, 3)`` arrays (minimum image).
        With ``weights = (-2 dphi/dr2,)`` the vector sum is the pair force.

        With ``per_atom_scalars=False`` the scalars come back as totals over pairs
        (``sum_{i<j}``, each pair once) instead of per-atom sums, which saves work when only
        the total energy is wanted.

        Each pair is evaluated once (Newton's third law: the partner's share is added
        through a windowed scatter), so this costs about half of a full-list pass.
        Differentiable with respect to positions, box and whatever ``pair_fn`` closes over.
        """
        mode = "per_atom" if per_atom_scalars else "vectors"
        return self._run(positions, box, pair_fn, cutoff, species, mode=mode)

    def pair_total(
        self,
        positions: Float[Array, "N 3"],
        box: AbstractBox,
        pair_fn: Callable,
        *,
        cutoff: float | None = None,
        species: Int[Array, " N"] | None = None,
    ) -> tuple[Array, ...]:
        """``sum over pairs i < j`` of each scalar of ``pair_fn`` (see `pair_sums`)."""
        return self._run(positions, box, pair_fn, cutoff, species, mode="totals")

    def _run(self, positions, box, pair_fn, cutoff, species, *, mode):
        n = self.num_atoms
        _check_positions_shape(positions, n)
        cutoff = self.cutoff if cutoff is None else float(cutoff)
        if cutoff > self.cutoff + 1e-12:
            raise ConfigurationError(
                f"a pair term with cutoff {cutoff} needs a neighbour list built for at "
                f"least that cutoff; this list has cutoff {self.cutoff}. Build it with "
                f"neighbor_list(positions, box, cutoff={cutoff}, ...)"
            )
        if species is not None and jnp.shape(species) != (n,):
            raise ConfigurationError(
                f"species must have shape ({n},) (one integer per atom), got {jnp.shape(species)}"
            )
        if self.mode == "cells" and not isinstance(box, PeriodicBox):
            raise ConfigurationError(
                "a cell neighbour list needs the PeriodicBox it was built for, got "
                f"{type(box).__name__}"
            )
        if self.mode == "dense":
            out = _dense_pass(self, positions, box, pair_fn, cutoff, species, mode)
        else:
            out = _cells_pass(self, positions, box, pair_fn, cutoff, species, mode)
        # an overflowed list (or one whose grid no longer covers the box) misses pairs:
        # make every result NaN rather than silently wrong
        return jax.tree.map(lambda x: jnp.where(self.overflow, jnp.nan, x), out)


def _blocks(n: int, block: int):
    block = min(block, n)
    num_blocks = -(-n // block)
    return block, num_blocks, num_blocks * block - n


def _pad(x, pad: int, fill=0):
    if pad == 0:
        return x
    return jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1), constant_values=fill)


def _window_gather(source: Array, starts: Array, width: int) -> Array:
    """``source[starts[b] : starts[b] + width]`` for every ``b``: shape ``(B, width)``."""
    return jax.vmap(lambda s: lax.dynamic_slice(source, (s,), (width,)))(starts)


def _window_scatter_add(target: Array, starts: Array, values: Array) -> Array:
    """``target[starts[b] : starts[b] + W] += values[b]`` along the first axis of
    ``target`` (the transpose of the window gather); trailing axes are carried whole."""
    trailing = tuple(range(2, values.ndim))
    dnums = lax.ScatterDimensionNumbers(
        update_window_dims=(1, *trailing),
        inserted_window_dims=(),
        scatter_dims_to_operand_dims=(0,),
    )
    return lax.scatter_add(target, starts[:, None], values, dnums)


def _split(values, name: str):
    if not (isinstance(values, tuple) and len(values) == 2):
        raise TypeError(f"{name} must return (scalars, weights), two tuples of arrays")
    scalars, weights = values
    return tuple(scalars), tuple(weights)


def _cells_pass(nl, positions, box, pair_fn, cutoff, species, mode):
    """Half-shell pass over the column windows (each pair once)."""
    n = nl.num_atoms
    dtype = positions.dtype
    lengths = box.lengths.astype(dtype)
    widths = nl.widths
    num_ext = nl.ext_ids.shape[0]
    ext_coords = [positions[:, k][nl.ext_ids] for k in range(3)]
    inverse = 1.0 / lengths
    ext_species = None if species is None else species[nl.ext_ids]
    block, num_blocks, pad = _blocks(n, nl.block_size)
    slot_k = jnp.asarray(np.concatenate([np.arange(w) for w in widths]), jnp.int32)
    cutoff_sq = cutoff * cutoff

    def gather_all(source, starts):
        parts = [_window_gather(source, starts[:, q], w) for q, w in enumerate(widths)]
        return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=1)

    def per_slot(x, start, count, si):
        count_slots = jnp.concatenate(
            [jnp.broadcast_to(count[:, q : q + 1], (x.shape[0], w)) for q, w in enumerate(widths)],
            axis=1,
        )
        valid = slot_k[None, :] < count_slots
        d = []
        for k in range(3):
            dk = x[:, k : k + 1] - gather_all(ext_coords[k], start)
            d.append(dk - lengths[k] * jnp.rint(dk * inverse[k]))  # minimum image
        r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
        mask = valid & (r2 < cutoff_sq)
        r2_safe = jnp.where(mask, r2, cutoff_sq)
        sj = None if ext_species is None else gather_all(ext_species, start)
        scalars, weights = _split(
            pair_fn(r2_safe, None if si is None else si[:, None], sj), "pair_fn"
        )
        scalars = [jnp.where(mask, s, 0) for s in scalars]
        weights = [jnp.where(mask, w, 0) for w in weights]
        return d, scalars, weights

    xs = (
        _pad(positions, pad).reshape(num_blocks, block, 3),
        _pad(nl.window_start, pad).reshape(num_blocks, block, -1),
        _pad(nl.window_count, pad).reshape(num_blocks, block, -1),
        None if species is None else _pad(species, pad).reshape(num_blocks, block),
    )

    if mode == "totals":

        def block_totals(args):
            _, scalars, _ = per_slot(*args)
            return tuple(jnp.sum(s) for s in scalars)

        totals = lax.map(block_totals, xs)
        return tuple(jnp.sum(t) for t in totals)

    offsets = np.cumsum((0, *widths))

    def scatter_windows(target, starts, values):
        for q in range(len(widths)):
            piece = values[:, offsets[q] : offsets[q + 1]]
            target = _window_scatter_add(target, starts[:, q], piece)
        return target

    per_atom = mode == "per_atom"

    def block_sums(carry, args):
        d, scalars, weights = per_slot(*args)
        start = args[1]
        react_s, react_v = carry
        if per_atom:
            own_s = tuple(jnp.sum(s, axis=1) for s in scalars)
            stacked = jnp.stack(scalars, axis=-1)
            react_s = scatter_windows(react_s, start, stacked)
        else:
            own_s = tuple(jnp.sum(s) for s in scalars)
        own_v = tuple(jnp.stack([jnp.sum(w * dk, axis=1) for dk in d], axis=-1) for w in weights)
        if weights:
            pushes = jnp.stack([-w * dk for w in weights for dk in d], axis=-1)
            react_v = scatter_windows(react_v, start, pushes)
        return (react_s, react_v), (own_s, own_v)

    probe = jax.eval_shape(
        lambda a: pair_fn(*a),
        (
            jnp.zeros((1, 1), dtype),
            None if species is None else jnp.zeros((1, 1), jnp.int32),
            None if species is None else jnp.zeros((1, 1), jnp.int32),
        ),
    )
    num_s, num_v = len(probe[0]), len(probe[1])
    carry0 = (jnp.zeros((num_ext, num_s), dtype), jnp.zeros((num_ext, 3 * num_v), dtype))
    (react_s, react_v), (own_s, own_v) = lax.scan(block_sums, carry0, xs)

    def fold(ext_values):  # ext slots back to atoms: primary slot plus wrap copy
        padded = jnp.concatenate([ext_values, jnp.zeros_like(ext_values[:1])])
        return padded[nl.atom_slots[:, 0]] + padded[nl.atom_slots[:, 1]]

    if per_atom:
        folded = fold(react_s)
        scalars = tuple(o.reshape(-1)[:n] + folded[:, k] for k, o in enumerate(own_s))
    else:
        scalars = tuple(jnp.sum(o) for o in own_s)
    folded = fold(react_v)
    vectors = tuple(
        o.reshape(-1, 3)[:n] + folded[:, 3 * k : 3 * k + 3] for k, o in enumerate(own_v)
    )
    return scalars, vectors


def _dense_pass(nl, positions, box, pair_fn, cutoff, species, mode):
    """All pairs, each seen from both sides (small systems, free space)."""
    n = nl.num_atoms
    dtype = positions.dtype
    periodic = isinstance(box, PeriodicBox)
    lengths = box.lengths.astype(dtype) if periodic else None
    block, num_blocks, pad = _blocks(n, nl.block_size)
    cutoff_sq = cutoff * cutoff
    others = jnp.arange(n, dtype=jnp.int32)

    def per_block(args):
        x, rows, si = args
        d = []
        for k in range(3):
            dk = x[:, k : k + 1] - positions[None, :, k]
            if periodic:
                dk = dk - lengths[k] * jnp.rint(dk / lengths[k])
            d.append(dk)
        r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
        mask = (rows[:, None] != others[None, :]) & (rows[:, None] < n) & (r2 < cutoff_sq)
        r2_safe = jnp.where(mask, r2, cutoff_sq)
        sj = None if species is None else jnp.broadcast_to(species[None, :], r2.shape)
        scalars, weights = _split(
            pair_fn(r2_safe, None if si is None else si[:, None], sj), "pair_fn"
        )
        s_out = tuple(jnp.sum(jnp.where(mask, s, 0), axis=1) for s in scalars)
        v_out = tuple(
            jnp.stack([jnp.sum(jnp.where(mask, w, 0) * dk, axis=1) for dk in d], axis=-1)
            for w in weights
        )
        return s_out, v_out

    xs = (
        _pad(positions, pad).reshape(num_blocks, block, 3),
        jnp.arange(num_blocks * block, dtype=jnp.int32).reshape(num_blocks, block),
        None if species is None else _pad(species, pad).reshape(num_blocks, block),
    )
    s_out, v_out = lax.map(per_block, xs)
    scalars = tuple(s.reshape(-1)[:n] for s in s_out)
    vectors = tuple(v.reshape(-1, 3)[:n] for v in v_out)
    if mode == "totals":
        return tuple(0.5 * jnp.sum(s) for s in scalars)
    if mode == "vectors":
        return tuple(0.5 * jnp.sum(s) for s in scalars), vectors
    return scalars, vectors


def _check_positions_shape(positions, n: int | None = None) -> None:
    shape = jnp.shape(positions)
    if len(shape) != 2 or shape[1] != 3:
        hint = "; for a batch of systems use jax.vmap" if len(shape) == 3 else ""
        raise ConfigurationError(f"positions must have shape (N, 3), got {shape}{hint}")
    if n is not None and shape[0] != n:
        raise ConfigurationError(
            f"positions have {shape[0]} atoms but the neighbour list was built for {n}; "
            "build a new list with hybrax.md.neighbor_list"
        )
    if not jnp.issubdtype(jnp.result_type(positions), jnp.floating):
        raise ConfigurationError(
            f"positions must be floating point (float32 or float64), got "
            f"{jnp.result_type(positions)}"
        )


# ---------------------------------------------------------------------- geometry
def _grid_for(lengths: np.ndarray, list_radius: float):
    """Cell grid (nx, ny, nz), the half shell of (dy, dz) column offsets within reach
    (the own column first), and whether cell lists work in this box."""
    lx, ly, lz = (float(v) for v in lengths)
    nx = max(1, int(lx // (list_radius / 6.0)))
    ny = max(1, int(ly // (list_radius / 2.0)))
    nz = max(1, int(lz // (list_radius / 2.0)))
    hx, hy, hz = lx / nx, ly / ny, lz / nz
    reach_y, reach_z = math.ceil(list_radius / hy), math.ceil(list_radius / hz)
    upper = tuple(
        (dy, dz)
        for dz in range(0, reach_z + 1)
        for dy in range(-reach_y, reach_y + 1)
        if (dz > 0 or dy > 0)
        and (max(abs(dy) - 1, 0) * hy) ** 2 + (max(abs(dz) - 1, 0) * hz) ** 2 < list_radius**2
    )
    ok = ny >= 2 * reach_y + 1 and nz >= 2 * reach_z + 1 and lx > 2 * (list_radius + hx)
    return (nx, ny, nz), ((0, 0), *upper), ok


def _uncovered_offsets(columns) -> tuple[np.ndarray, np.ndarray]:
    """The half-shell column offsets next to the static set that the set leaves out, as
    ``(max(|dy| - 1, 0), max(|dz| - 1, 0))`` in cells.

    The lateral distance from an atom to a column at offset ``(dy, dz)`` is at least
    ``sqrt((max(|dy| - 1, 0) h_y)^2 + (max(|dz| - 1, 0) h_z)^2)`` and grows with ``|dy|`` and
    ``|dz|``; every left-out offset farther away is at least as far as one of these (clip
    its ``dy`` and ``dz`` to one past the set's reach). So the set covers the list radius
    in a box exactly when all of these are at least that far.
    """
    present = set(columns)
    reach_y = max(abs(dy) for dy, _ in columns)
    reach_z = max(dz for _, dz in columns)
    missing = [
        (max(abs(dy) - 1, 0), max(dz - 1, 0))
        for dz in range(0, reach_z + 2)
        for dy in range(-reach_y - 1, reach_y + 2)
        if (dz > 0 or dy > 0) and (dy, dz) not in present
    ]
    return np.asarray([m[0] for m in missing], float), np.asarray([m[1] for m in missing], float)


def _coverage_lost(lengths, *, mode, grid, columns, cutoff, list_radius) -> Array:
    """True when a list with this static ``grid`` and ``columns`` cannot give all pairs in
    a periodic box of side ``lengths`` (traced or concrete): a side shorter than twice the
    cutoff (the minimum image would miss pairs), or, for cell lists, a left-out column
    within the list radius or an x ring too short for the forward windows."""
    lengths = jnp.asarray(lengths)
    lost = jnp.any(lengths < 2.0 * cutoff)
    if mode != "cells":
        return lost
    nx, ny, nz = grid
    hx, hy, hz = lengths[0] / nx, lengths[1] / ny, lengths[2] / nz
    lost = lost | (lengths[0] <= 2.0 * (list_radius + hx))
    gaps_y, gaps_z = _uncovered_offsets(columns)
    if gaps_y.size:
        gaps_y, gaps_z = jnp.asarray(gaps_y, hy.dtype), jnp.asarray(gaps_z, hz.dtype)
        lateral_sq = (gaps_y * hy) ** 2 + (gaps_z * hz) ** 2
        lost = lost | jnp.any(lateral_sq < list_radius**2)
    return lost


def _cell_windows(positions, box, *, grid, columns, list_radius):
    """Sort atoms into cells and find every atom's window in each half-shell column."""
    n = positions.shape[0]
    nx, ny, nz = grid
    num_cols = ny * nz
    dtype = positions.dtype
    lengths = box.lengths.astype(dtype)
    wrapped = jnp.mod(positions, lengths)  # unwrapped positions sort into the right cells
    x, y, z = wrapped[:, 0], wrapped[:, 1], wrapped[:, 2]
    hy, hz = lengths[1] / ny, lengths[2] / nz
    cx = jnp.clip(jnp.floor(x * (nx / lengths[0])).astype(jnp.int32), 0, nx - 1)
    cy = jnp.clip(jnp.floor(y / hy).astype(jnp.int32), 0, ny - 1)
    cz = jnp.clip(jnp.floor(z / hz).astype(jnp.int32), 0, nz - 1)
    cell = (cz * ny + cy) * nx + cx
    order = jnp.argsort(cell).astype(jnp.int32)
    start = jnp.searchsorted(cell[order], jnp.arange(num_cols * nx + 1, dtype=jnp.int32)).astype(
        jnp.int32
    )
    rank = jnp.zeros(n, jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))

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
    lo_c, hi_c = jnp.mod(lo, nx), jnp.mod(hi, nx)
    unwrapped_y, unwrapped_z = cy[:, None] + dy, cz[:, None] + dz
    column = jnp.mod(unwrapped_z, nz) * ny + jnp.mod(unwrapped_y, ny)
    base = column * nx
    row_start = start[base]
    row_length = start[base + nx] - row_start
    e = start[base + hi_c + 1] - row_start
    # other columns: the cells lo..hi; own column (index 0): forward from the atom itself
    s = start[base + lo_c] - row_start
    s = s.at[:, 0].set(rank - row_start[:, 0] + 1)
    wraps = (lo_c > hi_c).at[:, 0].set(hi[:, 0] >= nx)
    count = jnp.where(wraps, e - s + row_length, e - s)
    count = jnp.where(reachable, count, 0)
    col_start = start[jnp.arange(num_cols + 1, dtype=jnp.int32) * nx]
    return order, rank, column, s, count, col_start


def _build_tables(positions, box, *, grid, columns, widths, column_capacity, list_radius):
    """The list's index tables for ``positions`` (jit-compatible, static capacities)."""
    n = positions.shape[0]
    stride = column_capacity + max(widths)
    num_cols = grid[1] * grid[2]
    num_ext = num_cols * stride
    order, rank, column, s, count, col_start = _cell_windows(
        positions, box, grid=grid, columns=columns, list_radius=list_radius
    )
    width_arr = jnp.asarray(widths, jnp.int32)
    col_length = col_start[1:] - col_start[:-1]
    counts_needed = jnp.max(count, axis=0)
    column_needed = jnp.max(col_length)
    overflow = jnp.any(counts_needed > width_arr) | (column_needed > column_capacity)
    count = jnp.minimum(count, width_arr[None, :])
    window_start = column * stride + jnp.clip(s, 0, column_capacity)

    slot = jnp.arange(stride, dtype=jnp.int32)
    length = jnp.maximum(col_length, 1)[:, None]
    ext_sorted = jnp.clip(col_start[:-1, None] + jnp.mod(slot[None, :], length), 0, n - 1)
    ext_ids = order[ext_sorted].reshape(-1)

    own = column[:, 0]
    offset = rank - col_start[own]
    primary = jnp.where(offset < stride, own * stride + offset, num_ext)
    copy_offset = offset + col_length[own]
    copy = jnp.where(copy_offset < stride, own * stride + copy_offset, num_ext)
    atom_slots = jnp.stack([primary, copy], axis=-1)
    return ext_ids, atom_slots, window_start, count, overflow, counts_needed, column_needed


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
        Head room over the current configuration's needs (liquids fluctuate): a finite
        number >= 1. Default 1.25.
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
    if n < 1:
        raise ConfigurationError("neighbor_list: positions hold no atoms (shape (0, 3))")
    if not isinstance(box, AbstractBox):
        raise ConfigurationError(
            f"neighbor_list: box must be a hybrax.md.PeriodicBox or FreeSpace, got {box!r}"
        )
    cutoff = _static_length(cutoff, "cutoff", positive=True, example="cutoff=2.5")
    skin = _static_length(skin, "skin", positive=False, example="skin=0.3")
    capacity_multiplier = _multiplier(capacity_multiplier, "capacity_multiplier")
    radius = cutoff + skin
    if mode not in ("auto", "cells", "dense"):
        raise ConfigurationError(f'mode must be "auto", "cells" or "dense", got {mode!r}')
    periodic = isinstance(box, PeriodicBox)
    if periodic:
        lengths = concrete_or_none(box.lengths)
        if lengths is None:
            raise ConfigurationError(
                "neighbor_list sizes its static cell grid from the box, so it must be called "
                "outside jax.jit with a concrete box; inside jit use NeighborList.update"
            )
        lengths = np.asarray(lengths, dtype=np.float64)
        if np.any(lengths < 2 * cutoff):
            raise ConfigurationError(
                f"box sides {lengths} are shorter than twice the cutoff {cutoff}: the "
                "minimum-image convention would miss periodic images. Use a larger box "
                "(more cells) or a shorter cutoff"
            )
        _check_inside(positions, lengths)
        grid, columns, cells_ok = _grid_for(lengths, radius)
    else:
        cells_ok = False
    if mode == "cells" and not cells_ok:
        raise ConfigurationError(
            "cell lists need a periodic box at least 2.5 * (cutoff + skin) wide in y and z and "
            f"a bit more than 2 * (cutoff + skin) in x (here {2.5 * radius:.3f}); use "
            "mode='dense' for small or free-space systems"
        )
    if mode == "auto":
        mode = "cells" if (cells_ok and n > 256) else "dense"
    zeros = jnp.zeros((), jnp.int32)
    if mode == "dense":
        return NeighborList(
            reference_positions=positions,
            ext_ids=jnp.arange(n, dtype=jnp.int32),
            atom_slots=jnp.stack([jnp.arange(n, dtype=jnp.int32), jnp.full(n, n, jnp.int32)], 1),
            window_start=jnp.zeros((n, 1), jnp.int32),
            window_count=jnp.full((n, 1), n, jnp.int32),
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
        min_col, min_widths = _minimum_capacity(minimum_capacity, len(columns))
        column_capacity = min(n, max(column_capacity, int(min_col)))
        widths = tuple(min(n, max(w, int(m))) for w, m in zip(widths, min_widths, strict=True))
    nl = NeighborList(
        reference_positions=positions,
        ext_ids=jnp.zeros(1, jnp.int32),
        atom_slots=jnp.zeros((n, 2), jnp.int32),
        window_start=jnp.zeros((n, len(columns)), jnp.int32),
        window_count=jnp.zeros((n, len(columns)), jnp.int32),
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


def _static_length(value, name: str, *, positive: bool, example: str) -> float:
    """A static (Python float) number such as the cutoff or skin: `hybrax.core.check_float`
    with ``positive``, else non-negative."""
    return check_float(value, name, positive=positive, nonnegative=not positive, example=example)


def _multiplier(value, name: str) -> float:
    """A head-room factor: a finite number >= 1."""
    checked = _static_length(value, name, positive=True, example=f"{name}=1.25")
    if not checked >= 1.0:
        raise ConfigurationError(
            f"{name} must be at least 1 (it is the head room over the current configuration's "
            f"needs; below 1 the list would overflow at once), got {checked!r}; pass e.g. "
            f"{name}=1.25"
        )
    return checked


def _minimum_capacity(value, num_columns: int) -> tuple[int, tuple[int, ...]]:
    try:
        column, widths = value
        column, widths = int(column), tuple(int(w) for w in widths)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(
            "minimum_capacity must be (column_capacity, window_widths): an int and a tuple "
            f"of ints, got {value!r}"
        ) from error
    if len(widths) != num_columns or column < 0 or min(widths) < 0:
        raise ConfigurationError(
            f"minimum_capacity window widths must be {num_columns} non-negative ints (one per "
            f"column of this grid), got {value!r}"
        )
    return column, widths


def _check_inside(positions, lengths) -> None:
    p, lengths = concrete_or_none(positions), concrete_or_none(lengths)
    if p is None or lengths is None:  # traced (inside jit): the list wraps positions itself
        return
    if not np.all(np.isfinite(p)):
        bad = int(np.argmax(~np.all(np.isfinite(p), axis=-1)))
        raise ConfigurationError(f"positions contain NaN or inf (first: atom {bad})")
    outside = np.any((p < 0) | (p >= lengths), axis=1)
    if np.any(outside):
        i = int(np.argmax(outside))
        raise ConfigurationError(
            f"{int(outside.sum())} positions lie outside the periodic box [0, L) with "
            f"L = {lengths.tolist()} (first: atom {i} at {p[i].tolist()}); wrap them with "
            "box.wrap(positions)"
        )
