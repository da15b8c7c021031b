"""One serial LAMMPS NVE run from hybrax's positions and velocities (cubic periodic box), for
the benchmarks that time LAMMPS beside hybrax (`md_lj.py`, `md_eam_lammps.py`,
`md_sw_lammps.py`), and the matching compiled hybrax NVE rollout (`hybrax_nve`,
`cpu_seconds`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np


def run_nve(positions, velocities, length: float, mass: float, *, units: str, pair: str,
            neighbor: str, steps: int, timestep: float, title: str) -> dict | None:  # fmt: skip
    """Run ``steps`` of `fix nve` with ``lmp`` (one OpenMP thread) from ``positions`` and
    ``velocities`` in the cube of side ``length``; ``pair`` and ``neighbor`` are the input
    script's lines for them. Returns the loop's CPU seconds (wall time x LAMMPS's reported
    CPU share), its wall time, the thermo rows ``{step: (pe, etotal)}`` (totals, not per
    atom), the potential energies alone ``{step: pe}`` and the number of neighbour-list
    builds; None without ``lmp`` or when LAMMPS fails (its output's tail is printed)."""
    lmp = shutil.which("lmp") or shutil.which("lmp_serial")
    if lmp is None:
        return None
    p, v = np.asarray(positions, np.float64), np.asarray(velocities, np.float64)
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "start.data"), "w") as f:
            f.write(f"{title} start from hybrax.md\n\n{len(p)} atoms\n1 atom types\n\n")
            for axis in "xyz":
                f.write(f"0.0 {length!r} {axis}lo {axis}hi\n")
            f.write(f"\nMasses\n\n1 {float(mass)!r}\n\nAtoms # atomic\n\n")
            for i, r in enumerate(p, 1):
                f.write(f"{i} 1 {r[0]:.17g} {r[1]:.17g} {r[2]:.17g}\n")
            f.write("\nVelocities\n\n")
            for i, u in enumerate(v, 1):
                f.write(f"{i} {u[0]:.17g} {u[1]:.17g} {u[2]:.17g}\n")
        with open(os.path.join(tmp, "in.run"), "w") as f:
            f.write(
                f"units {units}\natom_style atomic\nread_data start.data\n{pair}\n{neighbor}\n"
                "fix 1 all nve\nthermo_style custom step pe etotal\n"
                f"thermo {steps}\nthermo_modify norm no format float %.12g\n"
                f"timestep {timestep}\nrun {steps}\n"
            )
        out = subprocess.run(
            [lmp, "-in", "in.run", "-log", "log.lammps"],
            cwd=tmp,
            capture_output=True,
            text=True,
            env=dict(os.environ, OMP_NUM_THREADS="1"),
            check=False,
        )
        text = out.stdout + out.stderr
    loop = re.search(r"Loop time of ([0-9.eE+-]+) on 1 procs for (\d+) steps", text)
    if loop is None:
        print(f"LAMMPS did not run as expected:\n{text[-2000:]}", file=sys.stderr)
        return None
    cpu_use = re.search(r"([0-9.]+)% CPU use", text)
    wall = float(loop.group(1))
    rows = re.findall(r"^\s*(\d+)\s+(-?[0-9.eE+-]+)\s+(-?[0-9.eE+-]+)\s*$", text, re.M)
    builds = re.search(r"Neighbor list builds = (\d+)", text)
    return {
        "cpu": wall * (float(cpu_use.group(1)) / 100 if cpu_use else 1.0),
        "wall": wall,
        "thermo": {int(s): (float(pe), float(e)) for s, pe, e in rows},
        "pe": {int(s): float(pe) for s, pe, _ in rows},
        "rebuilds": int(builds.group(1)) if builds else -1,
    }


def hybrax_nve(potential, positions, velocities, box, mass, *, steps, dt, skin, dtype,
               format=None, capacity_multiplier=1.5):  # fmt: skip
    """A compiled ``steps``-step `hybrax.md.VelocityVerlet` rollout from ``positions`` and
    ``velocities`` in ``dtype``, its list from ``md.neighbor_list(..., energy=potential)``
    (the layout a user gets; ``format`` overrides it). Returns (a call running it from the
    start, its compile CPU seconds, the first step's potential energy)."""
    import hybrax
    import hybrax.md as md

    positions, velocities = positions.astype(dtype), velocities.astype(dtype)
    box = md.PeriodicBox(box.lengths.astype(dtype))
    nbrs = md.neighbor_list(
        positions, box, skin=skin, capacity_multiplier=capacity_multiplier,
        format=format, energy=potential,
    )  # fmt: skip
    stepper = md.VelocityVerlet(potential, box, dt=dt, masses=mass, on_overflow="flag")
    state = stepper.init(positions, velocities, nbrs)

    def run(s):
        return hybrax.rollout(stepper, s, steps, save_every=None)[0]

    start = time.process_time()
    compiled = jax.jit(run).lower(state).compile()
    compile_s = time.process_time() - start
    return (lambda: compiled(state)), compile_s, float(state.potential_energy)


def cpu_seconds(call, rounds):
    """The least CPU seconds of ``rounds`` blocked calls, and the last result."""
    best, out = np.inf, None
    for _ in range(rounds):
        start = time.process_time()
        out = jax.block_until_ready(call())
        best = min(best, time.process_time() - start)
    return best, out
