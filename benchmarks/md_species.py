"""Compile time and step cost of many-body potentials against the number of species.

    taskset -c 0 python benchmarks/md_species.py [--quick] [--json PATH]

hybrax indexes its potential tables by species (``embedding[s]``, ``pair[s, t]``,
``parameters[s_i, s_j, s_k]``), never looping over species pairs in Python, so the compiled
program -- and its compile time -- should not depend on the number of species S (jax-md's
species-aware pair functions build one term per species pair, jax-md issue #119). This
script builds EAM (Cu_u3 tables copied to S species) and Tersoff (Si parameters copied to
S^3 triplets) for S = 1, 2, 4, 8, 16 with random species on the same configuration and
reports the seconds to lower and compile ``energy_and_forces`` (use ``--clock cpu`` on a
shared machine) and the time of one call, with all-pairs lists (256 atoms) and, for EAM, a
cell list's full Verlet table (``format="table"``, 864 atoms: the row pass).
"""

from __future__ import annotations

import functools
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import Record, clock_now, parse_args, report, time_call

import hybrax.md as md

POTENTIALS = "/usr/share/lammps/potentials"


def eam_with(species_count: int, species):
    base = md.EmbeddedAtom.from_file(f"{POTENTIALS}/Cu_u3.eam")
    s = species_count
    return md.EmbeddedAtom(
        jnp.tile(base.embedding, (s, 1)),
        jnp.tile(base.density, (s, 1)),
        jnp.tile(base.pair, (s, s, 1)),
        drho=base.drho,
        dr=base.dr,
        cutoff=base.cutoff,
        rho_max=base.rho_max,
        species=species,
    )


def tersoff_with(species_count: int, species):
    base = md.Tersoff.from_file(f"{POTENTIALS}/Si.tersoff", ["Si"])
    names = ("m", "gamma", "lambda3", "c", "d", "cos_theta0", "n", "beta", "lambda2", "B")
    names += ("R", "D", "lambda1", "A")
    s = species_count
    params = [np.tile(np.asarray(getattr(base, k)), (s, s, s)) for k in names]
    return md.Tersoff(*params, species=species, max_neighbors=8)


def main(argv=None):
    args = parse_args(__doc__, argv)
    if not os.path.isdir(POTENTIALS):
        print(f"{POTENTIALS} not found: install the Debian lammps package")
        return
    counts = (1, 4, 16) if args.quick else (1, 2, 4, 8, 16)
    rng = np.random.default_rng(0)
    dense = md.DenseNeighborList.build
    table = functools.partial(md.CellNeighborList.build, format="table")
    systems = {
        "eam": (md.lattice("fcc", 4, lattice_constant=3.615), eam_with, dense),
        "eam(table)": (md.lattice("fcc", 6, lattice_constant=3.615), eam_with, table),
        "tersoff": (
            md.lattice("fcc", 4, lattice_constant=5.431 / 2 ** (1 / 3)),
            tersoff_with,
            dense,
        ),
    }
    records = []
    for name, ((positions, box), make, build) in systems.items():
        positions = box.wrap(positions + jnp.asarray(rng.normal(0, 0.05, positions.shape)))
        for count in counts:
            species = jnp.asarray(rng.integers(0, count, positions.shape[0]), jnp.int32)
            potential = make(count, species)
            nbrs = build(positions, box, cutoff=potential.cutoff)
            fn = jax.jit(lambda x, p=potential, nb=nbrs, b=box: p.energy_and_forces(x, nb, b))
            start = clock_now()  # --clock cpu: this process's CPU seconds (steadier)
            compiled = fn.lower(positions).compile()
            seconds = clock_now() - start
            case = f"{name} N={positions.shape[0]} S={count}"
            records.append(Record(case, "hybrax", "compile", seconds, "s"))
            step = time_call(lambda c=compiled, x=positions: c(x), repeat=3 if args.quick else 5)
            records.append(Record(case, "hybrax", "energy+forces", step, "s"))
            print(records[-2], records[-1], sep="\n")
    report(records, args.json)


if __name__ == "__main__":
    main()
