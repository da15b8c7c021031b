"""An equivariant neural potential for copper, trained on ASE's EMT and validated against it.

    taskset -c 0 python benchmarks/md_equivariant.py [--quick] [--json PATH]

Data (all labelled by ``ase.calculators.emt.EMT``, metal units: Å, eV, amu): fcc Cu 3x3x3
(108 atoms) MD snapshots at 300, 600 and 900 K (ASE Langevin), orthorhombically strained
cells (±3 % per axis) with thermal rattling, a (001) slab with 8 Å of vacuum, and a
vacancy (107 atoms) at 300 and 600 K; energies, forces and stress. Held-out frames come
from independent runs (other seeds). `hybrax.md.EquivariantPotential` (l_max = 1, two
layers, cutoff 4 Å) is trained with `hybrax.hybrid.fit` on energy per atom, forces and
stress. Reported: held-out force MAE / RMSE (eV/Å), energy MAE (meV/atom), stress MAE
(GPa) per kind of structure; an NVE run with the trained potential (energy drift); the
lattice constant, bulk modulus and C11 of the trained potential and of EMT (the same fits
to E(a) and E(strain)); and MD atom-steps per second of the trained potential, of hybrax's
EAM (``Cu_u3.eam``) and of ASE's EMT (pure Python/NumPy) on this CPU. Results go to
``benchmarks/results/md_equivariant.{json,txt}`` (``--json`` overrides the JSON path).
"""

from __future__ import annotations

import io
import os
import sys
import time
from contextlib import redirect_stdout

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import Record, block, parse_args, report, write_environment

jax.config.update("jax_enable_x64", True)

import hybrax.md as md  # noqa: E402
from hybrax import hybrid  # noqa: E402

CUTOFF = 4.0  # Å
CELLS = 3
MASS = 63.546  # amu
FS = 1.0 / md.Units.metal().time_fs  # one femtosecond in hybrax metal time units
EV_A3_TO_GPA = 160.21766
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


# ----------------------------------------------------------------------------- data (ASE)
def emt():
    from ase.calculators.emt import EMT

    return EMT()


def cu_bulk(a: float):
    from ase.build import bulk

    return bulk("Cu", "fcc", a=a, cubic=True) * (CELLS, CELLS, CELLS)


def emt_lattice_constant() -> float:
    """EMT's zero-pressure fcc lattice constant (minimum of E(a), refined twice)."""
    a_grid = np.linspace(3.5, 3.7, 21)
    for _ in range(2):
        energies = []
        for a in a_grid:
            atoms = cu_bulk(a)
            atoms.calc = emt()
            energies.append(atoms.get_potential_energy())
        best = a_grid[int(np.argmin(energies))]
        a_grid = np.linspace(best - 0.01, best + 0.01, 21)
    coefficients = np.polyfit(a_grid, energies, 2)
    return float(-coefficients[1] / (2 * coefficients[0]))


def label(atoms) -> dict:
    """Wrapped positions, box lengths and EMT energy, forces and stress (3x3, eV/Å^3)."""
    atoms = atoms.copy()
    atoms.wrap()
    atoms.calc = emt()
    s = atoms.get_stress(voigt=True)  # xx yy zz yz xz xy
    stress = np.array([[s[0], s[5], s[4]], [s[5], s[1], s[3]], [s[4], s[3], s[2]]])
    return dict(
        positions=atoms.get_positions(),
        lengths=np.diag(atoms.get_cell()).copy(),
        energy=atoms.get_potential_energy(),
        forces=atoms.get_forces(),
        stress=stress,
    )


def snapshots(atoms, temperature: float, count: int, seed: int, every: int = 25) -> list[dict]:
    """``count`` frames of an ASE Langevin run (2 fs steps) after 100 steps of equilibration."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    atoms = atoms.copy()
    atoms.calc = emt()
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=2 * temperature, rng=rng)
    dyn = Langevin(atoms, 2 * units.fs, temperature_K=temperature, friction=0.02, rng=rng)
    dyn.run(100)
    frames = []
    for _ in range(count):
        dyn.run(every)
        frames.append(label(atoms))
    return frames


def strained(a: float, count: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        atoms = cu_bulk(a)
        atoms.set_cell(atoms.get_cell() * (1 + rng.uniform(-0.03, 0.03, 3)), scale_atoms=True)
        atoms.rattle(0.04, seed=rng.integers(1 << 30))
        frames.append(label(atoms))
    return frames


def slab(a: float):
    atoms = cu_bulk(a)
    cell = atoms.get_cell()
    cell[2, 2] += 8.0
    atoms.set_cell(cell, scale_atoms=False)
    atoms.translate([0.0, 0.0, 4.0 + 0.25 * a])
    return atoms


def vacancy(a: float):
    atoms = cu_bulk(a)
    del atoms[13]
    return atoms


def dataset(a: float, quick: bool, seed: int, scale: float = 1.0) -> dict[str, list[dict]]:
    n = lambda k: max(1, round(k * scale * (0.35 if quick else 1.0)))  # noqa: E731
    bulk = cu_bulk(a)
    return {
        "bulk 300K": snapshots(bulk, 300.0, n(12), seed + 1),
        "bulk 600K": snapshots(bulk, 600.0, n(12), seed + 2),
        "bulk 900K": snapshots(bulk, 900.0, n(12), seed + 3),
        "strained": strained(a, n(20), seed + 4),
        "surface": snapshots(slab(a), 300.0, n(4), seed + 5)
        + snapshots(slab(a), 600.0, n(4), seed + 6),
        "vacancy": snapshots(vacancy(a), 300.0, n(5), seed + 7)
        + snapshots(vacancy(a), 600.0, n(5), seed + 8),
    }


# ---------------------------------------------------------------------- hybrax-side arrays
class Frames(eqx.Module):
    """Frames with one atom count: per-frame boxes, neighbour lists and EMT labels."""

    positions: jax.Array
    lengths: jax.Array
    neighbors: md.AbstractNeighborList
    energies: jax.Array
    forces: jax.Array
    stress: jax.Array

    @classmethod
    def build(cls, frames: list[dict]) -> Frames:
        stack = lambda key: jnp.asarray(np.stack([f[key] for f in frames]))  # noqa: E731
        positions, lengths = stack("positions"), stack("lengths")
        lists = [
            md.DenseNeighborList.build(p, md.PeriodicBox(L), cutoff=CUTOFF)
            for p, L in zip(positions, lengths, strict=True)
        ]
        neighbors = jax.tree.map(lambda *xs: jnp.stack(xs), *lists)
        return cls(positions, lengths, neighbors, stack("energy"), stack("forces"), stack("stress"))


def predict(model, frames: Frames):
    """Energies, forces and stress (-virial / V, ASE's sign) of every frame."""

    def one(positions, lengths, neighbors):
        box = md.PeriodicBox(lengths)
        energy, forces = model.energy_and_forces(positions, neighbors, box)
        return energy, forces, -model.virial(positions, neighbors, box) / jnp.prod(lengths)

    return jax.vmap(one)(frames.positions, frames.lengths, frames.neighbors)


class EnergyForceStressLoss(eqx.Module):
    """``w_E <(dE/N)^2> + w_F <|dF|^2>/3 + w_S <|dsigma|^2>/9`` over a minibatch drawn from
    several `Frames` groups (one index array per group)."""

    groups: tuple[Frames, ...]
    per_step: tuple[int, ...] = eqx.field(static=True)
    energy_weight: float = eqx.field(static=True, default=100.0)
    force_weight: float = eqx.field(static=True, default=1.0)
    stress_weight: float = eqx.field(static=True, default=1000.0)

    def __call__(self, model, batch):
        total = 0.0
        for group, index, count in zip(self.groups, batch, self.per_step, strict=True):
            rows = index[:count]
            frames = jax.tree.map(lambda x, rows=rows: x[rows], group)
            energies, forces, stress = predict(model, frames)
            n = frames.positions.shape[1]
            total = total + count * (
                self.energy_weight * jnp.mean(((energies - frames.energies) / n) ** 2)
                + self.force_weight * jnp.mean((forces - frames.forces) ** 2)
                + self.stress_weight * jnp.mean((stress - frames.stress) ** 2)
            )
        return total / sum(self.per_step)


def by_size(frames: list[dict]) -> dict[int, list[dict]]:
    groups: dict[int, list[dict]] = {}
    for f in frames:
        groups.setdefault(len(f["positions"]), []).append(f)
    return groups


def errors(model, frames: list[dict]) -> dict[str, float]:
    df, de, ds = [], [], []
    for group in by_size(frames).values():
        data = Frames.build(group)
        energies, forces, stress = eqx.filter_jit(predict)(model, data)
        n = data.positions.shape[1]
        df.append(np.ravel(forces - data.forces))
        de.append(np.ravel(energies - data.energies) / n)
        ds.append(np.ravel(stress - data.stress))
    df, de, ds = (np.concatenate(x) for x in (df, de, ds))
    return {
        "force MAE": float(np.mean(np.abs(df))),
        "force RMSE": float(np.sqrt(np.mean(df**2))),
        "energy MAE": 1000 * float(np.mean(np.abs(de))),
        "stress MAE": EV_A3_TO_GPA * float(np.mean(np.abs(ds))),
    }


# ------------------------------------------------------------------------ derived physics
def crystal_energy(a: float, strain=(0.0, 0.0, 0.0)):
    """Positions and box of the perfect 3x3x3 fcc crystal at lattice constant ``a``,
    stretched by ``1 + strain`` along the axes."""
    positions, _ = md.lattice("fcc", CELLS, lattice_constant=a, dtype=jnp.float64)
    stretch = 1.0 + jnp.asarray(strain)
    return positions * stretch, md.PeriodicBox(CELLS * a * stretch)


def hybrax_energy(model, a: float):
    """``energy(a, strain)`` of the trained model on the perfect crystal (one compiled
    program; the all-pairs list is built once and updated inside jit)."""
    positions, box = crystal_energy(a)
    template = md.DenseNeighborList.build(positions, box, cutoff=CUTOFF)

    @eqx.filter_jit
    def energy(positions, lengths):
        box = md.PeriodicBox(lengths)
        return model.energy_and_forces(positions, template.update(positions, box), box)[0]

    def call(a, strain=(0.0, 0.0, 0.0)):
        positions, box = crystal_energy(a, strain)
        return float(energy(positions, box.lengths))

    return call


def emt_energy(a: float, strain=(0.0, 0.0, 0.0)) -> float:
    atoms = cu_bulk(a)
    atoms.set_cell(atoms.get_cell() * (1 + np.asarray(strain)), scale_atoms=True)
    atoms.calc = emt()
    return float(atoms.get_potential_energy())


def elastic(energy, a_guess: float, quick: bool) -> dict[str, float]:
    """Lattice constant (minimum of a cubic fit to E(a)), bulk modulus B = V d2E/dV2 at the
    minimum, and C11 = (1/V) d2E/d(eps_xx)^2 (uniaxial strain, fcc: no internal relaxation)."""
    a_grid = a_guess * np.linspace(0.98, 1.02, 7 if quick else 11)
    e_grid = np.array([energy(a) for a in a_grid])
    volumes = (CELLS * a_grid) ** 3
    fit = np.polynomial.Polynomial.fit(volumes, e_grid, 3)
    roots = fit.deriv().roots()
    roots = roots[np.isreal(roots)].real
    v0 = float(roots[np.argmin(np.abs(roots - volumes.mean()))])
    a0 = v0 ** (1 / 3) / CELLS
    bulk_modulus = v0 * fit.deriv(2)(v0)
    strains = np.linspace(-0.01, 0.01, 5 if quick else 9)
    e_strain = np.array([energy(a0, (s, 0.0, 0.0)) for s in strains])
    c11 = 2 * np.polyfit(strains, e_strain, 4)[-3] / v0
    return {
        "lattice constant": a0,
        "bulk modulus": EV_A3_TO_GPA * bulk_modulus,
        "C11": EV_A3_TO_GPA * c11,
    }


def nve(model, steps: int, a0: float, temperature_K: float = 300.0):
    """NVE of the perfect 108-atom crystal from velocities at 2T (equipartition brings it
    near T), dt = 2 fs; total energy every 10 steps."""
    positions, box = md.lattice("fcc", CELLS, lattice_constant=a0, dtype=jnp.float64)
    nbrs = md.neighbor_list(positions, box, cutoff=CUTOFF)
    kT = 8.617333e-5 * 2 * temperature_K
    v = md.maxwell_boltzmann(jax.random.key(1), positions.shape[0], kT, MASS, dtype=jnp.float64)
    stepper = md.VelocityVerlet(model, box, dt=2 * FS, masses=MASS)
    state = stepper.init(positions, v, nbrs)
    _, energies = md.simulate(
        stepper,
        state,
        steps,
        save_every=10,
        progress=False,
        observe=lambda s: (md.total_energy(s, MASS), md.temperature(s.velocities, MASS)),
    )
    return np.asarray(energies[0]), np.asarray(energies[1]) / 8.617333e-5


# ---------------------------------------------------------------------------------- speed
def md_speed(energy, atoms_cells: int, a: float, steps: int, dtype=jnp.float64) -> float:
    """Atom-steps per second of hybrax NVE (VelocityVerlet, 2 fs) with ``energy``."""
    positions, box = md.lattice("fcc", atoms_cells, lattice_constant=a, dtype=dtype)
    rng = np.random.default_rng(0)
    positions = box.wrap(positions + jnp.asarray(rng.normal(0, 0.05, positions.shape), dtype))
    cutoff = energy.cutoff
    nbrs = md.neighbor_list(positions, box, cutoff=cutoff, skin=0.5)
    stepper = md.VelocityVerlet(energy, box, dt=2 * FS, masses=MASS)
    state = stepper.init(positions, None, nbrs)
    state, _ = md.simulate(stepper, state, steps, chunk_size=steps, progress=False)  # compile
    start = time.perf_counter()
    state, _ = md.simulate(stepper, state, steps, chunk_size=steps, progress=False)
    block(state.positions)
    return positions.shape[0] * steps / (time.perf_counter() - start)


def emt_speed(steps: int) -> float:
    from ase import units
    from ase.md.verlet import VelocityVerlet

    atoms = cu_bulk(3.59)
    atoms.rattle(0.05)
    atoms.calc = emt()
    dyn = VelocityVerlet(atoms, 2 * units.fs)
    dyn.run(2)
    start = time.perf_counter()
    dyn.run(steps)
    return len(atoms) * steps / (time.perf_counter() - start)


# ----------------------------------------------------------------------------------- main
def main(argv=None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv)
    quick = args.quick
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    records: list[Record] = []
    clock = time.perf_counter()
    a_emt = emt_lattice_constant()
    train = dataset(a_emt, quick, seed=0)
    test = dataset(a_emt, quick, seed=100, scale=0.35)
    n_train = sum(len(v) for v in train.values())
    n_test = sum(len(v) for v in test.values())
    say(
        f"EMT a0 = {a_emt:.4f} Å; {n_train} training and {n_test} held-out frames "
        f"labelled in {time.perf_counter() - clock:.1f} s"
    )

    groups = by_size([f for frames in train.values() for f in frames])
    sizes = sorted(groups, reverse=True)  # 108 atoms first, then the vacancy (107)
    data = tuple(Frames.build(groups[n]) for n in sizes)
    all_energy = np.concatenate([np.asarray(g.energies) / g.positions.shape[1] for g in data])
    force_rms = float(np.sqrt(np.mean(np.concatenate([np.ravel(g.forces) for g in data]) ** 2)))
    model = md.EquivariantPotential(
        CUTOFF,
        key=jax.random.key(0),
        num_features=16,
        num_vectors=8,
        l_max=1,
        num_interactions=2,
        max_neighbors=32,
        num_neighbors=18.0,
        energy_shift=float(np.mean(all_energy)),
        energy_scale=force_rms,
        dtype=jnp.float64,
    )
    # each step: 4 frames of 108 atoms and 1 vacancy frame
    per_step = (4, 1)
    count = data[0].positions.shape[0]
    rng = np.random.default_rng(0)
    index = tuple(
        jnp.asarray(np.resize(rng.permutation(g.positions.shape[0]), count)) for g in data
    )
    loss = EnergyForceStressLoss(data, per_step)
    steps = 150 if quick else 1000
    schedule = optax.exponential_decay(5e-3, steps, 0.03)
    clock = time.perf_counter()
    result = hybrid.fit(
        model,
        loss,
        hybrid.Batches(index, batch_size=per_step[0], key=jax.random.key(2)),
        optax.adam(schedule),
        steps=steps,
    )
    train_seconds = time.perf_counter() - clock
    model = result.model
    history = result.history["train"]
    say(
        f"training: {steps} steps of hybrid.fit in {train_seconds:.0f} s; loss "
        f"{history[0]['loss']:.4g} -> {history[-1]['loss']:.4g}"
    )
    records.append(
        Record(
            "training",
            "hybrax",
            "fit seconds",
            train_seconds,
            "s",
            note=f"{steps} steps, {n_train} frames",
        )
    )

    say("\nheld-out errors (EquivariantPotential vs EMT)")
    say(f"{'structures':<12} {'F MAE':>9} {'F RMSE':>9} {'E MAE':>12} {'stress MAE':>11}")
    every = []
    for kind, frames in test.items():
        e = errors(model, frames)
        every += frames
        say(
            f"{kind:<12} {e['force MAE']:>9.4f} {e['force RMSE']:>9.4f} "
            f"{e['energy MAE']:>8.2f} meV {e['stress MAE']:>7.3f} GPa"
        )
    e = errors(model, every)
    say(
        f"{'all':<12} {e['force MAE']:>9.4f} {e['force RMSE']:>9.4f} "
        f"{e['energy MAE']:>8.2f} meV {e['stress MAE']:>7.3f} GPa   (forces in eV/Å)"
    )
    for metric, unit in [
        ("force MAE", "eV/A"),
        ("force RMSE", "eV/A"),
        ("energy MAE", "meV/atom"),
        ("stress MAE", "GPa"),
    ]:
        records.append(Record("held-out", "hybrax", metric, e[metric], unit))
    f_scale = float(np.mean(np.abs(np.concatenate([f["forces"].ravel() for f in every]))))
    say(f"(mean |F| of the held-out EMT forces: {f_scale:.3f} eV/Å)")

    say("\nderived properties (3x3x3 periodic crystal; same fits for both)")
    ours = elastic(hybrax_energy(model, a_emt), a_emt, quick)
    theirs = elastic(emt_energy, a_emt, quick)
    a0 = ours["lattice constant"]
    for name, unit in [("lattice constant", "A"), ("bulk modulus", "GPa"), ("C11", "GPa")]:
        rel = ours[name] / theirs[name] - 1
        say(
            f"{name:<17} model {ours[name]:9.4f}  EMT {theirs[name]:9.4f} {unit:<4} "
            f"({100 * rel:+.2f} %)"
        )
        records.append(Record(name, "hybrax", name, ours[name], unit))
        records.append(Record(name, "EMT", name, theirs[name], unit))

    nve_steps = 500 if quick else 5000
    clock = time.perf_counter()
    energies, temperatures = nve(model, nve_steps, a0)
    nve_seconds = time.perf_counter() - clock
    n_atoms = CELLS**3 * 4
    times_ps = np.arange(len(energies)) * 10 * 2e-3
    drift = np.polyfit(times_ps, energies, 1)[0] / n_atoms * 1000
    spread = np.std(energies) / n_atoms * 1000
    mean_t = np.mean(temperatures[len(temperatures) // 2 :])
    say(
        f"\nNVE, 108 atoms, dt = 2 fs, {nve_steps} steps ({nve_steps * 2e-3:.1f} ps, "
        f"{nve_seconds:.0f} s incl. compile): mean T = {mean_t:.0f} K, "
        f"total-energy drift {drift:+.4f} meV/atom/ps, fluctuation {spread:.4f} meV/atom (std)"
    )
    records.append(Record("NVE 108 atoms dt=2fs", "hybrax", "drift", drift, "meV/atom/ps"))
    records.append(Record("NVE 108 atoms dt=2fs", "hybrax", "energy std", spread, "meV/atom"))

    say("\nMD speed, NVE velocity Verlet (atom-steps per second, this CPU, float64)")
    eam = md.EmbeddedAtom.from_file("/usr/share/lammps/potentials/Cu_u3.eam")
    speed_steps = 50 if quick else 200
    for cells in (3, 5) if not quick else (3,):
        n = 4 * cells**3
        case = f"MD N={n}"
        ours_speed = md_speed(model, cells, a0, speed_steps)
        eam_speed = md_speed(eam, cells, 3.615, speed_steps * 5)
        records.append(
            Record(
                case,
                "hybrax",
                "atom_steps_per_s",
                ours_speed,
                "1/s",
                config="EquivariantPotential l_max=1",
            )
        )
        records.append(
            Record(
                case,
                "hybrax EAM",
                "atom_steps_per_s",
                eam_speed,
                "1/s",
                config="EmbeddedAtom Cu_u3",
            )
        )
        say(f"N={n:<5} EquivariantPotential {ours_speed:12.0f}   hybrax EAM {eam_speed:12.0f}")
    emt_rate = emt_speed(20 if quick else 100)
    records.append(Record("MD N=108", "ASE EMT", "atom_steps_per_s", emt_rate, "1/s"))
    say(f"N=108   ASE EMT (NumPy)         {emt_rate:12.0f}")

    text = io.StringIO()
    with redirect_stdout(text):
        report(records, None, baseline={"atom_steps_per_s": "hybrax"})
    say(text.getvalue())
    path = args.json or os.path.join(RESULTS, "md_equivariant.json")
    if not quick or args.json:
        report(records, path)
        write_environment(path)
        with open(os.path.splitext(path)[0] + ".txt", "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
