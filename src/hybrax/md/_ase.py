"""ASE both ways: `ase.Atoms` in (`from_ase`) and out (`to_ase`), with units stated.

Needs the ``io`` extra (``pip install 'hybrax[io]'``: ase). The calculator is in
``_ase_calculator.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from hybrax.core import ConfigurationError, check_parameter

from ._space import AbstractBox, FreeSpace, PeriodicBox
from ._state import MDState
from ._triclinic import TriclinicBox
from ._units import Units, as_units

__all__ = ["AtomicSystem", "from_ase", "to_ase"]

# atoms.info keys that label what hybrax wrote (also the extended-XYZ comment keys)
UNITS_KEY = "units"
SCALE_KEYS = {
    "length": "unit_length_A",
    "energy": "unit_energy_eV",
    "mass": "unit_mass_amu",
    "charge": "unit_charge_e",
}
SPECIES_KEY = "species_symbols"


def ase_module():
    """The ``ase`` package, or an ImportError saying how to install it."""
    try:
        import ase
        import ase.io
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "ASE interop needs the 'ase' package: pip install 'hybrax[io]'"
        ) from error
    return ase


def default_float():
    """float64 when jax_enable_x64 is on, else float32."""
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def unit_labels(units: Units) -> dict:
    """The ``atoms.info`` / comment-line entries that state ``units``."""
    labels = {UNITS_KEY: units.name}
    labels.update({key: getattr(units, field) for field, key in SCALE_KEYS.items()})
    return labels


def labelled_units(info: dict) -> Units | None:
    """The `Units` an ``atoms.info`` (or comment line) states, or None if unlabelled."""
    if UNITS_KEY not in info:
        return None
    scales = {field: info.get(key, 1.0) for field, key in SCALE_KEYS.items()}
    if info[UNITS_KEY] == "metal":
        return Units.metal()
    return Units(str(info[UNITS_KEY]), **{k: float(v) for k, v in scales.items()})


def resolve_units(units, info: dict, owner: str) -> Units:
    """``units`` checked against the label in ``info``: they must agree; one is needed."""
    label = labelled_units(info)
    if units is None:
        if label is None:
            raise ConfigurationError(
                f"{owner}: these atoms carry no units label; pass units='metal' (Å, eV, amu) "
                "or units='reduced' (LJ units) or a hybrax.md.Units to say what the numbers "
                "mean"
            )
        return label
    units = as_units(units, owner)
    if label is not None and label != units:
        raise ConfigurationError(
            f"{owner}: the atoms are labelled {label} but units={units} was asked; units are "
            "never mixed silently: pass units=None to use the label, or convert first"
        )
    return units


class AtomicSystem(eqx.Module):
    """Atoms as hybrax sees them, in one stated unit system: what `from_ase` and
    `read_extxyz` return, and what `hybrax.md` integrators start from.

    Start a run with ``stepper.init(system.positions, system.velocities, neighbors)``
    for a stepper built on ``system.box`` with ``masses=system.masses``; species index
    ``system.symbols`` (pass them to per-species energies), charges go to
    `hybrax.md.EwaldCoulomb`. Read from a multi-frame file, positions, velocities, forces
    and energies carry a leading frame axis.

    Attributes
    ----------
    positions
        ``(N, 3)`` positions (length unit), inside the box when it is periodic.
    velocities
        ``(N, 3)`` velocities (length / time unit); zeros when the atoms had none.
    masses
        ``(N,)`` masses (mass unit).
    charges
        ``(N,)`` charges (charge unit); zeros when the atoms had none.
    species
        ``(N,)`` integer species, indices into ``symbols``.
    box
        `PeriodicBox` (all directions periodic, orthorhombic cell), `TriclinicBox` (all
        periodic, any other cell) or `FreeSpace`.
    symbols
        The chemical symbol of each species (static).
    units
        The `Units` all of the above are in (static).
    forces, potential_energy
        Forces (energy / length) and potential energy (energy) when the atoms had them
        (a calculator's stored results, or a file's ``forces`` / ``energy``); else None.

    Examples
    --------
    Solid argon built by ASE (Å), run by hybrax in reduced LJ units:

    >>> import ase.build, hybrax.md as md
    >>> atoms = ase.build.bulk("Ar", "fcc", a=5.26, cubic=True).repeat(3)  # 108 atoms
    >>> argon = md.Units.reduced(sigma=3.405, epsilon=0.010325, mass=39.948)
    >>> system = md.from_ase(atoms, units=argon)
    >>> stepper = md.VelocityVerlet(md.LennardJones(cutoff=2.0), system.box, dt=0.005,
    ...                             masses=system.masses)
    >>> nbrs = md.neighbor_list(system.positions, system.box, cutoff=2.0)
    >>> state = stepper.init(system.positions, system.velocities, nbrs)
    >>> back = md.to_ase(state, system.box, units=argon, symbols="Ar")  # Å and eV again
    """

    positions: Float[Array, "*frames N 3"]
    velocities: Float[Array, "*frames N 3"]
    masses: Float[Array, " N"]
    charges: Float[Array, " N"]
    species: Int[Array, " N"]
    box: AbstractBox
    symbols: tuple[str, ...] = eqx.field(static=True)
    units: Units = eqx.field(static=True)
    forces: Float[Array, "*frames N 3"] | None = None
    potential_energy: Float[Array, "*frames"] | None = None

    def to_ase(self):
        """The system as an `ase.Atoms` (a list of them for several frames), in ASE units
        (Å, eV, amu, e), labelled with ``units``; see `to_ase`."""
        kwargs = dict(
            units=self.units,
            symbols=list(self.symbols),
            species=self.species,
            masses=self.masses,
            charges=self.charges,
        )
        if self.positions.ndim == 2:
            return to_ase(
                self.positions,
                self.box,
                velocities=self.velocities,
                forces=self.forces,
                energy=self.potential_energy,
                **kwargs,
            )
        return [
            to_ase(
                self.positions[t],
                self.box,
                velocities=self.velocities[t],
                forces=None if self.forces is None else self.forces[t],
                energy=None if self.potential_energy is None else self.potential_energy[t],
                **kwargs,
            )
            for t in range(self.positions.shape[0])
        ]


def box_from_atoms(atoms, units: Units, dtype, owner: str) -> AbstractBox:
    """`PeriodicBox` for an all-periodic orthorhombic cell, `TriclinicBox` for any other
    all-periodic cell, `FreeSpace` for no pbc; mixed pbc, a singular or left-handed cell is a
    `ConfigurationError` saying what is supported."""
    pbc = np.asarray(atoms.get_pbc(), bool)
    if not pbc.any():
        return FreeSpace()
    if not pbc.all():
        raise ConfigurationError(
            f"{owner}: mixed periodicity pbc={pbc.tolist()} is not supported: a hybrax box is "
            "periodic in all three directions (PeriodicBox) or in none (FreeSpace); for a "
            "slab or a wire, add vacuum along the open directions and set atoms.pbc = True"
        )
    cell = np.asarray(atoms.cell[:], np.float64)
    if not np.all(np.isfinite(cell)):
        raise ConfigurationError(f"{owner}: the cell {cell.tolist()} is not finite")
    lengths = np.diag(cell).copy()
    off_diagonal = np.abs(cell - np.diag(lengths)).max()
    if off_diagonal > 1e-10 * np.abs(cell).max():
        volume = float(np.linalg.det(cell))
        if not volume > 1e-12 * np.abs(cell).max() ** 3:
            raise ConfigurationError(
                f"{owner}: the cell {np.round(cell, 6).tolist()} (Å) has volume {volume:g}; a "
                "periodic cell needs three independent, right-handed lattice vectors "
                "(det(cell) > 0): swap two of them for a left-handed cell, or set "
                "atoms.pbc = False"
            )
        return TriclinicBox(jnp.asarray(cell / units.length, dtype))
    if not np.all(lengths > 0):
        raise ConfigurationError(
            f"{owner}: a periodic cell needs three positive side lengths, got cell "
            f"{cell.tolist()} (Å); set atoms.cell or atoms.pbc = False"
        )
    return PeriodicBox(jnp.asarray(lengths / units.length, dtype))


def positions_from_atoms(atoms, box: AbstractBox, units: Units, dtype) -> Array:
    """Positions in the length unit, wrapped into a periodic box."""
    positions = jnp.asarray(np.asarray(atoms.positions, np.float64) / units.length, dtype)
    return box.wrap(positions)


def _check_atoms_arrays(atoms, owner: str) -> None:
    """Finite positions, momenta and charges and positive masses (a zero mass would make
    ASE's velocities, momenta / masses, infinite)."""
    checks = (
        ("atoms.positions (Å)", atoms.positions, False),
        ("atoms masses (amu; atoms.set_masses)", atoms.get_masses(), True),
        ("atoms momenta (atoms.set_momenta / set_velocities)", atoms.get_momenta(), False),
        ("atoms initial charges (e)", atoms.get_initial_charges(), False),
    )
    for name, values, positive in checks:
        check_parameter(np.asarray(values, np.float64), f"{owner}: {name}", positive=positive)


def _species_of(names: list[str], symbols: Sequence[str] | None, owner: str):
    if isinstance(symbols, str):
        raise ConfigurationError(
            f"{owner}: symbols must be a sequence of element names (the species order), "
            f"such as [{symbols!r}], got the string {symbols!r}"
        )
    if symbols is None:
        symbols = list(dict.fromkeys(names))  # order of first appearance
    symbols = [str(s) for s in symbols]
    index = {s: i for i, s in enumerate(symbols)}
    missing = sorted(set(names) - set(index))
    if missing:
        raise ConfigurationError(
            f"{owner}: the atoms contain {missing}, which symbols={symbols} does not list; "
            "give every element present"
        )
    return tuple(symbols), np.asarray([index[n] for n in names], np.int32)


def _velocities(atoms) -> np.ndarray:
    """ASE's velocities (momenta / masses), or hybrax's exact ``velocities`` array (from a
    file hybrax wrote) when it agrees with them to round-off (never a stale copy)."""
    velocities = atoms.get_velocities()
    exact = atoms.arrays.get("velocities")
    if exact is not None and np.allclose(exact, velocities, rtol=1e-12, atol=0.0):
        return np.asarray(exact, np.float64)
    return velocities


def _stored_results(atoms) -> dict:
    """A calculator's results for exactly these atoms (never triggers a calculation)."""
    calc = atoms.calc
    if calc is None or calc.check_state(atoms):
        return {}
    return dict(getattr(calc, "results", {}))


def from_ase(
    atoms,
    *,
    units: str | Units | None,
    symbols: Sequence[str] | None = None,
    dtype=None,
) -> AtomicSystem:
    """Positions, velocities, masses, box, charges and species of an `ase.Atoms`, in
    stated units.

    ASE works in Å, eV, amu and e (velocities in Å per ASE time unit); they are divided
    by the scales of ``units``. Positions are wrapped into a periodic box.

    Parameters
    ----------
    atoms
        An `ase.Atoms`. Its ``pbc`` must be all True (a `PeriodicBox` for a diagonal cell
        matrix, else a `TriclinicBox` with ASE's cell rows as lattice vectors) or all False
        (`FreeSpace`, the cell is ignored); anything else is a `hybrax.ConfigurationError`
        saying what is supported.
    units
        ``"metal"``, ``"reduced"`` or a `Units`: what the hybrax numbers will mean
        (required). Atoms written by hybrax carry a units label; a different ``units`` is
        an error, and ``units=None`` takes the label.
    symbols
        The species order, e.g. ``["Cu", "Ag"]`` to match a potential's parameter
        matrices; default: as stored by hybrax, else the order of first appearance.
        An element missing from it is an error.
    dtype
        Floating dtype of the arrays; default float64 under ``jax_enable_x64``, else
        float32.

    Returns
    -------
    AtomicSystem
        With ``forces`` and ``potential_energy`` when ``atoms.calc`` holds results for
        these very atoms (no calculation is run).

    Examples
    --------
    >>> import ase.build, hybrax.md as md
    >>> atoms = ase.build.bulk("Cu", "fcc", a=3.615, cubic=True)
    >>> system = md.from_ase(atoms, units="metal")
    >>> len(system.positions), system.symbols, round(float(system.masses[0]), 3)
    (4, ('Cu',), 63.546)
    >>> round(float(system.box.lengths[0]), 4)  # Å
    3.615
    """
    ase_module()
    owner = "from_ase"
    units = resolve_units(units, atoms.info, owner)
    dtype = default_float() if dtype is None else dtype
    box = box_from_atoms(atoms, units, dtype, owner)
    if symbols is None and SPECIES_KEY in atoms.info:
        symbols = str(atoms.info[SPECIES_KEY]).split()
    symbols, species = _species_of(atoms.get_chemical_symbols(), symbols, owner)
    _check_atoms_arrays(atoms, owner)

    def convert(values, scale):
        return jnp.asarray(np.asarray(values, np.float64) / scale, dtype)

    results = _stored_results(atoms)
    forces = results.get("forces")
    energy = results.get("energy")
    return AtomicSystem(
        positions=positions_from_atoms(atoms, box, units, dtype),
        velocities=convert(_velocities(atoms), units.velocity),
        masses=convert(atoms.get_masses(), units.mass),
        charges=convert(atoms.get_initial_charges(), units.charge),
        species=jnp.asarray(species),
        box=box,
        symbols=symbols,
        units=units,
        forces=None if forces is None else convert(forces, units.force),
        potential_energy=None if energy is None else convert(energy, units.energy),
    )


def symbol_names(symbols, species, n: int) -> list[str]:
    """One chemical symbol per atom from ``symbols`` (one, one per atom, or one per
    species with ``species``)."""
    if isinstance(symbols, str):
        if species is None:
            return [symbols] * n
        raise ConfigurationError(
            "with species= give one symbol per species, e.g. symbols=['Ar', 'Kr']"
        )
    symbols = list(symbols)
    if species is None:
        if len(symbols) != n:
            raise ConfigurationError(f"got {len(symbols)} symbols for {n} atoms")
        return symbols
    species = np.asarray(species)
    if species.shape != (n,):
        raise ConfigurationError(f"species must have shape ({n},), got {species.shape}")
    if species.min() < 0 or species.max() >= len(symbols):
        raise ConfigurationError(
            f"species values must index symbols (0..{len(symbols) - 1}), got "
            f"{species.min()}..{species.max()}"
        )
    return [symbols[s] for s in species]


def per_atom(value, n: int, name: str, columns: int | None = None) -> np.ndarray:
    """``value`` as float64 NumPy of shape ``(n,)`` (scalars broadcast) or ``(n, columns)``."""
    array = np.asarray(value, np.float64)
    shape = (n,) if columns is None else (n, columns)
    if columns is None and array.ndim == 0:
        array = np.broadcast_to(array, shape)
    if array.shape != shape:
        raise ConfigurationError(f"{name} must have shape {shape}, got {array.shape}")
    return array


def to_ase(
    positions: Float[Array, "N 3"] | MDState,
    box: AbstractBox,
    *,
    units: str | Units,
    symbols: str | Sequence[str] = "Ar",
    species: ArrayLike | None = None,
    velocities: Float[Array, "N 3"] | None = None,
    masses: ArrayLike | None = None,
    charges: ArrayLike | None = None,
    forces: Float[Array, "N 3"] | None = None,
    energy: ArrayLike | None = None,
):
    """An `ase.Atoms` for a configuration or an `MDState`, converted to ASE's units.

    ``units`` states what the hybrax numbers mean (required; see `Units`): positions and
    the cell are multiplied by its length scale to give Å, velocities by its velocity
    scale, masses to amu, charges to e; ``forces`` and ``energy`` are attached as an ASE
    `SinglePointCalculator` in eV/Å and eV (so ``atoms.get_forces()`` and
    ``atoms.get_potential_energy()`` return them). ``atoms.info`` records the unit system
    (``units``, ``unit_length_A``, ...) and the species order, so `from_ase` reads the
    numbers back in the same units.

    Parameters
    ----------
    positions
        ``(N, 3)`` positions (length unit), or an `MDState` (its positions, velocities,
        forces and potential energy are used; do not pass those separately).
    box
        `PeriodicBox` or `TriclinicBox` (periodic cell) or `FreeSpace` (no cell, ``pbc``
        False).
    units
        ``"metal"``, ``"reduced"`` or a `Units`.
    symbols
        One chemical symbol for all atoms, a symbol per atom, or (with ``species``) a symbol
        per species.
    species
        ``(N,)`` integer species, or None.
    velocities
        ``(N, 3)`` velocities (length / time unit), or None.
    masses
        Scalar or ``(N,)`` masses (mass unit); default 1 mass unit each (hybrax's
        integrators' default), not the element's mass.
    charges
        ``(N,)`` charges (charge unit), or None.
    forces
        ``(N, 3)`` forces (energy / length unit), or None.
    energy
        Potential energy (energy unit), or None.

    Examples
    --------
    >>> import hybrax.md as md
    >>> positions, box = md.lattice("fcc", 3, density=0.8442)
    >>> atoms = md.to_ase(positions, box, units="reduced")
    >>> len(atoms), atoms.info["units"]
    (108, 'reduced')
    >>> argon = md.Units.reduced(sigma=3.405, epsilon=0.010325, mass=39.948)
    >>> round(float(md.to_ase(positions, box, units=argon).cell[0, 0]), 3)  # Å
    17.157
    """
    ase = ase_module()
    from ase.calculators.singlepoint import SinglePointCalculator

    units = as_units(units, "to_ase")
    if isinstance(positions, MDState):
        given = [k for k, v in (("velocities", velocities), ("forces", forces)) if v is not None]
        if energy is not None:
            given.append("energy")
        if given:
            raise ConfigurationError(
                f"to_ase: an MDState brings its own velocities, forces and energy; do not "
                f"also pass {', '.join(given)}"
            )
        state = positions
        positions, velocities = state.positions, state.velocities
        forces, energy = state.forces, state.potential_energy
    p = np.asarray(positions, np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ConfigurationError(f"positions must have shape (N, 3), got {p.shape}")
    n = p.shape[0]
    names = symbol_names(symbols, species, n)
    if isinstance(box, PeriodicBox):
        cell = np.asarray(box.lengths, np.float64) * units.length
        atoms = ase.Atoms(names, positions=p * units.length, cell=cell, pbc=True)
    elif isinstance(box, TriclinicBox):
        cell = np.asarray(box.cell, np.float64) * units.length
        atoms = ase.Atoms(names, positions=p * units.length, cell=cell, pbc=True)
    elif isinstance(box, FreeSpace):
        atoms = ase.Atoms(names, positions=p * units.length, pbc=False)
    else:
        raise ConfigurationError(
            f"to_ase: box must be a hybrax.md.PeriodicBox, TriclinicBox or FreeSpace, got {box!r}"
        )
    atoms.set_masses(per_atom(1.0 if masses is None else masses, n, "masses") * units.mass)
    if velocities is not None:
        atoms.set_velocities(per_atom(velocities, n, "velocities", 3) * units.velocity)
    if charges is not None:
        atoms.set_initial_charges(per_atom(charges, n, "charges") * units.charge)
    atoms.info.update(unit_labels(units))
    if species is not None:
        atoms.info[SPECIES_KEY] = " ".join(symbols)
    results = {}
    if forces is not None:
        results["forces"] = per_atom(forces, n, "forces", 3) * units.force
    if energy is not None:
        results["energy"] = float(np.asarray(energy, np.float64)) * units.energy
    if results:
        atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms
