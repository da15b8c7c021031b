"""`Batches`: fit's batch size and data order as an object (issue 12, "objects, not flags")."""

import inspect

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import hybrax
from hybrax.hybrid import (
    Batches,
    Curriculum,
    RegressionLoss,
    fit,
    sliding_windows,
)

error = hybrax.ConfigurationError


class Linear(eqx.Module):
    w: jax.Array
    b: jax.Array

    def __call__(self, x):
        return x @ self.w + self.b


def regression_data(n=20):
    x = jax.random.normal(jax.random.key(11), (n, 3), jnp.float64)
    y = x @ jnp.asarray([[1.0], [-2.0], [0.5]]) + 0.3
    return x, y


def linear_model():
    return Linear(jnp.zeros((3, 1), jnp.float64), jnp.zeros((1,), jnp.float64))


@pytest.mark.parametrize("bad", [0, -3, True])
def test_batch_size_must_be_a_positive_int(bad):
    with pytest.raises(error, match=rf"Batches: batch_size must be an int >= 1, got {bad}"):
        Batches(regression_data(), bad)


@pytest.mark.parametrize("bad", [2.5, "8", jnp.asarray(4)])
def test_batch_size_of_another_type(wrong_type, bad):
    with wrong_type("batch_size", error, r"Batches: batch_size must be an int >= 1, got"):
        Batches(regression_data(), bad)


@pytest.mark.parametrize("bad", [0, "key", jnp.zeros(2), np.uint32([1, 2, 3])])
def test_key_must_be_a_prng_key(wrong_type, bad):
    with wrong_type("key", error, r"Batches: key must be a PRNG key such as jax.random.key\(0\)"):
        Batches(regression_data(), 4, key=bad)


def test_data_must_share_a_leading_axis():
    x, y = regression_data()
    with pytest.raises(error, match=r"Batches: every leaf .* same number .*\[5, 20\]"):
        Batches((x, y[:5]), 4)
    with pytest.raises(error, match="Batches: every leaf of data needs a leading example axis"):
        Batches((x, jnp.asarray(1.0)))
    with pytest.raises(error, match=r"Batches: data holds no arrays \(empty dataset\)"):
        Batches(())
    with pytest.raises(error, match="Batches: data holds 0 examples"):
        Batches((x[:0], y[:0]))
    with pytest.raises(error, match="Batches: data is already a Batches"):
        Batches(Batches((x, y), 4), 2)
    # plain data given to fit is checked under fit's name
    with pytest.raises(error, match=r"fit: every leaf .* same number .*\[5, 20\]"):
        fit(linear_model(), RegressionLoss(), (x, y[:5]), optax.sgd(0.1), steps=1)


def test_batch_size_above_the_examples_is_refused_by_fit():
    batches = Batches(regression_data(10), 11)  # a Curriculum may cut more windows: allowed here
    assert (batches.num_examples, batches.batch_size) == (10, 11)
    with pytest.raises(error, match=r"fit: batch_size=11 exceeds the 10 examples.*n <= 10"):
        fit(linear_model(), RegressionLoss(), batches, optax.sgd(0.1), steps=1)
    with pytest.raises(error, match="Batches: batch_size=11 exceeds the 10 examples"):
        _ = batches.steps_per_epoch
    assert Batches(regression_data(10), 3).steps_per_epoch == 3  # the last 1 is dropped
    assert Batches(regression_data(10)).steps_per_epoch == 1


def test_defaults():
    batches = Batches(regression_data())
    assert batches.batch_size is None and batches.num_examples == 20
    assert jnp.array_equal(jax.random.key_data(batches.key), jax.random.key_data(jax.random.key(0)))


def test_removed_keywords_say_how_to_write_the_call_now():
    x, y = regression_data()
    args = (linear_model(), RegressionLoss(), (x, y), optax.sgd(0.1))
    moved = r"fit: batch_size= and key= moved into the data argument; write "
    with pytest.raises(TypeError, match=moved + r"fit\(model, loss, Batches\(data, batch_size=8, "):
        fit(*args, steps=3, batch_size=8, key=jax.random.key(1))
    with pytest.raises(TypeError, match=r"Batches\(data, batch_size=8\), optimizer, \.\.\.\)"):
        fit(*args, steps=3, batch_size=8)
    with pytest.raises(TypeError, match=r"Batches\(data, key=key\), optimizer"):
        fit(*args, steps=3, key=jax.random.key(1))
    # any other unknown keyword gets Python's own wording
    with pytest.raises(TypeError, match="unexpected keyword argument 'batchsize'"):
        fit(*args, steps=3, batchsize=8)
    parameters = list(inspect.signature(fit).parameters)
    assert parameters == [
        "model", "loss", "data", "optimizer", "steps", "trainable", "checkpoints", "sharding",
        "callbacks",
    ]  # fmt: skip


def test_fit_draws_the_documented_order():
    """fit with Batches(data, 8, key=k) equals a hand-written optax loop whose batches are
    permutation(fold_in(k, epoch)) cut into 8s (20 examples: 2 batches an epoch, the last
    4 dropped): the same losses and parameters, bit for bit."""
    x, y = regression_data()
    key = jax.random.key(7)
    optimizer = optax.adam(0.05)
    steps = 7
    result = fit(linear_model(), RegressionLoss(), Batches((x, y), 8, key=key), optimizer,
                 steps=steps)  # fmt: skip

    @eqx.filter_jit
    def step(model, opt_state, batch):
        loss, grads = eqx.filter_value_and_grad(lambda m: RegressionLoss()(m, batch))(model)
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = optimizer.update(grads, opt_state, model)
            model = optax.apply_updates(model, updates)
        return model, opt_state, loss

    model = linear_model()
    with jax.numpy_dtype_promotion("standard"):
        opt_state = optimizer.init(model)
    losses = []
    for s in range(steps):
        epoch, position = divmod(s, 20 // 8)
        order = jax.random.permutation(jax.random.fold_in(key, epoch), 20)
        index = order[position * 8 : (position + 1) * 8]
        model, opt_state, loss = step(model, opt_state, (x[index], y[index]))
        losses.append(float(loss))
    assert [e["loss"] for e in result.history["train"]] == losses
    np.testing.assert_array_equal(result.model.w, model.w)
    np.testing.assert_array_equal(result.model.b, model.b)
    # a different key gives a different order, hence different losses
    other = fit(linear_model(), RegressionLoss(), Batches((x, y), 8, key=jax.random.key(8)),
                optimizer, steps=steps)  # fmt: skip
    assert [e["loss"] for e in other.history["train"]] != losses


class Decay(eqx.Module):
    rate: jax.Array


def unrolled_decay_loss(unroll):
    """The mean squared error of ``rate**unroll * first`` against the window's last state."""

    def loss(model, windows):
        return jnp.mean((model.rate**unroll * windows[:, 0] - windows[:, -1]) ** 2)

    return loss


def test_curriculum_applies_batches_to_its_windows():
    """Batches(trajectories, 30) with 2 trajectories: the batch size counts windows (capped
    at those available) and stage i draws from fold_in(key, i), as fits in sequence do."""
    times = jnp.arange(13.0, dtype=jnp.float64)
    start = jnp.asarray([[1.0, -2.0, 0.5], [0.3, 0.7, -1.1]], jnp.float64)
    data = start[:, None, :] * 0.9 ** times[None, :, None]  # (2 trajectories, 13 times, 3)
    model = Decay(jnp.asarray(0.5, jnp.float64))
    key, stages = jax.random.key(4), [(1, 3), (2, 3)]
    curriculum = Curriculum(stages, loss=unrolled_decay_loss)
    result = fit(model, curriculum, Batches(data, 30, key=key), optax.adam(1e-2))
    expected, losses = model, []
    for index, (unroll, steps) in enumerate(stages):
        windows = sliding_windows(data, unroll + 1)
        available = windows.shape[0]  # 2 trajectories x (13 - unroll) windows, < 30
        assert available < 30
        stage = fit(
            expected, unrolled_decay_loss(unroll),
            Batches(windows, min(30, available), key=jax.random.fold_in(key, index)),
            optax.adam(1e-2), steps=steps,
        )  # fmt: skip
        expected = stage.model
        losses += [e["loss"] for e in stage.history["train"]]
    assert [e["loss"] for e in result.history["train"]] == losses
    np.testing.assert_array_equal(result.model.rate, expected.rate)
