"""Property-based tests (hypothesis) over the hybrid and io entry points' arguments.

Random values of the wrong kind or range (negative, zero, float, bool, str, None, NaN)
give a `hybrax.ConfigurationError` naming the argument, and valid ones run: never a raw
TypeError/AttributeError from deep inside, never a silent wrong result.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hybrax
from hybrax.hybrid import (
    Batches,
    Checkpoints,
    Evaluate,
    PushforwardLoss,
    RegressionLoss,
    UnrolledLoss,
    fit,
    generate_trajectories,
    sliding_windows,
)

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)

ANYTHING = st.one_of(
    st.integers(-3, 12),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.booleans(),
    st.none(),
    st.text(max_size=2),
    st.tuples(st.integers(1, 3)),
)


def is_int_at_least(value, minimum):
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


@SETTINGS
@given(num_steps=ANYTHING, checkpoint=st.one_of(ANYTHING, st.just("sqrt")))
def test_unrolled_loss_arguments(num_steps, checkpoint):
    valid_checkpoint = checkpoint is None or checkpoint == "sqrt" or is_int_at_least(checkpoint, 1)
    if is_int_at_least(num_steps, 1) and valid_checkpoint:
        assert UnrolledLoss(num_steps, checkpoint=checkpoint).num_steps == num_steps
        return
    with pytest.raises(hybrax.ConfigurationError, match=r"num_steps|checkpoint"):
        UnrolledLoss(num_steps, checkpoint=checkpoint)


@SETTINGS
@given(num_warmup=ANYTHING, num_steps=ANYTHING)
def test_pushforward_loss_arguments(num_warmup, num_steps):
    if is_int_at_least(num_warmup, 0) and is_int_at_least(num_steps, 1):
        PushforwardLoss(num_warmup, num_steps)
        return
    with pytest.raises(hybrax.ConfigurationError, match=r"num_warmup|num_steps"):
        PushforwardLoss(num_warmup, num_steps)


@SETTINGS
@given(scale=ANYTHING)
def test_regression_loss_scale(scale):
    ok = isinstance(scale, (int, float)) and not isinstance(scale, bool)
    if ok and scale == scale and abs(scale) != float("inf") and scale > 0:
        RegressionLoss(scale=scale)
        return
    with pytest.raises(hybrax.ConfigurationError, match="scale"):
        RegressionLoss(scale=scale)


@SETTINGS
@given(length=ANYTHING, stride=ANYTHING)
def test_sliding_windows_arguments(length, stride):
    trajectories = jnp.zeros((2, 6, 3))
    if is_int_at_least(length, 1) and length <= 6 and is_int_at_least(stride, 1):
        windows = sliding_windows(trajectories, length, stride)
        assert windows.shape[1:] == (length, 3)
        return
    with pytest.raises(hybrax.ConfigurationError, match=r"length|stride"):
        sliding_windows(trajectories, length, stride)


@SETTINGS
@given(n=ANYTHING, n_steps=ANYTHING, save_every=ANYTHING)
def test_generate_trajectories_arguments(n, n_steps, save_every):
    model = hybrax.climate.Lorenz96(8)
    stepper = hybrax.RK4(model, 0.01)
    args = (stepper, model.initial_state, jax.random.key(0), n, n_steps, save_every)
    valid = is_int_at_least(n, 1) and is_int_at_least(n_steps, 0)
    valid = valid and is_int_at_least(save_every, 1) and n_steps % save_every == 0
    if valid:
        return  # the valid runs are covered in test_data.py (each compiles)
    with pytest.raises(hybrax.ConfigurationError, match=r": n must|n_steps|save_every"):
        generate_trajectories(*args)


@SETTINGS
@given(
    name=st.sampled_from(
        ["steps", "batch_size", "Checkpoints.every", "Checkpoints.keep", "Evaluate.every"]
    ),
    value=ANYTHING,
)
def test_fit_arguments(tmp_path, name, value):
    """Bad values of fit's integer arguments (and of its option objects') are rejected
    before anything compiles."""
    minimum = {"steps": 0}.get(name, 1)
    if is_int_at_least(value, minimum) or (value is None and name != "steps"):
        return
    net = hybrax.nn.MLP(2, 1, 4, 1, key=jax.random.key(0, impl="rbg"))
    x = jnp.zeros((8, 2))
    owner, _, field = name.rpartition(".")

    def run():
        kwargs, data = {"steps": 3}, (x, x[:, :1])
        if owner == "Checkpoints":
            kwargs["checkpoints"] = Checkpoints(tmp_path / "c", **{field: value})
        elif owner == "Evaluate":
            kwargs["callbacks"] = [Evaluate(lambda model, step: {}, **{field: value})]
        elif name == "batch_size":
            data = Batches(data, value)
        else:
            kwargs[name] = value
        fit(net, RegressionLoss(), data, optax.sgd(0.1), **kwargs)

    with pytest.raises(hybrax.ConfigurationError, match=rf"{owner}.*{field}" if owner else name):
        run()


@SETTINGS
@given(step=ANYTHING)
def test_checkpoint_step(tmp_path_factory, step):
    directory = tmp_path_factory.mktemp("ckpt")
    tree = {"w": jnp.ones(3)}
    if is_int_at_least(step, 0):
        hybrax.io.save_checkpoint(directory, tree, step=step)
        assert hybrax.io.Checkpointer(directory).all_steps() == [step]
        return
    with pytest.raises(hybrax.ConfigurationError, match="step"):
        hybrax.io.save_checkpoint(directory, tree, step=step)
