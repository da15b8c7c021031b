"""Generate the LAMMPS reference numbers for tests/md/test_eam.py and test_sw_tersoff.py.

Runs ``lmp`` (the Debian ``lammps`` package, 29 Sep 2021) on small perturbed crystals with
the potential files of ``/usr/share/lammps/potentials`` and writes, per case, the positions,
box, species, LAMMPS's energy, per-atom forces and virial tensor (``compute pressure NULL
virial`` times V / nktv2p, eV; order xx yy zz xy xz yz) at full precision to
``manybody_reference.npz``, and for the NVE cases LAMMPS's thermo output (pe, ke) every 10
steps of 100. Only numbers generated here are shipped; the potential files (GPL, with LAMMPS)
are read from the system at test time.

Usage: python tests/md/reference/make_manybody_reference.py
"""

from __future__ import annotations

import os
import subprocess
import tempfile

import numpy as np

POTENTIALS = "/usr/share/lammps/potentials"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "manybody_reference.npz")
NKTV2P = 1.6021765e6  # LAMMPS metal units: pressure * volume -> eV
MVV2E = 1.0364269e-4  # LAMMPS metal units: amu (A/ps)^2 -> eV
BOLTZMANN = 8.617343e-5  # LAMMPS metal units, eV/K


def fcc(cells: int, a: float) -> tuple[np.ndarray, float]:
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    return _crystal(basis, cells, a)


def diamond(cells: int, a: float) -> tuple[np.ndarray, float]:
    fcc_basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    basis = np.concatenate([fcc_basis, fcc_basis + 0.25])  # zincblende order: A sites, B sites
    return _crystal(basis, cells, a)


def _crystal(basis, cells, a):
    grid = np.stack(np.meshgrid(*[np.arange(cells)] * 3, indexing="ij"), -1).reshape(-1, 1, 3)
    positions = ((grid + basis[None]) * a).reshape(-1, 3)
    return positions, cells * a


CASES = {
    # name: (lattice, cells, a, noise, pair_style, file, elements, species rule)
    "eam_cu_funcfl": ("fcc", 3, 3.615, 0.12, "eam", "Cu_u3.eam", ("Cu",), "one"),
    "eam_cuni_setfl": ("fcc", 4, 3.58, 0.12, "eam/alloy", "CuNi.eam.alloy", ("Cu", "Ni"), "random"),
    "sw_si": ("diamond", 2, 5.431, 0.15, "sw", "Si.sw", ("Si",), "one"),
    "tersoff_si": ("diamond", 2, 5.431, 0.15, "tersoff", "Si.tersoff", ("Si",), "one"),
    "tersoff_sic": ("diamond", 2, 4.36, 0.12, "tersoff", "SiC.tersoff", ("Si", "C"), "zincblende"),
    # Finnis-Sinclair: densities per pair of elements (asymmetric), elements reordered
    "eam_feal_fs": ("fcc", 4, 3.9, 0.12, "eam/fs", "AlFe_mm.eam.fs", ("Fe", "Al"), "random"),
}
NVE = {  # name: (case, temperature K, timestep ps, steps)
    "nve_eam_cu": ("eam_cu_funcfl", 600.0, 0.002, 100),
}
MASSES = {
    "Cu": 63.546,
    "Ni": 58.6934,
    "Si": 28.0855,
    "C": 12.011,
    "Al": 26.981538,
    "Fe": 55.845,
}


def configuration(name: str, seed: int):
    kind, cells, a, noise, _, _, elements, rule = CASES[name]
    positions, length = (fcc if kind == "fcc" else diamond)(cells, a)
    rng = np.random.default_rng(seed)
    positions = np.mod(positions + rng.normal(0.0, noise, positions.shape), length)
    n = positions.shape[0]
    if rule == "one":
        species = np.zeros(n, np.int64)
    elif rule == "random":
        species = rng.integers(0, len(elements), n)
    else:  # zincblende: first half of each cell's basis on A sites
        species = np.tile(np.repeat([0, 1], 4), n // 8)
    return positions, np.full(3, length), species


def _write_data(path, positions, lengths, species, masses, velocities=None):
    lines = [
        "hybrax many-body reference",
        "",
        f"{len(positions)} atoms",
        f"{len(masses)} atom types",
    ]
    for axis, length in zip("xyz", lengths, strict=True):
        lines.append(f"0 {length:.17g} {axis}lo {axis}hi")
    lines += ["", "Masses", ""] + [f"{k + 1} {m:.17g}" for k, m in enumerate(masses)]
    lines += ["", "Atoms # atomic", ""]
    lines += [
        f"{k + 1} {s + 1} {x:.17g} {y:.17g} {z:.17g}"
        for k, (s, (x, y, z)) in enumerate(zip(species, positions, strict=True))
    ]
    if velocities is not None:
        lines += ["", "Velocities", ""]
        lines += [f"{k + 1} {u:.17g} {v:.17g} {w:.17g}" for k, (u, v, w) in enumerate(velocities)]
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")


def _run_lammps(name, positions, lengths, species, velocities=None, dt=0.001, steps=0):
    _, _, _, _, style, file, elements, _ = CASES[name]
    masses = [MASSES[e] for e in elements]
    with tempfile.TemporaryDirectory() as tmp:
        _write_data(os.path.join(tmp, "data"), positions, lengths, species, masses, velocities)
        coeff = (
            f"pair_coeff * * {POTENTIALS}/{file}"
            if style == "eam"
            else (f"pair_coeff * * {POTENTIALS}/{file} {' '.join(elements)}")
        )
        script = f"""
units metal
atom_style atomic
boundary p p p
atom_modify map array sort 0 0.0
read_data data
pair_style {style}
{coeff}
{"".join(f"mass {k + 1} {m:.17g}" + chr(10) for k, m in enumerate(masses))}
neighbor 1.0 bin
neigh_modify every 1 delay 0 check yes
compute vir all pressure NULL virial
thermo_style custom step pe ke c_vir[1] c_vir[2] c_vir[3] c_vir[4] c_vir[5] c_vir[6] vol
thermo_modify format float %.17g norm no
thermo {10 if steps else 1}
timestep {dt:.17g}
fix integrate all nve
dump forces all custom {max(steps, 1)} forces id fx fy fz
dump_modify forces format float %.17g sort id
run {steps}
"""
        with open(os.path.join(tmp, "in.test"), "w") as handle:
            handle.write(script)
        subprocess.run(
            ["lmp", "-in", "in.test", "-log", "log", "-screen", "none"],
            cwd=tmp,
            check=True,
        )
        thermo = _thermo(os.path.join(tmp, "log"))
        forces = _forces(os.path.join(tmp, "forces"), len(positions))
    return thermo, forces


def _thermo(path):
    rows, reading = [], False
    with open(path) as handle:
        for line in handle:
            fields = line.split()
            if fields[:2] == ["Step", "PotEng"]:
                reading = True
                continue
            if reading and fields and fields[0] == "Loop":
                break
            if reading and fields:
                rows.append([float(f) for f in fields])
    return np.asarray(rows)


def _forces(path, n):
    with open(path) as handle:
        lines = handle.read().splitlines()
    start = lines.index("ITEM: ATOMS id fx fy fz") + 1
    table = np.asarray([[float(f) for f in line.split()] for line in lines[start : start + n]])
    return table[:, 1:]


def main():
    data = {}
    for seed, name in enumerate(CASES):
        positions, lengths, species = configuration(name, seed)
        thermo, forces = _run_lammps(name, positions, lengths, species)
        volume = thermo[0, -1]
        data[f"{name}/positions"] = positions
        data[f"{name}/lengths"] = lengths
        data[f"{name}/species"] = species
        data[f"{name}/energy"] = thermo[0, 1]
        data[f"{name}/forces"] = forces
        data[f"{name}/virial"] = thermo[0, 3:9] * volume / NKTV2P
        print(f"{name}: {len(positions)} atoms, E = {thermo[0, 1]:.10f} eV")
    for name, (case, temperature, dt, steps) in NVE.items():
        positions = data[f"{case}/positions"]
        species = data[f"{case}/species"]
        masses = np.asarray([MASSES[e] for e in CASES[case][6]])[species]
        rng = np.random.default_rng(100)
        velocities = rng.normal(size=positions.shape) * np.sqrt(
            BOLTZMANN * temperature / (masses[:, None] * MVV2E)
        )
        velocities -= np.sum(masses[:, None] * velocities, 0) / np.sum(masses)
        thermo, _ = _run_lammps(
            case, positions, data[f"{case}/lengths"], species, velocities, dt=dt, steps=steps
        )
        data[f"{name}/velocities"] = velocities
        data[f"{name}/masses"] = masses
        data[f"{name}/dt"] = dt
        data[f"{name}/thermo"] = thermo[:, :3]  # step, pe, ke
        drift = thermo[-1, 1] + thermo[-1, 2] - thermo[0, 1] - thermo[0, 2]
        print(f"{name}: E_total change over the run {drift:.3e} eV")
    np.savez_compressed(OUT, **data)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
