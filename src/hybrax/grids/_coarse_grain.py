"""Spectral coarse-graining onto a coarser solver's resolved band."""

from __future__ import annotations

import jax
from jaxtyping import Array, Complex

from ._grid import Grid
from ._resample import resample

__all__ = ["coarse_grain"]


def coarse_grain(
    field_hat: Complex[Array, "*batch nx ny_half"], source: Grid, target: Grid
) -> Complex[Array, "*batch mx my_half"]:
    """Coarse-grain spectral coefficients onto the band a solver on ``target`` resolves.

    Fourier truncation to ``target`` (`resample`, exact: the L2 projection onto the coarse
    modes) followed by ``target``'s 2/3-rule mask, so the result holds exactly the modes
    that a dealiased pseudo-spectral solver on ``target`` evolves nonlinearly
    (``|n_i| < N_i / 3`` on every axis); all other coefficients are zero. This is how a
    fine reference is compared with, or used to train, a coarse model: the coarse model
    cannot represent anything outside that band.

    Coarse-graining in steps (256² -> 128² -> 32²) gives the same result as in one, and a
    field already in ``target``'s band is left unchanged (a projection).

    Parameters
    ----------
    field_hat
        Coefficients on ``source``: shape ``(..., *source.spectral_shape)``, complex.
    source, target
        Grids of the same domain; ``target`` may also be ``source`` (then this is the
        2/3-rule truncation alone).

    Returns
    -------
    Coefficients of shape ``(..., *target.spectral_shape)`` in ``field_hat``'s dtype.

    Examples
    --------
    >>> import jax
    >>> from hybrax.grids import Grid, coarse_grain
    >>> from hybrax.fluids import random_vorticity
    >>> fine, coarse = Grid((64, 64)), Grid((16, 16))
    >>> w_hat = fine.to_spectral(random_vorticity(fine, jax.random.key(0)))
    >>> coarse_grain(w_hat, fine, coarse).shape
    (16, 9)
    """
    out = resample(field_hat, source, target)
    mask = target.dealias_mask(out.real.dtype)
    return jax.lax.complex(mask * out.real, mask * out.imag)
