"""Simulation boxes: periodic orthorhombic boxes (minimum image) and free space."""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from hybrax.core import ConfigurationError, check_parameter

__all__ = ["AbstractBox", "FreeSpace", "PeriodicBox"]


class AbstractBox(eqx.Module):
    """Where particles live: how to measure a displacement and how to move a particle.

    Subclasses implement ``displacement(ri, rj)`` (the vector from ``rj`` to ``ri``) and
    ``shift(r, dr)`` (move ``r`` by ``dr`` and bring it back into the box), both
    broadcasting over leading axes, in reduced LJ length units.
    """

    @abc.abstractmethod
    def displacement(self, ri: Array, rj: Array) -> Array:
        """``ri - rj`` (last axis 3), under the box's boundary conditions."""

    @abc.abstractmethod
    def shift(self, r: Array, dr: Array) -> Array:
        """``r + dr`` brought back into the box."""

    @property
    @abc.abstractmethod
    def periodic(self) -> bool:
        """Whether the box wraps around."""

    def wrap(self, r: Array) -> Array:
        """``r`` brought back into the box (identity in free space)."""
        return self.shift(r, jnp.zeros_like(r))

    def scaled(self, factor: ArrayLike) -> AbstractBox:
        """The box stretched by ``factor`` (used for virial pressure); free space is
        unchanged."""
        return self


class PeriodicBox(AbstractBox):
    """An orthorhombic periodic box ``[0, Lx) x [0, Ly) x [0, Lz)`` with minimum image.

    The side lengths are a differentiable leaf, so ``jax.grad`` of an energy with respect to
    the box (through `hybrax.md.pressure`, which strains positions with it) gives the
    virial. Positions are expected inside the box; `shift` wraps them back after each move.

    Parameters
    ----------
    lengths
        Side lengths (sigma); a scalar for a cube or three values. Positive and finite
        (anything else is a `hybrax.ConfigurationError`; a traced value is checked when the
        program runs).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from hybrax.md import PeriodicBox
    >>> box = PeriodicBox(10.0)
    >>> box.displacement(jnp.array([0.5, 0.0, 0.0]), jnp.array([9.5, 0.0, 0.0]))
    Array([1., 0., 0.], dtype=float...)
    """

    lengths: Float[Array, "3"]

    def __init__(self, lengths: ArrayLike):
        lengths = check_parameter(
            lengths,
            "PeriodicBox lengths (box sides)",
            positive=True,
            example="PeriodicBox(10.0) or PeriodicBox([10.0, 10.0, 12.0])",
        )
        if lengths.ndim == 0:
            lengths = jnp.broadcast_to(lengths, (3,))
        if lengths.shape != (3,):
            raise ConfigurationError(
                f"PeriodicBox: lengths must be a scalar or 3 values (Lx, Ly, Lz), got shape "
                f"{lengths.shape}"
            )
        self.lengths = lengths

    @property
    def periodic(self) -> bool:
        return True

    @property
    def volume(self) -> Array:
        """Box volume (sigma^3)."""
        return jnp.prod(self.lengths)

    def displacement(self, ri: Array, rj: Array) -> Array:
        lengths = self.lengths.astype(jnp.result_type(ri))
        d = ri - rj
        return d - lengths * jnp.rint(d / lengths)

    def shift(self, r: Array, dr: Array) -> Array:
        lengths = self.lengths.astype(jnp.result_type(r))
        return jnp.mod(r + dr, lengths)

    def scaled(self, factor: ArrayLike) -> PeriodicBox:
        return PeriodicBox(self.lengths * factor)


class FreeSpace(AbstractBox):
    """Open boundaries: displacements are plain differences and nothing wraps.

    Neighbour lists in free space use the dense (all-pairs) mode.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from hybrax.md import FreeSpace
    >>> FreeSpace().displacement(jnp.ones(3), jnp.zeros(3))
    Array([1., 1., 1.], dtype=float...)
    """

    @property
    def periodic(self) -> bool:
        return False

    def displacement(self, ri: Array, rj: Array) -> Array:
        return ri - rj

    def shift(self, r: Array, dr: Array) -> Array:
        return r + dr
