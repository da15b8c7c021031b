"""Export to ASE `Atoms` and extended-XYZ trajectories (needs the ``io`` extra: ase)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from jaxtyping import Array, ArrayLike, Float

from hybrax.core import ConfigurationError

from ._space import AbstractBox, PeriodicBox

__all__ = ["to_ase", "write_extxyz"]


def _ase():
    try:
        import ase
        import ase.io
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "exporting to ASE needs the 'ase' package: pip install 'hybrax[io]'"
        ) from error
    return ase


def _symbols(symbols, species, n: int) -> list[str]:
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


def to_ase(
    positions: Float[Array, "N 3"],
    box: AbstractBox,
    *,
    symbols: str | Sequence[str] = "Ar",
    species: ArrayLike | None = None,
    velocities: Float[Array, "N 3"] | None = None,
    energy: float | None = None,
):
    """An `ase.Atoms` for a configuration, for viewing in ASE or OVITO.

    Positions stay in reduced units (sigma = 1 Angstrom for ASE); the cell and periodic
    flags come from the box.

    Parameters
    ----------
    positions
        ``(N, 3)`` positions.
    box
        `PeriodicBox` (periodic cell) or `FreeSpace` (no cell).
    symbols
        One chemical symbol for all atoms, a symbol per atom, or (with ``species``) a symbol
        per species.
    species
        ``(N,)`` integer species, or None.
    velocities
        Optional ``(N, 3)`` velocities, stored as momenta with unit masses.
    energy
        Optional potential energy, stored in ``atoms.info["energy"]``.

    Examples
    --------
    >>> import hybrax.md as md
    >>> positions, box = md.lattice("fcc", 3, density=0.8442)
    >>> atoms = md.to_ase(positions, box)
    >>> len(atoms)
    108
    """
    ase = _ase()
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ConfigurationError(f"positions must have shape (N, 3), got {p.shape}")
    names = _symbols(symbols, species, p.shape[0])
    if isinstance(box, PeriodicBox):
        atoms = ase.Atoms(names, positions=p, cell=np.asarray(box.lengths, np.float64), pbc=True)
    else:
        atoms = ase.Atoms(names, positions=p, pbc=False)
    atoms.set_masses(np.ones(p.shape[0]))
    if velocities is not None:
        atoms.set_momenta(np.asarray(velocities, dtype=np.float64))
    if energy is not None:
        atoms.info["energy"] = float(energy)
    return atoms


def write_extxyz(
    path: str,
    trajectory: Float[Array, "T N 3"] | Float[Array, "N 3"],
    box: AbstractBox,
    *,
    symbols: str | Sequence[str] = "Ar",
    species: ArrayLike | None = None,
    energies: ArrayLike | None = None,
) -> None:
    """Write positions (one frame or a ``(T, N, 3)`` trajectory) as extended XYZ.

    The file opens in OVITO, ASE (``ase.io.read(path, ":")``) and VMD. Energies, if given
    (one per frame), are written in each frame's comment line.

    Examples
    --------
    >>> import hybrax.md as md, tempfile, os
    >>> positions, box = md.lattice("sc", 3, density=0.5)
    >>> path = os.path.join(tempfile.mkdtemp(), "frame.xyz")
    >>> md.write_extxyz(path, positions, box)
    """
    ase = _ase()
    frames = np.asarray(trajectory)
    if frames.ndim == 2:
        frames = frames[None]
    if frames.ndim != 3 or frames.shape[-1] != 3:
        raise ConfigurationError(
            f"trajectory must have shape (T, N, 3) or (N, 3), got {frames.shape}"
        )
    if energies is not None:
        energies = np.asarray(energies, dtype=np.float64).reshape(-1)
        if energies.shape[0] != frames.shape[0]:
            raise ConfigurationError(
                f"got {energies.shape[0]} energies for {frames.shape[0]} frames"
            )
    images = [
        to_ase(
            frame,
            box,
            symbols=symbols,
            species=species,
            energy=None if energies is None else energies[t],
        )
        for t, frame in enumerate(frames)
    ]
    ase.io.write(path, images, format="extxyz")
