"""The cell list's ranked windows: slot q holds each atom's q-th largest column window.

Checks the pair set against brute force (every pair within the list radius exactly once),
the ranking itself, that a too-small tail slot is an overflow (NaN, never silently
wrong), and that the capacities sized from a crystal leave room for thermal motion.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax.md as md

from .conftest import perturbed_fcc

jax.config.update("jax_enable_x64", True)


def listed_pairs(nbrs: md.CellNeighborList) -> tuple[np.ndarray, np.ndarray]:
    """Every (i, j) candidate the windows hold, as read by the force pass."""
    ext = np.asarray(nbrs.ext_ids)
    start, count = np.asarray(nbrs.window_start), np.asarray(nbrs.window_count)
    rows, others = [], []
    for q, width in enumerate(nbrs.widths):
        slots = np.arange(width)
        valid = slots[None, :] < count[:, q : q + 1]
        j = ext[start[:, q : q + 1] + slots[None, :]]
        i = np.broadcast_to(np.arange(nbrs.num_atoms)[:, None], j.shape)
        rows.append(i[valid])
        others.append(j[valid])
    return np.concatenate(rows), np.concatenate(others)


def brute_force_pairs(positions, lengths, radius) -> set[tuple[int, int]]:
    p = np.asarray(positions, np.float64)
    d = p[:, None, :] - p[None, :, :]
    d -= lengths * np.round(d / lengths)
    r2 = np.sum(d * d, axis=-1)
    i, j = np.nonzero(np.triu(r2 < radius**2, k=1))
    return set(zip(i.tolist(), j.tolist(), strict=True))


@pytest.fixture(scope="module")
def warm():
    """864 atoms (6^3 fcc cells) displaced like a warm liquid (0.25 sigma rms) and their
    cell list."""
    positions, box = perturbed_fcc(6, noise=0.25, seed=3)
    return positions, box, md.CellNeighborList.build(positions, box, cutoff=2.5, skin=0.3)


def assert_exact_pair_set(nbrs, positions, box):
    """The windows hold every pair within the list radius, each exactly once."""
    i, j = listed_pairs(nbrs)
    lengths = np.asarray(box.lengths)
    p = np.asarray(positions)
    d = p[i] - p[j]
    d -= lengths * np.round(d / lengths)
    inside = np.sum(d * d, axis=-1) < nbrs.list_radius**2
    listed = {(min(a, b), max(a, b)) for a, b in zip(i[inside], j[inside], strict=True)}
    assert int(inside.sum()) == len(listed)  # no pair twice
    assert np.all(i != j)
    assert listed == brute_force_pairs(positions, lengths, nbrs.list_radius)


def test_windows_hold_every_pair_within_the_list_radius_once(warm):
    positions, box, nbrs = warm
    assert not bool(nbrs.overflow)
    assert_exact_pair_set(nbrs, positions, box)


def test_window_counts_are_ranked_and_widths_follow_the_ranked_needs(warm):
    _, _, nbrs = warm
    count = np.asarray(nbrs.window_count)
    assert np.all(np.diff(count, axis=1) <= 0)  # each atom's windows largest first
    needs = np.asarray(nbrs.max_counts)
    np.testing.assert_array_equal(needs, count.max(axis=0))
    assert all(w >= n for w, n in zip(nbrs.widths, needs, strict=True))
    assert list(nbrs.widths) == sorted(nbrs.widths, reverse=True)


def test_a_too_small_tail_slot_overflows_to_nan(warm):
    positions, box, nbrs = warm
    needs = np.asarray(nbrs.max_counts)
    q = int(np.nonzero(needs > 1)[0][-1])  # the last slot some atom fills with 2 or more
    widths = tuple(int(needs[q]) - 1 if k == q else w for k, w in enumerate(nbrs.widths))
    narrowed = dataclasses.replace(nbrs, widths=widths)
    tight = jax.jit(lambda n, p: n.update(p, box))(narrowed, positions)
    assert bool(tight.overflow)
    assert int(tight.max_counts[q]) == int(needs[q])  # grow sizes the slot from this
    assert np.isnan(float(md.LennardJones(cutoff=2.5).energy(positions, tight, box)))


def test_crystal_capacities_hold_a_rebuild_after_half_a_skin():
    """Sized on the perfect lattice (every atom with the same ranked windows), the list
    still holds every pair after the atoms moved up to skin / 2 and it was rebuilt."""
    positions, box = md.lattice("fcc", 6, density=0.8442)
    nbrs = md.neighbor_list(positions, box, cutoff=2.5, skin=0.3, format="windows")
    rng = np.random.default_rng(7)
    step = rng.normal(size=positions.shape)
    step *= 0.15 / np.max(np.linalg.norm(step, axis=1))
    moved = box.wrap(positions + jnp.asarray(step))
    rebuilt = jax.jit(lambda n, p: n.update(p, box))(nbrs, moved)
    assert not bool(rebuilt.overflow)
    assert_exact_pair_set(rebuilt, moved, box)
