"""Any hybrax energy as an ASE `Calculator` (energy, forces, full stress)."""

from __future__ import annotations

import functools

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from hybrax.core import ConfigurationError, NonFiniteStateError, check_float

from ._ase import ase_module, box_from_atoms, default_float, positions_from_atoms
from ._energy import AbstractEnergy
from ._integrators import _initial_evaluation
from ._neighbor_list import neighbor_list
from ._space import FreeSpace
from ._stress import stress
from ._units import Units, as_units, check_energy_units

__all__ = ["ase_calculator"]


@eqx.filter_jit
def _voigt_stress(energy, positions, neighbors, box):
    """`hybrax.md.stress` in ASE's Voigt order ``(xx, yy, zz, yz, xz, xy)``."""
    sigma = stress(energy, positions, box, neighbors)
    return jnp.stack([sigma[0, 0], sigma[1, 1], sigma[2, 2], sigma[1, 2], sigma[0, 2], sigma[0, 1]])


@functools.cache
def _calculator_class():
    ase_module()
    from ase.calculators.calculator import (
        Calculator,
        PropertyNotImplementedError,
        all_changes,
    )

    class HybraxCalculator(Calculator):
        """ASE calculator over a hybrax energy (see `hybrax.md.ase_calculator`)."""

        implemented_properties = ("energy", "free_energy", "forces", "stress")

        def __init__(self, energy: AbstractEnergy, units: Units, skin: float, dtype):
            super().__init__()
            self.energy = energy
            self.units = units
            self.skin = skin
            self.dtype = dtype
            self.neighbors = None
            self._box_type = None

        def _neighbors(self, positions, box):
            cutoff = self.energy.required_cutoff
            if cutoff is None:
                return None
            old = self.neighbors
            same_kind = old is not None and (
                old.num_atoms == positions.shape[0] and type(box) is self._box_type
            )
            self._box_type = type(box)
            if not same_kind:
                return neighbor_list(positions, box, cutoff, skin=self.skin)
            return old

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            units, owner = self.units, "hybrax ASE calculator"
            box = box_from_atoms(self.atoms, units, self.dtype, owner)
            positions = positions_from_atoms(self.atoms, box, units, self.dtype)
            neighbors = self._neighbors(positions, box)
            # one jitted pass: the list rebuilt for these positions, energy and forces
            updated, energy, forces = _initial_evaluation(self.energy, box, positions, neighbors)
            if updated is not None and bool(updated.overflow):  # more neighbours: regrow
                neighbors = neighbors.grow(positions, box)
                updated, energy, forces = _initial_evaluation(
                    self.energy, box, positions, neighbors
                )
            self.neighbors = updated
            energy = float(energy)
            if not np.isfinite(energy):
                raise NonFiniteStateError(
                    f"{owner}: the energy is {energy} at these positions (overlapping atoms?)"
                )
            self.results["energy"] = self.results["free_energy"] = energy * units.energy
            self.results["forces"] = np.asarray(forces, np.float64) * units.force
            if "stress" in properties:
                if isinstance(box, FreeSpace):
                    raise PropertyNotImplementedError(
                        f"{owner}: stress needs a periodic cell (atoms.pbc = True)"
                    )
                voigt = np.asarray(_voigt_stress(self.energy, positions, updated, box))
                self.results["stress"] = voigt * units.stress

    return HybraxCalculator


def ase_calculator(
    energy: AbstractEnergy,
    *,
    units: str | Units,
    skin: float = 0.3,
    dtype=None,
):
    """Any hybrax energy as an ASE calculator: ``atoms.calc = md.ase_calculator(...)``.

    Works with ASE's optimisers (BFGS, FIRE, ...), MD integrators and anything else that
    asks for ``energy``, ``forces`` or ``stress``. Each call converts the atoms from ASE's
    units (Å, eV) to ``units``, evaluates the energy and its forces in one jitted pass
    (compiled once per system size) and converts back: energy in eV, forces in eV/Å,
    stress in eV/Å^3 (ASE's sign: ``-trace / 3`` is the virial pressure). The neighbour
    list (for energies with a cut-off) is built on the first call with ``skin``, rebuilt
    on every call after, and regrown when atoms crowd or the cell changes.

    Stress: all six components come from `hybrax.md.stress`, the derivative of the energy
    with respect to a homogeneous strain of the cell and positions, so they are right for
    any energy that sees the box through minimum-image displacements, in orthorhombic and
    triclinic cells alike; ASE's cell filters (``FrechetCellFilter(atoms)``) can relax the
    full cell (a sheared cell becomes a `TriclinicBox`). Without a periodic cell, stress
    raises ASE's ``PropertyNotImplementedError``.

    Parameters
    ----------
    energy
        Any `AbstractEnergy` (sums, pair, bonded, Ewald, neural), with its species and
        charges already set for these atoms.
    units
        ``"metal"``, ``"reduced"`` or a `Units`: the units the energy works in (required).
        A potential labelled with other units (``units="metal"``: those read from LAMMPS
        files) is a `hybrax.ConfigurationError`.
    skin
        Verlet skin of the neighbour list (length unit), default 0.3.
    dtype
        Floating dtype of the computation; default float64 under ``jax_enable_x64``, else
        float32 (ASE's optimisers converge better in float64).

    Examples
    --------
    >>> import ase, ase.optimize, hybrax.md as md
    >>> atoms = ase.Atoms("Ar3", positions=[[0, 0, 0], [1.1, 0, 0], [0.5, 1.0, 0]])
    >>> atoms.calc = md.ase_calculator(md.LennardJones(cutoff=5.0, shift=False),
    ...                                units="reduced")
    >>> bool(ase.optimize.BFGS(atoms, logfile=None).run(fmax=1e-4))
    True
    >>> round(atoms.get_potential_energy(), 3)  # the LJ trimer: 3 pairs at 2^(1/6)
    -3.0
    """
    if not isinstance(energy, AbstractEnergy):
        raise ConfigurationError(
            f"ase_calculator: energy must be a hybrax.md energy (e.g. hybrax.md.LennardJones())"
            f", got {type(energy).__name__}"
        )
    units = as_units(units, "ase_calculator")
    check_energy_units(energy, units, "ase_calculator")
    skin = check_float(skin, "skin", nonnegative=True, example="skin=0.3")
    return _calculator_class()(energy, units, skin, default_float() if dtype is None else dtype)
