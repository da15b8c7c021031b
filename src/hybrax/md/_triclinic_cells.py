"""The cell list in a `TriclinicBox`: atoms binned in fractional coordinates, a half Verlet
table gathered from the 125 surrounding cells, and its pair pass.

Cells are the parallelepipeds of a ``(n_a, n_b, n_c)`` grid of the cell in fractional
coordinates, with ``n_k = floor(2 w_k / (cutoff + skin))`` for the perpendicular widths
``w_k``, so every cell is at least half a list radius wide across each pair of faces: an atom
within the list radius of atom ``i`` differs from it by less than two cells in every
fractional coordinate, so it lies in one of the 5^3 = 125 cells around ``i``'s (distinct when
every ``n_k >= 5``, i.e. the box is 2.5 list radii wide; half-radius cells hold 8 times fewer
atoms, so the 125 cells give 0.58 times the candidates of 27 full-radius cells). The table
keeps, for every atom ``i``, the atoms ``j > i`` within the list radius (each pair once). The
orthorhombic `PeriodicBox` keeps its own, tuned, column-window
layout (`_cell_geometry`); this module is used only for triclinic boxes.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._neighbors import Sums, _split

_BLOCK_CANDIDATES = 1 << 18  # candidate pairs per block of the table build
CELLS_PER_RADIUS = 2  # cells per list radius across each pair of faces; also their reach
_OFFSETS = np.asarray(
    list(itertools.product(range(-CELLS_PER_RADIUS, CELLS_PER_RADIUS + 1), repeat=3)), np.int32
)


def minimum_image(box, xi, xj):
    """``r_i - r_j`` by the minimum image in ``box``'s cell, as three component arrays
    (elementwise products and sums: XLA fuses them, where a 3x3 matmul over many pairs
    runs as a slow small-contraction dot on CPU)."""
    dtype = xi[0].dtype
    cell, reciprocal = box.cell.astype(dtype), box.reciprocal.astype(dtype)
    d = [xi[k] - xj[k] for k in range(3)]
    f = [
        d[0] * reciprocal[0, k] + d[1] * reciprocal[1, k] + d[2] * reciprocal[2, k]
        for k in range(3)
    ]
    f = [fk - jnp.rint(fk) for fk in f]
    return [f[0] * cell[0, k] + f[1] * cell[1, k] + f[2] * cell[2, k] for k in range(3)]


def triclinic_grid(widths: np.ndarray, list_radius: float) -> tuple[tuple[int, int, int], bool]:
    """Cells per lattice direction and whether a cell list works (5 or more cells each)."""
    grid = tuple(max(1, int(CELLS_PER_RADIUS * float(w) // list_radius)) for w in widths)
    return grid, min(grid) >= 2 * CELLS_PER_RADIUS + 1


def triclinic_coverage_lost(box, *, grid, cutoff, list_radius):
    """True when the static ``grid`` no longer gives every pair within the list radius in
    ``box`` (traced or concrete): a cell thinner than the list radius across some pair of
    faces, or a width below twice the cutoff."""
    widths = box.perpendicular_widths
    lost = jnp.any(widths < 2.0 * cutoff)
    thinnest = widths / jnp.asarray(grid, widths.dtype)
    return lost | jnp.any(CELLS_PER_RADIUS * thinnest < list_radius)


def _cells(positions, box, grid):
    s = box.fractional(positions)
    s = s - jnp.floor(s)
    g = jnp.asarray(grid, jnp.int32)
    index = jnp.clip(jnp.floor(s * g.astype(s.dtype)).astype(jnp.int32), 0, g - 1)
    flat = (index[:, 0] * grid[1] + index[:, 1]) * grid[2] + index[:, 2]
    order = jnp.argsort(flat).astype(jnp.int32)
    num_cells = grid[0] * grid[1] * grid[2]
    start = jnp.searchsorted(flat[order], jnp.arange(num_cells + 1, dtype=jnp.int32)).astype(
        jnp.int32
    )
    return index, order, start


def triclinic_tables(positions, box, *, grid, cell_capacity, width, list_radius):
    """Half Verlet table ``(N, width)`` (padded with 0), its row counts, the overflow flag
    and the needs (largest row count, largest cell occupancy). jit-compatible."""
    n = positions.shape[0]
    positions = lax.stop_gradient(positions)
    index, order, start = _cells(positions, box, grid)
    occupancy = start[1:] - start[:-1]
    slot = jnp.arange(cell_capacity, dtype=jnp.int32)
    members = jnp.where(
        slot[None, :] < occupancy[:, None],
        order[jnp.clip(start[:-1, None] + slot[None, :], 0, n - 1)],
        n,
    )
    g = jnp.asarray(grid, jnp.int32)
    around = jnp.mod(index[:, None, :] + jnp.asarray(_OFFSETS)[None], g)  # (N, 125, 3)
    around = (around[..., 0] * grid[1] + around[..., 1]) * grid[2] + around[..., 2]
    # blocks of atoms, so the (block, 125 * C) candidate temporaries stay small
    num_offsets = len(_OFFSETS)
    block = max(1, min(n, _BLOCK_CANDIDATES // (num_offsets * cell_capacity)))
    num_blocks = -(-n // block)
    pad = num_blocks * block - n
    rows = jnp.arange(num_blocks * block, dtype=jnp.int32).reshape(num_blocks, block)
    around = jnp.pad(around, ((0, pad), (0, 0))).reshape(num_blocks, block, num_offsets)

    def per_block(args):
        i, cells = args
        candidates = members[cells].reshape(block, -1)  # (B, 125 * C)
        xi = positions[jnp.minimum(i, n - 1)]
        xj = positions[jnp.minimum(candidates, n - 1)]
        d = minimum_image(box, [xi[:, None, k] for k in range(3)], [xj[..., k] for k in range(3)])
        keep = (candidates < n) & (candidates > i[:, None]) & (i[:, None] < n)
        keep = keep & (d[0] * d[0] + d[1] * d[1] + d[2] * d[2] < list_radius**2)
        rank = jnp.cumsum(keep, axis=1, dtype=jnp.int32) - 1
        column = jnp.where(keep & (rank < width), rank, width)
        local = jnp.broadcast_to(jnp.arange(block, dtype=jnp.int32)[:, None], column.shape)
        table = jnp.zeros((block, width), jnp.int32).at[local, column].set(candidates, mode="drop")
        return table, jnp.sum(keep, axis=1, dtype=jnp.int32)

    table, count = lax.map(per_block, (rows, around))
    table, count = table.reshape(-1, width)[:n], count.reshape(-1)[:n]
    count_needed, occupancy_needed = jnp.max(count), jnp.max(occupancy)
    overflow = (count_needed > width) | (occupancy_needed > cell_capacity)
    return table, jnp.minimum(count, width), overflow, count_needed, occupancy_needed


def triclinic_pass(table, count, positions, box, pair_fn, cutoff, species, sums: Sums):
    """Pair sums over the half table (each pair once; reactions scattered to ``j``)."""
    n, width = table.shape
    dtype = positions.dtype
    cutoff_sq = cutoff * cutoff
    valid = jnp.arange(width, dtype=jnp.int32)[None, :] < count[:, None]
    xj = positions[table]
    d = minimum_image(
        box, [positions[:, None, k] for k in range(3)], [xj[..., k] for k in range(3)]
    )
    r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
    mask = valid & (r2 < cutoff_sq)
    r2_safe = jnp.where(mask, r2, jnp.asarray(cutoff_sq, dtype))
    si = None if species is None else species[:, None]
    sj = None if species is None else species[table]
    scalars, weights = _split(pair_fn(r2_safe, si, sj), "pair_fn")
    scalars = [jnp.where(mask, s, 0) for s in scalars]
    if sums is Sums.TOTALS:
        return tuple(jnp.sum(s) for s in scalars)
    flat = table.reshape(-1)

    def to_atoms(own, pairs):  # own rows plus the reactions scattered onto j
        return own + jax.ops.segment_sum(pairs.reshape(-1, *pairs.shape[2:]), flat, n)

    vectors = []
    for w in weights:
        w = jnp.where(mask, w, 0)
        wd = jnp.stack([w * dk for dk in d], axis=-1)
        vectors.append(to_atoms(jnp.sum(wd, axis=1), -wd))
    if sums is Sums.PER_ATOM:
        scalars = tuple(to_atoms(jnp.sum(s, axis=1), s) for s in scalars)
    else:
        scalars = tuple(jnp.sum(s) for s in scalars)
    return scalars, tuple(vectors)


def triclinic_needs(positions, box, grid, list_radius) -> tuple[int, int]:
    """Largest cell occupancy and largest half-table row of a configuration (host side,
    NumPy: no compilation for sizing)."""
    x = np.asarray(positions, np.float64)
    cell = np.asarray(box.cell, np.float64)
    n = x.shape[0]
    s = x @ np.linalg.inv(cell)
    s -= np.floor(s)
    g = np.asarray(grid)
    index = np.clip(np.floor(s * g).astype(np.int64), 0, g - 1)
    flat = (index[:, 0] * grid[1] + index[:, 1]) * grid[2] + index[:, 2]
    occupancy = np.bincount(flat, minlength=int(np.prod(g)))
    order = np.argsort(flat, kind="stable")
    start = np.concatenate([[0], np.cumsum(occupancy)])
    capacity = int(occupancy.max())
    slot = np.arange(capacity)
    members = np.where(
        slot[None, :] < occupancy[:, None],
        order[np.minimum(start[:-1, None] + slot[None, :], n - 1)],
        n,
    )
    count = np.zeros(n, np.int64)
    for offset in _OFFSETS:  # 125 cells, vectorised over atoms
        other = np.mod(index + offset, g)
        other = (other[:, 0] * grid[1] + other[:, 1]) * grid[2] + other[:, 2]
        candidates = members[other]  # (N, C)
        d = x[:, None, :] - x[np.minimum(candidates, n - 1)]
        f = d @ np.linalg.inv(cell)
        d = (f - np.rint(f)) @ cell
        keep = (candidates < n) & (candidates > np.arange(n)[:, None])
        count += np.sum(keep & (np.sum(d * d, axis=-1) < list_radius**2), axis=1)
    return capacity, int(count.max())
