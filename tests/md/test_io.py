"""Extended XYZ: hybrax writes, ASE and hybrax read back (units stated, exact in float64)."""

import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
import hybrax.md as md

ase_io = pytest.importorskip("ase.io")

ARGON = md.Units.reduced(sigma=3.405, epsilon=0.010325, mass=39.948)


def trajectory_data(positions, box, frames=3, seed=0):
    rng = np.random.default_rng(seed)
    n = positions.shape[0]
    return dict(
        trajectory=jnp.stack([box.wrap(positions + 0.05 * t) for t in range(frames)]),
        velocities=jnp.asarray(rng.normal(0, 1, (frames, n, 3))),
        forces=jnp.asarray(rng.normal(0, 10, (frames, n, 3))),
        energies=jnp.asarray(rng.normal(-600, 5, frames)),
        species=jnp.arange(n, dtype=jnp.int32) % 2,
        masses=jnp.where(jnp.arange(n) % 2 == 0, 1.0, 2.09),
        charges=jnp.where(jnp.arange(n) % 2 == 0, 0.5, -0.5),
    )


def test_extxyz_round_trip_is_exact(tmp_path, fcc108):
    positions, box = fcc108
    data = trajectory_data(positions, box)
    path = tmp_path / "traj.xyz"
    md.write_extxyz(path, box=box, units="reduced", symbols=["Kr", "Ar"], **data)
    system = md.read_extxyz(path)
    assert system.units == md.Units.reduced() and system.symbols == ("Kr", "Ar")
    assert isinstance(system.box, md.PeriodicBox)
    np.testing.assert_array_equal(system.box.lengths, box.lengths)
    for name, value in [
        ("positions", data["trajectory"]), ("velocities", data["velocities"]),
        ("forces", data["forces"]), ("potential_energy", data["energies"]),
        ("species", data["species"]), ("masses", data["masses"]), ("charges", data["charges"]),
    ]:  # fmt: skip
        np.testing.assert_array_equal(getattr(system, name), value, err_msg=name)
    one = md.read_extxyz(path, index=1)
    np.testing.assert_array_equal(one.positions, data["trajectory"][1])


def test_extxyz_reads_in_ase_with_units(tmp_path, fcc108):
    positions, box = fcc108
    data = trajectory_data(positions, box, frames=2)
    path = tmp_path / "argon.xyz"
    md.write_extxyz(path, box=box, units=ARGON, symbols=["Kr", "Ar"], **data)
    frames = ase_io.read(path, ":")
    assert len(frames) == 2
    atoms = frames[1]
    assert atoms.info["units"] == "reduced" and atoms.info["unit_length_A"] == 3.405
    assert atoms.info["unit_energy_eV"] == 0.010325 and atoms.info["unit_mass_amu"] == 39.948
    assert atoms.get_chemical_symbols()[:2] == ["Kr", "Ar"] and all(atoms.pbc)
    np.testing.assert_allclose(atoms.cell.lengths(), np.asarray(box.lengths) * 3.405, rtol=1e-15)
    np.testing.assert_allclose(atoms.positions, data["trajectory"][1] * 3.405, rtol=1e-15)
    np.testing.assert_allclose(atoms.get_masses(), data["masses"] * 39.948, rtol=1e-15)
    velocity = (0.010325 / 39.948) ** 0.5  # sigma / tau in Å per ASE time unit
    np.testing.assert_allclose(atoms.get_velocities(), data["velocities"][1] * velocity, 1e-14)
    np.testing.assert_allclose(atoms.get_forces(), data["forces"][1] * 0.010325 / 3.405, rtol=1e-15)
    assert atoms.get_potential_energy() == pytest.approx(
        float(data["energies"][1]) * 0.010325, rel=1e-14
    )
    np.testing.assert_allclose(atoms.get_initial_charges(), data["charges"], rtol=1e-15)
    back = md.read_extxyz(path)  # the file's own units
    assert back.units == ARGON
    np.testing.assert_allclose(back.positions, data["trajectory"], rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(back.velocities, data["velocities"], rtol=1e-14)
    with pytest.raises(hybrax.ConfigurationError, match=r"labelled.*never mixed"):
        md.read_extxyz(path, units="reduced")


def test_extxyz_free_space_and_positions_only(tmp_path):
    positions = jnp.array([[0.0, 0.0, 0.0], [1.12, 0.0, 0.0], [0.5, 0.9, -0.3]])
    path = tmp_path / "cluster.xyz"
    md.write_extxyz(path, positions, md.FreeSpace(), units="metal", symbols="Cu")
    atoms = ase_io.read(path)
    assert not any(atoms.pbc) and atoms.info["units"] == "metal"
    system = md.read_extxyz(path, index=0)
    assert isinstance(system.box, md.FreeSpace) and system.forces is None
    np.testing.assert_array_equal(system.positions, positions)
    np.testing.assert_array_equal(system.velocities, 0.0)


def test_extxyz_never_overwrites(tmp_path, fcc108):
    positions, box = fcc108
    path = tmp_path / "frame.xyz"
    md.write_extxyz(path, positions, box, units="reduced")
    with pytest.raises(hybrax.OverwriteError, match=r"frame\.xyz"):
        md.write_extxyz(path, positions, box, units="reduced")
    md.write_extxyz(path, box.wrap(positions + 0.5), box, units="reduced", overwrite=True)
    np.testing.assert_array_equal(
        md.read_extxyz(path, index=0).positions, box.wrap(positions + 0.5)
    )


def test_extxyz_from_elsewhere_needs_units(tmp_path):
    import ase.build

    atoms = ase.build.bulk("Cu", "fcc", a=3.615, cubic=True)
    path = str(tmp_path / "ase.xyz")
    ase_io.write(path, atoms, format="extxyz")
    with pytest.raises(hybrax.ConfigurationError, match="no units label"):
        md.read_extxyz(path)
    system = md.read_extxyz(path, units="metal", index=0)
    np.testing.assert_allclose(system.box.lengths, 3.615)
    two = [atoms, atoms.repeat((1, 1, 2))]
    ase_io.write(str(tmp_path / "two.xyz"), two, format="extxyz")
    with pytest.raises(hybrax.ConfigurationError, match="cannot be stacked"):
        md.read_extxyz(tmp_path / "two.xyz", units="metal")


def test_io_bad_input(tmp_path, fcc108, wrong_type):
    positions, box = fcc108
    path = tmp_path / "bad.xyz"
    with pytest.raises(hybrax.ConfigurationError, match="energies"):
        md.write_extxyz(path, positions, box, units="reduced", energies=[1.0, 2.0])
    with wrong_type("velocities", hybrax.ConfigurationError, "velocities must have"):
        md.write_extxyz(path, positions, box, units="reduced", velocities=positions[:3])
    with pytest.raises(hybrax.ConfigurationError, match="units must be"):
        md.write_extxyz(path, positions, box, units="angstrom")
    with wrong_type("trajectory", hybrax.ConfigurationError, "trajectory must have"):
        md.write_extxyz(path, positions[:, :2], box, units="reduced")
    assert not path.exists()  # nothing half-written
