"""CFL time-step helpers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybrax.errors import ConfigurationError
from hybrax.grids import Grid, cfl_time_step, courant_number


def test_cfl_time_step_and_courant_number_are_inverse():
    grid = Grid((256, 128), (2 * np.pi, 2 * np.pi))
    dt = cfl_time_step(grid, 7.0, courant=0.5)
    np.testing.assert_allclose(dt, 0.5 * (2 * np.pi / 256) / 7.0)
    velocity = jnp.zeros((2, 256, 128)).at[0, 3, 4].set(7.0)
    np.testing.assert_allclose(courant_number(grid, velocity, dt), 0.5, rtol=1e-6)
    # traced velocities work under jit
    dt_traced = jax.jit(lambda v: cfl_time_step(grid, v))(jnp.asarray(7.0))
    np.testing.assert_allclose(dt_traced, dt, rtol=1e-6)


def test_bad_input():
    grid = Grid((16, 16))
    with pytest.raises(ConfigurationError, match="max_velocity must be positive"):
        cfl_time_step(grid, 0.0)
    with pytest.raises(ConfigurationError, match="courant must be positive"):
        cfl_time_step(grid, 1.0, courant=-1.0)
    with pytest.raises(ConfigurationError, match=r"shape \(2, 16, 16\)"):
        courant_number(grid, jnp.zeros((16, 16)), 0.1)
