"""`neighbor_list`: build the right neighbour list for a configuration."""

from __future__ import annotations

from jaxtyping import Array, Float

from hybrax.core import ConfigurationError

from ._cell_list import PAIR_FORMAT, _choose_and_build
from ._energy import AbstractEnergy, SumEnergy
from ._neighbors import AbstractNeighborList
from ._space import AbstractBox

__all__ = ["neighbor_list"]


def neighbor_list(
    positions: Float[Array, "N 3"],
    box: AbstractBox,
    cutoff: float | None = None,
    *,
    skin: float = 0.3,
    capacity_multiplier: float = 1.25,
    format: str | None = None,
    energy: AbstractEnergy | None = None,
) -> AbstractNeighborList:
    """Build a neighbour list for ``positions``, choosing its kind and sizing its static
    capacities.

    A `CellNeighborList` (sorted cell windows, O(N)) when the periodic box is at least 2.5
    list radii (``cutoff + skin``) wide in y and z and there are more than 256 atoms; else
    a `DenseNeighborList` (all pairs, O(N^2): faster for small systems, and the only one
    in free space). To choose yourself, call `CellNeighborList.build` or
    `DenseNeighborList.build`.

    Call outside `jax.jit` (it reads the configuration to choose capacities); rebuild
    inside jit with the list's ``update`` / ``maybe_update``.

    Parameters
    ----------
    positions
        ``(N, 3)`` positions inside the box (sigma).
    box
        A `PeriodicBox` or `FreeSpace`.
    cutoff
        Largest interaction cut-off the list must serve (sigma), e.g. 2.5; default the
        ``energy``'s ``required_cutoff``.
    skin
        Verlet skin (sigma): the list holds pairs within ``cutoff + skin`` and is rebuilt
        when an atom has moved more than ``skin / 2``. Default 0.3 (LAMMPS in.lj).
    capacity_multiplier
        Head room of a cell list over the current configuration's needs (liquids
        fluctuate): a finite number >= 1. Default 1.25.
    format
        Layout of a cell list in a `PeriodicBox`: ``"rows"`` (each atom's half-shell cell
        windows in one row: each pair once, cheap rebuilds), ``"windows"`` (the windows
        read in place: cheaper rebuilds, a slower force pass) or ``"table"`` (a full
        Verlet table: the fastest pair force pass, dear rebuilds; the faster choice when
        rebuilds are rare, and the rows that many-body energies need). Default:
        ``"table"`` when ``energy`` has a many-body term (EAM, Stillinger-Weber, Tersoff:
        2-12x faster forces on it, ``benchmarks/md_manybody.py``), else ``"rows"``
        (``benchmarks/md_lj.py``). See `CellNeighborList`.
    energy
        The energy the list will serve (optional): it sets the default ``cutoff`` and
        ``format``; a ``cutoff`` shorter than its ``required_cutoff`` raises.

    Returns
    -------
    AbstractNeighborList

    Examples
    --------
    >>> import hybrax.md as md
    >>> positions, box = md.lattice("fcc", (6, 6, 6), density=0.8442)
    >>> type(md.neighbor_list(positions, box, cutoff=2.5, skin=0.3)).__name__
    'CellNeighborList'
    >>> small, small_box = md.lattice("fcc", 3, density=0.8442)
    >>> type(md.neighbor_list(small, small_box, cutoff=2.5)).__name__
    'DenseNeighborList'

    With the energy, a many-body potential gets the table layout:

    >>> sw = md.StillingerWeber(2.1683, 2.0951, 1.8, 21.0, 1.2, -1 / 3, 7.049556277,
    ...     0.6022245584, 4.0, 0.0)
    >>> x, big = md.lattice("fcc", (6, 6, 6), lattice_constant=5.431)  # 864 atoms
    >>> md.neighbor_list(x, big, skin=0.5, energy=sw).format
    'table'
    """
    if energy is not None:
        cutoff, format = _for_energy(energy, cutoff, format)
    if cutoff is None:
        raise ConfigurationError(
            "neighbor_list: give cutoff= (the largest interaction cut-off, sigma, e.g. 2.5) "
            "or energy= (the energy the list serves: its required_cutoff)"
        )
    format = PAIR_FORMAT if format is None else format
    return _choose_and_build(positions, box, cutoff, skin, capacity_multiplier, format)


def _for_energy(energy, cutoff, format) -> tuple[float, str | None]:
    """The ``cutoff`` and ``format`` `neighbor_list` uses for ``energy``."""
    from ._manybody import AbstractManyBodyEnergy  # (imports the neighbour lists)

    if not isinstance(energy, AbstractEnergy):
        raise ConfigurationError(
            f"neighbor_list: energy must be a hybrax.md energy, got {type(energy).__name__}"
        )
    needed = energy.required_cutoff
    if cutoff is None:
        cutoff = needed
    elif needed is not None and float(cutoff) < needed:
        raise ConfigurationError(
            f"neighbor_list: cutoff={cutoff} is shorter than the energy's required_cutoff "
            f"{needed}; pass at least {needed}, or leave cutoff out"
        )
    terms = energy.terms if isinstance(energy, SumEnergy) else (energy,)
    if format is None and any(isinstance(t, AbstractManyBodyEnergy) for t in terms):
        format = "table"
    return cutoff, format
