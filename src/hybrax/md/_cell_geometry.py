"""Geometry of the cell list: the static cell grid, the half shell of columns, and the
per-atom windows (see `CellNeighborList` for the layout)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

# Cells per list radius (cutoff + skin) along each axis. Along x, the fast axis of the sort,
# an atom reads one contiguous window of cells per column; thin cells (a sixth of the list
# radius) make that window hug the list sphere's chord, so few candidates lie outside the
# sphere. Along y and z a column is kept or dropped whole; half a list radius per cell keeps
# the half shell of columns small (reach of 2 cells) while the lateral cut stays tight.
CELLS_PER_RADIUS_X = 6.0
CELLS_PER_RADIUS_YZ = 2.0


def grid_for(lengths: np.ndarray, list_radius: float):
    """Cell grid (nx, ny, nz), the half shell of (dy, dz) column offsets within reach
    (the own column first), and whether cell lists work in this box."""
    lx, ly, lz = (float(v) for v in lengths)
    nx = max(1, int(lx // (list_radius / CELLS_PER_RADIUS_X)))
    ny = max(1, int(ly // (list_radius / CELLS_PER_RADIUS_YZ)))
    nz = max(1, int(lz // (list_radius / CELLS_PER_RADIUS_YZ)))
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


def coverage_lost(lengths, *, grid, columns, cutoff, list_radius) -> Array:
    """True when a list with this static ``grid`` and ``columns`` cannot give all pairs in
    a periodic box of side ``lengths`` (traced or concrete): a side shorter than twice the
    cutoff (the minimum image would miss pairs), a left-out column
    within the list radius or an x ring too short for the forward windows."""
    lengths = jnp.asarray(lengths)
    lost = jnp.any(lengths < 2.0 * cutoff)
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


def build_tables(positions, box, *, grid, columns, widths, column_capacity, list_radius):
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


requirements = jax.jit(_requirements, static_argnums=(2, 3, 4))
