"""Immersed obstacles as smoothed signed-distance masks, for Brinkman penalisation."""

import abc

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike
from scipy import ndimage

from hybrax.core import ConfigurationError, check_float, concrete_or_none, parameter
from hybrax.grids import StaggeredGrid

__all__ = [
    "AbstractObstacle",
    "Cylinder",
    "MaskObstacle",
    "Rectangle",
    "Sphere",
    "penalization_force",
]


class AbstractObstacle(eqx.Module):
    """A solid body given by its signed distance ``sdf`` (negative inside, length units),
    smoothed over a band of thickness ``width`` just inside the surface into the mask
    ``chi = s^2 (3 - 2 s)``, ``s = clip(-sdf / width, 0, 1)``: 1 deeper inside than
    ``width``, exactly 0 on and outside the surface. It is continuously differentiable, so
    position and shape parameters have useful gradients.

    Why inside: the implicit Brinkman step ``u / (1 + dt chi / eta)`` with the usual
    ``eta << dt`` stops the flow wherever ``chi`` exceeds about ``eta / dt`` (a few per
    cent), so the body acts as far out as its mask reaches. A mask that reaches past the
    surface makes the body larger by part of a cell: the ``(1 - tanh(sdf / width)) / 2``
    mask used first (a cell beyond) gave DFG 2D-1's drag 2x too high at 24 cells across,
    and a band centred on the surface (half a band beyond) gave DFG 2D-2's max c_D 5.5%
    too high at 96 cells (central advection) against 1.4% with the band inside
    (tests/fluids/test_dfg.py).
    """

    width: eqx.AbstractVar[Array]

    @abc.abstractmethod
    def signed_distance(self, *points: Array) -> Array:
        """Signed distance to the surface at points ``(x, y)`` or ``(x, y, z)`` (negative
        inside)."""

    def mask(self, *points: Array) -> Array:
        """Smoothed solid fraction in [0, 1] at points ``(x, y(, z))``: 0 on and outside
        the surface, 1 deeper than ``width`` inside."""
        width = jnp.asarray(self.width, points[0].dtype)
        s = jnp.clip(-self.signed_distance(*points) / width, 0, 1)
        return s * s * (3 - 2 * s)

    def check_grid(self, grid: StaggeredGrid) -> None:
        """Raise `hybrax.ConfigurationError` if the body cannot live on ``grid`` (a body
        of another dimension, or given on another grid's cells)."""


def _check_dimension(body: AbstractObstacle, entries: int, grid: StaggeredGrid) -> None:
    if entries != grid.ndim:
        raise ConfigurationError(
            f"obstacle: the {type(body).__name__}'s centre has {entries} coordinates but the "
            f"grid is {grid.ndim}-D {grid.num_points}; give one coordinate per axis"
        )


def _check_width(body: AbstractObstacle, half_thickness, what: str) -> None:
    """The mask is fully solid only deeper than ``width`` inside: refuse a band as thick as
    the body (concrete values; traced ones are the caller's)."""
    width, half = concrete_or_none(body.width), concrete_or_none(half_thickness)
    if width is None or half is None:
        return
    if float(width) >= float(np.min(half)):
        raise ConfigurationError(
            f"{type(body).__name__}: width (the mask's smoothing band, inside the surface) "
            f"must be smaller than {what} ({float(np.min(half)):g}), got {float(width):g}: "
            "no point of the body would be fully solid; use about one cell"
        )


class Cylinder(AbstractObstacle):
    """A circular cylinder; on a 3-D grid its axis runs along z, through the whole domain.

    Parameters
    ----------
    centre
        Centre ``(x, y)`` of its cross-section (length units), a differentiable leaf.
    radius
        Radius (length units), positive, a differentiable leaf.
    width
        Smoothing width of the mask (length units), positive; about one cell.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> body = Cylinder((0.5, 0.5), 0.1, 0.01)
    >>> round(float(body.mask(jnp.array(0.5), jnp.array(0.5))), 6)  # 1 - 2e-9 at the centre
    1.0
    """

    centre: Array = parameter("centre")
    radius: Array = parameter("radius", positive=True, scalar=True)
    width: Array = parameter("width", positive=True, scalar=True)

    def __check_init__(self):
        if jnp.shape(self.centre) != (2,):
            raise ConfigurationError(
                f"Cylinder: centre must be (x, y) of the cross-section, got shape "
                f"{jnp.shape(self.centre)}"
            )
        _check_width(self, self.radius, "the radius")

    def signed_distance(self, *points):
        return _ball_distance(points[:2], self.centre, self.radius)


def _ball_distance(points, centre, radius) -> Array:
    dtype = points[0].dtype
    squared = sum((x - jnp.asarray(centre[a], dtype)) ** 2 for a, x in enumerate(points))
    return jnp.sqrt(squared + jnp.finfo(dtype).tiny) - jnp.asarray(radius, dtype)


class Sphere(AbstractObstacle):
    """A sphere (3-D grids; on a 2-D grid, a disc: the same body as a `Cylinder`).

    Parameters
    ----------
    centre
        Centre, one coordinate per axis of the grid (length units), a differentiable leaf.
    radius
        Radius (length units), positive, a differentiable leaf.
    width
        Smoothing width of the mask (length units), positive; about half a cell.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> body = Sphere((0.5, 0.5, 0.5), 0.2, 0.02)
    >>> [float(body.mask(*(jnp.array(v) for v in p))) for p in ((0.5,) * 3, (0.5, 0.5, 0.9))]
    [1.0, 0.0]
    """

    centre: Array = parameter("centre")
    radius: Array = parameter("radius", positive=True, scalar=True)
    width: Array = parameter("width", positive=True, scalar=True)

    def __check_init__(self):
        _check_width(self, self.radius, "the radius")

    def signed_distance(self, *points):
        return _ball_distance(points, self.centre, self.radius)

    def check_grid(self, grid: StaggeredGrid) -> None:
        _check_dimension(self, jnp.shape(self.centre)[0], grid)


class Rectangle(AbstractObstacle):
    """An axis-aligned rectangle (a box on a 3-D grid) with centre ``centre`` and side
    lengths ``size`` (both differentiable leaves, length units, one entry per axis) and
    mask smoothing ``width``."""

    centre: Array = parameter("centre")
    size: Array = parameter("size", positive=True)
    width: Array = parameter("width", positive=True, scalar=True)

    def __check_init__(self):
        if jnp.shape(self.centre) != jnp.shape(self.size):
            raise ConfigurationError(
                f"Rectangle: centre and size need one entry per axis each, got shapes "
                f"{jnp.shape(self.centre)} and {jnp.shape(self.size)}"
            )
        size = concrete_or_none(self.size)
        if size is not None:
            _check_width(self, size / 2, "half the shortest side")

    def signed_distance(self, *points):
        dtype = points[0].dtype
        gaps = [
            jnp.abs(x - jnp.asarray(self.centre[a], dtype)) - jnp.asarray(self.size[a], dtype) / 2
            for a, x in enumerate(points)
        ]
        outside = jnp.sqrt(sum(jnp.maximum(g, 0) ** 2 for g in gaps) + 1e-30)
        beyond = gaps[0] > 0
        for g in gaps[1:]:
            beyond = beyond | (g > 0)
        deepest = gaps[0]
        for g in gaps[1:]:
            deepest = jnp.maximum(deepest, g)
        return jnp.where(beyond, outside, deepest)

    def check_grid(self, grid: StaggeredGrid) -> None:
        _check_dimension(self, jnp.shape(self.centre)[0], grid)


class MaskObstacle(AbstractObstacle):
    """A body of any shape, given as a solid/fluid mask on the grid's cells.

    The mask becomes a signed distance at the cell centres (Euclidean distance
    transforms, computed once on the host: distance to the nearest cell of the other kind,
    less half a cell, so the surface runs along the cell edges of the mask), interpolated
    bilinearly in between; the solid fraction is then smoothed like every obstacle's. The
    mask itself is data, not a parameter: for gradients with respect to a body's position
    or shape, use a parametric body (`Cylinder`, `Rectangle`, or a subclass of
    `AbstractObstacle` with its own ``signed_distance``).

    Parameters
    ----------
    solid
        Boolean (or 0/1) array of shape ``grid.cell_shape``, true in the body's cells.
    grid
        The `hybrax.grids.StaggeredGrid` the mask is drawn on; a model on another grid
        rejects the body.
    width
        Smoothing width (length units), positive; default half of the smallest cell side.

    Examples
    --------
    >>> import numpy as np
    >>> from hybrax.grids import StaggeredGrid
    >>> grid = StaggeredGrid((8, 8))
    >>> solid = np.zeros((8, 8), bool)
    >>> solid[3:5, 3:5] = True  # a square of 2 x 2 cells in the middle
    >>> body = MaskObstacle(solid, grid)
    >>> import jax.numpy as jnp
    >>> [float(body.mask(jnp.array(p), jnp.array(p))) for p in (0.5, 0.0625)]  # in, out
    [1.0, 0.0]
    """

    distance: Array
    width: Array = parameter("width", positive=True, scalar=True)
    grid: StaggeredGrid

    def __init__(self, solid: ArrayLike, grid: StaggeredGrid, width: ArrayLike | None = None):
        if not isinstance(grid, StaggeredGrid):
            raise ConfigurationError(
                f"MaskObstacle: grid must be the hybrax.grids.StaggeredGrid the mask is drawn "
                f"on, got {type(grid).__name__}"
            )
        solid = np.asarray(solid)
        if solid.shape != grid.cell_shape:
            raise ConfigurationError(
                f"MaskObstacle: solid must have the grid's cell shape {grid.cell_shape} (one "
                f"value per cell, x first), got shape {solid.shape}"
            )
        if solid.dtype != bool and not np.all(np.isin(solid, (0, 1))):
            raise ConfigurationError(
                "MaskObstacle: solid must be boolean (or 0/1) per cell, got values other "
                f"than 0 and 1 (dtype {solid.dtype})"
            )
        solid = solid.astype(bool)
        if not solid.any():
            raise ConfigurationError("MaskObstacle: solid marks no cell; there is no body")
        if solid.all():
            raise ConfigurationError("MaskObstacle: solid marks every cell; there is no fluid")
        outside = ndimage.distance_transform_edt(~solid, sampling=grid.spacing)
        inside = ndimage.distance_transform_edt(solid, sampling=grid.spacing)
        half = 0.5 * min(grid.spacing)
        self.distance = jnp.asarray(np.where(solid, half - inside, outside - half))
        self.width = half if width is None else check_float(width, "width", positive=True)
        self.grid = grid

    def signed_distance(self, *points):
        distance = self.distance.astype(jnp.result_type(points[0]))
        return self.grid.interpolate_cells(distance, *points)

    def check_grid(self, grid: StaggeredGrid) -> None:
        if grid != self.grid:
            raise ConfigurationError(
                f"obstacle: the MaskObstacle was drawn on {self.grid.cell_shape} cells of "
                f"size {self.grid.spacing}, but the model's grid has {grid.cell_shape} cells "
                f"of size {grid.spacing}; draw the mask on the model's grid"
            )


def penalization_force(model, state, dt, previous=None, margin: float = 4.0) -> tuple[Array, ...]:
    """Force (per unit depth in 2-D, and per unit density) that the fluid exerts on the
    model's obstacle, as ``(F_x, F_y(, F_z))`` (length^3/time^2 in 2-D, length^4/time^2 in
    3-D; times the density for a force).

    A control-volume momentum balance: over the faces ``B`` within ``margin`` cells of the
    body's surface, ``F = sum_B (k - grad p - du/dt) dV``, with ``k`` the advective and
    viscous tendency (`IncompressibleNavierStokes.tendency`, in flux form) and ``p`` the
    pressure of the state's last projection. The sum telescopes to the momentum flux,
    viscous stress and pressure on the boundary of ``B``, where the flow is plain fluid: the
    result does not depend on how the penalisation treats the faces the body cuts (counting
    the momentum a penalisation step removes does, by tens of per cent at DFG resolutions).
    ``du/dt`` is ``(state.u - previous.u) / dt`` when the state one step earlier is given
    (unsteady flow: shedding), else zero (steady flow). The drag coefficient is
    ``2 F_x / (U^2 D)`` in 2-D, ``2 F_x / (U^2 A)`` (frontal area ``A``) in 3-D.
    """
    if model.obstacle is None:
        raise ConfigurationError("penalization_force: the model has no obstacle")
    grid, p = model.grid, state.pressure
    h = jnp.asarray(dt, state.u.dtype)
    k = model.tendency(state, state.time)
    reach = margin * max(grid.spacing)
    volume = float(np.prod(grid.spacing))
    forces = []
    for axis, spacing in enumerate(grid.spacing):
        zero = jnp.zeros_like(jnp.take(p, jnp.arange(1), axis=axis))
        inner = jnp.diff(p, axis=axis) / spacing
        gradient = jnp.concatenate([zero, inner, zero], axis=axis)  # boundary faces: unused
        density = k.velocity[axis] - gradient
        if previous is not None:
            density = density - (state.velocity[axis] - previous.velocity[axis]) / h
        near = model.obstacle.signed_distance(*grid.face_points(axis, p.dtype)) < reach
        forces.append(jnp.sum(jnp.where(near, density, 0)) * volume)
    return tuple(forces)
