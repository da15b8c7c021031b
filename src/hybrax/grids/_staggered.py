"""A two- or three-dimensional staggered (MAC, marker-and-cell) grid for finite-volume
solvers."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from hybrax.core import ConfigurationError

__all__ = ["StaggeredGrid"]


class StaggeredGrid(eqx.Module):
    """A uniform staggered (MAC) grid on ``[0, Lx] x [0, Ly]`` (2-D) or
    ``[0, Lx] x [0, Ly] x [0, Lz]`` (3-D).

    The domain is cut into ``nx x ny (x nz)`` cells of size ``dx = Lx / nx``, and so on.
    Scalars (pressure) live at cell centres, shape ``(nx, ny(, nz))``; each velocity
    component on the faces normal to its axis including both boundaries: ``u`` shape
    ``(nx + 1, ny(, nz))``, ``v`` shape ``(nx, ny + 1(, nz))``, ``w`` shape
    ``(nx, ny, nz + 1)``. Index ``[i, j(, k)]`` is ``x`` first, then ``y`` (then ``z``).

    Parameters
    ----------
    num_points
        Cells per axis ``(nx, ny)`` or ``(nx, ny, nz)``, each at least 2 (static).
    domain_length
        Side lengths ``(Lx, Ly(, Lz))`` (length units), positive (static); default 1 each.

    Examples
    --------
    >>> grid = StaggeredGrid((4, 2), (2.0, 1.0))
    >>> grid.spacing
    (0.5, 0.5)
    >>> grid.u_shape, grid.v_shape
    ((5, 2), (4, 3))
    >>> StaggeredGrid((4, 4, 2)).face_shape(2)
    (4, 4, 3)
    """

    num_points: tuple[int, ...] = eqx.field(static=True)
    domain_length: tuple[float, ...] = eqx.field(static=True)

    def __init__(self, num_points, domain_length=None):
        points = tuple(np.atleast_1d(num_points).tolist())
        if len(points) not in (2, 3) or not all(isinstance(n, int) and n >= 2 for n in points):
            raise ConfigurationError(
                f"num_points must be two or three integers >= 2 (cells along x, y(, z)), got "
                f"{num_points!r}; e.g. num_points=(64, 32) or (32, 32, 32)"
            )
        if domain_length is None:
            domain_length = (1.0,) * len(points)
        lengths = tuple(float(length) for length in np.atleast_1d(domain_length).tolist())
        if len(lengths) != len(points) or not all(np.isfinite(lengths)) or min(lengths) <= 0:
            raise ConfigurationError(
                f"domain_length must be {len(points)} positive lengths (one per axis of "
                f"num_points={points}), got {domain_length!r}; e.g. domain_length="
                f"{(2.2, 0.41) if len(points) == 2 else (1.0, 1.0, 1.0)}"
            )
        self.num_points = points
        self.domain_length = lengths

    @property
    def ndim(self) -> int:
        """Number of axes, 2 or 3."""
        return len(self.num_points)

    @property
    def spacing(self) -> tuple[float, ...]:
        """Cell sizes ``(dx, dy(, dz))``."""
        pairs = zip(self.domain_length, self.num_points, strict=True)
        return tuple(length / n for length, n in pairs)

    @property
    def cell_shape(self) -> tuple[int, ...]:
        """Shape of a cell-centred field, ``(nx, ny(, nz))``."""
        return self.num_points

    def face_shape(self, axis: int) -> tuple[int, ...]:
        """Shape of the velocity component along ``axis`` on its faces (one more point
        along ``axis`` than cells: both boundaries included)."""
        return tuple(n + (a == axis) for a, n in enumerate(self.num_points))

    @property
    def u_shape(self) -> tuple[int, ...]:
        """Shape of the x-velocity on x-faces, ``(nx + 1, ny(, nz))``."""
        return self.face_shape(0)

    @property
    def v_shape(self) -> tuple[int, ...]:
        """Shape of the y-velocity on y-faces, ``(nx, ny + 1(, nz))``."""
        return self.face_shape(1)

    @property
    def w_shape(self) -> tuple[int, int, int]:
        """Shape of the z-velocity on z-faces, ``(nx, ny, nz + 1)`` (3-D grids)."""
        return self.face_shape(self._z())

    def _z(self) -> int:
        if self.ndim != 3:
            raise ConfigurationError(
                f"a 2-D StaggeredGrid{self.num_points} has no z axis (w); build the grid "
                "with three num_points for 3-D flow"
            )
        return 2

    def centres_1d(self, axis: int) -> np.ndarray:
        """Cell-centre coordinates along ``axis`` (host array)."""
        h = self.spacing[axis]
        return (np.arange(self.num_points[axis]) + 0.5) * h

    def faces_1d(self, axis: int) -> np.ndarray:
        """Face coordinates along ``axis``, boundaries included (host array)."""
        return np.arange(self.num_points[axis] + 1) * self.spacing[axis]

    def _mesh(self, faces_on: tuple[int, ...], dtype) -> tuple[Array, ...]:
        axes = [self.faces_1d(a) if a in faces_on else self.centres_1d(a) for a in range(self.ndim)]
        return tuple(jnp.asarray(c, dtype) for c in np.meshgrid(*axes, indexing="ij"))

    def cell_centres(self, dtype=None) -> tuple[Array, ...]:
        """Coordinates ``(x, y(, z))`` of the cell centres, each shape ``cell_shape``."""
        return self._mesh((), dtype)

    def face_points(self, axis: int, dtype=None) -> tuple[Array, ...]:
        """Coordinates of the faces normal to ``axis`` (where that velocity component
        lives), each of shape ``face_shape(axis)``."""
        return self._mesh((axis,), dtype)

    def u_points(self, dtype=None) -> tuple[Array, ...]:
        """Coordinates of the x-faces (where ``u`` lives), shape ``u_shape``."""
        return self.face_points(0, dtype)

    def v_points(self, dtype=None) -> tuple[Array, ...]:
        """Coordinates of the y-faces (where ``v`` lives), shape ``v_shape``."""
        return self.face_points(1, dtype)

    def w_points(self, dtype=None) -> tuple[Array, Array, Array]:
        """Coordinates of the z-faces (where ``w`` lives), shape ``w_shape`` (3-D grids)."""
        return self.face_points(self._z(), dtype)

    def interpolate_cells(self, values: Array, *points: ArrayLike) -> Array:
        """Bilinear (trilinear in 3-D) interpolation of a cell-centred field ``values``
        (shape ``cell_shape``) at points ``(x, y(, z))`` (broadcast together); points
        beyond the outermost cell centres take the nearest edge value along that axis.
        Exact for fields linear in the coordinates.

        Examples
        --------
        >>> import jax.numpy as jnp
        >>> grid = StaggeredGrid((4, 4))
        >>> x, y = grid.cell_centres(jnp.float64)
        >>> round(float(grid.interpolate_cells(x + 2 * y, 0.3, 0.6)), 12)
        1.5
        """
        if len(points) != self.ndim:
            raise ConfigurationError(
                f"interpolate_cells: needs {self.ndim} coordinates on this {self.ndim}-D grid, "
                f"got {len(points)}"
            )
        corners = [(values.dtype.type(1), ())]  # (weight, index per axis) of each corner
        for axis, (n, h) in enumerate(zip(self.num_points, self.spacing, strict=True)):
            f = jnp.clip(jnp.asarray(points[axis], values.dtype) / h - 0.5, 0.0, n - 1.0)
            i = jnp.clip(jnp.floor(f).astype(jnp.int32), 0, max(n - 2, 0))
            a = f - i.astype(values.dtype)
            corners = [
                (w * weight, (*index, i + shift))
                for w, index in corners
                for shift, weight in ((0, 1 - a), (1, a))
            ]
        return sum(w * values[index] for w, index in corners)

    def corner_points(self, dtype=None) -> tuple[Array, ...]:
        """Coordinates of the cell corners (where 2-D vorticity lives), shape
        ``(nx+1, ny+1(, nz+1))``."""
        return self._mesh(tuple(range(self.ndim)), dtype)
