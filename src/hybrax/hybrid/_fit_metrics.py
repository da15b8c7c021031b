"""A metrics hook for loggers (TensorBoard, W&B, JSON lines): a `fit` callback that hands
``(step, metrics)`` to a writer every N steps, from losses read back in blocks."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from hybrax.core import ConfigurationError

from ._fit_options import AbstractCallback, _path, _positive_int

__all__ = ["JsonLines", "Metrics", "TensorBoard"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class JsonLines:
    """A metrics writer appending one JSON object per call to ``path``:
    ``{"step": step, **metrics}``.

    Examples
    --------
    >>> from hybrax.hybrid import JsonLines
    >>> JsonLines("run/metrics.jsonl").path
    'run/metrics.jsonl'
    """

    path: str | os.PathLike

    def __post_init__(self):
        _path("JsonLines", "path", self.path)

    def __call__(self, step: int, metrics: Mapping[str, float]) -> None:
        path = Path(self.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")


class TensorBoard:
    """A metrics writer for TensorBoard: one scalar per metric and step, as event files in
    ``logdir`` (``tensorboard --logdir DIR`` shows them). Needs the ``tensorboard`` extra
    (``pip install "hybrax[tensorboard]"``, tensorboardX: no TensorFlow or PyTorch).

    Parameters
    ----------
    logdir
        Folder for the event files (created if needed; files already there are kept).
    prefix
        Prepended to every metric name (default ``"train/"`` for the loss: ``train/loss``).

    Examples
    --------
    >>> import tempfile
    >>> from hybrax.hybrid import TensorBoard
    >>> board = TensorBoard(tempfile.mkdtemp())
    >>> board(10, {"loss": 0.5}); board.close()
    """

    def __init__(self, logdir: str | os.PathLike, prefix: str = "train/"):
        _path("TensorBoard", "logdir", logdir)
        try:
            from tensorboardX import SummaryWriter
        except ImportError as error:
            raise ConfigurationError(
                "TensorBoard needs tensorboardX: pip install 'hybrax[tensorboard]' "
                "(or pass any write(step, metrics) callable to Metrics)"
            ) from error
        self.logdir = os.fspath(logdir)
        self.prefix = prefix
        self._writer = SummaryWriter(self.logdir)

    def __call__(self, step: int, metrics: Mapping[str, float]) -> None:
        for name, value in metrics.items():
            self._writer.add_scalar(self.prefix + name, float(value), int(step))
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


@dataclasses.dataclass(frozen=True)
class Metrics(AbstractCallback):
    """Hand the training metrics to ``write(step, metrics)`` every ``every`` steps and at
    the end: the hook for TensorBoard, Weights & Biases or any logger.

    ``metrics`` holds ``"loss"`` (the mean training loss since the previous write) and the
    metrics of any `Evaluate` entry recorded at that step (put the `Evaluate` callback
    before this one). The losses come from `fit`'s block read-back: no extra host sync.

    Parameters
    ----------
    write
        ``(step, {name: float}) -> None``, e.g. `JsonLines` (built in), or
        `TensorBoard` (built in, the ``tensorboard`` extra), or
        ``lambda step, m: wandb.log(m, step=step)`` for Weights & Biases.
        With ``write=None`` the metrics go to the ``hybrax.hybrid`` logger at INFO level.
    every
        Interval in optimizer steps (default 100).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, optax, hybrax
    >>> from hybrax.hybrid import Metrics, RegressionLoss, fit
    >>> net = hybrax.nn.MLP(1, 1, 8, 1, key=jax.random.key(0))
    >>> x = jnp.linspace(-1, 1, 16, dtype=net.dtype)[:, None]
    >>> seen = []
    >>> _ = fit(net, RegressionLoss(), (x, x**2), optax.adam(1e-2), steps=20,
    ...     callbacks=[Metrics(lambda step, m: seen.append(step), every=10)])
    >>> seen
    [10, 20]
    """

    write: Callable[[int, Mapping[str, float]], None] | None = None
    every: int = 100

    def __post_init__(self):
        if self.write is not None and not callable(self.write):
            raise ConfigurationError(
                "Metrics: write must be None or a callable (step, metrics) -> None such as "
                f"JsonLines('metrics.jsonl'), got {self.write!r}"
            )
        _positive_int("Metrics", "every", self.every)

    def interval(self, steps):
        return self.every

    def start(self, step, steps):
        return {"start": step, "steps": steps, "sum": 0.0, "count": 0}

    def verified(self, state, step, loss, model, history):
        if step > state["start"] and (step % self.every == 0 or step == state["steps"]):
            metrics = {}
            if state["count"]:
                metrics["loss"] = state["sum"] / state["count"]
            for entry in history["eval"]:
                if entry["step"] == step:
                    metrics.update({k: v for k, v in entry.items() if k != "step"})
            if metrics:
                self._emit(step, metrics)
            state = {**state, "sum": 0.0, "count": 0}
        if loss is not None:
            state = {**state, "sum": state["sum"] + loss, "count": state["count"] + 1}
        return state

    def _emit(self, step, metrics):
        if self.write is None:
            text = ", ".join(f"{k}={v:.6g}" for k, v in metrics.items())
            logger.info("fit step %d: %s", step, text)
        else:
            self.write(step, metrics)
