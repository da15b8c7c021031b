"""Per-side boundary conditions of the staggered-grid incompressible solver.

Each side of the rectangle (or box, in 3-D) gets one condition object. The normal velocity
component sits on the boundary faces (set by `apply_normal`); the tangential components are
cell-centred along the side and are extended into two ghost layers (`pad_tangential`); the
normal component is extended with `pad_normal`. The pressure Poisson problem reads `pressure_kind`.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array

from hybrax.core import ConfigurationError, check_parameter, parameter

__all__ = [
    "AbstractBoundary",
    "Boundaries",
    "FreeSlip",
    "Inflow",
    "Outflow",
    "Periodic",
    "Wall",
]


class AbstractBoundary(eqx.Module):
    """One side's boundary condition."""


class Periodic(AbstractBoundary):
    """Periodic side; the opposite side must be periodic too."""


class Wall(AbstractBoundary):
    """No-slip wall, optionally sliding along itself.

    Parameters
    ----------
    velocity
        Tangential wall velocity (length/time) along the wall's first tangential axis:
        +x on bottom/top (and, in 3-D, front/back) walls, +y on left/right walls; a
        differentiable leaf. Default 0 (a fixed wall).
    """

    velocity: Array = parameter("velocity", default=0.0, scalar=True)


class FreeSlip(AbstractBoundary):
    """Impermeable, shear-free wall (zero normal velocity, zero tangential stress)."""


class Inflow(AbstractBoundary):
    """Prescribed normal velocity through the side (Dirichlet), zero tangential velocity.

    Parameters
    ----------
    profile
        Velocity component along the side's normal axis at the side's face centres (length
        along the side: ``ny`` for left/right, ``nx`` for bottom/top), signed in the
        coordinate direction (+x on left/right); a differentiable leaf. A scalar is a
        uniform profile.
    """

    profile: Array = parameter("profile")


def _optional_speed(value):
    if value is None:
        return None
    return check_parameter(value, "convective_velocity", nonnegative=True, scalar=True)


class Outflow(AbstractBoundary):
    """Open boundary with the pressure zero on the side.

    By default the velocity has zero gradient across the side. With a
    ``convective_velocity`` ``U_c`` the normal velocity on the side is advanced by the
    convective (Sommerfeld radiation) condition ``du/dt + U_c du/dn = 0`` (``n`` the outward
    normal; one-sided difference to the adjacent face), which lets eddies leave with less
    reflection; the tangential velocity keeps a zero gradient. Either way the projection
    then corrects the side's normal velocity, so the flow stays divergence-free and the
    outflow flux equals the inflow flux.

    Parameters
    ----------
    convective_velocity
        ``U_c`` (length/time), non-negative, a differentiable leaf; usually the mean inflow
        speed. ``None`` (default): zero-gradient outflow.

    Examples
    --------
    >>> channel = Boundaries(Inflow(1.0), Outflow(convective_velocity=1.0), Wall(), Wall())
    >>> channel.axis_kinds(0)
    ('neumann', 'dirichlet')
    """

    convective_velocity: Array | None = eqx.field(default=None, converter=_optional_speed)


def _convective(side: AbstractBoundary) -> bool:
    return isinstance(side, Outflow) and side.convective_velocity is not None


_SIDE_NAMES = ("left", "right", "bottom", "top", "front", "back")


class Boundaries(eqx.Module):
    """The sides' conditions: ``left`` (x=0), ``right`` (x=Lx), ``bottom`` (y=0),
    ``top`` (y=Ly), and on 3-D grids ``front`` (z=0) and ``back`` (z=Lz).

    Examples
    --------
    >>> cavity = Boundaries(Wall(), Wall(), Wall(), Wall(velocity=1.0))
    >>> cavity.axis_kinds(0)
    ('neumann', 'neumann')
    >>> duct = Boundaries(Periodic(), Periodic(), Wall(), Wall(), Wall(), Wall())
    >>> duct.ndim
    3
    """

    left: AbstractBoundary
    right: AbstractBoundary
    bottom: AbstractBoundary
    top: AbstractBoundary
    front: AbstractBoundary | None = None
    back: AbstractBoundary | None = None

    def __check_init__(self):
        if (self.front is None) != (self.back is None):
            raise ConfigurationError(
                "boundaries: front and back (the z sides of a 3-D box) must both be given or "
                f"both be None (2-D), got {type(self.front).__name__} and "
                f"{type(self.back).__name__}"
            )
        for name in _SIDE_NAMES[: 2 * self.ndim]:
            if not isinstance(getattr(self, name), AbstractBoundary):
                raise ConfigurationError(
                    f"boundaries: {name} must be a boundary condition such as "
                    f"hybrax.fluids.Wall(), got {type(getattr(self, name)).__name__}"
                )
        count = 2 * self.ndim
        pairs = zip(_SIDE_NAMES[:count:2], _SIDE_NAMES[1:count:2], strict=True)
        for lo, hi in pairs:
            a, b = isinstance(getattr(self, lo), Periodic), isinstance(getattr(self, hi), Periodic)
            if a != b:
                raise ConfigurationError(
                    f"boundaries: {lo} and {hi} must both be Periodic or neither, got "
                    f"{type(getattr(self, lo)).__name__} and {type(getattr(self, hi)).__name__}"
                )

    @property
    def ndim(self) -> int:
        """2, or 3 when the front and back sides are given."""
        return 2 if self.front is None else 3

    @classmethod
    def periodic(cls, ndim: int = 2) -> "Boundaries":
        """All sides periodic (``ndim`` 2 or 3)."""
        if ndim not in (2, 3):
            raise ConfigurationError(f"Boundaries.periodic: ndim must be 2 or 3, got {ndim!r}")
        return cls(*(Periodic() for _ in range(2 * ndim)))

    def sides(self, axis: int) -> tuple[AbstractBoundary, AbstractBoundary]:
        """The (low, high) sides normal to ``axis``."""
        return getattr(self, _SIDE_NAMES[2 * axis]), getattr(self, _SIDE_NAMES[2 * axis + 1])

    def axis_kinds(self, axis: int) -> tuple[str, str]:
        """Pressure conditions on the two sides normal to ``axis``: 'periodic', 'neumann' or
        'dirichlet' (outflow)."""
        return tuple(pressure_kind(side) for side in self.sides(axis))

    def check_grid(self, grid) -> None:
        """Reject sides that do not match ``grid``'s axes and inflow profiles whose shape
        does not fit it."""
        if grid.ndim != self.ndim:
            raise ConfigurationError(
                f"boundaries: a {grid.ndim}-D grid needs {2 * grid.ndim} sides ("
                f"{', '.join(_SIDE_NAMES[: 2 * grid.ndim])}), got {2 * self.ndim}"
            )
        for axis in range(grid.ndim):
            count = tuple(n for a, n in enumerate(grid.num_points) if a != axis)
            names = _SIDE_NAMES[2 * axis : 2 * axis + 2]
            for name, side in zip(names, self.sides(axis), strict=True):
                if isinstance(side, Inflow) and jnp.ndim(side.profile) not in (0,):
                    if jnp.shape(side.profile) != count:
                        raise ConfigurationError(
                            f"boundaries: the Inflow profile on the {name} side (normal to axis "
                            f"{axis}) needs shape {count} (one value per face), got "
                            f"{jnp.shape(side.profile)}"
                        )


def first_tangential_axis(normal_axis: int) -> int:
    """The axis a `Wall`'s scalar velocity moves along: x, or y for walls normal to x."""
    return 1 if normal_axis == 0 else 0


def pressure_kind(side: AbstractBoundary) -> str:
    if isinstance(side, Periodic):
        return "periodic"
    if isinstance(side, Outflow):
        return "dirichlet"
    return "neumann"


def _span(x: Array, axis: int, start: int, stop: int) -> Array:
    """``x[start:stop]`` along ``axis`` (``0 <= start <= stop``). The ghost layers and
    boundary faces are slices and concatenations along the axis itself, never a transpose:
    moving the axis to the front costs a copy of the whole field in the forward pass and
    again in the gradient."""
    return lax.slice_in_dim(x, start, stop, axis=axis)


def _layer(x: Array, axis: int, index: int) -> Array:
    """The layer ``index`` along ``axis``, kept as a size-1 axis."""
    n = x.shape[axis]
    start = index % n
    return lax.slice_in_dim(x, start, start + 1, axis=axis)


def pad_tangential(
    q: Array, axis: int, lo: AbstractBoundary, hi: AbstractBoundary, component: int
) -> Array:
    """``q`` (the velocity ``component``, cell-centred along ``axis``) with two ghost layers
    on each side of ``axis``."""
    n = q.shape[axis]
    if isinstance(lo, Periodic):
        return jnp.concatenate([_span(q, axis, n - 2, n), q, _span(q, axis, 0, 2)], axis)
    moving = component == first_tangential_axis(axis)

    def ghosts(side, nearest):  # ghost values mirroring the cells ``nearest`` (elementwise)
        if isinstance(side, Wall):
            g = jnp.asarray(side.velocity, q.dtype) if moving else jnp.zeros((), q.dtype)
            return 2 * g - nearest
        if isinstance(side, Inflow):
            return -nearest
        return nearest  # free slip, outflow: zero gradient

    # ghost layers in grid order: the low side's mirror the first two cells reversed
    low = ghosts(lo, lax.rev(_span(q, axis, 0, 2), (axis,)))
    high = ghosts(hi, lax.rev(_span(q, axis, n - 2, n), (axis,)))
    return jnp.concatenate([low, q, high], axis)


def pad_normal(q: Array, axis: int, lo: AbstractBoundary, hi: AbstractBoundary) -> Array:
    """``q`` (on faces along ``axis``, boundaries included) with two ghost layers per side."""
    n = q.shape[axis]
    if isinstance(lo, Periodic):
        return jnp.concatenate([_span(q, axis, n - 3, n - 1), q, _span(q, axis, 1, 3)], axis)

    def ghosts(side, boundary, inner):  # inner: two faces mirrored through the boundary face
        if isinstance(side, Outflow):
            return jnp.concatenate([boundary, boundary], axis)
        return 2 * boundary - inner  # odd reflection about the boundary value

    low = ghosts(lo, _layer(q, axis, 0), lax.rev(_span(q, axis, 1, 3), (axis,)))
    high = ghosts(hi, _layer(q, axis, -1), lax.rev(_span(q, axis, n - 3, n - 1), (axis,)))
    return jnp.concatenate([low, q, high], axis)


def apply_normal(q: Array, axis: int, lo: AbstractBoundary, hi: AbstractBoundary) -> Array:
    """``q`` (normal velocity on faces along ``axis``) with its boundary faces set."""
    n = q.shape[axis]
    if isinstance(lo, Periodic):
        return jnp.concatenate([_span(q, axis, 0, n - 1), _layer(q, axis, 0)], axis)

    def value(side, current, inner):
        if _convective(side):
            return current  # advanced by `convective_rate`
        if isinstance(side, Inflow):
            squeezed = current.shape[:axis] + current.shape[axis + 1 :]
            profile = jnp.broadcast_to(jnp.asarray(side.profile, q.dtype), squeezed)
            return jnp.expand_dims(profile, axis)
        if isinstance(side, Outflow):
            return inner
        return jnp.zeros_like(current)

    low = value(lo, _layer(q, axis, 0), _layer(q, axis, 1))
    high = value(hi, _layer(q, axis, -1), _layer(q, axis, -2))
    return jnp.concatenate([low, _span(q, axis, 1, n - 1), high], axis)


def fixed_normal_mask(n_faces: int, lo: AbstractBoundary, hi: AbstractBoundary) -> jax.Array:
    """1 on faces whose velocity the time stepper advances, 0 on boundary faces set by
    `apply_normal` (shape ``(n_faces,)``)."""
    mask = jnp.ones(n_faces)
    if isinstance(lo, Periodic):
        return mask
    return mask.at[0].set(0.0).at[-1].set(0.0)


def convective_rate(q: Array, axis: int, h: float, lo: AbstractBoundary, hi: AbstractBoundary):
    """``d q / dt`` of the normal velocity ``q`` (faces along ``axis``) on the boundary faces
    of convective outflow sides, ``-U_c (q_side - q_inner) / h``; zero on every other face."""
    if not (_convective(lo) or _convective(hi)):
        return jnp.zeros_like(q)
    n = q.shape[axis]

    def rate(side, face, inner):
        if not _convective(side):
            return jnp.zeros_like(_layer(q, axis, face))
        speed = jnp.asarray(side.convective_velocity, q.dtype)
        return -speed * (_layer(q, axis, face) - _layer(q, axis, inner)) / h

    middle = jnp.zeros_like(_span(q, axis, 1, n - 1))
    return jnp.concatenate([rate(lo, 0, 1), middle, rate(hi, -1, -2)], axis)
