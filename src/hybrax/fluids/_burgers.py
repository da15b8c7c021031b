"""The viscous Burgers equation in 1D, pseudo-spectral."""

from __future__ import annotations

import math

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from hybrax.core import parameter
from hybrax.grids import Grid, SpectralState

from ._common import AbstractSpectralFieldDynamics, as_grid, quadratic_flux_divergence

__all__ = ["Burgers"]


class Burgers(AbstractSpectralFieldDynamics):
    """The viscous Burgers equation on a periodic interval.

    .. math::
        \\partial_t u + \\partial_x (u^2 / 2) = \\nu \\partial_x^2 u

    **State**: `hybrax.grids.SpectralState` with the forward-normalised real-FFT
    coefficients of ``u`` (shape ``(N // 2 + 1,)``); `state_from_field` / `field` convert.
    Linear part ``L = -nu k^2``; the flux is evaluated pseudo-spectrally with the 2/3
    rule (two FFTs per evaluation). Smooth data steepen into viscous shocks of width about
    ``nu / |jump|``: resolve them (``dx`` below that width) or the solution oscillates.
    The mean of ``u`` is conserved. Via the Cole–Hopf transform the solution is known in
    closed form, which the tests use.

    Parameters
    ----------
    grid
        A 1D `hybrax.grids.Grid` or an int ``N`` (``N`` points on ``[0, 2 pi)``).
    viscosity
        ``nu`` > 0 (length^2 / time; differentiable leaf), default 0.01.

    Examples
    --------
    >>> import jax.numpy as jnp, hybrax
    >>> from hybrax.fluids import Burgers
    >>> model = Burgers(256, viscosity=0.02)
    >>> (x,) = model.grid.coordinates()
    >>> state = model.state_from_field(jnp.sin(x))
    >>> final, _ = hybrax.rollout(hybrax.ETDRK4(model, 0.01), state, 100, save_every=None)
    >>> model.field(final).shape
    (256,)
    """

    grid: Grid
    viscosity: Float[Array, ""] = parameter(
        "Burgers: viscosity", nonnegative=True, scalar=True, example="viscosity=0.01"
    )

    def __init__(self, grid: Grid | int, viscosity: ArrayLike = 0.01):
        self.grid = as_grid(grid, 1, "Burgers", 2 * math.pi)
        self.viscosity = viscosity

    def linear_operator(self) -> SpectralState:
        dtype = jnp.result_type(self.viscosity)
        return SpectralState(-self.viscosity * self.grid.wavenumber_squared(dtype), 0.0)

    def nonlinear(self, state: SpectralState, t: ArrayLike) -> SpectralState:
        return SpectralState(quadratic_flux_divergence(self.grid, state.field_hat), state.time)

    def max_velocity(self, state: SpectralState) -> Float[Array, ""]:
        """``max |u|`` on the grid (the advection speed, for CFL checks)."""
        return jnp.max(jnp.abs(self.field(state)))
