"""Exact spectral coarse-graining and upsampling between periodic grids."""

from __future__ import annotations

import math

import jax.numpy as jnp
from jaxtyping import Array, Complex

from hybrax.core import ConfigurationError

from ._grid import Grid

__all__ = ["resample"]


def resample(field_hat: Complex[Array, "..."], source: Grid, target: Grid) -> Complex[Array, "..."]:
    """Move spectral coefficients from ``source`` to ``target``, a grid of the same domain
    with other (even) point counts, axis by axis.

    - **Coarse-graining** (fewer points on an axis) is Fourier truncation: the modes with
      ``|n| < N_target / 2`` are kept and the target's Nyquist mode is set to zero. This is
      the L2 projection onto the strictly resolved modes; for a field without energy
      beyond them it is exact, and values at the coarse points are the fine values there.
    - **Upsampling** (more points) is zero-padding, i.e. exact trigonometric
      interpolation: the new field equals the old one at the old points, also when the old
      field has a Nyquist component (which is split evenly between the ``+N/2`` and
      ``-N/2`` modes of the finer grid, keeping the field real).

    Because `Grid` uses forward-normalised coefficients (Fourier amplitudes), no
    rescaling is involved. Upsampling then coarse-graining back returns the original
    coefficients with the Nyquist modes zeroed.

    Parameters
    ----------
    field_hat
        Coefficients on ``source``: shape ``(..., *source.spectral_shape)``, complex.
    source, target
        Grids with the same number of axes and the same ``domain_length``.

    Returns
    -------
    Coefficients on ``target``, shape ``(..., *target.spectral_shape)``, same dtype.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from hybrax.grids import Grid, resample
    >>> fine, coarse = Grid((128, 128)), Grid((32, 32))
    >>> x, y = fine.coordinates()
    >>> w_hat = fine.to_spectral(jnp.sin(x) * jnp.cos(2 * y))
    >>> w_coarse = coarse.to_physical(resample(w_hat, fine, coarse))
    >>> bool(jnp.allclose(w_coarse, fine.to_physical(w_hat)[::4, ::4], atol=1e-6))
    True
    """
    if not isinstance(source, Grid) or not isinstance(target, Grid):
        raise ConfigurationError("resample needs source and target Grids")
    if source.ndim != target.ndim:
        raise ConfigurationError(
            f"resample: source has {source.ndim} axes but target has {target.ndim}; "
            "grids must have the same dimension"
        )
    same_box = all(
        math.isclose(a, b, rel_tol=1e-12)
        for a, b in zip(source.domain_length, target.domain_length, strict=True)
    )
    if not same_box:
        raise ConfigurationError(
            f"resample: domain lengths differ ({source.domain_length} vs "
            f"{target.domain_length}); resampling only changes the number of points"
        )
    shape = tuple(jnp.shape(field_hat))
    ndim = source.ndim
    if len(shape) < ndim or shape[-ndim:] != source.spectral_shape:
        raise ConfigurationError(
            f"resample: field_hat must end in the source's spectral shape "
            f"{source.spectral_shape}, got {shape}"
        )
    field_hat = jnp.asarray(field_hat)
    if not jnp.issubdtype(field_hat.dtype, jnp.complexfloating):
        raise ConfigurationError(
            f"resample: field_hat must be complex spectral coefficients, got {field_hat.dtype}; "
            "transform a physical field first with source.to_spectral(field)"
        )
    out = field_hat
    for axis in range(ndim):
        position = out.ndim - ndim + axis
        n_source, n_target = source.shape[axis], target.shape[axis]
        if n_source == n_target:
            continue
        if axis == ndim - 1:
            out = _resample_half_axis(out, position, n_source, n_target)
        else:
            out = _resample_full_axis(out, position, n_source, n_target)
    return out


def _take(x: Array, axis: int, start: int, stop: int) -> Array:
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, stop)
    return x[tuple(index)]


def _zeros(x: Array, axis: int, length: int) -> Array:
    shape = list(x.shape)
    shape[axis] = length
    return jnp.zeros(shape, x.dtype)


def _resample_full_axis(x: Array, axis: int, n_source: int, n_target: int) -> Array:
    """An axis in `numpy.fft.fftfreq` order."""
    if n_target < n_source:
        half = n_target // 2
        positive = _take(x, axis, 0, half)
        negative = _take(x, axis, n_source - half + 1, n_source)
        return jnp.concatenate([positive, _zeros(x, axis, 1), negative], axis=axis)
    half = n_source // 2
    positive = _take(x, axis, 0, half)
    nyquist = _take(x, axis, half, half + 1) * 0.5
    negative = _take(x, axis, half + 1, n_source)
    gap = _zeros(x, axis, n_target - n_source - 1)
    return jnp.concatenate([positive, nyquist, gap, nyquist, negative], axis=axis)


def _resample_half_axis(x: Array, axis: int, n_source: int, n_target: int) -> Array:
    """The last (real-FFT) axis: modes ``0 ... N/2``."""
    if n_target < n_source:
        kept = _take(x, axis, 0, n_target // 2)
        return jnp.concatenate([kept, _zeros(x, axis, 1)], axis=axis)
    kept = _take(x, axis, 0, n_source // 2)
    nyquist = _take(x, axis, n_source // 2, n_source // 2 + 1) * 0.5
    gap = _zeros(x, axis, n_target // 2 - n_source // 2)
    return jnp.concatenate([kept, nyquist, gap], axis=axis)
