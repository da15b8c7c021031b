"""Initial vorticity fields: band-limited random turbulence and the Taylor–Green vortex."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, DTypeLike, Float, PRNGKeyArray

from hybrax.core import ConfigurationError, check_dtype, check_float, check_parameter
from hybrax.grids import Grid

_FFT_DTYPES = (np.float32, np.float64)

__all__ = ["random_vorticity", "taylor_green_vorticity"]


def random_vorticity(
    grid: Grid,
    key: PRNGKeyArray,
    *,
    peak_wavenumber: float = 4.0,
    max_velocity: ArrayLike = 7.0,
    dtype: DTypeLike = jnp.float32,
) -> Float[Array, "nx ny"]:
    """A random, band-limited 2D vorticity field with its energy near ``peak_wavenumber``.

    White noise is filtered in Fourier space so that the velocity amplitude follows
    jax-cfd's ``filtered_velocity_field`` spectrum (a log-normal in ``|k|`` with mode
    ``peak_wavenumber`` and log-variance 1/4, divided by ``|k|``), i.e. the vorticity
    amplitude is that log-normal itself. Modes outside the 2/3 dealiasing band and the mean
    are removed, and the field is scaled so that the largest flow speed on the grid is
    ``max_velocity``.

    Parameters
    ----------
    grid
        A 2D grid.
    key
        PRNG key.
    peak_wavenumber
        Angular wavenumber (1 / length) where the energy spectrum peaks; on ``[0, 2 pi]^2``
        it is the mode number. Default 4, as in Kochkov et al. (2021).
    max_velocity
        Largest speed of the resulting flow (length / time units), default 7.
    dtype
        Real dtype of the result (default float32).

    Returns
    -------
    Vorticity on the grid points, shape ``grid.shape``.

    Examples
    --------
    >>> import jax
    >>> from hybrax.grids import Grid
    >>> from hybrax.fluids import random_vorticity
    >>> w = random_vorticity(Grid((64, 64)), jax.random.key(0), peak_wavenumber=4.0)
    >>> w.shape
    (64, 64)
    """
    if grid.ndim != 2:
        raise ConfigurationError(f"random_vorticity needs a 2D grid, got Grid{grid.shape}")
    peak_wavenumber = check_float(peak_wavenumber, "peak_wavenumber", positive=True)
    max_velocity = check_parameter(
        max_velocity, "max_velocity", positive=True, scalar=True, example="max_velocity=7.0"
    )
    dtype = check_dtype(dtype, "random_vorticity", allowed=_FFT_DTYPES)
    kx, ky = (np.broadcast_to(k, grid.spectral_shape) for k in grid.numpy_wavenumbers())
    k = np.sqrt(kx**2 + ky**2)
    variance = 0.25
    mean = math.log(peak_wavenumber) + variance
    safe_k = np.where(k > 0, k, 1.0)
    log_normal = np.exp(-((mean - np.log(safe_k)) ** 2) / (2 * variance) - np.log(safe_k))
    amplitude = np.where(k > 0, log_normal, 0.0) * grid.numpy_dealias_mask()
    noise = grid.to_spectral(jax.random.normal(key, grid.shape, dtype))
    w_hat = noise * jnp.asarray(amplitude, dtype).astype(noise.dtype)
    from ._observables import velocity_from_vorticity

    u, v = velocity_from_vorticity(grid, w_hat)
    speed = jnp.sqrt(jnp.max(u * u + v * v))
    scale = jnp.asarray(max_velocity).astype(dtype) / speed
    return grid.to_physical(w_hat) * scale


def taylor_green_vorticity(
    grid: Grid,
    *,
    wavenumber: int = 1,
    amplitude: ArrayLike = 1.0,
    dtype: DTypeLike = jnp.float32,
) -> Float[Array, "nx ny"]:
    """The Taylor–Green vortex ``omega = 2 k U sin(k x) sin(k y)``.

    It is the vorticity of ``u = U sin(kx) cos(ky), v = -U cos(kx) sin(ky)``, a steady
    solution of the Euler equations (the advection term vanishes identically), so under
    `NavierStokes2D` it decays exactly as ``exp(-(2 nu k^2 + alpha) t)``.

    Parameters
    ----------
    grid
        A 2D grid with equal domain lengths in x and y.
    wavenumber
        Number of periods across the domain (static int), ``k = 2 pi wavenumber / L``.
    amplitude
        Velocity amplitude ``U``.
    dtype
        Real dtype of the result.
    """
    if grid.ndim != 2 or not math.isclose(*grid.domain_length):
        raise ConfigurationError(
            f"taylor_green_vorticity needs a 2D grid with a square domain, got lengths "
            f"{grid.domain_length}"
        )
    if isinstance(wavenumber, bool) or not isinstance(wavenumber, int) or wavenumber < 1:
        raise ConfigurationError(f"wavenumber must be an int >= 1, got {wavenumber!r}")
    dtype = check_dtype(dtype, "taylor_green_vorticity")
    amplitude = check_parameter(amplitude, "amplitude", example="amplitude=1.0")
    x, y = grid.coordinates(dtype)
    k = 2 * math.pi * wavenumber / grid.domain_length[0]
    amplitude = jnp.asarray(amplitude).astype(x.dtype)
    return 2 * k * amplitude * jnp.sin(k * x) * jnp.sin(k * y)
