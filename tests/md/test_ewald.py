"""Ewald summation: Madelung constants, invariances, derivatives, transforms, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
import hybrax.md as md

NACL_MADELUNG = 1.747564594633182  # per ion pair, nearest-neighbour distance 1
CSCL_MADELUNG = 1.762674773070  # nearest-neighbour distance sqrt(3)/2 a


def crystal(basis, basis_charges, cells, lattice_constant, dtype=jnp.float64):
    """A cubic crystal: ``cells^3`` conventional cells of ``basis`` (fractions)."""
    grid = np.stack(np.meshgrid(*[np.arange(cells)] * 3, indexing="ij"), -1).reshape(-1, 3)
    fractions = np.mod((grid[:, None, :] + np.asarray(basis, float)[None]).reshape(-1, 3), cells)
    positions = jnp.asarray(fractions * lattice_constant, dtype)
    charges = jnp.asarray(np.tile(basis_charges, len(grid)), dtype)
    return positions, charges, md.PeriodicBox(jnp.asarray(cells * lattice_constant, dtype))


FCC = [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]
ROCK_SALT = (FCC + [[x + 0.5, y, z] for x, y, z in FCC], [1.0] * 4 + [-1.0] * 4)
CESIUM_CHLORIDE = ([[0, 0, 0], [0.5, 0.5, 0.5]], [1.0, -1.0])


def madelung(energy, positions, charges, box, nearest):
    return float(-2.0 * energy.energy(positions, None, box) * nearest / charges.shape[0])


def random_ions(num=16, length=4.0, seed=0, dtype=jnp.float64):
    rng = np.random.default_rng(seed)
    points = []
    while len(points) < num:
        p = rng.uniform(0.0, length, 3)
        if all(np.linalg.norm(p - q - length * np.rint((p - q) / length)) > 0.8 for q in points):
            points.append(p)
    charges = np.where(np.arange(num) % 2 == 0, 1.0, -1.0) * rng.uniform(0.5, 1.5, num)
    charges -= charges.mean()
    box = md.PeriodicBox(jnp.asarray(length, dtype))
    return jnp.asarray(np.array(points), dtype), jnp.asarray(charges, dtype), box


@pytest.mark.parametrize("cells", [1, 2])
def test_rock_salt_madelung_constant(cells):
    positions, charges, box = crystal(*ROCK_SALT, cells, 2.0)
    coulomb = md.EwaldCoulomb(charges, box, accuracy=1e-8)
    assert abs(madelung(coulomb, positions, charges, box, 1.0) - NACL_MADELUNG) < 1e-8


@pytest.mark.parametrize("cutoff", [1.5, 2.0])
def test_rock_salt_madelung_independent_of_cutoff_and_alpha(cutoff):
    positions, charges, box = crystal(*ROCK_SALT, 2, 2.0)
    coulomb = md.EwaldCoulomb(charges, box, accuracy=1e-8, cutoff=cutoff)
    assert abs(madelung(coulomb, positions, charges, box, 1.0) - NACL_MADELUNG) < 1e-8
    # a different alpha (more k-vectors) gives the same energy within the accuracy
    tighter = md.EwaldCoulomb(charges, box, cutoff=cutoff, alpha=coulomb.alpha * 1.1, k_max=20)
    assert abs(madelung(tighter, positions, charges, box, 1.0) - NACL_MADELUNG) < 1e-8


def test_cesium_chloride_madelung_constant():
    positions, charges, box = crystal(*CESIUM_CHLORIDE, 2, 1.0)
    coulomb = md.EwaldCoulomb(charges, box, accuracy=1e-8)
    nearest = np.sqrt(3.0) / 2.0
    assert abs(madelung(coulomb, positions, charges, box, nearest) - CSCL_MADELUNG) < 1e-8


def test_metal_units_scale_the_energy():
    positions, charges, box = crystal(*ROCK_SALT, 1, 2.0)
    reduced = md.EwaldCoulomb(charges, box)
    metal = md.EwaldCoulomb(charges, box, coulomb_constant=md.METAL_COULOMB_CONSTANT)
    np.testing.assert_allclose(
        metal.energy(positions, None, box),
        14.399645 * reduced.energy(positions, None, box),
        rtol=1e-12,
    )


def test_energy_invariant_under_translation():
    positions, charges, box = random_ions()
    coulomb = md.EwaldCoulomb(charges, box, accuracy=1e-10)
    reference = coulomb.energy(positions, None, box)
    for shift in ([0.37, -1.2, 2.9], [3.9, 3.9, 0.01]):
        moved = box.wrap(positions + jnp.asarray(shift))
        np.testing.assert_allclose(coulomb.energy(moved, None, box), reference, rtol=1e-9)


def test_forces_match_central_differences():
    positions, charges, box = random_ions()
    coulomb = md.EwaldCoulomb(charges, box, accuracy=1e-10)
    forces = coulomb.forces(positions, None, box)
    np.testing.assert_allclose(jnp.sum(forces, axis=0), 0.0, atol=1e-9)
    energy = jax.jit(lambda p: coulomb.energy(p, None, box))
    h = 1e-5
    for atom, axis in [(0, 0), (3, 1), (7, 2), (12, 0)]:
        up = energy(positions.at[atom, axis].add(h))
        down = energy(positions.at[atom, axis].add(-h))
        numeric = -(up - down) / (2 * h)
        np.testing.assert_allclose(forces[atom, axis], numeric, rtol=1e-6, atol=1e-7)


def test_gradient_with_respect_to_charges_matches_finite_differences():
    positions, charges, box = random_ions()
    coulomb = md.EwaldCoulomb(charges, box, accuracy=1e-10)
    grads = jax.grad(lambda e: e.energy(positions, None, box))(coulomb)
    # along a neutral direction (charge moved from atom 1 to atom 4): the system stays valid
    direction = jnp.zeros_like(charges).at[4].set(1.0).at[1].set(-1.0)
    h = 1e-5

    def at(q):
        return md.EwaldCoulomb(q, box, accuracy=1e-10).energy(positions, None, box)

    numeric = (at(charges + h * direction) - at(charges - h * direction)) / (2 * h)
    np.testing.assert_allclose(jnp.dot(grads.charges, direction), numeric, rtol=1e-7)
    # the energy is linear in the Coulomb constant
    np.testing.assert_allclose(
        grads.coulomb_constant, coulomb.energy(positions, None, box), rtol=1e-12
    )


def test_virial_pressure_of_coulomb_crystal():
    # U is homogeneous of degree -1 in the lengths, so the virial is W = U, P = U / 3V
    # (the truncation errors of the derivative are ~x^2 ~ 20 times those of the energy)
    positions, charges, box = crystal(*ROCK_SALT, 1, 2.0)
    coulomb = md.EwaldCoulomb(charges, box, accuracy=1e-10)
    energy = coulomb.energy(positions, None, box)
    np.testing.assert_allclose(
        md.pressure(coulomb, positions, box), energy / (3.0 * box.volume), rtol=1e-8
    )


def test_jit_and_vmap_over_configurations():
    positions, charges, box = random_ions(num=8, length=3.0)
    coulomb = md.EwaldCoulomb(charges, box, accuracy=1e-6)
    rng = np.random.default_rng(2)
    batch = box.wrap(positions[None] + jnp.asarray(rng.normal(0, 0.05, (3, 8, 3))))
    energies, forces = jax.jit(jax.vmap(lambda p: coulomb.energy_and_forces(p, None, box)))(batch)
    for b in range(3):
        np.testing.assert_allclose(energies[b], coulomb.energy(batch[b], None, box), rtol=1e-10)
        np.testing.assert_allclose(
            forces[b], coulomb.forces(batch[b], None, box), rtol=1e-9, atol=1e-11
        )


def test_float32_rock_salt():
    positions, charges, box = crystal(*ROCK_SALT, 1, 2.0, dtype=jnp.float32)
    coulomb = md.EwaldCoulomb(charges, box, accuracy=1e-6)
    energy, forces = coulomb.energy_and_forces(positions, None, box)
    assert energy.dtype == jnp.float32 and forces.dtype == jnp.float32
    assert abs(-2.0 * float(energy) / 8 - NACL_MADELUNG) < 2e-5
    # every ion of a perfect crystal sits at a force-free point
    np.testing.assert_allclose(forces, 0.0, atol=1e-4)


def test_nve_with_short_range_repulsion_conserves_energy():
    # Coulomb + soft-sphere repulsion (neighbour list only for the short-range term)
    positions, charges, box = random_ions(num=16, length=4.0)
    total = md.EwaldCoulomb(charges, box, accuracy=1e-6) + md.SoftSphere(epsilon=50.0)
    assert total.required_cutoff == 1.0
    neighbors = md.neighbor_list(positions, box, cutoff=1.0, skin=0.3)
    stepper = md.VelocityVerlet(total, box, dt=0.002)
    velocities = jnp.asarray(np.random.default_rng(0).normal(0, 0.2, (16, 3)))
    state = stepper.init(positions, velocities - velocities.mean(axis=0), neighbors)
    final, energies = md.simulate(
        stepper, state, 200, chunk_size=200, save_every=20, observe=md.total_energy, progress=False
    )
    assert np.all(np.isfinite(final.positions))
    np.testing.assert_allclose(energies, energies[0], rtol=1e-4)
    np.testing.assert_allclose(md.momentum(final.velocities), 0.0, atol=1e-9)


def test_parameters_follow_the_accuracy():
    box = md.PeriodicBox(4.0)
    loose = md.ewald_parameters(box, 64, accuracy=1e-4)
    tight = md.ewald_parameters(box, 64, accuracy=1e-10)
    assert loose[1] == tight[1] == 2.0  # cut-off: half the box
    assert tight[0] > loose[0] and all(t > s for t, s in zip(tight[2], loose[2], strict=True))


def test_net_charge_is_an_error():
    _, charges, box = crystal(*ROCK_SALT, 1, 2.0)
    with pytest.raises(hybrax.ConfigurationError, match=r"charges.*sum\(charges\) = 0\.5"):
        md.EwaldCoulomb(charges.at[0].add(0.5), box)


@pytest.mark.parametrize("accuracy", [-1e-8, 0.0, 1.0, float("nan")])
def test_bad_accuracy_is_an_error(accuracy):
    _, charges, box = crystal(*ROCK_SALT, 1, 2.0)
    with pytest.raises(hybrax.ConfigurationError, match="accuracy"):
        md.EwaldCoulomb(charges, box, accuracy=accuracy)


def test_box_too_small_for_the_cutoff_is_an_error():
    positions, charges, box = crystal(*ROCK_SALT, 1, 2.0)
    with pytest.raises(hybrax.ConfigurationError, match=r"cutoff=1\.5.*too small"):
        md.EwaldCoulomb(charges, box, cutoff=1.5)
    coulomb = md.EwaldCoulomb(charges, md.PeriodicBox(4.0), cutoff=1.5)
    with pytest.raises(hybrax.ConfigurationError, match="cutoff"):
        coulomb.energy(positions, None, box)


def test_other_bad_inputs(wrong_type):
    positions, charges, box = crystal(*ROCK_SALT, 1, 2.0)
    with wrong_type("box", hybrax.ConfigurationError, "PeriodicBox"):
        md.EwaldCoulomb(charges, md.FreeSpace())
    with pytest.raises(hybrax.ConfigurationError, match="charges"):
        md.EwaldCoulomb(charges[:, None], box)
    with pytest.raises(hybrax.ConfigurationError, match="charges"):
        md.EwaldCoulomb(charges.at[0].set(jnp.nan), box)
    with pytest.raises(hybrax.ConfigurationError, match="k_max"):
        md.EwaldCoulomb(charges, box, k_max=0)
    with pytest.raises(hybrax.ConfigurationError, match="alpha"):
        md.EwaldCoulomb(charges, box, alpha=-1.0)
    with pytest.raises(hybrax.ConfigurationError, match="coulomb_constant"):
        md.EwaldCoulomb(charges, box, coulomb_constant=0.0)
    coulomb = md.EwaldCoulomb(charges, box)
    with pytest.raises(hybrax.ConfigurationError, match="positions"):
        coulomb.energy(positions[:4], None, box)
