"""Smooth particle-mesh Ewald against the direct Ewald sum."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
import hybrax.md as md

from .test_ewald import NACL_MADELUNG, ROCK_SALT, crystal, random_ions


@pytest.fixture(scope="module")
def ions():
    positions, charges, box = random_ions(num=16, length=4.0)
    exact = md.EwaldCoulomb(charges, box, accuracy=1e-10)
    return positions, charges, box, exact.energy_and_forces(positions, None, box)


def relative_rms(forces, reference):
    return float(jnp.sqrt(jnp.sum((forces - reference) ** 2) / jnp.sum(reference * reference)))


@pytest.mark.parametrize("accuracy", [1e-3, 1e-4])
def test_forces_equal_ewald_to_the_accuracy(ions, accuracy):
    positions, charges, box, (energy, forces) = ions
    pme = md.ParticleMeshEwald(charges, box, accuracy=accuracy)
    pme_energy, pme_forces = pme.energy_and_forces(positions, None, box)
    assert relative_rms(pme_forces, forces) < accuracy
    assert abs(float(pme_energy - energy)) < accuracy * abs(float(energy))
    # virial from the box gradient: U is homogeneous of degree -1, so P = U / 3V
    pressure = md.pressure(pme, positions, box)
    np.testing.assert_allclose(pressure, energy / (3.0 * box.volume), rtol=accuracy)


def test_mesh_error_falls_like_h4(ions):
    positions, charges, box, (energy, _) = ions
    errors = []
    for mesh in (16, 32):
        pme = md.ParticleMeshEwald(charges, box, accuracy=1e-8, mesh=mesh)
        errors.append(abs(float(pme.energy(positions, None, box) - energy)))
    assert errors[0] / errors[1] > 8.0  # cubic B-splines: ~2^4


def test_rock_salt_madelung_constant():
    positions, charges, box = crystal(*ROCK_SALT, 2, 2.0)
    pme = md.ParticleMeshEwald(charges, box, accuracy=1e-4)
    madelung = -2.0 * float(pme.energy(positions, None, box)) / charges.shape[0]
    assert abs(madelung - NACL_MADELUNG) < 1e-4 * NACL_MADELUNG


def test_forces_are_the_gradient_of_the_mesh_energy(ions):
    positions, charges, box, _ = ions
    pme = md.ParticleMeshEwald(charges, box, accuracy=1e-3)
    forces = pme.forces(positions, None, box)
    energy = jax.jit(lambda p: pme.energy(p, None, box))
    h = 1e-5
    for atom, axis in [(0, 0), (5, 2), (11, 1)]:
        numeric = -(
            energy(positions.at[atom, axis].add(h)) - energy(positions.at[atom, axis].add(-h))
        ) / (2 * h)
        np.testing.assert_allclose(forces[atom, axis], numeric, rtol=1e-6, atol=1e-7)


def test_charge_gradient_matches_ewald(ions):
    positions, charges, box, _ = ions
    pme = md.ParticleMeshEwald(charges, box, accuracy=1e-4)
    exact = md.EwaldCoulomb(charges, box, accuracy=1e-10)
    grad_pme = jax.grad(lambda e: e.energy(positions, None, box))(pme).charges
    grad_exact = jax.grad(lambda e: e.energy(positions, None, box))(exact).charges
    np.testing.assert_allclose(grad_pme, grad_exact, atol=1e-3 * float(jnp.max(abs(grad_exact))))


def test_jit_vmap_and_float32(ions):
    positions, charges, box, (_, forces) = ions
    pme = md.ParticleMeshEwald(charges, box, accuracy=1e-3)
    batch = jnp.stack([positions, box.wrap(positions + 0.3)])
    energies = jax.jit(jax.vmap(lambda p: pme.energy(p, None, box)))(batch)
    np.testing.assert_allclose(energies[0], pme.energy(positions, None, box), rtol=1e-12)
    np.testing.assert_allclose(energies[1], energies[0], rtol=1e-3)  # translation, to the mesh
    box32 = md.PeriodicBox(jnp.float32(4.0))
    pme32 = md.ParticleMeshEwald(charges.astype(jnp.float32), box32, accuracy=1e-3)
    forces32 = pme32.forces(positions.astype(jnp.float32), None, box32)
    assert forces32.dtype == jnp.float32
    assert relative_rms(forces32.astype(jnp.float64), forces) < 1e-3


def test_bad_input():
    _, charges, box = crystal(*ROCK_SALT, 1, 2.0)
    with pytest.raises(hybrax.ConfigurationError, match="mesh"):
        md.ParticleMeshEwald(charges, box, mesh=4)
    with pytest.raises(hybrax.ConfigurationError, match=r"sum\(charges\)"):
        md.ParticleMeshEwald(charges.at[0].set(2.0), box)
    with pytest.raises(hybrax.ConfigurationError, match="accuracy"):
        md.ParticleMeshEwald(charges, box, accuracy=-1.0)
    with pytest.raises(hybrax.ConfigurationError, match="cutoff"):
        md.ParticleMeshEwald(charges, box, cutoff=3.0)
