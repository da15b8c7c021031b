"""Ewald and particle-mesh Ewald in triclinic cells (md.TriclinicBox)."""

import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
import hybrax.md as md

from .test_ewald import NACL_MADELUNG, ROCK_SALT, crystal

# the primitive (rhombohedral) cell of fcc with a = 2: rock salt with one ion pair,
# nearest-neighbour distance 1
PRIMITIVE = [[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]


def relative_rms(forces, reference):
    return float(jnp.sqrt(jnp.sum((forces - reference) ** 2) / jnp.sum(reference * reference)))


def tilted_ions(num=16, seed=0):
    """Random ions (neutral, no pair closer than 0.8) in a cell tilted in all three planes."""
    box = md.TriclinicBox.from_lammps(4.0, 4.2, 3.8, xy=1.1, xz=-0.7, yz=0.9)
    cell = np.asarray(box.cell)
    rng = np.random.default_rng(seed)
    points = []
    while len(points) < num:
        p = rng.uniform(0.0, 1.0, 3)
        d = [(p - q - np.rint(p - q)) @ cell for q in points]
        if all(np.linalg.norm(x) > 0.8 for x in d):
            points.append(p)
    charges = np.where(np.arange(num) % 2 == 0, 1.0, -1.0) * rng.uniform(0.5, 1.5, num)
    charges -= charges.mean()
    return jnp.asarray(np.asarray(points) @ cell), jnp.asarray(charges), box


def test_madelung_constant_in_the_primitive_rhombohedral_cell():
    box = md.TriclinicBox(PRIMITIVE)
    positions = jnp.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])  # Cl at the body centre
    ewald = md.EwaldCoulomb(jnp.array([1.0, -1.0]), box, accuracy=1e-10)
    madelung = -float(ewald.energy(positions, None, box))  # one ion pair
    assert madelung == pytest.approx(NACL_MADELUNG, abs=1e-8)  # measured error 2.3e-11
    assert ewald.sphere is not None  # a sphere of wave vectors


def test_a_tilted_description_of_a_cubic_crystal_gives_its_energy_and_forces():
    positions, charges, cubic = crystal(*ROCK_SALT, 2, 2.0)
    side = float(cubic.lengths[0])
    # the same lattice spanned by a, b + a, c + b: a sheared cell, the same crystal
    tilted = md.TriclinicBox.from_lammps(side, side, side, xy=side, yz=side)
    rattled = positions + 0.05 * jnp.sin(jnp.arange(positions.size)).reshape(positions.shape)
    reference = md.EwaldCoulomb(charges, cubic, accuracy=1e-8)
    energy, forces = reference.energy_and_forces(cubic.wrap(rattled), None, cubic)
    ewald = md.EwaldCoulomb(charges, tilted, accuracy=1e-8)
    tilted_energy, tilted_forces = ewald.energy_and_forces(tilted.wrap(rattled), None, tilted)
    # measured: energy 1.6e-10 relative, forces 5.7e-9 apart (both sums to accuracy 1e-8)
    assert float(tilted_energy) == pytest.approx(float(energy), rel=1e-8)
    assert np.allclose(tilted_forces, forces, rtol=0, atol=1e-7)


@pytest.fixture(scope="module")
def ions():
    positions, charges, box = tilted_ions()
    exact = md.EwaldCoulomb(charges, box, accuracy=1e-10)
    return positions, charges, box, exact, exact.energy_and_forces(positions, None, box)


@pytest.mark.parametrize("accuracy", [1e-3, 1e-4])
def test_pme_forces_equal_ewald_in_a_triclinic_cell(ions, accuracy):
    positions, charges, box, _, (energy, forces) = ions
    pme = md.ParticleMeshEwald(charges, box, accuracy=accuracy)
    pme_energy, pme_forces = pme.energy_and_forces(positions, None, box)
    assert relative_rms(pme_forces, forces) < accuracy
    assert abs(float(pme_energy - energy)) < accuracy * abs(float(energy))


def test_stress_of_the_coulomb_energy_in_a_triclinic_cell(ions):
    # Coulomb energy is homogeneous of degree -1 in the lengths: trace(stress) = -U / V
    # (pressure U / 3V); the tensor is symmetric (md.stress through the tilted wave vectors)
    positions, charges, box, _, _ = ions
    coulomb = md.EwaldCoulomb(charges, box, accuracy=1e-7)
    energy = float(coulomb.energy(positions, None, box))
    sigma = np.asarray(md.stress(coulomb, positions, box))
    assert float(np.trace(sigma)) == pytest.approx(-energy / float(box.volume), rel=1e-6)
    assert np.allclose(sigma, sigma.T)
    assert np.max(np.abs(sigma - np.diag(np.diag(sigma)))) > 1e-3  # a real shear stress


def test_bad_input():
    _, charges, box = tilted_ions()
    with pytest.raises(hybrax.ConfigurationError, match="k_max applies to orthorhombic"):
        md.EwaldCoulomb(charges, box, k_max=8)
    with pytest.raises(hybrax.ConfigurationError, match="cutoff"):
        md.EwaldCoulomb(charges, box, cutoff=2.5)  # beyond half the narrowest width
