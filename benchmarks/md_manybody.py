"""Many-body potentials: hybrax vs jax-md, energy + forces of one configuration.

    taskset -c 0 python benchmarks/md_manybody.py [--quick] [--json PATH] [--clock cpu]

Cases: EAM Cu (LAMMPS ``Cu_u3.eam``, fcc), Stillinger-Weber Si and Tersoff Si (``Si.sw``,
``Si.tersoff``, diamond), slightly perturbed crystals. Timed: a jitted function returning the
energy and forces for fixed neighbour lists (built once, outside the timing; float32, skin
0.5 for both tools, jax-md's ``dr_threshold`` default), so the figure is the force evaluation
both tools repeat every MD step. hybrax runs both cell-list formats (``"table"``: full Verlet
rows, ``"windows"``: the default) and both are reported; the first call (compile) is timed
with the chosen clock. jax-md runs each neighbour-list
format its many-body functions accept (Dense, Sparse, OrderedSparse where supported) and
the fastest is reported (``config``). Compile time of the first call is reported as well.
Potential files come from /usr/share/lammps/potentials (the Debian lammps package).
"""

from __future__ import annotations

import io
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import Record, block, clock_now, interleaved_times, parse_args, report

import hybrax.md as md

POTENTIALS = "/usr/share/lammps/potentials"
EAM_FILE = "Cu_mishin1.eam.alloy"  # setfl: the format jax-md's EAM reader takes


def table_capacity(positions, length, cutoff, multiplier=1.25):
    """Neighbours within ``cutoff`` of the most crowded atom times ``multiplier`` (what
    jax-md's ``allocate`` does for its Dense format), by brute force on the host."""
    x = np.asarray(positions, np.float64)
    count = 0
    for start in range(0, len(x), 512):
        d = x[start : start + 512, None] - x[None]
        d -= length * np.rint(d / length)
        count = max(count, int(((d**2).sum(-1) < cutoff**2).sum(1).max()) - 1)
    return int(np.ceil(count * multiplier)) + 1


def crystal(kind: str, cells: int, a: float, noise: float, dtype):
    fcc = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    basis = fcc if kind == "fcc" else np.concatenate([fcc, fcc + 0.25])
    grid = np.stack(np.meshgrid(*[np.arange(cells)] * 3, indexing="ij"), -1).reshape(-1, 1, 3)
    x = ((grid + basis[None]) * a).reshape(-1, 3)
    x = np.mod(x + np.random.default_rng(0).normal(0, noise, x.shape), cells * a)
    return jnp.asarray(x, dtype), cells * a


FORMATS = ("table", "windows")  # hybrax's cell-list formats (format="table": full Verlet rows)


def hybrax_call(potential, positions, length, format, skin=0.5):
    """Jitted energy + forces on a fixed list (skin 0.5, jax-md's dr_threshold default)."""
    box = md.PeriodicBox(jnp.asarray(length, positions.dtype))
    nbrs = md.neighbor_list(positions, box, cutoff=potential.cutoff, skin=skin, format=format)
    fn = jax.jit(lambda x: potential.energy_and_forces(x, nbrs, box))
    return lambda: fn(positions), f"{type(nbrs).__name__}({format})"


def jax_md_calls(name, positions, length):
    from jax_md import energy, partition, quantity, space

    displacement, _ = space.periodic(length)
    calls = {}
    formats = {
        "Dense": partition.Dense,
        "Sparse": partition.Sparse,
        "OrderedSparse": partition.OrderedSparse,
    }
    for label, fmt in formats.items():
        try:
            if name == "eam":
                with open(os.path.join(POTENTIALS, EAM_FILE)) as handle:
                    lines = handle.read().split("\n")
                # jax-md's reader wants the word setfl on line 1 (the file has it on line 2)
                text = io.StringIO("\n".join(["setfl " + lines[0], *lines[1:]]))
                charge, embed, pair, cutoff = energy.load_lammps_eam_parameters(text)
                neighbor_fn, energy_fn = energy.eam_neighbor_list(
                    displacement, length, charge, embed, pair, cutoff,
                    fractional_coordinates=False, format=fmt,
                )  # fmt: skip
            elif name == "sw":
                neighbor_fn, energy_fn = energy.stillinger_weber_neighbor_list(
                    displacement, length, format=fmt
                )
            else:
                with open(os.path.join(POTENTIALS, "Si.tersoff")) as handle:
                    params = energy.load_lammps_tersoff_parameters(handle)
                neighbor_fn, energy_fn = energy.tersoff_neighbor_list(
                    displacement, length, params, fractional_coordinates=False, format=fmt
                )
            nbrs = neighbor_fn.allocate(positions)
            force = quantity.force(energy_fn)
            fn = jax.jit(lambda x, nbrs=nbrs, e=energy_fn, f=force: (e(x, nbrs), f(x, nbrs)))
            block(fn(positions))
            calls[label] = lambda fn=fn: fn(positions)
        except Exception as error:  # a format this potential does not support
            print(f"jax-md {name} {label}: skipped ({type(error).__name__}: {error})"[:200])
    return calls


def main(argv=None):
    args = parse_args(__doc__, argv)
    if not os.path.isdir(POTENTIALS):
        print(f"{POTENTIALS} not found: install the Debian lammps package")
        return
    dtype = jnp.float32
    sizes = {"eam": 5 if args.quick else 10, "sw": 4 if args.quick else 8}
    sizes["tersoff"] = sizes["sw"]
    cases = {
        "eam": ("fcc", 3.615, lambda x, n: md.EmbeddedAtom.from_file(f"{POTENTIALS}/{EAM_FILE}")),
        "sw": (
            "diamond",
            5.431,
            lambda x, n: md.StillingerWeber.from_file(
                f"{POTENTIALS}/Si.sw", ["Si"], max_neighbors=n
            ),
        ),
        "tersoff": (
            "diamond",
            5.431,
            lambda x, n: md.Tersoff.from_file(f"{POTENTIALS}/Si.tersoff", ["Si"], max_neighbors=n),
        ),
    }
    cutoffs = {"sw": 3.77118, "tersoff": 3.2, "eam": 0.0}
    records = []
    for name, (kind, a, make) in cases.items():
        positions, length = crystal(kind, sizes[name], a, 0.05, dtype)
        n = positions.shape[0]
        case = f"{name} N={n}"
        capacity = table_capacity(positions, length, cutoffs[name]) if cutoffs[name] else 0
        potential = make(positions, capacity)
        calls, labels = {}, {}
        for format in FORMATS:
            call, labels[format] = hybrax_call(potential, positions, length, format)
            start = clock_now()
            block(call())
            first = clock_now() - start
            records.append(Record(case, "hybrax", "first call", first, "s", config=labels[format]))
            calls[f"hybrax {format}"] = call
        peers = jax_md_calls(name, positions, length)
        times = interleaved_times({**calls, **peers}, rounds=3 if args.quick else 5)
        for format in sorted(FORMATS, key=lambda f: times[f"hybrax {f}"]):  # fastest first
            records.append(
                Record(
                    case,
                    "hybrax",
                    "energy+forces",
                    times[f"hybrax {format}"],
                    "s",
                    config=labels[format],
                )
            )
        best = min(peers, key=times.get) if peers else None
        if best:
            records.append(
                Record(
                    case,
                    "jax-md",
                    "energy+forces",
                    times[best],
                    "s",
                    note=f"tried {sorted(peers)}",
                    config=best,
                )
            )
        for record in records[-5:]:
            print(record)
    report(records, args.json)


if __name__ == "__main__":
    main()
