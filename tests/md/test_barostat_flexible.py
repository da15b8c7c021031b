"""Fully flexible NPT: md.MartynaTobiasKlein(couple="full") on a triclinic cell."""

import importlib.util
import pathlib
import shutil

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import hybrax
import hybrax.md as md

CUTOFF = 2.5


def sheared_system(cells, density, temperature, *, xy=0.0, xz=0.0, yz=0.0, seed=1):
    """An fcc lattice at ``density`` in a cubic box, then sheared affinely with its cell
    (tilts as fractions of the side): a strained crystal, or a liquid's start."""
    positions, box = md.lattice("fcc", cells, density=density, dtype=jnp.float64)
    side = float(box.lengths[0])
    cell = md.TriclinicBox.from_lammps(side, side, side, xy * side, xz * side, yz * side)
    x = cell.wrap(cell.cartesian(positions / box.lengths))
    v = md.maxwell_boltzmann(jax.random.key(seed), positions.shape[0], temperature)
    return x, v.astype(jnp.float64), box, cell


def flexible(energy, cell, **kwargs):
    options = dict(dt=0.005, temperature=1.5, pressure=1.0, tau=0.5, tau_barostat=1.0)
    return md.MartynaTobiasKlein(energy, cell, **({"couple": "full"} | options | kwargs))


@eqx.filter_jit
def run(stepper, state, steps: int, every: int = 1):
    """``steps`` steps; every ``every`` steps the extended energy, the volume, the tilts,
    the instantaneous pressure and the pressure tensor."""

    def interval(s, _):
        s = lax.fori_loop(0, every, lambda _, s: stepper.step(s), s)
        seen = (
            stepper.extended_energy(s),
            stepper.state_box(s).volume,
            s.barostat.tilts if stepper.couple == "full" else jnp.zeros(3, s.positions.dtype),
            stepper.instantaneous_pressure(s),
            stepper.pressure_tensor(s) if stepper.couple == "full" else jnp.eye(3),
        )
        return s, seen

    return lax.scan(interval, state, None, length=steps // every)


_stress = eqx.filter_jit(md.stress)


@eqx.filter_jit
def _observed(stepper, state):
    return stepper.extended_energy(state), stepper.pressure_tensor(state)


@eqx.filter_jit
def _energy_and_forces(energy, positions, neighbors, box):
    return energy.energy_and_forces(positions, neighbors, box)


def _block_error(series, blocks=10):
    means = [np.mean(b, axis=0) for b in np.array_split(np.asarray(series), blocks)]
    return np.std(means, axis=0) / np.sqrt(blocks)


def test_extended_energy_is_conserved_and_its_error_falls_like_dt_squared():
    # 108 atoms of a liquid (T* 1.5, rho 0.6) in a cell tilted in all three planes
    x, v, _, cell = sheared_system(3, 0.6, 1.5, xy=0.15, xz=0.05, yz=-0.1)
    lj = md.LennardJones(cutoff=2.2)  # the flip test's: one compilation of run for both
    nbrs = md.neighbor_list(x, cell, 2.2)
    errors = []
    for dt in (0.004, 0.002):
        stepper = flexible(lj, cell, dt=dt)
        state = stepper.init(x, v, nbrs)
        assert isinstance(state.barostat, md.TriclinicBarostatState)
        final, (h, volume, tilts, _, _) = run(stepper, state, 100)  # one compilation
        span = 50 if dt == 0.004 else 100  # the same 0.2 tau
        h0 = float(_observed(stepper, state)[0])
        errors.append(float(np.max(np.abs(np.asarray(h[:span]) - h0))))
        assert float(jnp.ptp(volume)) > 1.0  # the cell really moved
        assert float(jnp.max(jnp.abs(tilts[-1] - tilts[0]))) > 0.05  # and sheared
    # measured 0.112 and 0.030 (ratio 3.8; isotropic coupling, cut-off 2.5: 0.147 and
    # 0.036, NVE velocity Verlet in a fixed box 0.105 and 0.026); the kinetic energy is 241
    assert errors[0] < 0.2
    assert 3.0 < errors[0] / errors[1] < 5.0
    current = stepper.state_box(final)
    assert isinstance(current, md.TriclinicBox)
    assert np.allclose(np.triu(np.asarray(current.cell), 1), 0.0)  # no rotation
    # the pressure tensor of the step is minus md.stress with velocities
    sigma = _stress(lj, final.positions, current, final.neighbors, velocities=final.velocities)
    assert np.allclose(_observed(stepper, final)[1], -sigma, rtol=0, atol=1e-12)
    assert float(stepper.instantaneous_pressure(final)) == pytest.approx(
        float(-jnp.trace(sigma) / 3), rel=1e-12
    )
    assert stepper.init(final) is final  # idempotent
    # the list kept up with the shearing cell: energy and forces equal a fresh list's
    fresh = md.neighbor_list(final.positions, current, 2.2)
    energy, forces = _energy_and_forces(lj, final.positions, fresh, current)
    assert float(final.potential_energy) == pytest.approx(float(energy), rel=1e-12)
    assert np.allclose(final.forces, forces, rtol=0, atol=1e-10)


def test_a_sheared_crystal_relaxes_its_tilt_and_shear_stress():
    # 108 atoms of LJ fcc at T* 0.3, P* 1 (a solid), the cell and crystal sheared by
    # xy = 0.06 lx: the shear stress drives the tilt back to the unstrained crystal's
    x, v, _, cell = sheared_system(3, 1.05, 0.3, xy=0.06)
    lj = md.LennardJones(cutoff=2.2)
    stepper = flexible(lj, cell, temperature=0.3, tau_barostat=0.5)
    state = stepper.init(x, v, md.neighbor_list(x, cell, 2.2))
    h0, pressure = _observed(stepper, state)
    assert float(pressure[0, 1]) < -1.0  # measured -2.3: the strained crystal pushes back
    _, (h, _, tilts, _, tensor) = run(stepper, state, 1600, 10)
    strain = np.asarray(tilts)[:, 0] / float(cell.cell[0, 0])
    late = slice(len(strain) // 2, None)
    # measured: mean xy / lx over the second half 0.0025 (thermal rms about 0.01), mean
    # shear stress -0.002 +- 0.012
    assert abs(np.mean(strain[late])) < 0.015
    shear = np.asarray(tensor)[late, 0, 1]
    assert abs(np.mean(shear)) < 4 * _block_error(shear, 5) + 0.05
    side = float(cell.cell[0, 0])
    # the other tilts stay at the thermal level (measured at most 0.03 lx)
    assert np.max(np.abs(np.asarray(tilts)[:, 1:])) / side < 0.05
    # measured -0.004 over 8 tau: the extended energy is conserved
    assert abs(float(h[-1] - h0)) < 0.05


@pytest.mark.slow
def test_liquid_density_equals_isotropic_and_mean_pressure_tensor_is_p(full_size):
    """LJ at T* 1.5, P* 1 (a liquid) from a sheared fcc start: the mean density equals the
    isotropic barostat's, the mean pressure tensor is P 1 (no mean shear stress).
    Measured (full: 256 atoms, 4000 steps each): density 0.5696 +- 0.0023 (full) and
    0.5829 +- 0.0037 (iso); pressure tensor diagonal 1.010, 0.989, 1.008 (+- 0.017),
    off-diagonal within 0.002 of 0 (+- 0.01 to 0.016); initial shear stress -0.24; with
    seed 2 and tau_barostat 2 over 8000 steps 0.5733 +- 0.0034 against 0.5801 +- 0.0023.
    Ten blocks of 20 to 40 tau understate the error (a sample's density scatters by 0.018,
    the barostat oscillates over a few tau: about 0.005 per run); more and longer runs
    agree, 0.5772 +- 0.0016 (full, four runs of 30 to 80 tau) against 0.5759 +- 0.0012
    (iso, seven runs; 500 atoms: 0.5760 +- 0.0018 against 0.5786 +- 0.0026), and the step's
    invariant measure gives the isotropic volume distribution
    (tests/md/test_barostat_measure.py).
    A liquid's cell shape wanders (no restoring force on it): tilts flip, but the side
    ratios drift too (8000 steps: 9.3 x 7.0 x 6.9 from a 7.4 cube)."""
    steps = 4000 if full_size else 600
    x, v, box, cell = sheared_system(4, 0.637, 1.5, xy=0.2)
    lj = md.LennardJones(cutoff=CUTOFF)
    n = x.shape[0]
    stepper = flexible(lj, cell)
    state = stepper.init(x, v, md.neighbor_list(x, cell, CUTOFF))
    assert float(_observed(stepper, state)[1][0, 1]) < -0.15  # sheared start: -0.24
    _, (_, volume, _, pressure, tensor) = run(stepper, state, steps, 10)
    keep = slice(len(volume) // 5, None)
    density = n / np.asarray(volume)[keep]
    tensor = np.asarray(tensor)[keep]
    error = _block_error(tensor)
    assert np.all(np.abs(tensor.mean(0) - np.eye(3)) < 4 * error + 0.02)
    iso_positions, _ = md.lattice("fcc", 4, density=0.637, dtype=jnp.float64)
    iso = md.MartynaTobiasKlein(
        lj, box, dt=0.005, temperature=1.5, pressure=1.0, tau=0.5, tau_barostat=1.0
    )
    iso_state = iso.init(iso_positions, v, md.neighbor_list(iso_positions, box, CUTOFF))
    _, (_, iso_volume, _, _, _) = run(iso, iso_state, steps, 10)
    iso_density = n / np.asarray(iso_volume)[keep]
    combined = np.hypot(_block_error(density), _block_error(iso_density))
    assert abs(density.mean() - iso_density.mean()) < 4 * combined + 0.005
    assert float(np.mean(pressure[keep])) == pytest.approx(1.0, abs=0.1)


def test_bad_input_names_the_argument():
    positions, box = md.lattice("fcc", 3, density=0.6, dtype=jnp.float64)
    lj = md.LennardJones(cutoff=CUTOFF)
    side = float(box.lengths[0])
    with pytest.raises(hybrax.ConfigurationError, match=r'couple="full".*TriclinicBox'):
        md.MartynaTobiasKlein(lj, box, dt=0.005, temperature=1.5, pressure=1.0, couple="full")
    tilted = md.TriclinicBox.from_lammps(side, side, side, xy=1.0)
    with pytest.raises(hybrax.ConfigurationError, match='PeriodicBox with couple="iso"'):
        md.MartynaTobiasKlein(lj, tilted, dt=0.005, temperature=1.5, pressure=1.0)
    with pytest.raises(hybrax.ConfigurationError, match="lower triangular"):
        upper = md.TriclinicBox([[side, 1.0, 0.0], [0.0, side, 0.0], [0.0, 0.0, side]])
        flexible(lj, upper)
    with pytest.raises(hybrax.ConfigurationError, match="perpendicular widths"):
        flexible(lj, md.TriclinicBox.from_lammps(side, side, side, xy=0.9 * side))
    with pytest.raises(hybrax.ConfigurationError, match='"full"'):
        flexible(lj, tilted, couple="tri")
    # a state from another coupling
    x = tilted.wrap(positions)
    nbrs = md.neighbor_list(x, tilted, CUTOFF)
    aniso = md.MartynaTobiasKlein(
        lj, box, dt=0.005, temperature=1.5, pressure=1.0, couple="aniso"
    ).init(positions, None, md.neighbor_list(positions, box, CUTOFF))
    with pytest.raises(hybrax.ConfigurationError, match="strain rates"):
        flexible(lj, tilted).step(aniso)
    with pytest.raises(hybrax.ConfigurationError, match="pressure_tensor needs"):
        iso = md.MartynaTobiasKlein(lj, box, dt=0.005, temperature=1.5, pressure=1.0)
        iso.pressure_tensor(iso.init(positions, None, md.neighbor_list(positions, box, CUTOFF)))
    assert flexible(lj, tilted).init(x, None, nbrs).barostat.velocities.shape == (6,)


def test_a_tilt_beyond_its_limit_flips_to_the_same_lattice():
    # 108 atoms of fcc (3 cells a side) in a cell tilted by xy = 2/3 lx: the same unstrained
    # crystal, since (2/3 lx, 0, 0) is a lattice vector. The first step flips b to b - a
    # (xy = -1/3 lx); the extended energy is conserved through the flip, the list rebuilt
    positions, box = md.lattice("fcc", 3, density=0.6, dtype=jnp.float64)
    v = md.maxwell_boltzmann(jax.random.key(1), positions.shape[0], 1.5).astype(jnp.float64)
    side = float(box.lengths[0])
    cell = md.TriclinicBox.from_lammps(side, side, side, xy=2.0 * side / 3.0)
    x = cell.wrap(positions)
    lj = md.LennardJones(cutoff=2.2)
    stepper = flexible(lj, cell, dt=0.002)
    state = stepper.init(x, v, md.neighbor_list(x, cell, 2.2))
    reference = md.neighbor_list(positions, box, 2.2)
    assert float(state.potential_energy) == pytest.approx(
        float(_energy_and_forces(lj, positions, reference, box)[0]), rel=1e-12
    )  # the tilted cell holds the cubic crystal
    h0 = float(_observed(stepper, state)[0])
    final, (h, _, tilts, _, _) = run(stepper, state, 100)
    assert float(tilts[0, 0]) / side == pytest.approx(-1.0 / 3.0, abs=0.01)
    assert np.all(np.abs(np.asarray(tilts)[:, 0]) / side < 0.6)
    # measured 0.037 over these 0.2 tau; the same crystal in the cubic cell (no flip): 0.033
    assert float(np.max(np.abs(np.asarray(h) - h0))) < 0.05
    current = stepper.state_box(final)
    fresh = md.neighbor_list(final.positions, current, 2.2)
    energy, forces = _energy_and_forces(lj, final.positions, fresh, current)
    assert float(final.potential_energy) == pytest.approx(float(energy), rel=1e-12)
    assert np.allclose(final.forces, forces, rtol=0, atol=1e-10)
    # md.simulate regrows an overflowed list in the state's (flipped, tilted) cell and
    # recomputes forces and the virial tensor there
    nan = jnp.asarray(jnp.nan, x.dtype)
    broken = eqx.tree_at(
        lambda s: (s.neighbors.overflow, s.forces, s.barostat.virial),
        final,
        (jnp.asarray(True), nan * final.forces, nan * final.barostat.virial),
    )
    with pytest.warns(md.NeighborListOverflowWarning):
        regrown, _ = md.simulate(stepper, broken, 0, progress=False)
    assert np.allclose(regrown.barostat.virial, final.barostat.virial, rtol=1e-12, atol=1e-12)
    assert np.allclose(regrown.forces, final.forces, rtol=0, atol=1e-10)
    assert np.array_equal(regrown.barostat.reference_tilts, regrown.barostat.tilts)


def _npt_lammps():
    """benchmarks/md_npt_lammps.py, the LAMMPS side of the comparison (the data file of a
    triclinic start, ``fix npt ... tri``, its thermo table) and its parameter matching."""
    path = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "md_npt_lammps.py"
    spec = importlib.util.spec_from_file_location("md_npt_lammps", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _solid_statistics(density, pressure_diagonal, tilts):
    """Means after the first fifth: density, mean diagonal pressure, rms tilt (sigma)."""
    keep = slice(len(density) // 5, None)
    return np.array(
        [
            np.mean(density[keep]),
            np.mean(pressure_diagonal[keep]),
            np.sqrt(np.mean(np.asarray(tilts)[keep] ** 2)),
        ]
    )


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("lmp") is None, reason="LAMMPS (lmp) is not on PATH")
def test_flexible_npt_matches_lammps_fix_npt_tri(full_size):
    """``couple="full"`` against LAMMPS ``fix npt ... tri`` (29 Sep 2021) from the same
    sheared starts, matched parameters (benchmarks/md_npt_lammps.py: Tdamp = tau, the same
    barostat mass per strain rate; both barostat chains target 6 kT; they differ in the
    first barostat-chain mass and by O(1/N) in the MTK terms). Errors from the scatter
    between independent seeds.
    Reduced: fcc solid, 108 atoms, T* 0.5, P* 1, cut-off 2.2, sheared xy = 0.05 lx, three
    hybrax and eight LAMMPS runs of 8 tau: the mean density, mean diagonal pressure and rms
    tilt (the cell's shape fluctuations, set by the shear compliance and the sampled
    measure). Full: benchmarks/md_npt_lammps.py's comparison at 256 atoms, the solid and
    the liquid (T* 1.5, P* 1, cut-off 2.5), six seeds of 20 tau each: the density and the
    mean diagonal pressure, for the solid also the rms tilt (335 s of CPU, passed).
    Longer runs (eight seeds of 30 tau): benchmarks/results/md_npt_lammps_*.json."""
    npt = _npt_lammps()
    if full_size:
        for name in ("solid", "liquid"):
            result = npt.compare(name, cells=4, seeds=6, steps=4000)
            columns = ("density", "p_mean", "rms_tilt")[: 3 if name == "solid" else 2]
            for column in columns:  # six seeds (five degrees of freedom): 5 sigma
                assert abs(result["table"][column]["z"]) < 5.0, (name, column, result)
        return
    config = npt.STATES["solid"]
    temperature, pressure, pdamp = (config[k] for k in ("temperature", "pressure", "pdamp"))
    lj = md.LennardJones(cutoff=2.2)
    hybrax_runs, lammps_runs = [], []
    for seed in range(1, 9):
        x, v, _, cell = sheared_system(3, config["density"], temperature, xy=config["xy"],
                                       seed=seed)  # fmt: skip
        n = x.shape[0]
        if seed <= 3:
            stepper = flexible(lj, cell, temperature=temperature,
                               tau_barostat=pdamp * np.sqrt((n + 1) / n))  # fmt: skip
            state = stepper.init(x, v, md.neighbor_list(x, cell, 2.2))
            _, (_, volume, tilts, _, tensor) = run(stepper, state, 1600, 10)  # one compilation
            diagonal = np.trace(np.asarray(tensor), axis1=1, axis2=2) / 3
            hybrax_runs.append(_solid_statistics(n / np.asarray(volume), diagonal, tilts))
        table = npt.run_lammps(
            np.asarray(x), np.asarray(v), np.asarray(cell.cell), temperature=temperature,
            pressure=pressure, pdamp=pdamp, cutoff=2.2, steps=1600,
            thermo="density pxx pyy pzz xy xz yz",
        )  # fmt: skip
        lammps_runs.append(_solid_statistics(table[:, 0], table[:, 1:4].mean(1), table[:, 4:]))
    means, errors = [], []
    for runs in (np.asarray(hybrax_runs), np.asarray(lammps_runs)):
        means.append(runs.mean(0))
        errors.append(runs.std(0, ddof=1) / np.sqrt(len(runs)))
    difference, combined = means[0] - means[1], np.hypot(*errors)
    # measured (hybrax, LAMMPS): density 0.9931 +- 0.0005, 0.9934 +- 0.0003; mean pressure
    # 1.0075 +- 0.0008, 1.0016 +- 0.0023; rms tilt 0.063 +- 0.004, 0.057 +- 0.003 sigma
    # (three hybrax seeds: an error of two degrees of freedom, hence 5 sigma)
    tolerance = 5 * combined + np.array([2e-4, 5e-3, 2e-3])
    assert np.all(np.abs(difference) < tolerance), (means, errors)
