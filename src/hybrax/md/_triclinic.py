"""General periodic (triclinic) boxes: a cell matrix, minimum image in fractional coordinates."""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from hybrax.core import ConfigurationError, check_parameter, concrete_or_none

from ._space import AbstractBox

__all__ = ["TriclinicBox"]

_AXES = ("a", "b", "c")


class TriclinicBox(AbstractBox):
    """A general periodic box spanned by three lattice vectors, with minimum image.

    The cell matrix ``cell`` holds the lattice vectors as rows: ``a = cell[0]``,
    ``b = cell[1]``, ``c = cell[2]`` (length unit of the system: sigma in reduced units, Å
    in metal units). A position is ``r = s @ cell`` with fractional coordinates
    ``s in [0, 1)^3``. Displacements are reduced by the minimum image in fractional
    coordinates (``s - round(s)``); this finds the nearest image of every pair closer than
    half the smallest `perpendicular_widths` (the neighbour lists check that the cut-off
    fits). The cell is a differentiable leaf: `hybrax.md.stress` differentiates through it.

    Parameters
    ----------
    cell
        ``(3, 3)`` cell matrix, rows the lattice vectors, finite with a positive volume
        ``det(cell) > 0`` (a right-handed cell); anything else is a
        `hybrax.ConfigurationError`.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from hybrax.md import TriclinicBox
    >>> box = TriclinicBox.from_lammps(10.0, 10.0, 10.0, xy=5.0)
    >>> float(box.volume)
    1000.0
    >>> box.displacement(jnp.array([9.5, 0.5, 0.0]), jnp.array([0.5, 0.5, 0.0]))
    Array([-1., 0., 0.], dtype=float...)
    >>> [round(float(w), 3) for w in box.perpendicular_widths]
    [8.944, 10.0, 10.0]
    """

    cell: Float[Array, "3 3"]

    def __init__(self, cell: ArrayLike | Sequence):
        example = "TriclinicBox([[10, 0, 0], [2, 10, 0], [0, 0, 10]])"
        cell = check_parameter(cell, "TriclinicBox cell (lattice vectors as rows)", example=example)
        if cell.shape != (3, 3):
            raise ConfigurationError(
                f"TriclinicBox: cell must be a (3, 3) matrix whose rows are the lattice vectors "
                f"a, b, c, got shape {cell.shape}; e.g. {example} (for an orthorhombic box "
                "use PeriodicBox(lengths))"
            )
        concrete = concrete_or_none(cell)
        if concrete is not None:
            volume = float(np.linalg.det(np.asarray(concrete, np.float64)))
            scale = float(np.max(np.abs(concrete))) ** 3
            if not volume > 1e-12 * scale:
                raise ConfigurationError(
                    f"TriclinicBox: cell must have a positive volume det(cell) > 0 (three "
                    f"independent, right-handed lattice vectors as rows), got cell "
                    f"{np.asarray(concrete).tolist()} with det(cell) = {volume:g}; swap two "
                    "rows for a left-handed cell"
                )
        self.cell = cell

    @classmethod
    def from_lammps(
        cls,
        lx: float,
        ly: float,
        lz: float,
        xy: float = 0.0,
        xz: float = 0.0,
        yz: float = 0.0,
    ) -> TriclinicBox:
        """LAMMPS's restricted triclinic box: ``a = (lx, 0, 0)``, ``b = (xy, ly, 0)``,
        ``c = (xz, yz, lz)`` (side lengths and tilt factors in the length unit)."""
        rows = [[lx, 0.0, 0.0], [xy, ly, 0.0], [xz, yz, lz]]
        for name, value in zip(("lx", "ly", "lz"), (lx, ly, lz), strict=True):
            concrete = concrete_or_none(value)
            if concrete is not None and not float(concrete) > 0:
                raise ConfigurationError(
                    f"TriclinicBox.from_lammps: {name} must be positive (a side length), got "
                    f"{float(concrete)!r}"
                )
        return cls(jnp.stack([jnp.stack([jnp.asarray(v) for v in row]) for row in rows]))

    @property
    def periodic(self) -> bool:
        return True

    @property
    def volume(self) -> Array:
        """Cell volume ``det(cell)`` (length^3)."""
        return jnp.linalg.det(self.cell)

    @property
    def reciprocal(self) -> Float[Array, "3 3"]:
        """``inv(cell)``: fractional coordinates are ``r @ reciprocal``; its columns are
        the reciprocal vectors (without the ``2 pi``)."""
        return jnp.linalg.inv(self.cell)

    @property
    def perpendicular_widths(self) -> Float[Array, "3"]:
        """Distance between opposite faces along each lattice direction (length): the
        width perpendicular to the ``(b, c)``, ``(c, a)`` and ``(a, b)`` planes. A
        cut-off must be at most half the smallest for the minimum image to be exact."""
        return 1.0 / jnp.sqrt(jnp.sum(self.reciprocal**2, axis=0))

    def fractional(self, r: Float[Array, "... 3"]) -> Float[Array, "... 3"]:
        """Fractional coordinates ``s`` of Cartesian ``r`` (``r = s @ cell``)."""
        return r @ self.reciprocal.astype(jnp.result_type(r))

    def cartesian(self, s: Float[Array, "... 3"]) -> Float[Array, "... 3"]:
        """Cartesian coordinates of fractional ``s``."""
        return s @ self.cell.astype(jnp.result_type(s))

    def displacement(self, ri: Array, rj: Array) -> Array:
        s = self.fractional(ri - rj)
        return self.cartesian(s - jnp.rint(s))

    def shift(self, r: Array, dr: Array) -> Array:
        s = self.fractional(r + dr)
        return self.cartesian(s - jnp.floor(s))

    def scaled(self, factor: ArrayLike) -> TriclinicBox:
        return TriclinicBox(self.cell * factor)

    def deformed(self, deformation: Float[Array, "3 3"]) -> TriclinicBox:
        """The cell under the homogeneous deformation ``r -> r @ deformation`` (rows
        times the matrix): ``TriclinicBox(cell @ deformation)``."""
        return TriclinicBox(self.cell @ deformation)


class _StrainedCell(TriclinicBox):
    """A box under a homogeneous strain, made by `hybrax.md.stress` to differentiate the
    energy at zero strain: neighbour lists built for the unstrained box accept it (their
    pairs do not change under an infinitesimal strain)."""


def check_cutoff_fits(widths: np.ndarray, cutoff: float, owner: str, what: Sequence[str]) -> None:
    """Raise when a periodic box is narrower than twice ``cutoff`` along some direction,
    naming the direction (host side)."""
    for k, width in enumerate(np.asarray(widths, np.float64)):
        if width < 2.0 * cutoff:
            raise ConfigurationError(
                f"{owner}: the box is too small for the cutoff in direction {what[k]}: its "
                f"width there is {width:.6g}, less than twice the cutoff {cutoff:g} (the "
                "minimum image would miss periodic images). Use a larger box (more unit "
                "cells along that direction) or a shorter cutoff"
            )
