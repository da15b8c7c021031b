"""Bad input to the materials API (issue 15's "Bad input" bullets and their neighbours):
corrupted potential files, element lists, batches whose arrays disagree, species outside a
potential's tables, NaN positions and ASE atoms that cannot be right raise errors naming
the argument, what was given and what would be right; nothing is silently dropped,
clamped or misread. Tiny sizes: every file here is synthetic."""

import glob
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax.md as md
from hybrax.errors import ConfigurationError

NAN = float("nan")
POINTS = 10  # grid points of the synthetic EAM tables (Nrho = Nr)


def _numbers(values) -> str:
    return "\n".join(
        " ".join(f"{v:.6e}" for v in values[k : k + 5]) for k in range(0, len(values), 5)
    )


def _tables():
    rho = np.arange(POINTS) * 0.1
    r = np.arange(POINTS) * 0.5
    return -np.sqrt(rho + 1e-3), np.exp(-r), 1.0 / (1.0 + r)


def _funcfl(atomic_number: int = 29, extra: str = "") -> str:
    frho, rhor, zr = _tables()
    header = f"synthetic funcfl\n{atomic_number} 63.55 3.615 FCC\n{POINTS} 0.1 {POINTS} 0.5 4.0\n"
    return header + "\n".join(_numbers(t) for t in (frho, zr, rhor)) + "\n" + extra


def _setfl(extra: str = "", cutoff: float = 4.0) -> str:
    frho, rhor, zr = _tables()
    header = f"one\ntwo\nthree\n1 Cu\n{POINTS} 0.1 {POINTS} 0.5 {cutoff!r}\n29 63.55 3.615 fcc\n"
    return header + "\n".join(_numbers(t) for t in (frho, rhor, zr)) + "\n" + extra


POTENTIALS = "/usr/share/lammps/potentials"  # the Debian lammps package's files
TERSOFF = (  # LAMMPS's Si.tersoff (Tersoff 1988)
    "Si Si Si 3.0 1.0 1.3258 4.8381 2.0417 0.0000 22.956 0.33675 1.3258 95.373 3.0 0.2 "
    "3.2394 3264.7\n"
)
SW = "Si Si Si 2.1683 2.0951 1.80 21.0 1.20 -0.333333333333 7.049556277 0.6022245584 4.0 0.0 0.0\n"


def _write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_well_formed_synthetic_files_load(tmp_path):
    """The positive control of the corrupted variants below."""
    funcfl = md.EmbeddedAtom.from_file(_write(tmp_path, "Cu.eam", _funcfl()), ("Cu",))
    setfl = md.EmbeddedAtom.from_file(_write(tmp_path, "Cu.eam.alloy", _setfl()))
    assert funcfl.cutoff == setfl.cutoff == 4.0
    assert setfl.elements == ("Cu",)
    assert md.StillingerWeber.from_file(_write(tmp_path, "Si.sw", SW), ["Si"]).cutoff > 3.7


@pytest.mark.parametrize(
    "name, text, match",
    [
        # header counts that do not describe the tables: values left over (was: ignored)
        ("x.eam", _funcfl(extra="1.0 2.0\n"), r"2 values are left over .*line 3"),
        ("x.eam.alloy", _setfl(extra="0.5\n"), r"1 values are left over .*lines 4-5"),
        # text where numbers belong, a truncated table (already raised: kept honest)
        ("x.eam", _funcfl().replace("1.000000e+00", "one", 1), "must be numbers, got 'one'"),
        ("x.eam.alloy", _setfl().rsplit("\n", 3)[0], "truncated or its header counts"),
    ],
)
def test_corrupted_eam_files_raise(tmp_path, name, text, match):
    with pytest.raises(ConfigurationError, match=match):
        md.EmbeddedAtom.from_file(_write(tmp_path, name, text))


@pytest.mark.parametrize(
    "reader, name, text, elements, match",
    [
        # a bare string was read letter by letter ('C', 'u' not in the file); None and
        # non-string names are refused too (the suite's jaxtyping hook rejects them first)
        ("eam", "x.eam.alloy", _setfl(), "Cu", r"sequence of element names.*\('Cu',\)"),
        ("sw", "x.sw", SW, "Si", r"sequence of element names.*\('Si',\)"),
        # an element the file does not define
        ("eam", "x.eam.alloy", _setfl(), ("Cu", "Ni"), r"\['Ni'\] are not in the file"),
        ("sw", "x.sw", SW, ("Si", "Ge"), "no entry for the element triplet Si Si Ge"),
        # the same triplet twice (LAMMPS refuses it; the last one silently won)
        ("sw", "x.sw", SW + SW, ("Si",), "line 2: a second Stillinger-Weber entry .*Si Si Si"),
    ],
)
def test_element_lists_are_checked(tmp_path, reader, name, text, elements, match):
    path = _write(tmp_path, name, text)
    with pytest.raises(ConfigurationError, match=match):
        if reader == "eam":
            md.EmbeddedAtom.from_file(path, elements)
        else:
            md.StillingerWeber.from_file(path, elements)


def test_funcfl_named_as_another_element_raises(tmp_path):
    """A funcfl file names its element by atomic number only: 29 is Cu, not Ni (was
    accepted and labelled Ni)."""
    pytest.importorskip("ase")
    with pytest.raises(ConfigurationError, match=r"atomic number 29 \(Cu\), not Ni"):
        md.EmbeddedAtom.from_file(_write(tmp_path, "Cu.eam", _funcfl()), ("Ni",))


def _small_systems(species=None, velocities=None):
    a, box_a = md.lattice("fcc", 2, density=0.6)
    b, box_b = md.lattice("fcc", 2, density=0.5)
    s = (None, None) if species is None else species
    v = (None, None) if velocities is None else velocities
    return [(a, box_a, v[0], None, s[0]), (b, box_b, v[1], None, s[1])]


def test_system_batches_are_checked():
    """Before: negative species and NaN velocities went into the batch; a batch built by
    hand with zero masses, negative box sides or NaN positions was accepted."""
    zeros = jnp.zeros(32, jnp.int32)
    with pytest.raises(ConfigurationError, match=r"system 1: species must be non-negative.*-1"):
        md.SystemBatch.from_systems(_small_systems(species=(zeros, zeros.at[3].set(-1))))
    bad_v = jnp.zeros((32, 3)).at[0, 0].set(NAN)
    with pytest.raises(ConfigurationError, match="system 0: velocities contain NaN"):
        md.SystemBatch.from_systems(_small_systems(velocities=(bad_v, None)))
    # (arrays of disagreeing shapes or dtypes are refused too; under the suite's jaxtyping
    # hook the annotations reject them first, so only values are exercised here)
    p, mask, lengths = jnp.zeros((2, 5, 3)), jnp.ones((2, 5), bool), jnp.full((2, 3), 5.0)
    cases = [
        ((p, p, jnp.zeros((2, 5)), mask, lengths), "masses must be positive and finite, got 0.0"),
        ((p, p, jnp.ones((2, 5)), mask, -lengths), "lengths must be positive and finite"),
        ((p.at[1, 2, 0].set(NAN), p, jnp.ones((2, 5)), mask, lengths), r"positions .*\(1, 2, 0\)"),
    ]
    for args, match in cases:
        with pytest.raises(ConfigurationError, match=match):
            md.SystemBatch(*args)


def test_batch_species_outside_the_potential_tables_raise():
    """Species 5 with 2x2 parameter matrices: the batched gather clamped the index and
    returned another species' energy (-51.85 instead of an error)."""
    zeros = jnp.zeros(32, jnp.int32)
    batch = md.SystemBatch.from_systems(_small_systems(species=(zeros.at[0].set(5), zeros)))
    nbrs = md.batch_neighbor_list(batch, cutoff=1.5)
    pair = md.LennardJones(
        sigma=jnp.ones((2, 2)), epsilon=jnp.ones((2, 2)), cutoff=1.5, species=zeros
    )
    with pytest.raises(ConfigurationError, match=r"batch.species: .*\[0, 2\).*0 to 5"):
        md.batch_energy_and_forces(pair, batch, nbrs)
    with pytest.raises(ConfigurationError, match=r"batch_stress: batch.species"):
        md.batch_stress(pair, batch, nbrs)


def test_nan_positions_never_give_a_finite_pair_energy():
    """A NaN position fails every distance test, so the atom silently dropped out of the
    sums (a finite, wrong energy). Now: an error when concrete, NaN when traced."""
    positions, box = md.lattice("fcc", 2, density=0.6)
    nbrs = md.neighbor_list(positions, box, cutoff=1.5, skin=0.2)
    lj = md.LennardJones(cutoff=1.5)
    bad = positions.at[0, 0].set(NAN)
    with pytest.raises(ConfigurationError, match=r"positions contain NaN or inf .*atom 0"):
        lj.energy(bad, nbrs, box)
    with pytest.raises(ConfigurationError, match="positions contain NaN or inf"):
        lj.energy_and_forces(bad, nbrs, box)
    energy = eqx.filter_jit(lj.energy)
    assert np.isfinite(float(energy(positions, nbrs, box)))
    assert np.isnan(float(energy(bad, nbrs, box)))


def test_ase_atoms_that_cannot_be_right_raise():
    """NaN positions and zero masses were converted (zero masses even produced infinite
    velocities); a bare string of symbols was read letter by letter."""
    ase_build = pytest.importorskip("ase.build")
    atoms = ase_build.bulk("Cu", "fcc", a=3.615, cubic=True)
    broken = atoms.copy()
    broken.positions[1, 2] = NAN
    with pytest.raises(ConfigurationError, match=r"atoms.positions \(Å\) must be finite"):
        md.from_ase(broken, units="metal")
    weightless = atoms.copy()
    weightless.set_masses([0.0] * len(atoms))
    with pytest.raises(ConfigurationError, match=r"masses .* must be positive and finite, got 0.0"):
        md.from_ase(weightless, units="metal")
    with pytest.raises(ConfigurationError, match=r"symbols must be a sequence .*\['Cu'\]"):
        md.from_ase(atoms, units="metal", symbols="Cu")


def test_traced_net_charge_raises_when_the_ewald_energy_runs():
    """Concrete non-neutral charges were refused, traced ones (jit/grad over the charges)
    silently gave the energy of an ill-defined system."""
    positions, box = md.lattice("fcc", 2, density=0.8442)
    charges = jnp.array([1.0, -1.0] * 16)
    energy = eqx.filter_jit(lambda q: md.EwaldCoulomb(q, box).energy(positions, None, box))
    assert np.isfinite(float(energy(charges)))
    with pytest.raises(eqx.EquinoxRuntimeError, match="charges must sum to zero"):
        float(energy(charges.at[0].set(2.0)))


def test_labels_must_be_finite():
    """NaN reference energies or forces went into training data unnoticed (energies of the
    wrong length are refused too; the suite's jaxtyping hook rejects those first)."""
    positions, box = md.lattice("fcc", 2, density=0.6)
    frames = jnp.stack([positions, positions])
    nbrs = md.neighbor_list(positions, box, cutoff=1.5, skin=0.2)
    forces = jnp.zeros((2, 32, 3))
    with pytest.raises(ConfigurationError, match=r"energies must be finite.*\(1,\)"):
        md.LabelledFrames(frames, nbrs, jnp.array([0.0, NAN]), forces)
    with pytest.raises(ConfigurationError, match="LabelledFrames: forces must be finite"):
        md.LabelledFrames(frames, nbrs, jnp.zeros(2), forces.at[0, 1, 2].set(np.inf))


def test_lammps_eam_files_all_load():
    """Every funcfl / setfl file LAMMPS ships loads. The Zhou files give cutoff = Nr * dr,
    one grid step beyond the last tabulated distance (W_zhou: 1.05 steps, from the rounding
    of the printed dr), CoAl and CuTa exceed it by round-off, and LAMMPS's funcfl
    re-gridding drops the last point of Cu_smf7 / Ni_smf7; LAMMPS clamps such distances
    to the last tabulated value (all were refused)."""
    files = sorted(glob.glob(os.path.join(POTENTIALS, "*.eam")))
    files += sorted(glob.glob(os.path.join(POTENTIALS, "*.eam.alloy")))
    if not files:
        pytest.skip(f"no EAM files in {POTENTIALS} (install the Debian 'lammps' package)")
    for path in files:
        eam = md.EmbeddedAtom.from_file(path)
        assert eam.cutoff <= eam.density.shape[-1] * eam.dr * (1 + 1e-6), path


def test_eam_cutoff_one_step_beyond_the_table_clamps_as_lammps(tmp_path):
    """Up to one grid step beyond the table is accepted and a distance there sees the last
    tabulated values, as in LAMMPS's ``PairEAM::compute``: a dimer at r = 4.8 (table ends
    at 4.5) has the density rho(4.5) and the pair energy (r phi)(4.5) / 4.8. A cutoff two
    steps beyond is still refused, by the reader and by the constructor."""
    eam = md.EmbeddedAtom.from_file(_write(tmp_path, "a.eam.alloy", _setfl(cutoff=5.0)))
    assert eam.cutoff == 5.0
    box = md.PeriodicBox(jnp.full(3, 20.0))

    def dimer(r):
        positions = jnp.asarray([[5.0, 5.0, 5.0], [5.0 + r, 5.0, 5.0]])
        return float(eam.energy(positions, md.neighbor_list(positions, box, cutoff=5.0), box))

    z_last = 1.0 / (1.0 + 4.5)  # r phi at the last grid point
    np.testing.assert_allclose(dimer(4.8) - dimer(4.5), z_last / 4.8 - z_last / 4.5, rtol=1e-5)
    with pytest.raises(ConfigurationError, match=r"cutoff 5.6 lies beyond .* <= 5"):
        md.EmbeddedAtom.from_file(_write(tmp_path, "b.eam.alloy", _setfl(cutoff=5.6)))
    with pytest.raises(ConfigurationError, match=r"EmbeddedAtom: the cutoff 5.6 lies beyond"):
        md.EmbeddedAtom(eam.embedding, eam.density, eam.pair, drho=0.1, dr=0.5, cutoff=5.6)


def _many_body_nan_checks(tmp_path, which: tuple[str, ...]):
    potentials = {
        "eam": lambda: md.EmbeddedAtom.from_file(_write(tmp_path, "Cu.eam.alloy", _setfl())),
        "sw": lambda: md.StillingerWeber.from_file(_write(tmp_path, "Si.sw", SW), ["Si"]),
        "tersoff": lambda: md.Tersoff.from_file(_write(tmp_path, "t.tersoff", TERSOFF), ["Si"]),
    }
    positions, box = md.lattice("fcc", 3, lattice_constant=3.4)  # neighbours within 3 A
    bad = positions.at[0, 1].set(NAN)
    for key, make in potentials.items():
        potential = make()
        nbrs = md.neighbor_list(positions, box, cutoff=potential.cutoff)
        name = type(potential).__name__
        with pytest.raises(ConfigurationError, match=rf"{name}: positions contain NaN .*atom 0"):
            potential.energy(bad, nbrs, box)
        with pytest.raises(ConfigurationError, match="positions contain NaN or inf"):
            potential.energy_and_forces(bad, nbrs, box)
        if key not in which:  # compiling each traced path costs ~2 s
            continue
        traced = eqx.filter_jit(lambda x, p=potential, nb=nbrs: p.energy_and_forces(x, nb, box))
        energy, forces = traced(positions)
        assert np.isfinite(float(energy)) and float(energy) != 0.0, name
        energy, forces = traced(bad)
        assert np.isnan(float(energy)) and np.all(np.isnan(forces)), name
        gradient = jax.grad(lambda x, p=potential, nb=nbrs: p.energy(x, nb, box))(bad)
        assert np.any(np.isnan(gradient)), name


@pytest.mark.slow
def test_nan_positions_never_give_a_finite_many_body_energy(tmp_path, full_size):
    """EAM, Stillinger-Weber and Tersoff left an atom at NaN out of their sums (a finite,
    wrong energy: EAM -901.38, SW -367.84 in the audit). Now, as in the pair path: an error
    when the positions are concrete (all three), NaN energy / forces / gradients when
    traced (reduced: EAM only, the guard being the shared many-body wrapper; under
    --runslow all three, ~2 s of compilation each)."""
    _many_body_nan_checks(tmp_path, ("eam", "sw", "tersoff") if full_size else ("eam",))


def test_potentials_read_from_lammps_files_refuse_other_units(tmp_path):
    """Potentials read from LAMMPS files are in metal units; an ASE calculator in other
    units mixed them silently. They are labelled ``"metal"`` now and the calculator checks
    the label (a sum's terms included); an unlabelled potential takes any units."""
    eam = md.EmbeddedAtom.from_file(_write(tmp_path, "Cu.eam.alloy", _setfl()))
    sw = md.StillingerWeber.from_file(_write(tmp_path, "Si.sw", SW), ["Si"])
    tersoff = md.Tersoff.from_file(_write(tmp_path, "t.tersoff", TERSOFF), ["Si"])
    assert eam.units == sw.units == tersoff.units == "metal"
    argon = md.Units.reduced(sigma=3.4, epsilon=0.0104, mass=39.948)
    for potential in (eam, sw, tersoff, md.LennardJones(cutoff=2.5) + eam):
        with pytest.raises(ConfigurationError, match=r"works in metal units .*units='metal'"):
            md.ase_calculator(potential, units=argon)
        with pytest.raises(ConfigurationError, match="works in metal units"):
            md.ase_calculator(potential, units="reduced")
    md.ase_calculator(eam, units="metal")
    md.ase_calculator(eam, units=md.Units.metal())
    tables = (eam.embedding, eam.density, eam.pair)
    unlabelled = md.EmbeddedAtom(*tables, drho=0.1, dr=0.5, cutoff=4.0)
    assert unlabelled.units is None
    md.ase_calculator(unlabelled, units=argon)
    with pytest.raises(ConfigurationError, match=r"units must be 'metal'"):
        md.EmbeddedAtom(*tables, drho=0.1, dr=0.5, cutoff=4.0, units="SI")


def test_zhou_file_beyond_its_table_equals_lammps():
    """Cu_zhou.eam.alloy (cutoff one grid step beyond its table) on 500 perturbed fcc
    atoms, among them pairs in the clamped range: LAMMPS's energy and forces. Reference:
    LAMMPS 29 Sep 2021 (Debian), ``pair_style eam/alloy``, ``pair_coeff * * Cu_zhou.eam.alloy
    Cu``, ``run 0`` on these positions (written with repr)."""
    path = os.path.join(POTENTIALS, "Cu_zhou.eam.alloy")
    if not os.path.exists(path):
        pytest.skip(f"{path} not found (install the Debian 'lammps' package)")
    a, cells = 3.62, 5
    base = np.asarray([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    grid = np.stack(np.meshgrid(*[np.arange(cells)] * 3, indexing="ij"), -1).reshape(-1, 3)
    x = ((grid[:, None, :] + base[None]) * a).reshape(-1, 3)
    x = (x + np.random.default_rng(1).normal(0.0, 0.15, x.shape)) % (a * cells)
    eam = md.EmbeddedAtom.from_file(path)
    d = x[:, None] - x[None]
    r = np.linalg.norm(d - a * cells * np.rint(d / (a * cells)), axis=-1)
    assert np.sum((r > (eam.density.shape[-1] - 1) * eam.dr) & (r < eam.cutoff)) > 0
    box = md.PeriodicBox(jnp.full(3, a * cells))
    positions = jnp.asarray(x)
    nbrs = md.neighbor_list(positions, box, cutoff=eam.cutoff)
    energy, forces = eam.energy_and_forces(positions, nbrs, box)
    np.testing.assert_allclose(float(energy), -1660.885544166815, rtol=1e-10)
    np.testing.assert_allclose(float(jnp.sum(forces**2)), 2613.3051789646406, rtol=1e-8)
    lammps_first = [-0.832738135076, 0.314350822707, 0.450651648823]
    np.testing.assert_allclose(forces[0], lammps_first, rtol=0, atol=1e-9)
