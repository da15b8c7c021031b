"""Periodic convolutions, CNN and ResNet: periodicity, equivariance, transforms, errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybrax.nn import PeriodicCNN, PeriodicConv, PeriodicResNet


def key(seed: int):
    """A cheap-to-compile PRNG key for network initialisation in tests."""
    return jax.random.key(seed, impl="rbg")


def normal(seed: int, shape, dtype=jnp.float64):
    """Test inputs from numpy (no PRNG compilation per shape)."""
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


def test_periodic_conv_is_a_circular_stencil():
    conv = PeriodicConv(1, 1, 1, kernel_size=3, key=key(0))
    x = normal(1, (1, 12))
    w = conv.conv.weight[0, 0]
    b = conv.conv.bias[0, 0]
    expected = w[0] * jnp.roll(x[0], 1) + w[1] * x[0] + w[2] * jnp.roll(x[0], -1) + b
    np.testing.assert_allclose(conv(x)[0], expected, rtol=1e-12, atol=1e-12)


def test_pointwise_conv_matches_conv():
    conv = PeriodicConv(2, 3, 4, kernel_size=1, key=key(0))
    x = normal(1, (3, 8, 6))
    np.testing.assert_allclose(conv(x), conv.conv(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "spatial, kernel_size, channels",
    [
        *[((11,), 3, 12), ((7,), 5, 12), ((6, 10), 3, 12), ((9, 8), 5, 12), ((4, 4), 5, 12)],
        *[((11,), 3, 8), ((6, 10), 3, 8), ((4, 4), 5, 2)],
    ],
)
def test_conv_on_cpu_equals_the_library_convolution(spatial, kernel_size, channels):
    """On CPU a layer wider than 8 channels sums shifted matrix products (XLA's CPU
    convolution is slow beyond 8 channels); a narrower one runs XLA's convolution forward
    and the shifted products' derivative backward. Either way values and gradients (with
    respect to the weights and the input) equal equinox's circular convolution's, including
    a kernel as wide as the grid."""
    conv = PeriodicConv(len(spatial), 3, channels, kernel_size=kernel_size, key=key(0))
    x = normal(1, (3, *spatial))
    np.testing.assert_allclose(conv(x), conv.conv(x), rtol=1e-12, atol=1e-12)

    def loss(apply, layer, x):
        return jnp.sum(jnp.sin(apply(layer, x)))

    ours = jax.grad(lambda c, x: loss(lambda layer, x: layer(x), c, x), (0, 1))(conv, x)
    theirs = jax.grad(lambda c, x: loss(lambda layer, x: layer.conv(x), c, x), (0, 1))(conv, x)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda k, d: PeriodicCNN(1, 2, 3, 8, 3, key=k, dtype=d), (2, 16)),
        (lambda k, d: PeriodicCNN(2, 1, 1, 8, 3, kernel_size=(5, 1, 1), key=k, dtype=d), (1, 8, 8)),
        (lambda k, d: PeriodicResNet(1, 1, 2, 8, 2, key=k, dtype=d), (1, 16)),
        (lambda k, d: PeriodicResNet(2, 2, 1, 8, 2, kernel_size=5, key=k, dtype=d), (2, 12, 10)),
    ],
)
def test_translation_equivariance_and_dtype(make, shape, dtype):
    net = make(key(0), dtype)
    x = normal(1, shape, dtype)
    call = eqx.filter_jit(lambda n, v: n(v))
    y = call(net, x)
    assert y.dtype == dtype and y.shape[1:] == shape[1:]
    axes = tuple(range(1, len(shape)))
    shifts = (3,) * len(axes)
    tol = 1e-5 if dtype == jnp.float32 else 1e-12
    np.testing.assert_allclose(
        call(net, jnp.roll(x, shifts, axes)), jnp.roll(y, shifts, axes), rtol=tol, atol=tol
    )


def test_local_cnn_receptive_field():
    """kernel_size=(5, 1, 1): the output at a point depends on its 5 neighbours only."""
    net = PeriodicCNN(1, 1, 1, 8, 3, kernel_size=(5, 1, 1), key=key(0))
    x = normal(1, (1, 16))
    jac = eqx.filter_jit(jax.jacobian(lambda v: net(v)[0, 7]))(x)[0]
    nonzero = np.nonzero(np.abs(np.asarray(jac)) > 0)[0]
    assert set(nonzero) <= {5, 6, 7, 8, 9} and len(nonzero) == 5


@pytest.mark.parametrize(
    "make",
    [lambda k: PeriodicResNet(2, 1, 1, 4, 1, key=k), lambda k: PeriodicCNN(2, 1, 1, 4, 2, key=k)],
)
def test_cnn_jit_vmap_grad(make):
    net = make(key(0))
    xs = normal(1, (3, 1, 8, 8))
    out = eqx.filter_jit(lambda n, x: jax.vmap(n)(x))(net, xs)
    np.testing.assert_allclose(out[1], eqx.filter_jit(net)(xs[1]), rtol=1e-12)
    loss = eqx.filter_jit(lambda n: jnp.mean(jax.vmap(n)(xs) ** 2))
    grads = eqx.filter_jit(eqx.filter_grad(loss))(net)
    leaves = jax.tree.leaves(eqx.filter(grads, eqx.is_inexact_array))
    assert all(jnp.all(jnp.isfinite(g)) for g in leaves)
    # finite differences on the output bias (a shift of every output value)
    bias = lambda n: n.project.conv.bias if hasattr(n, "project") else n.layers[-1].conv.bias  # noqa: E731
    eps = 1e-6
    fd = (loss(eqx.tree_at(bias, net, bias(net) + eps)) - loss(net)) / eps
    np.testing.assert_allclose(jnp.sum(bias(grads)), fd, rtol=1e-4)


def test_cnn_errors():
    net = PeriodicCNN(2, 3, 1, 4, 2, key=key(0))
    with pytest.raises(ValueError, match=r"add a channel axis with x\[None\]"):
        net(jnp.ones((8, 8)))
    with pytest.raises(ValueError, match="expects 3 input channel"):
        net(jnp.ones((2, 8, 8)))
    with pytest.raises(ValueError, match=r"for a batch use jax\.vmap"):
        net(jnp.ones((5, 3, 8, 8)))
    with pytest.raises(ValueError, match=r"kernel_size must be odd.*use 3 or 5"):
        PeriodicConv(1, 1, 1, kernel_size=4, key=key(0))
    with pytest.raises(ValueError, match="kernel_size has 2 entries but num_layers=3"):
        PeriodicCNN(1, 1, 1, 4, 3, kernel_size=(3, 3), key=key(0))
    with pytest.raises(ValueError, match="num_spatial_dims must be 1 or 2"):
        PeriodicConv(3, 1, 1, key=key(0))
