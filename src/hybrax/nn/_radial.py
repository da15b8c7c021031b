"""Radial features for distance-based networks: smooth bases and cut-off envelopes.

Functions of a scaled distance ``x = r / cutoff`` in ``[0, 1]`` (any array shape), domain
free: `hybrax.md`'s neural potentials build on them, and any model that feeds distances to
a network can. A basis maps ``x`` to ``num_basis`` features; an envelope goes smoothly to
zero at ``x = 1`` so that whatever it multiplies vanishes with its derivatives there.
"""

import abc
import math

import equinox as eqx
import jax.numpy as jnp
from equinox import AbstractVar
from jaxtyping import Array, Float

from ._common import check_positive_int

__all__ = [
    "AbstractEnvelope",
    "AbstractRadialBasis",
    "BesselBasis",
    "CosineEnvelope",
    "GaussianBasis",
    "PolynomialEnvelope",
]


# ---------------------------------------------------------------------- radial features
class AbstractRadialBasis(eqx.Module):
    """Radial features of the scaled distance ``x = r / cutoff`` (``0 < x <= 1``).

    ``basis(x)`` maps an array of any shape to that shape plus a trailing axis of
    ``num_basis`` features.
    """

    num_basis: AbstractVar[int]

    @abc.abstractmethod
    def __call__(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape num_basis"]:
        """Features at scaled distances ``x``."""


class BesselBasis(AbstractRadialBasis):
    """Spherical Bessel functions of order zero, ``sqrt(2) sin(n pi x) / x``, ``n = 1..K``
    (DimeNet, Gasteiger et al. 2020): the Laplacian's radial eigenfunctions on a ball of
    radius ``cutoff``, each zero at ``x = 1``.

    Parameters
    ----------
    num_basis
        ``K`` (static), default 8.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from hybrax.nn import BesselBasis
    >>> BesselBasis(8)(jnp.asarray([0.5, 1.0])).shape
    (2, 8)
    """

    num_basis: int = eqx.field(static=True, default=8)

    def __check_init__(self):
        check_positive_int("BesselBasis", "num_basis", self.num_basis)

    def __call__(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape num_basis"]:
        n = jnp.arange(1, self.num_basis + 1).astype(x.dtype)
        x = x[..., None]
        return math.sqrt(2.0) * jnp.sin(math.pi * n * x) / x


class GaussianBasis(AbstractRadialBasis):
    """Gaussians ``exp(-(x - mu_k)^2 / (2 w^2))`` with ``K`` centres ``mu_k`` evenly spaced
    from ``start`` to 1 and width ``w`` equal to their spacing (SchNet's "RBF expansion").

    Parameters
    ----------
    num_basis
        ``K`` (static, at least 2), default 16.
    start
        First centre as a fraction of the cut-off (static), default 0.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from hybrax.nn import GaussianBasis
    >>> GaussianBasis(16, start=0.3)(jnp.asarray([0.5])).shape
    (1, 16)
    """

    num_basis: int = eqx.field(static=True, default=16)
    start: float = eqx.field(static=True, default=0.0)

    def __check_init__(self):
        check_positive_int("GaussianBasis", "num_basis", self.num_basis, minimum=2)
        if not 0.0 <= self.start < 1.0:
            raise ValueError(f"GaussianBasis: start must lie in [0, 1), got {self.start}")

    def __call__(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape num_basis"]:
        spacing = (1.0 - self.start) / (self.num_basis - 1)
        centres = self.start + spacing * jnp.arange(self.num_basis).astype(x.dtype)
        z = (x[..., None] - centres) / spacing
        return jnp.exp(-0.5 * z * z)


class AbstractEnvelope(eqx.Module):
    """A smooth cut-off function of ``x = r / cutoff``: 1 at ``x = 0``, 0 for ``x >= 1``,
    with vanishing slope at ``x = 1`` (so energies and forces go to zero there)."""

    @abc.abstractmethod
    def __call__(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """Envelope at ``x`` (elementwise)."""


class PolynomialEnvelope(AbstractEnvelope):
    """``u(x) = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2)`` for ``x < 1``,
    0 beyond (DimeNet): value, slope and curvature vanish at the cut-off (energy, force and
    force derivative are continuous there), and ``u`` is flat near ``x = 0``.

    Parameters
    ----------
    exponent
        ``p`` (static, >= 2), default 6.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from hybrax.nn import PolynomialEnvelope
    >>> [round(float(v), 6) for v in PolynomialEnvelope()(jnp.asarray([0.0, 1.0]))]
    [1.0, 0.0]
    """

    exponent: int = eqx.field(static=True, default=6)

    def __check_init__(self):
        check_positive_int("PolynomialEnvelope", "exponent", self.exponent, minimum=2)

    def __call__(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        p = self.exponent
        xp = x**p
        u = (
            1.0
            - 0.5 * (p + 1) * (p + 2) * xp
            + p * (p + 2) * xp * x
            - 0.5 * p * (p + 1) * xp * x * x
        )
        return jnp.where(x < 1.0, u, 0.0)


class CosineEnvelope(AbstractEnvelope):
    """``u(x) = (1 + cos(pi x)) / 2`` for ``x < 1``, 0 beyond (Behler): value and slope vanish
    at the cut-off.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from hybrax.nn import CosineEnvelope
    >>> round(float(CosineEnvelope()(jnp.asarray(0.5))), 6)
    0.5
    """

    def __call__(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        return jnp.where(x < 1.0, 0.5 * (1.0 + jnp.cos(math.pi * x)), 0.0)
