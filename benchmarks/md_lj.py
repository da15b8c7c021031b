"""LAMMPS "in.lj" side by side: hybrax.md vs jax-md (in its fastest configuration) and LAMMPS.

    taskset -c 0 python benchmarks/md_lj.py [--quick] [--json PATH] [--steps N]
        [--sizes 10,20] [--rounds R] [--search full|formats|none] [--dtypes float32]
        [--jax-md-config "format=OrderedSparse,dr_threshold=0.7"]

The workload is LAMMPS's bench/in.lj: fcc lattice at reduced density 0.8442 (4,000 atoms =
10^3 unit cells, 32,000 = 20^3), Maxwell–Boltzmann velocities at T = 3.0, Lennard-Jones
cut at 2.5 sigma, Verlet skin 0.3, dt 0.005, NVE, the list rebuilt whenever an atom has
moved more than half the skin. Every tool starts from the same positions and velocities
(LAMMPS reads them from a data file); hybrax and jax-md run in float32 and float64, LAMMPS
(`lmp` on PATH, serial, one OpenMP thread) in double precision; without `lmp` its rows are
left out.

jax-md gets its best configuration. Before the timed runs (in float32, at each size) the
benchmark tries, one option at a time around the best so far, every documented speed option
of `jax_md.partition.neighbor_list`: ``format`` Dense / Sparse / OrderedSparse (jax-md's
default for Lennard-Jones), ``dr_threshold`` (its skin: 0.3 as in.lj, 0.4, 0.5, 0.7, 1.0),
``capacity_multiplier`` (1.25 default, 1.1, 1.05), ``disable_cell_list`` (all-pairs
candidates; only at 4,000 atoms, where N^2 fits) and ``fractional_coordinates``. Each is
timed for a fifth of the steps from the same start (the better of two runs, each
configuration compiled from clean jit caches); a configuration whose list overflowed
is not eligible. The fastest is then timed against hybrax (float64 runs the float32
winner) and named in the ``config`` field of every record; all tried ones are recorded
under "<case> jax-md search". ``--jax-md-config`` skips the search and runs the given
configuration (e.g. the 4,000-atom winner at 32,000 atoms: every option's cost is per atom,
except all-pairs candidates, which are not eligible there anyway). The list is updated
every step with jax-md's own ``nbrs.update`` (a rebuild only when an atom moved more than
dr_threshold / 2, inside a ``lax.cond``): checking less often is not exact, and the check
itself is a tiny part of a step. jax-md keeps its default switched LJ (r_onset 2.0),
which costs the same per pair.

Protocol. Capacities of both JAX tools are sized from a short warm-up melt (jax-md's from the
melted positions with the config's capacity_multiplier; hybrax's `grow` from the largest
need seen), so neither overflows in the timed run (checked). The timed run is a compiled,
warmed `lax.scan` of the steps from the lattice; hybrax and jax-md alternate in interleaved
rounds (load from other processes hits both alike) and the least disturbed round counts.
Speeds are steps per CPU-second of the process (pin it to one core with taskset -c 0; on a
shared machine CPU seconds are steadier than wall seconds), LAMMPS's from its loop time
times its reported CPU use. Ratios in the table are hybrax / other (higher is better for
hybrax).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness as H
import jax
import jax.numpy as jnp
import numpy as np
from _harness import Record, parse_args, report, write_environment
from _lammps import run_nve

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
def hybrax_runner(positions, velocities, box, steps, warmup, skin=SKIN, format=None):
    """hybrax's compiled ``steps``-step NVE rollout from the lattice, its list (cell list
    ``format``, default `hybrax.md.neighbor_list`'s) sized by a ``warmup``-step melt.
    Returns a dict with the timed call, the melted positions (jax-md's lists are allocated
    from them too), compile times (CPU seconds) and diagnostics."""
    lj = md.LennardJones(cutoff=CUTOFF, shift=False)  # pair_style lj/cut, as in.lj
    stepper = md.VelocityVerlet(lj, box, dt=DT)
    nbrs = md.neighbor_list(positions, box, CUTOFF, skin=skin, format=format)
    format = nbrs.format
    state = stepper.init(positions, velocities, nbrs)
    melted, _ = md.simulate(stepper, state, warmup, chunk_size=warmup, progress=False)
    sized = melted.neighbors.grow(melted.positions, box)
    minimum = (sized.column_capacity, sized.widths)
    if format in ("table", "rows"):
        minimum = (*minimum, sized.candidate_widths)
    nbrs = md.CellNeighborList.build(
        positions, box, CUTOFF, skin=skin, minimum_capacity=minimum, format=format
    )
    state = stepper.init(positions, velocities, nbrs)
    flagging = md.VelocityVerlet(lj, box, dt=DT, on_overflow="flag")

    def run(s):
        return hybrax.rollout(flagging, s, steps, save_every=None)[0]

    jitted = jax.jit(run)
    start = time.process_time()  # CPU seconds (the machine is shared)
    compiled = jitted.lower(state).compile()
    compile_s = time.process_time() - start
    step_one = jax.jit(lambda s: flagging.step(s))
    start = time.process_time()
    step_one.lower(state).compile()
    first_step_compile = time.process_time() - start
    return {
        "call": lambda: compiled(state),
        "state": state,
        "melted": melted.positions,
        "compile": compile_s,
        "first_step_compile": first_step_compile,
        "slots": nbrs.slots_per_atom,
        "format": format,
        "pe0": float(state.potential_energy) / positions.shape[0],
    }


def hybrax_check(r, final):
    assert not bool(final.neighbors.overflow), "hybrax list overflowed in the timed run"
    e0 = float(md.total_energy(r["state"]))
    r["drift"] = (float(md.total_energy(final)) - e0) / abs(e0)
    r["rebuilds"] = int(final.neighbors.num_builds) - int(r["state"].neighbors.num_builds)


# ----------------------------------------------------------------------------- jax-md
@dataclasses.dataclass(frozen=True)
class JaxMDConfig:
    """One jax-md neighbour-list configuration (all documented `partition.neighbor_list`
    options that change speed; the physics is the same in all of them)."""

    format: str = "OrderedSparse"  # jax-md's default for lennard_jones_neighbor_list
    skin: float = SKIN  # dr_threshold: rebuild when an atom moved more than skin / 2
    capacity_multiplier: float = 1.25
    cell_list: bool = True  # False: disable_cell_list=True (all-pairs candidates)
    fractional: bool = False  # fractional_coordinates with space.periodic_general

    @classmethod
    def parse(cls, text: str) -> JaxMDConfig:
        """The inverse of `label` (missing options keep their defaults)."""
        names = {
            "format": ("format", str),
            "dr_threshold": ("skin", float),
            "capacity_multiplier": ("capacity_multiplier", float),
            "disable_cell_list": ("cell_list", lambda v: v.strip() != "True"),
            "fractional_coordinates": ("fractional", lambda v: v.strip() == "True"),
        }
        values = {}
        for item in filter(None, (t.strip() for t in text.split(","))):
            key, _, value = item.partition("=")
            if key.strip() not in names:
                raise ValueError(f"unknown jax-md option {key!r}; expected one of {list(names)}")
            field, convert = names[key.strip()]
            values[field] = convert(value.strip())
        return cls(**values)

    def label(self) -> str:
        parts = [
            f"format={self.format}",
            f"dr_threshold={self.skin:g}",
            f"capacity_multiplier={self.capacity_multiplier:g}",
        ]
        if not self.cell_list:
            parts.append("disable_cell_list=True")
        if self.fractional:
            parts.append("fractional_coordinates=True")
        return ", ".join(parts)


def jax_md_runner(
    config: JaxMDConfig, positions, velocities, box, melted, steps, first_step: bool = True
):
    """Compile jax-md's NVE loop (`simulate.nve`, ``nbrs.update`` every step: rebuild when an
    atom moved more than dr_threshold / 2) in ``config`` for ``steps`` steps; the list's
    capacity is allocated from the melted positions with the config's capacity_multiplier.
    Returns (timed call, state, nbrs, compile seconds, first-step compile seconds, total
    energy function)."""
    from jax_md import energy, partition, simulate, space

    length = float(box.lengths[0])
    if config.fractional:
        # a NumPy scalar of the positions' dtype: keeps jax-md's shift in the state's dtype
        # (a Python float is float64 under x64) and, unlike a jax array, is hashable, so the
        # neighbour list's static metadata compares cleanly in jit's caches (a jax array
        # there fails every later jit lookup that compares against it)
        length = np.dtype(positions.dtype).type(length)
        displacement, shift = space.periodic_general(length, fractional_coordinates=True)
        scale = 1 / length
    else:
        displacement, shift = space.periodic(length)
        scale = 1.0
    neighbor_fn, energy_fn = energy.lennard_jones_neighbor_list(
        displacement,
        length,
        r_onset=2.0,  # jax-md's default switched LJ (2.0 to 2.5)
        r_cutoff=CUTOFF,
        dr_threshold=config.skin,
        capacity_multiplier=config.capacity_multiplier,
        disable_cell_list=not config.cell_list,
        fractional_coordinates=config.fractional,
        format=getattr(partition, config.format),
    )
    init_fn, apply_fn = simulate.nve(energy_fn, shift, DT)

    def scan(state, nbrs, n):
        def body(carry, _):
            s, nb = carry
            s = apply_fn(s, neighbor=nb)
            nb = nb.update(s.position)
            return (s, nb), None

        return jax.lax.scan(body, (state, nbrs), None, length=n)[0]

    start_positions = positions * scale
    # capacity from the melt (wrapped into the box: jax-md's cell list needs that)
    nbrs = neighbor_fn.allocate(jnp.mod(melted, length) * scale)
    nbrs = nbrs.update(start_positions)
    state = init_fn(jax.random.key(0), start_positions, kT=T0, neighbor=nbrs)
    state = state.set(momentum=velocities)  # unit masses: momentum = velocity
    jitted = jax.jit(lambda s, nb: scan(s, nb, steps))
    start = time.process_time()
    compiled = jitted.lower(state, nbrs).compile()
    compile_s = time.process_time() - start
    first_step_compile = float("nan")
    if first_step:
        step_one = jax.jit(lambda s, nb: apply_fn(s, neighbor=nb.update(s.position)))
        start = time.process_time()
        step_one.lower(state, nbrs).compile()
        first_step_compile = time.process_time() - start

    def total(s):
        kinetic = 0.5 * jnp.sum(s.momentum**2)
        return float(energy_fn(s.position, neighbor=neighbor_fn.allocate(s.position)) + kinetic)

    return (lambda: compiled(state, nbrs)), state, compile_s, first_step_compile, total


def time_jax_md(config, positions, velocities, box, melted, steps):
    """One timed run of ``config`` (compiled ahead of time): CPU and wall seconds, overflow."""
    call, state, compile_s, first, total = jax_md_runner(
        config, positions, velocities, box, melted, steps, first_step=False
    )
    (final, final_nbrs), cpu, wall = cpu_time(call)  # compiled ahead: no warm-up run
    _, cpu_again, wall_again = cpu_time(call)  # the less disturbed of two runs counts
    cpu, wall = min(cpu, cpu_again), min(wall, wall_again)
    return {
        "call": call,
        "state": state,
        "total": total,
        "cpu": cpu,
        "wall": wall,
        "compile": compile_s,
        "first_step_compile": first,
        "overflow": bool(final_nbrs.did_buffer_overflow),
        "final": final,
    }


def jax_md_search(
    positions, velocities, box, melted, steps, *, all_pairs_ok: bool, search: str = "full"
):
    """The fastest jax-md configuration, found one option at a time around the best so far:
    format (Dense, Sparse, OrderedSparse), then dr_threshold (the skin), then
    capacity_multiplier, then the cell list (off: all-pairs candidates, only where N^2 fits),
    then fractional coordinates. A configuration whose list overflowed in the timed run is
    not eligible. ``search="formats"`` stops after the formats; ``"none"`` takes jax-md's
    default (OrderedSparse). Returns (best config, {config: steps per CPU-second or None})."""
    tried: dict[JaxMDConfig, float | None] = {}

    def measure(config):
        if config not in tried:
            # each configuration from clean jit caches: one whose list carries an array in
            # its static metadata (fractional coordinates) otherwise breaks every later
            # configuration's jit cache look-ups (TracerBoolConversionError inside jax-md's
            # canonicalize_force under eval_shape)
            jax.clear_caches()
            try:
                r = time_jax_md(config, positions, velocities, box, melted, steps)
            except Exception as error:  # a configuration jax-md cannot run: not eligible
                print(f"  jax-md {config.label()}: failed ({error!r:.200})", file=sys.stderr)
                tried[config] = None
                return None
            tried[config] = None if r["overflow"] else steps / r["cpu"]
            print(
                f"  jax-md {config.label()}: "
                + ("overflowed" if r["overflow"] else f"{tried[config]:.3g} steps/cpu-s"),
                file=sys.stderr,
                flush=True,
            )
        return tried[config]

    def best_of(candidates):
        speeds = {c: measure(c) for c in candidates}
        valid = {c: v for c, v in speeds.items() if v is not None}
        if not valid:
            raise RuntimeError(f"every jax-md configuration overflowed: {list(speeds)}")
        return max(valid, key=valid.get)

    if search == "none":
        return JaxMDConfig(), tried
    best = best_of([JaxMDConfig(format=f) for f in ("Dense", "Sparse", "OrderedSparse")])
    if search == "formats":
        return best, tried
    best = best_of([dataclasses.replace(best, skin=s) for s in (0.3, 0.4, 0.5, 0.7, 1.0)])
    best = best_of([dataclasses.replace(best, capacity_multiplier=c) for c in (1.25, 1.1, 1.05)])
    if all_pairs_ok:
        best = best_of([best, dataclasses.replace(best, cell_list=False)])
    best = best_of([best, dataclasses.replace(best, fractional=True)])
    jax.clear_caches()  # the timed run too starts from clean caches (see measure)
    return best, tried


# ----------------------------------------------------------------------------- LAMMPS
def run_lammps(positions, velocities, box, steps):
    run = run_nve(
        positions,
        velocities,
        float(box.lengths[0]),
        1.0,
        units="lj",
        pair=f"pair_style lj/cut {CUTOFF}\npair_coeff 1 1 1.0 1.0 {CUTOFF}",
        neighbor=f"neighbor {SKIN} bin\nneigh_modify delay 0 every 1 check yes",
        steps=steps,
        timestep=DT,
        title="in.lj",
    )
    if run is None:
        return None
    energies = {step: etotal for step, (_, etotal) in run["thermo"].items()}
    drift = (energies[steps] - energies[0]) / abs(energies[0]) if steps in energies else np.nan
    first = run["thermo"].get(min(run["thermo"], default=0))
    return {
        "cpu": run["cpu"],
        "wall": run["wall"],
        "drift": drift,
        "rebuilds": run["rebuilds"],
        "pe0": first[0] / len(positions) if first else np.nan,
    }


def main(argv=None):
    import argparse

    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--steps", type=int, default=None, help="steps per timed run")
    extra.add_argument("--sizes", type=str, default=None, help="unit cells, e.g. 10,20")
    extra.add_argument("--warmup", type=int, default=None, help="melt steps to size lists")
    extra.add_argument("--rounds", type=int, default=None, help="interleaved timed rounds")
    extra.add_argument(
        "--search",
        choices=("full", "formats", "none"),
        default="full",
        help="jax-md configurations tried: every option (default), the formats only, or none "
        "(its default OrderedSparse)",
    )
    extra.add_argument(
        "--jax-md-config",
        type=str,
        default=None,
        help="run jax-md in this configuration instead of searching, e.g. "
        '"format=OrderedSparse,dr_threshold=0.7,capacity_multiplier=1.1" (the names of '
        "JaxMDConfig.label(); unnamed options keep their defaults)",
    )
    extra.add_argument(
        "--no-matched-skin",
        action="store_true",
        help="do not also run hybrax at jax-md's fastest skin (dr_threshold)",
    )
    extra.add_argument(
        "--dtypes", type=str, default="float32,float64", help="e.g. float32 (default both)"
    )
    extra.add_argument(
        "--hybrax-formats",
        type=str,
        default="windows,table",
        help="hybrax cell-list formats to time besides the default (row 'hybrax'): 'windows' "
        "(row 'hybrax windows'), 'table' (row 'hybrax table'), 'rows' (row 'hybrax rows')",
    )
    known, rest = extra.parse_known_args(argv)
    args = parse_args(__doc__.splitlines()[0], rest)
    H.set_clock("cpu")  # what the JAX tools' speeds are measured with (recorded in .env.json)
    sizes = (
        [int(c) for c in known.sizes.split(",")]
        if known.sizes
        else ([10] if args.quick else [10, 20])
    )
    dtypes = known.dtypes.split(",")
    records: list[Record] = []
    for cells in sizes:
        atoms = 4 * cells**3
        steps = known.steps or (100 if args.quick else (1000 if cells <= 10 else 200))
        search_steps = max(steps // 5, 20) if not args.quick else 50
        warmup = known.warmup or (100 if args.quick else 300)
        rounds = known.rounds or (2 if args.quick or cells > 10 else 3)
        lammps, best = None, None
        if known.jax_md_config:
            best = JaxMDConfig.parse(known.jax_md_config)
        for dtype_name in dtypes:
            dtype = jnp.dtype(dtype_name)
            positions, velocities, box = initial_state(cells, dtype)
            case = f"in.lj N={atoms} {dtype_name}"
            hx = hybrax_runner(positions, velocities, box, steps, warmup)
            if best is None:  # search in float32; float64 runs the float32 winner
                print(f"{case}: searching jax-md configurations", file=sys.stderr, flush=True)
                best, tried = jax_md_search(
                    positions,
                    velocities,
                    box,
                    hx["melted"],
                    search_steps,
                    all_pairs_ok=atoms <= 4000,
                    search=known.search,
                )
                for config, speed in tried.items():
                    records.append(
                        Record(
                            f"{case} jax-md search",
                            "jax-md",
                            "steps_per_s",
                            speed if speed is not None else float("nan"),
                            "steps/cpu-s",
                            f"{search_steps} steps, one run"
                            + ("" if speed is not None else "; overflowed or failed: not eligible"),
                            config.label(),
                        )
                    )
            call, jstate, jcompile, jfirst, jtotal = jax_md_runner(
                best, positions, velocities, box, hx["melted"], steps
            )
            jx = {"compile": jcompile, "first_step_compile": jfirst}
            calls = {"hybrax": hx["call"], "jax-md": call}
            results = {"hybrax": hx, "jax-md": jx}
            configs = {
                "hybrax": f"skin={SKIN:g} (in.lj), hard-cut LJ, list from the melt via grow(), "
                f"format='{hx['format']}' (default)",
                "jax-md": best.label() + ", switched LJ r_onset=2.0",
                "lammps-serial(f64)": f"neighbor {SKIN:g} bin, every 1 check yes",
            }
            layouts = {
                "table": "full Verlet table",
                "rows": "each atom's half-shell windows in one row",
                "windows": "half-shell windows read in place",
            }
            for layout, words in layouts.items():  # the other cell-list formats asked for
                if layout not in known.hybrax_formats.split(",") or layout == hx["format"]:
                    continue
                name = f"hybrax {layout}"
                results[name] = hybrax_runner(
                    positions, velocities, box, steps, warmup, format=layout
                )
                calls[name] = results[name]["call"]
                configs[name] = f"skin={SKIN:g} (in.lj), hard-cut LJ, format='{layout}' ({words})"
            if best.skin != SKIN and not known.no_matched_skin:  # hybrax at jax-md's skin too
                matched = f"hybrax skin={best.skin:g}"
                try:
                    results[matched] = hybrax_runner(
                        positions, velocities, box, steps, warmup, skin=best.skin
                    )
                    calls[matched] = results[matched]["call"]
                    configs[matched] = (
                        f"skin={best.skin:g} (jax-md's fastest dr_threshold), hard-cut LJ"
                    )
                except Exception as error:
                    results.pop(matched, None)
                    print(f"{case}: {matched} failed: {error!r:.300}", file=sys.stderr)
            # warm-up runs: their results give the drift and the overflow checks, their wall
            # time the wall-clock speed in the notes
            for tool in calls:
                out, _, results[tool]["wall"] = cpu_time(calls[tool])
                if tool == "jax-md":
                    final, final_nbrs = out
                    assert not bool(final_nbrs.did_buffer_overflow), "jax-md list overflowed"
                    e0 = jtotal(jstate)
                    jx["drift"] = (jtotal(final) - e0) / abs(e0)
                else:
                    hybrax_check(results[tool], out)
            samples = H.interleaved_samples(calls, rounds, clock=time.process_time, warm=False)
            for tool in calls:
                results[tool]["cpu"] = min(samples[tool])
                results[tool]["cpu_median"] = float(np.median(samples[tool]))
            if lammps is None:
                p64, v64, box64 = initial_state(cells, jnp.float64)
                lammps = run_lammps(p64, v64, box64, steps) or {}
            if lammps:
                results["lammps-serial(f64)"] = lammps
            for tool, r in results.items():
                sps = steps / r["cpu"]
                note = f"{steps} steps, wall {steps / r['wall']:.3g} steps/s" + (
                    " (warm-up run)" if tool in calls else ""
                )
                if "cpu_median" in r:
                    note = (
                        f"best of {rounds} interleaved rounds (median "
                        f"{steps / r['cpu_median']:.3g}), {note}"
                    )
                config = configs[tool]
                records.append(Record(case, tool, "steps_per_s", sps, "steps/cpu-s", note, config))
                records.append(
                    Record(case, tool, "atom_steps_per_s", sps * atoms, "1/cpu-s", "", config)
                )
                if "compile" in r:
                    records.append(
                        Record(
                            case,
                            tool,
                            "compile_s",
                            r["compile"],
                            "s",
                            f"scan of {steps} steps",
                            config,
                        )
                    )
                    records.append(
                        Record(
                            case,
                            tool,
                            "first_step_compile_s",
                            r["first_step_compile"],
                            "s",
                            "",
                            config,
                        )
                    )
                records.append(
                    Record(
                        case,
                        tool,
                        "relative_energy_drift",
                        abs(r["drift"]),
                        "",
                        f"signed {r['drift']:.3g} over {steps} steps",
                        config,
                    )
                )
                if "rebuilds" in r:
                    records.append(
                        Record(case, tool, "list_rebuilds", r["rebuilds"], "", "", config)
                    )
            print(
                f"{case}: hybrax PE/atom at step 0 {hx['pe0']:.9f}"
                + (f", LAMMPS {lammps['pe0']:.9f}" if lammps else "")
                + f"; hybrax slots/atom {hx['slots']}; jax-md {best.label()}",
                file=sys.stderr,
                flush=True,
            )
    report(records, args.json, higher_is_better=("steps_per_s", "atom_steps_per_s"))
    write_environment(args.json)


if __name__ == "__main__":
    main()
