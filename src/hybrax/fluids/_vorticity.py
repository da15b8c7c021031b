"""The curl of a 2D velocity field: the reverse of `velocity_from_vorticity`."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Complex, Float

from hybrax.core import ConfigurationError
from hybrax.grids import Grid

__all__ = ["vorticity_from_velocity"]


def vorticity_from_velocity(
    grid: Grid,
    velocity: Float[Array, "... 2 nx ny"] | Complex[Array, "... 2 nx ny_half"],
) -> Float[Array, "... nx ny"] | Complex[Array, "... nx ny_half"]:
    """The vorticity ``omega = dv/dx - du/dy`` of a velocity ``(u, v)`` on a periodic grid.

    Spectral differentiation (`hybrax.grids.Grid.derivative`). Physical in, physical out:
    a real ``velocity`` of shape ``(..., 2, *grid.shape)`` (length / time) gives the real
    vorticity, shape ``(..., *grid.shape)`` (1 / time); complex spectral coefficients of
    shape ``(..., 2, *grid.spectral_shape)`` (``grid.to_spectral(velocity)``) give the
    spectral vorticity, shape ``(..., *grid.spectral_shape)`` (ready for
    `velocity_from_vorticity` or ``NavierStokes2D.state_from_vorticity``).

    **Round trip.** ``velocity_from_vorticity(grid, vorticity_from_velocity(grid, u_hat))``
    returns ``u`` exactly (to round-off) when ``u`` is divergence-free, has zero mean and
    no Nyquist component (``|n_i| = N_i / 2``; e.g. any band-limited field). Otherwise
    three parts are lost: the mean velocity (the curl of a uniform flow is zero; see
    ``NavierStokes2D(mean_flow=...)``), the divergent (potential) part, and the Nyquist
    modes, which odd-order Fourier derivatives set to zero because their derivative is not
    a real field.

    Parameters
    ----------
    grid
        A 2D `hybrax.grids.Grid`.
    velocity
        ``(u, v)`` stacked on the axis before the grid axes, physical (real) or spectral
        (complex).

    Returns
    -------
    The vorticity, physical or spectral like ``velocity``, without the stacked axis.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from hybrax.grids import Grid
    >>> from hybrax.fluids import vorticity_from_velocity
    >>> grid = Grid((32, 32))  # [0, 2 pi]^2
    >>> x, y = grid.coordinates(jnp.float32)
    >>> u = jnp.stack([jnp.sin(y), jnp.zeros_like(x)])  # shear flow u = sin y
    >>> w = vorticity_from_velocity(grid, u)  # -du/dy = -cos y
    >>> bool(jnp.allclose(w, -jnp.cos(y), atol=1e-5))
    True
    """
    if not isinstance(grid, Grid) or grid.ndim != 2:
        raise ConfigurationError(
            f"vorticity_from_velocity needs a 2D hybrax.grids.Grid, got {_describe_grid(grid)}"
        )
    w_hat = curl_hat(grid, velocity, "vorticity_from_velocity")
    return (
        w_hat
        if jnp.issubdtype(jnp.result_type(velocity), jnp.complexfloating)
        else (grid.to_physical(w_hat))
    )


def curl_hat(grid: Grid, velocity, where: str) -> Array:
    """The spectral vorticity of a physical or spectral velocity (checked; ``where`` names
    the caller in messages)."""
    velocity = jnp.asarray(velocity)
    shape = tuple(jnp.shape(velocity))
    dtype = jnp.result_type(velocity)
    spectral = jnp.issubdtype(dtype, jnp.complexfloating)
    expected = grid.spectral_shape if spectral else grid.shape
    if len(shape) < 3 or shape[-3:] != (2, *expected) or not jnp.issubdtype(dtype, jnp.inexact):
        raise ConfigurationError(
            f"{where}: velocity must be (u, v) stacked, either a real field "
            f"of shape (..., 2, {grid.shape[0]}, {grid.shape[1]}) (physical) or complex "
            f"coefficients of shape (..., 2, {grid.spectral_shape[0]}, "
            f"{grid.spectral_shape[1]}) (spectral, grid.to_spectral(velocity)), got "
            f"{dtype}{shape}"
        )
    velocity_hat = velocity if spectral else grid.to_spectral(velocity)
    u_hat, v_hat = velocity_hat[..., 0, :, :], velocity_hat[..., 1, :, :]
    return grid.derivative(v_hat, 0) - grid.derivative(u_hat, 1)


def _describe_grid(grid) -> str:
    return f"Grid{grid.shape}" if isinstance(grid, Grid) else type(grid).__name__
