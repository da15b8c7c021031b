"""Readers for LAMMPS potential files: EAM ``funcfl`` (``*.eam``), ``setfl``
(``*.eam.alloy``) and Finnis-Sinclair (``*.eam.fs``), Stillinger-Weber (``*.sw``) and
Tersoff (``*.tersoff``).

Each reader checks the file and raises a `hybrax.ConfigurationError` naming the file, the
line and what is wrong (a missing value, a count that does not match the header, an element
the file does not define). They return plain NumPy tables in LAMMPS ``metal`` units (eV,
Angstrom, amu); the potentials (`EmbeddedAtom`, `StillingerWeber`, `Tersoff`) turn them
into differentiable leaves.

The EAM tables are brought onto LAMMPS's internal grid exactly as ``pair_style eam`` /
``eam/alloy`` do (``PairEAM::file2array``): several funcfl files are interpolated onto one
grid with LAMMPS's 4-point Lagrange formula, the funcfl pair function is
``27.2 * 0.529 * Z_i(r) Z_j(r)`` (``r phi`` in eV Angstrom), and a funcfl grid keeps
``nrho - 1`` and ``nr - 1`` points as LAMMPS does.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np

from hybrax.core import ConfigurationError

__all__ = ["EAMTables", "read_eam", "read_stillinger_weber", "read_tersoff"]

HARTREE_BOHR = 27.2 * 0.529  # LAMMPS's funcfl conversion of Z_i Z_j to eV Angstrom


@dataclasses.dataclass(frozen=True)
class EAMTables:
    """EAM functions on LAMMPS's internal grid (host-side NumPy, float64).

    ``embedding[s]`` is ``F_s`` at ``rho = m * drho``; ``density[s]`` is the density an atom
    of species ``s`` gives its neighbours at ``r = m * dr`` (funcfl, setfl), or
    ``density[s, t]`` the density it gives a neighbour of species ``t`` (Finnis-Sinclair
    files); ``pair[s, t]`` is ``r phi_st(r)`` (eV Angstrom, symmetric). ``rho_max`` is
    where LAMMPS starts extrapolating ``F`` linearly.
    """

    elements: tuple[str, ...]
    masses: np.ndarray
    embedding: np.ndarray
    density: np.ndarray
    pair: np.ndarray
    drho: float
    dr: float
    rho_max: float
    cutoff: float


def _read_text(path) -> tuple[str, list[str]]:
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise ConfigurationError(f"potential file {name!r} does not exist (or is not a file)")
    with open(name, encoding="utf-8", errors="replace") as handle:
        return name, handle.read().splitlines()


def _numbers(name: str, tokens: list[tuple[str, int]], count: int, what: str, kind=float):
    if len(tokens) < count:
        where = f"line {tokens[-1][1]}" if tokens else "the end of the file"
        raise ConfigurationError(
            f"{name}: expected {count} values for {what}, found only {len(tokens)} before "
            f"{where} (the file is truncated or its header counts are wrong)"
        )
    out = []
    for token, line in tokens[:count]:
        try:
            out.append(kind(token))
        except ValueError:
            raise ConfigurationError(
                f"{name}, line {line}: {what} must be numbers, got {token!r}"
            ) from None
    del tokens[:count]
    return np.asarray(out, dtype=np.float64 if kind is float else np.int64)


def _tokens(lines: Sequence[str], first_line: int) -> list[tuple[str, int]]:
    return [
        (t, k + 1) for k, line in enumerate(lines[first_line:], first_line) for t in line.split()
    ]


def _header(name: str, lines: list[str], index: int, what: str, kinds: Sequence[type]):
    if index >= len(lines):
        raise ConfigurationError(f"{name}: missing line {index + 1} ({what})")
    fields = lines[index].split()
    if len(fields) < len(kinds):
        raise ConfigurationError(
            f"{name}, line {index + 1}: expected {what} ({len(kinds)} fields), got {lines[index]!r}"
        )
    try:
        return [kind(f) for kind, f in zip(kinds, fields, strict=False)]
    except ValueError:
        raise ConfigurationError(
            f"{name}, line {index + 1}: could not read {what} from {lines[index]!r}"
        ) from None


def _check_grid(name: str, nrho: int, drho: float, nr: int, dr: float, cutoff: float):
    if nrho < 5 or nr < 5:
        raise ConfigurationError(f"{name}: Nrho and Nr must be at least 5, got {nrho} and {nr}")
    if not (drho > 0 and dr > 0 and cutoff > 0):
        raise ConfigurationError(
            f"{name}: drho, dr and the cutoff must be positive, got {drho}, {dr}, {cutoff}"
        )
    check_table_cutoff(name, cutoff, nr, dr)


def check_table_cutoff(name: str, cutoff: float, nr: int, dr: float) -> None:
    """Refuse a cut-off grossly beyond a distance table ``r = k * dr``, ``k < nr``.

    LAMMPS (``PairEAM::compute``) never checks the cut-off against the table: it clamps
    the interval to the last one and its fraction to 1, so a distance beyond ``(nr - 1) *
    dr`` sees the last tabulated value. Real files rely on it: the Zhou setfl files give
    ``cutoff = Nr * dr`` (one grid step beyond, plus the rounding of the printed ``dr``),
    CoAl and CuTa exceed by round-off, and LAMMPS's funcfl re-gridding keeps ``Nr - 1``
    points, so Cu_smf7 / Ni_smf7 end one step short too. Accepted (and clamped, as LAMMPS
    does): up to one grid step beyond the table, with a relative slack of 1e-6 for the
    printed digits. Further is a file or argument error.
    """
    reach = nr * dr  # (nr - 1) * dr plus one grid step
    if cutoff > reach * (1 + 1e-6):
        raise ConfigurationError(
            f"{name}: the cutoff {cutoff} lies beyond the last tabulated distance "
            f"(Nr - 1) * dr = {(nr - 1) * dr} by more than one grid step (up to {reach} is "
            f"accepted: LAMMPS clamps to the last value); give a cutoff <= {reach:.10g} or a "
            "longer table"
        )


def _check_consumed(name: str, tokens: list[tuple[str, int]], header: str):
    """Values left after the last table mean the header's counts do not describe the
    tables (the tables read would be shifted): an error, not a silent misread."""
    if tokens:
        raise ConfigurationError(
            f"{name}: {len(tokens)} values are left over after the last table (from line "
            f"{tokens[0][1]}, {tokens[0][0]!r}); the header's {header} do not match the "
            "tables (a wrong count, or data for another pair style)"
        )


def element_list(owner: str, elements, *, optional: bool = False) -> tuple[str, ...] | None:
    """``elements`` as a tuple of element names; a bare string (``"Si"``, which would
    read as the letters ``S``, ``i``), a non-sequence or non-string names are an error
    (``None`` too unless ``optional``)."""
    if elements is None and optional:
        return None
    if isinstance(elements, str) or not isinstance(elements, Sequence):
        hint = f"({elements!r},)" if isinstance(elements, str) else "('Si',)"
        raise ConfigurationError(
            f"{owner}: elements must be a sequence of element names, one per species, such "
            f"as {hint}; got {elements!r}"
        )
    names = tuple(elements)
    if not names or not all(isinstance(e, str) and e.strip() == e and e for e in names):
        raise ConfigurationError(
            f"{owner}: elements must be a non-empty sequence of element names such as "
            f"('Cu', 'Ni'), got {elements!r}"
        )
    return names


def _check_atomic_number(name: str, number: int, element: str):
    """A funcfl file names its element only by atomic number: a different ``element`` is
    a file for another element (checked when ASE's periodic table is installed)."""
    try:
        from ase.data import chemical_symbols
    except ImportError:  # pragma: no cover - ASE is an optional dependency
        return
    if 0 < number < len(chemical_symbols) and element in chemical_symbols[1:]:
        if chemical_symbols[number] != element:
            raise ConfigurationError(
                f"{name}: the file is for atomic number {number} "
                f"({chemical_symbols[number]}), not {element}; pass "
                f"elements=({chemical_symbols[number]!r},) or the {element} file"
            )


def _check_finite(name: str, what: str, values: np.ndarray):
    if not np.all(np.isfinite(values)):
        raise ConfigurationError(f"{name}: {what} contains NaN or inf")


def _funcfl(path):
    name, lines = _read_text(path)
    number, mass = _header(name, lines, 1, "atomic number and mass", (int, float))
    nrho, drho, nr, dr, cutoff = _header(
        name, lines, 2, "Nrho drho Nr dr cutoff", (int, float, int, float, float)
    )
    _check_grid(name, nrho, drho, nr, dr, cutoff)
    tokens = _tokens(lines, 3)
    frho = _numbers(name, tokens, nrho, "F(rho)")
    zr = _numbers(name, tokens, nr, "Z(r)")
    rhor = _numbers(name, tokens, nr, "rho(r)")
    _check_consumed(name, tokens, "Nrho and Nr (line 3)")
    for what, values in (("F(rho)", frho), ("Z(r)", zr), ("rho(r)", rhor)):
        _check_finite(name, what, values)
    return dict(
        number=number,
        mass=mass,
        nrho=nrho,
        drho=drho,
        nr=nr,
        dr=dr,
        cut=cutoff,
        frho=frho,
        zr=zr,
        rhor=rhor,
    )


def _lagrange(values: np.ndarray, spacing: float, n_out: int, step: float) -> np.ndarray:
    """LAMMPS's 4-point Lagrange re-gridding of a funcfl table (``file2array``)."""
    n = values.shape[0]
    f = np.concatenate([[0.0], values])  # 1-indexed as in LAMMPS
    r = np.arange(n_out, dtype=np.float64) * step
    p = r / spacing + 1.0
    k = np.maximum(np.minimum(p.astype(np.int64), n - 2), 2)
    p = np.minimum(p - k, 2.0)
    sixth = 1.0 / 6.0
    c1 = -sixth * p * (p - 1.0) * (p - 2.0)
    c2 = 0.5 * (p * p - 1.0) * (p - 2.0)
    c3 = -0.5 * p * (p + 1.0) * (p - 2.0)
    c4 = sixth * p * (p * p - 1.0)
    return c1 * f[k - 1] + c2 * f[k] + c3 * f[k + 1] + c4 * f[k + 2]


def _read_funcfl(paths: Sequence, elements: Sequence[str] | None) -> EAMTables:
    files = [_funcfl(p) for p in paths]
    for path, f, element in zip(paths, files, elements or (), strict=False):
        _check_atomic_number(os.fspath(path), f["number"], element)
    dr = max(f["dr"] for f in files)
    drho = max(f["drho"] for f in files)
    rmax = max((f["nr"] - 1) * f["dr"] for f in files)
    rho_max = max((f["nrho"] - 1) * f["drho"] for f in files)
    nr, nrho = int(rmax / dr + 0.5), int(rho_max / drho + 0.5)
    frho = np.stack([_lagrange(f["frho"], f["drho"], nrho, drho) for f in files])
    rhor = np.stack([_lagrange(f["rhor"], f["dr"], nr, dr) for f in files])
    zr = np.stack([_lagrange(f["zr"], f["dr"], nr, dr) for f in files])
    pair = HARTREE_BOHR * zr[:, None, :] * zr[None, :, :]
    names = (
        tuple(elements) if elements is not None else tuple(f"type{k}" for k in range(len(files)))
    )
    return EAMTables(
        elements=names,
        masses=np.asarray([f["mass"] for f in files]),
        embedding=frho,
        density=rhor,
        pair=pair,
        drho=drho,
        dr=dr,
        rho_max=rho_max,
        cutoff=max(f["cut"] for f in files),
    )


def _read_setfl(path, finnis_sinclair: bool = False) -> EAMTables:
    """A setfl file (``pair_style eam/alloy``), or with ``finnis_sinclair`` its eam/fs
    variant: after each element's ``F(rho)``, one density table per element (the density
    this element gives an atom of element 1, 2, ...) instead of one."""
    name, lines = _read_text(path)
    kind = "an eam/fs" if finnis_sinclair else "a setfl"
    if len(lines) < 5:
        raise ConfigurationError(f"{name}: {kind} file needs at least 5 header lines")
    fields = lines[3].split()
    try:
        count = int(fields[0])
    except (IndexError, ValueError):
        raise ConfigurationError(
            f"{name}, line 4: expected 'Nelements Element1 Element2 ...', got {lines[3]!r}"
        ) from None
    elements = tuple(fields[1:])
    if count < 1 or len(elements) != count:
        raise ConfigurationError(
            f"{name}, line 4: Nelements = {count} but {len(elements)} element names follow "
            f"({lines[3]!r})"
        )
    nrho, drho, nr, dr, cutoff = _header(
        name, lines, 4, "Nrho drho Nr dr cutoff", (int, float, int, float, float)
    )
    _check_grid(name, nrho, drho, nr, dr, cutoff)
    tokens = _tokens(lines, 5)
    masses, frho, rhor = [], [], []
    for element in elements:
        masses.append(_element_mass(name, tokens, element))
        frho.append(_numbers(name, tokens, nrho, f"F(rho) of {element}"))
        if finnis_sinclair:
            rhor.append(
                [_numbers(name, tokens, nr, f"rho(r) of {element} at {e}") for e in elements]
            )
        else:
            rhor.append(_numbers(name, tokens, nr, f"rho(r) of {element}"))
    pair = np.zeros((count, count, nr))
    for i in range(count):
        for j in range(i + 1):
            pair[i, j] = pair[j, i] = _numbers(
                name, tokens, nr, f"r*phi(r) of {elements[i]}-{elements[j]}"
            )
    _check_consumed(name, tokens, "Nelements, Nrho and Nr (lines 4-5)")
    frho, rhor = np.stack(frho), np.stack(rhor)
    for what, values in (("F(rho)", frho), ("rho(r)", rhor), ("r*phi(r)", pair)):
        _check_finite(name, what, values)
    return EAMTables(
        elements=elements,
        masses=np.asarray(masses),
        embedding=frho,
        density=rhor,
        pair=pair,
        drho=drho,
        dr=dr,
        rho_max=(nrho - 1) * drho,
        cutoff=cutoff,
    )


def _element_mass(name: str, tokens: list[tuple[str, int]], element: str) -> float:
    """Consume an element's header line (atomic number, mass, lattice constant, lattice
    type) and return its mass."""
    if not tokens:
        raise ConfigurationError(f"{name}: the file ends before the header line of {element}")
    line = tokens[0][1]
    fields = [t for t, number in tokens if number == line]
    del tokens[: len(fields)]
    try:
        int(fields[0])
        return float(fields[1])
    except (IndexError, ValueError):
        raise ConfigurationError(
            f"{name}, line {line}: expected the header of {element} (atomic number, mass, "
            f"lattice constant, lattice type), got {' '.join(fields)!r}"
        ) from None


def _select(name: str, tables: EAMTables, elements: Sequence[str] | None) -> EAMTables:
    if elements is None:
        return tables
    elements = tuple(elements)
    missing = [e for e in elements if e not in tables.elements]
    if missing or not elements:
        raise ConfigurationError(
            f"{name}: elements {missing or list(elements)} are not in the file, which defines "
            f"{list(tables.elements)}"
        )
    index = np.asarray([tables.elements.index(e) for e in elements])
    return dataclasses.replace(
        tables,
        elements=elements,
        masses=tables.masses[index],
        embedding=tables.embedding[index],
        density=tables.density[np.ix_(index, index)]
        if tables.density.ndim == 3
        else tables.density[index],
        pair=tables.pair[np.ix_(index, index)],
    )


def read_eam(path, elements: Sequence[str] | None = None) -> EAMTables:
    """Read an EAM potential: a funcfl file (``*.eam``, or a list of them, one per
    species), a setfl file (``*.eam.alloy``) or a Finnis-Sinclair file (``*.eam.fs``,
    LAMMPS ``pair_style eam/fs``: densities per pair of elements). ``elements`` picks and
    orders the setfl or eam/fs elements (species ``s`` is ``elements[s]``; default: the
    file's order) or names the funcfl files."""
    elements = element_list("read_eam", elements, optional=True)
    if isinstance(path, (list, tuple)):
        if not path:
            raise ConfigurationError("read_eam: got an empty list of funcfl files")
        names = [os.fspath(p) for p in path]
        bad = [n for n in names if not n.endswith(".eam")]
        if bad:
            raise ConfigurationError(
                f"read_eam: a list of files must be funcfl files (*.eam), got {bad}"
            )
        if elements is not None and len(elements) != len(names):
            raise ConfigurationError(
                f"read_eam: {len(names)} funcfl files but {len(elements)} element names"
            )
        return _read_funcfl(names, elements)
    name = os.fspath(path)
    if name.endswith((".eam.alloy", ".setfl")):
        return _select(name, _read_setfl(name), elements)
    if name.endswith(".eam"):
        if elements is not None and len(elements) != 1:
            raise ConfigurationError(
                f"{name}: a funcfl file holds one element, got elements={list(elements)}"
            )
        return _read_funcfl([name], elements)
    if name.endswith(".eam.fs"):
        return _select(name, _read_setfl(name, finnis_sinclair=True), elements)
    raise ConfigurationError(
        f"{name}: unknown EAM file format; expected a funcfl file ending in .eam, a setfl "
        "file ending in .eam.alloy or a Finnis-Sinclair file ending in .eam.fs"
    )


def _parameter_entries(path, num_values: int, what: str):
    name, lines = _read_text(path)
    tokens: list[tuple[str, int]] = []
    for number, line in enumerate(lines, 1):
        tokens += [(t, number) for t in line.split("#")[0].split()]
    width = 3 + num_values
    if not tokens or len(tokens) % width:
        line = tokens[-1][1] if tokens else 1
        raise ConfigurationError(
            f"{name}: a {what} file holds entries of 3 element names and {num_values} numbers; "
            f"the entry ending near line {line} is incomplete ({len(tokens) % width or width} "
            "fields)"
        )
    entries = {}
    for start in range(0, len(tokens), width):
        chunk = tokens[start : start + width]
        key = tuple(t for t, _ in chunk[:3])
        values = []
        for token, line in chunk[3:]:
            try:
                values.append(float(token))
            except ValueError:
                raise ConfigurationError(
                    f"{name}, line {line}: the {what} entry {' '.join(key)} has a non-number "
                    f"{token!r} (expected 3 element names and {num_values} numbers)"
                ) from None
        if not np.all(np.isfinite(values)):
            raise ConfigurationError(f"{name}: the entry {' '.join(key)} contains NaN or inf")
        if key in entries:  # LAMMPS refuses these too ("duplicate entry")
            raise ConfigurationError(
                f"{name}, line {chunk[0][1]}: a second {what} entry for the element triplet "
                f"{' '.join(key)}; each triplet may appear once"
            )
        entries[key] = np.asarray(values)
    return name, entries


def _table(name: str, entries: dict, elements: Sequence[str], num_values: int) -> np.ndarray:
    elements = element_list(name, elements)
    known = sorted({e for key in entries for e in key})
    out = np.zeros((len(elements),) * 3 + (num_values,))
    for i, a in enumerate(elements):
        for j, b in enumerate(elements):
            for k, c in enumerate(elements):
                if (a, b, c) not in entries:
                    raise ConfigurationError(
                        f"{name}: no entry for the element triplet {a} {b} {c} (the file "
                        f"defines elements {known})"
                    )
                out[i, j, k] = entries[(a, b, c)]
    return out


SW_FIELDS = ("epsilon", "sigma", "a", "lambda", "gamma", "cos_theta0", "A", "B", "p", "q", "tol")
TERSOFF_FIELDS = (
    "m", "gamma", "lambda3", "c", "d", "cos_theta0", "n", "beta", "lambda2", "B", "R", "D",
    "lambda1", "A",
)  # fmt: skip


def read_stillinger_weber(path, elements: Sequence[str]) -> dict[str, np.ndarray]:
    """Read a LAMMPS Stillinger-Weber file (``*.sw``): for each parameter of
    `SW_FIELDS` an ``(S, S, S)`` table over the element triplets ``(i, j, k)`` of
    ``elements``."""
    name, entries = _parameter_entries(path, len(SW_FIELDS), "Stillinger-Weber")
    table = _table(name, entries, elements, len(SW_FIELDS))
    return {f: table[..., k] for k, f in enumerate(SW_FIELDS)}


def read_tersoff(path, elements: Sequence[str]) -> dict[str, np.ndarray]:
    """Read a LAMMPS Tersoff file (``*.tersoff``): for each parameter of `TERSOFF_FIELDS`
    an ``(S, S, S)`` table over the element triplets ``(i, j, k)`` of ``elements``."""
    name, entries = _parameter_entries(path, len(TERSOFF_FIELDS), "Tersoff")
    table = _table(name, entries, elements, len(TERSOFF_FIELDS))
    params = {f: table[..., k] for k, f in enumerate(TERSOFF_FIELDS)}
    if not np.all(np.isin(params["m"], (1.0, 3.0))):
        raise ConfigurationError(f"{name}: the Tersoff parameter m must be 1 or 3")
    return params
