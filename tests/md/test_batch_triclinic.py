"""Batches of triclinic systems (hybrax.md.SystemBatch with TriclinicBox cells): each system
of a padded batch has the energy, forces, stress and trajectory it has alone."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
import hybrax.md as md

CUTOFF = 1.5


def _tilted(cells, density, count, tilts, seed):
    """The first ``count`` atoms of a perturbed fcc crystal in a cube, sheared affinely by
    ``tilts = (xy, xz, yz)`` (fractions of the side) with its cell."""
    positions, box = md.lattice("fcc", cells, density=density, dtype=jnp.float64)
    side = float(box.lengths[0])
    cell = md.TriclinicBox.from_lammps(side, side, side, *(t * side for t in tilts))
    rng = np.random.default_rng(seed)
    x = cell.cartesian(positions / box.lengths) + rng.normal(0.0, 0.05, positions.shape)
    v = md.maxwell_boltzmann(jax.random.key(seed), count, temperature=1.0)
    return cell.wrap(x)[:count], cell, v.astype(jnp.float64)


@pytest.fixture(scope="module")
def systems():
    # 32 and 100 atoms in two differently sheared cells (all three tilts in the second)
    return [
        _tilted(2, 0.8442, 32, (0.2, 0.0, 0.0), 0),
        _tilted(3, 0.8, 100, (0.15, -0.1, 0.25), 1),
    ]


@pytest.fixture(scope="module")
def batch(systems):
    return md.SystemBatch.from_systems(systems)


def test_round_trip(systems, batch):
    assert batch.num_atoms == (32, 100) and batch.cells.shape == (2, 3, 3)
    for (x, cell, v), (x2, box2, v2, _) in zip(systems, batch.systems(), strict=True):
        assert isinstance(box2, md.TriclinicBox)
        np.testing.assert_array_equal(box2.cell, cell.cell)
        np.testing.assert_allclose(x2, x, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(v2, v)
    # lengths are the cells' perpendicular widths; padding sits inside its cell
    np.testing.assert_allclose(batch.lengths[1], systems[1][1].perpendicular_widths, rtol=1e-14)
    fractions = jnp.linalg.solve(batch.cells[0].T, batch.positions[0, 32:].T).T
    assert bool(jnp.all((fractions >= 0) & (fractions < 1)))
    assert isinstance(batch.box, md.TriclinicBox) and batch.box.cell.shape == (2, 3, 3)


@eqx.filter_jit
def _alone(energy, x, cell, nbrs, v):
    """Energy, forces and stress (with velocities) of one system in its cell."""
    e, f = energy.energy_and_forces(x, nbrs, cell)
    return e, f, md.stress(energy, x, cell, nbrs, velocities=v)


def test_energies_forces_and_stress_equal_single_systems(systems, batch):
    lj = md.LennardJones(cutoff=CUTOFF)
    nbrs = md.batch_neighbor_list(batch, CUTOFF)
    energies, forces = md.batch_energy_and_forces(lj, batch, nbrs)
    sigma = md.batch_stress(lj, batch, nbrs, velocities=batch.velocities)
    for b, (x, cell, v) in enumerate(systems):
        n = x.shape[0]
        energy, f, alone = _alone(lj, x, cell, md.DenseNeighborList.build(x, cell, CUTOFF), v)
        assert float(energies[b]) == pytest.approx(float(energy), rel=1e-12)
        np.testing.assert_allclose(forces[b, :n], f, rtol=0, atol=1e-11)
        assert bool(jnp.all(forces[b, n:] == 0))
        np.testing.assert_allclose(sigma[b], alone, rtol=0, atol=1e-12)
    assert float(jnp.max(jnp.abs(sigma[1] - sigma[1].T))) < 1e-12
    assert float(jnp.max(jnp.abs(sigma[1] - jnp.diag(jnp.diagonal(sigma[1]))))) > 1e-3


def test_nve_trajectory_equals_single_runs(systems, batch):
    # the batch's trajectory of the sheared 100-atom system (all three tilts) equals its
    # run alone (one single run: the orthorhombic batch tests cover the rest of the driver);
    # the 32-atom system's padding stays put
    lj = md.LennardJones(cutoff=CUTOFF)
    nbrs = md.batch_neighbor_list(batch, CUTOFF)
    final, energies = md.simulate_batch(
        lambda box, m: md.VelocityVerlet(lj, box, dt=0.005, masses=m), batch, nbrs, 40,
        chunk_size=40, save_every=20, observe=lambda s: s.potential_energy,
    )  # fmt: skip
    x, cell, v = systems[1]
    stepper = md.VelocityVerlet(lj, cell, dt=0.005)
    state = stepper.init(x, v, md.neighbor_list(x, cell, CUTOFF))
    alone, seen = md.simulate(
        stepper, state, 40, chunk_size=40, save_every=20,
        observe=lambda s: s.potential_energy, progress=False,
    )  # fmt: skip
    np.testing.assert_allclose(final.positions[1], alone.positions, rtol=0, atol=1e-10)
    np.testing.assert_allclose(final.velocities[1], alone.velocities, rtol=0, atol=1e-10)
    np.testing.assert_allclose(energies[1], seen, rtol=1e-11)
    assert float(jnp.max(jnp.abs(final.positions[1] - x))) > 0.01  # it moved
    # padding stays put (to the round-off of re-wrapping through fractional coordinates)
    np.testing.assert_allclose(final.positions[0, 32:], batch.positions[0, 32:], atol=1e-12)
    assert bool(jnp.all(final.velocities[0, 32:] == 0))


def test_bad_input(systems):
    x, cell, _ = systems[0]
    positions, box = md.lattice("fcc", 2, density=0.8442, dtype=jnp.float64)
    with pytest.raises(hybrax.ConfigurationError, match=r"system 1 a PeriodicBox.*one kind"):
        md.SystemBatch.from_systems([(x, cell), (positions, box)])
    with pytest.raises(hybrax.ConfigurationError, match="PeriodicBox or TriclinicBox"):
        md.SystemBatch.from_systems([(x, md.FreeSpace())])
    # a cell sheared so far that its perpendicular width is under twice the cut-off
    side = float(box.lengths[0])
    thin = md.TriclinicBox.from_lammps(side, side, side, xy=0.0, xz=0.0, yz=1.5 * side)
    batch = md.SystemBatch.from_systems([(x, cell), (thin.wrap(positions), thin)])
    with pytest.raises(hybrax.ConfigurationError, match=r"system 1 has a cell of perp"):
        md.batch_neighbor_list(batch, CUTOFF)
    with pytest.raises(hybrax.ConfigurationError, match="triclinic"):
        md.batch_neighbor_list(md.SystemBatch.from_systems(systems), CUTOFF, cells=True)
    batch = md.SystemBatch.from_systems(systems)
    nbrs = md.batch_neighbor_list(batch, CUTOFF)
    with pytest.raises(hybrax.ConfigurationError, match="velocities must have the batch's shape"):
        wrong = jnp.zeros((2, 50, 3), jnp.float64)
        md.batch_stress(md.LennardJones(cutoff=CUTOFF), batch, nbrs, velocities=wrong)
