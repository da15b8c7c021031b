"""A batch of many small LJ systems of different sizes: hybrax batched vs a Python loop
over hybrax single runs vs jax-md vmapped.

    taskset -c 0 python benchmarks/md_batch.py [--quick] [--json PATH] [--clock cpu]

The systems (256 by default) are fcc crystals of 2 or 3 cells per side, ``4 nx ny nz`` =
32, 48, 72 or 108 atoms, at density 0.8442 with small random displacements and Maxwell-
Boltzmann velocities at T* = 1; every system has its own (rectangular) box. The potential
is jax-md's switched Lennard-Jones (onset 1.2, cut-off 1.5, so that 2-cell boxes hold
twice the cut-off), in hybrax `SmoothLennardJones` with the same switch. NVE velocity
Verlet, dt = 0.005, for ``steps`` steps; timed after a warm-up run (compiled).

- ``hybrax batched``: `hybrax.md.simulate_batch` on one `SystemBatch` padded to 108 atoms
  (all-pairs lists, masked padding), one compiled program for all systems.
- ``hybrax by size``: one `SystemBatch` per size (no padding), four `simulate_batch` calls
  (what jax-md's grouping does).
- ``hybrax loop``: `hybrax.md.simulate` called on each system in turn (one compiled
  program per size, reused).
- ``jax-md vmapped``: jax-md has no padding, so its systems are grouped by size and each
  group runs as one ``jax.vmap`` of a ``lax.scan`` of ``simulate.nve`` steps (four compiled
  programs). Configurations tried: all pairs (``energy.lennard_jones_pair``) and a
  ``Dense`` neighbour list without cells (cells do not fit these boxes); the fastest is
  reported (``config``).

Reported: seconds for the whole batch and atom-steps per second, with ratios to hybrax
batched. Padding costs hybrax batched the pair work of 108-atom systems for every system
(2.3x the pair slots of the runs grouped by size, for this size mix), which is why
``hybrax by size`` is the fair match for jax-md's grouped run. Positions after the run are
compared between the tools (float32 round-off).
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import Record, block, clock_now, parse_args, report, write_environment

import hybrax.md as md

ONSET, CUTOFF, DT, DENSITY = 1.2, 1.5, 0.005, 0.8442
SHAPES = ((2, 2, 2), (2, 2, 3), (2, 3, 3), (3, 3, 3))


def make_systems(count: int, dtype, seed: int = 0):
    """``count`` systems ``(positions, box, velocities)`` cycling through SHAPES."""
    rng = np.random.default_rng(seed)
    systems = []
    for k in range(count):
        positions, box = md.lattice("fcc", SHAPES[k % len(SHAPES)], density=DENSITY, dtype=dtype)
        noise = jnp.asarray(rng.normal(0.0, 0.03, positions.shape), dtype)
        v = md.maxwell_boltzmann(jax.random.key(k), positions.shape[0], 1.0, dtype=dtype)
        systems.append((box.wrap(positions + noise), box, v))
    return systems


def timed(fn, repeat: int) -> tuple[float, object]:
    """Smallest time of ``repeat`` calls of ``fn`` (after one warm-up call)."""
    out = block(fn())
    best = float("inf")
    for _ in range(repeat):
        start = clock_now()
        out = block(fn())
        best = min(best, clock_now() - start)
    return best, out


def hybrax_batched(systems, steps: int):
    batch = md.SystemBatch.from_systems(systems)
    nbrs = md.batch_neighbor_list(batch, CUTOFF)
    lj = md.SmoothLennardJones(onset=ONSET, cutoff=CUTOFF)

    def make(box, masses):
        return md.VelocityVerlet(lj, box, dt=DT, masses=masses)

    def run():
        final, _ = md.simulate_batch(make, batch, nbrs, steps, chunk_size=steps)
        return final.positions

    return run, batch


def hybrax_by_size(systems, steps: int):
    """One `SystemBatch` per size (no padding), each run with `simulate_batch`."""
    groups: dict[int, list] = {}
    for system in systems:
        groups.setdefault(system[0].shape[0], []).append(system)
    runs = [hybrax_batched(members, steps)[0] for members in groups.values()]
    return lambda: [run() for run in runs]


def hybrax_loop(systems, steps: int):
    lj = md.SmoothLennardJones(onset=ONSET, cutoff=CUTOFF)
    starts = []
    for positions, box, v in systems:
        stepper = md.VelocityVerlet(lj, box, dt=DT)
        nbrs = md.neighbor_list(positions, box, CUTOFF)
        starts.append((stepper, stepper.init(positions, v, nbrs)))

    def run():
        return [
            md.simulate(stepper, state, steps, chunk_size=steps, progress=False)[0].positions
            for stepper, state in starts
        ]

    return run


def jax_md_vmapped(systems, steps: int, config: str):
    """One vmapped scan per size group; ``config`` is "pair" (all pairs) or "dense"."""
    from jax_md import energy, partition, simulate, space

    groups: dict[int, list] = {}
    for index, system in enumerate(systems):
        groups.setdefault(system[0].shape[0], []).append((index, system))
    runners = []
    for members in groups.values():
        side = members[0][1][1].lengths  # one shape, one box per group
        displacement, shift = space.periodic(side)
        positions = jnp.stack([s[0] for _, s in members])
        velocities = jnp.stack([s[2] for _, s in members])
        if config == "pair":
            energy_fn = energy.lennard_jones_pair(displacement, r_onset=ONSET, r_cutoff=CUTOFF)
            nbrs = None
        else:
            neighbor_fn, energy_fn = energy.lennard_jones_neighbor_list(
                displacement,
                side,
                r_onset=ONSET,
                r_cutoff=CUTOFF,
                dr_threshold=0.3,
                capacity_multiplier=1.5,
                disable_cell_list=True,
                format=partition.Dense,
            )
            template = neighbor_fn.allocate(positions[0])
            nbrs = jax.vmap(lambda p, t=template: t.update(p))(positions)
        init_fn, apply_fn = simulate.nve(energy_fn, shift, DT)

        def one(p, v, nb, init_fn=init_fn, apply_fn=apply_fn):
            state = init_fn(
                jax.random.key(0), p, kT=1.0, **({} if nb is None else {"neighbor": nb})
            )
            state = state.set(momentum=v)

            def body(carry, _):
                s, n = carry
                if n is None:
                    return (apply_fn(s), None), None
                s = apply_fn(s, neighbor=n)
                return (s, n.update(s.position)), None

            (s, n), _ = jax.lax.scan(body, (state, nb), None, length=steps)
            overflow = jnp.zeros((), bool) if n is None else n.did_buffer_overflow
            return s.position, overflow

        fn = jax.jit(jax.vmap(one))
        runners.append(lambda fn=fn, p=positions, v=velocities, nb=nbrs: fn(p, v, nb))

    def run():
        outs = [r() for r in runners]
        assert not any(bool(jnp.any(o[1])) for o in outs), "jax-md list overflowed"
        return [o[0] for o in outs]

    return run, groups


def main(argv=None):
    args = parse_args(__doc__, argv)
    dtype = jnp.float32
    count = 256
    steps = 50 if args.quick else 500
    repeat = 2 if args.quick else 3
    systems = make_systems(count, dtype)
    atoms = sum(s[0].shape[0] for s in systems)
    case = f"{count} LJ systems (32-108 atoms, {atoms} in all), {steps} steps f32"
    records = []
    results = {}
    configs = {}

    start = clock_now()
    run, batch = hybrax_batched(systems, steps)
    seconds, final = timed(run, repeat)
    print(f"hybrax batched: {seconds:.3f} s (setup+compile+runs {clock_now() - start:.1f} s)")
    results["hybrax"] = seconds
    configs["hybrax"] = "simulate_batch, padded to 108 atoms, all-pairs masked lists"

    start = clock_now()
    seconds, _ = timed(hybrax_by_size(systems, steps), repeat)
    print(f"hybrax batched by size: {seconds:.3f} s (total {clock_now() - start:.1f} s)")
    results["hybrax by size"] = seconds
    configs["hybrax by size"] = "simulate_batch on one batch per size (4 programs, no padding)"

    start = clock_now()
    run_loop = hybrax_loop(systems, steps)
    seconds, loop_final = timed(run_loop, 1)
    print(f"hybrax loop: {seconds:.3f} s (total {clock_now() - start:.1f} s)")
    results["hybrax loop"] = seconds
    configs["hybrax loop"] = "md.simulate per system (4 compiled sizes, reused)"
    worst = max(
        float(jnp.max(jnp.abs(final[b, : p.shape[0]] - loop_final[b])))
        for b, p in enumerate(batch.unpad(final))
    )
    print(f"  batched vs loop: largest position difference {worst:.2e} sigma")

    best = None
    for config in ("pair", "dense"):
        try:
            start = clock_now()
            run_jm, groups = jax_md_vmapped(systems, steps, config)
            seconds, jm_final = timed(run_jm, repeat)
        except Exception as error:  # a configuration jax-md cannot run: not eligible
            print(f"jax-md {config}: failed ({error!r:.200})", file=sys.stderr)
            continue
        print(f"jax-md vmapped ({config}): {seconds:.3f} s (total {clock_now() - start:.1f} s)")
        records.append(
            Record(case, f"jax-md vmapped ({config})", "batch_s", seconds, "s", "", config)
        )
        if best is None or seconds < best[1]:
            best = (config, seconds, jm_final, groups)
    if best is not None:
        config, seconds, jm_final, groups = best
        results["jax-md vmapped"] = seconds
        configs["jax-md vmapped"] = (
            f"fastest of all pairs / Dense list: {config}; grouped by size (4 vmapped scans)"
        )
        worst = 0.0
        for out, members in zip(jm_final, groups.values(), strict=True):
            for row, (index, system) in enumerate(members):
                worst = max(
                    worst, float(jnp.max(jnp.abs(out[row] - final[index, : len(system[0])])))
                )
        print(f"  hybrax batched vs jax-md: largest position difference {worst:.2e} sigma")

    for tool, seconds in results.items():
        note = f"best of {repeat if tool != 'hybrax loop' else 1} after a warm-up run"
        records.append(Record(case, tool, "batch_s", seconds, "s", note, configs[tool]))
        records.append(
            Record(
                case, tool, "atom_steps_per_s", atoms * steps / seconds, "1/s", "", configs[tool]
            )
        )
    report(records, args.json)
    write_environment(args.json)


if __name__ == "__main__":
    main()
