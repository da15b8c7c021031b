"""Kolmogorov and field forcings of the vorticity equation."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.errors import ConfigurationError
from hybrax.fluids import FieldForcing, KolmogorovForcing, NavierStokes2D
from hybrax.grids import Grid, SpectralState


def test_kolmogorov_forcing_is_the_curl_of_sin_ky():
    grid = Grid((32, 32), (2 * np.pi, 4.0))
    _x, y = grid.coordinates(jnp.float64)
    forcing = KolmogorovForcing(amplitude=1.5, wavenumber=3)
    k = 2 * np.pi * 3 / 4.0
    # f = (1.5 sin(k y), 0): curl = -d f_x / dy = -1.5 k cos(k y)
    expected = grid.to_spectral(-1.5 * k * jnp.cos(k * y))
    np.testing.assert_allclose(
        forcing.vorticity_forcing_hat(grid, 0.0, jnp.float64), expected, atol=1e-13
    )
    f32 = forcing.vorticity_forcing_hat(grid, 0.0, jnp.complex64)
    assert f32.dtype == jnp.complex64


def test_field_forcing_matches_kolmogorov_and_is_differentiable():
    grid = Grid((32, 32))
    _x, y = grid.coordinates(jnp.float64)
    field = FieldForcing.from_field(grid, -4 * jnp.cos(4 * y), amplitude=2.0)
    kolmogorov = KolmogorovForcing(amplitude=2.0)
    for t in (0.0, 1.0):
        np.testing.assert_allclose(
            field.vorticity_forcing_hat(grid, t, jnp.float64),
            kolmogorov.vorticity_forcing_hat(grid, t, jnp.float64),
            atol=1e-13,
        )
    # a model driven by it, differentiated with respect to the pattern
    model = NavierStokes2D(grid, viscosity=0.05, forcing=field)
    state = SpectralState(jnp.zeros(grid.spectral_shape, jnp.complex128))

    def energy(forcing):
        m = eqx.tree_at(lambda m: m.forcing, model, forcing)
        out, _ = hybrax.rollout(hybrax.ETDRK4(m, 0.1), state, 5, save_every=None)
        return hybrax.fluids.kinetic_energy(grid, out.field_hat)

    grads = jax.grad(energy)(field)
    assert grads.pattern_hat.shape == grid.spectral_shape and float(grads.amplitude) > 0


def test_bad_input():
    with pytest.raises(ConfigurationError, match="wavenumber must be an int >= 1"):
        KolmogorovForcing(wavenumber=0)
    with pytest.raises(ConfigurationError, match="from_field"):
        FieldForcing(jnp.zeros((8, 8)))
    with pytest.raises(ConfigurationError, match=r"grid's shape \(16, 16\)"):
        FieldForcing.from_field(Grid((16, 16)), jnp.zeros((8, 8)))
    forcing = FieldForcing.from_field(Grid((16, 16)), jnp.zeros((16, 16)))
    with pytest.raises(ConfigurationError, match="resample it"):
        forcing.vorticity_forcing_hat(Grid((32, 32)), 0.0, jnp.float32)
