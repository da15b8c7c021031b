"""Geometry of the cell list: the static cell grid, the half shell of columns, and the
per-atom windows (see `CellNeighborList` for the layout)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array

# Cells per list radius (cutoff + skin) along each axis. Along x, the fast axis of the sort,
# an atom reads one contiguous window of cells per column; thin cells (a sixth of the list
# radius) make that window hug the list sphere's chord, so few candidates lie outside the
# sphere. Along y and z a column is kept or dropped whole; half a list radius per cell keeps
# the half shell of columns small (reach of 2 cells) while the lateral cut stays tight.
CELLS_PER_RADIUS_X = 6.0
CELLS_PER_RADIUS_YZ = 2.0
# The "rows" format concatenates an atom's windows into one row, so a window costs no
# padding of its own: thinner columns (a quarter of the list radius) then cut the candidates
# (in.lj: 60 per atom instead of 85) for more windows per atom. The rebuild then keeps only
# the candidates within the list radius (about 39 of 62), so a row holds ~70 slots, not 110.
ROWS_CELLS_PER_RADIUS = (6.0, 4.0)


def grid_for(
    lengths: np.ndarray,
    list_radius: float,
    cells_per_radius: tuple[float, float] = (CELLS_PER_RADIUS_X, CELLS_PER_RADIUS_YZ),
):
    """Cell grid (nx, ny, nz), the half shell of (dy, dz) column offsets within reach
    (the own column first), and whether cell lists work in this box; ``cells_per_radius``
    is the ``(x, y and z)`` cell count per list radius."""
    lx, ly, lz = (float(v) for v in lengths)
    per_x, per_yz = cells_per_radius
    nx = max(1, int(lx // (list_radius / per_x)))
    ny = max(1, int(ly // (list_radius / per_yz)))
    nz = max(1, int(lz // (list_radius / per_yz)))
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


def full_shell(columns) -> tuple[tuple[int, int], ...]:
    """The half shell of column offsets (own column first) plus its mirror image: every
    column within reach, for the Verlet table's candidates (`build_verlet_table`)."""
    return (*columns, *((-dy, -dz) for dy, dz in columns[1:]))


def _sort_by_cell(cell, num_cells: int):
    """The atoms in order of ``cell`` (int32 ids; any order inside a cell).

    One sort of single keys ``cell * N + i`` (int64 where JAX has 64-bit integers, int32
    where the keys fit) is about 3x faster in XLA on a CPU than `jnp.argsort`'s sort of
    (key, index) pairs (32,000 atoms: 1.4 against 3.9 ms); else the pair sort."""
    n = cell.shape[0]
    index = jnp.arange(n, dtype=jnp.int32)
    if num_cells * n < 2**31:
        return lax.sort(cell * n + index) % n
    if jax.config.jax_enable_x64:
        keys = lax.sort(cell.astype(jnp.int64) * n + index.astype(jnp.int64))
        return (keys % n).astype(jnp.int32)
    return lax.sort((cell, index), num_keys=1, is_stable=False)[1]


def _cell_starts(cell, num_cells: int):
    """``start[c]``: the atoms in cells before ``c`` (``num_cells + 1`` entries), by a
    counting scatter and a prefix sum (`jnp.searchsorted` over the sorted cells is about
    10x slower in XLA on a CPU: 32,000 atoms, 157,000 cells: 1.2 against 7 ms;
    `jax.lax.associative_scan` would save 0.5 ms more there but costs 0.5 s of compile)."""
    counts = jnp.zeros(num_cells + 1, jnp.int32).at[cell + 1].add(1)
    return jnp.cumsum(counts, dtype=jnp.int32)


def _wrap(index, n: int):
    """``index mod n`` for ``-n <= index < 2 n`` (the x cells of a window: the list radius
    is under half the box), by selects instead of `jnp.mod`'s integer division (in.lj
    rows rebuild, 32,000 atoms: 33 against 49 ms; 4,000: about the same)."""
    return jnp.where(index < 0, index + n, jnp.where(index >= n, index - n, index))


def _cell_windows(positions, box, *, grid, columns, list_radius, full=False):
    """Sort atoms into cells and find every atom's window in each column of ``columns``:
    the half shell (own column read forward from the atom) or, with ``full``, the full
    shell (own column read over the whole chord, the atom itself included)."""
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
    order = _sort_by_cell(cell, num_cols * nx)
    start = _cell_starts(cell, num_cols * nx)
    rank = jnp.zeros(n, jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))

    dy = jnp.asarray([c[0] for c in columns], jnp.int32)
    dz = jnp.asarray([c[1] for c in columns], jnp.int32)
    y_in = (y - cy.astype(dtype) * hy)[:, None]
    z_in = (z - cz.astype(dtype) * hz)[:, None]

    def gap(offset, inside, h):
        above = offset.astype(dtype) * h - inside
        below = inside + (-offset - 1).astype(dtype) * h
        return jnp.where(offset > 0, above, jnp.where(offset < 0, below, 0.0))

    dy, dz = dy[None], dz[None]
    if full:  # the full shell is symmetric: read it in the frame of the atom's nearer faces,
        # so that each column slot holds similar windows for every atom (tighter capacities)
        dy = jnp.where(y_in < 0.5 * hy, -dy, dy)
        dz = jnp.where(z_in < 0.5 * hz, -dz, dz)
    gy, gz = gap(dy, y_in, hy), gap(dz, z_in, hz)
    lateral_sq = gy * gy + gz * gz
    reachable = lateral_sq < list_radius**2
    half_chord = jnp.sqrt(jnp.maximum(list_radius**2 - lateral_sq, 0.0))
    lo = jnp.floor((x[:, None] - half_chord) * (nx / lengths[0])).astype(jnp.int32)
    hi = jnp.floor((x[:, None] + half_chord) * (nx / lengths[0])).astype(jnp.int32)
    lo_c, hi_c = _wrap(lo, nx), _wrap(hi, nx)
    # (selects for the y and z wrap too measured slower: XLA then fuses differently)
    column = jnp.mod(cz[:, None] + dz, nz) * ny + jnp.mod(cy[:, None] + dy, ny)
    base = column * nx
    col_start = start[jnp.arange(num_cols + 1, dtype=jnp.int32) * nx]
    row_start = col_start[column]  # (a small table: cheaper than reading start twice)
    row_length = col_start[column + 1] - row_start
    e = start[base + hi_c + 1] - row_start
    # other columns: the cells lo..hi; own column (index 0): forward from the atom itself
    s = start[base + lo_c] - row_start
    wraps = lo_c > hi_c
    if not full:
        # (selects on the first column fuse into their neighbours; `.at[:, 0].set` was a
        # dynamic-update-slice kernel each)
        own = jnp.arange(len(columns), dtype=jnp.int32)[None, :] == 0
        s = jnp.where(own, (rank - row_start[:, 0] + 1)[:, None], s)
        wraps = jnp.where(own, (hi[:, 0] >= nx)[:, None], wraps)
    count = jnp.where(wraps, e - s + row_length, e - s)
    count = jnp.where(reachable, count, 0)
    return order, rank, column, s, count, col_start


def build_tables(positions, box, *, grid, columns, widths, column_capacity, list_radius):
    """The list's index tables for ``positions`` (jit-compatible, static capacities)."""
    stride = column_capacity + max(widths)
    num_cols = grid[1] * grid[2]
    num_ext = num_cols * stride
    order, rank, column, s, count, col_start = _cell_windows(
        positions, box, grid=grid, columns=columns, list_radius=list_radius
    )
    width_arr = jnp.asarray(widths, jnp.int32)
    col_length = col_start[1:] - col_start[:-1]
    window_start = column * stride + jnp.clip(s, 0, column_capacity)
    count, window_start = _largest_first(count, window_start)
    counts_needed = jnp.max(count, axis=0)
    column_needed = jnp.max(col_length)
    overflow = jnp.any(counts_needed > width_arr) | (column_needed > column_capacity)
    count = jnp.minimum(count, width_arr[None, :])

    ext_ids = _column_major(order, col_start, stride)

    own = column[:, 0]
    offset = rank - col_start[own]
    primary = jnp.where(offset < stride, own * stride + offset, num_ext)
    copy_offset = offset + col_length[own]
    copy = jnp.where(copy_offset < stride, own * stride + copy_offset, num_ext)
    atom_slots = jnp.stack([primary, copy], axis=-1)
    return ext_ids, atom_slots, window_start, count, overflow, counts_needed, column_needed


def build_rows(
    positions, box, *, grid, columns, width, column_capacity, list_radius, candidate_width
):
    """Format ``"rows"``: every atom's half-shell windows concatenated into a row of
    ``candidate_width`` candidates, filtered to those within ``list_radius`` (minimum
    image) and compacted into one row of ``width`` atom ids (unused slots hold the atom
    itself), with the number used.

    Returns ``(table (N, width), total (N,), overflow, total_need, column_need,
    candidate_need)`` (jit-compatible, no gradient flows through it). A window never holds
    more atoms than its column (the x ring is longer than a window), so
    ``2 * column_capacity`` slots per column hold the column and the wrap copies its
    windows read. The filter keeps about 39 of 62 candidates per atom in in.lj, so the
    force pass reads far fewer slots.
    """
    n = positions.shape[0]
    positions = lax.stop_gradient(positions)
    dtype = positions.dtype
    stride = 2 * column_capacity
    order, _, column, s, count, col_start = _cell_windows(
        positions, box, grid=grid, columns=columns, list_radius=list_radius
    )
    col_length = col_start[1:] - col_start[:-1]
    ext_ids = _column_major(order, col_start, stride)
    ext_coords = positions[ext_ids]  # (E, 3): one gather for the three coordinates
    start = column * stride + jnp.clip(s, 0, column_capacity)
    lengths = box.lengths.astype(dtype)
    inverse = 1.0 / lengths
    radius_sq = jnp.asarray(list_radius**2, dtype)

    num_words = -(-candidate_width // _WORD)
    num_windows = count.shape[1]

    def candidate_index(start, count, slots):
        """The column-major index of each row's candidate ``slots`` (slot c lies in the
        last window starting <= c) and the number of candidates."""
        prefix = jnp.zeros(start.shape[:1], jnp.int32)
        index = jnp.zeros((start.shape[0], slots.shape[1]), jnp.int32)
        for q in range(count.shape[1]):
            index = jnp.where(
                slots >= prefix[:, None], (start[:, q] - prefix)[:, None] + slots, index
            )
            prefix = prefix + count[:, q]
        return index, prefix

    def rows(first_atom, args):  # per block of atoms: a bit mask per 32 candidates, compaction
        x, windows = args
        b = x.shape[0]
        start, count = windows[:, :num_windows], windows[:, num_windows:]
        # (iotas made here fuse into their users; made outside the loop, each was a kernel)
        own = first_atom + lax.broadcasted_iota(jnp.int32, (b,), 0)
        slot = lax.broadcasted_iota(jnp.int32, (1, num_words * _WORD), 1)
        k = lax.broadcasted_iota(jnp.int32, (1, width), 1)
        bits = jnp.asarray(1 << np.arange(_WORD, dtype=np.uint32))
        index, prefix = candidate_index(start, count, slot)
        used = slot < prefix[:, None]
        source = jnp.where(used, index, 0)
        xyz = [ext_coords[:, c][source] for c in range(3)]  # (one gather per coordinate:
        # XLA's gather of (b, slots, 3) rows is about 6x slower on a CPU)
        r2 = 0.0
        for c in range(3):
            dc = x[:, c, None] - xyz[c]
            dc = dc - lengths[c] * jnp.rint(dc * inverse[c])  # minimum image
            r2 = r2 + dc * dc
        near = (used & (r2 < radius_sq)).reshape(b, num_words, _WORD)
        masks = jnp.sum(jnp.where(near, bits, jnp.uint32(0)), -1, jnp.uint32)  # (b, words)
        sizes = lax.population_count(masks).astype(jnp.int32)
        # row slot k lies in the last word whose running count is <= k
        before = jnp.zeros((b,), jnp.int32)
        word_mask = jnp.zeros((b, width), jnp.uint32)
        word_before = jnp.zeros((b, width), jnp.int32)
        word_first = jnp.zeros((b, width), jnp.int32)
        for w in range(num_words):
            here = k >= before[:, None]
            word_mask = jnp.where(here, masks[:, w, None], word_mask)
            word_before = jnp.where(here, before[:, None], word_before)
            word_first = jnp.where(here, w * _WORD, word_first)
            before = before + sizes[:, w]
        chosen = word_first + _select_bit(word_mask, k - word_before)
        kept = k < before[:, None]
        # the chosen slots' candidates, read from the index of all slots (the chain of
        # selects over the ~39 windows ran a second time for them before: in.lj 4,000
        # atoms, rebuild 5.7 -> 4.9 ms and less to compile)
        source = jnp.take_along_axis(index, jnp.where(kept, chosen, 0), axis=1)
        table = jnp.where(kept, ext_ids[source], own[:, None])
        return first_atom + b, (table, jnp.stack([before, prefix], axis=-1))

    block, num_blocks, pad = _row_blocks(n)
    # one input array for the loop's windows (each input is sliced by a kernel of its own)
    windows = jnp.concatenate([start, count], axis=1)
    _, (table, totals) = lax.scan(
        rows,
        jnp.zeros((), jnp.int32),
        (
            jnp.pad(positions, ((0, pad), (0, 0))).reshape(num_blocks, block, 3),
            jnp.pad(windows, ((0, pad), (0, 0))).reshape(num_blocks, block, -1),
        ),
    )
    table, totals = table.reshape(-1, width)[:n], totals.reshape(-1, 2)[:n]
    total = totals[:, 0]
    # the three needs in one reduction, in float32 (exact for counts below 2^24: XLA on a
    # CPU compiles an integer maximum into a tree of kernels, a floating-point one into a
    # library call); a column's length is the need of every atom in it, and every
    # non-empty column has one
    needs = jnp.concatenate([totals, col_length[column[:, :1]]], axis=1)
    needs = jnp.max(needs.astype(jnp.float32), axis=0).astype(jnp.int32)
    total_need, candidate_need, column_need = needs[0], needs[1], needs[2]
    overflow = (
        (total_need > width) | (candidate_need > candidate_width) | (column_need > column_capacity)
    )
    return table, jnp.minimum(total, width), overflow, total_need, column_need, candidate_need


def _row_blocks(n: int, block: int = 64):
    block = _even_block(n, block)
    num_blocks = -(-n // block)
    return block, num_blocks, num_blocks * block - n


def _even_block(n: int, block: int) -> int:
    """A block size for ``n`` rows near ``block``: the largest divisor of ``n`` in
    ``[3 block / 4, block]`` if there is one (no padding: each padded array is one more
    kernel to compile), else ``min(block, n)``."""
    if n <= block:
        return n
    for size in range(block, -(-3 * block // 4) - 1, -1):
        if n % size == 0:
            return size
    return block


def _largest_first(count, start):
    """Each atom's windows in order of decreasing count (a stable sort along the rows):
    slot ``q`` of the list holds every atom's ``q``-th largest window, whatever its column.
    The static width of slot ``q`` is then the most any atom has in its ``q``-th largest
    window, not in one column; the worst atoms of different columns are different atoms,
    so this pads much less (in.lj: 145 slots per atom for the largest needs instead of
    187). Returns ``(count, start)`` permuted alike."""
    q = jnp.arange(count.shape[1], dtype=jnp.int32)
    before = (count[:, None, :] > count[:, :, None]) | (
        (count[:, None, :] == count[:, :, None]) & (q[None, :] < q[:, None])[None]
    )
    rank = jnp.sum(before, axis=2, dtype=jnp.int32)  # windows that go before window q
    place = rank[:, :, None] == q[None, None, :]  # window q goes to slot r
    return (
        jnp.sum(jnp.where(place, count[:, :, None], 0), axis=1, dtype=count.dtype),
        jnp.sum(jnp.where(place, start[:, :, None], 0), axis=1, dtype=start.dtype),
    )


def _column_major(order, col_start, stride):
    """Atom ids column by column, each column padded to ``stride`` slots with a copy of its
    first atoms (so windows that wrap around the column stay contiguous)."""
    n = order.shape[0]
    col_length = col_start[1:] - col_start[:-1]
    slot = jnp.arange(stride, dtype=jnp.int32)
    length = jnp.maximum(col_length, 1)[:, None]
    ext_sorted = jnp.clip(col_start[:-1, None] + jnp.mod(slot[None, :], length), 0, n - 1)
    return order[ext_sorted].reshape(-1)


_TABLE_BLOCK = 1 << 15  # candidate slots per block of the Verlet-table build
_WORD = 32  # candidate slots per bit mask word


def _window_slices(source, starts, width: int):
    """``source[starts[b] : starts[b] + width]`` for every ``b`` (slice gathers: each
    window is contiguous in the column-major layout, so XLA copies runs, not elements)."""
    return jax.vmap(lambda s: lax.dynamic_slice_in_dim(source, s, width, axis=0))(starts)


def build_verlet_table(
    positions, box, *, grid, columns, widths, column_capacity, list_radius, width
):
    """A full Verlet table: for every atom, every other atom within ``list_radius``
    (minimum image), gathered from its windows in the full shell of columns ``columns``
    (`full_shell`) with static window ``widths`` and compacted into ``width`` slots.

    Each row holds the neighbours ``j > i`` first (``upper`` of them), then those with
    ``j < i`` (``count`` in all); unused slots hold ``i`` itself. Returns ``(table (N,
    width), upper, count, overflow, window_needs, column_need, row_need)`` (jit-compatible;
    integer work only, no gradient flows through it).

    Per block of atoms, each window is read as contiguous slices (positions and ids in the
    column-major layout) in words of up to 32 candidates; the distance test leaves one
    32-bit mask per word for ``j > i`` and one for ``j < i``; row slot ``k`` then takes the
    word whose running count first passes ``k`` (a chain of selects over the words) and
    the set bit of that rank inside it (a binary search with population counts), and
    reads one atom id. No candidate table is written out and no element gather runs per
    candidate (in.eam, 32,000 atoms: about 4x faster than compacting a candidate table).
    """
    n = positions.shape[0]
    positions = jax.lax.stop_gradient(positions)
    dtype = positions.dtype
    stride = column_capacity + max(widths)
    order, _, column, s, count, col_start = _cell_windows(
        positions, box, grid=grid, columns=columns, list_radius=list_radius, full=True
    )
    width_arr = jnp.asarray(widths, jnp.int32)
    col_length = col_start[1:] - col_start[:-1]
    window_needs = jnp.max(count, axis=0)
    column_need = jnp.max(col_length)
    count = jnp.minimum(count, width_arr[None, :])
    window_start = column * stride + jnp.clip(s, 0, column_capacity)
    ext_ids = _column_major(order, col_start, stride)
    ext_xyz = positions[ext_ids]
    lengths = box.lengths.astype(dtype)
    inverse = 1.0 / lengths
    radius_sq = jnp.asarray(list_radius**2, dtype)
    # words: windows cut into runs of at most 32 slots, all read with one slice width
    word_size = min(_WORD, max(widths))
    words = [(q, a) for q, w in enumerate(widths) for a in range(0, w, word_size)]
    word_q = np.asarray([q for q, _ in words], np.int32)
    word_a = np.asarray([a for _, a in words], np.int32)
    num_words = 2 * len(words)  # the j > i masks, then the j < i masks
    block = max(8, min(n, _TABLE_BLOCK // (len(words) * word_size)))
    num_blocks = -(-n // block)
    pad = num_blocks * block - n
    k = jnp.arange(width, dtype=jnp.int32)[None, :]
    slot = jnp.arange(word_size, dtype=jnp.int32)
    bits = jnp.left_shift(jnp.uint32(1), slot.astype(jnp.uint32))

    def rows(args):
        i, x, start, cnt = args
        b = i.shape[0]
        first = start[:, word_q] + word_a[None, :]  # (block, words)
        ids = _window_slices(ext_ids, first.reshape(-1), word_size).reshape(b, -1, word_size)
        xyz = _window_slices(ext_xyz, first.reshape(-1), word_size).reshape(b, -1, word_size, 3)
        r2 = 0.0
        for c in range(3):
            dc = x[:, c, None, None] - xyz[..., c]
            dc = dc - lengths[c] * jnp.rint(dc * inverse[c])
            r2 = r2 + dc * dc
        near = (slot + word_a[:, None] < cnt[:, word_q, None]) & (r2 < radius_sq)
        i3 = i[:, None, None]
        up = jnp.sum(jnp.where(near & (ids > i3), bits, jnp.uint32(0)), -1, jnp.uint32)
        low = jnp.sum(jnp.where(near & (ids < i3), bits, jnp.uint32(0)), -1, jnp.uint32)
        masks = jnp.concatenate([up, low], axis=1).T  # (words, block)
        starts = jnp.concatenate([first, first], axis=1).T
        sizes = lax.population_count(masks).astype(jnp.int32)
        upper = jnp.sum(sizes[: num_words // 2], axis=0, dtype=jnp.int32)
        # row slot k lies in the last word whose running count is <= k (empty words pass
        # their place on to the next word, which then starts at the same count)
        zeros = jnp.zeros((b, width), jnp.int32)

        def pick(carry, word):
            before, word_mask, word_before, word_start = carry
            m, size, first = word
            here = k >= before[:, None]
            word_mask = jnp.where(here, m[:, None], word_mask)
            word_before = jnp.where(here, before[:, None], word_before)
            word_start = jnp.where(here, first[:, None], word_start)
            return (before + size, word_mask, word_before, word_start), None

        carry = (jnp.zeros_like(upper), zeros.astype(jnp.uint32), zeros, zeros)
        (before, word_mask, word_before, word_start), _ = lax.scan(
            pick, carry, (masks, sizes, starts)
        )
        bit = _select_bit(word_mask, k - word_before)
        used = k < before[:, None]
        table = jnp.where(used, ext_ids[jnp.where(used, word_start + bit, 0)], i[:, None])
        return table, upper, before

    xs = (
        jnp.pad(jnp.arange(n, dtype=jnp.int32), (0, pad)).reshape(num_blocks, block),
        jnp.pad(positions, ((0, pad), (0, 0))).reshape(num_blocks, block, 3),
        jnp.pad(window_start, ((0, pad), (0, 0))).reshape(num_blocks, block, -1),
        jnp.pad(count, ((0, pad), (0, 0))).reshape(num_blocks, block, -1),
    )
    table, upper, full = lax.map(rows, xs)
    table = table.reshape(-1, width)[:n]
    upper, full = upper.reshape(-1)[:n], full.reshape(-1)[:n]
    row_need = jnp.max(full)
    overflow = (
        jnp.any(window_needs > width_arr) | (column_need > column_capacity) | (row_need > width)
    )
    return (
        table,
        jnp.minimum(upper, width),
        jnp.minimum(full, width),
        overflow,
        window_needs,
        column_need,
        row_need,
    )


def _select_bit(mask, n):
    """The position of the ``n``-th (0-based) set bit of each 32-bit ``mask`` (uint32)."""
    pos = jnp.zeros(mask.shape, jnp.uint32)
    n = n.astype(jnp.uint32)
    for half in (16, 8, 4, 2, 1):
        low = lax.population_count((mask >> pos) & jnp.uint32((1 << half) - 1))
        skip = n >= low
        pos = jnp.where(skip, pos + jnp.uint32(half), pos)
        n = jnp.where(skip, n - low, n)
    return pos.astype(jnp.int32)


def table_row_need(positions, lengths, list_radius) -> int:
    """Most neighbours any atom has within ``list_radius`` (minimum image; host side, a
    periodic k-d tree: no compilation for sizing)."""
    from scipy.spatial import cKDTree

    lengths = np.asarray(lengths, np.float64)
    x = np.mod(np.asarray(positions, np.float64), lengths)
    x = np.where(x >= lengths, x - lengths, x)
    tree = cKDTree(x, boxsize=lengths)
    counts = tree.query_ball_point(x, list_radius, return_length=True)
    return int(np.max(counts)) - 1  # without the atom itself


def table_pair_count(positions, lengths, list_radius) -> int:
    """The number of pairs within ``list_radius`` (minimum image; host side, a periodic
    k-d tree)."""
    from scipy.spatial import cKDTree

    lengths = np.asarray(lengths, np.float64)
    x = np.mod(np.asarray(positions, np.float64), lengths)
    x = np.where(x >= lengths, x - lengths, x)
    tree = cKDTree(x, boxsize=lengths)
    return (int(tree.count_neighbors(tree, list_radius)) - x.shape[0]) // 2


def _requirements(positions, box, grid, columns, list_radius, full=False, rows=False):
    """Largest column length and per-column window counts for a configuration (with
    ``rows``: the largest number of candidates of any atom, all windows together)."""
    *_, count, col_start = _cell_windows(
        positions, box, grid=grid, columns=columns, list_radius=list_radius, full=full
    )
    column_need = jnp.max(col_start[1:] - col_start[:-1])
    if rows:  # (and the candidates of all rows together)
        total = jnp.sum(count, axis=1)
        return column_need, jnp.max(total), jnp.sum(total)
    if full:
        return column_need, jnp.max(count, axis=0)
    # the half-shell windows' slots are ranked by count (`build_tables`): the most any
    # atom has in its q-th largest window, and the q-th largest of the columns' maxima (a
    # bound for every atom's q-th largest window whatever the ranking)
    ranked = jnp.max(-jnp.sort(-count, axis=1), axis=0)
    return column_need, ranked, -jnp.sort(-jnp.max(count, axis=0))


requirements = jax.jit(_requirements, static_argnums=(2, 3, 4, 5, 6))
