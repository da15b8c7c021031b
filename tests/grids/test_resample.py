"""Exact spectral coarse-graining and upsampling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybrax.errors import ConfigurationError
from hybrax.grids import Grid, resample


def _random(shape, key=0, dtype=jnp.float64):
    return jax.random.normal(jax.random.key(key), shape, dtype)


@pytest.mark.parametrize(
    "coarse_shape, fine_shape",
    [((8,), (24,)), ((8, 6), (16, 18)), ((4, 6, 8), (8, 12, 16))],
)
def test_upsampling_interpolates_exactly(coarse_shape, fine_shape):
    """Zero-padding is trigonometric interpolation: the fine field equals the coarse one at
    the coarse points, Nyquist content included, and stays real."""
    coarse, fine = Grid(coarse_shape, 3.0), Grid(fine_shape, 3.0)
    field = _random(coarse_shape)  # a white-noise field has Nyquist content
    up = fine.to_physical(resample(coarse.to_spectral(field), coarse, fine))
    stride = tuple(slice(None, None, f // c) for f, c in zip(fine_shape, coarse_shape, strict=True))
    np.testing.assert_allclose(up[stride], field, atol=1e-13)
    # the fine coefficients are Hermitian-consistent: the round trip through the fine grid
    # is the identity
    up_hat = fine.to_spectral(up)
    np.testing.assert_allclose(
        up_hat, resample(coarse.to_spectral(field), coarse, fine), atol=1e-13
    )


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_coarse_graining_a_band_limited_field_is_subsampling(dtype):
    fine, coarse = Grid((64, 48), (2.0, 1.0)), Grid((16, 12), (2.0, 1.0))
    field = fine.to_physical(
        resample(coarse.to_spectral(_random((16, 12), 1, dtype)), coarse, fine)
    )
    field_hat = fine.to_spectral(field)
    # remove the coarse Nyquist modes so the field is strictly resolved on the coarse grid
    field_hat = resample(resample(field_hat, fine, coarse), coarse, fine)
    field = fine.to_physical(field_hat)
    down = coarse.to_physical(resample(field_hat, fine, coarse))
    atol = 1e-5 if dtype == jnp.float32 else 1e-13
    np.testing.assert_allclose(down, field[::4, ::4], atol=atol)
    assert down.dtype == dtype


def test_coarse_graining_is_the_l2_projection():
    fine, coarse = Grid((32, 32)), Grid((8, 8))
    field_hat = fine.to_spectral(_random((32, 32), 2))
    down = resample(field_hat, fine, coarse)
    # Pythagoras: what is kept plus what is removed adds up to the whole (Parseval)
    back = resample(down, coarse, fine)
    w = fine.hermitian_weights(jnp.float64)

    def power(a):
        return jnp.sum(w * jnp.abs(a) ** 2)

    np.testing.assert_allclose(power(back) + power(field_hat - back), power(field_hat), rtol=1e-12)
    # the kept modes are unchanged, the coarse Nyquist is zero
    np.testing.assert_allclose(down[:4, :4], field_hat[:4, :4], atol=0)
    np.testing.assert_allclose(down[-3:, :4], field_hat[-3:, :4], atol=0)
    assert jnp.all(down[4, :] == 0) and jnp.all(down[:, 4] == 0)


def test_round_trip_and_mixed_axes():
    a, b = Grid((8, 32)), Grid((24, 16))  # upsample x, coarsen y; 8 -> 24 is not a power of 2
    field_hat = a.to_spectral(_random((8, 32), 3))
    there = resample(field_hat, a, b)
    assert there.shape == b.spectral_shape
    back = resample(there, b, a)
    # only modes the smaller grid resolves strictly survive (|n_y| < 8, |n_x| < 4)
    expected = resample(resample(field_hat, a, Grid((8, 16))), Grid((8, 16)), a)
    expected = expected.at[4, :].set(0)
    np.testing.assert_allclose(back, expected, atol=1e-14)


def test_resample_under_jit_vmap_grad():
    fine, coarse = Grid((16, 16)), Grid((8, 8))
    fields = _random((3, 16, 16), 4)

    @jax.jit
    def coarse_energy(f):
        return jnp.sum(coarse.to_physical(resample(fine.to_spectral(f), fine, coarse)) ** 2)

    values = jax.vmap(coarse_energy)(fields)
    np.testing.assert_allclose(values[2], coarse_energy(fields[2]), rtol=1e-12)
    g = jax.grad(coarse_energy)(fields[0])
    direction = _random((16, 16), 5)
    eps = 1e-6
    fd = coarse_energy(fields[0] + eps * direction) - coarse_energy(fields[0] - eps * direction)
    np.testing.assert_allclose(jnp.sum(g * direction), fd / (2 * eps), rtol=1e-7)


def test_bad_input(wrong_type):
    a, b = Grid((16, 16)), Grid((8, 8), 1.0)
    field_hat = a.to_spectral(_random((16, 16)))
    with pytest.raises(ConfigurationError, match="domain lengths differ"):
        resample(field_hat, a, b)
    with pytest.raises(ConfigurationError, match="same dimension"):
        resample(field_hat, a, Grid((8,)))
    with pytest.raises(ConfigurationError, match=r"source's spectral shape \(16, 9\)"):
        resample(field_hat[:, :5], a, Grid((8, 8)))
    with wrong_type("field_hat", ConfigurationError, "complex"):
        resample(jnp.zeros((16, 9)), a, Grid((8, 8)))
