"""Unit systems for exchanging atoms with ASE and files: reduced LJ units or metal units."""

from __future__ import annotations

import dataclasses
import math

from hybrax.core import ConfigurationError, check_float

__all__ = ["Units"]

# CODATA 2014, the values ASE (3.23-3.29) uses in ase.units
_ELEMENTARY_CHARGE = 1.6021766208e-19  # C (1 eV = this many J)
_ATOMIC_MASS = 1.660539040e-27  # kg
_BOLTZMANN_EV = 1.38064852e-23 / _ELEMENTARY_CHARGE  # eV / K
_ASE_TIME_FS = 1e-10 * math.sqrt(_ATOMIC_MASS / _ELEMENTARY_CHARGE) * 1e15  # 10.1805 fs

_NAMES = ("metal", "reduced")


@dataclasses.dataclass(frozen=True)
class Units:
    """What one hybrax unit of length, energy, mass and charge is, in ASE's units
    (Å, eV, amu, e).

    hybrax's MD is unit-agnostic: integrators use ``F = m a`` with no conversion factor,
    so the time unit follows from the others, ``length * sqrt(mass / energy)``. Everything
    that crosses to ASE or to a file (`hybrax.md.from_ase`, `hybrax.md.to_ase`,
    `hybrax.md.ase_calculator`, `hybrax.md.write_extxyz`) takes ``units=`` explicitly, as
    ``"metal"``, ``"reduced"`` or a `Units`, and converts with these scales; nothing is
    assumed.

    - ``"metal"`` (`Units.metal`): Å, eV, amu, e, as LAMMPS ``units metal`` for lengths,
      energies, masses and charges (Coulomb constant `hybrax.md.METAL_COULOMB_CONSTANT`);
      the time unit is ASE's, ``Å sqrt(amu / eV)`` = 10.1805 fs (LAMMPS metal's ps is
      98.2269 of these), velocities are in Å per that unit, temperatures ``k_B T`` in eV.
      Numbers pass to ASE unchanged.
    - ``"reduced"`` (`Units.reduced`): Lennard-Jones units (sigma, epsilon, m, tau), by
      default written to ASE as if sigma = 1 Å, epsilon = 1 eV, m = 1 amu (numbers
      unchanged, labelled reduced in files); give the physical scales, e.g. argon
      ``Units.reduced(sigma=3.405, epsilon=0.010325, mass=39.948)``, to export physical Å
      and eV.

    Parameters
    ----------
    name
        ``"metal"`` or ``"reduced"`` (written to files; the scales decide the conversion).
    length
        One length unit in Å.
    energy
        One energy unit in eV.
    mass
        One mass unit in amu (g/mol).
    charge
        One charge unit in elementary charges e.

    Examples
    --------
    >>> import hybrax.md as md
    >>> argon = md.Units.reduced(sigma=3.405, epsilon=0.010325, mass=39.948)
    >>> round(argon.time_fs, 1), round(argon.temperature_K, 1)  # tau and epsilon / k_B
    (2156.2, 119.8)
    >>> round(md.Units.metal().time_fs, 4)
    10.1805
    """

    name: str
    length: float = 1.0
    energy: float = 1.0
    mass: float = 1.0
    charge: float = 1.0

    def __post_init__(self):
        if self.name not in _NAMES:
            raise ConfigurationError(f"Units: name must be one of {_NAMES}, got {self.name!r}")
        for field in ("length", "energy", "mass", "charge"):
            value = check_float(
                getattr(self, field), f"Units {field}", positive=True, example=f"{field}=1.0"
            )
            object.__setattr__(self, field, value)
        if self.name == "metal" and (self.length, self.energy, self.mass, self.charge) != (
            1.0,
            1.0,
            1.0,
            1.0,
        ):
            raise ConfigurationError(
                "Units: metal units are Å, eV, amu and e (all scales 1); for other scales use "
                "Units.reduced(sigma=..., epsilon=..., mass=..., charge=...)"
            )

    @classmethod
    def metal(cls) -> Units:
        """Å, eV, amu, e (time unit 10.1805 fs)."""
        return cls("metal")

    @classmethod
    def reduced(
        cls, sigma: float = 1.0, epsilon: float = 1.0, mass: float = 1.0, charge: float = 1.0
    ) -> Units:
        """Lennard-Jones units with sigma (Å), epsilon (eV), particle mass (amu) and the
        charge unit (e); all 1 by default."""
        return cls("reduced", sigma, epsilon, mass, charge)

    @property
    def time_fs(self) -> float:
        """One time unit, ``length sqrt(mass / energy)``, in femtoseconds."""
        return self.length * math.sqrt(self.mass / self.energy) * _ASE_TIME_FS

    @property
    def temperature_K(self) -> float:
        """One temperature unit (``energy / k_B``) in kelvin."""
        return self.energy / _BOLTZMANN_EV

    @property
    def velocity(self) -> float:
        """One velocity unit in ASE's (Å per ``Å sqrt(amu / eV)``)."""
        return math.sqrt(self.energy / self.mass)

    @property
    def force(self) -> float:
        """One force unit in eV/Å."""
        return self.energy / self.length

    @property
    def stress(self) -> float:
        """One stress (pressure) unit in eV/Å^3."""
        return self.energy / self.length**3

    @property
    def is_identity(self) -> bool:
        """True when numbers pass to ASE unchanged (all scales 1)."""
        return (self.length, self.energy, self.mass, self.charge) == (1.0, 1.0, 1.0, 1.0)


def unit_label(units: object, owner: str) -> str | None:
    """A potential's unit label: None (not labelled) or the name of ``units``
    (``"metal"``, ``"reduced"`` or a `Units`)."""
    return None if units is None else as_units(units, owner).name


def check_energy_units(energy: object, units: Units, owner: str) -> None:
    """Refuse ``units`` when a term of ``energy`` (a `SumEnergy`'s terms included) is
    labelled with other units (``term.units``, e.g. ``"metal"`` for potentials read from
    LAMMPS files): the numbers would be mixed silently."""
    terms = getattr(energy, "terms", None)
    if isinstance(terms, tuple):
        for term in terms:
            check_energy_units(term, units, owner)
        return
    label = getattr(energy, "units", None)
    if isinstance(label, str) and label != units.name:
        raise ConfigurationError(
            f"{owner}: {type(energy).__name__} works in {label} units (its parameters were "
            f"read from a LAMMPS file or labelled so) but units={units!r} was given; pass "
            f"units={label!r}"
        )


def as_units(units: object, owner: str) -> Units:
    """``units`` as a `Units` (``"metal"``, ``"reduced"`` or a `Units`), else a
    `ConfigurationError` naming ``owner`` and the choices."""
    if isinstance(units, Units):
        return units
    if units == "metal":
        return Units.metal()
    if units == "reduced":
        return Units.reduced()
    raise ConfigurationError(
        f"{owner}: units must be 'metal' (Å, eV, amu, e), 'reduced' (LJ units written as "
        "sigma = 1 Å, epsilon = 1 eV, m = 1 amu) or a hybrax.md.Units such as "
        f"Units.reduced(sigma=3.405, epsilon=0.010325, mass=39.948); got {units!r}"
    )
