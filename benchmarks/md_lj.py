"""LAMMPS "in.lj" side by side: hybrax.md vs jax-md (and LAMMPS serial when `lmp` exists).

    taskset -c 0 python benchmarks/md_lj.py [--quick] [--json PATH] [--steps N]

The workload is LAMMPS's bench/in.lj: fcc lattice at reduced density 0.8442 (4,000 atoms =
10^3 unit cells, 32,000 = 20^3), Maxwell–Boltzmann velocities at T = 3.0, Lennard-Jones
cut at 2.5 sigma, Verlet skin 0.3, dt 0.005, NVE, the list rebuilt whenever an atom has
moved more than half the skin. Every tool starts from the same positions and velocities
(LAMMPS reads them from a data file) and uses the same cut-off and skin; hybrax and jax-md
run in float32 and float64, LAMMPS in double precision.

Protocol. Neighbour-list capacities of both JAX tools are sized from a short warm-up melt
(their own default head room: jax-md's capacity_multiplier 1.25; hybrax's `grow` from the
largest need seen), so neither overflows in the timed run (checked). The timed run is a
compiled, warmed `lax.scan` of the steps from the lattice. Speeds are steps per CPU-second
of the process (pin it to one core with taskset -c 0; on a shared machine CPU seconds are
steadier than wall seconds), LAMMPS's from its loop time times its reported CPU use.
Ratios in the table are hybrax / other (higher is better for hybrax).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax
import jax.numpy as jnp
import numpy as np
from _harness import Record, parse_args, report, write_environment

jax.config.update("jax_enable_x64", True)

import hybrax  # noqa: E402
import hybrax.md as md  # noqa: E402

CUTOFF, SKIN, DT, T0, DENSITY, SEED = 2.5, 0.3, 0.005, 3.0, 0.8442, 87287


def initial_state(cells: int, dtype):
    positions, box = md.lattice("fcc", cells, density=DENSITY, dtype=dtype)
    velocities = md.maxwell_boltzmann(jax.random.key(SEED), positions.shape[0], T0, dtype=dtype)
    return positions, velocities, box


def cpu_time(fn):
    """(result, CPU seconds, wall seconds) of ``fn()`` with the result blocked on."""
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.process_time() - start_cpu, time.perf_counter() - start_wall


# ----------------------------------------------------------------------------- hybrax
def run_hybrax(positions, velocities, box, steps, warmup):
    lj = md.LennardJones(cutoff=CUTOFF, shift=False)  # pair_style lj/cut, as in.lj
    stepper = md.VelocityVerlet(lj, box, dt=DT)
    nbrs = md.neighbor_list(positions, box, CUTOFF, skin=SKIN)
    state = stepper.init(positions, velocities, nbrs)
    melted, _ = md.simulate(stepper, state, warmup, chunk_size=warmup, progress=False)
    sized = melted.neighbors.grow(melted.positions, box)
    nbrs = md.neighbor_list(
        positions, box, CUTOFF, skin=SKIN, minimum_capacity=(sized.column_capacity, sized.widths)
    )
    state = stepper.init(positions, velocities, nbrs)
    flagging = md.VelocityVerlet(lj, box, dt=DT, on_overflow="flag")

    def run(s):
        return hybrax.rollout(flagging, s, steps, save_every=None)[0]

    jitted = jax.jit(run)
    start = time.perf_counter()
    compiled = jitted.lower(state).compile()
    compile_s = time.perf_counter() - start
    step_one = jax.jit(lambda s: flagging.step(s))
    start = time.perf_counter()
    step_one.lower(state).compile()
    first_step_compile = time.perf_counter() - start
    compiled(state)  # warm
    final, cpu, wall = cpu_time(lambda: compiled(state))
    assert not bool(final.neighbors.overflow), "hybrax list overflowed in the timed run"
    e0 = float(md.total_energy(state))
    drift = (float(md.total_energy(final)) - e0) / abs(e0)
    return {
        "cpu": cpu,
        "wall": wall,
        "compile": compile_s,
        "first_step_compile": first_step_compile,
        "drift": drift,
        "rebuilds": int(final.neighbors.num_builds) - int(state.neighbors.num_builds),
        "slots": nbrs.slots_per_atom,
        "pe0": float(state.potential_energy) / positions.shape[0],
    }


# ----------------------------------------------------------------------------- jax-md
def run_jax_md(positions, velocities, box, steps, warmup):
    from jax_md import energy, partition, simulate, space

    length = box.lengths[0]
    displacement, shift = space.periodic(length)
    neighbor_fn, energy_fn = energy.lennard_jones_neighbor_list(
        displacement,
        length,
        r_onset=2.0,  # jax-md's default switched LJ (2.0 to 2.5)
        r_cutoff=CUTOFF,
        dr_threshold=SKIN,
        capacity_multiplier=1.25,
        format=partition.Dense,
    )
    init_fn, apply_fn = simulate.nve(energy_fn, shift, DT)

    def scan(state, nbrs, n):
        def body(carry, _):
            s, nb = carry
            s = apply_fn(s, neighbor=nb)
            nb = nb.update(s.position)
            return (s, nb), None

        return jax.lax.scan(body, (state, nbrs), None, length=n)[0]

    nbrs = neighbor_fn.allocate(positions)
    state = init_fn(jax.random.key(0), positions, kT=T0, neighbor=nbrs)
    state = state.set(momentum=velocities)  # unit masses: momentum = velocity
    melted, _ = jax.jit(scan, static_argnums=2)(state, nbrs, warmup)
    nbrs = neighbor_fn.allocate(melted.position)  # capacity from the melt, 1.25 head room
    nbrs = nbrs.update(positions)
    jitted = jax.jit(lambda s, nb: scan(s, nb, steps))
    start = time.perf_counter()
    compiled = jitted.lower(state, nbrs).compile()
    compile_s = time.perf_counter() - start
    step_one = jax.jit(lambda s, nb: apply_fn(s, neighbor=nb.update(s.position)))
    start = time.perf_counter()
    step_one.lower(state, nbrs).compile()
    first_step_compile = time.perf_counter() - start
    compiled(state, nbrs)
    (final, final_nbrs), cpu, wall = cpu_time(lambda: compiled(state, nbrs))
    overflow = bool(final_nbrs.did_buffer_overflow)

    def total(s, nb):
        kinetic = 0.5 * jnp.sum(s.momentum**2)
        return float(energy_fn(s.position, neighbor=neighbor_fn.allocate(s.position)) + kinetic)

    e0 = total(state, nbrs)
    drift = (total(final, final_nbrs) - e0) / abs(e0)
    return {
        "cpu": cpu,
        "wall": wall,
        "compile": compile_s,
        "first_step_compile": first_step_compile,
        "drift": drift,
        "overflow": overflow,
    }


# ----------------------------------------------------------------------------- LAMMPS
def run_lammps(positions, velocities, box, steps):
    lmp = shutil.which("lmp") or shutil.which("lmp_serial")
    if lmp is None:
        return None
    p, v = np.asarray(positions, np.float64), np.asarray(velocities, np.float64)
    length = float(box.lengths[0])
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "lj.data")
        with open(data, "w") as f:
            f.write(f"in.lj start from hybrax.md\n\n{len(p)} atoms\n1 atom types\n\n")
            for axis in "xyz":
                f.write(f"0.0 {length!r} {axis}lo {axis}hi\n")
            f.write("\nMasses\n\n1 1.0\n\nAtoms # atomic\n\n")
            for i, r in enumerate(p, 1):
                f.write(f"{i} 1 {r[0]:.17g} {r[1]:.17g} {r[2]:.17g}\n")
            f.write("\nVelocities\n\n")
            for i, u in enumerate(v, 1):
                f.write(f"{i} {u[0]:.17g} {u[1]:.17g} {u[2]:.17g}\n")
        script = os.path.join(tmp, "in.lj")
        with open(script, "w") as f:
            f.write(
                "units lj\natom_style atomic\nread_data lj.data\n"
                f"pair_style lj/cut {CUTOFF}\npair_coeff 1 1 1.0 1.0 {CUTOFF}\n"
                f"neighbor {SKIN} bin\nneigh_modify delay 0 every 1 check yes\n"
                "fix 1 all nve\nthermo_style custom step pe etotal\n"
                f"thermo {steps}\nthermo_modify norm no format float %.12g\n"
                f"timestep {DT}\nrun {steps}\n"
            )
        env = dict(os.environ, OMP_NUM_THREADS="1")
        out = subprocess.run(
            [lmp, "-in", "in.lj", "-log", "log.lammps"],
            cwd=tmp,
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        text = out.stdout + out.stderr
    loop = re.search(r"Loop time of ([0-9.eE+-]+) on 1 procs for (\d+) steps", text)
    if loop is None:
        print(f"LAMMPS did not run as expected:\n{text[-2000:]}", file=sys.stderr)
        return None
    cpu_use = re.search(r"([0-9.]+)% CPU use", text)
    wall = float(loop.group(1))
    cpu = wall * (float(cpu_use.group(1)) / 100 if cpu_use else 1.0)
    rows = re.findall(r"^\s*(\d+)\s+(-?[0-9.eE+-]+)\s+(-?[0-9.eE+-]+)\s*$", text, re.M)
    energies = {int(s): float(e) for s, _, e in rows}
    drift = (energies[steps] - energies[0]) / abs(energies[0]) if steps in energies else np.nan
    builds = re.search(r"Neighbor list builds = (\d+)", text)
    return {
        "cpu": cpu,
        "wall": wall,
        "drift": drift,
        "rebuilds": int(builds.group(1)) if builds else -1,
        "pe0": float(rows[0][1]) / len(p) if rows else np.nan,
    }


def main(argv=None):
    import argparse

    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--steps", type=int, default=None, help="steps per timed run")
    extra.add_argument("--sizes", type=str, default=None, help="unit cells, e.g. 10,20")
    extra.add_argument("--warmup", type=int, default=None, help="melt steps to size lists")
    known, rest = extra.parse_known_args(argv)
    args = parse_args(__doc__.splitlines()[0], rest)
    sizes = (
        [int(c) for c in known.sizes.split(",")]
        if known.sizes
        else ([10] if args.quick else [10, 20])
    )
    dtypes = ["float32", "float64"]
    records: list[Record] = []
    for cells in sizes:
        atoms = 4 * cells**3
        steps = known.steps or (100 if args.quick else (1000 if cells <= 10 else 200))
        warmup = known.warmup or (100 if args.quick else 300)
        lammps = None
        for dtype_name in dtypes:
            dtype = jnp.dtype(dtype_name)
            positions, velocities, box = initial_state(cells, dtype)
            case = f"in.lj N={atoms} {dtype_name}"
            results = {"hybrax": run_hybrax(positions, velocities, box, steps, warmup)}
            results["jax-md"] = run_jax_md(positions, velocities, box, steps, warmup)
            if lammps is None:
                p64, v64, box64 = initial_state(cells, jnp.float64)
                lammps = run_lammps(p64, v64, box64, steps) or {}
            if lammps:
                results["lammps-serial(f64)"] = lammps
            for tool, r in results.items():
                sps = steps / r["cpu"]
                note = f"{steps} steps, wall {steps / r['wall']:.3g} steps/s"
                records.append(Record(case, tool, "steps_per_s", sps, "steps/cpu-s", note))
                records.append(Record(case, tool, "atom_steps_per_s", sps * atoms, "1/cpu-s"))
                if "compile" in r:
                    records.append(
                        Record(case, tool, "compile_s", r["compile"], "s", f"scan of {steps} steps")
                    )
                    records.append(
                        Record(case, tool, "first_step_compile_s", r["first_step_compile"], "s")
                    )
                records.append(
                    Record(
                        case,
                        tool,
                        "relative_energy_drift",
                        abs(r["drift"]),
                        "",
                        f"signed {r['drift']:.3g} over {steps} steps",
                    )
                )
                if "rebuilds" in r:
                    records.append(Record(case, tool, "list_rebuilds", r["rebuilds"], ""))
            print(
                f"{case}: hybrax PE/atom at step 0 {results['hybrax']['pe0']:.9f}"
                + (f", LAMMPS {lammps['pe0']:.9f}" if lammps else "")
                + f"; hybrax slots/atom {results['hybrax']['slots']}; jax-md overflow "
                f"{results['jax-md']['overflow']}",
                file=sys.stderr,
            )
            if args.json:  # keep what is done so far if a long run is interrupted
                with open(args.json + ".partial", "w") as f:
                    json.dump([dataclasses.asdict(r) for r in records], f, indent=1)
    report(records, args.json, higher_is_better=("steps_per_s", "atom_steps_per_s"))
    write_environment(args.json)


if __name__ == "__main__":
    main()
