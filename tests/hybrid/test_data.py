"""Trajectory generation, windows and block averaging."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.climate import Lorenz96
from hybrax.hybrid import block_average, generate_trajectories, sliding_windows


@pytest.fixture(scope="module")
def setup():
    model = Lorenz96(num_variables=8, forcing=8.0)
    stepper = hybrax.RK4(model, 0.01)
    sample = lambda k: model.initial_state(k, dtype=jnp.float64)  # noqa: E731
    return model, stepper, sample


def test_trajectories_match_individual_rollouts(setup):
    _, stepper, sample = setup
    key = jax.random.key(3)
    data = generate_trajectories(
        stepper, sample, key, n=3, n_steps=20, save_every=5, spin_up_steps=7
    )
    assert data.u.shape == (3, 5, 8) and data.time.shape == (3, 5)
    member = sample(jax.random.split(key, 3)[1])
    start, _ = hybrax.rollout(stepper, member, 7, save_every=None)
    _, saved = hybrax.rollout(stepper, start, 20, save_every=5)
    np.testing.assert_allclose(data.u[1, 0], start.u, rtol=1e-13)
    np.testing.assert_allclose(data.u[1, 1:], saved.u, rtol=1e-12)
    np.testing.assert_allclose(data.time[1], 0.07 + 0.05 * np.arange(5), rtol=1e-12)


def test_batched_generation_equals_vmapped_and_observe(setup):
    _, stepper, sample = setup
    key = jax.random.key(4)
    observe = lambda s: s.u.mean()  # noqa: E731
    full = generate_trajectories(stepper, sample, key, 5, 10, observe=observe)
    chunked = generate_trajectories(stepper, sample, key, 5, 10, observe=observe, batch_size=2)
    assert full.shape == (5, 11)
    np.testing.assert_allclose(chunked, full, rtol=1e-13)


def test_generation_errors(setup):
    _, stepper, sample = setup
    with pytest.raises(
        ValueError, match="save_every=3 does not divide n_steps=10; use n_steps=9 or 12"
    ):
        generate_trajectories(stepper, sample, jax.random.key(0), 2, 10, save_every=3)
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        generate_trajectories(stepper, sample, jax.random.key(0), 0, 10)


def test_sliding_windows():
    traj = {"a": jnp.arange(20.0).reshape(2, 10), "b": jnp.zeros((2, 10, 3))}
    windows = sliding_windows(traj, length=4, stride=3)
    assert windows["a"].shape == (6, 4) and windows["b"].shape == (6, 4, 3)
    np.testing.assert_array_equal(windows["a"][0], [0, 1, 2, 3])
    np.testing.assert_array_equal(windows["a"][2], [6, 7, 8, 9])
    np.testing.assert_array_equal(windows["a"][3], [10, 11, 12, 13])
    with pytest.raises(ValueError, match="length must be an int between 1 and T=10"):
        sliding_windows(traj, length=11)
    with pytest.raises(ValueError, match="empty dataset"):
        sliding_windows({}, length=2)
    with pytest.raises(ValueError, match="same leading axes"):
        sliding_windows({"a": jnp.zeros((2, 10)), "b": jnp.zeros((3, 10))}, length=2)


def test_block_average():
    rng = np.random.default_rng(0)
    field = rng.standard_normal((2, 8, 6))
    coarse = block_average(jnp.asarray(field), (2, 3))
    assert coarse.shape == (2, 4, 2)
    np.testing.assert_allclose(coarse[1, 2, 1], field[1, 4:6, 3:6].mean(), rtol=1e-14)
    np.testing.assert_allclose(coarse.mean(axis=(1, 2)), field.mean(axis=(1, 2)), rtol=1e-13)
    np.testing.assert_allclose(
        block_average(jnp.asarray(field), 2)[0, 0, 0], field[0, 0, :2].mean()
    )
    grad = jax.grad(lambda f: block_average(f, (2, 3))[0, 0, 0])(jnp.asarray(field))
    np.testing.assert_allclose(grad[0, :2, :3], 1 / 6)
    with pytest.raises(
        ValueError, match=r"must be positive ints dividing the trailing axes \(8, 6\)"
    ):
        block_average(jnp.asarray(field), (3, 3))


def test_arguments_are_checked_by_name(setup, wrong_type):
    model, stepper, sample = setup
    key = jax.random.key(0)
    error = hybrax.ConfigurationError
    with wrong_type("stepper", error, r"stepper must be a hybrax\.AbstractStepper.*RK4"):
        generate_trajectories(model, sample, key, 2, 10)
    with wrong_type("sample_initial_state", error, "sample_initial_state must be a function"):
        generate_trajectories(stepper, None, key, 2, 10)
    with wrong_type("key", error, "key must be a PRNG key"):
        generate_trajectories(stepper, sample, 0, 2, 10)
    with wrong_type("observe", error, "observe must be None or a function"):
        generate_trajectories(stepper, sample, key, 2, 10, observe="u")
    with pytest.raises(error, match="batch_size must be None or >= 1"):
        generate_trajectories(stepper, sample, key, 2, 10, batch_size=True)
    with wrong_type("n_steps", error, "n_steps must be an int >= 0"):
        generate_trajectories(stepper, sample, key, 2, 10.0)
    traj = jnp.zeros((2, 10))
    with pytest.raises(error, match="length must be an int between 1 and T=10"):
        sliding_windows(traj, length=True)
    with pytest.raises(error, match="stride must be a positive int"):
        sliding_windows(traj, length=2, stride=0)
    with wrong_type("factors", error, "factors must be an int or a sequence of ints"):
        block_average(jnp.zeros((4, 4)), None)
    with pytest.raises(error, match="must be positive ints dividing"):
        block_average(jnp.zeros((4, 4)), (True, 2))
