"""Format "rows" of the cell list: each atom's half-shell windows in one row.

Checks the pair set against brute force (every pair within the list radius exactly once),
pair sums, stress and gradients against brute force and finite differences, overflow (NaN,
never silently wrong). It is `hybrax.md.neighbor_list`'s default for pair energies, so
the other MD tests (stale lists, box changes, grow, simulate) run it too.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax.md as md

from .conftest import perturbed_fcc
from .test_neighbors import brute_force_lj, brute_force_lj_forces_and_stress
from .test_ranked_windows import brute_force_pairs

jax.config.update("jax_enable_x64", True)


@pytest.fixture(scope="module")
def rows500(fcc500):
    positions, box = fcc500
    return md.neighbor_list(positions, box, cutoff=2.5, skin=0.3, format="rows")


def listed_pairs(nbrs):
    n, width = nbrs.num_atoms, nbrs.widths[0]
    table = np.asarray(nbrs.ext_ids).reshape(n, width)
    used = np.arange(width)[None, :] < np.asarray(nbrs.window_count)[:, :1]
    i = np.broadcast_to(np.arange(n)[:, None], table.shape)
    return i[used], table[used]


def test_rows_hold_every_pair_within_the_list_radius_once():
    positions, box = perturbed_fcc(5, noise=0.25, seed=11)  # a warm liquid's disorder
    nbrs = md.neighbor_list(positions, box, cutoff=2.5, skin=0.3, format="rows")
    assert nbrs.format == "rows" and not bool(nbrs.overflow)
    assert nbrs.slots_per_atom == nbrs.widths[0]
    i, j = listed_pairs(nbrs)
    lengths = np.asarray(box.lengths)
    d = np.asarray(positions)[i] - np.asarray(positions)[j]
    d -= lengths * np.round(d / lengths)
    inside = np.sum(d * d, axis=-1) < nbrs.list_radius**2
    listed = {(min(a, b), max(a, b)) for a, b in zip(i[inside], j[inside], strict=True)}
    assert np.all(inside)  # compacted at the rebuild: only pairs within the list radius
    assert nbrs.widths[0] < nbrs.candidate_widths[0]  # narrower than the candidates
    assert int(inside.sum()) == len(listed)  # no pair twice
    assert np.all(i != j)
    assert listed == brute_force_pairs(positions, lengths, nbrs.list_radius)


def test_rows_padded_blocks_give_every_pair_and_the_needs():
    """499 atoms (a prime: no block size near 64 divides it, so the rebuild runs padded
    blocks; 500 runs 10 unpadded blocks of 50 in the other tests): every pair within the
    list radius once, and the recorded needs are this configuration's (most neighbours of
    a row, longest column)."""
    positions, box = perturbed_fcc(5, noise=0.2, seed=3)
    positions = positions[:499]
    nbrs = md.neighbor_list(positions, box, cutoff=2.5, skin=0.3, format="rows")
    assert not bool(nbrs.overflow)
    i, j = listed_pairs(nbrs)
    lengths = np.asarray(box.lengths)
    listed = {(min(a, b), max(a, b)) for a, b in zip(i, j, strict=True)}
    assert len(listed) == len(i)
    assert listed == brute_force_pairs(positions, lengths, nbrs.list_radius)
    assert int(nbrs.max_counts[0]) == int(np.max(np.asarray(nbrs.window_count)))
    _, ny, nz = nbrs.grid
    x = np.asarray(positions)
    cy = np.minimum((x[:, 1] / (lengths[1] / ny)).astype(int), ny - 1)
    cz = np.minimum((x[:, 2] / (lengths[2] / nz)).astype(int), nz - 1)
    assert int(nbrs.max_column_length) == int(np.max(np.bincount(cz * ny + cy)))


def test_rows_energy_forces_stress_and_gradient(fcc500, rows500):
    """Pair sums over the rows equal brute force; the gradient of the energy equals minus
    the forces and central differences (float64)."""
    positions, box = fcc500
    lj = md.LennardJones(cutoff=2.5, shift=False)
    lengths = np.asarray(box.lengths)

    @jax.jit
    def evaluate(p, nbrs):
        e, f = lj.energy_and_forces(p, nbrs, box)
        grad = jax.grad(lambda q: lj.energy(q, nbrs, box))(p)
        per_atom = lj.per_atom_energy(p, nbrs, box)
        return e, f, grad, per_atom, md.stress(lj, p, box, nbrs)

    e, f, grad, per_atom, sigma = evaluate(positions, rows500)
    reference = brute_force_lj(positions, lengths, 2.5)
    np.testing.assert_allclose(e, reference, rtol=1e-12)
    np.testing.assert_allclose(jnp.sum(per_atom), reference, rtol=1e-12)
    dense = md.DenseNeighborList.build(positions, box, cutoff=2.5)
    np.testing.assert_allclose(per_atom, lj.per_atom_energy(positions, dense, box), atol=1e-12)
    forces, stress = brute_force_lj_forces_and_stress(positions, lengths, 2.5)
    np.testing.assert_allclose(f, forces, atol=1e-10)
    np.testing.assert_allclose(sigma, stress, atol=1e-12)
    np.testing.assert_allclose(grad, -f, atol=1e-10)
    h = 1e-6
    for atom, axis in ((0, 0), (137, 2)):
        shifted = [positions.at[atom, axis].add(s) for s in (h, -h)]
        plus, minus = (brute_force_lj(q, lengths, 2.5) for q in shifted)
        np.testing.assert_allclose(grad[atom, axis], (plus - minus) / (2 * h), rtol=1e-6)


def test_rows_species_match_dense(fcc500, rows500):
    positions, box = fcc500
    species = jnp.asarray(np.arange(positions.shape[0]) % 2)
    sigma = jnp.asarray([[1.0, 1.05], [1.05, 1.1]])
    lj = md.LennardJones(sigma=sigma, cutoff=2.5, shift=True, species=species)
    dense = md.DenseNeighborList.build(positions, box, cutoff=2.5)
    e, f = lj.energy_and_forces(positions, rows500, box)
    e0, f0 = lj.energy_and_forces(positions, dense, box)
    np.testing.assert_allclose(e, e0, rtol=1e-12)
    np.testing.assert_allclose(f, f0, atol=1e-10)


def test_rows_too_narrow_or_columns_too_short_overflow_to_nan(fcc500, rows500):
    """Rows too narrow for an atom's neighbours or candidates, or columns too short for
    their atoms, flag overflow and make pair sums NaN, never silently wrong (stale lists,
    box changes and `grow` are tested in test_neighbors.py, whose lists are this format by
    default)."""
    positions, box = fcc500
    lj = md.LennardJones(cutoff=2.5, shift=False)
    update = jax.jit(lambda n, p: n.update(p, box))
    narrow = update(dataclasses.replace(rows500, widths=(rows500.widths[0] // 2,)), positions)
    assert bool(narrow.overflow)
    assert int(narrow.max_counts[0]) > narrow.widths[0]  # grow sizes the rows from this
    e, f = lj.energy_and_forces(positions, narrow, box)
    assert np.isnan(float(e)) and np.all(np.isnan(np.asarray(f)))
    few = dataclasses.replace(rows500, candidate_widths=(rows500.widths[0] // 2,))
    few = update(few, positions)  # the candidates before the distance filter
    assert bool(few.overflow) and int(few.max_candidates[0]) > few.candidate_widths[0]
    short = dataclasses.replace(rows500, column_capacity=rows500.column_capacity // 2)
    short = update(short, positions)
    assert bool(short.overflow) and int(short.max_column_length) > short.column_capacity
    assert not bool(rows500.overflow)
