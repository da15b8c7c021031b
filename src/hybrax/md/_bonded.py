"""Bonded terms for simple molecules: harmonic bonds and harmonic angles."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from hybrax.core import ConfigurationError, check_parameter, concrete_or_none

from ._energy import AbstractEnergy

__all__ = ["HarmonicAngles", "HarmonicBonds"]


def _index_table(name: str, value, width: int, what: str) -> Array:
    try:
        table = jnp.asarray(value)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(
            f"{name}: {what} must be an integer array of shape (M, {width}), got {value!r}"
        ) from error
    if table.ndim != 2 or table.shape[1] != width or not jnp.issubdtype(table.dtype, jnp.integer):
        raise ConfigurationError(
            f"{name}: {what} must be an integer array of shape (M, {width}), got shape "
            f"{table.shape} and dtype {table.dtype}"
        )
    concrete = concrete_or_none(table)
    if concrete is None:  # traced
        return table
    if concrete.size and concrete.min() < 0:
        raise ConfigurationError(f"{name}: {what} holds negative atom indices")
    return table


def _per_term(name: str, key: str, value: ArrayLike, count: int, **constraints) -> Array:
    value = check_parameter(value, key, **constraints)
    if value.ndim not in (0, 1) or (value.ndim == 1 and value.shape[0] != count):
        raise ConfigurationError(
            f"{name}: {key} must be a scalar or one value per term ({count},), got shape "
            f"{value.shape}"
        )
    return value


def _check_range(name: str, table: Array, positions: Array) -> None:
    concrete = concrete_or_none(table)
    if concrete is None:  # traced
        return
    top = int(np.max(concrete)) if concrete.size else -1
    if top >= positions.shape[0]:
        raise ConfigurationError(
            f"{name}: atom index {top} out of range for {positions.shape[0]} atoms"
        )


class HarmonicBonds(AbstractEnergy):
    """Harmonic bonds ``U = sum_b k_b / 2 (r_b - r0_b)^2``.

    Parameters
    ----------
    bonds
        ``(B, 2)`` integer atom indices of bonded pairs.
    stiffness
        ``k`` (epsilon / sigma^2), scalar or one per bond; differentiable.
    rest_length
        ``r0`` (sigma), scalar or one per bond; differentiable.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import hybrax.md as md
    >>> bonds = md.HarmonicBonds(jnp.array([[0, 1]]), stiffness=100.0, rest_length=1.0)
    >>> float(bonds.energy(jnp.array([[0.0, 0, 0], [1.1, 0, 0]]), None, md.FreeSpace()))
    0.5...
    """

    bonds: Int[Array, "B 2"]
    stiffness: Float[Array, "..."]
    rest_length: Float[Array, "..."]

    def __init__(self, bonds, stiffness: ArrayLike = 100.0, rest_length: ArrayLike = 1.0):
        self.bonds = _index_table("HarmonicBonds", bonds, 2, "bonds")
        count = self.bonds.shape[0]
        self.stiffness = _per_term("HarmonicBonds", "stiffness", stiffness, count, nonnegative=True)
        self.rest_length = _per_term(
            "HarmonicBonds", "rest_length", rest_length, count, nonnegative=True
        )

    def energy(self, positions, neighbors, box):
        _check_range("HarmonicBonds", self.bonds, positions)
        d = box.displacement(positions[self.bonds[:, 0]], positions[self.bonds[:, 1]])
        r = jnp.sqrt(jnp.sum(d * d, axis=-1))
        k = self.stiffness.astype(positions.dtype)
        r0 = self.rest_length.astype(positions.dtype)
        return jnp.sum(0.5 * k * (r - r0) ** 2)


class HarmonicAngles(AbstractEnergy):
    """Harmonic bond angles ``U = sum_a k_a / 2 (theta_a - theta0_a)^2``.

    ``theta`` is the angle at the middle atom ``j`` of each triple ``(i, j, k)``.

    Parameters
    ----------
    triples
        ``(A, 3)`` integer atom indices ``(i, j, k)`` with ``j`` the vertex.
    stiffness
        ``k`` (epsilon / rad^2), scalar or one per angle; differentiable.
    rest_angle
        ``theta0`` (radians), scalar or one per angle; differentiable.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import hybrax.md as md
    >>> water = md.HarmonicAngles(jnp.array([[1, 0, 2]]), stiffness=50.0, rest_angle=1.91)
    """

    triples: Int[Array, "A 3"]
    stiffness: Float[Array, "..."]
    rest_angle: Float[Array, "..."]

    def __init__(self, triples, stiffness: ArrayLike = 50.0, rest_angle: ArrayLike = np.pi):
        self.triples = _index_table("HarmonicAngles", triples, 3, "triples")
        count = self.triples.shape[0]
        self.stiffness = _per_term(
            "HarmonicAngles", "stiffness", stiffness, count, nonnegative=True
        )
        self.rest_angle = _per_term(
            "HarmonicAngles", "rest_angle", rest_angle, count, nonnegative=True
        )

    def energy(self, positions, neighbors, box):
        _check_range("HarmonicAngles", self.triples, positions)
        i, j, k = (self.triples[:, c] for c in range(3))
        a = box.displacement(positions[i], positions[j])
        b = box.displacement(positions[k], positions[j])
        cross = jnp.linalg.norm(jnp.cross(a, b), axis=-1)
        theta = jnp.arctan2(cross, jnp.sum(a * b, axis=-1))
        k_ = self.stiffness.astype(positions.dtype)
        theta0 = self.rest_angle.astype(positions.dtype)
        return jnp.sum(0.5 * k_ * (theta - theta0) ** 2)
