"""Small helpers shared by the field converters of hybrax's models."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

NONDIMENSIONAL = {
    "units_note": "nondimensional: lengths in the domain's length unit, time in model time "
    "units (CF units '1')"
}


def cf(units: str, long_name: str, standard_name: str | None = None, **extra) -> dict:
    """CF attributes of a variable or coordinate."""
    attrs = {"units": units, "long_name": long_name, **extra}
    if standard_name is not None:
        attrs["standard_name"] = standard_name
    return attrs


def axis_coords(
    names: tuple[str, ...],
    counts: tuple[int, ...],
    lengths: tuple[float, ...],
    units: str,
    *,
    offset: float = 0.0,
    label: str = "",
) -> dict:
    """Equispaced coordinates ``(i + offset) L / N`` per named axis (float64, physical units)."""
    coords = {}
    for name, n, length in zip(names, counts, lengths, strict=True):
        axis = name[0].upper() if name[0] in "xyz" else None
        values = (np.arange(n) + offset) * (length / n)
        extra = {"axis": axis} if axis is not None and not label else {}
        coords[name] = ((name,), values, cf(units, f"{name[0]}{label}", **extra))
    return coords


def grid_coords(grid, names: tuple[str, ...], units: str) -> dict:
    """The point coordinates of a periodic `hybrax.grids.Grid` along ``names``."""
    return axis_coords(names, grid.shape, grid.domain_length, units)


def state_class(model: Any, name: str) -> type:
    """The public class ``name`` of the hybrax package that defines ``model``'s class
    (e.g. ``FlowState`` of `hybrax.fluids`), found without importing the package from io."""
    for cls in type(model).__mro__:
        package = cls.__module__.rsplit(".", 1)[0]
        found = getattr(sys.modules.get(package), name, None)
        if isinstance(found, type):
            return found
    raise TypeError(f"no state class {name} next to {type(model).__name__}")  # pragma: no cover
