"""Extended-XYZ trajectories with velocities, forces, energies and stated units.

Files are written by hybrax (every float at full precision, so reading back is exact in
float64) and read through ASE (``pip install 'hybrax[io]'``), so what hybrax writes is
what ASE, OVITO and VMD read.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from hybrax.core import ConfigurationError, OverwriteError

from ._ase import (
    SPECIES_KEY,
    AtomicSystem,
    ase_module,
    default_float,
    from_ase,
    per_atom,
    resolve_units,
    symbol_names,
    unit_labels,
)
from ._space import AbstractBox, FreeSpace, PeriodicBox
from ._triclinic import TriclinicBox
from ._units import Units, as_units

__all__ = ["read_extxyz", "write_extxyz"]


def _frames(value, num_frames: int | None, n: int | None, name: str) -> np.ndarray | None:
    """``value`` as float64 ``(T, N, 3)`` (one ``(N, 3)`` frame is given a frame axis)."""
    if value is None:
        return None
    array = np.asarray(value, np.float64)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ConfigurationError(f"{name} must have shape (T, N, 3) or (N, 3), got {array.shape}")
    expected = (num_frames, n, 3)
    if num_frames is not None and array.shape != expected:
        raise ConfigurationError(
            f"{name} must have the trajectory's shape {expected}, got {array.shape}"
        )
    return array


def _text(value) -> str:
    return repr(float(value))  # shortest text that reads back to the same float64


def _header(cell: np.ndarray | None, columns: list[tuple[str, str, int]], info: dict) -> str:
    """The comment line: Lattice (the ``(3, 3)`` ``cell``, lattice vectors as rows, Å),
    Properties, then ``info``."""
    parts = []
    if cell is not None:
        lattice = np.asarray(cell, np.float64).ravel().tolist()
        parts.append('Lattice="' + " ".join(map(_text, lattice)) + '"')
    parts.append("Properties=" + ":".join(f"{n}:{t}:{c}" for n, t, c in columns))
    for key, value in info.items():
        text = _text(value) if isinstance(value, float) else str(value)
        parts.append(f'{key}="{text}"' if " " in text else f"{key}={text}")
    return " ".join(parts)


def write_extxyz(
    path: str | os.PathLike,
    trajectory: Float[Array, "T N 3"] | Float[Array, "N 3"],
    box: AbstractBox | Sequence[AbstractBox],
    *,
    units: str | Units,
    symbols: str | Sequence[str] = "Ar",
    species: ArrayLike | None = None,
    velocities: Float[Array, "T N 3"] | Float[Array, "N 3"] | None = None,
    forces: Float[Array, "T N 3"] | Float[Array, "N 3"] | None = None,
    energies: ArrayLike | Sequence[float] | None = None,
    masses: ArrayLike | None = None,
    charges: ArrayLike | None = None,
    overwrite: bool = False,
) -> None:
    """Write positions (one ``(N, 3)`` frame or a ``(T, N, 3)`` trajectory), and optionally
    velocities, forces and energies, as extended XYZ in stated units.

    The file opens in ASE (``ase.io.read(path, ":")``), OVITO and VMD. Numbers are written
    in ASE's units (Å, eV, amu, e; see `Units`), converted from ``units``, at full
    precision; each frame's comment line states ``units=...`` with the scales
    (``unit_length_A``, ``unit_energy_eV``, ``unit_mass_amu``, ``unit_charge_e``) and the
    species order, so `read_extxyz` gives back exactly what was written (bit for bit in
    float64 when the scales are 1, as for ``"metal"`` and ``"reduced"``).

    Per-atom columns: ``species``, ``pos`` (Å), ``masses`` (amu), with velocities
    ``momenta`` (what ASE's ``get_velocities`` reads) and ``velocities`` (the exact values),
    ``initial_charges`` (e) and ``forces`` (eV/Å, ASE's ``get_forces``); per frame ``energy`` (eV,
    ASE's ``get_potential_energy``), ``Lattice`` and ``pbc``.

    Parameters
    ----------
    path
        File to write. An existing file is a `hybrax.OverwriteError` unless
        ``overwrite=True``.
    trajectory
        ``(T, N, 3)`` or ``(N, 3)`` positions (length unit).
    box
        `PeriodicBox`, `TriclinicBox` (``Lattice`` holds its nine numbers, rows ``a b c``)
        or `FreeSpace`, the same for every frame; or, for a cell that changes (an NPT
        run), one box per frame: a sequence of ``T`` boxes of one type, or one box whose
        leaves carry a leading frame axis (``lengths`` ``(T, 3)``, ``cell`` ``(T, 3, 3)``,
        e.g. boxes stacked with ``jax.tree.map(jnp.stack, ...)``).
    units
        ``"metal"``, ``"reduced"`` or a `Units` (required).
    symbols, species
        As in `to_ase`.
    velocities, forces
        ``(T, N, 3)`` (or ``(N, 3)`` for one frame), or None.
    energies
        One potential energy per frame (energy unit), or None.
    masses
        Scalar or ``(N,)`` masses (mass unit); default 1 mass unit each.
    charges
        ``(N,)`` charges (charge unit), or None.
    overwrite
        Replace an existing file (default False).

    Examples
    --------
    >>> import hybrax.md as md, tempfile, os, ase.io
    >>> positions, box = md.lattice("sc", 3, density=0.5)
    >>> path = os.path.join(tempfile.mkdtemp(), "frame.xyz")
    >>> md.write_extxyz(path, positions, box, units="reduced", energies=[-1.5])
    >>> atoms = ase.io.read(path)
    >>> atoms.info["units"], float(atoms.get_potential_energy())
    ('reduced', -1.5)
    >>> md.read_extxyz(path).positions.shape  # (frames, atoms, 3)
    (1, 27, 3)
    """
    units = as_units(units, "write_extxyz")
    frames = _frames(trajectory, None, None, "trajectory")
    num_frames, n = frames.shape[:2]
    velocities = _frames(velocities, num_frames, n, "velocities")
    forces = _frames(forces, num_frames, n, "forces")
    if energies is not None:
        energies = np.asarray(energies, np.float64).reshape(-1)
        if energies.shape[0] != num_frames:
            raise ConfigurationError(
                f"got {energies.shape[0]} energies for {num_frames} frames: pass one per frame"
            )
    cells, periodic = _frame_cells(box, num_frames)
    names = symbol_names(symbols, species, n)
    m = per_atom(1.0 if masses is None else masses, n, "masses") * units.mass
    columns = [("species", "S", 1), ("pos", "R", 3), ("masses", "R", 1)]
    if velocities is not None:
        columns += [("momenta", "R", 3), ("velocities", "R", 3)]
    if charges is not None:
        columns.append(("initial_charges", "R", 1))
        q = per_atom(charges, n, "charges") * units.charge
    if forces is not None:
        columns.append(("forces", "R", 3))
    info = unit_labels(units)
    if species is not None:
        info[SPECIES_KEY] = " ".join(symbols)
    info["pbc"] = "T T T" if periodic else "F F F"

    lines = []
    for t in range(num_frames):
        frame_info = dict(info)
        if energies is not None:
            frame_info = {"energy": float(energies[t]) * units.energy, **frame_info}
        blocks = [frames[t] * units.length, m[:, None]]
        if velocities is not None:
            v = velocities[t] * units.velocity
            blocks += [m[:, None] * v, v]
        if charges is not None:
            blocks.append(q[:, None])
        if forces is not None:
            blocks.append(forces[t] * units.force)
        table = np.concatenate(blocks, axis=1).tolist()
        lines.append(str(n))
        cell = None if cells[t] is None else cells[t] * units.length
        lines.append(_header(cell, columns, frame_info))
        lines.extend(
            name + " " + " ".join(map(repr, row)) for name, row in zip(names, table, strict=True)
        )
    try:
        with open(path, "w" if overwrite else "x") as file:
            file.write("\n".join(lines) + "\n")
    except FileExistsError:
        raise OverwriteError(
            f"write_extxyz: {os.fspath(path)!r} exists; pass overwrite=True to replace it or "
            "choose another path"
        ) from None


_BOX_TYPES = "a hybrax.md.PeriodicBox, TriclinicBox or FreeSpace"


def _frame_cells(box, num_frames: int) -> tuple[list[np.ndarray | None], bool]:
    """One ``(3, 3)`` cell (rows the lattice vectors, length unit) per frame, or None per
    frame in free space, and whether the box is periodic."""
    if isinstance(box, list | tuple):
        if len(box) != num_frames:
            raise ConfigurationError(
                f"write_extxyz: got {len(box)} boxes for {num_frames} frames; pass one box "
                "for all frames or one per frame"
            )
        kinds = {type(b) for b in box}
        if len(kinds) != 1:
            raise ConfigurationError(
                "write_extxyz: the per-frame boxes must all be of one type, got "
                + ", ".join(sorted(k.__name__ for k in kinds))
            )
        cells = []
        for b in box:
            one, periodic = _frame_cells(b, 1)
            cells += one
        return cells, periodic
    if isinstance(box, FreeSpace):
        return [None] * num_frames, False
    if isinstance(box, PeriodicBox):
        lengths = np.asarray(box.lengths, np.float64)
        cells = np.stack([np.diag(row) for row in lengths.reshape(-1, 3)])
    elif isinstance(box, TriclinicBox):
        cells = np.asarray(box.cell, np.float64).reshape(-1, 3, 3)
    else:
        raise ConfigurationError(f"write_extxyz: box must be {_BOX_TYPES}, got {box!r}")
    if cells.shape[0] == 1:
        return [cells[0]] * num_frames, True
    if cells.shape[0] != num_frames:
        raise ConfigurationError(
            f"write_extxyz: the box holds {cells.shape[0]} frames' cells but the trajectory "
            f"has {num_frames} frames; pass one cell per frame"
        )
    return list(cells), True


def read_extxyz(
    path: str | os.PathLike,
    *,
    units: str | Units | None = None,
    index: int | str = ":",
    symbols: Sequence[str] | None = None,
    dtype=None,
) -> AtomicSystem:
    """Read an extended-XYZ file (through ASE) as an `AtomicSystem` in stated units.

    A file written by `write_extxyz` states its units, and reading it gives back exactly
    what was written; ``units`` may then be omitted, and a different ``units`` is a
    `hybrax.ConfigurationError` (units are never mixed silently). Files from elsewhere are
    in ASE's units (Å, eV, amu): pass ``units=`` to say what hybrax should convert them to.

    Parameters
    ----------
    path
        The file.
    units
        ``"metal"``, ``"reduced"``, a `Units`, or None (the file's own label).
    index
        ASE's frame selection: ``":"`` (all frames, stacked along a leading axis; they
        must share atoms and the kind of box; where the cell changes from frame to frame,
        as in an NPT run, the returned ``box`` holds one cell per frame along a leading
        axis), or an integer (one frame, no frame axis).
    symbols, dtype
        As in `from_ase`.

    Returns
    -------
    AtomicSystem
        ``forces`` and ``potential_energy`` are None unless every frame has them.

    Examples
    --------
    >>> import hybrax.md as md, tempfile, os
    >>> positions, box = md.lattice("fcc", 2, density=0.8442)
    >>> path = os.path.join(tempfile.mkdtemp(), "solid.xyz")
    >>> md.write_extxyz(path, positions, box, units="reduced", velocities=0 * positions)
    >>> system = md.read_extxyz(path, index=0)  # units from the file
    >>> system.units.name, system.positions.shape, bool((system.positions == positions).all())
    ('reduced', (32, 3), True)
    """
    ase = ase_module()
    images = ase.io.read(os.fspath(path), index=index, format="extxyz")
    single = not isinstance(images, list)
    images = [images] if single else images
    if not images:
        raise ConfigurationError(f"read_extxyz: {os.fspath(path)!r} holds no frames")
    units = resolve_units(units, images[0].info, f"read_extxyz({os.fspath(path)!r})")
    dtype = default_float() if dtype is None else dtype
    systems = [from_ase(atoms, units=units, symbols=symbols, dtype=dtype) for atoms in images]
    if single:
        return systems[0]
    return _stack(systems, os.fspath(path))


def _replace(system: AtomicSystem, **fields) -> AtomicSystem:
    return dataclasses.replace(system, **fields)


def _same_cell(box: AbstractBox, other: AbstractBox) -> bool:
    if isinstance(box, PeriodicBox):
        return np.array_equal(np.asarray(box.lengths), np.asarray(other.lengths))
    if isinstance(box, TriclinicBox):
        return np.array_equal(np.asarray(box.cell), np.asarray(other.cell))
    return True


def _stack(systems: list[AtomicSystem], path: str) -> AtomicSystem:
    first = systems[0]
    for t, other in enumerate(systems[1:], start=1):
        same = (
            other.positions.shape == first.positions.shape
            and other.symbols == first.symbols
            and type(other.box) is type(first.box)
            and np.array_equal(np.asarray(other.species), np.asarray(first.species))
            and np.array_equal(np.asarray(other.masses), np.asarray(first.masses))
            and np.array_equal(np.asarray(other.charges), np.asarray(first.charges))
        )
        if not same:
            raise ConfigurationError(
                f"read_extxyz: frame {t} of {path!r} differs from frame 0 in its atoms, "
                "masses, charges or kind of box, so the frames cannot be stacked; read one "
                "frame at a time with index=t"
            )

    def stacked(name):
        values = [getattr(s, name) for s in systems]
        return None if any(v is None for v in values) else jnp.stack(values)

    boxes = [s.box for s in systems]
    box = first.box
    if not all(_same_cell(b, box) for b in boxes):  # an NPT trajectory: one box per frame
        box = jax.tree.map(lambda *leaves: jnp.stack(leaves), *boxes)
    return _replace(
        first,
        box=box,
        positions=stacked("positions"),
        velocities=stacked("velocities"),
        forces=stacked("forces"),
        potential_energy=stacked("potential_energy"),
    )
