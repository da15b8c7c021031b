import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
import hybrax.md as md

from .conftest import perturbed_fcc


def brute_force_lj(positions, lengths, cutoff, shift=False):
    p = np.asarray(positions, np.float64)
    d = p[:, None, :] - p[None, :, :]
    d -= lengths * np.round(d / lengths)
    r2 = np.sum(d * d, axis=-1)
    np.fill_diagonal(r2, np.inf)
    inside = r2 < cutoff**2
    inv6 = np.where(inside, r2**-3, 0.0)
    c6 = cutoff**-6.0
    offset = 4 * c6 * (c6 - 1) if shift else 0.0
    return 0.5 * np.sum(np.where(inside, 4 * inv6 * (inv6 - 1) - offset, 0.0))


def test_cell_list_energy_equals_dense_and_brute_force(fcc500):
    positions, box = fcc500
    cells = md.neighbor_list(positions, box, cutoff=2.5, skin=0.3)
    dense = md.DenseNeighborList.build(positions, box, cutoff=2.5)
    assert isinstance(cells, md.CellNeighborList) and isinstance(dense, md.DenseNeighborList)
    lj = md.LennardJones(cutoff=2.5, shift=False)
    reference = brute_force_lj(positions, np.asarray(box.lengths), 2.5)
    e_cells, f_cells = lj.energy_and_forces(positions, cells, box)
    e_dense, f_dense = lj.energy_and_forces(positions, dense, box)
    np.testing.assert_allclose(e_cells, reference, rtol=1e-12)
    np.testing.assert_allclose(e_dense, reference, rtol=1e-12)
    np.testing.assert_allclose(lj.energy(positions, cells, box), reference, rtol=1e-12)
    np.testing.assert_allclose(f_cells, f_dense, atol=1e-10)
    assert not bool(cells.overflow)


def test_list_stays_valid_within_half_skin_and_rebuilds_after(fcc500, key):
    positions, box = fcc500
    nbrs = md.neighbor_list(positions, box, cutoff=2.5, skin=0.4)
    lj = md.LennardJones(cutoff=2.5)
    direction = jax.random.normal(key, positions.shape, positions.dtype)
    direction = direction / jnp.max(jnp.linalg.norm(direction, axis=1))
    small = box.wrap(positions + 0.19 * direction)  # everyone moved < skin / 2
    assert not bool(nbrs.needs_update(small, box))
    dense = md.DenseNeighborList.build(small, box, cutoff=2.5)
    np.testing.assert_allclose(
        lj.energy(small, nbrs, box), lj.energy(small, dense, box), rtol=1e-12
    )
    large = box.wrap(positions + 0.5 * direction)
    assert bool(nbrs.needs_update(large, box))
    rebuilt = jax.jit(lambda n, p: n.maybe_update(p, box))(nbrs, large)
    assert int(rebuilt.num_builds) == int(nbrs.num_builds) + 1
    dense = md.DenseNeighborList.build(large, box, cutoff=2.5)
    np.testing.assert_allclose(
        lj.energy(large, rebuilt, box), lj.energy(large, dense, box), rtol=1e-12
    )


def test_overflow_sets_flag_and_grow_fixes_it(fcc500):
    positions, box = fcc500
    fitted = md.neighbor_list(positions, box, cutoff=2.5, capacity_multiplier=1.0)
    halved = tuple(w // 2 for w in fitted.widths)
    tight = dataclasses.replace(fitted, widths=halved).update(positions, box)
    assert bool(tight.overflow)
    assert np.isnan(float(md.LennardJones(cutoff=2.5).energy(positions, tight, box)))
    grown = tight.grow(positions, box)
    assert not bool(grown.overflow)
    assert grown.slots_per_atom > tight.slots_per_atom


def test_pair_sums_per_atom_and_vmap(fcc500):
    positions, box = fcc500
    nbrs = md.neighbor_list(positions, box, cutoff=2.5)
    lj = md.LennardJones(cutoff=2.5)
    per_atom = lj.per_atom_energy(positions, nbrs, box)
    np.testing.assert_allclose(jnp.sum(per_atom), lj.energy(positions, nbrs, box), rtol=1e-12)
    # a batch of two systems sharing the list's static capacities
    other = box.wrap(positions + 0.05)
    batch = jnp.stack([positions, other])
    lists = jax.vmap(lambda p: nbrs.update(p, box))(batch)
    energies = jax.vmap(lambda p, n: lj.energy(p, n, box))(batch, lists)
    np.testing.assert_allclose(energies[0], jnp.sum(per_atom), rtol=1e-12)
    lengths = np.asarray(box.lengths)
    np.testing.assert_allclose(energies[1], brute_force_lj(other, lengths, 2.5, True), rtol=1e-12)


def test_float32_cell_list_matches_float64(fcc500):
    positions, box = fcc500
    p32, box32 = positions.astype(jnp.float32), md.PeriodicBox(box.lengths.astype(jnp.float32))
    nbrs = md.neighbor_list(p32, box32, cutoff=2.5)
    e32 = md.LennardJones(cutoff=2.5, shift=False).energy(p32, nbrs, box32)
    assert e32.dtype == jnp.float32
    e64 = brute_force_lj(p32, np.asarray(box32.lengths, np.float64), 2.5)
    np.testing.assert_allclose(float(e32), e64, rtol=2e-5)


def test_bad_input_messages(fcc500, wrong_type):
    positions, box = fcc500
    with pytest.raises(ValueError, match="outside the periodic box"):
        md.neighbor_list(positions + 100.0, box, cutoff=2.5)
    with wrong_type("positions", ValueError, r"shape \(N, 3\)"):
        md.neighbor_list(positions[:, :2], box, cutoff=2.5)
    with pytest.raises(ValueError, match="twice the cutoff"):
        md.neighbor_list(positions, box, cutoff=5.0)
    nbrs = md.neighbor_list(positions, box, cutoff=2.0)
    with pytest.raises(ValueError, match="at least that cutoff"):
        md.LennardJones(cutoff=2.5).energy(positions, nbrs, box)
    with pytest.raises(ValueError, match="built for 500"):
        md.LennardJones(cutoff=2.0).energy(positions[:10], nbrs, box)
    small, small_box = perturbed_fcc(3)
    with pytest.raises(hybrax.ConfigurationError, match=r"DenseNeighborList\.build"):
        md.CellNeighborList.build(small, small_box, cutoff=2.0)


@pytest.mark.parametrize("value", [0.3, 0.999, 0.0, -1.0, float("nan"), float("inf"), "2", True])
def test_capacity_multiplier_below_one_or_not_finite_is_rejected(fcc500, value, wrong_type):
    """Probe row 49: capacity_multiplier=0.3 built a list that overflowed at once, and the
    error blamed the positions."""
    positions, box = fcc500
    if isinstance(value, float):
        raises = pytest.raises(hybrax.ConfigurationError, match="capacity_multiplier")
    else:
        raises = wrong_type("capacity_multiplier", hybrax.ConfigurationError, "capacity_multiplier")
    with raises:
        md.neighbor_list(positions, box, cutoff=2.5, capacity_multiplier=value)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"cutoff": float("nan")}, "cutoff"),
        ({"cutoff": -2.5}, "cutoff"),
        ({"cutoff": 2.5, "skin": -0.1}, "skin"),
        ({"cutoff": 2.5, "skin": float("inf")}, "skin"),
        ({"cutoff": 2.5j}, "cutoff"),
        ({"cutoff": 2.5, "minimum_capacity": (3, (1, 2))}, "minimum_capacity"),
    ],
)
def test_bad_list_arguments_name_the_argument(fcc500, kwargs, name, wrong_type):
    positions, box = fcc500
    build = md.CellNeighborList.build if "minimum_capacity" in kwargs else md.neighbor_list
    if isinstance(kwargs.get("cutoff"), complex):
        raises = wrong_type(name, hybrax.ConfigurationError, name)
    else:
        raises = pytest.raises(hybrax.ConfigurationError, match=name)
    with raises:
        build(positions, box, **kwargs)
    with wrong_type("box", hybrax.ConfigurationError, "box"):
        md.neighbor_list(positions, 8.4, cutoff=2.5)


def test_grow_for_a_compressed_box_builds_a_new_grid(fcc500):
    positions, box = fcc500
    nbrs = md.neighbor_list(positions, box, cutoff=2.5)
    small = md.PeriodicBox(box.lengths * 0.8)
    assert bool(nbrs.covers(box)) and not bool(nbrs.covers(small))
    assert bool(nbrs.update(positions * 0.8, small).overflow)
    grown = nbrs.grow(positions * 0.8, small)
    assert not bool(grown.overflow) and bool(grown.covers(small))


# ----------------------------------------------------------------- format="table"
def brute_force_neighbors(positions, lengths, radius):
    p = np.asarray(positions, np.float64)
    d = p[:, None, :] - p[None, :, :]
    d -= lengths * np.round(d / lengths)
    r2 = np.sum(d * d, axis=-1)
    np.fill_diagonal(r2, np.inf)
    return r2 < radius**2


def brute_force_lj_forces_and_stress(positions, lengths, cutoff):
    """Forces and the stress ``-(1 / V) sum_{i<j} r_ij (x) f_ij`` of plain LJ."""
    p = np.asarray(positions, np.float64)
    d = p[:, None, :] - p[None, :, :]
    d -= lengths * np.round(d / lengths)
    r2 = np.sum(d * d, axis=-1)
    np.fill_diagonal(r2, np.inf)
    inv2 = np.where(r2 < cutoff**2, 1.0 / r2, 0.0)
    inv6 = inv2**3
    weight = 24.0 * inv2 * inv6 * (2.0 * inv6 - 1.0)  # -dphi/dr / r
    pair_forces = weight[..., None] * d
    stress = -0.5 * np.einsum("ija,ijb->ab", d, pair_forces) / np.prod(lengths)
    return np.sum(pair_forces, axis=1), stress


@pytest.fixture(scope="module")
def table500(fcc500):
    positions, box = fcc500
    return md.neighbor_list(positions, box, cutoff=2.5, skin=0.3, format="table")


def test_table_holds_exactly_the_brute_force_neighbours(fcc500, table500):
    """Every row of the Verlet table is the brute-force set of atoms within cutoff + skin,
    the j > i ones first (window_count of them: each pair once for many-body users)."""
    positions, box = fcc500
    nbrs = table500
    assert nbrs.format == "table" and not bool(nbrs.overflow)
    inside = brute_force_neighbors(positions, np.asarray(box.lengths), 2.8)
    n, width = nbrs.num_atoms, nbrs.widths[0]
    table, count = np.asarray(nbrs.ext_ids).reshape(n, width), np.asarray(nbrs.row_count)
    upper = np.asarray(nbrs.window_count[:, 0])
    for i in range(n):
        row = table[i, : count[i]]
        np.testing.assert_array_equal(np.sort(row), np.flatnonzero(inside[i]))
        assert np.all(row[: upper[i]] > i) and np.all(row[upper[i] :] < i)
    from hybrax.md._manybody import half_pairs

    i, j, valid = (np.asarray(a) for a in half_pairs(nbrs))
    assert int(valid.sum()) == int(np.triu(inside).sum()) and np.all(i[valid] < j[valid])
    with pytest.raises(hybrax.ConfigurationError, match="format"):
        md.neighbor_list(positions, box, cutoff=2.5, format="verlet")


def test_table_energy_forces_stress_and_gradient(fcc500, table500):
    """Pair sums over the table equal brute force; the gradient of the energy equals minus
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

    e, f, grad, per_atom, sigma = evaluate(positions, table500)
    reference = brute_force_lj(positions, lengths, 2.5)
    np.testing.assert_allclose(e, reference, rtol=1e-12)
    np.testing.assert_allclose(jnp.sum(per_atom), reference, rtol=1e-12)
    forces, stress = brute_force_lj_forces_and_stress(positions, lengths, 2.5)
    np.testing.assert_allclose(f, forces, atol=1e-10)
    np.testing.assert_allclose(sigma, stress, atol=1e-12)
    np.testing.assert_allclose(grad, -f, atol=1e-10)
    h = 1e-6
    for atom, axis in ((0, 0), (137, 2)):
        shifted = [positions.at[atom, axis].add(s) for s in (h, -h)]
        plus, minus = (brute_force_lj(q, lengths, 2.5) for q in shifted)
        np.testing.assert_allclose(grad[atom, axis], (plus - minus) / (2 * h), rtol=1e-6)


def test_table_overflow_stale_and_box_change(fcc500, table500, key):
    """A table too narrow for its rows flags overflow and makes pair sums NaN; `grow`
    fixes it; moves below skin / 2 keep it valid, larger ones rebuild it; a shrunk box
    is flagged and `grow` builds the list that box needs."""
    positions, box = fcc500
    lj = md.LennardJones(cutoff=2.5, shift=False)
    lengths = np.asarray(box.lengths)
    update = jax.jit(lambda n, p, b: n.update(p, b))
    narrow = dataclasses.replace(table500, widths=(table500.widths[0] // 2,))
    narrow = update(narrow, positions, box)
    assert bool(narrow.overflow)
    assert np.isnan(float(lj.energy(positions, narrow, box)))
    grown = narrow.grow(positions, box)
    assert grown.format == "table" and not bool(grown.overflow)
    assert grown.slots_per_atom > narrow.slots_per_atom
    few = tuple(w // 2 for w in table500.candidate_widths)  # candidate windows too short
    few = update(dataclasses.replace(table500, candidate_widths=few), positions, box)
    assert bool(few.overflow) and np.isnan(float(lj.energy(positions, few, box)))
    assert not bool(few.grow(positions, box).overflow)

    direction = jax.random.normal(key, positions.shape, positions.dtype)
    direction = direction / jnp.max(jnp.linalg.norm(direction, axis=1))
    small = box.wrap(positions + 0.14 * direction)  # everyone moved < skin / 2
    large = box.wrap(positions + 0.3 * direction)
    assert not bool(table500.needs_update(small, box))
    assert bool(table500.needs_update(large, box))
    rebuilt = update(table500, large, box)
    energy = jax.jit(lambda p, n: lj.energy(p, n, box))
    np.testing.assert_allclose(
        energy(small, table500), brute_force_lj(small, lengths, 2.5), rtol=1e-12
    )
    np.testing.assert_allclose(
        energy(large, rebuilt), brute_force_lj(large, lengths, 2.5), rtol=1e-12
    )

    shrunk = md.PeriodicBox(box.lengths * 0.8)  # the static grid no longer reaches 2.8
    assert not bool(table500.covers(shrunk))
    assert bool(update(table500, positions * 0.8, shrunk).overflow)
    moved = table500.grow(positions * 0.8, shrunk)  # too small for cells now: all pairs
    assert not bool(moved.overflow) and bool(moved.covers(shrunk))
