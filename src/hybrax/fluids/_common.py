"""Helpers shared by the fluid models: parameters, grids, state checks."""

import abc
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from equinox import AbstractVar

from hybrax.core import AbstractSemilinearDynamics, ConfigurationError, concrete_or_none
from hybrax.grids import Grid, SpectralState


def as_grid(grid, ndim: int | None, model: str, default_length: float = 2 * math.pi) -> Grid:
    """``grid`` as a `Grid` with ``ndim`` axes (an int ``N`` means ``N`` points per axis
    on ``[0, default_length]``)."""
    if isinstance(grid, (int,)) and not isinstance(grid, bool):
        grid = Grid((grid,) * (ndim or 1), default_length)
    if not isinstance(grid, Grid):
        raise ConfigurationError(
            f"{model}: grid must be a hybrax.grids.Grid or an int number of points, got "
            f"{type(grid).__name__}"
        )
    if ndim is not None and grid.ndim != ndim:
        raise ConfigurationError(
            f"{model} needs a {ndim}D grid, got Grid{grid.shape} ({grid.ndim}D)"
        )
    return grid


def check_finite_field(value, name: str, owner: str) -> None:
    """Raise `ConfigurationError` when a concrete initial field holds NaN or inf (a state
    built from it would be non-finite from the start); traced values pass (the rollout's
    finite check sees them)."""
    known = concrete_or_none(value)
    if known is not None and not np.all(np.isfinite(known)):
        bad = int(np.sum(~np.isfinite(known)))
        raise ConfigurationError(
            f"{owner}: {name} must be finite, got NaN or inf at {bad} of {known.size} entries"
        )


def check_spectral_state(state, grid: Grid, model: str) -> None:
    """Trace-time check that ``state`` is a `SpectralState` on ``grid`` with matching
    precisions."""
    if not isinstance(state, SpectralState):
        raise ConfigurationError(
            f"{model} expects a hybrax.grids.SpectralState, got {type(state).__name__}; "
            f"build one with model.initial_state() or SpectralState(grid.to_spectral(field))"
        )
    grid.check_spectral("state.field_hat", state.field_hat, model=model)
    real = jnp.finfo(jnp.result_type(state.field_hat)).dtype
    time_dtype = jnp.result_type(state.time)
    if jnp.shape(state.time) != () or time_dtype != real:
        raise ConfigurationError(
            f"{model}: state.time must be a scalar of dtype {real} to match field_hat "
            f"({jnp.result_type(state.field_hat)}), got {time_dtype}{tuple(jnp.shape(state.time))}"
        )


def advective_courant_number(grid: Grid, speed: jax.Array, dt) -> jax.Array:
    """``dt * speed / min(grid.spacing)``, in the speed's dtype."""
    return jnp.asarray(dt).astype(speed.dtype) * speed / min(grid.spacing)


ADVECTIVE_LIMITS = """The advective Courant number ``dt * max_velocity(state) / min(dx)``. For the
        pseudo-spectral models here `hybrax.ETDRK4` and `hybrax.CrankNicolsonRK4` are
        stable up to about 1; 0.5 is the customary safe choice (and what
        `hybrax.max_time_step(model, state, 0.5)` gives). It is read by
        `hybrax.check_time_step`; call that on the initial state (speeds can grow)."""


class AbstractSpectralFieldDynamics(AbstractSemilinearDynamics):
    """A semilinear model whose state is one scalar field ``u`` on ``grid`` (a
    `SpectralState`): conversions and the state check."""

    grid: AbstractVar[Grid]

    def state_from_field(self, field, time=0.0) -> SpectralState:
        """The state holding the physical field ``u`` (shape ``grid.shape``) at ``time``."""
        field = jnp.asarray(field)
        if field.shape != self.grid.shape:
            raise ConfigurationError(
                f"{type(self).__name__}: field must have the grid's shape {self.grid.shape}, "
                f"got {field.shape}"
            )
        if not jnp.issubdtype(field.dtype, jnp.floating):
            raise ConfigurationError(
                f"{type(self).__name__}: field must be real floating (float32/float64), got "
                f"{field.dtype}"
            )
        check_finite_field(field, "field", type(self).__name__)
        return SpectralState(self.grid.to_spectral(field), time)

    @abc.abstractmethod
    def max_velocity(self, state: SpectralState) -> jax.Array:
        """The largest advecting speed on the grid (for CFL checks)."""

    def courant_number(self, state: SpectralState, dt) -> jax.Array:
        return advective_courant_number(self.grid, self.max_velocity(state), dt)

    courant_number.__doc__ = ADVECTIVE_LIMITS

    def field(self, state: SpectralState):
        """The physical field ``u`` on the grid points, shape ``grid.shape``."""
        return self.grid.to_physical(state.field_hat)

    def check_state(self, state: SpectralState) -> None:
        check_spectral_state(state, self.grid, type(self).__name__)


def quadratic_flux_divergence(grid: Grid, u_hat, coefficient: float = -0.5):
    """``coefficient * d/dx (u^2)`` in spectral space for a 1D field, dealiased by the 2/3
    rule on input and output (2 FFTs)."""
    mask, (ik,) = dealiased_wavenumbers(grid, np.dtype(u_hat.real.dtype))
    u = jnp.fft.irfft(_mul_real(mask, u_hat), n=grid.shape[0], norm="forward")
    square_hat = jnp.fft.rfft(u * u, norm="forward")
    scaled = coefficient * ik
    return jax.lax.complex(-scaled * square_hat.imag, scaled * square_hat.real)


def _mul_real(c, x):
    return jax.lax.complex(c * x.real, c * x.imag)


@functools.lru_cache(maxsize=32)
def dealiased_wavenumbers(grid: Grid, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Host-side tables in ``dtype``: the 2/3-rule mask (shape ``grid.spectral_shape``) and
    the masked wavenumbers ``k_i * mask`` stacked over the axes (shape
    ``(grid.ndim, *grid.spectral_shape)``)."""
    mask = grid.numpy_dealias_mask()
    k = np.stack([np.broadcast_to(k, grid.spectral_shape) * mask for k in grid.numpy_wavenumbers()])
    return mask.astype(dtype), k.astype(dtype)
