"""Body forcings for the 2D vorticity equation, as curls of a velocity forcing."""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Complex, DTypeLike, Float

from hybrax.core import ConfigurationError, mul, parameter
from hybrax.grids import Grid

__all__ = ["AbstractForcing", "FieldForcing", "KolmogorovForcing"]


class AbstractForcing(eqx.Module):
    """A forcing of the 2D vorticity equation ``d omega / dt = ... + F(x, t)``.

    ``F`` is the curl ``d f_y / dx - d f_x / dy`` of a body force (acceleration) ``f`` on
    the velocity. Subclasses return it as forward-normalised real-FFT coefficients on the
    model's grid (see `hybrax.grids.Grid`); amplitudes they may want fitted are array
    leaves. Subclass this for time-dependent or custom forcings.
    """

    @abc.abstractmethod
    def vorticity_forcing_hat(
        self, grid: Grid, t: ArrayLike, dtype: DTypeLike
    ) -> Complex[Array, "nx ny_half"]:
        """Spectral vorticity forcing on ``grid`` at time ``t`` (complex, ``dtype``'s
        precision)."""


class KolmogorovForcing(AbstractForcing):
    """Kolmogorov forcing: a body force ``f = amplitude sin(k y) e_x``.

    Its curl, the vorticity forcing, is ``F = -amplitude k cos(k y)`` with
    ``k = 2 pi wavenumber / L_y``. With ``amplitude = 1``, ``wavenumber = 4`` on
    ``[0, 2 pi]^2`` this is the forcing of Kochkov et al. (2021) and Chandler & Kerswell
    (2013), and the same sign convention as jax-cfd's ``ForcedNavierStokes2D``
    (exponax's ``KolmogorovFlowVorticity`` uses the opposite sign of vorticity).

    Parameters
    ----------
    amplitude
        Force amplitude (velocity / time units; differentiable leaf), default 1.
    wavenumber
        Number of forcing periods across the domain in ``y`` (static int), default 4.
    """

    amplitude: Float[Array, ""] = parameter(
        "KolmogorovForcing: amplitude", scalar=True, example="amplitude=1.0"
    )
    wavenumber: int = eqx.field(static=True)

    def __init__(self, amplitude: ArrayLike = 1.0, wavenumber: int = 4):
        if isinstance(wavenumber, bool) or not isinstance(wavenumber, int) or wavenumber < 1:
            raise ConfigurationError(
                f"KolmogorovForcing: wavenumber must be an int >= 1, got {wavenumber!r}"
            )
        self.amplitude = amplitude
        self.wavenumber = wavenumber

    def _check(self, grid: Grid) -> None:
        if grid.ndim != 2 or 3 * self.wavenumber >= grid.shape[1]:
            raise ConfigurationError(
                f"KolmogorovForcing(wavenumber={self.wavenumber}) needs a 2D grid resolving "
                f"it below the 2/3 dealiasing cutoff, got Grid{grid.shape}; use "
                f"more than {3 * self.wavenumber} points in y"
            )

    def vorticity_forcing_hat(self, grid, t, dtype):
        self._check(grid)
        real = jnp.finfo(dtype).dtype
        # cos(k y) = (e^{iky} + e^{-iky}) / 2: the only coefficient is 1/2 at mode (0, n);
        # a constant pattern times the amplitude fuses into the caller's elementwise work
        k = 2 * math.pi * self.wavenumber / grid.domain_length[1]
        pattern = np.zeros(grid.spectral_shape)
        pattern[0, self.wavenumber] = -0.5 * k
        values = self.amplitude.astype(real) * jnp.asarray(pattern, real)
        return jax.lax.complex(values, jnp.zeros_like(values))


class FieldForcing(AbstractForcing):
    """A steady forcing ``F = amplitude * pattern(x)`` given as a vorticity-forcing field.

    Parameters
    ----------
    pattern_hat
        Spectral coefficients of the vorticity forcing pattern (``grid.to_spectral`` of
        the curl of the body force), shape ``grid.spectral_shape``. A differentiable leaf,
        so a learned or inferred forcing can be fitted. Build from a physical field with
        `FieldForcing.from_field`.
    amplitude
        Scalar multiplier (differentiable leaf), default 1.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from hybrax.grids import Grid
    >>> from hybrax.fluids import FieldForcing
    >>> grid = Grid((64, 64))
    >>> x, y = grid.coordinates()
    >>> forcing = FieldForcing.from_field(grid, jnp.sin(2 * x) * jnp.sin(2 * y), amplitude=0.1)
    """

    pattern_hat: Complex[Array, "nx ny_half"] = parameter(
        "FieldForcing: pattern_hat", allow_complex=True
    )
    amplitude: Float[Array, ""] = parameter(
        "FieldForcing: amplitude", scalar=True, example="amplitude=1.0"
    )

    def __init__(self, pattern_hat: ArrayLike, amplitude: ArrayLike = 1.0):
        pattern_hat = jnp.asarray(pattern_hat)
        if not jnp.issubdtype(pattern_hat.dtype, jnp.complexfloating) or pattern_hat.ndim != 2:
            raise ConfigurationError(
                "FieldForcing: pattern_hat must be a 2D complex array of spectral coefficients "
                f"(grid.spectral_shape), got {pattern_hat.dtype}{tuple(pattern_hat.shape)}; "
                "use FieldForcing.from_field(grid, field) for a physical field"
            )
        self.pattern_hat = pattern_hat
        self.amplitude = amplitude

    @classmethod
    def from_field(
        cls, grid: Grid, field: Float[ArrayLike, "nx ny"], amplitude: ArrayLike = 1.0
    ) -> FieldForcing:
        """Build from a physical vorticity-forcing field of shape ``grid.shape``."""
        field = jnp.asarray(field)
        if field.shape != grid.shape:
            raise ConfigurationError(
                f"FieldForcing.from_field: field must have the grid's shape {grid.shape}, got "
                f"{field.shape}"
            )
        return cls(grid.to_spectral(field), amplitude)

    def vorticity_forcing_hat(self, grid, t, dtype):
        if self.pattern_hat.shape != grid.spectral_shape:
            raise ConfigurationError(
                f"FieldForcing: pattern_hat has shape {self.pattern_hat.shape} but the model's "
                f"grid needs {grid.spectral_shape}; resample it with hybrax.grids.resample"
            )
        dtype = jnp.dtype(dtype)
        real = jnp.finfo(dtype).dtype
        complex_dtype = jnp.complex128 if real == np.float64 else jnp.complex64
        return mul(self.amplitude.astype(real), self.pattern_hat.astype(complex_dtype))
