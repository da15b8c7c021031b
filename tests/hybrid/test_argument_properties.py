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
from jaxtyping import TypeCheckError

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


# Whether a value's type fits an annotation (bool is an int, as for isinstance).
def fits_int(value):
    return isinstance(value, int)


def fits_int_or_none(value):
    return value is None or isinstance(value, int)


def fits_checkpoint(value):  # None | Literal["sqrt"] | int
    return value is None or value == "sqrt" or isinstance(value, int)


def fits_float(value):  # RegressionLoss documents scale "default 1": an int is a number too
    return isinstance(value, (int, float))


def rejected(type_checked: bool, match: str, **wrong_types: bool):
    """``pytest.raises`` for bad arguments. ``wrong_types`` maps each annotated parameter to
    whether its value's type does not fit the annotation: under jaxtyping's checks any such
    parameter fails its annotation first (`TypeCheckError` naming one of them); otherwise
    (and always without the checks) hybrax's own `ConfigurationError` matching ``match``."""
    names = [name for name, wrong in wrong_types.items() if wrong]
    if type_checked and names:
        return pytest.raises(TypeCheckError, match="parameter '(" + "|".join(names) + ")'")
    return pytest.raises(hybrax.ConfigurationError, match=match)


@SETTINGS
@given(num_steps=ANYTHING, checkpoint=st.one_of(ANYTHING, st.just("sqrt")))
def test_unrolled_loss_arguments(num_steps, checkpoint, type_checked):
    valid_checkpoint = checkpoint is None or checkpoint == "sqrt" or is_int_at_least(checkpoint, 1)
    if is_int_at_least(num_steps, 1) and valid_checkpoint:
        assert UnrolledLoss(num_steps, checkpoint=checkpoint).num_steps == num_steps
        return
    wrong = {"num_steps": not fits_int(num_steps), "checkpoint": not fits_checkpoint(checkpoint)}
    with rejected(type_checked, r"num_steps|checkpoint", **wrong):
        UnrolledLoss(num_steps, checkpoint=checkpoint)


@SETTINGS
@given(num_warmup=ANYTHING, num_steps=ANYTHING)
def test_pushforward_loss_arguments(num_warmup, num_steps, type_checked):
    if is_int_at_least(num_warmup, 0) and is_int_at_least(num_steps, 1):
        PushforwardLoss(num_warmup, num_steps)
        return
    wrong = {"num_warmup": not fits_int(num_warmup), "num_steps": not fits_int(num_steps)}
    with rejected(type_checked, r"num_warmup|num_steps", **wrong):
        PushforwardLoss(num_warmup, num_steps)


@SETTINGS
@given(scale=ANYTHING)
def test_regression_loss_scale(scale, type_checked):
    ok = isinstance(scale, (int, float)) and not isinstance(scale, bool)
    if ok and scale == scale and abs(scale) != float("inf") and scale > 0:
        RegressionLoss(scale=scale)
        return
    with rejected(type_checked, "scale", scale=not fits_float(scale)):
        RegressionLoss(scale=scale)


@SETTINGS
@given(length=ANYTHING, stride=ANYTHING)
def test_sliding_windows_arguments(length, stride, type_checked):
    trajectories = jnp.zeros((2, 6, 3))
    if is_int_at_least(length, 1) and length <= 6 and is_int_at_least(stride, 1):
        windows = sliding_windows(trajectories, length, stride)
        assert windows.shape[1:] == (length, 3)
        return
    wrong = {"length": not fits_int(length), "stride": not fits_int(stride)}
    with rejected(type_checked, r"length|stride", **wrong):
        sliding_windows(trajectories, length, stride)


@SETTINGS
@given(n=ANYTHING, n_steps=ANYTHING, save_every=ANYTHING)
def test_generate_trajectories_arguments(n, n_steps, save_every, type_checked):
    model = hybrax.climate.Lorenz96(8)
    stepper = hybrax.RK4(model, 0.01)
    args = (stepper, model.initial_state, jax.random.key(0), n, n_steps, save_every)
    valid = is_int_at_least(n, 1) and is_int_at_least(n_steps, 0)
    valid = valid and is_int_at_least(save_every, 1) and n_steps % save_every == 0
    if valid:
        return  # the valid runs are covered in test_data.py (each compiles)
    wrong = {"n": not fits_int(n), "n_steps": not fits_int(n_steps)}
    wrong["save_every"] = not fits_int(save_every)
    with rejected(type_checked, r": n must|n_steps|save_every", **wrong):
        generate_trajectories(*args)


@SETTINGS
@given(
    name=st.sampled_from(
        ["steps", "batch_size", "Checkpoints.every", "Checkpoints.keep", "Evaluate.every"]
    ),
    value=ANYTHING,
)
def test_fit_arguments(tmp_path, name, value, type_checked):
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

    # steps, batch_size, every and keep are all annotated ``int | None``
    match = rf"{owner}.*{field}" if owner else name
    with rejected(type_checked, match, **{field: not fits_int_or_none(value)}):
        run()


@SETTINGS
@given(step=ANYTHING)
def test_checkpoint_step(tmp_path_factory, step, type_checked):
    directory = tmp_path_factory.mktemp("ckpt")
    tree = {"w": jnp.ones(3)}
    if is_int_at_least(step, 0):
        hybrax.io.save_checkpoint(directory, tree, step=step)
        assert hybrax.io.Checkpointer(directory).all_steps() == [step]
        return
    with rejected(type_checked, "step", step=not fits_int(step)):
        hybrax.io.save_checkpoint(directory, tree, step=step)
