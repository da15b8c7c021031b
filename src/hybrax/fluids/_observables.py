"""Flow diagnostics from spectral vorticity: velocity, energy, enstrophy, spectra, correlation."""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Complex, Float

from hybrax.core import ConfigurationError, concrete_or_none
from hybrax.grids import Grid

__all__ = [
    "energy_spectrum",
    "enstrophy",
    "kinetic_energy",
    "velocity_from_vorticity",
    "vorticity_correlation",
]


def _check(grid: Grid, vorticity_hat, name: str) -> None:
    if grid.ndim != 2:
        raise ConfigurationError(f"{name} needs a 2D grid, got Grid{grid.shape}")
    shape = tuple(jnp.shape(vorticity_hat))
    if shape[-2:] != grid.spectral_shape or not jnp.issubdtype(
        jnp.result_type(vorticity_hat), jnp.complexfloating
    ):
        raise ConfigurationError(
            f"{name}: vorticity_hat must be complex spectral coefficients ending in "
            f"{grid.spectral_shape}, got {jnp.result_type(vorticity_hat)}{shape}; "
            "use grid.to_spectral(vorticity) or state.field_hat"
        )


def velocity_from_vorticity(
    grid: Grid, vorticity_hat: Complex[Array, "... nx ny_half"]
) -> Float[Array, "... 2 nx ny"]:
    """The velocity ``(u, v) = (d psi/dy, -d psi/dx)`` with ``nabla^2 psi = -omega``.

    Parameters
    ----------
    grid
        A 2D grid.
    vorticity_hat
        Spectral vorticity (e.g. ``state.field_hat``), shape ``(..., *grid.spectral_shape)``.

    Returns
    -------
    ``(u, v)`` on the grid points, stacked on the axis before the grid axes:
    shape ``(..., 2, *grid.shape)``.
    """
    _check(grid, vorticity_hat, "velocity_from_vorticity")
    kx, ky = grid.numpy_wavenumbers()
    inverse = grid.numpy_inverse_wavenumber_squared()
    real = vorticity_hat.real.dtype
    factors = jnp.asarray(np.stack(np.broadcast_arrays(ky * inverse, -kx * inverse)), real)
    w = vorticity_hat[..., None, :, :]
    uv_hat = jax.lax.complex(-factors * w.imag, factors * w.real)  # i * factors * w
    return grid.to_physical(uv_hat)


def kinetic_energy(
    grid: Grid, vorticity_hat: Complex[Array, "... nx ny_half"]
) -> Float[Array, "..."]:
    """Domain-averaged kinetic energy ``mean(u^2 + v^2) / 2`` (length^2 / time^2).

    Computed exactly in spectral space (Parseval: ``sum |omega_k|^2 / |k|^2 / 2``), with
    no FFT.
    """
    _check(grid, vorticity_hat, "kinetic_energy")
    real = vorticity_hat.real.dtype
    weights = jnp.asarray(
        grid.numpy_hermitian_weights() * grid.numpy_inverse_wavenumber_squared(), real
    )
    power = vorticity_hat.real**2 + vorticity_hat.imag**2
    return 0.5 * jnp.sum(weights * power, axis=(-2, -1))


def enstrophy(grid: Grid, vorticity_hat: Complex[Array, "... nx ny_half"]) -> Float[Array, "..."]:
    """Domain-averaged enstrophy ``mean(omega^2) / 2`` (1 / time^2), exactly in spectral
    space."""
    _check(grid, vorticity_hat, "enstrophy")
    weights = grid.hermitian_weights(vorticity_hat.real.dtype)
    power = vorticity_hat.real**2 + vorticity_hat.imag**2
    return 0.5 * jnp.sum(weights * power, axis=(-2, -1))


@functools.lru_cache(maxsize=32)
def _shells(grid: Grid) -> tuple[np.ndarray, int, float]:
    dk = min(2 * np.pi / length for length in grid.domain_length)
    k = np.sqrt(grid.numpy_wavenumber_squared())
    index = np.rint(k / dk).astype(np.int32)
    return index, int(index.max()) + 1, dk


def energy_spectrum(
    grid: Grid, vorticity_hat: Complex[Array, "... nx ny_half"]
) -> tuple[Float[Array, " num_shells"], Float[Array, "... num_shells"]]:
    """The isotropic kinetic-energy spectrum ``E(k)``, binned in shells of width
    ``dk = 2 pi / L``.

    Mode ``k`` goes to shell ``round(|k| / dk)``; ``E`` is normalised so that
    ``sum(E) * dk`` equals `kinetic_energy` exactly (all modes, corners beyond the largest
    full circle included). In the inertial ranges of 2D turbulence ``E ~ k^-3`` (enstrophy
    cascade) and ``k^-5/3`` (inverse energy cascade).

    Returns
    -------
    wavenumbers, spectrum
        Shell centres ``0, dk, 2 dk, ...`` (1 / length) and ``E(k)`` (length^3 / time^2),
        with any leading axes of ``vorticity_hat`` kept.

    Examples
    --------
    >>> import jax
    >>> from hybrax.grids import Grid
    >>> from hybrax.fluids import energy_spectrum, random_vorticity
    >>> grid = Grid((64, 64))
    >>> w_hat = grid.to_spectral(random_vorticity(grid, jax.random.key(0)))
    >>> k, e = energy_spectrum(grid, w_hat)
    >>> int(k[jax.numpy.argmax(e)])
    4
    """
    _check(grid, vorticity_hat, "energy_spectrum")
    index, num_shells, dk = _shells(grid)
    real = vorticity_hat.real.dtype
    weights = grid.numpy_hermitian_weights() * grid.numpy_inverse_wavenumber_squared() * 0.5 / dk
    power = (vorticity_hat.real**2 + vorticity_hat.imag**2) * jnp.asarray(weights, real)
    lead = power.shape[:-2]
    flat = power.reshape(*lead, -1)
    spectrum = jnp.zeros((*lead, num_shells), real).at[..., index.ravel()].add(flat)
    wavenumbers = jnp.asarray(np.arange(num_shells) * dk, real)
    return wavenumbers, spectrum


def vorticity_correlation(
    a: Float[ArrayLike, "... nx ny"], b: Float[ArrayLike, "... nx ny"]
) -> Float[Array, "..."]:
    """Normalised correlation ``sum(a b) / sqrt(sum(a^2) sum(b^2))`` of two fields over
    their last two (grid) axes.

    This is the "vorticity correlation" Kochkov et al. (2021) report to compare a
    simulation with the ground truth (jax-cfd's ``state_correlation``): 1 for identical
    fields, about 0 for independent turbulent fields. Fields on different grids must
    first be brought to one resolution (`hybrax.grids.resample`).
    """
    a, b = jnp.asarray(a), jnp.asarray(b)
    if a.shape != b.shape or a.ndim < 2:
        raise ConfigurationError(
            f"vorticity_correlation needs two fields of the same shape (at least 2D), got "
            f"{a.shape} and {b.shape}; resample one with hybrax.grids.resample"
        )
    if jnp.result_type(a) != jnp.result_type(b):
        raise ConfigurationError(
            f"vorticity_correlation: dtypes differ ({a.dtype} vs {b.dtype}); cast one"
        )
    axes = (-2, -1)
    dot = jnp.sum(a * b, axis=axes)
    norms = jnp.sum(a * a, axis=axes) * jnp.sum(b * b, axis=axes)
    # a field that is zero everywhere has no direction to correlate with: 0 / 0. (A
    # non-finite field, a forecast that blew up, keeps its NaN: `decorrelation_time`
    # reads that as decorrelated.)
    message = (
        "vorticity_correlation: a field is zero everywhere, so its correlation is "
        "undefined; compare fields that carry a flow"
    )
    flat = jnp.any(norms == 0)
    known = concrete_or_none(flat)
    if known is not None and bool(known):
        raise ConfigurationError(message)
    if known is None:
        dot = eqx.error_if(dot, flat, message)
    return dot / jnp.sqrt(norms)
