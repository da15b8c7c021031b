"""Mixed precision: a bfloat16/float32 network inside a float32/float64 hybrid."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.hybrid import Closure


@pytest.mark.parametrize(
    ("master", "compute"), [(jnp.float32, jnp.bfloat16), (jnp.float64, jnp.float32)]
)
def test_mixed_precision_network_in_a_closure(master, compute):
    model = hybrax.climate.Lorenz96(num_variables=8)
    net = hybrax.nn.MLP(8, 8, 32, 2, key=jax.random.key(0), dtype=jnp.float32)
    fast = hybrax.MixedPrecision(net, compute, master_dtype=master)
    assert fast.dtype == master
    stepper = hybrax.RK4(Closure(model, fast), 0.01)
    state = model.initial_state(jax.random.key(1), dtype=master)
    final, _ = hybrax.rollout(stepper, state, 20)
    assert final.u.dtype == master

    # The computation really happens in `compute`: the jaxpr multiplies in that dtype.
    jaxpr = str(jax.make_jaxpr(fast)(state.u))
    assert "dot_general" in jaxpr and str(jnp.dtype(compute)) in jaxpr

    # Same answer as full precision, to the compute dtype's resolution.
    exact = hybrax.RK4(Closure(model, hybrax.core.cast_floating(net, master)), 0.01)
    reference, _ = hybrax.rollout(exact, state, 20)
    tolerance = 0.05 if compute == jnp.bfloat16 else 1e-5
    np.testing.assert_allclose(final.u, reference.u, rtol=tolerance, atol=tolerance)

    # Gradients reach the master parameters, in the master dtype.
    def loss(f):
        s = hybrax.RK4(Closure(model, f), 0.01)
        return jnp.sum(hybrax.rollout(s, state, 5, save_every=None)[0].u ** 2)

    # one compiled program (an eager grad of the jitted rollout compiles forward and backward)
    grads = eqx.filter_jit(jax.grad(loss))(fast)
    leaf = grads.net.layers[0].weight
    assert leaf.dtype == master and bool(jnp.all(jnp.isfinite(leaf))) and bool(jnp.any(leaf != 0))


def test_compute_dtype_must_be_floating():
    net = hybrax.nn.MLP(2, 2, 4, 1, key=jax.random.key(0))
    with pytest.raises(hybrax.ConfigurationError, match="compute_dtype must be a floating dtype"):
        hybrax.MixedPrecision(net, jnp.int32)
