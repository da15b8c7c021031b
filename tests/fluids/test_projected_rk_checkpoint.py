"""`ProjectedRK(checkpoint_tendency=...)`: recomputing the tendency in the backward pass
changes the cost of a gradient, never its value (float64: tests/conftest.py enables it)."""

import jax
import jax.numpy as jnp
import numpy as np

import hybrax
from hybrax.fluids import IncompressibleNavierStokes, ProjectedRK


def test_checkpointed_tendency_gives_the_same_values_and_gradients():
    start = IncompressibleNavierStokes.lid_driven_cavity(12, 400.0).initial_state(dtype=jnp.float64)

    def loss(lid, checkpoint):
        model = IncompressibleNavierStokes.lid_driven_cavity(12, 400.0, lid_velocity=lid)
        stepper = ProjectedRK(model, 0.01, checkpoint_tendency=checkpoint)
        final, _ = hybrax.rollout(stepper, start, 4, save_every=None)
        return jnp.sum(final.u**2) + jnp.sum(final.v**2)

    lid = jnp.float64(1.0)
    value_and_grad = jax.jit(jax.value_and_grad(loss), static_argnums=1)
    value, grad = value_and_grad(lid, True)
    plain_value, plain_grad = value_and_grad(lid, False)
    np.testing.assert_allclose(value, plain_value, rtol=1e-14)
    np.testing.assert_allclose(grad, plain_grad, rtol=1e-12)
    step = 1e-6
    forward = jax.jit(loss, static_argnums=1)
    central = (forward(lid + step, True) - forward(lid - step, True)) / (2 * step)
    np.testing.assert_allclose(grad, central, rtol=1e-6)
    assert float(grad) > 0  # a faster lid puts more energy into the cavity
