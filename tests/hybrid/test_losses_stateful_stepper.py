"""Hybrid wrappers, losses and data generation on a stepper with its own state
(`hybrax.AdamsBashforth3`, whose carry holds a tendency history): they go through the
stepper's ``init``/``state_of``/``with_state`` and compare model states, with no special
cases."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.climate import Lorenz96
from hybrax.hybrid import (
    Corrected,
    OneStepLoss,
    PushforwardLoss,
    UnrolledLoss,
    generate_trajectories,
    sliding_windows,
)


class Affine(eqx.Module):
    """``a * x + b``."""

    a: jax.Array
    b: jax.Array

    def __call__(self, x):
        return self.a * x + self.b


def _at(windows, index):
    return jax.tree.map(lambda x: x[:, index], windows)


def ab3(forcing=20.0):
    return hybrax.AdamsBashforth3(Lorenz96(8, forcing), 0.01)


@pytest.fixture(scope="module")
def data():
    model = Lorenz96(num_variables=8, forcing=20.0)
    sample = lambda k: model.initial_state(k, dtype=jnp.float64)  # noqa: E731
    return generate_trajectories(ab3(), sample, jax.random.key(0), 2, 12, spin_up_steps=50)


def test_generate_trajectories_saves_model_states(data):
    assert isinstance(data, hybrax.ODEState)
    assert data.u.shape == (2, 13, 8)
    # continuing each member by hand (the carry keeps its history) gives the same states
    model = Lorenz96(num_variables=8, forcing=20.0)
    start = model.initial_state(jax.random.split(jax.random.key(0), 2)[0], dtype=jnp.float64)
    carry, _ = hybrax.rollout(ab3(), start, 50, save_every=None)
    np.testing.assert_allclose(ab3().state_of(carry).u, data.u[0, 0], rtol=1e-12)
    _, trajectory = hybrax.rollout(ab3(), carry, 12)
    np.testing.assert_allclose(trajectory.u, data.u[0, 1:], rtol=1e-12)


def test_losses_compare_model_states_of_a_stateful_stepper(data):
    windows = sliding_windows(data, length=5, stride=4)
    # each window restarts AB3 from a model state (Euler start-up), so the error is not zero;
    # it equals the direct comparison of rollout's saved model states with the windows
    predicted = jax.vmap(lambda s: hybrax.rollout(ab3(), s, 4)[1].u)(_at(windows, 0))
    direct = jnp.mean((predicted - windows.u[:, 1:]) ** 2)
    for loss in (UnrolledLoss(4), UnrolledLoss(4, checkpoint="sqrt")):
        np.testing.assert_allclose(loss(ab3(), windows), direct, rtol=1e-12)
    stepper = ab3()
    first = jax.vmap(lambda s: stepper.state_of(stepper.step(stepper.init(s))).u)(_at(windows, 0))
    one_step = jnp.mean((first - windows.u[:, 1]) ** 2)
    np.testing.assert_allclose(OneStepLoss()(ab3(), windows), one_step, rtol=1e-12)
    assert 0 < float(PushforwardLoss(2, 2)(ab3(), windows)) < np.inf
    grad = jax.grad(lambda f: UnrolledLoss(4)(ab3(f), windows))(jnp.asarray(24.0))
    assert bool(jnp.isfinite(grad)) and float(grad) != 0


def test_corrected_corrects_the_model_state_and_keeps_the_history():
    model = Lorenz96(num_variables=8, forcing=20.0)
    solver = ab3()
    state = model.initial_state(dtype=jnp.float64)
    zero = Corrected(solver, Affine(jnp.asarray(0.0), jnp.asarray(0.0)))
    reference, reference_trajectory = hybrax.rollout(solver, state, 10)
    final, trajectory = hybrax.rollout(zero, state, 10)
    assert isinstance(final, hybrax.AB3State) and final.level == 2
    np.testing.assert_allclose(final.state.u, reference.state.u, rtol=1e-13)
    np.testing.assert_allclose(final.previous.u, reference.previous.u, rtol=1e-13)
    np.testing.assert_allclose(trajectory.u, reference_trajectory.u, rtol=1e-13)

    shifted = Corrected(solver, Affine(jnp.asarray(0.0), jnp.asarray(0.5)))
    carry = shifted.init(state)
    assert shifted.init(carry) is carry
    stepped = solver.step(carry)
    out = shifted.step(carry)
    np.testing.assert_allclose(out.state.u, stepped.state.u + 0.5, rtol=1e-14)
    np.testing.assert_allclose(out.previous.u, stepped.previous.u, rtol=1e-14)
    assert shifted.state_of(out) is out.state
