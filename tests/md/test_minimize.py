import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
import hybrax.md as md

from .conftest import perturbed_fcc


def test_fire_puts_a_dimer_at_the_lj_minimum():
    positions = jnp.array([[0.0, 0.0, 0.0], [1.6, 0.3, -0.2]])
    result = md.minimize(
        md.LennardJones(epsilon=1.3, sigma=1.1, cutoff=3.0),
        positions,
        md.FreeSpace(),
        md.DenseNeighborList.build(positions, md.FreeSpace(), cutoff=3.0),
        force_tolerance=1e-10,
    )
    distance = float(jnp.linalg.norm(result.positions[1] - result.positions[0]))
    np.testing.assert_allclose(distance, 2 ** (1 / 6) * 1.1, rtol=1e-8)
    assert bool(result.converged)


def test_fire_relaxes_a_perturbed_crystal_to_the_lattice_energy(fcc500):
    positions, box = fcc500
    lattice_positions, _ = md.lattice("fcc", 5, density=0.8442)
    nbrs = md.neighbor_list(positions, box, cutoff=2.5)
    lj = md.LennardJones(cutoff=2.5)
    target = lj.energy(lattice_positions, md.neighbor_list(lattice_positions, box, 2.5), box)
    start = lj.energy(positions, nbrs, box)
    result = md.minimize(lj, positions, box, nbrs, force_tolerance=1e-6, max_steps=5000)
    assert bool(result.converged)
    assert float(start) > float(target) + 10.0
    np.testing.assert_allclose(result.potential_energy, target, rtol=1e-9)


def test_fire_stepper_lowers_the_energy_in_rollout():
    positions, box = perturbed_fcc(3, noise=0.05)
    nbrs = md.DenseNeighborList.build(positions, box, cutoff=2.5)
    fire = md.FIRE(md.LennardJones(cutoff=2.5), box, dt=0.005)
    state = fire.init(positions, nbrs)
    final, energies = hybrax.rollout(
        fire, state, 200, save_every=20, observe=lambda s: s.potential_energy
    )
    assert float(energies[-1]) < float(state.potential_energy)
    assert float(jnp.max(jnp.abs(final.forces))) < float(jnp.max(jnp.abs(state.forces)))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"dt": -0.01}, "dt"),
        ({"dt_max": float("nan")}, "dt_max"),
        ({"f_dec": 1.5}, "f_dec"),
        ({"f_inc": 0.9}, "f_inc"),
        ({"alpha_start": 0.0}, "alpha_start"),
        ({"n_min": -1}, "n_min"),
    ],
)
def test_fire_rejects_bad_constants(kwargs, name):
    with pytest.raises(hybrax.ConfigurationError, match=name):
        md.FIRE(md.LennardJones(), md.FreeSpace(), **kwargs)


def test_minimize_rejects_bad_arguments():
    positions = jnp.array([[0.0, 0.0, 0.0], [1.5, 0.0, 0.0]])
    lj, free = md.LennardJones(cutoff=2.5), md.FreeSpace()
    with pytest.raises(hybrax.ConfigurationError, match="max_steps"):
        md.minimize(lj, positions, free, max_steps=-1)
    with pytest.raises(hybrax.ConfigurationError, match="force_tolerance"):
        md.minimize(lj, positions, free, force_tolerance=float("nan"))


def test_fire_init_is_idempotent():
    positions, box = perturbed_fcc(3, noise=0.05)
    nbrs = md.DenseNeighborList.build(positions, box, cutoff=2.5)
    fire = md.FIRE(md.LennardJones(cutoff=2.5), box, dt=0.005)
    state = fire.init(positions, nbrs)
    assert fire.init(state) is state
    with pytest.raises(hybrax.ConfigurationError, match="already initialised"):
        fire.init(state, nbrs)


def test_minimize_that_misses_its_tolerance_raises_unless_told():
    """Before: max_steps ran out (or the forces became NaN) and the result came back with
    ``converged`` False, which `random_packing` ignored (a packing with overlaps)."""
    positions, box = perturbed_fcc(3, noise=0.05)
    nbrs = md.DenseNeighborList.build(positions, box, cutoff=2.5)
    lj = md.LennardJones(cutoff=2.5)
    with pytest.raises(
        hybrax.ConfigurationError, match=r"largest force component is .* after max_steps=3"
    ):
        md.minimize(lj, positions, box, nbrs, max_steps=3)
    partial = md.minimize(lj, positions, box, nbrs, max_steps=3, require_convergence=False)
    assert not bool(partial.converged) and int(partial.num_steps) == 3
    # under jit the same check runs at run time
    with pytest.raises(Exception, match="force_tolerance not reached"):
        jax.jit(lambda p: md.minimize(lj, p, box, nbrs, max_steps=3).positions)(positions)
    # two atoms on top of each other: infinite forces
    with pytest.raises(hybrax.NonFiniteStateError, match="non-finite"):
        pair = jnp.zeros((2, 3))
        free = md.FreeSpace()
        md.minimize(lj, pair, free, md.DenseNeighborList.build(pair, free, 2.5), max_steps=5)
