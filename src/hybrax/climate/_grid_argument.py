"""The ``grid`` argument of the climate flows: a 2D `hybrax.grids.Grid` or a point count."""

from __future__ import annotations

from collections.abc import Sequence

from hybrax.core import ConfigurationError
from hybrax.grids import Grid


def square_grid(grid: Grid | int, domain_length: float | Sequence[float], model: str) -> Grid:
    """``grid`` itself if it is a 2D `Grid`; an int ``n`` becomes an ``n x n`` grid of side
    ``domain_length`` (checked by `Grid`); anything else is a `ConfigurationError`."""
    if isinstance(grid, int) and not isinstance(grid, bool):
        grid = Grid((grid, grid), domain_length)
    if not isinstance(grid, Grid) or grid.ndim != 2:
        raise ConfigurationError(
            f"{model}: grid must be an int (points per side) or a 2D hybrax.grids.Grid, "
            f"got {grid!r}"
        )
    return grid
