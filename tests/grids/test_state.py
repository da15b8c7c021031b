"""SpectralState record."""

import jax
import jax.numpy as jnp

import hybrax
from hybrax.grids import Grid, SpectralState


def test_time_follows_the_real_dtype_and_integrators_advance_it():
    for real, complex_ in ((jnp.float32, jnp.complex64), (jnp.float64, jnp.complex128)):
        state = SpectralState(jnp.zeros((8, 5), complex_))
        assert state.time.dtype == real and state.time.shape == ()
    grid = Grid((8, 8))
    state = SpectralState(grid.to_spectral(jnp.ones((8, 8), jnp.float32)), 1.5)
    assert hybrax.get_time(state) == 1.5
    moved = hybrax.with_time(state, 2.0)
    assert moved.time == 2.0 and moved.time.dtype == jnp.float32
    leaves = jax.tree.leaves(state)
    assert len(leaves) == 2
