"""The cell lists' rebuild pieces: the cell sort and cell starts (every key width), and
the Verlet table built from windows wider than one 32-slot mask word."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax.md as md
from hybrax.md._cell_geometry import _cell_starts, _sort_by_cell, full_shell, grid_for

from .test_neighbors import brute_force_neighbors


@pytest.mark.parametrize("x64", [True, False])
@pytest.mark.parametrize("num_cells", [700, 2**31 // 500 + 1])
def test_cell_sort_and_starts_equal_argsort_and_searchsorted(num_cells, x64):
    """int32 keys (cells * N < 2^31), int64 keys (64-bit JAX) and the pair sort (neither)
    give the atoms in cell order, and the cell starts equal a search of the sorted cells."""
    n = 500
    rng = np.random.default_rng(3)
    cell = rng.integers(0, 700, n).astype(np.int32)
    cell[:5] = num_cells - 1  # the largest key
    with jax.enable_x64(x64):
        order = np.asarray(jax.jit(_sort_by_cell, static_argnums=1)(jnp.asarray(cell), num_cells))
        starts = np.asarray(jax.jit(_cell_starts, static_argnums=1)(jnp.asarray(cell), 700))
    assert order.dtype == np.int32
    np.testing.assert_array_equal(np.sort(order), np.arange(n))
    assert np.all(np.diff(cell[order]) >= 0)
    sorted_cells = np.sort(cell[cell < 700])
    np.testing.assert_array_equal(starts, np.searchsorted(sorted_cells, np.arange(701)))


def test_table_with_windows_wider_than_a_mask_word_holds_the_brute_force_neighbours(fcc500):
    """Candidate windows of 40 slots (two mask words each, the second partly past the
    window) give the same rows as brute force, the j > i neighbours first."""
    positions, box = fcc500
    _, columns, _ = grid_for(np.asarray(box.lengths), 2.8)
    wide = (40,) * len(full_shell(columns))
    nbrs = md.CellNeighborList.build(
        positions, box, cutoff=2.5, skin=0.3, format="table", minimum_capacity=(1, (1,), wide)
    )
    assert nbrs.candidate_widths == wide and not bool(nbrs.overflow)
    inside = brute_force_neighbors(positions, np.asarray(box.lengths), 2.8)
    n, width = nbrs.num_atoms, nbrs.widths[0]
    table, count = np.asarray(nbrs.ext_ids).reshape(n, width), np.asarray(nbrs.row_count)
    upper = np.asarray(nbrs.window_count[:, 0])
    np.testing.assert_array_equal(count, inside.sum(axis=1))
    for i in range(n):
        row = table[i, : count[i]]
        np.testing.assert_array_equal(np.sort(row), np.flatnonzero(inside[i]))
        assert np.all(row[: upper[i]] > i) and np.all(row[upper[i] :] < i)
        assert np.all(table[i, count[i] :] == i)
