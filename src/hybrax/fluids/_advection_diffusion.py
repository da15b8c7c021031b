"""Linear advection–diffusion of a passive scalar by a uniform flow, in 1D, 2D or 3D."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from hybrax.core import ConfigurationError, parameter
from hybrax.grids import Grid, SpectralState

from ._common import AbstractSpectralFieldDynamics, as_grid

__all__ = ["AdvectionDiffusion"]


class AdvectionDiffusion(AbstractSpectralFieldDynamics):
    """Advection by a uniform velocity plus diffusion of a scalar ``c`` on a periodic box.

    .. math::
        \\partial_t c + \\mathbf a \\cdot \\nabla c = \\kappa \\nabla^2 c

    Entirely linear, so in Fourier space each mode evolves as
    ``exp((-i a.k - kappa |k|^2) t)``: `hybrax.ETDRK4` integrates it exactly at any
    ``dt``, which makes it the cheap stiff reference problem of many ML-for-PDE benchmarks
    (PDEBench's advection and diffusion cases). The linear operator is complex; the
    (odd) advection symbol is set to zero on Nyquist modes so fields stay real.

    **State**: `hybrax.grids.SpectralState` of ``c``.

    Parameters
    ----------
    grid
        A 1–3D `hybrax.grids.Grid` (or an int ``N``: ``N`` points on ``[0, 2 pi)``).
    velocity
        ``a``, one component per axis (length / time; differentiable leaf), default 1 on
        every axis.
    diffusivity
        ``kappa`` >= 0 (length^2 / time; differentiable leaf), default 0.01.

    Examples
    --------
    >>> import jax.numpy as jnp, hybrax
    >>> from hybrax.fluids import AdvectionDiffusion
    >>> from hybrax.grids import Grid
    >>> model = AdvectionDiffusion(Grid((64, 64)), velocity=[1.0, 0.5], diffusivity=0.01)
    >>> x, y = model.grid.coordinates()
    >>> state = model.state_from_field(jnp.exp(jnp.cos(x) + jnp.sin(y)))
    >>> final, _ = hybrax.rollout(hybrax.ETDRK4(model, 0.1), state, 10, save_every=None)
    """

    grid: Grid
    velocity: Float[Array, " ndim"] = parameter(
        "AdvectionDiffusion: velocity", example="velocity=[1.0, 0.5]"
    )
    diffusivity: Float[Array, ""] = parameter(
        "AdvectionDiffusion: diffusivity", nonnegative=True, scalar=True, example="diffusivity=0.01"
    )

    def __init__(
        self,
        grid: Grid | int,
        velocity: ArrayLike | Sequence[float] | None = None,
        diffusivity: ArrayLike = 0.01,
    ):
        self.grid = as_grid(grid, None, "AdvectionDiffusion")
        self.velocity = jnp.ones(self.grid.ndim) if velocity is None else velocity
        self.diffusivity = diffusivity

    def __check_init__(self):
        if jnp.shape(self.velocity) != (self.grid.ndim,):
            raise ConfigurationError(
                f"AdvectionDiffusion: velocity needs one component per grid axis, shape "
                f"({self.grid.ndim},), got {jnp.shape(self.velocity)}"
            )

    def linear_operator(self) -> SpectralState:
        dtype = jnp.result_type(self.velocity, self.diffusivity)
        keep = self.grid._nyquist_mask()
        advection = sum(
            self.velocity[i].astype(dtype) * jnp.asarray(np.where(keep, k, 0.0), dtype)
            for i, k in enumerate(self.grid.numpy_wavenumbers())
        )
        decay = -self.diffusivity.astype(dtype) * self.grid.wavenumber_squared(dtype)
        return SpectralState(jax.lax.complex(decay, -advection), 0.0)

    def nonlinear(self, state: SpectralState, t: ArrayLike) -> SpectralState:
        return SpectralState(jnp.zeros_like(state.field_hat), state.time)

    def max_velocity(self, state: SpectralState) -> Float[Array, ""]:
        """``|a|``, the advection speed (for CFL checks of explicit schemes)."""
        return jnp.sqrt(jnp.sum(self.velocity**2))
