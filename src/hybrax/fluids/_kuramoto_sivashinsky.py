"""The Kuramoto–Sivashinsky equation in 1D and 2D, pseudo-spectral."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, DTypeLike, Float, PRNGKeyArray

from hybrax.core import check_dtype, check_parameter
from hybrax.grids import Grid, SpectralState

from ._common import (
    AbstractSpectralFieldDynamics,
    as_grid,
    dealiased_wavenumbers,
    quadratic_flux_divergence,
)

_FFT_DTYPES = (np.float32, np.float64)

__all__ = ["KuramotoSivashinsky", "KuramotoSivashinsky2D"]


def _ks_linear(grid: Grid, dtype) -> Array:
    k2 = grid.numpy_wavenumber_squared()
    return jnp.asarray(k2 - k2**2, dtype)


class KuramotoSivashinsky(AbstractSpectralFieldDynamics):
    """The 1D Kuramoto–Sivashinsky equation on a periodic interval of length ``L``.

    .. math::
        \\partial_t u + u \\partial_x u + \\partial_x^2 u + \\partial_x^4 u = 0

    Long waves (``|k| < 1``) grow, short ones decay, and the nonlinearity transfers energy
    between them: for ``L`` beyond about 13 the dynamics is spatio-temporally chaotic. At
    ``L = 22`` (the standard small chaotic case, Cvitanović et al. 2010) 64 points resolve
    it and the largest Lyapunov exponent is about 0.043 per time unit. Time steps of
    0.25 with `hybrax.ETDRK4` are customary (Kassam & Trefethen 2005).

    **State**: `hybrax.grids.SpectralState` with the real-FFT coefficients of ``u``.
    Linear part ``L = k^2 - k^4``; the flux ``(u^2 / 2)_x`` is dealiased by the 2/3 rule
    (two FFTs per evaluation). The mean of ``u`` is conserved.

    Parameters
    ----------
    grid
        A 1D `hybrax.grids.Grid` (e.g. ``Grid(64, 22.0)``) or an int ``N`` for ``N``
        points on ``L = 22``.

    Examples
    --------
    >>> import hybrax
    >>> from hybrax.fluids import KuramotoSivashinsky
    >>> model = KuramotoSivashinsky(64)
    >>> final, u = hybrax.rollout(hybrax.ETDRK4(model, 0.25), model.initial_state(), 400,
    ...     save_every=4, observe=model.field)
    >>> u.shape
    (100, 64)
    """

    grid: Grid

    def __init__(self, grid: Grid | int = 64):
        self.grid = as_grid(grid, 1, "KuramotoSivashinsky", 22.0)

    def linear_operator(self) -> SpectralState:
        return SpectralState(_ks_linear(self.grid, jnp.result_type(float)), 0.0)

    def nonlinear(self, state: SpectralState, t: ArrayLike) -> SpectralState:
        return SpectralState(quadratic_flux_divergence(self.grid, state.field_hat), state.time)

    def max_velocity(self, state: SpectralState) -> Float[Array, ""]:
        """``max |u|`` on the grid (for CFL checks)."""
        return jnp.max(jnp.abs(self.field(state)))

    def initial_state(
        self,
        key: PRNGKeyArray | None = None,
        *,
        amplitude: float = 1.0,
        dtype: DTypeLike = jnp.float32,
    ) -> SpectralState:
        """A smooth start: ``amplitude * cos(2 pi x / L) (1 + sin(2 pi x / L))`` (Kassam &
        Trefethen's initial condition scaled to the domain), plus, with ``key``, a random
        perturbation of the unstable modes (``|k| < 1``) of ``amplitude / 10``. Spin up
        for about 100 time units before collecting statistics."""
        dtype = check_dtype(dtype, f"{type(self).__name__}.initial_state", allowed=_FFT_DTYPES)
        amplitude = check_parameter(
            amplitude, "amplitude", scalar=True, example="amplitude=1.0"
        ).astype(dtype)
        (x,) = self.grid.coordinates(dtype)
        phase = 2 * np.pi / self.grid.domain_length[0] * x
        u = amplitude * jnp.cos(phase) * (1 + jnp.sin(phase))
        if key is not None:
            noise_hat = self.grid.to_spectral(jax.random.normal(key, self.grid.shape, dtype))
            (k,) = self.grid.numpy_wavenumbers()
            unstable = jnp.asarray((np.abs(k) < 1) & (k != 0), dtype)
            u = u + 0.1 * amplitude * self.grid.to_physical(
                jax.lax.complex(unstable * noise_hat.real, unstable * noise_hat.imag)
            )
        return self.state_from_field(u)


class KuramotoSivashinsky2D(AbstractSpectralFieldDynamics):
    """The 2D Kuramoto–Sivashinsky equation (gradient form) on a periodic box.

    .. math::
        \\partial_t u + \\tfrac12 |\\nabla u|^2 + \\nabla^2 u + \\nabla^4 u = 0

    The 2D analogue of `KuramotoSivashinsky` for the gradient field (Kalogirou, Keaveny &
    Papageorgiou 2015); chaotic for boxes of a few times ``2 pi * sqrt(2)``. The mean of
    ``u`` drifts (the nonlinearity has a nonzero mean) while its fluctuations stay
    bounded. Use `hybrax.ETDRK4`, ``dt`` around 0.1.

    **State**: `hybrax.grids.SpectralState` of ``u``. Linear part ``|k|^2 - |k|^4``;
    ``|grad u|^2`` is dealiased by the 2/3 rule (one batched pair of inverse FFTs and one
    forward FFT per evaluation).

    Parameters
    ----------
    grid
        A 2D `hybrax.grids.Grid` or an int ``N`` for ``N x N`` points on ``[0, 32]^2``.

    Examples
    --------
    >>> import jax, hybrax
    >>> from hybrax.fluids import KuramotoSivashinsky2D
    >>> model = KuramotoSivashinsky2D(32)
    >>> state = model.initial_state(jax.random.key(0))
    >>> final, _ = hybrax.rollout(hybrax.ETDRK4(model, 0.1), state, 50, save_every=None)
    """

    grid: Grid

    def __init__(self, grid: Grid | int = 64):
        self.grid = as_grid(grid, 2, "KuramotoSivashinsky2D", 32.0)

    def linear_operator(self) -> SpectralState:
        return SpectralState(_ks_linear(self.grid, jnp.result_type(float)), 0.0)

    def nonlinear(self, state: SpectralState, t: ArrayLike) -> SpectralState:
        u_hat = state.field_hat
        mask, gradient = dealiased_wavenumbers(self.grid, np.dtype(u_hat.real.dtype))
        grad_hat = jax.lax.complex(-gradient * u_hat.imag, gradient * u_hat.real)  # i k u
        ux, uy = self.grid.irfft(grad_hat, norm="forward")
        square_hat = self.grid.rfft(ux * ux + uy * uy, norm="forward")
        out = jax.lax.complex(-0.5 * mask * square_hat.real, -0.5 * mask * square_hat.imag)
        return SpectralState(out, state.time)

    def max_velocity(self, state: SpectralState) -> Float[Array, ""]:
        """``max |grad u|`` (the advection speed of the gradient field, for CFL checks)."""
        gradient = self.grid.to_physical(self.grid.gradient(state.field_hat))
        return jnp.sqrt(jnp.max(jnp.sum(gradient**2, axis=0)))

    def initial_state(
        self, key: PRNGKeyArray, *, amplitude: float = 0.1, dtype: DTypeLike = jnp.float32
    ) -> SpectralState:
        """Small random noise (standard deviation ``amplitude``) on the dealiased modes."""
        dtype = check_dtype(dtype, "KuramotoSivashinsky2D.initial_state", allowed=_FFT_DTYPES)
        amplitude = check_parameter(
            amplitude, "amplitude", nonnegative=True, scalar=True, example="amplitude=0.1"
        ).astype(dtype)
        noise = amplitude * jax.random.normal(key, self.grid.shape, dtype)
        return SpectralState(self.grid.dealias(self.grid.to_spectral(noise)))
