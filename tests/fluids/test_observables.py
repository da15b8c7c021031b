"""Velocity, energy, enstrophy, energy spectrum and vorticity correlation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybrax.errors import ConfigurationError
from hybrax.fluids import (
    energy_spectrum,
    enstrophy,
    kinetic_energy,
    random_vorticity,
    taylor_green_vorticity,
    velocity_from_vorticity,
    vorticity_correlation,
)
from hybrax.grids import Grid


def test_velocity_of_taylor_green_and_incompressibility():
    grid = Grid((32, 32), 4.0)
    w = taylor_green_vorticity(grid, wavenumber=2, amplitude=1.5, dtype=jnp.float64)
    u, v = velocity_from_vorticity(grid, grid.to_spectral(w))
    x, y = grid.coordinates(jnp.float64)
    k = 2 * np.pi * 2 / 4.0
    np.testing.assert_allclose(u, 1.5 * jnp.sin(k * x) * jnp.cos(k * y), atol=1e-13)
    np.testing.assert_allclose(v, -1.5 * jnp.cos(k * x) * jnp.sin(k * y), atol=1e-13)
    # a random field: divergence-free, and its curl gives back the vorticity
    w = random_vorticity(grid, jax.random.key(0), dtype=jnp.float64)
    u_hat, v_hat = (grid.to_spectral(c) for c in velocity_from_vorticity(grid, grid.to_spectral(w)))
    divergence = grid.derivative(u_hat, 0) + grid.derivative(v_hat, 1)
    curl = grid.derivative(v_hat, 0) - grid.derivative(u_hat, 1)
    assert jnp.max(jnp.abs(divergence)) < 1e-12
    np.testing.assert_allclose(grid.to_physical(curl), w, atol=1e-12)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_energy_enstrophy_and_spectrum_agree_with_physical_space(dtype):
    grid = Grid((64, 64))
    w = random_vorticity(grid, jax.random.key(1), peak_wavenumber=5.0, dtype=dtype)
    w_hat = grid.to_spectral(w)
    u, v = velocity_from_vorticity(grid, w_hat)
    rtol = 1e-5 if dtype == jnp.float32 else 1e-12
    energy = kinetic_energy(grid, w_hat)
    assert energy.dtype == dtype
    np.testing.assert_allclose(energy, 0.5 * jnp.mean(u**2 + v**2), rtol=rtol)
    np.testing.assert_allclose(enstrophy(grid, w_hat), 0.5 * jnp.mean(w**2), rtol=rtol)
    k, spectrum = energy_spectrum(grid, w_hat)
    np.testing.assert_allclose(jnp.sum(spectrum) * (k[1] - k[0]), energy, rtol=rtol)
    assert abs(float(k[jnp.argmax(spectrum)]) - 5) <= 2  # peaks near the requested wavenumber


def test_spectrum_of_single_modes_and_batches():
    grid = Grid((32, 32), 2 * np.pi)
    x, y = grid.coordinates(jnp.float64)
    # psi = cos(3x + 4y) has |k| = 5: omega = 25 psi, energy 25 / 4 all in shell 5
    w_hat = grid.to_spectral(25 * jnp.cos(3 * x + 4 * y))
    k, spectrum = energy_spectrum(grid, w_hat)
    np.testing.assert_allclose(spectrum[5], 25 / 4, rtol=1e-12)
    assert jnp.sum(spectrum) == pytest.approx(25 / 4, rel=1e-12)
    batch = jnp.stack([w_hat, 2 * w_hat])
    _, spectra = energy_spectrum(grid, batch)
    assert spectra.shape == (2, k.size)
    np.testing.assert_allclose(spectra[1], 4 * spectrum, rtol=1e-12)
    np.testing.assert_allclose(kinetic_energy(grid, batch), [25 / 4, 25.0], rtol=1e-12)


def test_vorticity_correlation():
    grid = Grid((32, 32))
    a = random_vorticity(grid, jax.random.key(2), dtype=jnp.float64)
    b = random_vorticity(grid, jax.random.key(3), dtype=jnp.float64)
    np.testing.assert_allclose(vorticity_correlation(a, a), 1.0, rtol=1e-14)
    np.testing.assert_allclose(vorticity_correlation(a, -3 * a), -1.0, rtol=1e-14)
    assert abs(float(vorticity_correlation(a, b))) < 0.3
    batch = vorticity_correlation(jnp.stack([a, b]), jnp.stack([a, a]))
    np.testing.assert_allclose(batch[0], 1.0, rtol=1e-14)
    grad = jax.grad(lambda z: vorticity_correlation(z, b))(a)
    assert grad.shape == a.shape and jnp.all(jnp.isfinite(grad))


def test_bad_input(wrong_type):
    grid = Grid((32, 32))
    with wrong_type("vorticity_hat", ConfigurationError, "complex spectral coeff"):
        kinetic_energy(grid, jnp.zeros((32, 32)))
    with wrong_type("vorticity_hat", ConfigurationError, "2D grid"):
        enstrophy(Grid((32,)), jnp.zeros(17, jnp.complex64))
    with wrong_type("b", ConfigurationError, "same shape"):
        vorticity_correlation(jnp.zeros((32, 32)), jnp.zeros((16, 16)))
    with pytest.raises(ConfigurationError, match="dtypes differ"):
        vorticity_correlation(jnp.zeros((4, 4), jnp.float32), jnp.zeros((4, 4), jnp.float64))
