"""ASE both ways: Atoms in (`from_ase`), out (`to_ase`), any energy as an ASE calculator."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
import hybrax.md as md

pytest.importorskip("ase")
import ase
import ase.build
import ase.md.verlet
import ase.optimize
from ase.calculators.calculator import PropertyNotImplementedError
from ase.filters import FrechetCellFilter

ARGON = md.Units.reduced(sigma=3.405, epsilon=0.010325, mass=39.948)
LJ13_MINIMUM = -44.326801  # Wales & Doye (1997), the LJ13 icosahedron in reduced units


def icosahedron13(noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """A centred 13-atom icosahedron (nearest neighbours near 2^(1/6)), optionally
    perturbed."""
    phi = (1 + 5**0.5) / 2
    vertices = []
    for a in (-1.0, 1.0):
        for b in (-phi, phi):
            vertices += [(0.0, a, b), (a, b, 0.0), (b, 0.0, a)]
    vertices = np.array(vertices) / np.linalg.norm([1.0, phi]) * 1.09
    positions = np.vstack([np.zeros(3), vertices])
    return positions + np.random.default_rng(seed).normal(0.0, noise, positions.shape)


def lj_cluster_calculator(units="reduced"):
    return md.ase_calculator(md.LennardJones(cutoff=10.0, shift=False), units=units)


# ---------------------------------------------------------------------------- units
def test_units_scales_and_bad_input():
    metal = md.Units.metal()
    assert metal.is_identity and metal.velocity == 1.0
    assert metal.time_fs == pytest.approx(1.0 / ase.units.fs, rel=1e-12)  # ASE's time unit
    assert ARGON.time_fs == pytest.approx(3.405 * (39.948 / 0.010325) ** 0.5 / ase.units.fs)
    assert ARGON.temperature_K == pytest.approx(0.010325 / ase.units.kB, rel=1e-12)
    with pytest.raises(hybrax.ConfigurationError, match="units must be 'metal'"):
        md.from_ase(ase.Atoms("Ar"), units="lj")
    with pytest.raises(hybrax.ConfigurationError, match="metal units are"):
        md.Units("metal", length=2.0)
    with pytest.raises(hybrax.ConfigurationError, match="Units length"):
        md.Units.reduced(sigma=-1.0)
    with pytest.raises(hybrax.ConfigurationError, match="name must be one of"):
        md.Units("real")


# ---------------------------------------------------------------------------- Atoms in
def test_from_ase_metal_copper():
    atoms = ase.build.bulk("Cu", "fcc", a=3.615, cubic=True).repeat(2)
    atoms.symbols[3] = "Ag"
    atoms.set_initial_charges(np.linspace(-1, 1, len(atoms)))
    rng = np.random.default_rng(0)
    atoms.set_velocities(rng.normal(0.0, 0.05, (len(atoms), 3)))
    atoms.positions[0] -= 0.5  # outside the cell: wrapped
    system = md.from_ase(atoms, units="metal", symbols=["Ag", "Cu"])
    assert system.symbols == ("Ag", "Cu")
    np.testing.assert_array_equal(system.species, [1, 1, 1, 0] + [1] * 28)
    np.testing.assert_array_equal(system.box.lengths, [7.23] * 3)
    assert isinstance(system.box, md.PeriodicBox)
    np.testing.assert_array_equal(system.masses, atoms.get_masses())
    np.testing.assert_array_equal(system.velocities, atoms.get_velocities())
    np.testing.assert_array_equal(system.charges, atoms.get_initial_charges())
    np.testing.assert_allclose(system.positions[0], atoms.positions[0] + 7.23, atol=1e-14)
    assert np.all((system.positions >= 0) & (system.positions < 7.23))
    assert system.positions.dtype == jnp.float64 and system.forces is None
    with pytest.raises(hybrax.ConfigurationError, match="does not list"):
        md.from_ase(atoms, units="metal", symbols=["Cu"])
    assert md.from_ase(atoms, units="metal", dtype=jnp.float32).positions.dtype == jnp.float32


def test_from_ase_converts_to_reduced_units():
    atoms = ase.Atoms("Ar2", positions=[[0, 0, 0], [3.8, 0, 0]], pbc=False)
    atoms.set_velocities([[1e-3, 0, 0], [0, 2e-3, 0]])
    system = md.from_ase(atoms, units=ARGON)
    assert isinstance(system.box, md.FreeSpace)
    np.testing.assert_allclose(system.positions[1, 0], 3.8 / 3.405, rtol=1e-15)
    np.testing.assert_allclose(system.masses, 1.0, rtol=1e-15)
    # v (Å per ASE time) -> sigma / tau: times tau / sigma = sqrt(m / epsilon)
    np.testing.assert_allclose(
        system.velocities[1, 1], 2e-3 * (39.948 / 0.010325) ** 0.5, rtol=1e-14
    )


def test_from_ase_rejects_unsupported_cells():
    left_handed = ase.build.bulk("Cu", "fcc", a=3.615)  # primitive cell, rows b, a, c
    left_handed.set_cell(left_handed.cell[[1, 0, 2]])
    with pytest.raises(hybrax.ConfigurationError, match=r"right-handed.*det\(cell\) > 0"):
        md.from_ase(left_handed, units="metal")
    slab = ase.build.bulk("Cu", "fcc", a=3.615, cubic=True)
    slab.pbc = (True, True, False)
    with pytest.raises(hybrax.ConfigurationError, match="mixed periodicity"):
        md.from_ase(slab, units="metal")
    with pytest.raises(hybrax.ConfigurationError, match="positive side lengths"):
        md.from_ase(ase.Atoms("Ar", pbc=True), units="metal")
    with pytest.raises(hybrax.ConfigurationError, match="no units label"):
        md.from_ase(ase.Atoms("Ar"), units=None)


@pytest.mark.parametrize("units", ["metal", ARGON])
def test_ase_round_trip(units, fcc108):
    positions, box = fcc108
    n = positions.shape[0]
    rng = np.random.default_rng(1)
    velocities = jnp.asarray(rng.normal(0, 1, (n, 3)))
    forces = jnp.asarray(rng.normal(0, 1, (n, 3)))
    species = jnp.arange(n, dtype=jnp.int32) % 2
    charges = jnp.where(species == 0, 1.0, -1.0)
    masses = jnp.where(species == 0, 1.0, 2.5)
    atoms = md.to_ase(
        positions, box, units=units, symbols=["Kr", "Ar"], species=species,
        velocities=velocities, masses=masses, charges=charges, forces=forces, energy=-3.25,
    )  # fmt: skip
    assert atoms.get_chemical_symbols()[:2] == ["Kr", "Ar"] and all(atoms.pbc)
    scale = md.Units.metal() if units == "metal" else units
    assert atoms.get_potential_energy() == pytest.approx(-3.25 * scale.energy, rel=1e-15)
    np.testing.assert_allclose(atoms.get_forces(), np.asarray(forces) * scale.force, rtol=1e-15)
    back = md.from_ase(atoms, units=units)
    assert back.symbols == ("Kr", "Ar") and back.units == scale
    # exact, except velocities through ASE's momenta (p / m) and scaled units: round-off
    exact = dict(rtol=0, atol=0) if units == "metal" else dict(rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(back.velocities, velocities, rtol=1e-15, atol=1e-15)
    for name, value in [
        ("positions", positions), ("masses", masses),
        ("charges", charges), ("species", species), ("forces", forces),
    ]:  # fmt: skip
        np.testing.assert_allclose(getattr(back, name), value, **exact, err_msg=name)
    np.testing.assert_allclose(back.box.lengths, box.lengths, **exact)
    assert float(back.potential_energy) == pytest.approx(-3.25, rel=1e-15)
    with pytest.raises(hybrax.ConfigurationError, match="labelled"):
        md.from_ase(atoms, units="reduced" if units == "metal" else "metal")
    again = back.to_ase()
    np.testing.assert_array_equal(again.positions, atoms.positions)


def test_to_ase_state_and_bad_input(fcc108):
    positions, box = fcc108
    forces = jnp.asarray(np.random.default_rng(2).normal(0.0, 1.0, positions.shape))
    state = md.MDState(positions, jnp.zeros_like(positions), forces, -612.5)
    atoms = md.to_ase(state, box, units="reduced")
    np.testing.assert_array_equal(atoms.get_forces(), state.forces)
    assert atoms.get_potential_energy() == float(state.potential_energy)
    with pytest.raises(hybrax.ConfigurationError, match="MDState brings its own"):
        md.to_ase(state, box, units="reduced", energy=1.0)
    with pytest.raises(hybrax.ConfigurationError, match="units must be"):
        md.to_ase(positions, box, units="lj")
    with pytest.raises(hybrax.ConfigurationError, match="symbols"):
        md.to_ase(positions, box, units="reduced", symbols=["Ar"] * 3)
    with pytest.raises(hybrax.ConfigurationError, match="index symbols"):
        md.to_ase(positions, box, units="reduced", symbols=["Ar"], species=jnp.ones(108, int))
    with pytest.raises(hybrax.ConfigurationError, match="masses must have shape"):
        md.to_ase(positions, box, units="reduced", masses=jnp.ones(3))
    free = md.to_ase(positions[:3], md.FreeSpace(), units="reduced")
    assert not any(free.pbc)


# ---------------------------------------------------------------------------- calculator
def lj_and_bonds():
    return md.LennardJones(cutoff=1.5) + md.HarmonicBonds(jnp.array([[0, 1], [2, 3]]), 1.0, 1.2)


def compressed_fcc32(noise: float = 0.03):
    """32 atoms of fcc at density 1.1 (box 3.07 sigma: cut-off 1.5), optionally perturbed;
    the forces, stress and cell-relaxation tests share it (and its compiled calculator)."""
    positions, box = md.lattice("fcc", 2, density=1.1, dtype=jnp.float64)
    shift = np.random.default_rng(0).normal(0.0, noise, positions.shape)
    return box.wrap(positions + jnp.asarray(shift)), box


def test_calculator_forces_are_minus_gradient():
    """Forces equal -dE/dx by ASE's own central differences of the calculator's energy,
    and the argon-unit calculator is the reduced one scaled by epsilon and sigma."""
    from ase.calculators.fd import calculate_numerical_forces

    positions, box = compressed_fcc32()
    energy = lj_and_bonds()
    reduced = md.to_ase(positions, box, units="reduced")
    reduced.calc = md.ase_calculator(energy, units="reduced")
    numeric = calculate_numerical_forces(reduced, eps=1e-5, iatoms=[0, 1, 2, 20])
    np.testing.assert_allclose(reduced.get_forces()[[0, 1, 2, 20]], numeric, rtol=1e-7, atol=1e-8)
    argon = md.to_ase(positions, box, units=ARGON)
    argon.calc = md.ase_calculator(energy, units=ARGON)
    assert argon.get_potential_energy() == pytest.approx(
        reduced.get_potential_energy() * 0.010325, rel=1e-13
    )
    np.testing.assert_allclose(
        argon.get_forces(), reduced.get_forces() * 0.010325 / 3.405, rtol=1e-12, atol=1e-15
    )


def test_calculator_normal_stress_is_box_derivative():
    positions, box = compressed_fcc32()
    atoms = md.to_ase(positions, box, units="reduced")
    atoms.calc = md.ase_calculator(lj_and_bonds(), units="reduced")
    stress = atoms.get_stress()
    assert np.all(np.isfinite(stress))  # shear too (test_triclinic checks its values)
    volume, h = atoms.get_volume(), 1e-6
    for axis in range(3):  # sigma_aa = (1/V) dE/d(strain_aa), by central differences
        energies = []
        for sign in (1, -1):
            strained = atoms.copy()
            strain = np.eye(3)
            strain[axis, axis] += sign * h
            strained.set_cell(atoms.cell[:] @ strain, scale_atoms=True)
            strained.calc = atoms.calc
            energies.append(strained.get_potential_energy())
        numeric = (energies[0] - energies[1]) / (2 * h * volume)
        assert stress[axis] == pytest.approx(numeric, rel=1e-6)
    cluster = ase.Atoms("Ar2", positions=[[0, 0, 0], [1.2, 0, 0]])
    cluster.calc = lj_cluster_calculator()
    with pytest.raises(PropertyNotImplementedError, match="periodic"):
        cluster.get_stress()


def test_bfgs_relaxes_lj13_to_the_icosahedron():
    atoms = ase.Atoms("Ar13", positions=icosahedron13(noise=0.05))
    atoms.calc = lj_cluster_calculator()
    assert ase.optimize.BFGS(atoms, logfile=None).run(fmax=1e-6, steps=300)
    assert atoms.get_potential_energy() == pytest.approx(LJ13_MINIMUM, abs=1e-6)


def test_ase_verlet_matches_hybrax_verlet():
    """ASE's velocity Verlet with the hybrax calculator takes the same steps as hybrax's
    own (reduced units with unit scales: the ASE time unit is tau)."""
    positions = jnp.asarray(icosahedron13(noise=0.02, seed=3))
    velocities = jax.random.normal(jax.random.key(0), positions.shape, jnp.float64) * 0.3
    atoms = md.to_ase(positions, md.FreeSpace(), units="reduced", velocities=velocities)
    atoms.calc = lj_cluster_calculator()
    dt, steps = 0.004, 20
    ase.md.verlet.VelocityVerlet(atoms, timestep=dt, logfile=None).run(steps)
    energy = md.LennardJones(cutoff=10.0, shift=False)
    stepper = md.VelocityVerlet(energy, md.FreeSpace(), dt=dt)
    nbrs = md.neighbor_list(positions, md.FreeSpace(), cutoff=10.0)
    state = stepper.init(positions, velocities, nbrs)
    step = jax.jit(lambda s: stepper.step(s))
    for _ in range(steps):
        state = step(state)
    np.testing.assert_allclose(atoms.positions, state.positions, atol=1e-11)
    np.testing.assert_allclose(atoms.get_velocities(), state.velocities, atol=1e-10)


def test_hydrostatic_cell_relaxation_reaches_zero_pressure():
    """A compressed LJ crystal relaxed with ASE's hydrostatic cell filter: the calculator
    regrows its neighbour list as the cell changes and the pressure goes to zero."""
    positions, box = compressed_fcc32(noise=0.0)
    atoms = md.to_ase(positions, box, units="reduced")
    atoms.calc = md.ase_calculator(lj_and_bonds(), units="reduced")
    assert -atoms.get_stress()[:3].mean() > 1.0  # compressed
    filtered = FrechetCellFilter(atoms, hydrostatic_strain=True)
    assert ase.optimize.BFGS(filtered, logfile=None).run(fmax=1e-5, steps=100)
    assert abs(atoms.get_stress()[:3].mean()) < 1e-5
    assert len(atoms) / atoms.get_volume() < 1.1
    assert np.allclose(atoms.cell[:], np.diag(np.diag(atoms.cell[:])))  # still cubic


def test_calculator_bad_input(wrong_type):
    with wrong_type("energy", hybrax.ConfigurationError, r"energy must be a hybrax\.md energy"):
        md.ase_calculator(lambda x: x, units="reduced")
    with wrong_type("units", hybrax.ConfigurationError, "units must be"):
        md.ase_calculator(md.LennardJones(), units=None)
    atoms = ase.Atoms("Ar2", positions=[[0, 0, 0], [0, 0, 0]])
    atoms.calc = lj_cluster_calculator()
    with pytest.raises(hybrax.NonFiniteStateError, match="overlapping"):
        atoms.get_potential_energy()


def test_rock_salt_from_ase_in_metal_units():
    """NaCl built by ASE (Å, charges in e) through `from_ase` into an Ewald energy in
    metal units: the calculator's energy is the Madelung energy in eV."""
    atoms = ase.build.bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    atoms.set_initial_charges([1.0 if s == "Na" else -1.0 for s in atoms.symbols])
    system = md.from_ase(atoms, units="metal")
    coulomb = md.EwaldCoulomb(
        system.charges, system.box, accuracy=1e-6, coulomb_constant=md.METAL_COULOMB_CONSTANT
    )
    atoms.calc = md.ase_calculator(coulomb, units="metal")
    madelung = -1.7475645946 * md.METAL_COULOMB_CONSTANT / (5.64 / 2)  # eV per ion pair
    assert atoms.get_potential_energy() == pytest.approx(4 * madelung, rel=1e-6)
    np.testing.assert_allclose(atoms.get_forces(), 0.0, atol=1e-6)  # a perfect crystal
