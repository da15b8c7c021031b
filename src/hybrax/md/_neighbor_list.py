"""`neighbor_list`: build the right neighbour list for a configuration."""

from __future__ import annotations

from jaxtyping import Array, Float

from ._cell_list import DEFAULT_FORMAT, _choose_and_build
from ._neighbors import AbstractNeighborList
from ._space import AbstractBox

__all__ = ["neighbor_list"]


def neighbor_list(
    positions: Float[Array, "N 3"],
    box: AbstractBox,
    cutoff: float,
    *,
    skin: float = 0.3,
    capacity_multiplier: float = 1.25,
    format: str = DEFAULT_FORMAT,
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
        Largest interaction cut-off the list must serve (sigma), e.g. 2.5.
    skin
        Verlet skin (sigma): the list holds pairs within ``cutoff + skin`` and is rebuilt
        when an atom has moved more than ``skin / 2``. Default 0.3 (LAMMPS in.lj).
    capacity_multiplier
        Head room of a cell list over the current configuration's needs (liquids
        fluctuate): a finite number >= 1. Default 1.25.
    format
        Layout of a cell list in a `PeriodicBox`: ``"windows"`` (default; sorted cell
        windows, each pair once, cheap rebuilds) or ``"table"`` (a full Verlet table: a
        2x faster force pass, dearer rebuilds; the faster choice when rebuilds are
        rare). See `CellNeighborList`.

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
    """
    return _choose_and_build(positions, box, cutoff, skin, capacity_multiplier, format)
