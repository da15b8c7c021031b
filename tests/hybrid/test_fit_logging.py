"""`fit`'s metrics hook (`Metrics`, `JsonLines`), block read-back and progress bars."""

import io
import json
import logging

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
import pytest

import hybrax
from hybrax.hybrid import Evaluate, JsonLines, Metrics, fit


class Scalar(eqx.Module):
    w: jax.Array


def loss(model, batch):
    return (model.w - 3.0) ** 2 + 0 * jnp.sum(batch)


DATA = jnp.zeros((4, 1))


def test_metrics_writes_every_n_steps_with_eval_metrics(tmp_path):
    path = tmp_path / "metrics.jsonl"
    seen = []
    callbacks = [
        Evaluate(lambda model, step: {"w": model.w}, every=5),
        Metrics(JsonLines(path), every=5),
        Metrics(lambda step, m: seen.append((step, dict(m))), every=4),
    ]
    result = fit(Scalar(jnp.zeros(())), loss, DATA, optax.sgd(0.1), steps=10, callbacks=callbacks)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["step"] for r in rows] == [5, 10]
    losses = [e["loss"] for e in result.history["train"]]
    assert rows[0]["loss"] == pytest.approx(sum(losses[:5]) / 5)
    assert rows[1]["loss"] == pytest.approx(sum(losses[5:]) / 5)
    assert rows[1]["w"] == pytest.approx(float(result.model.w))
    assert [s for s, _ in seen] == [4, 8, 10]
    assert seen[-1][1]["loss"] == pytest.approx(sum(losses[8:]) / 2)


def test_metrics_without_writer_logs(caplog):
    with caplog.at_level(logging.INFO, logger="hybrax.hybrid"):
        fit(Scalar(jnp.zeros(())), loss, DATA, optax.sgd(0.1), steps=4,
            callbacks=[Metrics(every=2)])  # fmt: skip
    messages = [r.getMessage() for r in caplog.records if "fit step" in r.getMessage()]
    assert [m.split(":")[0] for m in messages] == ["fit step 2", "fit step 4"]


def test_metrics_errors(wrong_type):
    with pytest.raises(hybrax.ConfigurationError, match="every"):
        Metrics(every=0)
    with wrong_type("write", hybrax.ConfigurationError, "write"):
        Metrics(write="metrics.jsonl")
    with wrong_type("path", hybrax.ConfigurationError, "path"):
        JsonLines(3)


def test_losses_are_read_back_in_blocks(monkeypatch):
    """250 steps without callbacks: the losses come back in 3 transfers (blocks of at most
    100 steps), not one per step; every step's loss is still recorded."""
    calls = []
    device_get = jax.device_get

    def counting(x):
        calls.append(1)
        return device_get(x)

    monkeypatch.setattr(jax, "device_get", counting)
    result = fit(Scalar(jnp.zeros(())), loss, DATA, optax.sgd(0.01), steps=250)
    assert len(calls) == 3
    assert [e["step"] for e in result.history["train"]] == list(range(250))


def test_model_is_kept_only_where_a_callback_asks():
    class Greedy(hybrax.hybrid.AbstractCallback):
        def verified(self, state, step, loss, model, history):
            model()
            return state

    with pytest.raises(hybrax.ConfigurationError, match="interval"):
        fit(Scalar(jnp.zeros(())), loss, DATA, optax.sgd(0.1), steps=5, callbacks=[Greedy()])

    class EveryStep(Greedy):
        def interval(self, steps):
            return 1

    fit(Scalar(jnp.zeros(())), loss, DATA, optax.sgd(0.1), steps=5, callbacks=[EveryStep()])


def test_progress_bar_is_off_when_not_a_terminal():
    out = io.StringIO()  # not a TTY, like a redirected log
    bar = hybrax.core.progress_bar(total=10, file=out)
    bar.update(10)
    bar.close()
    assert bar.disable and out.getvalue() == ""
    shown = hybrax.core.progress_bar(total=10, file=out, disable=False)
    shown.update(10)
    shown.close()
    assert "10/10" in out.getvalue()


def test_tensorboard_writer_records_the_loss_as_event_scalars(tmp_path):
    """`TensorBoard` writes one scalar per metric and step; TensorBoard's own event reader
    (tensorboardX's protobufs, read back with its record reader) finds them."""
    pytest.importorskip("tensorboardX", reason="the tensorboard extra is not installed")
    from tensorboardX.event_file_writer import event_pb2

    from hybrax.hybrid import TensorBoard

    board = TensorBoard(tmp_path / "tb")
    result = fit(
        Scalar(jnp.zeros(())),
        loss,
        DATA,
        optax.sgd(0.1),
        steps=6,
        callbacks=[Metrics(board, every=3)],
    )
    board.close()
    (events,) = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    scalars = []
    data = events.read_bytes()
    offset = 0
    while offset < len(data):  # TFRecord framing: length (8), crc (4), payload, crc (4)
        length = int.from_bytes(data[offset : offset + 8], "little")
        event = event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
        offset += 12 + length + 4
        for value in event.summary.value:
            scalars.append((event.step, value.tag, value.simple_value))
    losses = [e["loss"] for e in result.history["train"]]
    assert [(s, t) for s, t, _ in scalars] == [(3, "train/loss"), (6, "train/loss")]
    assert scalars[0][2] == pytest.approx(sum(losses[:3]) / 3, rel=1e-6)
    assert scalars[1][2] == pytest.approx(sum(losses[3:]) / 3, rel=1e-6)
