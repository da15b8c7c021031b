"""The trainer: optax updates of a model's trainable leaves, checkpointed and resumable."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray, PyTree, Scalar

from hybrax.core import NonFiniteLossError

__all__ = ["FitResult", "NonFiniteLossError", "fit", "trainable_filter"]


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


def trainable_filter(model: PyTree, where: Callable[[PyTree], Any] | None = None) -> PyTree:
    """A filter spec marking which leaves of ``model`` `fit` trains.

    ``where(model)`` picks one part (or a tuple of parts) of the model; its floating arrays
    are trainable and everything else is frozen. With ``where=None`` every floating array
    is trainable, physical parameters included (``jax.grad`` reaches them too).

    Examples
    --------
    >>> import jax, hybrax
    >>> from hybrax.hybrid import Closure, trainable_filter
    >>> net = hybrax.nn.MLP(8, 8, 16, 1, key=jax.random.key(0))
    >>> model = Closure(hybrax.climate.Lorenz96(8, 20.0), net)
    >>> spec = trainable_filter(model, lambda m: m.net)   # train the net, keep F fixed
    >>> spec.dynamics.forcing, spec.net.layers[0].weight
    (False, True)
    """
    if where is None:
        return jax.tree.map(eqx.is_inexact_array, model)
    spec = jax.tree.map(lambda _: False, model)
    part = where(model)
    if isinstance(part, tuple):
        replace = tuple(jax.tree.map(eqx.is_inexact_array, p) for p in part)
    else:
        replace = jax.tree.map(eqx.is_inexact_array, part)
    return eqx.tree_at(where, spec, replace=replace, is_leaf=lambda x: x is None)


def fit(
    model: PyTree,
    loss_fn: Callable[[PyTree, PyTree], Scalar],
    data: PyTree,
    optimizer,
    num_steps: int,
    *,
    batch_size: int | None = None,
    key: PRNGKeyArray | None = None,
    trainable: PyTree | Callable[[Any], bool] = eqx.is_inexact_array,
    eval_fn: Callable[[PyTree, int], Mapping[str, float]] | None = None,
    eval_every: int | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    max_checkpoints: int | None = 3,
    resume: bool = True,
    history_path: str | os.PathLike | None = None,
    progress: bool = True,
    mesh: jax.sharding.Mesh | None = None,
    data_axis: str | None = None,
) -> FitResult:
    """Minimise ``loss_fn(model, batch)`` over the model's trainable leaves with optax.

    Each step draws a minibatch (the data are reshuffled every epoch with a key derived
    from ``key`` and the epoch number, so the data order is a pure function of ``key`` and
    the step), evaluates the loss and its gradient with respect to the trainable leaves
    (`equinox.filter_value_and_grad` inside `equinox.filter_jit`) and applies the
    ``optimizer`` update. Works for any model pytree: a network, a `Closure` inside a
    stepper, a `Corrected` solver, a `hybrax.nn.FlaxModule`.

    Checkpoints (orbax, `hybrax.io.Checkpointer`) hold the model's arrays, the optimizer
    state, the step counter and the data-order key, with the metrics history as metadata;
    calling `fit` again with the same ``checkpoint_dir`` resumes from the latest one and
    reproduces the uninterrupted run exactly. A non-finite loss stops training: the model
    is restored from the last checkpoint and `NonFiniteLossError` (naming the step) is
    raised, carrying that restored `FitResult`.

    Parameters
    ----------
    model
        The initial model (when resuming: a model of the same structure, e.g. freshly
        initialised; its arrays are replaced by the checkpoint's).
    loss_fn
        ``(model, batch) -> scalar``, e.g. `UnrolledLoss` or `RegressionLoss`.
    data
        A pytree of arrays sharing a leading example axis (e.g. trajectory windows from
        `sliding_windows`, or ``(inputs, targets)``).
    optimizer
        An ``optax.GradientTransformation`` (schedules included).
    num_steps
        Total number of optimizer steps (a resumed run counts the restored ones).
    batch_size
        Examples per step (default: the whole dataset each step). Must not exceed the
        number of examples; the last incomplete batch of an epoch is dropped.
    key
        Data-order PRNG key (default ``jax.random.key(0)``).
    trainable
        Filter spec of the trained leaves: a callable on leaves, or a pytree of bools such
        as `trainable_filter(model, where)` (default: every floating array).
    eval_fn
        ``(model, step) -> {name: value}``, called every ``eval_every`` steps and at the
        end; the values are stored in the history.
    eval_every
        Evaluation interval in steps.
    checkpoint_dir
        Directory for orbax checkpoints (and ``history.json``); ``None`` disables them.
    checkpoint_every
        Checkpoint interval in steps (default: only at the end). The final step is always
        checkpointed.
    max_checkpoints
        Number of checkpoints kept.
    resume
        Resume from the latest checkpoint in ``checkpoint_dir`` if there is one.
    history_path
        Where to write the metrics history as JSON (default:
        ``checkpoint_dir/history.json`` when checkpointing, else nowhere).
    progress
        Show a tqdm progress bar with the current loss.
    mesh
        A `jax.sharding.Mesh` for data-parallel training: each batch is sharded along
        ``data_axis`` (default: the mesh's first axis) and the parameters, optimizer state
        and dataset are replicated. Gradients are averaged across devices by XLA, so the
        losses match single-device training up to floating-point reassociation.
    data_axis
        Mesh axis the batch is split over.

    Returns
    -------
    FitResult

    Examples
    --------
    >>> import jax, jax.numpy as jnp, optax, hybrax
    >>> from hybrax.hybrid import RegressionLoss, fit
    >>> net = hybrax.nn.MLP(1, 1, 16, 2, key=jax.random.key(0))
    >>> x = jnp.linspace(-1, 1, 64, dtype=net.dtype)[:, None]
    >>> result = fit(net, RegressionLoss(), (x, x**2), optax.adam(1e-2), 200,
    ...     batch_size=16, progress=False)
    >>> result.history["train"][-1]["loss"] < result.history["train"][0]["loss"]
    True
    """
    import optax  # noqa: F401  (the optimizer is an optax transformation)

    started = time.perf_counter()
    _check_int("num_steps", num_steps, 0)
    num_examples = _num_examples(data)
    if batch_size is not None:
        _check_int("batch_size", batch_size, 1)
        if batch_size > num_examples:
            raise ValueError(
                f"fit: batch_size={batch_size} exceeds the {num_examples} examples in data; "
                f"use batch_size <= {num_examples}"
            )
    if eval_every is not None:
        _check_int("eval_every", eval_every, 1)
        if eval_fn is None:
            raise ValueError("fit: eval_every is set but no eval_fn was given")
    if checkpoint_every is not None:
        _check_int("checkpoint_every", checkpoint_every, 1)
        if checkpoint_dir is None:
            raise ValueError("fit: checkpoint_every is set but checkpoint_dir is None")
    key = jax.random.key(0) if key is None else key
    if history_path is None and checkpoint_dir is not None:
        history_path = Path(checkpoint_dir) / "history.json"

    spec = trainable
    params, rest = eqx.partition(model, spec)
    rest_arrays, static = eqx.partition(rest, eqx.is_array)
    if not any(eqx.is_inexact_array(x) for x in jax.tree.leaves(params)):
        raise ValueError(
            "fit: the model has no trainable floating arrays under the given `trainable` "
            "filter; check trainable= (e.g. trainable_filter(model, lambda m: m.net))"
        )
    with _optax_promotion():
        opt_state = optimizer.init(params)
    step = 0
    history: dict[str, list] = {"train": [], "eval": []}

    batch_sharding = replicated = None
    if mesh is not None:
        params, rest_arrays, opt_state, data, batch_sharding, replicated = _shard(
            mesh, data_axis, batch_size, num_examples, params, rest_arrays, opt_state, data
        )

    checkpointer = None
    if checkpoint_dir is not None:
        from hybrax.io import Checkpointer

        checkpointer = Checkpointer(checkpoint_dir, max_to_keep=max_checkpoints)

    def as_checkpoint(params, opt_state, step):
        return {
            "model": eqx.combine(params, rest_arrays),
            "opt_state": opt_state,
            "loop": {"step": jnp.asarray(step, jnp.int32), "key": key},
        }

    def from_checkpoint(tree):
        """(trainable params, other arrays, optimizer state, step) of a restored checkpoint."""
        loaded_params, loaded_rest = eqx.partition(eqx.combine(tree["model"], static), spec)
        loaded_rest = eqx.filter(loaded_rest, eqx.is_array)
        return loaded_params, loaded_rest, tree["opt_state"], int(tree["loop"]["step"])

    bar = None
    try:
        if checkpointer is not None and resume and checkpointer.latest_step is not None:
            restored, metadata = checkpointer.restore(as_checkpoint(params, opt_state, 0))
            params, rest_arrays, opt_state, step = from_checkpoint(restored)
            key = restored["loop"]["key"]
            history = _truncate(metadata.get("history", history), step)

        steps_per_epoch = num_examples // batch_size if batch_size else 1
        update = _make_update(loss_fn, optimizer, static, batch_size, batch_sharding)
        bar = _progress_bar(progress, num_steps, step)
        last_finite = (params, opt_state, step)
        report_every = max(1, num_steps // 200)
        order, order_epoch = None, -1
        while step < num_steps:
            epoch, position = divmod(step, steps_per_epoch)
            if batch_size is not None and epoch != order_epoch:  # reshuffle once per epoch
                order = _epoch_order(key, jnp.asarray(epoch, jnp.int32), num_examples)
                if replicated is not None:
                    order = jax.device_put(order, replicated)
                order_epoch = epoch
            new_params, new_opt_state, loss = update(
                params, rest_arrays, opt_state, data, order, jnp.asarray(position, jnp.int32)
            )
            loss_value = float(loss)
            if not math.isfinite(loss_value):
                _stop_nonfinite(
                    step, loss_value, checkpointer, as_checkpoint, from_checkpoint,
                    last_finite, rest_arrays, static, history, history_path, started,
                )  # fmt: skip
            last_finite = (params, opt_state, step)
            params, opt_state = new_params, new_opt_state
            history["train"].append({"step": step, "loss": loss_value})
            step += 1
            if bar is not None:
                bar.update(1)
                if step % report_every == 0 or step == num_steps:
                    bar.set_postfix(loss=f"{loss_value:.4g}", refresh=False)
            done = step == num_steps
            if eval_fn is not None and ((eval_every and step % eval_every == 0) or done):
                model_now = eqx.combine(params, rest_arrays, static)
                metrics = {k: float(v) for k, v in dict(eval_fn(model_now, step)).items()}
                history["eval"].append({"step": step, **metrics})
            if checkpointer is not None and (
                done or (checkpoint_every and step % checkpoint_every == 0)
            ):
                checkpointer.save(
                    step, as_checkpoint(params, opt_state, step), metadata={"history": history}
                )
                _write_history(history_path, history)
    finally:
        if bar is not None:
            bar.close()
        if checkpointer is not None:
            checkpointer.close()
    _write_history(history_path, history)
    model = eqx.combine(params, rest_arrays, static)
    return FitResult(model, opt_state, step, history, time.perf_counter() - started)


def _make_update(loss_fn, optimizer, static, batch_size, sharding):
    import optax

    @eqx.filter_jit
    def update(params, rest_arrays, opt_state, data, order, position):
        if batch_size is None:
            batch = data
        else:
            index = jax.lax.dynamic_slice_in_dim(order, position * batch_size, batch_size)
            batch = jax.tree.map(lambda x: jnp.take(x, index, axis=0), data)
        if sharding is not None:
            batch = jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, sharding), batch)

        def loss_of(p):
            return loss_fn(eqx.combine(p, rest_arrays, static), batch)

        loss, grads = eqx.filter_value_and_grad(loss_of)(params)
        with _optax_promotion():
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
        return params, opt_state, loss

    return update


def _optax_promotion():
    """optax mixes Python floats with int32 step counts (Adam's bias correction), which
    ``jax_numpy_dtype_promotion="strict"`` rejects; its updates run under standard
    promotion. The model's own computations (the loss) keep the caller's setting."""
    return jax.numpy_dtype_promotion("standard")


@eqx.filter_jit
def _epoch_order(key, epoch, num_examples: int):
    """The data order of one epoch: a permutation drawn from ``fold_in(key, epoch)``."""
    return jax.random.permutation(jax.random.fold_in(key, epoch), num_examples)


def _shard(mesh, data_axis, batch_size, num_examples, params, rest_arrays, opt_state, data):
    from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

    # The batch is placed with a sharding constraint and XLA propagates it (GSPMD), which
    # needs "Auto" mesh axes; `jax.make_mesh` now defaults to "Explicit" ones.
    mesh = Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * len(mesh.axis_names))
    axis = data_axis if data_axis is not None else mesh.axis_names[0]
    if axis not in mesh.axis_names:
        raise ValueError(f"fit: data_axis {axis!r} is not an axis of the mesh {mesh.axis_names}")
    devices = mesh.shape[axis]
    per_step = batch_size if batch_size is not None else num_examples
    if per_step % devices:
        raise ValueError(
            f"fit: the batch of {per_step} examples cannot be split evenly over the {devices} "
            f"devices of mesh axis {axis!r}; use a batch_size divisible by {devices}"
        )
    replicated = NamedSharding(mesh, PartitionSpec())
    put = lambda tree: jax.device_put(tree, replicated)  # noqa: E731
    batch_sharding = NamedSharding(mesh, PartitionSpec(axis))
    return put(params), put(rest_arrays), put(opt_state), put(data), batch_sharding, replicated


def _stop_nonfinite(
    step, loss_value, checkpointer, as_checkpoint, from_checkpoint, last_finite,
    rest_arrays, static, history, history_path, started,
):  # fmt: skip
    params, opt_state, good_step = last_finite
    history = _truncate(history, good_step)
    where = "the parameters before the last finite-loss step"
    if checkpointer is not None and checkpointer.latest_step is not None:
        restored, metadata = checkpointer.restore(as_checkpoint(params, opt_state, 0))
        params, rest_arrays, opt_state, good_step = from_checkpoint(restored)
        history = _truncate(metadata.get("history", history), good_step)
        where = f"the last good checkpoint in {checkpointer.directory}"
    _write_history(history_path, history)
    model = eqx.combine(params, rest_arrays, static)
    result = FitResult(model, opt_state, good_step, history, time.perf_counter() - started)
    raise NonFiniteLossError(
        f"fit: the loss became non-finite ({loss_value}) at step {step}; training stopped and "
        f"the model was restored to step {good_step} from {where} (see the error's .result). "
        "Lower the learning rate, clip gradients (optax.clip_by_global_norm), shorten the "
        "unroll, or check the data for NaN.",
        step,
        result,
    )


def _truncate(history: Mapping[str, list], step: int) -> dict[str, list]:
    return {
        "train": [dict(e) for e in history.get("train", []) if e["step"] < step],
        "eval": [dict(e) for e in history.get("eval", []) if e["step"] <= step],
    }


def _write_history(path, history) -> None:
    if path is None:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(history))
    tmp.replace(path)


def _progress_bar(enabled: bool, total: int, initial: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="fit", leave=False)


def _num_examples(data: PyTree) -> int:
    leaves = jax.tree.leaves(data)
    if not leaves:
        raise ValueError("fit: data holds no arrays (empty dataset)")
    lengths = {int(jnp.shape(x)[0]) if jnp.ndim(x) else -1 for x in leaves}
    if -1 in lengths:
        raise ValueError("fit: every leaf of data needs a leading example axis; got a scalar")
    if len(lengths) != 1:
        raise ValueError(
            f"fit: every leaf of data needs the same number of examples on its leading axis; "
            f"got {sorted(lengths)}"
        )
    (n,) = lengths
    if n == 0:
        raise ValueError("fit: data holds 0 examples (empty dataset)")
    return n


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"fit: {name} must be an int >= {minimum}, got {value!r}")
