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
    # frames in different kinds of box do not stack (different cells of one kind do: see
    # the next test)
    other = md.PeriodicBox(np.array([5.1, 4.7, 5.3]))
    md.write_extxyz(tmp_path / "b.xyz", frames[0], other, units="metal")
    text = (tmp_path / "b.xyz").read_text()
    (tmp_path / "both.xyz").write_text((tmp_path / "tilted.xyz").read_text() + text)
    with pytest.raises(hybrax.ConfigurationError, match="cannot be stacked"):
        md.read_extxyz(tmp_path / "both.xyz")


@pytest.mark.parametrize("kind", ["orthorhombic", "triclinic"])
def test_a_changing_cell_is_written_per_frame_and_read_back_stacked(tmp_path, kind):
    """An NPT trajectory: one cell per frame, given as a list of boxes or as one box with a
    leading frame axis (the same file either way); ASE sees each frame's cell, and reading
    gives one box with the cells stacked."""
    import jax

    base = md.TriclinicBox.from_lammps(5.1, 4.7, 5.3, xy=1.3, xz=-0.6, yz=0.9)
    scales = (1.0, 1.02, 0.97)
    if kind == "triclinic":
        boxes = [md.TriclinicBox(np.asarray(base.cell) * s) for s in scales]
        cells = [np.asarray(b.cell) for b in boxes]
    else:
        boxes = [md.PeriodicBox(np.array([5.1, 4.7, 5.3]) * s) for s in scales]
        cells = [np.diag(np.asarray(b.lengths)) for b in boxes]
    rng = np.random.default_rng(1)
    fractional = rng.uniform(0.0, 1.0, (12, 3))
    frames = jnp.asarray(np.stack([fractional @ c for c in cells]))
    listed, stacked = tmp_path / "listed.xyz", tmp_path / "stacked.xyz"
    md.write_extxyz(listed, frames, boxes, units="metal")
    md.write_extxyz(stacked, frames, jax.tree.map(lambda *x: jnp.stack(x), *boxes), units="metal")
    assert listed.read_text() == stacked.read_text()
    for t, atoms in enumerate(ase_io.read(listed, index=":")):
        np.testing.assert_array_equal(atoms.cell[:], cells[t])
    system = md.read_extxyz(listed)
    assert type(system.box) is type(boxes[0])
    read_cells = system.box.cell if kind == "triclinic" else system.box.lengths
    want = np.stack(cells) if kind == "triclinic" else np.stack([np.diag(c) for c in cells])
    np.testing.assert_array_equal(read_cells, want)
    np.testing.assert_allclose(system.positions, frames, rtol=0, atol=1e-13)
    # bad input names the problem
    with pytest.raises(hybrax.ConfigurationError, match="got 2 boxes for 3 frames"):
        md.write_extxyz(tmp_path / "x.xyz", frames, boxes[:2], units="metal")
    with pytest.raises(hybrax.ConfigurationError, match="all be of one type"):
        mixed = [boxes[0], base if kind == "orthorhombic" else md.PeriodicBox(5.0), boxes[2]]
        md.write_extxyz(tmp_path / "y.xyz", frames, mixed, units="metal")
