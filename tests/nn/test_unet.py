"""Periodic U-Net: shapes, equivariance by 2**levels, transforms, errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybrax.nn import PeriodicUNet


def key(seed: int):
    """A cheap-to-compile PRNG key for network initialisation in tests."""
    return jax.random.key(seed, impl="rbg")


def normal(seed: int, shape, dtype=jnp.float64):
    """Test inputs from numpy (no PRNG compilation per shape)."""
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


@pytest.mark.parametrize("num_spatial_dims, shape", [(1, (2, 32)), (2, (2, 16, 8))])
def test_unet_shape_dtype_equivariance(num_spatial_dims, shape, dtype):
    net = PeriodicUNet(num_spatial_dims, 2, 3, 4, num_levels=2, key=key(0), dtype=dtype)
    x = normal(1, shape, dtype)
    call = eqx.filter_jit(lambda n, v: n(v))
    y = call(net, x)
    assert y.shape == (3, *shape[1:]) and y.dtype == dtype
    axes = tuple(range(1, len(shape)))
    shift = (4,) * len(axes)  # a multiple of 2**num_levels
    tol = 1e-5 if dtype == jnp.float32 else 1e-12
    np.testing.assert_allclose(
        call(net, jnp.roll(x, shift, axes)), jnp.roll(y, shift, axes), atol=tol
    )


def test_unet_sees_the_whole_domain():
    """Through the coarse levels, a point's output depends on far-away inputs."""
    net = PeriodicUNet(1, 1, 1, 4, num_levels=3, key=key(0))
    x = normal(1, (1, 32))
    jac = eqx.filter_jit(jax.jacobian(lambda v: net(v)[0, 0]))(x)[0]
    assert jnp.abs(jac[16]) > 0


def test_unet_jit_vmap_grad():
    net = PeriodicUNet(2, 1, 1, 2, num_levels=1, key=key(0))
    xs = normal(1, (2, 1, 8, 8))
    out = eqx.filter_jit(lambda n, x: jax.vmap(n)(x))(net, xs)
    np.testing.assert_allclose(out[0], eqx.filter_jit(net)(xs[0]), rtol=1e-12)
    grads = eqx.filter_jit(eqx.filter_grad(lambda n: jnp.sum(jax.vmap(n)(xs))))(net)
    assert jnp.any(grads.lift.conv.weight != 0)


def test_unet_errors():
    net = PeriodicUNet(2, 1, 1, 4, num_levels=2, key=key(0))
    with pytest.raises(
        ValueError, match=r"divisible by 2\*\*num_levels=4, got \(10, 8\); use e.g. \(12, 8\)"
    ):
        net(jnp.ones((1, 10, 8)))
    with pytest.raises(ValueError, match="num_levels must be an int >= 1"):
        PeriodicUNet(2, 1, 1, 4, num_levels=0, key=key(0))
