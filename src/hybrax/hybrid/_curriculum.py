"""Curriculum training: a loss `fit` accepts that runs in stages of growing unroll length."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
from jaxtyping import PyTree

from hybrax.core import ConfigurationError

from ._batches import Batches
from ._data import sliding_windows
from ._fit_options import FitResult, History
from ._losses import UnrolledLoss

__all__ = ["Curriculum"]


@dataclasses.dataclass(frozen=True)
class Curriculum:
    """Unrolled training in stages of growing length; pass it to `fit` as the loss.

    Unrolled training from the start is slow and unstable (an untrained model drifts far
    in a long unroll and its gradients explode); unrolling a few steps first and then
    longer (Kochkov et al. 2021; "pushforward" curricula) trains faster and ends where
    long unrolls aim: stable multi-step forecasts. With ``fit(model, curriculum,
    trajectories, optimizer, ...)``, stage ``(k, n)`` cuts ``trajectories`` (leading axes
    ``(members, times)``, one state every model step, e.g. from `generate_trajectories`)
    into windows of ``k + 1`` states (`sliding_windows`, ``window_stride`` apart) and runs
    ``n`` optimizer steps of `fit` on ``loss(k)`` (default `UnrolledLoss`: the mean squared
    error along a ``k``-step rollout, differentiated through every step). Each stage
    starts from the previous stage's model with a fresh optimizer state: ``optimizer`` may
    be a callable ``stage_steps -> GradientTransformation`` so a schedule spans each stage.

    `fit`'s other arguments apply stage by stage: passed as ``Batches(trajectories,
    batch_size, key=key)``, ``batch_size`` is capped at the windows of the stage and stage
    ``i`` draws its data order from ``jax.random.fold_in(key, i)``;
    `Checkpoints` go to ``directory/stage{i}_unroll{k}`` (a repeated call resumes where it
    stopped; finished stages are restored), callbacks count steps within their stage, and
    a `History` callback receives the whole curriculum's history. ``steps`` may be omitted
    (if given, it must equal the stages' total). The result's ``history["train"]`` holds
    every stage's losses with ``step`` counted over all stages and the stage's ``unroll``;
    ``step`` and ``wall_time`` are totals, ``opt_state`` the last stage's.

    Parameters
    ----------
    stages
        ``(unroll_steps, optimizer_steps)`` integer pairs, run in order.
    loss
        ``unroll_steps -> loss``; default `UnrolledLoss`.
    window_stride
        Offset in steps between consecutive training windows.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, optax, hybrax
    >>> from hybrax.climate import Lorenz96
    >>> from hybrax.hybrid import Batches, Closure, Curriculum, fit, generate_trajectories
    >>> from hybrax.hybrid import trainable_filter
    >>> truth = hybrax.RK4(Lorenz96(8, 8.0), 0.01)
    >>> data = generate_trajectories(truth, lambda k: Lorenz96(8, 8.0).initial_state(k),
    ...     jax.random.key(0), n=2, n_steps=40)
    >>> net = hybrax.nn.MLP(8, 8, 8, 1, key=jax.random.key(1))
    >>> model = hybrax.RK4(Closure(Lorenz96(8, 7.0), net), 0.01)
    >>> result = fit(model, Curriculum([(2, 20), (8, 20)]), Batches(data, batch_size=4),
    ...     optax.adam(1e-3), trainable=trainable_filter(model, lambda m: m.dynamics.net))
    >>> result.step, sorted({e["unroll"] for e in result.history["train"]})
    (40, [2, 8])
    """

    stages: Sequence[tuple[int, int]]
    loss: Callable[[int], Callable[[PyTree, PyTree], Any]] = UnrolledLoss
    window_stride: int = 1

    def __post_init__(self):
        object.__setattr__(self, "stages", _check_stages(self.stages))
        stride = self.window_stride
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
            raise ConfigurationError(
                f"Curriculum: window_stride must be an int >= 1, got {stride!r}"
            )
        if not callable(self.loss):
            raise ConfigurationError(
                "Curriculum: loss must be a callable unroll_steps -> loss such as "
                f"hybrax.hybrid.UnrolledLoss, got {self.loss!r}"
            )

    @property
    def steps(self) -> int:
        """Optimizer steps over all stages."""
        return sum(n for _, n in self.stages)

    def run(self, fit, model, trajectories: Batches, optimizer, options: dict) -> FitResult:
        """`fit` stage by stage (called by `fit` with its ``data`` as a `Batches` and
        ``options`` its keyword arguments)."""
        steps = options.pop("steps")
        if steps is not None and steps != self.steps:
            raise ConfigurationError(
                f"fit: steps={steps!r} but the Curriculum's stages total {self.steps} "
                "optimizer steps; omit steps or change the stages"
            )
        key, batch_size = trajectories.key, trajectories.batch_size
        checkpoints = options.pop("checkpoints")
        callbacks = options.pop("callbacks")
        histories = [c for c in callbacks if isinstance(c, History)]
        callbacks = tuple(c for c in callbacks if not isinstance(c, History))
        history: dict[str, list] = {"train": [], "eval": []}
        total_steps, wall, opt_state = 0, 0.0, None
        for index, (unroll, num_steps) in enumerate(self.stages):
            windows = sliding_windows(trajectories.data, unroll + 1, stride=self.window_stride)
            available = jax.tree.leaves(windows)[0].shape[0]
            size = None if batch_size is None else min(batch_size, available)
            result = fit(
                model,
                self.loss(unroll),
                Batches(windows, size, key=jax.random.fold_in(key, index)),
                _stage_optimizer(optimizer, num_steps),
                steps=num_steps,
                checkpoints=None
                if checkpoints is None
                else checkpoints.subfolder(f"stage{index}_unroll{unroll}"),
                callbacks=callbacks,
                **options,
            )
            model, opt_state = result.model, result.opt_state
            for kind in ("train", "eval"):
                for entry in result.history.get(kind, []):
                    history[kind].append(
                        {**entry, "step": total_steps + entry["step"], "unroll": unroll}
                    )
            total_steps += result.step
            wall += result.wall_time
            for h in histories:
                h.write(history)
        return FitResult(model, opt_state, total_steps, history, wall)


def _check_stages(stages) -> tuple[tuple[int, int], ...]:
    example = "e.g. Curriculum([(4, 500), (16, 1000)])"
    try:
        pairs = tuple(tuple(stage) for stage in stages)
    except TypeError:
        raise ConfigurationError(
            f"Curriculum: stages must be (unroll_steps, optimizer_steps) pairs, {example}; "
            f"got {stages!r}"
        ) from None
    if not pairs:
        raise ConfigurationError(f"Curriculum: stages is empty; {example}")
    for stage in pairs:
        ok = len(stage) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in stage)
        if not ok or stage[0] < 1 or stage[1] < 0:
            raise ConfigurationError(
                "Curriculum: every stage must be (unroll_steps >= 1, optimizer_steps >= 0) "
                f"as integers, {example}; got {stage!r}"
            )
    return pairs


def _stage_optimizer(optimizer, num_steps: int):
    if hasattr(optimizer, "init") and hasattr(optimizer, "update"):
        return optimizer
    if callable(optimizer):
        return optimizer(num_steps)
    raise ConfigurationError(
        "fit: with a Curriculum, optimizer must be an optax.GradientTransformation or a "
        f"callable stage_steps -> GradientTransformation, e.g. optax.adam(1e-3); got {optimizer!r}"
    )
