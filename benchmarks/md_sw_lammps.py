"""Stillinger-Weber and Tersoff Si side by side: hybrax.md vs LAMMPS serial, steps per CPU-s.

    taskset -c 0 python benchmarks/md_sw_lammps.py [--quick] [--json PATH] [--clock cpu]
        [--sizes 8,20]

The workload: diamond Si at LAMMPS's lattice constant 5.431 A, ``cells^3`` conventional
cells (8 atoms each: 8 -> 4,096 atoms, 20 -> 64,000), velocities at 1000 K, dt 1 fs, NVE,
100 steps; LAMMPS's ``Si.sw`` (``pair_style sw``) and ``Si.tersoff`` (``pair_style
tersoff``), mass 28.0855 amu. Both tools start from the same positions and velocities
(LAMMPS reads them from a data file; hybrax draws them with `hybrax.md.maxwell_boltzmann`).
Neighbour lists: LAMMPS's defaults for metal units (``neighbor 2.0 bin``, ``neigh_modify
every 1 delay 0 check yes``); hybrax the same skin, checked every step (rebuild when an atom
moved more than half the skin), on the list ``md.neighbor_list(..., energy=potential)``
gives (a full Verlet table), the potentials' neighbour tables sized to the run
(``max_neighbors``: 16 for SW, whose 3.77 A cut-off lies just inside the second shell at
3.84 A, so at 1000 K up to 12 atoms come within it; 8 for Tersoff, whose 3.0 A cut-off
holds the 4 first neighbours). The list builds hybrax reports count the build before the
run and the integrator's first; LAMMPS's count only those during the run. hybrax runs in
float64 (LAMMPS's precision) and float32; its timed call is a compiled, warmed ``rollout``
of the steps from the lattice (compile time reported apart). Speeds are steps per
CPU-second of the process (pin it to one core with taskset -c 0), LAMMPS's from its loop
time times its reported CPU use. The potential energies at the first and last step are
printed for both tools.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax
import jax.numpy as jnp
import numpy as np
from _harness import Record, parse_args, report
from _lammps import cpu_seconds, hybrax_nve, run_nve

jax.config.update("jax_enable_x64", True)

import hybrax.md as md  # noqa: E402

POTENTIALS = "/usr/share/lammps/potentials"
A, T0, SKIN, DT, SEED, MASS_AMU = 5.431, 1000.0, 2.0, 0.001, 4928459, 28.0855
MAX_NEIGHBORS = {"sw": 16, "tersoff": 8}  # SW: up to 12 within 3.77 A at 1000 K
MVV2E = 1.0364269e-4  # LAMMPS metal: amu (A/ps)^2 -> eV
BOLTZ = 8.617343e-5  # LAMMPS metal: eV / K
PAIR_STYLES = {"sw": "Si.sw", "tersoff": "Si.tersoff"}


def diamond(cells: int):
    """Diamond lattice positions ``(8 cells^3, 3)`` (float64) and its cubic box."""
    fcc = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    basis = np.concatenate([fcc, fcc + 0.25])
    grid = np.stack(np.meshgrid(*[np.arange(cells)] * 3, indexing="ij"), -1).reshape(-1, 1, 3)
    positions = jnp.asarray(((grid + basis[None]) * A).reshape(-1, 3), jnp.float64)
    return positions, md.PeriodicBox(jnp.asarray(cells * A, jnp.float64))


def potential(style: str):
    path = os.path.join(POTENTIALS, PAIR_STYLES[style])
    kind = md.StillingerWeber if style == "sw" else md.Tersoff
    return kind.from_file(path, ["Si"], max_neighbors=MAX_NEIGHBORS[style])


def run_lammps(style, positions, velocities, box, steps):
    return run_nve(
        positions,
        velocities,
        float(box.lengths[0]),
        MASS_AMU,
        units="metal",
        pair=f"pair_style {style}\npair_coeff * * {POTENTIALS}/{PAIR_STYLES[style]} Si",
        neighbor=f"neighbor {SKIN:g} bin\nneigh_modify every 1 delay 0 check yes",
        steps=steps,
        timestep=DT,
        title=f"{style} Si",
    )


def main(argv=None):
    args = parse_args(__doc__, argv)
    if not os.path.isdir(POTENTIALS):
        print(f"{POTENTIALS} not found: install the Debian lammps package")
        return
    sizes = args.sizes or ((4,) if args.quick else (8, 20))
    steps = 20 if args.quick else 100
    mass = MASS_AMU * MVV2E  # eV ps^2 / A^2
    records = []
    for cells in sizes:
        positions, box = diamond(cells)
        n = positions.shape[0]
        velocities = md.maxwell_boltzmann(jax.random.key(SEED), n, BOLTZ * T0, mass)
        rounds = 2 if args.quick or n > 20000 else 3
        for style in PAIR_STYLES:
            case = f"{style} Si N={n}"
            energy = potential(style)
            lammps = run_lammps(style, positions, velocities, box, steps)
            rows = []
            for dtype in (jnp.float64, jnp.float32):
                call, compile_s, pe0 = hybrax_nve(
                    energy, positions, velocities, box, mass, steps=steps, dt=DT, skin=SKIN,
                    dtype=dtype,
                )  # fmt: skip
                seconds, final = cpu_seconds(call, rounds)
                nbrs = final.neighbors
                note = (
                    f"pe {pe0:.10g} -> {float(final.potential_energy):.10g}, "
                    f"{int(nbrs.num_builds)} list builds, compile {compile_s:.2f} cpu-s"
                )
                if bool(nbrs.overflow) or not np.isfinite(float(final.potential_energy)):
                    note += ", LIST OVERFLOWED"
                config = (
                    f"{jnp.dtype(dtype).name}, {type(nbrs).__name__}({getattr(nbrs, 'format', '')})"
                )
                rows.append(
                    (
                        seconds,
                        Record(
                            case,
                            f"hybrax({jnp.dtype(dtype).name})",
                            "steps_per_s",
                            steps / seconds,
                            "steps/cpu-s",
                            note=note,
                            config=config,
                        ),
                    )
                )
                print(rows[-1][1], flush=True)
            # the fastest hybrax configuration is the row every ratio is taken against
            rows.sort(key=lambda row: row[0])
            best = rows[0][1]
            best.tool = "hybrax"
            records += [best, *(row[1] for row in rows[1:])]
            if lammps:
                pe = ", ".join(f"{k}: {v:.12g}" for k, v in sorted(lammps["pe"].items()))
                records.append(
                    Record(
                        case,
                        "lammps-serial(f64)",
                        "steps_per_s",
                        steps / lammps["cpu"],
                        "steps/cpu-s",
                        note=f"pe {pe}, {lammps['rebuilds']} list builds",
                        config=f"neighbor {SKIN:g} bin, every 1 delay 0 check yes",
                    )
                )
                print(records[-1], flush=True)
    report(records, args.json)
    for r in records:
        print(f"{r.case:<18} {r.tool:<20} {r.note}")


if __name__ == "__main__":
    main()
