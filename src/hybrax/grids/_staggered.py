"""A two-dimensional staggered (MAC, marker-and-cell) grid for finite-volume solvers."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from hybrax.core import ConfigurationError

__all__ = ["StaggeredGrid"]


class StaggeredGrid(eqx.Module):
    """A uniform 2-D staggered (MAC) grid on ``[0, Lx] x [0, Ly]``.

    The domain is cut into ``nx x ny`` cells of size ``dx = Lx / nx``, ``dy = Ly / ny``.
    Scalars (pressure) live at cell centres, shape ``(nx, ny)``; the x-velocity ``u`` on the
    x-faces including both boundaries, shape ``(nx + 1, ny)``; the y-velocity ``v`` on the
    y-faces, shape ``(nx, ny + 1)``. Index ``[i, j]`` is ``x`` first, then ``y``.

    Parameters
    ----------
    num_points
        Cells per axis ``(nx, ny)``, each at least 2 (static).
    domain_length
        Side lengths ``(Lx, Ly)`` (length units), positive (static).

    Examples
    --------
    >>> grid = StaggeredGrid((4, 2), (2.0, 1.0))
    >>> grid.spacing
    (0.5, 0.5)
    >>> grid.u_shape, grid.v_shape
    ((5, 2), (4, 3))
    """

    num_points: tuple[int, int] = eqx.field(static=True)
    domain_length: tuple[float, float] = eqx.field(static=True)

    def __init__(self, num_points, domain_length=(1.0, 1.0)):
        points = tuple(np.atleast_1d(num_points).tolist())
        if len(points) != 2 or not all(isinstance(n, int) and n >= 2 for n in points):
            raise ConfigurationError(
                f"num_points must be two integers >= 2 (cells along x and y), got {num_points!r};"
                " e.g. num_points=(64, 32)"
            )
        lengths = tuple(float(length) for length in np.atleast_1d(domain_length).tolist())
        if len(lengths) != 2 or not all(np.isfinite(lengths)) or min(lengths) <= 0:
            raise ConfigurationError(
                f"domain_length must be two positive lengths (Lx, Ly), got {domain_length!r}; "
                "e.g. domain_length=(2.2, 0.41)"
            )
        self.num_points = points
        self.domain_length = lengths

    @property
    def spacing(self) -> tuple[float, float]:
        """Cell sizes ``(dx, dy)``."""
        pairs = zip(self.domain_length, self.num_points, strict=True)
        return tuple(length / n for length, n in pairs)

    @property
    def cell_shape(self) -> tuple[int, int]:
        """Shape of a cell-centred field, ``(nx, ny)``."""
        return self.num_points

    @property
    def u_shape(self) -> tuple[int, int]:
        """Shape of the x-velocity on x-faces, ``(nx + 1, ny)``."""
        return (self.num_points[0] + 1, self.num_points[1])

    @property
    def v_shape(self) -> tuple[int, int]:
        """Shape of the y-velocity on y-faces, ``(nx, ny + 1)``."""
        return (self.num_points[0], self.num_points[1] + 1)

    def centres_1d(self, axis: int) -> np.ndarray:
        """Cell-centre coordinates along ``axis`` (host array)."""
        h = self.spacing[axis]
        return (np.arange(self.num_points[axis]) + 0.5) * h

    def faces_1d(self, axis: int) -> np.ndarray:
        """Face coordinates along ``axis``, boundaries included (host array)."""
        return np.arange(self.num_points[axis] + 1) * self.spacing[axis]

    def cell_centres(self, dtype=None) -> tuple[Float[Array, "nx ny"], Float[Array, "nx ny"]]:
        """Coordinates ``(x, y)`` of the cell centres, each shape ``(nx, ny)``."""
        x, y = np.meshgrid(self.centres_1d(0), self.centres_1d(1), indexing="ij")
        return jnp.asarray(x, dtype), jnp.asarray(y, dtype)

    def u_points(self, dtype=None) -> tuple[Array, Array]:
        """Coordinates ``(x, y)`` of the x-faces (where ``u`` lives), shape ``(nx+1, ny)``."""
        x, y = np.meshgrid(self.faces_1d(0), self.centres_1d(1), indexing="ij")
        return jnp.asarray(x, dtype), jnp.asarray(y, dtype)

    def v_points(self, dtype=None) -> tuple[Array, Array]:
        """Coordinates ``(x, y)`` of the y-faces (where ``v`` lives), shape ``(nx, ny+1)``."""
        x, y = np.meshgrid(self.centres_1d(0), self.faces_1d(1), indexing="ij")
        return jnp.asarray(x, dtype), jnp.asarray(y, dtype)

    def interpolate_cells(self, values: Array, x: ArrayLike, y: ArrayLike) -> Array:
        """Bilinear interpolation of a cell-centred field ``values`` (shape ``cell_shape``)
        at points ``(x, y)`` (broadcast together); points beyond the outermost cell centres
        take the nearest edge value along that axis. Exact for fields linear in x and y.

        Examples
        --------
        >>> import jax.numpy as jnp
        >>> grid = StaggeredGrid((4, 4))
        >>> x, y = grid.cell_centres(jnp.float64)
        >>> float(grid.interpolate_cells(x + 2 * y, 0.3, 0.6))
        1.5
        """
        (nx, ny), (dx, dy) = self.num_points, self.spacing
        x, y = jnp.asarray(x, values.dtype), jnp.asarray(y, values.dtype)
        fx = jnp.clip(x / dx - 0.5, 0.0, nx - 1.0)  # in cell-centre index space
        fy = jnp.clip(y / dy - 0.5, 0.0, ny - 1.0)
        i = jnp.clip(jnp.floor(fx).astype(jnp.int32), 0, nx - 2)
        j = jnp.clip(jnp.floor(fy).astype(jnp.int32), 0, ny - 2)
        a, b = fx - i.astype(values.dtype), fy - j.astype(values.dtype)
        return (
            (1 - a) * (1 - b) * values[i, j]
            + a * (1 - b) * values[i + 1, j]
            + (1 - a) * b * values[i, j + 1]
            + a * b * values[i + 1, j + 1]
        )

    def corner_points(self, dtype=None) -> tuple[Array, Array]:
        """Coordinates of the cell corners (where vorticity lives), shape ``(nx+1, ny+1)``."""
        x, y = np.meshgrid(self.faces_1d(0), self.faces_1d(1), indexing="ij")
        return jnp.asarray(x, dtype), jnp.asarray(y, dtype)
