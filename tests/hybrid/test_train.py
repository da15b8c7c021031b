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
    Batches,
    Checkpoints,
    Closure,
    DataParallel,
    Evaluate,
    History,
    NonFiniteLossError,
    OneStepLoss,
    Progress,
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
        model, UnrolledLoss(5), Batches(windows, 16), optax.adam(0.05), steps=150,
        trainable=only_net,
    )  # fmt: skip
    losses = [e["loss"] for e in result.history["train"]]
    assert losses[-1] < losses[0] / 100
    np.testing.assert_allclose(result.model.dynamics.net.b, 2.0, atol=0.05)


def test_trainable_filter_freezes_the_physics(windows):
    model = closure_model(Affine(jnp.zeros(()), jnp.zeros(())))
    spec = trainable_filter(model, lambda m: m.dynamics.net)
    assert spec.dynamics.dynamics.forcing is False and spec.dynamics.net.b is True
    frozen = fit(model, OneStepLoss(), windows, optax.adam(0.05), steps=5, trainable=spec)
    assert frozen.model.dynamics.dynamics.forcing == 18.0
    free = fit(model, OneStepLoss(), windows, optax.adam(0.05), steps=5)
    assert free.model.dynamics.dynamics.forcing != 18.0


def test_resume_reproduces_the_uninterrupted_run(tmp_path, windows):
    """Stopping at step 20 and resuming to 40 gives bitwise the same parameters, optimizer
    state and history as running straight to 40 (optimizer state, step counter and the
    data-order key are checkpointed; batches are drawn without replacement per epoch: 9
    batches per epoch, so the resume is mid-epoch and the run spans 5 epochs)."""
    schedule = optax.cosine_decay_schedule(3e-3, 40)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))
    batches = Batches(windows, 8, key=jax.random.key(7))
    every10 = lambda folder: Checkpoints(tmp_path / folder, every=10)  # noqa: E731
    trainable = lambda m: trainable_filter(m, lambda m: m.dynamics.net)  # noqa: E731
    start = closure_model(small_net(0))
    straight = fit(
        start, UnrolledLoss(4), batches, optimizer, steps=40, trainable=trainable(start),
        checkpoints=every10("straight"),
    )  # fmt: skip
    first = fit(
        start, UnrolledLoss(4), batches, optimizer, steps=20, trainable=trainable(start),
        checkpoints=every10("resumed"),
    )  # fmt: skip
    assert first.step == 20
    # a fresh process would rebuild the model from scratch: use different initial weights
    fresh = closure_model(small_net(1))
    resumed = fit(
        fresh, UnrolledLoss(4), batches, optimizer, steps=40, trainable=trainable(fresh),
        checkpoints=every10("resumed"),
    )  # fmt: skip
    assert resumed.step == 40
    for a, b in zip(jax.tree.leaves(straight.model), jax.tree.leaves(resumed.model), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(
        jax.tree.leaves(straight.opt_state), jax.tree.leaves(resumed.opt_state), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert resumed.history == straight.history
    saved = json.loads((tmp_path / "resumed" / "history.json").read_text())
    assert [e["step"] for e in saved["train"]] == list(range(40))
    # the final model can be read back on its own
    model = hybrax.io.restore_checkpoint(tmp_path / "straight", like={"model": fresh})["model"]
    for a, b in zip(jax.tree.leaves(model), jax.tree.leaves(straight.model), strict=True):
        np.testing.assert_array_equal(a, b)


class Scalar(eqx.Module):
    w: jax.Array


def w_after(i):
    """Gradient descent on (w - 10)^2 with sgd(0.05) from 0: w_i = 10 (1 - 0.9^i)."""
    return 10 * (1 - 0.9**i)


def exploding_loss(threshold):
    """(w - 10)^2, but NaN once w > threshold."""

    def loss(model, batch):
        nan = jnp.where(model.w > threshold, jnp.nan, 0.0)
        return (model.w - 10.0) ** 2 + nan + 0 * jnp.sum(batch)

    return loss


def nan_gradient_loss(threshold):
    """(w - 10)^2 (always finite), but its gradient is NaN once w > threshold: the
    ``where``/``sqrt`` trap (the untaken branch's derivative is 0 * NaN)."""

    def loss(model, batch):
        trap = jnp.where(model.w > threshold, 0.0, jnp.sqrt(threshold - model.w))
        return (model.w - 10.0) ** 2 + 0.0 * trap + 0 * jnp.sum(batch)

    return loss


def assert_good(loss, model):
    value, grads = eqx.filter_value_and_grad(loss)(model, jnp.zeros((1,)))
    assert np.isfinite(value) and np.isfinite(grads.w)


# (loss, failing step): the threshold is crossed between w_{s-1} and w_s
CASES = {
    "loss_step_1": (exploding_loss(0.5), 1),
    "loss_step_3": (exploding_loss(2.5), 3),
    "loss_step_7": (exploding_loss(5.0), 7),
    "grad_step_1": (nan_gradient_loss(0.5), 1),
    "grad_step_3": (nan_gradient_loss(2.5), 3),
}


@pytest.mark.parametrize("every", [None, 1, 3])
@pytest.mark.parametrize("case", sorted(CASES))
def test_nonfinite_loss_or_gradient_returns_really_good_parameters(tmp_path, case, every):
    """Probe rows 71-73: a non-finite loss or gradient at step s (also at a multiple of
    Checkpoints.every, and a NaN gradient under a finite loss) returns the parameters of
    step s - 1, whose loss and gradient are finite; no checkpoint ever holds the failing
    parameters, so a later resume starts from good ones."""
    loss, failing = CASES[case]
    kwargs = {}
    if every:
        kwargs = dict(checkpoints=Checkpoints(tmp_path, every=every))
    with pytest.raises(hybrax.NonFiniteLossError, match=f"at step {failing}") as info:
        fit(Scalar(jnp.zeros(())), loss, jnp.zeros((1,)), optax.sgd(0.05), steps=20,
            **kwargs)  # fmt: skip
    error = info.value
    assert error.step == failing
    assert error.result.step == failing - 1
    np.testing.assert_allclose(error.result.model.w, w_after(failing - 1), rtol=1e-12)
    assert_good(loss, error.result.model)
    assert [e["step"] for e in error.result.history["train"]] == list(range(failing - 1))
    if every:
        with hybrax.io.Checkpointer(tmp_path) as checkpoints:
            saved = checkpoints.all_steps()
            assert all(s < failing for s in saved)
            for s in saved:
                model = checkpoints.restore({"model": Scalar(jnp.zeros(()))}, step=s)[0]
                assert_good(loss, model["model"])
        # resuming (with a safe loss) starts from the newest good checkpoint, not step s
        safe = exploding_loss(100.0)
        resumed = fit(Scalar(jnp.zeros(())), safe, jnp.zeros((1,)), optax.sgd(0.05), steps=12,
                      **kwargs)  # fmt: skip
        first_new = max(saved, default=0)
        assert resumed.history["train"][first_new]["loss"] == pytest.approx(
            (w_after(first_new) - 10) ** 2, rel=1e-12
        )
        np.testing.assert_allclose(resumed.model.w, w_after(12), rtol=1e-12)


def test_nonfinite_at_the_last_step_is_not_returned(tmp_path):
    """The final parameters are checked too: the loss turns NaN right after the last
    update, so fit raises instead of returning (or checkpointing) them."""
    with pytest.raises(hybrax.NonFiniteLossError, match="at step 7") as info:
        fit(Scalar(jnp.zeros(())), exploding_loss(5.0), jnp.zeros((1,)), optax.sgd(0.05),
            steps=7, checkpoints=Checkpoints(tmp_path))  # fmt: skip
    assert info.value.result.step == 6
    assert hybrax.io.Checkpointer(tmp_path).all_steps() == []


def test_initial_model_with_nonfinite_loss():
    with pytest.raises(hybrax.NonFiniteLossError, match="at step 0") as info:
        fit(Scalar(jnp.zeros(())), exploding_loss(-1.0), jnp.zeros((1,)), optax.sgd(0.05),
            steps=5)  # fmt: skip
    assert info.value.step == 0 and info.value.result is None
    assert NonFiniteLossError is hybrax.NonFiniteLossError  # re-exported from hybrax.hybrid


@pytest.mark.parametrize("damage", ["manifest", "empty_newer_step"])
def test_resume_falls_back_to_the_newest_intact_checkpoint(tmp_path, damage):
    """Probe rows 75, 78-79: a damaged latest checkpoint (or an empty step folder) does not
    block resume: fit warns, moves it aside and resumes from the newest intact one, giving
    the uninterrupted run's result."""
    loss = exploding_loss(100.0)
    every2 = lambda folder: Checkpoints(tmp_path / folder, every=2)  # noqa: E731
    straight = fit(Scalar(jnp.zeros(())), loss, jnp.zeros((1,)), optax.adam(0.1), steps=10,
                   checkpoints=every2("straight"))  # fmt: skip
    fit(Scalar(jnp.zeros(())), loss, jnp.zeros((1,)), optax.adam(0.1), steps=6,
        checkpoints=every2("run"))  # fmt: skip
    if damage == "manifest":
        (tmp_path / "run" / "6" / "model" / "manifest.ocdbt").unlink()
        moved = "6.corrupt"
    else:
        (tmp_path / "run" / "40").mkdir()
        moved = "40.corrupt"
    with pytest.warns(UserWarning, match=moved):
        resumed = fit(Scalar(jnp.zeros(())), loss, jnp.zeros((1,)), optax.adam(0.1), steps=10,
                      checkpoints=every2("run"))  # fmt: skip
    np.testing.assert_array_equal(resumed.model.w, straight.model.w)
    assert resumed.history == straight.history
    assert (tmp_path / "run" / moved).is_dir()


def test_data_parallel_loss_curve_matches_one_device():
    if len(jax.devices()) < 8:
        pytest.skip("needs 8 host devices (tests/conftest.py sets them)")
    mesh = jax.make_mesh((8,), ("data",))  # Explicit axes by default: fit copes
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((64, 8)))
    y = jnp.tanh(x)
    net = small_net(2)
    batches = Batches((x, y), 16, key=jax.random.key(1))
    single = fit(net, RegressionLoss(), batches, optax.adam(1e-2), steps=6)
    sharded = fit(net, RegressionLoss(), batches, optax.adam(1e-2), steps=6,
                  sharding=DataParallel(mesh))  # fmt: skip
    np.testing.assert_allclose(
        [e["loss"] for e in sharded.history["train"]],
        [e["loss"] for e in single.history["train"]],
        rtol=1e-10,
    )
    weight = sharded.model.layers[0].weight
    assert len(weight.sharding.device_set) == 8  # replicated over the mesh
    np.testing.assert_allclose(weight, single.model.layers[0].weight, rtol=1e-9)
    with pytest.raises(ValueError, match="cannot be split evenly over the 8 devices"):
        fit(net, RegressionLoss(), Batches((x, y), 12), optax.adam(1e-2), steps=1,
            sharding=DataParallel(mesh, "data"))  # fmt: skip
    with pytest.raises(hybrax.ConfigurationError, match="'space' is not an axis of the mesh"):
        DataParallel(mesh, "space")


def test_evaluation_callback_and_history_file(tmp_path):
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((32, 8)))
    held_out = jnp.asarray(rng.standard_normal((16, 8)))
    calls = []

    def evaluate(model, step):
        calls.append(step)
        return {"validation": RegressionLoss()(model, (held_out, 0.5 * held_out))}

    result = fit(
        small_net(3), RegressionLoss(), Batches((x, 0.5 * x), 8), optax.adam(1e-2), steps=25,
        callbacks=[Evaluate(evaluate, every=10), History(tmp_path / "h.json"), Progress()],
    )  # fmt: skip
    assert calls == [10, 20, 25]
    assert [e["step"] for e in result.history["eval"]] == [10, 20, 25]
    assert result.history["eval"][-1]["validation"] < result.history["eval"][0]["validation"]
    assert json.loads((tmp_path / "h.json").read_text()) == result.history


def test_fit_errors(tmp_path, wrong_type):
    net = small_net(4)
    x = jnp.zeros((10, 8))
    loss = RegressionLoss()
    error = hybrax.ConfigurationError
    sgd = optax.sgd(0.1)
    with pytest.raises(error, match="batch_size=11 exceeds the 10 examples"):
        fit(net, loss, Batches((x, x), 11), sgd, steps=1)
    with pytest.raises(error, match="empty dataset"):
        fit(net, loss, (), sgd, steps=1)
    with pytest.raises(error, match="0 examples"):
        fit(net, loss, (x[:0], x[:0]), sgd, steps=1)
    with pytest.raises(error, match=r"same number of examples.*\[5, 10\]"):
        fit(net, loss, (x, x[:5]), sgd, steps=1)
    with pytest.raises(error, match="no trainable floating arrays"):
        fit(net, loss, (x, x), sgd, steps=1, trainable=lambda leaf: False)
    # probe row 68: a string for the optimizer
    with pytest.raises(error, match=r"optimizer must be an optax.GradientTransformation"):
        fit(net, loss, (x, x), "adam", steps=1)
    with wrong_type("loss", error, "loss must be a callable"):
        fit(net, None, (x, x), sgd, steps=1)
    with wrong_type("key", error, "key must be a PRNG key"):
        Batches((x, x), key=0)
    with wrong_type("steps", error, "steps must be an int >= 0"):
        fit(net, loss, (x, x), sgd, steps=2.5)
    with pytest.raises(error, match="steps is required"):
        fit(net, loss, (x, x), sgd)
    with pytest.raises(TypeError):
        fit(net, loss, (x, x), sgd, 1)  # steps is keyword-only
    # the option objects check themselves, naming the field
    with pytest.raises(error, match=r"Checkpoints: keep must be None or an int >= 1, got 0"):
        Checkpoints(tmp_path, keep=0)
    with pytest.raises(error, match="Checkpoints: every must be None or an int >= 1"):
        Checkpoints(tmp_path, every=0)
    with wrong_type("resume", error, "Checkpoints: resume must be True or False"):
        Checkpoints(tmp_path, resume="yes")
    with wrong_type("directory", error, "Checkpoints: directory must be a path"):
        Checkpoints(3)
    with wrong_type("fn", error, "Evaluate: fn must be a callable"):
        Evaluate(None, every=1)
    with pytest.raises(error, match="Evaluate: every must be None or an int >= 1"):
        Evaluate(lambda model, step: {}, every=0)
    with wrong_type("path", error, "History: path must be a path"):
        History(None)
    with wrong_type("mesh", error, r"DataParallel: mesh must be a jax\.sharding\.Mesh"):
        DataParallel("cpu")
    # ... and fit checks it got objects, not the old flags' values
    with wrong_type("checkpoints", error, r"checkpoints must be a hybrax\.hybrid\.Checkpoints"):
        fit(net, loss, (x, x), sgd, steps=1, checkpoints=str(tmp_path))
    with wrong_type("sharding", error, r"sharding must be a hybrax\.hybrid\.DataParallel"):
        fit(net, loss, (x, x), sgd, steps=1, sharding="data")
    with wrong_type("callbacks", error, r"callbacks must be hybrax\.hybrid callbacks"):
        fit(net, loss, (x, x), sgd, steps=1, callbacks=[print])
    # probe row 69: a checkpoint directory that is a file or cannot be created
    afile = tmp_path / "afile"
    afile.write_text("mine")
    with pytest.raises(error, match=r"Checkpoints.directory.*is a file"):
        fit(net, loss, (x, x), sgd, steps=1, checkpoints=Checkpoints(afile))
    with pytest.raises(error, match=r"Checkpoints.directory.*cannot be created"):
        fit(net, loss, (x, x), sgd, steps=1, checkpoints=Checkpoints("/proc/hybrax-run"))
    assert afile.read_text() == "mine"
    fit(net, loss, (x, x), sgd, steps=2, checkpoints=Checkpoints(tmp_path / "c"))
    with pytest.warns(UserWarning, match=r"at step 2, beyond steps=1"):
        again = fit(net, loss, (x, x), sgd, steps=1, checkpoints=Checkpoints(tmp_path / "c"))
    assert again.step == 2
    with pytest.raises(error, match=r"already holds checkpoints \(steps \[2\]\) and resume=False"):
        fit(net, loss, (x, x), sgd, steps=4, checkpoints=Checkpoints(tmp_path / "c", resume=False))
