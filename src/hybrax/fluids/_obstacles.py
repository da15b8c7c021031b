"""Immersed obstacles as smoothed signed-distance masks, for Brinkman penalisation."""

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array

from hybrax.core import parameter

__all__ = ["AbstractObstacle", "Cylinder", "Rectangle", "penalization_force"]


class AbstractObstacle(eqx.Module):
    """A solid body given by its signed distance (negative inside, length units), smoothed
    into a mask ``chi = (1 - tanh(sdf / width)) / 2`` so that position and shape parameters
    have useful gradients."""

    width: eqx.AbstractVar[Array]

    @abc.abstractmethod
    def signed_distance(self, x: Array, y: Array) -> Array:
        """Signed distance to the surface at points ``(x, y)`` (negative inside)."""

    def mask(self, x: Array, y: Array) -> Array:
        """Smoothed solid fraction in [0, 1] at points ``(x, y)``."""
        width = jnp.asarray(self.width, x.dtype)
        return 0.5 * (1 - jnp.tanh(self.signed_distance(x, y) / width))


class Cylinder(AbstractObstacle):
    """A circular cylinder.

    Parameters
    ----------
    centre
        Centre ``(x, y)`` (length units), a differentiable leaf.
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

    def signed_distance(self, x, y):
        cx, cy = (jnp.asarray(c, x.dtype) for c in (self.centre[0], self.centre[1]))
        r = jnp.sqrt((x - cx) ** 2 + (y - cy) ** 2 + jnp.finfo(x.dtype).tiny)
        return r - jnp.asarray(self.radius, x.dtype)


class Rectangle(AbstractObstacle):
    """An axis-aligned rectangle with centre ``centre`` and side lengths ``size`` (both
    differentiable leaves, length units) and mask smoothing ``width``."""

    centre: Array = parameter("centre")
    size: Array = parameter("size", positive=True)
    width: Array = parameter("width", positive=True, scalar=True)

    def signed_distance(self, x, y):
        cx, cy = (jnp.asarray(c, x.dtype) for c in (self.centre[0], self.centre[1]))
        hx, hy = (jnp.asarray(s, x.dtype) / 2 for s in (self.size[0], self.size[1]))
        dx, dy = jnp.abs(x - cx) - hx, jnp.abs(y - cy) - hy
        outside = jnp.sqrt(jnp.maximum(dx, 0) ** 2 + jnp.maximum(dy, 0) ** 2 + 1e-30)
        return jnp.where((dx > 0) | (dy > 0), outside, jnp.maximum(dx, dy))


def penalization_force(model, state, dt) -> tuple[Array, Array]:
    """Force per unit depth (and density) that the fluid exerts on the model's obstacle, as
    ``(F_x, F_y)``: the momentum that one implicit Brinkman step of size ``dt`` (the
    stepper's) removes from the projected ``state``, divided by ``dt``. At a steady state
    this balances the momentum fluxes and pressure on the body. The drag coefficient is
    ``2 F_x / (U^2 D)``."""
    penalized = model.penalize(state, dt)
    dx, dy = model.grid.spacing
    scale = dx * dy / jnp.asarray(dt, state.u.dtype)
    return (
        jnp.sum(state.u - penalized.u) * scale,
        jnp.sum(state.v - penalized.v) * scale,
    )
