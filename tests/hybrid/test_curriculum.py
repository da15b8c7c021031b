"""Curriculum: stages of unrolled training are fits in sequence."""

import json

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
    Curriculum,
    History,
    UnrolledLoss,
    fit,
    generate_trajectories,
    sliding_windows,
    trainable_filter,
)


def _setup():
    truth = Lorenz96(8, 8.0)
    data = generate_trajectories(
        hybrax.RK4(truth, 0.01),
        lambda k: truth.initial_state(k, dtype=jnp.float64),
        jax.random.key(0),
        n=2,
        n_steps=30,
    )
    net = hybrax.nn.MLP(8, 8, 8, 1, key=jax.random.key(1), dtype=jnp.float64)
    model = hybrax.RK4(Closure(Lorenz96(8, 7.0), net), 0.01)
    return model, data, trainable_filter(model, lambda m: m.dynamics.net)


def test_curriculum_equals_fits_in_sequence(tmp_path):
    model, data, spec = _setup()
    stages = [(2, 6), (5, 4)]
    schedule = lambda n: optax.adam(optax.cosine_decay_schedule(1e-3, n, 0.1))  # noqa: E731
    key = jax.random.key(3)
    curriculum = Curriculum(stages, window_stride=2)
    assert curriculum.steps == 10
    history = History(tmp_path / "history.json")
    result = fit(
        model, curriculum, Batches(data, 3, key=key), schedule, trainable=spec,
        callbacks=[history],
    )  # fmt: skip
    expected, losses = model, []
    for index, (unroll, steps) in enumerate(stages):
        stage = fit(
            expected,
            UnrolledLoss(unroll),
            Batches(
                sliding_windows(data, unroll + 1, stride=2), 3, key=jax.random.fold_in(key, index)
            ),
            schedule(steps),
            steps=steps,
            trainable=spec,
        )
        expected = stage.model
        losses += [e["loss"] for e in stage.history["train"]]
    np.testing.assert_array_equal(
        result.model.dynamics.net.layers[0].weight, expected.dynamics.net.layers[0].weight
    )
    assert result.step == 10
    assert [e["loss"] for e in result.history["train"]] == losses
    assert [e["step"] for e in result.history["train"]] == list(range(10))
    assert [e["unroll"] for e in result.history["train"]] == [2] * 6 + [5] * 4
    # the History callback holds the whole curriculum, not the last stage
    assert json.loads((tmp_path / "history.json").read_text()) == result.history
    # the physical parameter is untouched
    assert float(result.model.dynamics.dynamics.forcing) == 7.0


def test_curriculum_checkpoints_each_stage_and_resumes(tmp_path):
    model, data, spec = _setup()
    args = (model, Curriculum([(2, 3), (3, 2)]), data, optax.sgd(1e-4))
    first = fit(*args, trainable=spec, checkpoints=Checkpoints(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stage0_unroll2", "stage1_unroll3"]
    again = fit(*args, steps=5, trainable=spec, checkpoints=Checkpoints(tmp_path))
    assert again.step == first.step == 5
    np.testing.assert_array_equal(
        again.model.dynamics.net.layers[-1].weight, first.model.dynamics.net.layers[-1].weight
    )


@pytest.mark.parametrize(
    ("stages", "typed"),
    [
        ([], 0),
        ([(0, 5)], 0),
        ([(2, -1)], 0),
        ([(2.5, 3)], 1),
        ([(2,)], 1),
        (7, 1),
        ([(True, 3)], 0),
    ],
)
def test_curriculum_rejects_bad_stages(stages, typed, wrong_type):
    """``typed``: the annotation ``Sequence[tuple[int, int]]`` already rejects it (jaxtyping)."""
    message = r"Curriculum: .*stage"
    if typed:
        raises = wrong_type("stages", hybrax.ConfigurationError, message)
    else:
        raises = pytest.raises(hybrax.ConfigurationError, match=message)
    with raises:
        Curriculum(stages)


def test_curriculum_rejects_a_string_optimizer_and_a_wrong_step_count():
    model, data, spec = _setup()
    with pytest.raises(hybrax.ConfigurationError, match="optimizer"):
        fit(model, Curriculum([(2, 1)]), data, "adam", trainable=spec)
    with pytest.raises(hybrax.ConfigurationError, match=r"steps=3 but the Curriculum's stages"):
        fit(model, Curriculum([(2, 1)]), data, optax.sgd(0.1), steps=3, trainable=spec)
    with pytest.raises(hybrax.ConfigurationError, match="window_stride must be an int >= 1"):
        Curriculum([(2, 1)], window_stride=0)
