"""Flax NNX adapter: same outputs, transforms, training, checkpoints, use as a closure."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import hybrax
from hybrax.hybrid import Closure, RegressionLoss, fit
from hybrax.nn import FlaxModule, from_flax


class TwoLayer(nnx.Module):
    def __init__(self, din: int, dout: int, rngs: nnx.Rngs):
        self.first = nnx.Linear(din, 16, rngs=rngs, param_dtype=jnp.float64)
        self.second = nnx.Linear(16, dout, rngs=rngs, param_dtype=jnp.float64)

    def __call__(self, x):
        return self.second(jnp.tanh(self.first(x)))


@pytest.fixture(scope="module")
def module():
    return TwoLayer(3, 3, nnx.Rngs(0))


def test_adapter_matches_the_nnx_module(module):
    net = from_flax(module)
    assert isinstance(net, FlaxModule)
    x = jnp.asarray(np.random.default_rng(0).standard_normal(3))
    np.testing.assert_allclose(net(x), module(x), rtol=1e-14)
    np.testing.assert_allclose(eqx.filter_jit(lambda n, v: n(v))(net, x), module(x), rtol=1e-14)
    assert isinstance(net.to_flax(), TwoLayer)


def test_adapter_vmap_and_grad(module):
    net = from_flax(module)
    xs = jnp.asarray(np.random.default_rng(1).standard_normal((4, 3)))
    batched = eqx.filter_jit(lambda n, v: jax.vmap(n)(v))(net, xs)
    np.testing.assert_allclose(batched[2], module(xs[2]), rtol=1e-14)

    def loss(n):
        return jnp.sum(jax.vmap(n)(xs) ** 2)

    grads = eqx.filter_grad(loss)(net)
    # against nnx's own gradient
    reference = nnx.grad(lambda m: jnp.sum(jax.vmap(m)(xs) ** 2))(module)
    np.testing.assert_allclose(
        grads.params["first"]["kernel"][...], reference["first"]["kernel"][...], rtol=1e-12
    )


def test_adapter_trains_and_checkpoints(tmp_path, module):
    net = from_flax(module)
    x = jnp.asarray(np.random.default_rng(2).standard_normal((64, 3)))
    y = jnp.sin(x)
    result = fit(net, RegressionLoss(), (x, y), optax.adam(1e-2), steps=150)
    losses = [e["loss"] for e in result.history["train"]]
    assert losses[-1] < losses[0] / 5
    hybrax.io.save_checkpoint(tmp_path / "ckpt", result.model)
    restored = hybrax.io.restore_checkpoint(tmp_path / "ckpt", like=net)
    np.testing.assert_array_equal(restored(x[0]), result.model(x[0]))


def test_nnx_model_as_a_lorenz96_closure():
    model = hybrax.climate.Lorenz96(num_variables=8, forcing=20.0)
    net = from_flax(TwoLayer(8, 8, nnx.Rngs(1)))
    stepper = hybrax.RK4(Closure(model, net), dt=0.005)
    state = model.initial_state(dtype=jnp.float64)
    final, _ = hybrax.rollout(stepper, state, 10)
    assert jnp.all(jnp.isfinite(final.u))

    def loss(n):
        s = eqx.tree_at(lambda s: s.dynamics.net, stepper, n)
        return jnp.sum(hybrax.rollout(s, state, 10)[0].u ** 2)

    grads = eqx.filter_grad(loss)(net)
    assert jnp.any(grads.params["first"]["kernel"][...] != 0)


def test_from_flax_rejects_other_objects():
    with pytest.raises(TypeError, match=r"expects a flax\.nnx\.Module"):
        from_flax(lambda x: x)
