"""coarse_grain: Fourier truncation onto a coarse solver's 2/3-rule band."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybrax.errors import ConfigurationError
from hybrax.fluids import random_vorticity
from hybrax.grids import Grid, coarse_grain, resample


def test_coarse_grain_is_the_band_projection():
    fine, mid, coarse = Grid((64, 64)), Grid((32, 32)), Grid((16, 16))
    # noise on every mode, not only on the band of random_vorticity
    noise = fine.to_spectral(jax.random.normal(jax.random.key(1), fine.shape, jnp.float64))
    w_hat = fine.to_spectral(random_vorticity(fine, jax.random.key(0), dtype=jnp.float64))
    w_hat = w_hat + 0.1 * noise
    direct = coarse_grain(w_hat, fine, coarse)
    assert direct.dtype == jnp.complex128
    mask = np.asarray(coarse.dealias_mask(jnp.float64))
    # only the coarse 2/3-rule band survives, and there the coefficients are untouched
    np.testing.assert_array_equal(np.asarray(direct)[mask == 0], 0)
    np.testing.assert_allclose(
        np.asarray(direct)[mask == 1], np.asarray(resample(w_hat, fine, coarse))[mask == 1]
    )
    # in steps or at once
    np.testing.assert_allclose(coarse_grain(coarse_grain(w_hat, fine, mid), mid, coarse), direct)
    # a field already in the band is unchanged (projection)
    np.testing.assert_allclose(coarse_grain(direct, coarse, coarse), direct)
    # batched, under jit
    batch = jnp.stack([w_hat, 2 * w_hat])
    out = jax.jit(coarse_grain, static_argnums=(1, 2))(batch, fine, coarse)
    np.testing.assert_allclose(out[1], 2 * direct)


def test_coarse_grain_rejects_a_field_of_another_grid():
    fine, coarse = Grid((64, 64)), Grid((16, 16))
    field = jnp.zeros(coarse.spectral_shape, jnp.complex128)
    with pytest.raises(ConfigurationError, match="spectral shape"):
        coarse_grain(field, fine, coarse)
