"""Band-limited random vorticity and the Taylor–Green vortex."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybrax.errors import ConfigurationError
from hybrax.fluids import NavierStokes2D, random_vorticity, taylor_green_vorticity
from hybrax.grids import Grid


def test_random_vorticity_properties():
    grid = Grid((64, 64))
    model = NavierStokes2D(grid)
    for peak in (3.0, 8.0):
        w = random_vorticity(grid, jax.random.key(0), peak_wavenumber=peak, max_velocity=2.5)
        assert w.shape == grid.shape and w.dtype == jnp.float32
        w_hat = grid.to_spectral(w)
        assert abs(complex(w_hat[0, 0])) < 1e-6  # zero mean
        outside = w_hat * (1 - grid.dealias_mask()).astype(w_hat.dtype)
        assert jnp.max(jnp.abs(outside)) < 1e-6  # band-limited to the 2/3 band
        state = model.state_from_vorticity(w)
        np.testing.assert_allclose(model.max_velocity(state), 2.5, rtol=1e-5)
    # different keys give different fields, the same key the same one
    a = random_vorticity(grid, jax.random.key(1))
    b = random_vorticity(grid, jax.random.key(2))
    assert jnp.max(jnp.abs(a - b)) > 0.1
    np.testing.assert_array_equal(a, random_vorticity(grid, jax.random.key(1)))


def test_taylor_green_is_a_steady_euler_flow():
    model = NavierStokes2D(Grid((16, 16), 3.0), viscosity=0.0)
    w = taylor_green_vorticity(model.grid, wavenumber=1, amplitude=2.0, dtype=jnp.float64)
    x, y = model.grid.coordinates(jnp.float64)
    k = 2 * np.pi / 3.0
    np.testing.assert_allclose(w, 4 * k * jnp.sin(k * x) * jnp.sin(k * y), atol=1e-13)
    advection = model.nonlinear(model.state_from_vorticity(w), 0.0).field_hat
    assert jnp.max(jnp.abs(advection)) < 1e-12


def test_bad_input():
    with pytest.raises(ConfigurationError, match="2D grid"):
        random_vorticity(Grid((16,)), jax.random.key(0))
    with pytest.raises(ConfigurationError, match="peak_wavenumber"):
        random_vorticity(Grid((16, 16)), jax.random.key(0), peak_wavenumber=0.0)
    with pytest.raises(ConfigurationError, match="square domain"):
        taylor_green_vorticity(Grid((16, 16), (1.0, 2.0)))
