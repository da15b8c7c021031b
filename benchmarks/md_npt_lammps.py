"""Fully flexible NPT against LAMMPS: ``md.MartynaTobiasKlein(couple="full")`` against
``fix npt ... tri`` from the same sheared starts, several seeds per state point.

    python benchmarks/md_npt_lammps.py [--quick] [--json PATH] [--seeds N] [--steps N]
        [--states liquid,solid] [--atoms-cells C]

Lennard-Jones (cut-off 2.5, not shifted in LAMMPS, shifted in hybrax: the same forces and
pressure) at two state points, started from an fcc lattice in a cell sheared by
``xy = 0.2 lx`` (liquid, T* 1.5, P* 1) or ``xy = 0.05 lx`` (fcc solid, T* 0.5, P* 1), with
the same positions and velocities handed to both codes (a LAMMPS data file). Each run is
``--steps`` steps of dt 0.005; observations every 10 steps; the first fifth is dropped.
Reported per code: the mean over the seeds' run means of the density, the pressure tensor
(xx yy zz xy xz yz), the tilt fractions ``xy/lx, xz/lx, yz/ly`` and their rms (solid only:
a liquid's tilts flip at 0.5 in LAMMPS, 0.6 in hybrax), and the standard error of that
mean from the scatter between the independent seeds (an honest error: the runs share
nothing but the start lattice). ``z`` is the difference over the combined error.

Parameters are matched: ``Tdamp = tau = 0.5``, three-link chains on both; the barostat
mass of every strain rate is LAMMPS's ``(N + 1) kT Pdamp^2`` when hybrax's
``tau_barostat = Pdamp sqrt((N + 1) / N)`` (hybrax: ``(N_f + 3) kT tau_b^2 / 3`` with
``N_f = 3N - 3``). Both barostat chains target ``6 kT`` for the six strain rates (LAMMPS
``lkt_press = pdof kT``); they differ in the first barostat-chain mass (LAMMPS ``kT
Pdamp^2``, hybrax ``6 kT tau_b^2``; dynamics only) and in the MTK ``1/N_f`` terms (LAMMPS
``1/(3N)``: an O(1/N) difference). Needs ``lmp`` on PATH (Debian ``lammps``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import environment

import hybrax
import hybrax.md as md

jax.config.update("jax_enable_x64", True)

DT, TDAMP, EVERY = 0.005, 0.5, 10
# name: temperature, pressure, starting density, starting tilt xy / lx, Pdamp
STATES = {
    "liquid": {"temperature": 1.5, "pressure": 1.0, "density": 0.58, "xy": 0.2, "pdamp": 2.0},
    "solid": {"temperature": 0.5, "pressure": 1.0, "density": 1.0, "xy": 0.05, "pdamp": 1.0},
}
COLUMNS = ("density", "pxx", "pyy", "pzz", "pxy", "pxz", "pyz", "txy", "txz", "tyz", "temp")
THERMO = "density pxx pyy pzz pxy pxz pyz v_txy v_txz v_tyz temp"  # LAMMPS's COLUMNS


def sheared_start(cells: int, density: float, temperature: float, xy: float, seed: int):
    """fcc at ``density`` in a cube, sheared affinely by ``xy`` lx; Maxwell-Boltzmann
    velocities of ``seed`` (zero total momentum)."""
    positions, box = md.lattice("fcc", cells, density=density, dtype=jnp.float64)
    side = float(box.lengths[0])
    cell = md.TriclinicBox.from_lammps(side, side, side, xy * side, 0.0, 0.0)
    x = cell.wrap(cell.cartesian(positions / box.lengths))
    v = md.maxwell_boltzmann(jax.random.key(seed), positions.shape[0], temperature)
    return np.asarray(x), np.asarray(v, np.float64), np.asarray(cell.cell)


def write_lammps_data(path: str, positions, velocities, cell) -> None:
    """A LAMMPS ``atom_style atomic`` data file of a restricted triclinic cell (rows
    ``(lx,0,0), (xy,ly,0), (xz,yz,lz)``), mass 1, at full precision."""
    (lx, _, _), (xy, ly, _), (xz, yz, lz) = np.asarray(cell)
    lines = ["hybrax start", "", f"{len(positions)} atoms", "1 atom types"]
    lines += [f"0 {lx:.17g} xlo xhi", f"0 {ly:.17g} ylo yhi", f"0 {lz:.17g} zlo zhi"]
    lines += [f"{xy:.17g} {xz:.17g} {yz:.17g} xy xz yz", "", "Masses", "", "1 1.0", ""]
    lines += ["Atoms # atomic", ""]
    lines += [f"{k + 1} 1 {x:.17g} {y:.17g} {z:.17g}" for k, (x, y, z) in enumerate(positions)]
    lines += ["", "Velocities", ""]
    lines += [f"{k + 1} {a:.17g} {b:.17g} {c:.17g}" for k, (a, b, c) in enumerate(velocities)]
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")


def run_lammps(
    positions, velocities, cell, *, temperature, pressure, pdamp, cutoff, steps, thermo=THERMO
):
    """``fix npt temp T T Tdamp tri P P Pdamp`` from the given start; every ``EVERY`` steps
    the LAMMPS ``thermo`` keywords (default: `COLUMNS`), a ``(steps / EVERY, k)`` array
    without the start."""
    with tempfile.TemporaryDirectory() as tmp:
        write_lammps_data(os.path.join(tmp, "data"), positions, velocities, cell)
        script = f"""units lj
atom_style atomic
boundary p p p
read_data data
pair_style lj/cut {cutoff}
pair_coeff 1 1 1.0 1.0 {cutoff}
neighbor 0.3 bin
neigh_modify every 1 delay 0 check yes
timestep {DT}
fix 1 all npt temp {temperature} {temperature} {TDAMP} tri {pressure} {pressure} {pdamp}
variable txy equal xy/lx
variable txz equal xz/lx
variable tyz equal yz/ly
thermo_style custom step {thermo}
thermo_modify format float %.12g
thermo {EVERY}
run {steps}
"""
        with open(os.path.join(tmp, "in.npt"), "w") as handle:
            handle.write(script)
        subprocess.run(
            ["lmp", "-in", "in.npt", "-log", "log", "-screen", "none"],
            cwd=tmp,
            check=True,
            timeout=3600,
        )
        return read_thermo(os.path.join(tmp, "log"))[1:]


def read_thermo(path: str) -> np.ndarray:
    """The thermo table after the ``Step ...`` header (step column dropped)."""
    rows, reading = [], False
    with open(path) as handle:
        for line in handle:
            fields = line.split()
            if fields[:1] == ["Step"]:
                reading = True
            elif reading and fields and fields[0] == "Loop":
                break
            elif reading and fields and fields[0].isdigit():  # not a WARNING line
                rows.append([float(f) for f in fields[1:]])
    return np.asarray(rows)


def observe(stepper, state):
    """The `COLUMNS` of an NPT state (hybrax)."""
    box = stepper.state_box(state)
    p = stepper.pressure_tensor(state)
    (lx, _, _), (xy, ly, _), (xz, yz, _) = box.cell
    n = state.positions.shape[0]
    return jnp.stack(
        [
            n / box.volume,
            p[0, 0],
            p[1, 1],
            p[2, 2],
            p[0, 1],
            p[0, 2],
            p[1, 2],
            xy / lx,
            xz / lx,
            yz / ly,
            md.temperature(state.velocities),
        ]
    )


def run_hybrax(positions, velocities, cell, *, temperature, pressure, pdamp, cutoff, steps):
    """`hybrax.md.simulate` of the matched ``MartynaTobiasKlein(couple="full")`` from the
    given start, in segments of 1000 steps: the `COLUMNS` every ``EVERY`` steps, cut short
    (with the reason) if the cell gets thinner than twice the cut-off."""
    n = positions.shape[0]
    box = md.TriclinicBox(jnp.asarray(cell))
    x = jnp.asarray(positions)
    stepper = md.MartynaTobiasKlein(
        md.LennardJones(cutoff=cutoff),
        box,
        dt=DT,
        temperature=temperature,
        pressure=pressure,
        tau=TDAMP,
        tau_barostat=pdamp * np.sqrt((n + 1) / n),
        couple="full",
        on_overflow="flag",
    )
    state = stepper.init(x, jnp.asarray(velocities), md.DenseNeighborList.build(x, box, cutoff))
    segments, stopped = [], ""
    segment = min(1000, steps)
    for _ in range(steps // segment):
        try:
            state, seen = md.simulate(
                stepper,
                state,
                segment,
                chunk_size=segment,
                save_every=EVERY,
                observe=lambda s: observe(stepper, s),
                progress=False,
            )
        except hybrax.NeighborListError as error:
            stopped = f"stopped at step {len(segments) * segment}: {str(error)[:60]}"
            break
        segments.append(np.asarray(seen))
    return np.concatenate(segments), stopped


DERIVED = ("rms_txy", "rms_txz", "rms_tyz", "p_mean", "rms_tilt")


def run_means(series: np.ndarray) -> np.ndarray:
    """Means of the `COLUMNS` over the run after its first fifth, then the `DERIVED`: the
    rms of each tilt fraction, the mean of the diagonal pressures and the rms of all three
    tilt fractions."""
    kept = series[len(series) // 5 :]
    squares = kept[:, 7:10] ** 2
    derived = [*np.sqrt(squares.mean(0)), kept[:, 1:4].mean(), np.sqrt(squares.mean())]
    return np.concatenate([kept.mean(0), derived])


def compare(name: str, cells: int, seeds: int, steps: int, cutoff: float = 2.5) -> dict:
    """Both codes from the same ``seeds`` starts of state ``name``: per code the mean and
    standard error over the seeds of each run mean."""
    config = STATES[name]
    params = {k: config[k] for k in ("temperature", "pressure", "pdamp")}
    per_code = {"hybrax": [], "lammps": []}
    notes, seconds = [], {"hybrax": 0.0, "lammps": 0.0}
    for seed in range(seeds):
        start = sheared_start(
            cells, config["density"], config["temperature"], config["xy"], seed + 1
        )
        begin = time.perf_counter()
        series, stopped = run_hybrax(*start, **params, cutoff=cutoff, steps=steps)
        seconds["hybrax"] += time.perf_counter() - begin
        if stopped:
            notes.append(f"seed {seed + 1}: {stopped}")
        if len(series) >= 50:
            per_code["hybrax"].append(run_means(series))
        begin = time.perf_counter()
        per_code["lammps"].append(
            run_means(run_lammps(*start, **params, cutoff=cutoff, steps=steps))
        )
        seconds["lammps"] += time.perf_counter() - begin
    names = COLUMNS + DERIVED
    result = {"state": name, "atoms": 4 * cells**3, "seeds": seeds, "steps": steps}
    result |= {"config": config, "notes": notes, "seconds": seconds}
    stats = {}
    for code, runs in per_code.items():
        runs = np.asarray(runs)
        mean = runs.mean(0)
        error = runs.std(0, ddof=1) / np.sqrt(len(runs)) if len(runs) > 1 else np.nan * mean
        stats[code] = (mean, error, len(runs))
    table = {}
    for k, column in enumerate(names):
        (a, ea, _), (b, eb, _) = stats["hybrax"], stats["lammps"]
        combined = float(np.hypot(ea[k], eb[k]))
        table[column] = {
            "hybrax": float(a[k]),
            "hybrax_error": float(ea[k]),
            "lammps": float(b[k]),
            "lammps_error": float(eb[k]),
            "z": float((a[k] - b[k]) / combined) if combined > 0 else float("nan"),
        }
    result["runs"] = {code: stats[code][2] for code in stats}
    result["table"] = table
    return result


def print_table(result: dict) -> None:
    print(
        f"\n{result['state']}: {result['atoms']} atoms, {result['runs']} runs of "
        f"{result['steps']} steps; seconds {result['seconds']}"
    )
    for note in result["notes"]:
        print("  ", note)
    print(f"  {'':10} {'hybrax':>20} {'lammps':>20} {'z':>6}")
    for column, row in result["table"].items():
        if result["state"] == "liquid" and "t" in column[:5] and column != "temp":
            continue  # tilts of a liquid wander and flip at different thresholds
        print(
            f"  {column:10} {row['hybrax']:>11.5f} +- {row['hybrax_error']:.5f} "
            f"{row['lammps']:>11.5f} +- {row['lammps_error']:.5f} {row['z']:>6.2f}"
        )


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds x 2000 steps, 108 atoms")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--cells", type=int, default=4, help="fcc cells a side (4: 256 atoms)")
    parser.add_argument("--states", default="liquid,solid")
    args = parser.parse_args(argv)
    if shutil.which("lmp") is None:
        print("lmp (LAMMPS) is not on PATH: nothing to compare", file=sys.stderr)
        return
    seeds, steps, cells = (2, 2000, 4) if args.quick else (args.seeds, args.steps, args.cells)
    results = []
    for name in args.states.split(","):
        result = compare(name, cells, seeds, steps)
        print_table(result)
        results.append(result)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as handle:
            json.dump({"environment": environment(), "results": results}, handle, indent=1)
        print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
