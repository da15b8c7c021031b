"""The trainer: learning, exact resume, non-finite stop, data parallelism, history, errors."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import hybrax
from hybrax.climate import Lorenz96
from hybrax.hybrid import (
    Closure,
    NonFiniteLossError,
    OneStepLoss,
    RegressionLoss,
    UnrolledLoss,
    fit,
    generate_trajectories,
    sliding_windows,
    trainable_filter,
)


class Bias(eqx.Module):
    """A constant term, the same at every site."""

    b: jax.Array

    def __call__(self, x):
        return jnp.broadcast_to(self.b, x.shape)


class Affine(eqx.Module):
    a: jax.Array
    b: jax.Array

    def __call__(self, x):
        return self.a * x + self.b


@pytest.fixture(scope="module")
def windows():
    """Lorenz-96 (F=20) trajectory windows: the truth the closures learn from."""
    model = Lorenz96(num_variables=8, forcing=20.0)
    sample = lambda k: model.initial_state(k, dtype=jnp.float64)  # noqa: E731
    data = generate_trajectories(
        hybrax.RK4(model, 0.01), sample, jax.random.key(0), 4, 40, spin_up_steps=300
    )
    return sliding_windows(data, length=6, stride=2)


def closure_model(net):
    """Lorenz-96 with F=18: the closure has to supply the missing +2."""
    return hybrax.RK4(Closure(Lorenz96(8, 18.0), net), 0.01)


def small_net(seed):
    return hybrax.nn.MLP(8, 8, 8, 1, key=jax.random.key(seed, impl="rbg"))


def test_training_lowers_the_loss_by_a_factor_100(windows):
    """The closure learns the missing forcing: the unrolled loss falls at least 100-fold
    and the learned term approaches +2."""
    model = closure_model(Bias(jnp.zeros(())))
    only_net = trainable_filter(model, lambda m: m.dynamics.net)
    result = fit(
        model, UnrolledLoss(5), windows, optax.adam(0.05), 150, batch_size=16,
        trainable=only_net, progress=False,
    )  # fmt: skip
    losses = [e["loss"] for e in result.history["train"]]
    assert losses[-1] < losses[0] / 100
    np.testing.assert_allclose(result.model.dynamics.net.b, 2.0, atol=0.05)


def test_trainable_filter_freezes_the_physics(windows):
    model = closure_model(Affine(jnp.zeros(()), jnp.zeros(())))
    spec = trainable_filter(model, lambda m: m.dynamics.net)
    assert spec.dynamics.dynamics.forcing is False and spec.dynamics.net.b is True
    frozen = fit(model, OneStepLoss(), windows, optax.adam(0.05), 5, trainable=spec, progress=False)
    assert frozen.model.dynamics.dynamics.forcing == 18.0
    free = fit(model, OneStepLoss(), windows, optax.adam(0.05), 5, progress=False)
    assert free.model.dynamics.dynamics.forcing != 18.0


def test_resume_reproduces_the_uninterrupted_run(tmp_path, windows):
    """Stopping at step 50 and resuming to 100 gives bitwise the same parameters, optimizer
    state and history as running straight to 100 (optimizer state, step counter and the
    data-order key are checkpointed; batches are drawn without replacement per epoch)."""
    schedule = optax.cosine_decay_schedule(3e-3, 100)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))
    kwargs = dict(batch_size=8, key=jax.random.key(7), progress=False, checkpoint_every=25)
    trainable = lambda m: trainable_filter(m, lambda m: m.dynamics.net)  # noqa: E731
    start = closure_model(small_net(0))
    straight = fit(
        start, UnrolledLoss(4), windows, optimizer, 100, trainable=trainable(start),
        checkpoint_dir=tmp_path / "straight", **kwargs,
    )  # fmt: skip
    first = fit(
        start, UnrolledLoss(4), windows, optimizer, 50, trainable=trainable(start),
        checkpoint_dir=tmp_path / "resumed", **kwargs,
    )  # fmt: skip
    assert first.step == 50
    # a fresh process would rebuild the model from scratch: use different initial weights
    fresh = closure_model(small_net(1))
    resumed = fit(
        fresh, UnrolledLoss(4), windows, optimizer, 100, trainable=trainable(fresh),
        checkpoint_dir=tmp_path / "resumed", **kwargs,
    )  # fmt: skip
    assert resumed.step == 100
    for a, b in zip(jax.tree.leaves(straight.model), jax.tree.leaves(resumed.model), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(
        jax.tree.leaves(straight.opt_state), jax.tree.leaves(resumed.opt_state), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert resumed.history == straight.history
    saved = json.loads((tmp_path / "resumed" / "history.json").read_text())
    assert [e["step"] for e in saved["train"]] == list(range(100))
    # the final model can be read back on its own
    model = hybrax.io.restore_checkpoint(tmp_path / "straight", like={"model": fresh})["model"]
    for a, b in zip(jax.tree.leaves(model), jax.tree.leaves(straight.model), strict=True):
        np.testing.assert_array_equal(a, b)


class Scalar(eqx.Module):
    w: jax.Array


def exploding_loss(model, batch):
    """(w - 10)^2, but NaN once w > 5: gradient descent from 0 crosses 5 at step 7."""
    return (model.w - 10.0) ** 2 + jnp.where(model.w > 5.0, jnp.nan, 0.0) + 0 * jnp.sum(batch)


@pytest.mark.parametrize("checkpointing", [True, False])
def test_nonfinite_loss_stops_and_restores(tmp_path, checkpointing):
    # w_i = 10 (1 - 0.9^i): w_6 = 4.69, w_7 = 5.22
    kwargs = dict(checkpoint_dir=tmp_path, checkpoint_every=3) if checkpointing else {}
    with pytest.raises(NonFiniteLossError, match="non-finite \\(nan\\) at step 7") as info:
        fit(Scalar(jnp.zeros(())), exploding_loss, jnp.zeros((1,)), optax.sgd(0.05), 20,
            progress=False, **kwargs)  # fmt: skip
    error = info.value
    assert error.step == 7
    assert error.result.step == 6
    np.testing.assert_allclose(error.result.model.w, 10 * (1 - 0.9**6), rtol=1e-12)
    assert [e["step"] for e in error.result.history["train"]] == list(range(6))
    if checkpointing:
        assert "last good checkpoint" in str(error)


def test_data_parallel_loss_curve_matches_one_device():
    if len(jax.devices()) < 8:
        pytest.skip("needs 8 host devices (tests/conftest.py sets them)")
    mesh = jax.make_mesh((8,), ("data",))  # Explicit axes by default: fit copes
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((64, 8)))
    y = jnp.tanh(x)
    net = small_net(2)
    kwargs = dict(batch_size=16, key=jax.random.key(1), progress=False)
    single = fit(net, RegressionLoss(), (x, y), optax.adam(1e-2), 30, **kwargs)
    sharded = fit(net, RegressionLoss(), (x, y), optax.adam(1e-2), 30, mesh=mesh, **kwargs)
    np.testing.assert_allclose(
        [e["loss"] for e in sharded.history["train"]],
        [e["loss"] for e in single.history["train"]],
        rtol=1e-10,
    )
    weight = sharded.model.layers[0].weight
    assert len(weight.sharding.device_set) == 8  # replicated over the mesh
    np.testing.assert_allclose(weight, single.model.layers[0].weight, rtol=1e-9)
    with pytest.raises(ValueError, match="cannot be split evenly over the 8 devices"):
        fit(net, RegressionLoss(), (x, y), optax.adam(1e-2), 1, batch_size=12, mesh=mesh)


def test_evaluation_callback_and_history_file(tmp_path):
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((32, 8)))
    held_out = jnp.asarray(rng.standard_normal((16, 8)))
    calls = []

    def evaluate(model, step):
        calls.append(step)
        return {"validation": RegressionLoss()(model, (held_out, 0.5 * held_out))}

    result = fit(
        small_net(3), RegressionLoss(), (x, 0.5 * x), optax.adam(1e-2), 25, batch_size=8,
        eval_fn=evaluate, eval_every=10, history_path=tmp_path / "h.json", progress=True,
    )  # fmt: skip
    assert calls == [10, 20, 25]
    assert [e["step"] for e in result.history["eval"]] == [10, 20, 25]
    assert result.history["eval"][-1]["validation"] < result.history["eval"][0]["validation"]
    assert json.loads((tmp_path / "h.json").read_text()) == result.history


def test_fit_errors():
    net = small_net(4)
    x = jnp.zeros((10, 8))
    loss = RegressionLoss()
    with pytest.raises(ValueError, match="batch_size=11 exceeds the 10 examples"):
        fit(net, loss, (x, x), optax.sgd(0.1), 1, batch_size=11)
    with pytest.raises(ValueError, match="empty dataset"):
        fit(net, loss, (), optax.sgd(0.1), 1)
    with pytest.raises(ValueError, match="0 examples"):
        fit(net, loss, (x[:0], x[:0]), optax.sgd(0.1), 1)
    with pytest.raises(ValueError, match=r"same number of examples.*\[5, 10\]"):
        fit(net, loss, (x, x[:5]), optax.sgd(0.1), 1)
    with pytest.raises(ValueError, match="eval_every is set but no eval_fn"):
        fit(net, loss, (x, x), optax.sgd(0.1), 1, eval_every=1)
    with pytest.raises(ValueError, match="checkpoint_every is set but checkpoint_dir is None"):
        fit(net, loss, (x, x), optax.sgd(0.1), 1, checkpoint_every=1)
    with pytest.raises(ValueError, match="no trainable floating arrays"):
        fit(net, loss, (x, x), optax.sgd(0.1), 1, trainable=lambda leaf: False)
