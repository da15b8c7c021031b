"""Curriculum training: `fit` in stages of growing unroll length."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
from jaxtyping import PRNGKeyArray, PyTree

from hybrax.core import ConfigurationError

from ._data import sliding_windows
from ._losses import UnrolledLoss
from ._train import FitResult, fit

__all__ = ["fit_curriculum"]


def fit_curriculum(
    model: PyTree,
    trajectories: PyTree,
    stages: Any,
    optimizer: Any,
    *,
    window_stride: int = 1,
    batch_size: int | None = None,
    key: PRNGKeyArray | None = None,
    trainable: PyTree | Callable[[Any], bool] = eqx.is_inexact_array,
    loss: Callable[[int], Callable[[PyTree, PyTree], Any]] = UnrolledLoss,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool = False,
) -> FitResult:
    """Train a stepper through unrolls of growing length, one `fit` per stage.

    Unrolled training from the start is slow and unstable (an untrained model drifts far
    in a long unroll and its gradients explode); unrolling a few steps first and then
    longer (Kochkov et al. 2021; "pushforward" curricula) trains faster and ends where
    long unrolls aim: stable multi-step forecasts. Stage ``(k, n)`` cuts ``trajectories``
    into windows of ``k + 1`` states (`sliding_windows`, ``window_stride`` apart) and runs
    ``n`` optimizer steps of `fit` on ``loss(k)`` (default `UnrolledLoss`: the mean
    squared error along a ``k``-step rollout, differentiated through every step). Each
    stage starts from the previous stage's model with a fresh optimizer state.

    Parameters
    ----------
    model
        The stepper to train (e.g. a `Corrected` solver or a stepper around a `Closure`).
    trajectories
        States with leading axes ``(members, times)``, one every model step (e.g. from
        `generate_trajectories`).
    stages
        A sequence of ``(unroll_steps, optimizer_steps)`` integer pairs, run in order
        (checked here, with a `hybrax.ConfigurationError` naming the bad stage).
    optimizer
        An ``optax.GradientTransformation`` used afresh in every stage, or a callable
        ``optimizer_steps -> GradientTransformation`` (so a schedule can span each stage,
        e.g. ``lambda n: optax.adam(optax.cosine_decay_schedule(1e-3, n))``).
    window_stride
        Offset in steps between consecutive training windows.
    batch_size
        Windows per optimizer step, capped at the number of windows of the stage (default:
        all of them).
    key
        Data-order key; stage ``i`` uses ``jax.random.fold_in(key, i)``.
    trainable
        The trained leaves, as in `fit` (e.g. ``trainable_filter(model, lambda m: m.net)``).
    loss
        ``unroll_steps -> loss_fn``; default `UnrolledLoss`.
    checkpoint_dir
        With a folder, stage ``i`` checkpoints into ``checkpoint_dir/stage{i}_unroll{k}``
        and a repeated call resumes where it stopped (finished stages are restored).
    progress
        Progress bars.

    Returns
    -------
    FitResult
        ``model`` is the trained model after the last stage, ``opt_state`` that stage's
        optimizer state; ``history["train"]`` holds every stage's losses with ``step``
        counted over all stages and the stage's ``unroll``; ``step`` and ``wall_time`` are
        totals.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, optax, hybrax
    >>> from hybrax.climate import Lorenz96
    >>> from hybrax.hybrid import Closure, fit_curriculum, generate_trajectories, trainable_filter
    >>> truth = hybrax.RK4(Lorenz96(8, 8.0), 0.01)
    >>> data = generate_trajectories(truth, lambda k: Lorenz96(8, 8.0).initial_state(k),
    ...     jax.random.key(0), n=2, n_steps=40)
    >>> net = hybrax.nn.MLP(8, 8, 8, 1, key=jax.random.key(1))
    >>> model = hybrax.RK4(Closure(Lorenz96(8, 7.0), net), 0.01)
    >>> result = fit_curriculum(model, data, [(2, 20), (8, 20)], optax.adam(1e-3),
    ...     batch_size=4, trainable=trainable_filter(model, lambda m: m.dynamics.net))
    >>> result.step, sorted({e["unroll"] for e in result.history["train"]})
    (40, [2, 8])
    """
    stages = _check_stages(stages)
    key = jax.random.key(0) if key is None else key
    history: dict[str, list] = {"train": [], "eval": []}
    total_steps, wall, opt_state = 0, 0.0, None
    for index, (unroll, num_steps) in enumerate(stages):
        windows = sliding_windows(trajectories, unroll + 1, stride=window_stride)
        available = jax.tree.leaves(windows)[0].shape[0]
        folder = None
        if checkpoint_dir is not None:
            folder = Path(checkpoint_dir) / f"stage{index}_unroll{unroll}"
        result = fit(
            model,
            loss(unroll),
            windows,
            _stage_optimizer(optimizer, num_steps),
            num_steps,
            batch_size=None if batch_size is None else min(batch_size, available),
            key=jax.random.fold_in(key, index),
            trainable=trainable,
            checkpoint_dir=folder,
            progress=progress,
        )
        model, opt_state = result.model, result.opt_state
        for kind in ("train", "eval"):
            for entry in result.history.get(kind, []):
                history[kind].append(
                    {**entry, "step": total_steps + entry["step"], "unroll": unroll}
                )
        total_steps += result.step
        wall += result.wall_time
    return FitResult(model, opt_state, total_steps, history, wall)


def _check_stages(stages) -> tuple[tuple[int, int], ...]:
    example = "e.g. stages=[(4, 500), (16, 1000)]"
    try:
        pairs = tuple(tuple(stage) for stage in stages)
    except TypeError:
        raise ConfigurationError(
            f"fit_curriculum: stages must be (unroll_steps, optimizer_steps) pairs, {example}; "
            f"got {stages!r}"
        ) from None
    if not pairs:
        raise ConfigurationError(f"fit_curriculum: stages is empty; {example}")
    for stage in pairs:
        ok = len(stage) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in stage)
        if not ok or stage[0] < 1 or stage[1] < 0:
            raise ConfigurationError(
                "fit_curriculum: every stage must be (unroll_steps >= 1, optimizer_steps >= 0) "
                f"as integers, {example}; got {stage!r}"
            )
    return pairs


def _stage_optimizer(optimizer, num_steps: int):
    if hasattr(optimizer, "init") and hasattr(optimizer, "update"):
        return optimizer
    if callable(optimizer):
        return optimizer(num_steps)
    raise ConfigurationError(
        "fit_curriculum: optimizer must be an optax.GradientTransformation or a callable "
        f"num_steps -> GradientTransformation, e.g. optax.adam(1e-3); got {optimizer!r}"
    )
