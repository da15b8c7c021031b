"""Lennard-Jones NVE in a triclinic cell: hybrax's TriclinicBox against its orthorhombic
PeriodicBox and against jax-md's general periodic space.

    taskset -c 0 python benchmarks/md_triclinic.py [--quick] [--clock cpu] [--json PATH]

The in.lj system (fcc at density 0.8442, cut-off 2.5, skin 0.3, dt 0.005, melted briefly at
T* = 3) in three descriptions of the same periodic system: the orthorhombic box (hybrax's
tuned column-window cell list), the same cube as a TriclinicBox, and a tilted cell
``b' = b + a`` (both with the fractional-coordinate cell list). The peer is jax-md's
``space.periodic_general`` (fractional coordinates, its cell list, OrderedSparse and Dense
formats; the faster is reported) on the tilted cell, with LJ switched off between 2.0 and 2.5
(its default) -- the same cost per pair. Reported: seconds per NVE step (list update
every step where needed) and compile seconds; ratios are other / hybrax tilted.
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import Record, clock_now, parse_args, report, time_call

import hybrax
import hybrax.md as md

CUTOFF, SKIN, DT = 2.5, 0.3, 0.005


def melted(cells: int):
    positions, box = md.lattice("fcc", cells, density=0.8442)
    v = md.maxwell_boltzmann(jax.random.key(0), positions.shape[0], temperature=3.0)
    nbrs = md.neighbor_list(positions, box, CUTOFF, skin=SKIN)
    stepper = md.VelocityVerlet(md.LennardJones(cutoff=CUTOFF), box, dt=DT)
    state, _ = md.simulate(stepper, stepper.init(positions, v, nbrs), 100, progress=False)
    return state.positions, state.velocities, box


def hybrax_case(positions, velocities, box, steps):
    nbrs = md.neighbor_list(positions, box, CUTOFF, skin=SKIN)
    stepper = md.VelocityVerlet(md.LennardJones(cutoff=CUTOFF), box, dt=DT)
    state = stepper.init(positions, velocities, nbrs)
    run = jax.jit(lambda s: hybrax.rollout(stepper, s, steps, save_every=None)[0])
    start = clock_now()
    compiled = run.lower(state).compile()
    compile_s = clock_now() - start
    final = compiled(state)
    assert not bool(final.neighbors.overflow)
    return (lambda: compiled(state)), compile_s, type(nbrs).__name__


def jax_md_case(positions, velocities, cell, steps, fmt):
    from jax_md import energy, partition, simulate, space

    box = jnp.asarray(cell.T, positions.dtype)  # jax-md: lattice vectors as columns
    displacement, shift = space.periodic_general(box, fractional_coordinates=True)
    neighbor_fn, energy_fn = energy.lennard_jones_neighbor_list(
        displacement,
        box,
        r_onset=2.0,
        r_cutoff=CUTOFF,
        dr_threshold=SKIN,
        fractional_coordinates=True,
        format=getattr(partition, fmt),
    )
    init_fn, apply_fn = simulate.nve(energy_fn, shift, DT)
    fractional = jnp.mod(positions @ jnp.linalg.inv(jnp.asarray(cell, positions.dtype)), 1.0)
    nbrs = neighbor_fn.allocate(fractional)
    state = init_fn(jax.random.key(0), fractional, kT=1.0, neighbor=nbrs)
    state = state.set(momentum=velocities)

    def scan(s, nb):
        def body(carry, _):
            s, nb = carry
            s = apply_fn(s, neighbor=nb)
            return (s, nb.update(s.position)), None

        return jax.lax.scan(body, (s, nb), None, length=steps)[0]

    start = clock_now()
    compiled = jax.jit(scan).lower(state, nbrs).compile()
    compile_s = clock_now() - start
    _, final_nbrs = compiled(state, nbrs)
    if bool(final_nbrs.did_buffer_overflow):
        return None
    return (lambda: compiled(state, nbrs)), compile_s


def main(argv=None):
    args = parse_args(__doc__, argv)
    cells, steps = (8, 20) if args.quick else (10, 100)
    positions, velocities, box = melted(cells)
    n = positions.shape[0]
    side = float(box.lengths[0])
    tilted = md.TriclinicBox(jnp.asarray([[side, 0, 0], [side, side, 0], [0, 0, side]]))
    cube = md.TriclinicBox(jnp.diag(box.lengths))
    case = f"LJ N={n}, {steps} NVE steps"
    repeat = 3 if args.quick else 5
    records = []
    for tool, b in (
        ("hybrax TriclinicBox tilted", tilted),
        ("hybrax TriclinicBox cube", cube),
        ("hybrax PeriodicBox", box),
    ):
        call, compile_s, kind = hybrax_case(b.wrap(positions), velocities, b, steps)
        seconds = time_call(call, repeat=repeat) / steps
        records.append(Record(case, tool, "s_per_step", seconds, "s", config=kind))
        records.append(Record(case, tool, "compile", compile_s, "s", config=kind))
        print(records[-2], records[-1], sep="\n")
    best = None
    for fmt in ("OrderedSparse", "Dense"):
        try:
            out = jax_md_case(
                tilted.wrap(positions), velocities, np.asarray(tilted.cell), steps, fmt
            )
        except Exception as error:  # a peer configuration that does not run
            print(f"jax-md {fmt}: {type(error).__name__}: {error}")
            continue
        if out is None:
            print(f"jax-md {fmt}: neighbour buffer overflow")
            continue
        seconds = time_call(out[0], repeat=repeat) / steps
        if best is None or seconds < best[0]:
            best = (seconds, out[1], fmt)
    if best is not None:
        config = f"periodic_general, fractional_coordinates=True, format={best[2]}"
        records.append(Record(case, "jax-md tilted", "s_per_step", best[0], "s", config=config))
        records.append(Record(case, "jax-md tilted", "compile", best[1], "s", config=config))
    baseline = {"s_per_step": "hybrax TriclinicBox tilted", "compile": "hybrax TriclinicBox tilted"}
    report(records, args.json, baseline=baseline)


if __name__ == "__main__":
    main()
