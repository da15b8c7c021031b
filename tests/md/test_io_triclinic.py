"""Extended XYZ with a triclinic cell: Lattice holds the nine numbers, reads back exactly."""

import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
import hybrax.md as md

ase_io = pytest.importorskip("ase.io")


def test_triclinic_extxyz_round_trip_is_exact(tmp_path):
    box = md.TriclinicBox.from_lammps(5.1, 4.7, 5.3, xy=1.3, xz=-0.6, yz=0.9)
    rng = np.random.default_rng(0)
    frames = jnp.asarray(rng.uniform(0.0, 1.0, (2, 20, 3)) @ np.asarray(box.cell))
    velocities = jnp.asarray(rng.normal(0.0, 1.0, (2, 20, 3)))
    path = tmp_path / "tilted.xyz"
    md.write_extxyz(path, frames, box, units="metal", velocities=velocities, energies=[-1.0, -2.0])
    atoms = ase_io.read(path, index=0)  # ASE sees the cell, rows a, b, c
    np.testing.assert_array_equal(atoms.cell[:], np.asarray(box.cell))
    assert atoms.pbc.all()
    system = md.read_extxyz(path)
    assert isinstance(system.box, md.TriclinicBox)
    np.testing.assert_array_equal(system.box.cell, box.cell)
    # positions are wrapped into the cell on reading (through fractional coordinates in a
    # triclinic cell: to the last bit or two)
    np.testing.assert_allclose(system.positions, frames, rtol=0, atol=1e-14)
    np.testing.assert_array_equal(system.velocities, velocities)
    one = md.read_extxyz(path, index=1)
    np.testing.assert_allclose(one.positions, frames[1], rtol=0, atol=1e-14)
    # frames in different cells do not stack
    other = md.TriclinicBox.from_lammps(5.1, 4.7, 5.3, xy=1.2)
    md.write_extxyz(tmp_path / "b.xyz", frames[0], other, units="metal")
    text = (tmp_path / "b.xyz").read_text()
    (tmp_path / "both.xyz").write_text((tmp_path / "tilted.xyz").read_text() + text)
    with pytest.raises(hybrax.ConfigurationError, match="cannot be stacked"):
        md.read_extxyz(tmp_path / "both.xyz")
