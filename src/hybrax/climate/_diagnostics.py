"""Spectral diagnostics shared by the climate models (isotropic spectra, Parseval sums)."""

from __future__ import annotations

import functools
import math

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from hybrax.core import ConfigurationError
from hybrax.grids import Grid

__all__ = ["isotropic_spectrum"]


@functools.lru_cache(maxsize=32)
def _shells(grid: Grid) -> tuple[np.ndarray, np.ndarray, float]:
    """Shell index of every real-FFT mode, shell-centre wavenumbers, shell width."""
    if grid.ndim != 2:
        raise ConfigurationError(f"isotropic spectra need a 2D grid, got Grid{grid.shape}")
    k = [np.broadcast_to(kk, grid.spectral_shape) for kk in grid.numpy_wavenumbers()]
    kappa = np.sqrt(k[0] ** 2 + k[1] ** 2)
    width = min(2 * math.pi / length for length in grid.domain_length)
    index = np.floor(kappa / width + 0.5).astype(np.int64)
    num = int(index.max()) + 1
    return index.ravel(), np.arange(num) * width, width


def isotropic_spectrum(
    grid: Grid, density: Float[Array, "... ny nk"], *, truncate: bool = True
) -> tuple[Float[Array, " m"], Float[Array, "... m"]]:
    """Sum a per-mode spectral density over rings of constant ``|k|``.

    ``density`` holds, for each real-FFT coefficient (``grid.spectral_shape``; leading
    axes are kept), that mode's contribution to a domain mean, *counting the implied
    conjugate modes* (i.e. already multiplied by `Grid.hermitian_weights`). Shell ``j``
    collects the modes with ``|k|`` nearest to ``j dk``, ``dk = 2 pi / max(L)``; the result
    is divided by ``dk``, so that ``sum(spectrum) * dk`` equals ``sum(density)`` (Parseval:
    the domain mean) when ``truncate=False``.

    Parameters
    ----------
    grid
        A 2D grid.
    density
        Per-mode contributions, shape ``(..., *grid.spectral_shape)``.
    truncate
        Keep only shells up to the smallest Nyquist wavenumber (the isotropically resolved
        range, as pyqg's spectra do); ``False`` keeps the corners too.

    Returns
    -------
    wavenumbers, spectrum
        Shell-centre wavenumbers (1/length) and the spectrum (density units x length).
    """
    index, centres, width = _shells(grid)
    density = jnp.asarray(density)
    lead = density.shape[: density.ndim - 2]
    flat = density.reshape(*lead, -1)
    num = centres.size
    spectrum = jnp.zeros((*lead, num), density.dtype).at[..., index].add(flat) / width
    if truncate:
        nyquist = min(
            math.pi * n / length for n, length in zip(grid.shape, grid.domain_length, strict=True)
        )
        keep = int(np.sum(centres <= nyquist))
        centres, spectrum = centres[:keep], spectrum[..., :keep]
    return jnp.asarray(centres, density.dtype), spectrum
