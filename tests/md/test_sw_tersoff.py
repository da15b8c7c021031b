"""StillingerWeber and Tersoff against LAMMPS (pair_style sw / tersoff), parameter
gradients, bad input.

Reference numbers: tests/md/reference/make_manybody_reference.py (LAMMPS 29 Sep 2021). The
potential files are read from /usr/share/lammps/potentials (Debian lammps-data package); without
it Si.sw and Si.tersoff come from tests/md/reference/published (the papers' parameters, written
by us) and the other tests skip.
"""

import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
import hybrax.md as md

POTENTIALS = "/usr/share/lammps/potentials"
REFERENCE = os.path.join(os.path.dirname(__file__), "reference", "manybody_reference.npz")


PUBLISHED = os.path.join(os.path.dirname(__file__), "reference", "published")


def potential_file(name: str) -> str:
    """LAMMPS's potential file, else our own copy of the published parameters (Si.sw,
    Si.tersoff: the same numbers, written from the papers), else skip."""
    path = os.path.join(POTENTIALS, name)
    if os.path.exists(path):
        return path
    ours = os.path.join(PUBLISHED, name)
    if os.path.exists(ours):
        return ours
    pytest.skip(f"{path} not found (install the Debian 'lammps-data' package for its potentials)")


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(REFERENCE))


def assert_matches_lammps(potential, reference, case, table=False):
    """Energy, forces and virial (xx yy zz xy xz yz) equal LAMMPS's to 1e-10 (with all
    pairs, or with ``table`` a cell list's full Verlet table)."""
    positions = jnp.asarray(reference[f"{case}/positions"])
    box = md.PeriodicBox(jnp.asarray(reference[f"{case}/lengths"]))
    if table:
        nbrs = md.CellNeighborList.build(
            positions, box, cutoff=potential.cutoff, skin=0.1, format="table"
        )
    else:
        nbrs = md.DenseNeighborList.build(positions, box, cutoff=potential.cutoff, skin=0.0)
    energy, forces = potential.energy_and_forces(positions, nbrs, box)
    w = potential.virial(positions, nbrs, box)
    virial = np.asarray([w[0, 0], w[1, 1], w[2, 2], w[0, 1], w[0, 2], w[1, 2]])
    f_ref, w_ref = reference[f"{case}/forces"], reference[f"{case}/virial"]
    np.testing.assert_allclose(float(energy), reference[f"{case}/energy"], rtol=1e-10)
    np.testing.assert_allclose(forces, f_ref, rtol=0, atol=1e-10 * np.max(np.abs(f_ref)))
    np.testing.assert_allclose(virial, w_ref, rtol=0, atol=1e-10 * np.max(np.abs(w_ref)))


SI_SW = (2.1683, 2.0951, 1.80, 21.0, 1.20, -1.0 / 3.0, 7.049556277, 0.6022245584, 4.0, 0.0)


@pytest.mark.parametrize(
    "case, kind, file, elements",
    [
        ("sw_si", md.StillingerWeber, "Si.sw", ("Si",)),
        ("tersoff_si", md.Tersoff, "Si.tersoff", ("Si",)),
        ("tersoff_sic", md.Tersoff, "SiC.tersoff", ("Si", "C")),
    ],
)
def test_energy_forces_virial_equal_lammps(reference, case, kind, file, elements):
    """Perturbed diamond Si (64 atoms) and zincblende SiC (two species, mixed-triplet
    entries): LAMMPS's energy, forces and virial to 1e-10."""
    species = reference[f"{case}/species"]
    potential = kind.from_file(potential_file(file), elements, species=species)
    assert_matches_lammps(potential, reference, case)


@pytest.mark.parametrize(
    "case, kind, file, elements",
    [
        ("sw_si", md.StillingerWeber, "Si.sw", ("Si",)),
        ("tersoff_sic", md.Tersoff, "SiC.tersoff", ("Si", "C")),
    ],
)
def test_verlet_table_rows_equal_lammps(reference, case, kind, file, elements):
    """From a cell list's full Verlet table (rows filtered to the cut-off and compacted in
    place, no sort) the same LAMMPS numbers to 1e-10."""
    species = reference[f"{case}/species"]
    potential = kind.from_file(potential_file(file), elements, species=species)
    assert_matches_lammps(potential, reference, case, table=True)


def test_constructor_equals_file():
    """Parameters given directly (scalars) build the same potential as the file."""
    from_file = md.StillingerWeber.from_file(potential_file("Si.sw"), ["Si"])
    direct = md.StillingerWeber(*SI_SW)
    for name in ("epsilon", "sigma", "a", "lambda_", "gamma", "cos_theta0", "A", "B", "p", "q"):
        np.testing.assert_allclose(getattr(direct, name), getattr(from_file, name), rtol=1e-9)
    assert direct.cutoff == from_file.cutoff


@pytest.mark.parametrize(
    "case, kind, file, leaves",
    [
        ("sw_si", md.StillingerWeber, "Si.sw", ("lambda_", "epsilon", "cos_theta0")),
        ("tersoff_si", md.Tersoff, "Si.tersoff", ("beta", "lambda3", "c", "A")),
    ],
)
def test_parameter_gradients_match_finite_differences(reference, case, kind, file, leaves):
    """d energy / d parameter leaf vs central differences (on the LAMMPS configurations,
    so the differences reuse the compiled energy of the LAMMPS test)."""
    species = reference[f"{case}/species"]
    potential = kind.from_file(potential_file(file), ["Si"], species=species)
    positions = jnp.asarray(reference[f"{case}/positions"])
    box = md.PeriodicBox(jnp.asarray(reference[f"{case}/lengths"]))
    nbrs = md.DenseNeighborList.build(positions, box, cutoff=potential.cutoff, skin=0.0)
    grads = eqx.filter_grad(lambda p: p.energy(positions, nbrs, box))(potential)
    energy = lambda p: p.energy_and_forces(positions, nbrs, box)[0]  # noqa: E731
    for name in leaves:
        value = getattr(potential, name)
        h = 1e-6 * max(1.0, float(jnp.abs(value).max()))
        shifted = [
            eqx.tree_at(lambda p, n=name: getattr(p, n), potential, value + s * h) for s in (1, -1)
        ]
        fd = (energy(shifted[0]) - energy(shifted[1])) / (2 * h)
        np.testing.assert_allclose(getattr(grads, name).sum(), fd, rtol=1e-6, err_msg=name)


def test_too_many_neighbours_gives_nan(reference):
    """A neighbour table too small for the configuration makes energy and forces NaN."""
    sw = md.StillingerWeber.from_file(potential_file("Si.sw"), ["Si"], max_neighbors=2)
    positions = jnp.asarray(reference["sw_si/positions"])
    box = md.PeriodicBox(jnp.asarray(reference["sw_si/lengths"]))
    nbrs = md.DenseNeighborList.build(positions, box, cutoff=sw.cutoff)
    energy, forces = sw.energy_and_forces(positions, nbrs, box)
    assert np.isnan(energy) and np.all(np.isnan(forces))
    with pytest.raises(hybrax.ConfigurationError, match="max_neighbors must be a positive"):
        md.StillingerWeber.from_file(potential_file("Si.sw"), ["Si"], max_neighbors=0)


def test_one_species_moments_equal_the_triplet_sums(reference):
    """One species: the three-body sums from each atom's moments of its neighbour
    directions (linear in the neighbours) equal the sums over the triplets (the path of
    several species, here forced by (2, 2, 2) tables of equal values) to round-off."""
    positions = jnp.asarray(reference["sw_si/positions"])
    box = md.PeriodicBox(jnp.asarray(reference["sw_si/lengths"]))
    species = jnp.asarray(np.random.default_rng(3).integers(0, 2, positions.shape[0]))
    tables = [jnp.full((2, 2, 2), v) for v in SI_SW]
    one = md.StillingerWeber(*SI_SW)
    two = md.StillingerWeber(*tables, species=species)
    nbrs = md.neighbor_list(positions, box, energy=one)
    for a, b in zip(
        (*one.energy_and_forces(positions, nbrs, box), one.virial(positions, nbrs, box)),
        (*two.energy_and_forces(positions, nbrs, box), two.virial(positions, nbrs, box)),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * float(jnp.max(jnp.abs(b))))


def test_rows_are_compacted_in_order():
    """A full table's kept entries go to the front of each row in order; the rest of the
    capacity is masked (random masks against numpy)."""
    from hybrax.md._manybody import _compact_rows

    rng = np.random.default_rng(0)
    for width, capacity in [(1, 1), (54, 16), (64, 64)]:
        table = rng.integers(0, 1000, (9, width))
        keep = rng.random((9, width)) < 0.3
        keep[0] = False
        keep[1] = True
        compact, filled = jax.jit(_compact_rows, static_argnums=2)(table, keep, capacity)
        compact, filled = np.asarray(compact), np.asarray(filled)
        for row in range(9):
            kept = table[row][keep[row]][:capacity]
            assert np.array_equal(compact[row][: len(kept)], kept)
            assert np.array_equal(filled[row], np.arange(capacity) < len(kept))
            assert np.all(compact[row][len(kept) :] == 0)


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


SW_LINE = (
    "Si Si Si 2.1683 2.0951 1.80 21.0 1.20 -0.333333333333 7.049556277 0.6022245584 4.0 0.0 0.0"
)


@pytest.mark.parametrize(
    "text, elements, match",
    [
        (SW_LINE, ("Si", "Ge"), "no entry for the element triplet Si Si Ge"),
        (SW_LINE.rsplit(" ", 1)[0], ("Si",), "incomplete"),
        (SW_LINE.replace("21.0", "twenty"), ("Si",), "line 1: .* non-number 'twenty'"),
        (SW_LINE.replace("2.0951", "-2.0951"), ("Si",), "sigma must be positive"),
        ("# only a comment\n", ("Si",), "incomplete"),
    ],
)
def test_bad_stillinger_weber_files_raise(tmp_path, text, elements, match):
    with pytest.raises(hybrax.ConfigurationError, match=match):
        md.StillingerWeber.from_file(_write(tmp_path, "x.sw", text + "\n"), elements)


def test_bad_tersoff_input_raises(tmp_path):
    line = (
        "Si Si Si 2.0 1.0 1.3258 4.8381 2.0417 0.0 22.956 0.33675 1.3258 95.373 3.0 0.2 "
        "3.2394 3264.7"
    )
    with pytest.raises(hybrax.ConfigurationError, match="m must be 1 or 3"):
        md.Tersoff.from_file(_write(tmp_path, "x.tersoff", line), ["Si"])
    with pytest.raises(hybrax.ConfigurationError, match="does not exist"):
        md.Tersoff.from_file(os.path.join(str(tmp_path), "missing.tersoff"), ["Si"])
    path = potential_file("SiC.tersoff")
    with pytest.raises(hybrax.ConfigurationError, match=r"species values must lie in \[0, 2\)"):
        md.Tersoff.from_file(path, ["Si", "C"], species=jnp.asarray([0, 2]))
    with pytest.raises(hybrax.ConfigurationError, match=r"\(S, S, S\) table"):
        md.Tersoff(*([jnp.ones((2, 2))] * 14))
