"""Batches of MD systems of different sizes (hybrax.md.SystemBatch, simulate_batch): each
system of a padded batch behaves exactly as it does alone."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
import hybrax.md as md

CUTOFF = 1.5  # small boxes (32-108 atoms) stay wider than twice the cut-off


def _systems(cells_density_count, *, temperature=1.0, seed=0):
    """Perturbed fcc systems ``(positions, box, velocities)``, the first ``count`` atoms of
    ``cells^3`` fcc cells at ``density``."""
    rng = np.random.default_rng(seed)
    out = []
    for k, (cells, density, count) in enumerate(cells_density_count):
        positions, box = md.lattice("fcc", cells, density=density)
        positions = box.wrap(positions + jnp.asarray(rng.normal(0.0, 0.05, positions.shape)))
        v = md.maxwell_boltzmann(jax.random.key(seed + k), count, temperature=temperature)
        out.append((positions[:count], box, v))
    return out


@pytest.fixture(scope="module")
def systems():
    # three systems: 32, 100 and 108 atoms in three different boxes
    return _systems([(2, 0.8442, 32), (3, 0.8, 100), (3, 0.9, 108)])


@pytest.fixture(scope="module")
def batch(systems):
    return md.SystemBatch.from_systems(systems)


def _single(energy, system, n_steps, *, skin=0.3):
    positions, box, velocities = system
    stepper = md.VelocityVerlet(energy, box, dt=0.005)
    nbrs = md.neighbor_list(positions, box, CUTOFF, skin=skin)
    state = stepper.init(positions, velocities, nbrs)
    return md.simulate(
        stepper,
        state,
        n_steps,
        chunk_size=n_steps,
        save_every=10,
        observe=lambda s: s.potential_energy,
        progress=False,
    )


def test_round_trip_and_padding(systems, batch):
    assert batch.num_atoms == (32, 100, 108)
    assert batch.positions.shape == (3, 108, 3)
    for (p, box, v), (p2, box2, v2, m2) in zip(systems, batch.systems(), strict=True):
        np.testing.assert_array_equal(p2, p)
        np.testing.assert_array_equal(v2, v)
        np.testing.assert_array_equal(box2.lengths, box.lengths)
        assert m2.shape == (p.shape[0],)
    # padding atoms sit inside their box with zero velocity
    lengths = batch.lengths[:, None, :]
    assert bool(jnp.all((batch.positions >= 0) & (batch.positions < lengths)))
    assert bool(jnp.all(jnp.where(batch.mask[..., None], 0.0, batch.velocities) == 0))
    # kinetic energy and temperature see only the real atoms
    expected = [md.temperature(v) for _, _, v in systems]
    np.testing.assert_allclose(batch.temperature(), expected, rtol=1e-13)
    ke = [md.kinetic_energy(v) for _, _, v in systems]
    np.testing.assert_allclose(batch.kinetic_energy(), ke, rtol=1e-13)


def test_energies_and_forces_equal_single_systems(systems, batch):
    lj = md.LennardJones(cutoff=CUTOFF)
    nbrs = md.batch_neighbor_list(batch, CUTOFF)
    energies, forces = jax.jit(md.batch_energy_and_forces)(lj, batch, nbrs)
    assert energies.shape == (3,) and forces.shape == (3, 108, 3)
    for b, (p, box, _) in enumerate(systems):
        n = p.shape[0]
        e1, f1 = lj.energy_and_forces(p, md.neighbor_list(p, box, CUTOFF), box)
        np.testing.assert_allclose(energies[b], e1, rtol=1e-12)
        np.testing.assert_allclose(forces[b, :n], f1, rtol=0, atol=1e-12)
        assert bool(jnp.all(forces[b, n:] == 0))  # padded rows


def test_padding_changes_nothing(systems, batch):
    """Padding atoms put on top of real atoms change no energy, force or gradient."""
    lj = md.LennardJones(cutoff=CUTOFF)
    reference = md.batch_energy_and_forces(lj, batch, md.batch_neighbor_list(batch, CUTOFF))
    # padding on top of the real atoms: a would-be infinite energy if they interacted
    n = np.asarray(batch.num_atoms)[:, None]
    source = np.minimum(np.arange(108)[None, :] - n, 0) + n - 1  # last real atom
    source = np.where(np.asarray(batch.mask), np.arange(108)[None, :], np.maximum(source, 0))
    moved = jnp.take_along_axis(batch.positions, jnp.asarray(source)[..., None], axis=1)
    overlapping = batch.replace(moved, batch.velocities)
    nbrs = md.batch_neighbor_list(overlapping, CUTOFF)
    energies, forces = md.batch_energy_and_forces(lj, overlapping, nbrs)
    np.testing.assert_allclose(energies, reference[0], rtol=1e-13)
    np.testing.assert_allclose(forces, reference[1], rtol=0, atol=1e-13)
    grad = jax.grad(
        lambda x: jnp.sum(md.batch_energy_and_forces(lj, overlapping.replace(x, moved), nbrs)[0])
    )(moved)
    assert bool(jnp.all(jnp.isfinite(grad)))
    np.testing.assert_allclose(-grad, reference[1], rtol=0, atol=1e-12)


def test_species_per_system():
    systems = _systems([(2, 0.8442, 32), (3, 0.8442, 60)])
    rng = np.random.default_rng(1)
    species = [jnp.asarray(rng.integers(0, 2, p.shape[0]), jnp.int32) for p, _, _ in systems]
    batch = md.SystemBatch.from_systems(
        [(p, box, v, 1.0, s) for (p, box, v), s in zip(systems, species, strict=True)]
    )
    sigma = jnp.array([[1.0, 0.9], [0.9, 0.8]])
    lj = md.LennardJones(sigma=sigma, cutoff=CUTOFF, species=batch.species[0])
    energies, forces = md.batch_energy_and_forces(lj, batch, md.batch_neighbor_list(batch, CUTOFF))
    for b, ((p, box, _), s) in enumerate(zip(systems, species, strict=True)):
        alone = md.LennardJones(sigma=sigma, cutoff=CUTOFF, species=s)
        e1, f1 = alone.energy_and_forces(p, md.neighbor_list(p, box, CUTOFF), box)
        np.testing.assert_allclose(energies[b], e1, rtol=1e-12)
        np.testing.assert_allclose(forces[b, : p.shape[0]], f1, rtol=0, atol=1e-12)


def test_nve_trajectory_equals_single_runs(systems, batch):
    lj = md.LennardJones(cutoff=CUTOFF)
    nbrs = md.batch_neighbor_list(batch, CUTOFF)
    final, energies = md.simulate_batch(
        lambda box, m: md.VelocityVerlet(lj, box, dt=0.005, masses=m),
        batch,
        nbrs,
        50,
        chunk_size=50,
        save_every=10,
        observe=lambda s: s.potential_energy,
    )
    assert energies.shape == (3, 5)
    for b, system in enumerate(systems):
        n = system[0].shape[0]
        alone, e1 = _single(lj, system, 50)
        np.testing.assert_allclose(final.positions[b, :n], alone.positions, rtol=0, atol=1e-12)
        np.testing.assert_allclose(final.velocities[b, :n], alone.velocities, rtol=0, atol=1e-12)
        np.testing.assert_allclose(energies[b], e1, rtol=1e-12)
        # padding atoms did not move
        np.testing.assert_array_equal(final.positions[b, n:], batch.positions[b, n:])
        assert bool(jnp.all(final.velocities[b, n:] == 0))
        assert bool(jnp.all(final.forces[b, n:] == 0))
    after = batch.replace(final.positions, final.velocities)
    np.testing.assert_allclose(
        after.temperature(),
        [md.temperature(final.velocities[b, :n]) for b, n in enumerate(batch.num_atoms)],
        rtol=1e-13,
    )


def _cell_systems():
    """Three boxes with one cell grid (cut-off 1.5, skin 0.2): a perfect lattice first (its
    list, built with no head room, sets the capacities) and two perturbed systems, one of
    them crowded."""
    lattice, box = md.lattice("fcc", 3, density=0.75)
    systems = _systems([(3, 0.8, 100), (3, 0.7, 88)], temperature=0.5)
    crowded, crowded_box, v = _systems([(3, 0.8, 100)], temperature=4.0, seed=7)[0]
    rng = np.random.default_rng(3)
    crowded = crowded_box.wrap(crowded + jnp.asarray(rng.normal(0.0, 0.1, crowded.shape)))
    return [(lattice, box, jnp.zeros_like(lattice)), (crowded, crowded_box, v), systems[1]]


def test_overflow_in_one_system_regrows_the_lists():
    """The crowded system overflows lists sized for the lattice: the whole batch's lists are
    rebuilt with more room (shared capacity) and every system's energy and forces equal
    those of all-pairs lists."""
    systems = _cell_systems()
    batch = md.SystemBatch.from_systems(systems)
    tight = md.CellNeighborList.build(
        batch.positions[0], batch.boxes()[0], CUTOFF, skin=0.2, capacity_multiplier=1.0
    )
    nbrs = md.batch_neighbor_list(batch, CUTOFF, skin=0.2, capacity_multiplier=1.0, cells=True)
    assert isinstance(nbrs.inner, md.CellNeighborList)
    assert nbrs.inner.slots_per_atom > tight.slots_per_atom  # regrown
    assert not bool(jnp.any(nbrs.overflow))
    # all-pairs lists of the same batch (equal to single runs: see the tests above)
    lj = md.LennardJones(cutoff=CUTOFF)
    energies, forces = md.batch_energy_and_forces(lj, batch, nbrs)
    dense = md.batch_neighbor_list(batch, CUTOFF, cells=False)
    expected_e, expected_f = md.batch_energy_and_forces(lj, batch, dense)
    np.testing.assert_allclose(energies, expected_e, rtol=1e-12)
    scale = float(jnp.max(jnp.abs(expected_f)))
    np.testing.assert_allclose(forces, expected_f, rtol=0, atol=1e-13 * scale)


@pytest.mark.slow
def test_overflow_during_a_run_regrows_the_batch(full_size):
    """A hot system overflows the shared cell lists mid-run: simulate_batch rebuilds the
    batch's lists, re-runs the chunk, and every trajectory equals its single run. About
    20 s of compilation (cell lists under vmap, twice), so it runs under --runslow only;
    by default `test_overflow_in_one_system_regrows_the_lists` covers the batch-wide
    regrowth (the same `grown_template` path)."""
    if not full_size:
        pytest.skip("mid-run batch regrowth compiles cell lists under vmap twice: --runslow")
    systems = _systems([(3, 0.75, 108), (3, 0.8, 100), (3, 0.7, 88)], temperature=0.5)
    systems[1] = _systems([(3, 0.8, 100)], temperature=4.0, seed=7)[0]
    batch = md.SystemBatch.from_systems(systems)
    nbrs = md.batch_neighbor_list(batch, CUTOFF, skin=0.2, capacity_multiplier=1.0, cells=True)
    lj = md.LennardJones(cutoff=CUTOFF)
    n_steps = 50
    with pytest.warns(md.NeighborListOverflowWarning):
        final, energies = md.simulate_batch(
            lambda box, m: md.VelocityVerlet(lj, box, dt=0.005, masses=m),
            batch,
            nbrs,
            n_steps,
            chunk_size=10,
            save_every=10,
            observe=lambda s: s.potential_energy,
        )
    assert final.neighbors.inner.slots_per_atom > nbrs.inner.slots_per_atom
    assert not bool(jnp.any(final.neighbors.overflow))
    for b in range(3):
        n = systems[b][0].shape[0]
        alone, e1 = _single(lj, systems[b], n_steps, skin=0.2)
        np.testing.assert_allclose(final.positions[b, :n], alone.positions, rtol=0, atol=1e-12)
        np.testing.assert_allclose(energies[b], e1, rtol=1e-12)


def test_grad_with_respect_to_potential_parameter(batch):
    nbrs = md.batch_neighbor_list(batch, CUTOFF)

    def total(sigma):
        energy = md.LennardJones(sigma=sigma, cutoff=CUTOFF)
        return jnp.sum(md.batch_energy_and_forces(energy, batch, nbrs)[0])

    grad = jax.jit(jax.grad(total))(jnp.asarray(1.0))
    h = 1e-5
    fd = (total(jnp.asarray(1.0 + h)) - total(jnp.asarray(1.0 - h))) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-7)


def test_bad_input(systems, batch, wrong_type):
    with pytest.raises(hybrax.ConfigurationError, match="empty list"):
        md.SystemBatch.from_systems([])
    flat, box, _ = systems[0]
    with pytest.raises(hybrax.ConfigurationError, match=r"system 1: positions must have shape"):
        md.SystemBatch.from_systems([(flat, box), (flat[:, :2], box)])
    with pytest.raises(hybrax.ConfigurationError, match=r"system 1: box must be"):
        md.SystemBatch.from_systems([(flat, box), (flat, md.FreeSpace())])
    with pytest.raises(hybrax.ConfigurationError, match="one floating dtype"):
        md.SystemBatch.from_systems([(flat, box), (flat.astype(jnp.float32), box)])
    small = md.SystemBatch.from_systems([systems[1][:2], systems[0][:2]])
    with pytest.raises(hybrax.ConfigurationError, match=r"system 1 has box sides"):
        md.batch_neighbor_list(small, 2.5)
    with pytest.raises(hybrax.ConfigurationError, match="different cell grids"):
        md.batch_neighbor_list(batch, CUTOFF, cells=True)
    nbrs = md.batch_neighbor_list(batch, CUTOFF)
    with pytest.raises(hybrax.ConfigurationError, match="many-body"):
        md.batch_energy_and_forces(
            md.StillingerWeber(
                2.1683, 2.0951, 1.8, 21.0, 1.2, -1 / 3, 7.049556277, 0.6022245584, 4.0, 0.0
            ),
            batch,
            nbrs,
        )
    lj = md.LennardJones(cutoff=CUTOFF)
    with pytest.raises(hybrax.ConfigurationError, match="not supported yet"):
        md.simulate_batch(
            lambda box, m: md.BrownianDynamics(lj, box, dt=0.005, temperature=1.0, masses=m),
            batch,
            nbrs,
            10,
        )
    with wrong_type("systems", hybrax.ConfigurationError, "must be a list"):
        md.SystemBatch.from_systems(3)
    with wrong_type("batch", hybrax.ConfigurationError, "needs a hybrax.md.SystemBatch"):
        md.batch_neighbor_list(systems, CUTOFF)
    with wrong_type("neighbors", hybrax.ConfigurationError, "batch_neighbor_list"):
        md.batch_energy_and_forces(lj, batch, nbrs.inner)
    with wrong_type("make_stepper", hybrax.ConfigurationError, "must be a function"):
        md.simulate_batch(md.VelocityVerlet(lj, systems[0][1], dt=0.005), batch, nbrs, 10)


def test_training_loss_is_the_mean_of_single_system_losses(systems, batch):
    """BatchEnergyForceLoss on labelled systems of different sizes equals the mean of the
    single-system losses (EnergyForceLoss's formula); a neural pair potential trains on it."""
    reference = md.LennardJones(cutoff=CUTOFF)
    data = md.label_systems(reference, batch, md.batch_neighbor_list(batch, CUTOFF))
    assert float(md.BatchEnergyForceLoss()(reference, data)) == 0.0
    model = md.LennardJones(sigma=1.03, epsilon=0.9, cutoff=CUTOFF)
    singles = []
    for p, box, _ in systems:
        nbrs = md.neighbor_list(p, box, CUTOFF)
        (e, f), (e_ref, f_ref) = (u.energy_and_forces(p, nbrs, box) for u in (model, reference))
        n = p.shape[0]
        singles.append(2.0 * ((e - e_ref) / n) ** 2 + 0.5 * jnp.mean((f - f_ref) ** 2))
    loss = md.BatchEnergyForceLoss(energy_weight=2.0, force_weight=0.5)
    np.testing.assert_allclose(loss(model, data), np.mean(singles), rtol=1e-12)
    net = md.NeuralPairPotential(CUTOFF, key=jax.random.key(0))
    assert np.isfinite(float(loss(net, data))) and float(loss(net, data)) > 0
    assert data[1:].num_systems == 2
