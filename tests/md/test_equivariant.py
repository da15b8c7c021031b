"""EquivariantPotential: E(3) invariance of the energy and equivariance of forces and virial,
permutation invariance, smooth cut-off, forces = -grad U, parameter gradients vs finite
differences, jit / vmap, MD and ASE plumbing, bad input, and a short training run."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import hybrax
import hybrax.md as md
from hybrax import hybrid
from hybrax.md import EquivariantPotential

CUTOFF = 3.0


def key(seed: int):
    """A cheap-to-compile PRNG key for network initialisation in tests."""
    return jax.random.key(seed, impl="rbg")


def small_model(seed: int = 0, **kwargs) -> EquivariantPotential:
    options = dict(num_features=8, num_vectors=4, radial_width=16, max_neighbors=12)
    options.update(kwargs)
    return EquivariantPotential(CUTOFF, key=key(seed), dtype=jnp.float64, **options)


def cluster(num: int = 9, seed: int = 1) -> jax.Array:
    """Atoms in free space, no two closer than 1.8 (Angstrom-like), most within the cut-off."""
    rng = np.random.default_rng(seed)
    points = []
    while len(points) < num:
        p = rng.uniform(0.0, 4.5, 3)
        if all(np.linalg.norm(p - q) > 1.8 for q in points):
            points.append(p)
    return jnp.asarray(np.array(points))


def random_orthogonal(seed: int) -> np.ndarray:
    """A random rotation times a reflection (an improper O(3) element)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) < 0 else -q


SPECIES = jnp.asarray(np.arange(9) % 2, jnp.int32)


@pytest.mark.parametrize("l_max", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_invariance_and_equivariance(l_max):
    positions = cluster()
    n = positions.shape[0]
    species = SPECIES
    model = small_model(l_max=l_max, species=species)
    box = md.FreeSpace()
    nbrs = md.neighbor_list(positions, box, cutoff=CUTOFF)
    energy, forces = model.energy_and_forces(positions, nbrs, box)
    virial = model.virial(positions, nbrs, box)
    assert float(jnp.max(jnp.abs(forces))) > 1e-3  # not trivially zero

    rotation = random_orthogonal(l_max)
    perm = np.random.default_rng(3).permutation(n)
    moved = (positions @ rotation.T + jnp.asarray([0.7, -1.3, 2.1]))[perm]
    permuted = eqx.tree_at(lambda m: m.species, model, species[perm])
    nbrs2 = md.neighbor_list(moved, box, cutoff=CUTOFF)
    energy2, forces2 = permuted.energy_and_forces(moved, nbrs2, box)
    np.testing.assert_allclose(energy2, energy, rtol=1e-11)
    np.testing.assert_allclose(forces2, (forces @ rotation.T)[perm], atol=1e-10)
    np.testing.assert_allclose(
        permuted.virial(moved, nbrs2, box), rotation @ virial @ rotation.T, atol=1e-10
    )
    # the species matter: swapping them changes the energy
    swapped = eqx.tree_at(lambda m: m.species, model, 1 - species)
    assert abs(float(swapped.energy_and_forces(positions, nbrs, box)[0] - energy)) > 1e-6


def test_forces_are_minus_grad_and_cutoff_is_smooth():
    # the same sizes as the invariance test: the compiled program is reused
    model = small_model(seed=2, species=SPECIES)
    box = md.FreeSpace()
    positions = cluster(9, seed=4)
    nbrs = md.neighbor_list(positions, box, cutoff=CUTOFF)
    energy_and_forces = lambda p: model.energy_and_forces(p, nbrs, box)  # noqa: E731
    _, forces = energy_and_forces(positions)
    h = 1e-5
    for atom, axis in [(0, 0), (3, 2), (5, 1)]:
        step = jnp.zeros_like(positions).at[atom, axis].set(h)
        numeric = -(energy_and_forces(positions + step)[0] - energy_and_forces(positions - step)[0])
        np.testing.assert_allclose(forces[atom, axis], numeric / (2 * h), rtol=1e-6, atol=1e-8)

    # atom 1 pulled out through the cut-off of its only neighbour (atom 0; the other seven
    # atoms are far away): energy and forces continuous, the same program as above
    far_atoms = [[20.0 * (k + 1), 0.0, 0.0] for k in range(7)]
    at = lambda r: jnp.asarray([[0.0, 0.0, 0.0], [r, 0.0, 0.0], *far_atoms])  # noqa: E731
    far = energy_and_forces(at(CUTOFF + 0.5))
    for r in (CUTOFF - 1e-4, CUTOFF + 1e-4):
        e, f = energy_and_forces(at(r))
        np.testing.assert_allclose(e, far[0], atol=1e-9)
        np.testing.assert_allclose(f, far[1], atol=1e-7)
    # ... and the interaction inside the cut-off is real
    assert abs(float(energy_and_forces(at(2.0))[0] - far[0])) > 1e-4


def test_parameter_gradient_matches_finite_differences():
    model = small_model(seed=5, num_interactions=1)
    box = md.FreeSpace()
    positions = cluster(6, seed=6)
    nbrs = md.neighbor_list(positions, box, cutoff=CUTOFF)
    target = jax.random.normal(jax.random.key(0), positions.shape, jnp.float64)

    def loss(m):  # energy and forces both enter, as in training
        e, f = m.energy_and_forces(positions, nbrs, box)
        return e + jnp.sum(f * target)

    grads = eqx.filter_jit(eqx.filter_grad(loss))(model)
    value = eqx.filter_jit(loss)
    get = lambda m: m.interactions[0].radial.layers[0].weight  # noqa: E731
    h = 1e-6
    for index in [(0, 0), (3, 5)]:
        plus = eqx.tree_at(get, model, get(model).at[index].add(h))
        minus = eqx.tree_at(get, model, get(model).at[index].add(-h))
        numeric = (value(plus) - value(minus)) / (2 * h)
        np.testing.assert_allclose(get(grads)[index], numeric, rtol=1e-6, atol=1e-9)
    assert float(jnp.abs(grads.shift[0])) == pytest.approx(positions.shape[0])


def fcc_frames():
    positions, box = md.lattice("fcc", 2, lattice_constant=3.6, dtype=jnp.float64)
    rng = np.random.default_rng(0)
    frames = box.wrap(positions[None] + jnp.asarray(rng.normal(0, 0.05, (3, *positions.shape))))
    return positions, frames, box


def test_jit_vmap_and_periodic_crystal():
    positions, frames, box = fcc_frames()
    model = small_model(seed=7, max_neighbors=16, num_interactions=1)
    nbrs = md.neighbor_list(frames[0], box, cutoff=CUTOFF)
    batched = jax.vmap(lambda p: model.energy_and_forces(p, nbrs.update(p, box), box))
    energies, forces = eqx.filter_jit(batched)(frames)
    for k in (0, 2):
        e, f = model.energy_and_forces(frames[k], nbrs.update(frames[k], box), box)
        np.testing.assert_allclose(energies[k], e, rtol=1e-12)
        np.testing.assert_allclose(forces[k], f, atol=1e-12)
    # the perfect crystal has no forces and an isotropic virial (same program as above)
    perfect = nbrs.update(positions, box)
    assert float(jnp.max(jnp.abs(model.forces(positions, perfect, box)))) < 1e-10
    w = model.virial(positions, perfect, box)
    np.testing.assert_allclose(w, w[0, 0] * np.eye(3), atol=1e-10)


@pytest.mark.slow
def test_simulate_and_ase_calculator():
    _, frames, box = fcc_frames()
    model = small_model(seed=7, max_neighbors=16)
    nbrs = md.neighbor_list(frames[0], box, cutoff=CUTOFF)
    # a few NVE steps in metal units (amu, Angstrom, eV)
    stepper = md.VelocityVerlet(model, box, dt=0.002, masses=63.546)
    state = stepper.init(frames[0], None, nbrs)
    final, _ = md.simulate(stepper, state, 5, progress=False)
    assert bool(jnp.all(jnp.isfinite(final.positions)))

    ase = pytest.importorskip("ase")
    energy, forces = model.energy_and_forces(frames[1], nbrs.update(frames[1], box), box)
    atoms = ase.Atoms("Cu32", positions=np.asarray(frames[1]), cell=np.asarray(box.lengths))
    atoms.pbc = True
    atoms.calc = md.ase_calculator(model, units="metal")
    np.testing.assert_allclose(atoms.get_potential_energy(), energy, rtol=1e-10)
    np.testing.assert_allclose(atoms.get_forces(), forces, atol=1e-10)
    assert np.all(np.isfinite(atoms.get_stress()[:3]))


def test_training_reduces_force_loss():
    box = md.FreeSpace()
    base = cluster(6, seed=8)
    rng = np.random.default_rng(1)
    frames = base[None] + jnp.asarray(rng.normal(0, 0.1, (4, *base.shape)))
    reference = md.Morse(epsilon=0.3, alpha=1.5, r0=2.5, cutoff=CUTOFF)
    nbrs = md.neighbor_list(base, box, cutoff=CUTOFF + 0.3)
    data = md.label_frames(reference, frames, box, nbrs)
    shift = float(jnp.mean(data.energies)) / 6
    model = small_model(seed=9, num_interactions=1, energy_shift=shift)
    force_loss = md.EnergyForceLoss(box, energy_weight=0.0, force_weight=1.0)
    loss = md.EnergyForceLoss(box, energy_weight=1.0, force_weight=10.0)
    before = float(eqx.filter_jit(force_loss)(model, data))
    result = hybrid.fit(model, loss, data, optax.adam(2e-2), steps=30)
    after = float(eqx.filter_jit(force_loss)(result.model, data))
    assert after < 0.3 * before, (before, after)


def test_bad_input(wrong_type):
    error = hybrax.ConfigurationError
    with pytest.raises(error, match="cutoff"):
        EquivariantPotential(0.0, key=key(0))
    with pytest.raises(error, match="l_max"):
        EquivariantPotential(3.0, key=key(0), l_max=3)
    with pytest.raises(error, match="num_features"):
        EquivariantPotential(3.0, key=key(0), num_features=0)
    with pytest.raises(error, match="max_neighbors"):
        EquivariantPotential(3.0, key=key(0), max_neighbors=0)
    with pytest.raises(error, match="energy_shift"):
        EquivariantPotential(3.0, key=key(0), energy_shift=[0.0, 1.0], num_species=3)
    with pytest.raises(error, match="species"):
        EquivariantPotential(3.0, key=key(0), species=jnp.asarray([0, 2]), num_species=2)
    positions = cluster(4)
    box = md.FreeSpace()
    nbrs = md.neighbor_list(positions, box, cutoff=CUTOFF)
    one_layer = small_model(num_interactions=1)
    three = jnp.asarray([0, 0, 0])
    model = eqx.tree_at(lambda m: m.species, one_layer, three, is_leaf=lambda x: x is None)
    with pytest.raises(error, match="species"):
        model.energy(positions, nbrs, box)
    short = md.neighbor_list(positions, box, cutoff=2.0)
    with pytest.raises(error, match="cutoff"):
        small_model(num_interactions=1).energy(positions, short, box)
    with wrong_type("neighbors", error, "neighbour list"):
        small_model(num_interactions=1).energy(positions, None, box)
    with pytest.raises(error, match="dtype"):
        small_model(num_interactions=1).energy(positions.astype(jnp.float32), nbrs, box)
