"""The slab-decomposed FFT equals numpy's on one device, for every normalisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec

from hybrax.parallel import SlabFFT, make_mesh


@pytest.mark.parametrize("norm", ["backward", "ortho", "forward"])
@pytest.mark.parametrize(("devices", "shape"), [(8, (64, 64)), (4, (32, 48)), (2, (16, 10))])
def test_slab_fft_matches_single_device(norm, devices, shape):
    fft = SlabFFT(make_mesh(devices), "batch", shape)
    x = jax.random.normal(jax.random.key(0), (3, *shape), jnp.float64)
    x_hat = jax.jit(lambda x: fft.rfft2(x, norm))(x)
    np.testing.assert_allclose(x_hat, np.fft.rfft2(np.asarray(x), norm=norm), atol=1e-12)
    assert x_hat.sharding.spec == PartitionSpec(None, "batch")
    back = jax.jit(lambda x: fft.irfft2(x, norm))(x_hat)
    np.testing.assert_allclose(back, x, atol=1e-13)


def test_slab_fft_is_differentiable():
    fft = SlabFFT(make_mesh(4), "batch", (16, 16))
    x = jax.random.normal(jax.random.key(1), (16, 16), jnp.float64)

    def loss(f):
        return lambda x: jnp.sum(jnp.abs(f(x)) ** 2)

    grad = jax.jit(jax.grad(loss(fft.rfft2)))(x)
    np.testing.assert_allclose(grad, jax.grad(loss(jnp.fft.rfft2))(x), atol=1e-10)


def test_bad_shapes():
    with pytest.raises(ValueError, match="nx=12 must be divisible by the 8 devices"):
        SlabFFT(make_mesh(8), "batch", (12, 16))
    fft = SlabFFT(make_mesh(2), "batch", (16, 16))
    with pytest.raises(ValueError, match=r"must end in the axes \(16, 16\)"):
        fft.rfft2(jnp.zeros((16, 8)))
