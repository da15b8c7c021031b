"""The objects `fit` takes instead of flags: where to checkpoint, how to shard, what to call
back. Each is a small frozen dataclass, checked when it is built."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
from jaxtyping import PyTree

from hybrax.core import ConfigurationError

__all__ = [
    "AbstractCallback",
    "Checkpoints",
    "DataParallel",
    "Evaluate",
    "FitResult",
    "History",
    "Progress",
]


@dataclasses.dataclass
class FitResult:
    """What `fit` returns.

    Attributes
    ----------
    model
        The trained model (same structure as the one passed in).
    opt_state
        The optimizer state over the trainable leaves.
    step
        Number of optimizer steps taken in total (including resumed ones).
    history
        ``{"train": [{"step", "loss"}, ...], "eval": [{"step", ...metrics}, ...]}``; train
        entry ``i`` is the loss of the parameters before update ``i``; eval entries are
        recorded after ``step`` updates.
    wall_time
        Seconds spent in this call (compilation included).
    """

    model: PyTree
    opt_state: PyTree
    step: int
    history: dict[str, list[dict[str, Any]]]
    wall_time: float = 0.0


def _positive_int(owner: str, name: str, value, *, allow_none: bool = False) -> None:
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        none = "None or " if allow_none else ""
        raise ConfigurationError(f"{owner}: {name} must be {none}an int >= 1, got {value!r}")


def _path(owner: str, name: str, value) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigurationError(
            f"{owner}: {name} must be a path (str or pathlib.Path), got {value!r}"
        )
    return Path(value)


@dataclasses.dataclass(frozen=True)
class Checkpoints:
    """Where and how often `fit` checkpoints, and whether it resumes.

    Orbax checkpoints (`hybrax.io.Checkpointer`, CRC-checked on load) hold the model's
    arrays, the optimizer state, the step counter and the data-order key, with the metrics
    history as metadata; the final step is always checkpointed. Only parameters whose loss
    and gradient came back finite are ever written.

    Parameters
    ----------
    directory
        Folder of the checkpoints (created if needed); ``directory/history.json`` receives
        the metrics history unless a `History` callback says otherwise.
    every
        Checkpoint interval in optimizer steps (default: only the final step).
    keep
        Number of checkpoints kept (``None``: all).
    resume
        Continue from the newest intact checkpoint in ``directory`` if there is one (the
        resumed run reproduces the uninterrupted one exactly). With ``resume=False`` a
        ``directory`` that already holds checkpoints is an error, never overwritten.

    Examples
    --------
    >>> from hybrax.hybrid import Checkpoints
    >>> Checkpoints("run/checkpoints", every=100).keep
    3
    """

    directory: str | os.PathLike
    every: int | None = None
    keep: int | None = 3
    resume: bool = True

    def __post_init__(self):
        _path("Checkpoints", "directory", self.directory)
        _positive_int("Checkpoints", "every", self.every, allow_none=True)
        _positive_int("Checkpoints", "keep", self.keep, allow_none=True)
        if not isinstance(self.resume, bool):
            raise ConfigurationError(
                f"Checkpoints: resume must be True or False, got {self.resume!r}"
            )

    def due(self, step: int, done: bool) -> bool:
        """Whether the parameters after ``step`` updates are checkpointed."""
        return done or (self.every is not None and step % self.every == 0)

    def subfolder(self, name: str) -> Checkpoints:
        """The same policy in ``directory/name`` (e.g. one curriculum stage)."""
        return dataclasses.replace(self, directory=Path(self.directory) / name)


@dataclasses.dataclass(frozen=True)
class DataParallel:
    """Data-parallel training over a device mesh (see `hybrax.parallel.make_mesh`).

    Each batch is split along the mesh axis ``axis`` (default: the mesh's first axis); the
    parameters, optimizer state and dataset are replicated on every device. XLA averages
    the gradients across devices, so the losses match single-device training up to
    floating-point reassociation. The batch (the ``batch_size`` of a `Batches`, or the whole
    dataset) must divide evenly over the axis.

    Examples
    --------
    >>> import hybrax
    >>> from hybrax.hybrid import DataParallel
    >>> DataParallel(hybrax.parallel.make_mesh(1)).axis_name()
    'batch'
    """

    mesh: jax.sharding.Mesh
    axis: str | None = None

    def __post_init__(self):
        if not isinstance(self.mesh, jax.sharding.Mesh):
            raise ConfigurationError(
                "DataParallel: mesh must be a jax.sharding.Mesh such as "
                f"hybrax.parallel.make_mesh(), got {self.mesh!r}"
            )
        if self.axis is not None and self.axis not in self.mesh.axis_names:
            raise ConfigurationError(
                f"DataParallel: axis {self.axis!r} is not an axis of the mesh "
                f"{self.mesh.axis_names}"
            )

    def axis_name(self) -> str:
        """The mesh axis the batch is split over."""
        return self.axis if self.axis is not None else self.mesh.axis_names[0]

    def place(self, per_step: int, trees: tuple):
        """``(replicated trees, batch sharding, replicated sharding)`` for ``per_step``
        examples per step."""
        from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

        from hybrax.parallel import batch_sharding, replicate

        # The batch is placed with a sharding constraint and XLA propagates it (GSPMD),
        # which needs "Auto" mesh axes; `jax.make_mesh` now defaults to "Explicit" ones.
        names = self.mesh.axis_names
        mesh = Mesh(self.mesh.devices, names, axis_types=(AxisType.Auto,) * len(names))
        axis = self.axis_name()
        devices = mesh.shape[axis]
        if per_step % devices:
            raise ConfigurationError(
                f"fit: the batch of {per_step} examples cannot be split evenly over the "
                f"{devices} devices of mesh axis {axis!r}; use Batches(data, batch_size=n) with n "
                f"divisible by {devices}"
            )
        placed = tuple(replicate(tree, mesh) for tree in trees)
        return placed, batch_sharding(mesh, axis), NamedSharding(mesh, PartitionSpec())


class AbstractCallback:
    """Something `fit` calls as training goes; subclass and override what you need.

    Every hook sees only parameters already verified finite. ``state`` is whatever `start`
    returned (callbacks themselves stay immutable, so one callback can serve many runs).

    - ``start(step, steps) -> state``: before the first update (``step`` > 0 on resume);
    - ``verified(state, step, loss, model, history) -> state``: the parameters after
      ``step`` updates are good; ``loss`` is their training loss, or ``None`` for the
      final parameters (checked, not trained on); ``model()`` builds the model;
    - ``checkpointed(state, step, history) -> state``: checkpoint ``step`` was written;
    - ``close(state, history)``: at the end, also when training stops early;
    - ``interval(steps) -> int | None``: how often (in steps) the callback needs ``model()``
      (``None``: only at the end). `fit` reads losses back in blocks rather than every
      step, and keeps the parameters only at the ends of blocks, so ``model()`` works
      only at multiples of this interval and at the end.
    """

    def interval(self, steps: int) -> int | None:
        return None

    def start(self, step: int, steps: int) -> Any:
        return None

    def verified(self, state, step: int, loss, model: Callable[[], PyTree], history) -> Any:
        return state

    def checkpointed(self, state, step: int, history) -> Any:
        return state

    def close(self, state, history) -> None:
        return None


@dataclasses.dataclass(frozen=True)
class Evaluate(AbstractCallback):
    """Evaluate the model every ``every`` steps and at the end, into ``history["eval"]``.

    Parameters
    ----------
    fn
        ``(model, step) -> {name: value}``; the values are stored as floats.
    every
        Interval in optimizer steps (default: only at the end).

    Examples
    --------
    >>> from hybrax.hybrid import Evaluate
    >>> Evaluate(lambda model, step: {"size": 1.0}, every=10).every
    10
    """

    fn: Callable[[PyTree, int], Mapping[str, Any]]
    every: int | None = None

    def __post_init__(self):
        if not callable(self.fn):
            raise ConfigurationError(
                f"Evaluate: fn must be a callable (model, step) -> dict, got {self.fn!r}"
            )
        _positive_int("Evaluate", "every", self.every, allow_none=True)

    def interval(self, steps):
        return self.every

    def start(self, step, steps):
        return (step, steps)

    def verified(self, state, step, loss, model, history):
        start, steps = state
        due = step == steps or (self.every is not None and step % self.every == 0)
        if step > start and due:
            metrics = {k: float(v) for k, v in dict(self.fn(model(), step)).items()}
            history["eval"].append({"step": step, **metrics})
        return state


@dataclasses.dataclass(frozen=True)
class History(AbstractCallback):
    """Write the metrics history as JSON to ``path`` at every checkpoint and at the end.

    With `Checkpoints` and no `History`, `fit` writes ``directory/history.json``.

    Examples
    --------
    >>> from hybrax.hybrid import History
    >>> History("run/history.json").path
    'run/history.json'
    """

    path: str | os.PathLike

    def __post_init__(self):
        _path("History", "path", self.path)

    def write(self, history: Mapping[str, list]) -> None:
        path = Path(self.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(history))
        tmp.replace(path)

    def checkpointed(self, state, step, history):
        self.write(history)
        return state

    def close(self, state, history):
        self.write(history)


@dataclasses.dataclass(frozen=True)
class Progress(AbstractCallback):
    """A tqdm progress bar showing the current loss (refreshed ``updates`` times per run).

    Made by `hybrax.core.progress_bar`: off when stderr is not a terminal (redirected logs),
    a text bar in notebooks without ``ipywidgets``.

    Examples
    --------
    >>> from hybrax.hybrid import Progress
    >>> Progress().updates
    200
    """

    updates: int = 200

    def __post_init__(self):
        _positive_int("Progress", "updates", self.updates)

    def interval(self, steps):
        return max(1, steps // self.updates)

    def start(self, step, steps):
        from hybrax.core import progress_bar

        bar = progress_bar(total=steps, initial=step, desc="fit", leave=False)
        return bar, steps, max(1, steps // self.updates)

    def verified(self, state, step, loss, model, history):
        bar, steps, every = state
        if loss is not None:
            bar.update(1)
            if (step + 1) % every == 0 or step + 1 == steps:
                bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
        return state

    def close(self, state, history):
        state[0].close()
