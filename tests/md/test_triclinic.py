"""Triclinic boxes, their neighbour lists and the stress tensor: against ASE's Lennard-Jones
calculator on a sheared fcc cell, against the orthorhombic box on a re-described cell,
against finite differences of the energy under strain (pair and many-body), bad input and
the ASE round trip."""

import ase
import ase.build
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ase.calculators.lj import LennardJones as AseLennardJones

import hybrax
import hybrax.md as md

jax.config.update("jax_enable_x64", True)

SI_SW = (2.1683, 2.0951, 1.80, 21.0, 1.20, -1.0 / 3.0, 7.049556277, 0.6022245584, 4.0, 0.0)


def sheared_fcc(repeat=6, seed=0):
    """A rattled primitive fcc crystal (density 0.8442 in sigma^-3) under a general,
    non-symmetric deformation: a fully triclinic cell."""
    a = (4.0 / 0.8442) ** (1.0 / 3.0)
    atoms = ase.build.bulk("Ar", "fcc", a=a) * (repeat, repeat, repeat)
    deformation = np.asarray([[1.0, 0.04, -0.03], [0.07, 0.98, 0.02], [0.05, -0.06, 1.03]])
    atoms.set_cell(atoms.cell[:] @ deformation, scale_atoms=True)
    atoms.rattle(0.03, seed=seed)
    atoms.wrap()
    return atoms


def redescribed(repeat=4, seed=1):
    """A rattled orthorhombic fcc crystal as a PeriodicBox and as a strongly tilted
    TriclinicBox describing the same periodic system (b' = b + a)."""
    positions, box = md.lattice("fcc", repeat, density=0.8442)
    rng = np.random.default_rng(seed)
    positions = np.asarray(positions, np.float64) + 0.05 * rng.standard_normal(positions.shape)
    box = md.PeriodicBox(jnp.asarray(box.lengths, jnp.float64))
    positions = box.wrap(jnp.asarray(positions))
    side = float(box.lengths[0])
    tilted = md.TriclinicBox([[side, 0, 0], [side, side, 0], [0, 0, side]])
    return positions, box, tilted.wrap(positions), tilted


def strain_derivative(energy_of_box, cell, h=1e-5):
    """``(1/V) dU/d(epsilon)`` for symmetric strains, by central differences."""
    volume = abs(np.linalg.det(cell))
    out = np.zeros((3, 3))
    for a in range(3):
        for b in range(a, 3):
            e = np.zeros((3, 3))
            e[a, b] = e[b, a] = h
            plus = energy_of_box(np.eye(3) + (e if a == b else 0.5 * e))
            minus = energy_of_box(np.eye(3) - (e if a == b else 0.5 * e))
            out[a, b] = out[b, a] = (plus - minus) / (2 * h * volume)
    return out


def test_box_basics_and_bad_cells():
    box = md.TriclinicBox.from_lammps(4.0, 5.0, 6.0, xy=1.0, xz=-0.5, yz=2.0)
    np.testing.assert_allclose(box.volume, 120.0, rtol=1e-14)
    cell = np.asarray(box.cell)
    normals = np.linalg.inv(cell).T  # rows: reciprocal vectors
    np.testing.assert_allclose(
        box.perpendicular_widths, 1 / np.linalg.norm(normals, axis=1), rtol=1e-14
    )
    r = jnp.asarray([[3.9, 4.9, 5.9], [-1.0, 7.0, 0.2]])
    wrapped = box.wrap(r)
    s = np.asarray(box.fractional(wrapped))
    assert np.all((s >= 0) & (s < 1))
    np.testing.assert_allclose(
        box.fractional(wrapped - r), np.rint(s - box.fractional(r)), atol=1e-12
    )
    # the minimum image of a short vector is itself, from any periodic copy
    d = jnp.asarray([0.3, -0.2, 0.4])
    shifted = d + 2 * box.cell[0] - box.cell[1] + 3 * box.cell[2]
    np.testing.assert_allclose(box.displacement(shifted, jnp.zeros(3)), d, atol=1e-12)
    with pytest.raises(hybrax.ConfigurationError, match=r"cell.*det\(cell\) = -"):
        md.TriclinicBox([[0, 1.0, 0], [1.0, 0, 0], [0, 0, 1.0]])  # left-handed
    with pytest.raises(hybrax.ConfigurationError, match=r"cell must be a \(3, 3\)"):
        md.TriclinicBox([1.0, 2.0, 3.0])
    with pytest.raises(hybrax.ConfigurationError, match="TriclinicBox cell"):
        md.TriclinicBox(np.full((3, 3), np.nan))
    with pytest.raises(hybrax.ConfigurationError, match="lz must be positive"):
        md.TriclinicBox.from_lammps(4.0, 5.0, -6.0)


def test_too_small_box_names_the_direction():
    positions = jnp.zeros((2, 3)) + jnp.asarray([[0.1, 0.1, 0.1], [1.0, 1.0, 1.0]])
    thin = md.TriclinicBox.from_lammps(10.0, 10.0, 4.0, xz=3.0)
    with pytest.raises(hybrax.ConfigurationError, match="too small for the cutoff in direction c"):
        md.neighbor_list(positions, thin, cutoff=2.5)
    sheared = md.TriclinicBox([[6.0, 0, 0], [5.0, 6.0, 0], [0, 0, 10.0]])  # width along a ~ 4.6
    with pytest.raises(hybrax.ConfigurationError, match="in direction a"):
        md.DenseNeighborList.build(positions, sheared, cutoff=2.5)
    with pytest.raises(hybrax.ConfigurationError, match="in direction y"):
        md.neighbor_list(positions, md.PeriodicBox(jnp.asarray([10.0, 4.0, 10.0])), cutoff=2.5)
    with pytest.raises(hybrax.ConfigurationError, match="outside the periodic TriclinicBox"):
        md.neighbor_list(positions + 20.0, md.TriclinicBox(10.0 * np.eye(3)), cutoff=2.5)


def test_lennard_jones_matches_ase_on_a_sheared_cell():
    atoms = sheared_fcc()
    cutoff = 2.4
    system = md.from_ase(atoms, units="reduced")
    assert isinstance(system.box, md.TriclinicBox)
    lj = md.LennardJones(cutoff=cutoff)  # shifted: as ASE's LennardJones(smooth=False)
    nbrs = md.neighbor_list(system.positions, system.box, cutoff=cutoff)
    energy, forces = lj.energy_and_forces(system.positions, nbrs, system.box)
    sigma = md.stress(lj, system.positions, system.box, nbrs)

    reference = atoms.copy()
    reference.calc = AseLennardJones(sigma=1.0, epsilon=1.0, rc=cutoff, smooth=False)
    np.testing.assert_allclose(float(energy), reference.get_potential_energy(), rtol=1e-12)
    np.testing.assert_allclose(forces, reference.get_forces(), atol=1e-10)
    voigt = np.asarray(
        [sigma[0, 0], sigma[1, 1], sigma[2, 2], sigma[1, 2], sigma[0, 2], sigma[0, 1]]
    )
    np.testing.assert_allclose(voigt, reference.get_stress(), atol=1e-11)
    assert np.abs(voigt[3:]).max() > 1e-3  # a genuinely sheared stress

    # the same through the ASE calculator (six finite components)
    atoms.calc = md.ase_calculator(lj, units="reduced")
    np.testing.assert_allclose(atoms.get_stress(), reference.get_stress(), atol=1e-11)
    np.testing.assert_allclose(atoms.get_forces(), reference.get_forces(), atol=1e-10)


def test_stress_is_the_strain_derivative():
    atoms = sheared_fcc(seed=3)
    system = md.from_ase(atoms, units="reduced")
    lj = md.LennardJones(cutoff=2.4)
    positions, box = system.positions, system.box
    nbrs = md.DenseNeighborList.build(positions, box, cutoff=2.4)

    energy = jax.jit(lambda p, b: lj.energy(p, nbrs, b))

    def energy_of_box(deformation):
        d = jnp.asarray(deformation)
        return float(energy(positions @ d, md.TriclinicBox(box.cell @ d)))

    numeric = strain_derivative(energy_of_box, np.asarray(box.cell))
    np.testing.assert_allclose(md.stress(lj, positions, box, nbrs), numeric, atol=1e-8)

    # the kinetic part: -sum m v (x) v / V
    velocities = jnp.asarray(np.random.default_rng(0).standard_normal(positions.shape))
    with_kinetic = md.stress(lj, positions, box, nbrs, velocities=velocities, masses=2.0)
    kinetic = 2.0 * np.einsum("na,nb->ab", velocities, velocities) / float(box.volume)
    np.testing.assert_allclose(with_kinetic, numeric - kinetic, atol=1e-8)
    pressure = md.pressure(lj, positions, box, nbrs, velocities=velocities, masses=2.0)
    np.testing.assert_allclose(-np.trace(with_kinetic) / 3, pressure, rtol=1e-10)


def test_many_body_stress_in_a_triclinic_cell():
    """Stillinger-Weber Si in the primitive (triclinic) diamond cell: the stress is the strain
    derivative of the energy (central differences)."""
    atoms = ase.build.bulk("Si", "diamond", a=5.431) * (3, 3, 3)
    deformation = np.asarray([[1.01, 0.02, 0], [0, 0.99, 0.03], [0, 0, 1.0]])
    atoms.set_cell(atoms.cell[:] @ deformation, scale_atoms=True)
    atoms.rattle(0.05, seed=2)
    atoms.wrap()
    system = md.from_ase(atoms, units="metal")
    positions, box = system.positions, system.box
    sw = md.StillingerWeber(*SI_SW)
    nbrs = md.DenseNeighborList.build(positions, box, cutoff=sw.cutoff, skin=0.0)
    sigma = md.stress(sw, positions, box, nbrs)
    assert np.abs(np.asarray(sigma) - np.diag(np.diag(sigma))).max() > 1e-4

    energy = jax.jit(lambda p, b: sw.energy(p, nbrs, b))

    def energy_of_box(deformation):
        d = jnp.asarray(deformation)
        return float(energy(positions @ d, md.TriclinicBox(box.cell @ d)))

    numeric = strain_derivative(energy_of_box, np.asarray(box.cell), h=1e-6)
    np.testing.assert_allclose(sigma, numeric, atol=1e-8)


def test_redescribed_cell_equals_the_orthorhombic_box():
    """A tilted TriclinicBox describing the same periodic system as a PeriodicBox gives the
    same energies, forces, per-atom sums and stress; its cell list equals its dense list."""
    positions, box, tilted_positions, tilted = redescribed()
    cutoff, skin = 1.2, 0.1
    lj = md.LennardJones(cutoff=cutoff)
    ortho = md.CellNeighborList.build(positions, box, cutoff=cutoff, skin=skin)
    cells = md.CellNeighborList.build(tilted_positions, tilted, cutoff=cutoff, skin=skin)
    dense = md.DenseNeighborList.build(tilted_positions, tilted, cutoff=cutoff, skin=skin)
    assert cells.triclinic and min(cells.grid) >= 3 and not ortho.triclinic

    e0, f0 = lj.energy_and_forces(positions, ortho, box)
    s0 = md.stress(lj, positions, box, ortho)
    assert np.abs(np.asarray(s0) - np.diag(np.diag(s0))).max() > 1e-4  # rattled: shear
    e, f = lj.energy_and_forces(tilted_positions, cells, tilted)
    np.testing.assert_allclose(e, e0, rtol=1e-12)
    np.testing.assert_allclose(f, f0, atol=1e-10)
    np.testing.assert_allclose(md.stress(lj, tilted_positions, tilted, cells), s0, atol=1e-12)

    def pair_fn(r2, si, sj):
        return (jnp.sqrt(r2),), (1.0 / r2,)

    (s_ref,), (v_ref,) = dense.pair_sums(tilted_positions, tilted, pair_fn)
    (s,), (v,) = cells.pair_sums(tilted_positions, tilted, pair_fn)
    np.testing.assert_allclose(s, s_ref, rtol=1e-12)
    np.testing.assert_allclose(v, v_ref, atol=1e-10)


@pytest.mark.slow
def test_redescribed_cell_many_body(full_size):
    """Many-body energies read the triclinic cell list (its half table) like the
    orthorhombic one: energy (and, with --runslow, stress) equal on the re-described cell."""
    positions, box, tilted_positions, tilted = redescribed()
    # a Stillinger-Weber form scaled to this density: cut-off 0.6 * 1.8 = 1.08
    sw = md.StillingerWeber(1.0, 0.6, 1.8, 21.0, 1.2, -1.0 / 3.0, 7.05, 0.6, 4.0, 0.0)
    ortho = md.CellNeighborList.build(positions, box, cutoff=1.2, skin=0.1)
    cells = md.CellNeighborList.build(tilted_positions, tilted, cutoff=1.2, skin=0.1)
    np.testing.assert_allclose(
        sw.energy(tilted_positions, cells, tilted), sw.energy(positions, ortho, box), rtol=1e-12
    )
    if not full_size:
        return
    sigma = md.stress(sw, positions, box, ortho)
    assert np.abs(np.asarray(sigma) - np.diag(np.diag(sigma))).max() > 1e-4
    np.testing.assert_allclose(md.stress(sw, tilted_positions, tilted, cells), sigma, atol=1e-12)


def test_cell_list_flags_a_cell_sheared_out_of_reach():
    _, _, tilted_positions, tilted = redescribed()
    cells = md.CellNeighborList.build(tilted_positions, tilted, cutoff=1.2, skin=0.1)
    assert bool(cells.covers(tilted)) and not bool(cells.overflow)
    side = float(tilted.cell[0, 0])
    more = md.TriclinicBox([[side, 0, 0], [1.6 * side, side, 0], [0, 0, side]])
    moved = more.wrap(tilted_positions)
    assert not bool(cells.covers(more))
    updated = jax.jit(lambda n, p, b: n.update(p, b))(cells, moved, more)
    assert bool(updated.overflow)  # never silently wrong ...
    lj = md.LennardJones(cutoff=1.2)
    assert np.isnan(float(lj.energy(moved, updated, more)))
    grown = updated.grow(moved, more)  # ... and grow builds for the new cell
    dense = md.DenseNeighborList.build(moved, more, cutoff=1.2)
    np.testing.assert_allclose(
        lj.energy(moved, grown, more), lj.energy(moved, dense, more), rtol=1e-12
    )


def test_ase_round_trip_of_a_triclinic_cell():
    atoms = ase.build.bulk("Cu", "fcc", a=3.615) * (2, 3, 2)
    atoms.rattle(0.02, seed=4)
    atoms.set_velocities(np.random.default_rng(1).standard_normal((len(atoms), 3)) * 0.01)
    system = md.from_ase(atoms, units="metal")
    assert isinstance(system.box, md.TriclinicBox)
    np.testing.assert_allclose(system.box.cell, atoms.cell[:], rtol=1e-15)
    back = system.to_ase()
    np.testing.assert_allclose(back.cell[:], atoms.cell[:], rtol=1e-15)
    np.testing.assert_allclose(back.positions, atoms.get_positions(wrap=True), atol=1e-12)
    np.testing.assert_allclose(back.get_velocities(), atoms.get_velocities(), rtol=1e-12)
