"""The spectral state record shared by the spectral solvers."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Complex, Float

from hybrax.core import ConfigurationError

__all__ = ["SpectralState"]


class SpectralState(eqx.Module):
    """State of a spectral solver: real-FFT coefficients of the field and the model time.

    Parameters
    ----------
    field_hat
        Forward-normalised real-FFT coefficients on a `Grid` (see `Grid.to_spectral`),
        shape ``grid.spectral_shape`` (with leading axes for multi-layer models), complex64
        or complex128.
    time
        Model time (scalar, the real dtype of ``field_hat``); defaults to 0.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from hybrax.grids import Grid, SpectralState
    >>> grid = Grid((32, 32))
    >>> x, y = grid.coordinates()
    >>> state = SpectralState(grid.to_spectral(jnp.sin(x)))
    >>> state.field_hat.shape, state.time.dtype
    ((32, 17), dtype('float32'))
    """

    field_hat: Complex[Array, "..."]
    time: Float[Array, ""]

    def __init__(self, field_hat: ArrayLike, time: ArrayLike | None = None):
        try:
            self.field_hat = jnp.asarray(field_hat)
        except TypeError as error:
            raise ConfigurationError(
                f"SpectralState: field_hat must be an array of spectral coefficients, got "
                f"{type(field_hat).__name__}; build it with grid.to_spectral(field)"
            ) from error
        dtype = self.field_hat.dtype
        if jnp.issubdtype(dtype, jnp.complexfloating):
            dtype = jnp.finfo(dtype).dtype
        elif not jnp.issubdtype(dtype, jnp.floating):
            dtype = None
        self.time = jnp.asarray(0 if time is None else time, dtype=dtype)
