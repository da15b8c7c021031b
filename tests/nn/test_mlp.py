"""MLP: shapes, dtypes, transforms, bad input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybrax.nn import MLP


def key(seed: int):
    """A cheap-to-compile PRNG key for network initialisation in tests."""
    return jax.random.key(seed, impl="rbg")


def normal(seed: int, shape, dtype=jnp.float64):
    """Test inputs from numpy (no PRNG compilation per shape)."""
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


def test_mlp_shapes_and_dtype(dtype):
    net = MLP(3, 2, width_size=16, depth=2, key=key(0), dtype=dtype)
    assert net.dtype == dtype
    y = net(jnp.ones(3, dtype))
    assert y.shape == (2,) and y.dtype == dtype
    assert len(net.layers) == 3


def test_mlp_depth_zero_is_affine():
    net = MLP(3, 2, width_size=16, depth=0, key=key(0))
    x1, x2 = jnp.ones(3), jnp.arange(3.0)
    # an affine map: f(x1) + f(x2) - f(0) = f(x1 + x2)
    lhs = net(x1) + net(x2) - net(jnp.zeros(3))
    np.testing.assert_allclose(lhs, net(x1 + x2), rtol=1e-12)


def test_mlp_jit_vmap_grad():
    net = MLP(4, 1, width_size=8, depth=2, key=key(1))
    xs = normal(2, (5, 4))
    batched = eqx.filter_jit(lambda n, x: jax.vmap(n)(x))(net, xs)
    np.testing.assert_allclose(batched, jnp.stack([net(x) for x in xs]), rtol=1e-12)

    def loss(n):
        return jnp.sum(jax.vmap(n)(xs) ** 2)

    grads = eqx.filter_grad(loss)(net)
    # finite-difference check of one weight
    eps = 1e-6
    bumped = eqx.tree_at(lambda n: n.layers[0].weight, net, net.layers[0].weight.at[0, 0].add(eps))
    fd = (loss(bumped) - loss(net)) / eps
    np.testing.assert_allclose(grads.layers[0].weight[0, 0], fd, rtol=1e-4)


def test_mlp_bad_input(wrong_type):
    net = MLP(3, 2, width_size=4, depth=1, key=key(0))
    with wrong_type("x", ValueError, r"shape \(3,\), got \(5, 3\)"):
        net(jnp.ones((5, 3)))
    with pytest.raises(ValueError, match="depth must be an int >= 0"):
        MLP(3, 2, width_size=4, depth=-1, key=key(0))
