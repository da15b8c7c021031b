"""Spectral convolution and FNO: band limit, resolution independence, transforms, errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybrax.nn import FNO, SpectralConv


def key(seed: int):
    """A cheap-to-compile PRNG key for network initialisation in tests."""
    return jax.random.key(seed, impl="rbg")


def normal(seed: int, shape, dtype=jnp.float64):
    """Test inputs from numpy (no PRNG compilation per shape)."""
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


def test_spectral_conv_1d_is_band_limited_and_matches_direct_formula():
    layer = SpectralConv(1, 2, 3, modes=4, key=key(0))
    x = normal(1, (2, 32))
    y = layer(x)
    y_hat = np.fft.rfft(np.asarray(y), axis=-1)
    assert np.max(np.abs(y_hat[:, 4:])) < 1e-10
    w = np.asarray(layer.weights_real[0]) + 1j * np.asarray(layer.weights_imag[0])
    x_hat = np.fft.rfft(np.asarray(x), axis=-1)
    expected = np.einsum("oik,ik->ok", w, x_hat[:, :4])
    # a real output has a real mean: the imaginary part of the k=0 product is dropped
    expected[:, 0] = expected[:, 0].real
    np.testing.assert_allclose(y_hat[:, :4], expected, rtol=1e-10, atol=1e-12)


def test_spectral_conv_2d_keeps_both_signs_of_kx():
    layer = SpectralConv(2, 1, 1, modes=(3, 2), key=key(0))
    x = normal(1, (1, 16, 16))
    y_hat = np.fft.rfft2(np.asarray(layer(x)))[0]
    kept = np.zeros_like(y_hat, dtype=bool)
    kept[:3, :2] = kept[-3:, :2] = True
    # a real output makes the k_y = 0 column Hermitian: k_x = -3 is mirrored to +3
    allowed = kept.copy()
    allowed[:, 0] |= kept[(-np.arange(16)) % 16, 0]
    assert np.max(np.abs(y_hat[~allowed])) < 1e-10
    assert np.min(np.abs(y_hat[kept])) > 0


@pytest.mark.parametrize("num_spatial_dims", [1, 2])
def test_fno_resolution_independence(num_spatial_dims):
    """A band-limited input on a coarse and a fine grid gives the same output at shared
    points: the operator does not depend on the grid."""
    net = FNO(num_spatial_dims, 1, 1, width=4, num_layers=2, modes=3, key=key(0))

    def sample(n):
        grid = jnp.linspace(0, 2 * jnp.pi, n, endpoint=False)
        if num_spatial_dims == 1:
            return (jnp.sin(grid) + 0.5 * jnp.cos(2 * grid))[None]
        gx, gy = jnp.meshgrid(grid, grid, indexing="ij")
        return (jnp.sin(gx) * jnp.cos(gy) + 0.3 * jnp.cos(2 * gy))[None]

    call = eqx.filter_jit(lambda n, v: n(v))
    coarse, fine = call(net, sample(16)), call(net, sample(32))
    # Pointwise nonlinearities create harmonics beyond the retained modes, so outputs agree
    # closely but not to round-off.
    index = (slice(None),) + (slice(None, None, 2),) * num_spatial_dims
    np.testing.assert_allclose(fine[index], coarse, atol=2e-2 * float(jnp.max(jnp.abs(coarse))))


def test_fno_equivariance_dtype_and_transforms(dtype):
    net = FNO(2, 2, 1, width=4, num_layers=2, modes=4, key=key(0), dtype=dtype)
    x = normal(1, (2, 16, 16), dtype)
    call = eqx.filter_jit(lambda n, v: n(v))
    y = call(net, x)
    assert y.shape == (1, 16, 16) and y.dtype == dtype
    tol = 1e-5 if dtype == jnp.float32 else 1e-11
    np.testing.assert_allclose(
        net(jnp.roll(x, (5, 3), (1, 2))), jnp.roll(y, (5, 3), (1, 2)), atol=tol
    )
    xs = jnp.stack([x, 2 * x])
    out = eqx.filter_jit(lambda n, v: jax.vmap(n)(v))(net, xs)
    np.testing.assert_allclose(out[0], y, rtol=tol, atol=tol)
    grads = eqx.filter_jit(eqx.filter_grad(lambda n: jnp.sum(n(x) ** 2)))(net)
    assert jnp.any(grads.spectral[0].weights_real[0] != 0)
    assert jnp.any(grads.spectral[0].weights_imag[1] != 0)


def test_fno_errors():
    with pytest.raises(ValueError, match=r"needs a finer grid than \(8, 8\): nx >= 10"):
        FNO(2, 1, 1, width=2, num_layers=1, modes=5, key=key(0))(jnp.ones((1, 8, 8)))
    with pytest.raises(ValueError, match="modes needs one entry per spatial axis"):
        SpectralConv(2, 1, 1, modes=(3,), key=key(0))
    with pytest.raises(ValueError, match="expects 1 input channel"):
        FNO(1, 1, 1, width=2, num_layers=1, modes=2, key=key(0))(jnp.ones((2, 8)))
