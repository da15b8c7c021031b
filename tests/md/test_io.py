import jax.numpy as jnp
import numpy as np
import pytest

import hybrax.md as md

ase_io = pytest.importorskip("ase.io")


def test_to_ase_and_extxyz_round_trip(tmp_path, fcc108):
    positions, box = fcc108
    species = jnp.arange(positions.shape[0]) % 2
    atoms = md.to_ase(positions, box, symbols=["Ar", "Kr"], species=species, energy=-1.5)
    assert atoms.get_chemical_symbols()[:2] == ["Ar", "Kr"]
    np.testing.assert_allclose(atoms.cell.lengths(), np.asarray(box.lengths))
    assert all(atoms.pbc)
    path = tmp_path / "traj.xyz"
    trajectory = jnp.stack([positions, box.wrap(positions + 0.1)])
    md.write_extxyz(str(path), trajectory, box, energies=jnp.array([-1.0, -2.0]))
    frames = ase_io.read(str(path), ":")
    assert len(frames) == 2
    np.testing.assert_allclose(frames[1].positions, np.asarray(trajectory[1]), atol=1e-6)
    np.testing.assert_allclose(frames[1].cell.lengths(), np.asarray(box.lengths), atol=1e-6)
    free = md.to_ase(positions[:3], md.FreeSpace())
    assert not any(free.pbc)


def test_io_bad_input(fcc108):
    positions, box = fcc108
    with pytest.raises(ValueError, match="symbols"):
        md.to_ase(positions, box, symbols=["Ar"] * 3)
    with pytest.raises(ValueError, match="index symbols"):
        md.to_ase(positions, box, symbols=["Ar"], species=jnp.ones(108, int))
    with pytest.raises(ValueError, match="energies"):
        md.write_extxyz("unused.xyz", positions, box, energies=[1.0, 2.0])
