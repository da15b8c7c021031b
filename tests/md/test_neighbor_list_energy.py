"""`hybrax.md.neighbor_list(..., energy=)`: the energy sets the default cut-off and layout
(the full Verlet table for many-body energies, the windows for pair energies)."""

import jax.numpy as jnp
import pytest

import hybrax
import hybrax.md as md

SW = md.StillingerWeber(2.1683, 2.0951, 1.8, 21.0, 1.2, -1 / 3, 7.049556277, 0.6022245584, 4.0, 0.0)


@pytest.fixture(scope="module")
def crystal():
    return md.lattice("fcc", (6, 6, 6), lattice_constant=5.431, dtype=jnp.float64)


def test_energy_sets_cutoff_and_layout(crystal):
    x, box = crystal
    many = md.neighbor_list(x, box, skin=0.5, energy=SW)
    assert many.format == "table" and many.cutoff == pytest.approx(SW.required_cutoff)
    lj = md.LennardJones(sigma=2.0, cutoff=5.0)
    assert md.neighbor_list(x, box, energy=lj).format == "rows"  # pair energies: rows
    mixed = md.SumEnergy((lj, SW))
    assert md.neighbor_list(x, box, energy=mixed).format == "table"
    # an explicit format wins (tests/md/test_sw_tersoff.py and test_eam.py check that
    # both layouts give the many-body energies LAMMPS's numbers)
    windows = md.neighbor_list(x, box, skin=0.5, energy=SW, format="windows")
    assert windows.format == "windows"


def test_bad_input(crystal, wrong_type):
    x, box = crystal
    with pytest.raises(hybrax.ConfigurationError, match=r"give cutoff= .* or energy="):
        md.neighbor_list(x, box)
    with pytest.raises(hybrax.ConfigurationError, match=r"cutoff=2.0 is shorter than.*3.77"):
        md.neighbor_list(x, box, 2.0, energy=SW)
    with wrong_type("energy", hybrax.ConfigurationError, "energy must be a hybrax.md energy"):
        md.neighbor_list(x, box, energy="eam")
