"""Coarse models of the ``lorenz96-closure`` workflow: the one-scale solver and closures."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

import hybrax
from hybrax.climate import Lorenz96
from hybrax.core import ConfigurationError
from hybrax.hybrid import Closure
from hybrax.nn import MLP

from .settings import FULL, ClosureSettings

__all__ = ["LocalClosureNet", "PolynomialClosure", "coarse_stepper", "fit_polynomial"]


def coarse_stepper(closure: Any | None, settings: ClosureSettings = FULL) -> hybrax.RK4:
    """RK4 for the one-scale Lorenz-96 in ``X`` (K=8, F=20), with ``closure`` (a network
    ``X -> U``) added to its tendency through `hybrax.hybrid.Closure`, or without one."""
    model = Lorenz96(num_variables=8, forcing=20.0)
    dynamics = model if closure is None else Closure(model, closure)
    return hybrax.RK4(dynamics, settings.coarse_dt)


class PolynomialClosure(eqx.Module):
    """``U(X_k) = sum_i a_i X_k^i`` applied at every site (Wilks 2005).

    Parameters
    ----------
    coefficients
        ``(a_0, ..., a_degree)``.
    """

    coefficients: Float[Array, " degree_plus_one"]

    def __call__(self, x: Float[Array, " K"]) -> Float[Array, " K"]:
        c = self.coefficients.astype(x.dtype)
        return jnp.polyval(c[::-1], x)


def fit_polynomial(x: Array, u: Array, degree: int = 3) -> PolynomialClosure:
    """Least-squares fit of ``u ~ sum_i a_i x^i`` over all samples (any matching shapes).

    Solved on the host in float64 (`numpy.polynomial.polynomial.polyfit`, which rescales
    ``x``): the monomial design matrix is too ill-conditioned for a float32 solve.
    """
    xs = np.asarray(x, dtype=np.float64).ravel()
    us = np.asarray(u, dtype=np.float64).ravel()
    if xs.size != us.size or xs.size <= degree:
        raise ConfigurationError(
            f"fit_polynomial: need matching x and u with more than {degree} samples, got "
            f"{xs.size} and {us.size}"
        )
    coefficients = np.polynomial.polynomial.polyfit(xs, us, degree)
    return PolynomialClosure(jnp.asarray(coefficients, dtype=jnp.result_type(x)))


class LocalClosureNet(eqx.Module):
    """A local closure ``U_k = m_u + s_u MLP((X_{k-r..k+r} - m_x) / s_x)`` shared across k.

    The MLP sees each site's periodic neighbourhood of ``2 r + 1`` values; the fixed
    normalisation constants (data means and standard deviations) are static, not trained.

    Parameters
    ----------
    mlp
        A `hybrax.nn.MLP` with ``in_size = 2 r + 1`` and ``out_size = 1``.
    x_mean, x_std, u_mean, u_std
        Normalisation constants.
    """

    mlp: MLP
    x_mean: float = eqx.field(static=True)
    x_std: float = eqx.field(static=True)
    u_mean: float = eqx.field(static=True)
    u_std: float = eqx.field(static=True)

    @property
    def radius(self) -> int:
        return (self.mlp.in_size - 1) // 2

    @classmethod
    def build(cls, x: Array, u: Array, settings: ClosureSettings, key: PRNGKeyArray):
        """A freshly initialised net normalised with the statistics of ``x`` and ``u``."""
        mlp = MLP(2 * settings.stencil_radius + 1, 1, settings.width, settings.depth,
                  activation=jnp.tanh, key=key)  # fmt: skip
        return cls(mlp, float(jnp.mean(x)), float(jnp.std(x)), float(jnp.mean(u)),
                   float(jnp.std(u)))  # fmt: skip

    def __call__(self, x: Float[Array, " K"]) -> Float[Array, " K"]:
        r = self.radius
        stencil = jnp.stack([jnp.roll(x, -offset) for offset in range(-r, r + 1)], axis=-1)
        h = (stencil - self.x_mean) / self.x_std
        layers = self.mlp.layers
        for layer in layers[:-1]:  # the MLP applied to all K stencils as one matrix product
            h = self.mlp.activation(h @ layer.weight.T + layer.bias)
        out = (h @ layers[-1].weight.T + layers[-1].bias)[..., 0]
        return self.u_mean + self.u_std * out
