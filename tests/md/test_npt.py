"""NPT: the Martyna–Tobias–Klein barostat with Nosé–Hoover chains (md.MartynaTobiasKlein)."""

import shutil
import subprocess

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from scipy.integrate import quad
from scipy.optimize import brentq

import hybrax
import hybrax.md as md

CUTOFF = 2.5


class PressureTailCorrection(md.AbstractEnergy):
    """The standard long-range correction of the LJ virial beyond the cut-off (g(r) = 1),
    ``P_tail = (16/3) pi rho^2 [(2/3) rc^-9 - rc^-3]``, as an energy ``c N^2 / V`` whose
    strain derivative is that pressure (no forces). It is what LAMMPS ``pair_modify tail
    yes`` adds to the pressure the barostat reads, so the truncated system follows the
    equation of state of the full LJ fluid."""

    cutoff: float = eqx.field(static=True)

    def energy(self, positions, neighbors, box):
        rc = self.cutoff
        c = 16.0 / 3.0 * np.pi * (2.0 / 3.0 * rc**-9 - rc**-3)
        n = positions.shape[0]
        return c * n * n / box.volume.astype(positions.dtype)


# Johnson, Zollweg & Gubbins (1993), Mol. Phys. 78, 591, Table 10: the modified
# Benedict-Webb-Rubin equation of state of the full Lennard-Jones fluid (gamma = 3).
_JZG = (
    0.8623085097507421, 2.976218765822098, -8.402230115796038, 0.1054136629203555,
    -0.8564583828174598, 1.582759470107601, 0.7639421948305453, 1.753173414312048,
    2798.291772190376, -0.04838826574173006, 0.9963265197721935, -36.98000291272493,
    20.84012299230259, 83.0546383537925, -957.4799715203068, -147.7746229234994,
    63.98607852471505, 16.03993673294834, 68.05916615864377, -2791.293578795945,
    -6.245128304568454, -8116.836104958410, 14.88735559561229, -10593.46754655084,
    -113.1607632802822, -8867.771540418822, -39.86982844450543, -4689.270299917261,
    259.3535277438717, -2694.523589434903, -721.8487631550215, 172.1802165295764,
)  # fmt: skip


def jzg_pressure(density: float, temperature: float) -> float:
    """JZG (1993) eq. (5): ``P = rho T + sum_i a_i rho^(i+1) + F sum_i b_i rho^(2i+1)``."""
    x, t, rho = _JZG, temperature, density
    a = (
        x[0] * t + x[1] * np.sqrt(t) + x[2] + x[3] / t + x[4] / t**2,
        x[5] * t + x[6] + x[7] / t + x[8] / t**2,
        x[9] * t + x[10] + x[11] / t,
        x[12],
        x[13] / t + x[14] / t**2,
        x[15] / t,
        x[16] / t + x[17] / t**2,
        x[18] / t**2,
    )
    b = (
        x[19] / t**2 + x[20] / t**3,
        x[21] / t**2 + x[22] / t**4,
        x[23] / t**2 + x[24] / t**3,
        x[25] / t**2 + x[26] / t**4,
        x[27] / t**2 + x[28] / t**3,
        x[29] / t**2 + x[30] / t**3 + x[31] / t**4,
    )
    f = np.exp(-3.0 * rho**2)
    attractive = sum(a[i] * rho ** (i + 2) for i in range(8))
    return rho * t + attractive + f * sum(b[i] * rho ** (2 * i + 3) for i in range(6))


def jzg_density(pressure: float, temperature: float) -> float:
    """The liquid density of the JZG equation of state at ``pressure`` (supercritical)."""
    return brentq(lambda rho: jzg_pressure(rho, temperature) - pressure, 0.3, 1.0)


def test_jzg_equation_of_state_has_the_lj_second_virial_coefficient():
    # low density: P / (rho T) = 1 + B2(T) rho, with B2 = -2 pi int (exp(-u/T) - 1) r^2 dr
    for t in (1.0, 1.5, 2.0):

        def mayer(r, t=t):
            return (np.exp(-4 * (r**-12 - r**-6) / t) - 1) * r * r

        b2 = -2 * np.pi * quad(mayer, 1e-6, 50, limit=200)[0]
        rho = 1e-4
        assert (jzg_pressure(rho, t) / (rho * t) - 1) / rho == pytest.approx(b2, rel=1e-3)
    assert jzg_density(1.0, 1.5) == pytest.approx(0.6368, abs=2e-4)


def lj_system(cells, density, temperature, *, cutoff=CUTOFF, seed=1, tail=False):
    positions, box = md.lattice("fcc", cells, density=density, dtype=jnp.float64)
    v = md.maxwell_boltzmann(jax.random.key(seed), positions.shape[0], temperature)
    energy = md.LennardJones(cutoff=cutoff)
    if tail:
        energy = energy + PressureTailCorrection(cutoff)
    return positions, v.astype(jnp.float64), box, energy


@eqx.filter_jit
def run(stepper, state, steps: int, every: int = 1):
    """``steps`` steps; every ``every`` steps the extended energy, volume, kinetic
    temperature and pressure (one compilation for steppers that differ only in leaves)."""

    def interval(s, _):
        s = lax.fori_loop(0, every, lambda _, s: stepper.step(s), s)
        seen = (
            stepper.extended_energy(s),
            stepper.state_box(s).volume,
            md.temperature(s.velocities),
            stepper.instantaneous_pressure(s),
        )
        return s, seen

    return lax.scan(interval, state, None, length=steps // every)


_pressure = eqx.filter_jit(md.pressure)  # one compilation for the checks below


@eqx.filter_jit
def _energy_and_forces(energy, positions, neighbors, box):
    return energy.energy_and_forces(positions, neighbors, box)


@eqx.filter_jit
def _extended_energy(stepper, state):
    return stepper.extended_energy(state)


def test_extended_energy_is_conserved_and_its_error_falls_like_dt_squared():
    positions, v, box, lj = lj_system(3, 0.6, 1.5)  # 108 atoms, box 5.65
    nbrs = md.neighbor_list(positions, box, CUTOFF)
    errors = []
    for dt in (0.004, 0.002):
        stepper = md.MartynaTobiasKlein(
            lj, box, dt=dt, temperature=1.5, pressure=1.0, tau=0.5, tau_barostat=1.0
        )
        state = stepper.init(positions, v, nbrs)
        final, (h, volume, _, _) = run(stepper, state, 100)  # compiled once for 108 atoms
        h0 = float(_extended_energy(stepper, state))
        span = 50 if dt == 0.004 else 100  # the same 0.2 tau
        errors.append(float(np.max(np.abs(np.asarray(h[:span]) - h0))))
        assert float(jnp.ptp(volume)) > 1.0  # the box really moved
    # measured: 0.147 and 0.036 (ratio 4.1); NVE velocity Verlet from the same start in the
    # fixed box: 0.105 and 0.026. The kinetic energy is 241.
    assert errors[0] < 0.25
    assert 3.0 < errors[0] / errors[1] < 5.0
    # the pressure from the virial of the step equals md.pressure's in the state's box
    current = stepper.state_box(final)
    expected = _pressure(lj, final.positions, current, final.neighbors, final.velocities)
    assert float(stepper.instantaneous_pressure(final)) == pytest.approx(float(expected), 1e-12)
    assert stepper.init(final) is final  # idempotent
    # the list kept up with the moving box: energy and forces equal a fresh list's
    fresh = md.neighbor_list(final.positions, current, CUTOFF)
    energy, forces = _energy_and_forces(lj, final.positions, fresh, current)
    assert float(final.potential_energy) == pytest.approx(float(energy), rel=1e-12)
    assert np.allclose(final.forces, forces, rtol=0, atol=1e-10)


def _equilibrium_run(cells, steps, tau_barostat):
    """LJ with the tail correction at T* = 1.5, P* = 1.0 from the JZG density."""
    positions, v, box, energy = lj_system(cells, 0.637, 1.5, tail=True)
    nbrs = md.neighbor_list(positions, box, CUTOFF)
    stepper = md.MartynaTobiasKlein(
        energy, box, dt=0.005, temperature=1.5, pressure=1.0, tau=0.5, tau_barostat=tau_barostat
    )
    state = stepper.init(positions, v, nbrs)
    final, (h, volume, temperature, pressure) = run(stepper, state, steps, 10)
    keep = slice(len(volume) // 5, None)  # the first fifth equilibrates
    n = positions.shape[0]
    density = n / np.asarray(volume)[keep]
    blocks = np.array_split(density, 10)
    error = np.std([b.mean() for b in blocks]) / np.sqrt(len(blocks))
    return {
        "density": density.mean(),
        "density_error": error,
        "temperature": float(np.mean(temperature[keep])),
        "pressure": float(np.mean(pressure[keep])),
        "drift": float(abs(h[-1] - h[0])),
        "final": final,
    }


@pytest.fixture(scope="module")
def equilibrium(full_size):
    # full: 256 atoms, 100 tau (about 25 s); reduced: 108 atoms, 20 tau
    return _equilibrium_run(4, 20000, 2.0) if full_size else _equilibrium_run(3, 4000, 1.0)


@pytest.mark.slow
def test_mean_temperature_pressure_and_jzg_density(equilibrium, full_size):
    """Means over the run against the targets and the JZG (1993) density 0.6368 (LJ
    truncated at 2.5 sigma, shifted, plus the standard tail correction of the pressure).
    Measured: full (256 atoms, 20000 steps) density 0.6388 +- 0.0017, T 1.498, P 1.001
    (LAMMPS fix npt: 0.6388 +- 0.0018); reduced (108 atoms, 4000 steps) 0.631 +- 0.006,
    T 1.519, P 0.993 (LAMMPS: 0.634 +- 0.008)."""
    tolerance = 0.02 if full_size else 0.03  # 108 atoms fluctuate more
    assert equilibrium["temperature"] == pytest.approx(1.5, rel=tolerance)
    assert equilibrium["pressure"] == pytest.approx(1.0, abs=0.05 if full_size else 0.1)
    assert equilibrium["density"] == pytest.approx(jzg_density(1.0, 1.5), rel=tolerance)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("lmp") is None, reason="LAMMPS (lmp) is not on PATH")
def test_mean_density_matches_lammps_fix_npt(equilibrium, full_size, tmp_path):
    cells, steps, pdamp = (4, 20000, 2.0) if full_size else (3, 4000, 1.0)
    script = f"""units lj
atom_style atomic
lattice fcc 0.637
region box block 0 {cells} 0 {cells} 0 {cells}
create_box 1 box
create_atoms 1 box
mass 1 1.0
velocity all create 1.5 87287 loop geom
pair_style lj/cut {CUTOFF}
pair_coeff 1 1 1.0 1.0 {CUTOFF}
pair_modify tail yes
neighbor 0.3 bin
neigh_modify every 1 delay 0 check yes
fix 1 all npt temp 1.5 1.5 0.5 iso 1.0 1.0 {pdamp}
thermo_style custom step density
thermo 10
run {steps}
"""
    (tmp_path / "in.npt").write_text(script)
    subprocess.run(
        ["lmp", "-in", "in.npt", "-log", "log.npt", "-screen", "none"],
        cwd=tmp_path,
        check=True,
        timeout=300,
    )
    rows = []
    for line in (tmp_path / "log.npt").read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit():
            rows.append(float(parts[1]))
    density = np.asarray(rows[len(rows) // 5 :])
    error = np.std([b.mean() for b in np.array_split(density, 10)]) / np.sqrt(10)
    combined = np.hypot(error, equilibrium["density_error"])
    assert abs(density.mean() - equilibrium["density"]) < max(4.0 * combined, 0.005)


def test_a_frozen_barostat_follows_the_nose_hoover_chain():
    # an enormous barostat mass keeps the box (to 1e-12 over the run): the particles and
    # their chain must then follow md.NoseHooverChain step for step. The NPT run starts
    # from the NVT state (init adds the barostat variables it lacks).
    positions, v, box, lj = lj_system(3, 0.6, 1.5)
    nbrs = md.neighbor_list(positions, box, CUTOFF)
    nvt = md.NoseHooverChain(lj, box, dt=0.002, temperature=1.5, tau=0.5)
    start = nvt.init(positions, v, nbrs)
    npt = md.MartynaTobiasKlein(
        lj, box, dt=0.002, temperature=1.5, pressure=1.0, tau=0.5, tau_barostat=1e9
    )
    assert start.barostat is None and npt.init(start).barostat is not None
    final, _ = run(npt, npt.init(start), 100)
    reference, _ = hybrax.rollout(nvt, start, 100)
    assert np.allclose(final.barostat.lengths, box.lengths, rtol=1e-12, atol=0)
    assert np.allclose(final.positions, reference.positions, rtol=0, atol=1e-9)
    assert np.allclose(final.velocities, reference.velocities, rtol=0, atol=1e-9)
    assert np.allclose(final.thermostat.positions, reference.thermostat.positions, atol=1e-9)


def test_a_list_replaced_from_outside_is_rebuilt_in_the_state_box():
    # a list replaced by hand, built for the stepper's initial box at the state's
    # positions: the next step rebuilds it in the state's box
    positions, v, box, lj = lj_system(3, 0.6, 1.5)
    stepper = md.MartynaTobiasKlein(lj, box, dt=0.002, temperature=1.5, pressure=2.0)
    state = stepper.init(positions, v, md.neighbor_list(positions, box, CUTOFF))
    middle, _ = run(stepper, state, 100)
    assert not np.allclose(stepper.state_box(middle).lengths, box.lengths)
    swapped = eqx.tree_at(
        lambda s: s.neighbors, middle, md.neighbor_list(middle.positions, box, CUTOFF)
    )
    final, _ = run(stepper, swapped, 100)
    reference, _ = run(stepper, middle, 100)
    assert int(final.neighbors.num_builds) > 1
    assert np.allclose(final.positions, reference.positions, rtol=0, atol=1e-9)


def test_simulate_regrows_an_overflowed_list_in_the_state_box():
    # an NPT state compressed by 5% whose cell list, built for the initial box, has
    # overflowed (flagged as a step does: its grid no longer covers the state's box; energy,
    # forces and virial NaN). simulate must regrow the list, and recompute the forces and
    # the virial, in the state's box, not in the stepper's initial one
    positions, box = md.lattice("fcc", 3, density=0.8, dtype=jnp.float64)
    noise = np.random.default_rng(0).normal(scale=0.05, size=positions.shape)
    positions = jnp.asarray(np.mod(positions + noise, np.asarray(box.lengths)))
    lj = md.LennardJones(cutoff=1.5)
    stepper = md.MartynaTobiasKlein(lj, box, dt=0.005, temperature=1.0, pressure=5.0)
    state = stepper.init(positions, None, md.neighbor_list(positions, box, 1.5, skin=0.2))
    x, lengths = 0.95 * state.positions, 0.95 * state.barostat.lengths
    current = md.PeriodicBox(lengths)
    cells = md.CellNeighborList.build(x, box, 1.5, skin=0.2)
    covers = eqx.filter_jit(md.CellNeighborList.covers)(cells, current)
    cells = eqx.tree_at(lambda n: n.overflow, cells, ~covers)
    assert bool(cells.overflow)
    nan = jnp.asarray(jnp.nan, x.dtype)
    compressed = eqx.tree_at(
        lambda s: (s.positions, s.neighbors, s.forces, s.potential_energy, s.barostat.lengths,
                   s.barostat.virial),
        state,
        (x, cells, nan * state.forces, nan, lengths, nan * state.barostat.virial),
    )  # fmt: skip
    with pytest.warns(md.NeighborListOverflowWarning):
        regrown, _ = md.simulate(stepper, compressed, 0, progress=False)
    assert not bool(regrown.neighbors.overflow)
    assert bool(regrown.neighbors.covers(current))
    # the same evaluation from a fresh list, by a stepper whose initial box is that one
    fresh = md.MartynaTobiasKlein(lj, current, dt=0.005, temperature=1.0, pressure=5.0).init(
        x, None, md.neighbor_list(x, current, 1.5, skin=0.2)
    )
    assert np.max(np.abs(fresh.forces)) > 1.0  # not a perfect lattice
    assert np.allclose(regrown.forces, fresh.forces, rtol=0, atol=1e-12)
    assert float(regrown.potential_energy) == pytest.approx(float(fresh.potential_energy), 1e-12)
    assert np.allclose(regrown.barostat.virial, fresh.barostat.virial, rtol=1e-12, atol=0)


def test_anisotropic_axes_move_independently_and_conserve_energy():
    positions, v, box, lj = lj_system(3, 0.6, 1.5)
    stepper = md.MartynaTobiasKlein(
        lj, box, dt=0.002, temperature=1.5, pressure=1.0, tau_barostat=1.0, couple="aniso"
    )
    state = stepper.init(positions, v, md.neighbor_list(positions, box, CUTOFF))
    assert state.barostat.velocities.shape == (3,)
    final, (h, _, _, _) = run(stepper, state, 100)
    lengths = np.asarray(final.barostat.lengths)
    assert np.ptp(lengths) > 1e-3  # the axes no longer agree
    expected = _pressure(lj, final.positions, stepper.state_box(final), final.neighbors,
                           final.velocities)  # fmt: skip
    tensor = stepper.pressure_tensor(final)
    assert float(jnp.mean(tensor)) == pytest.approx(float(expected), rel=1e-12)
    assert float(stepper.instantaneous_pressure(final)) == pytest.approx(float(expected), 1e-12)
    # measured 0.036, as isotropic coupling at this dt (test above)
    assert float(jnp.max(jnp.abs(h - _extended_energy(stepper, state)))) < 0.1


def test_jit_and_gradient_of_mean_volume_wrt_target_pressure():
    # 32 atoms (box 3.76 sigma, so a cut-off under 1.88) and one chain link: the compile of
    # the reverse pass dominates
    positions, v, box, lj = lj_system(2, 0.6, 1.5, cutoff=1.8)
    nbrs = md.neighbor_list(positions, box, 1.8)
    stepper = md.MartynaTobiasKlein(
        lj, box, dt=0.005, temperature=1.5, pressure=1.0, tau_barostat=0.5, chain_length=1
    )
    state = stepper.init(positions, v, nbrs)

    @jax.jit
    @jax.value_and_grad
    def mean_volume(pressure):
        npt = eqx.tree_at(lambda s: s.pressure, stepper, pressure)

        def step(s, _):
            s = npt.step(s)
            return s, npt.state_box(s).volume

        return jnp.mean(lax.scan(step, state, None, length=8)[1])

    p, h = jnp.asarray(1.0, jnp.float64), 1e-5
    _, grad = mean_volume(p)
    fd = (mean_volume(p + h)[0] - mean_volume(p - h)[0]) / (2 * h)
    assert float(grad) < 0  # a higher target pressure compresses the box
    assert float(grad) == pytest.approx(float(fd), rel=1e-6)


def test_a_box_shrinking_below_twice_the_cutoff_raises():
    # 108 atoms in a box of 5.04 sigma, just wider than twice the cut-off, under a huge
    # pressure: the list no longer covers the box once it is shorter than 5
    positions, v, box, lj = lj_system(3, 0.8442, 1.0)
    stepper = md.MartynaTobiasKlein(
        lj, box, dt=0.002, temperature=1.0, pressure=200.0, tau_barostat=0.1
    )
    state = stepper.init(positions, v, md.neighbor_list(positions, box, CUTOFF))
    with pytest.raises(eqx.EquinoxRuntimeError, match=r"NeighborListError.*overflow"):
        run(stepper, state, 100)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"pressure": float("nan")}, "pressure"),
        ({"tau": -0.5}, "tau"),
        ({"tau_barostat": 0.0}, "tau_barostat"),
        ({"temperature": 0.0}, "temperature"),
        ({"chain_length": 0}, "chain_length"),
        ({"couple": "xyz"}, "couple"),
        ({"box": md.FreeSpace()}, "box"),
        ({"box": md.PeriodicBox(4.0)}, "twice the energy's cut-off"),
    ],
)
def test_bad_parameters_raise_configuration_errors(change, match):
    arguments = {
        "energy": md.LennardJones(cutoff=2.5),
        "box": md.PeriodicBox(6.0),
        "dt": 0.005,
        "temperature": 1.5,
        "pressure": 1.0,
    } | change
    with pytest.raises(hybrax.ConfigurationError, match=match):
        md.MartynaTobiasKlein(**arguments)


def test_wrong_types(wrong_type):
    lj, box = md.LennardJones(), md.PeriodicBox(6.0)
    with wrong_type("pressure", hybrax.ConfigurationError, "pressure"):
        md.MartynaTobiasKlein(lj, box, dt=0.005, temperature=1.5, pressure="high")
    with wrong_type("tau_barostat", hybrax.ConfigurationError, "tau_barostat"):
        md.MartynaTobiasKlein(lj, box, 0.005, 1.5, 1.0, tau_barostat=[1.0, 2.0])
    with wrong_type("energy", hybrax.ConfigurationError, "energy"):
        md.MartynaTobiasKlein("lj", box, dt=0.005, temperature=1.5, pressure=1.0)


def test_step_needs_the_barostat_state():
    positions, v, box, lj = lj_system(3, 0.6, 1.5)
    nbrs = md.neighbor_list(positions, box, CUTOFF)
    nve_state = md.VelocityVerlet(lj, box, dt=0.005).init(positions, v, nbrs)
    stepper = md.MartynaTobiasKlein(lj, box, dt=0.005, temperature=1.5, pressure=1.0)
    with pytest.raises(hybrax.ConfigurationError, match="init"):
        stepper.step(nve_state)
    aniso = md.MartynaTobiasKlein(lj, box, dt=0.005, temperature=1.5, pressure=1.0,
                                  couple="aniso")  # fmt: skip
    with pytest.raises(hybrax.ConfigurationError, match="couple"):
        stepper.step(aniso.init(nve_state))


def test_a_negative_target_pressure_is_accepted():
    """Tension (a stretched solid, a liquid below its vapour pressure) is physical; LAMMPS's
    fix npt accepts it too."""
    stepper = md.MartynaTobiasKlein(
        md.LennardJones(cutoff=2.5), md.PeriodicBox(6.0), dt=0.005, temperature=1.5, pressure=-0.5
    )
    assert float(stepper.pressure) == -0.5
