"""Sharded ensembles of a stepper with its own state (AdamsBashforth3): no special case."""

import jax
import jax.numpy as jnp
import numpy as np

import hybrax
from hybrax.parallel import make_mesh, sharded_rollout


def test_sharded_rollout_of_a_multistep_stepper_equals_vmap():
    model = hybrax.climate.Lorenz96(num_variables=8, forcing=8.0)
    stepper = hybrax.AdamsBashforth3(model, 0.01)
    keys = jax.random.split(jax.random.key(0), 8)
    states = jax.vmap(lambda k: model.initial_state(k, dtype=jnp.float64))(keys)
    final, trajectory = sharded_rollout(stepper, states, 20, make_mesh(8), save_every=10)
    reference, reference_trajectory = jax.vmap(
        lambda s: hybrax.rollout(stepper, s, 20, save_every=10)
    )(states)
    assert isinstance(final, hybrax.AB3State) and isinstance(trajectory, hybrax.ODEState)
    np.testing.assert_allclose(final.state.u, reference.state.u, rtol=1e-13)
    np.testing.assert_allclose(final.previous.u, reference.previous.u, rtol=1e-13)
    np.testing.assert_allclose(trajectory.u, reference_trajectory.u, rtol=1e-13)
    assert trajectory.u.shape == (8, 2, 8)
