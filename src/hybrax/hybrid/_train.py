"""The trainer: optax updates of a model's trainable leaves, checkpointed and resumable."""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray, PyTree, Scalar

from hybrax.core import CheckpointError, ConfigurationError, NonFiniteLossError

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
    reproduces the uninterrupted run exactly. A damaged latest checkpoint (it fails its
    checksums, or is incomplete) is moved aside with a warning and the newest intact one is
    used.

    Only parameters whose loss *and* gradient were finite are ever checkpointed or
    returned: checkpoint ``s`` is written once the loss and gradient of the parameters
    after ``s`` updates have been computed and found finite, and the final parameters are
    checked the same way (one extra loss and gradient evaluation) before they are saved
    and returned. A non-finite loss or gradient at step ``s`` stops training with
    `hybrax.NonFiniteLossError` (``.step == s``), whose ``.result`` holds the newest good
    parameters (those of step ``s - 1``; ``None`` if the initial model already fails).
    The finiteness flags are read back one step late, so the host never stalls the device.

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
    started = time.perf_counter()
    _check_arguments(
        loss_fn, optimizer, key, eval_fn, max_checkpoints, resume, progress, history_path
    )
    _check_int("num_steps", num_steps, 0)
    num_examples = _num_examples(data)
    if batch_size is not None:
        _check_int("batch_size", batch_size, 1)
        if batch_size > num_examples:
            raise ConfigurationError(
                f"fit: batch_size={batch_size} exceeds the {num_examples} examples in data; "
                f"use batch_size <= {num_examples}"
            )
    if eval_every is not None:
        _check_int("eval_every", eval_every, 1)
        if eval_fn is None:
            raise ConfigurationError("fit: eval_every is set but no eval_fn was given")
    if checkpoint_every is not None:
        _check_int("checkpoint_every", checkpoint_every, 1)
        if checkpoint_dir is None:
            raise ConfigurationError(
                "fit: checkpoint_every is set but checkpoint_dir is None; pass a "
                "checkpoint_dir or drop checkpoint_every"
            )
    key = jax.random.key(0) if key is None else key
    if history_path is None and checkpoint_dir is not None:
        history_path = Path(checkpoint_dir) / "history.json"
    check_data = getattr(loss_fn, "check_data", None)
    if callable(check_data):  # e.g. the time spacing of trajectory windows against model.dt
        check_data(model, data)

    spec = trainable
    params, rest = eqx.partition(model, spec)
    rest_arrays, static = eqx.partition(rest, eqx.is_array)
    if not any(eqx.is_inexact_array(x) for x in jax.tree.leaves(params)):
        raise ConfigurationError(
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

        try:
            checkpointer = Checkpointer(checkpoint_dir, max_to_keep=max_checkpoints)
        except ConfigurationError as error:
            raise ConfigurationError(f"fit: checkpoint_dir: {error}") from error
        if not resume and checkpointer.all_steps():
            saved = checkpointer.all_steps()
            checkpointer.close()
            raise ConfigurationError(
                f"fit: checkpoint_dir={os.fspath(checkpoint_dir)!r} already holds checkpoints "
                f"(steps {saved}) and resume=False; pass resume=True to continue from them, "
                "or an empty checkpoint_dir to start afresh"
            )

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
            restored, metadata = checkpointer.restore(
                as_checkpoint(params, opt_state, 0), fallback=True
            )
            params, rest_arrays, opt_state, step = from_checkpoint(restored)
            key = restored["loop"]["key"]
            history = _truncate(metadata.get("history", history), step)
            if step > num_steps:
                warnings.warn(
                    f"fit: the checkpoint in {checkpoint_dir} is at step {step}, beyond "
                    f"num_steps={num_steps}; returning it without training (use another "
                    "checkpoint_dir to train afresh)",
                    stacklevel=2,
                )
        start_step = step

        steps_per_epoch = num_examples // batch_size if batch_size else 1
        update = _make_update(loss_fn, optimizer, static, batch_size, batch_sharding)
        bar = _progress_bar(progress, num_steps, step)
        report_every = max(1, num_steps // 200)
        order, order_epoch = None, -1
        good = None  # (step, params, opt_state): newest parameters known to be good

        def dispatch(step, params, opt_state):
            """Start the loss, gradient and update of ``step`` (asynchronously)."""
            nonlocal order, order_epoch
            epoch, position = divmod(step, steps_per_epoch)
            if batch_size is not None and epoch != order_epoch:  # reshuffle once per epoch
                order = _epoch_order(key, jnp.asarray(epoch, jnp.int32), num_examples)
                if replicated is not None:
                    order = jax.device_put(order, replicated)
                order_epoch = epoch
            return update(
                params, rest_arrays, opt_state, data, order, jnp.asarray(position, jnp.int32)
            )

        def check(s, params, opt_state, status, record=True):
            """Read back step ``s``: stop if its loss or gradient was non-finite; else its
            parameters are good: evaluate and checkpoint them when due, record the loss."""
            nonlocal good
            loss_value, flag = np.asarray(status).tolist()  # one transfer: [loss, finite]
            ok = flag == 1.0
            if not ok:
                _stop_nonfinite(
                    s, loss_value, good, checkpointer, as_checkpoint, from_checkpoint,
                    params, opt_state, rest_arrays, static, history, history_path, started,
                )  # fmt: skip
            good = (s, params, opt_state)
            if s > start_step:
                done = s == num_steps
                if eval_fn is not None and ((eval_every and s % eval_every == 0) or done):
                    model_now = eqx.combine(params, rest_arrays, static)
                    metrics = {k: float(v) for k, v in dict(eval_fn(model_now, s)).items()}
                    history["eval"].append({"step": s, **metrics})
                if checkpointer is not None and (
                    done or (checkpoint_every and s % checkpoint_every == 0)
                ):
                    checkpointer.save(
                        s, as_checkpoint(params, opt_state, s), metadata={"history": history}
                    )
                    _write_history(history_path, history)
            if record:
                history["train"].append({"step": s, "loss": loss_value})
                if bar is not None:
                    bar.update(1)
                    if (s + 1) % report_every == 0 or s + 1 == num_steps:
                        bar.set_postfix(loss=f"{loss_value:.4g}", refresh=False)

        pending = None  # step dispatched but not read back yet
        while step < num_steps:
            new_params, new_opt_state, status = dispatch(step, params, opt_state)
            if pending is not None:
                check(*pending)
            pending = (step, params, opt_state, status)
            params, opt_state = new_params, new_opt_state
            step += 1
        if pending is not None:  # verify the final parameters before saving and returning
            _, _, status = dispatch(step, params, opt_state)
            check(*pending)
            check(step, params, opt_state, status, record=False)
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
        finite = jnp.isfinite(loss)
        for g in jax.tree.leaves(eqx.filter(grads, eqx.is_inexact_array)):
            finite = finite & jnp.all(jnp.isfinite(g))
        with _optax_promotion():
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
        return params, opt_state, jnp.stack([loss, finite.astype(loss.dtype)])

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
        raise ConfigurationError(
            f"fit: data_axis {axis!r} is not an axis of the mesh {mesh.axis_names}"
        )
    devices = mesh.shape[axis]
    per_step = batch_size if batch_size is not None else num_examples
    if per_step % devices:
        raise ConfigurationError(
            f"fit: the batch of {per_step} examples cannot be split evenly over the {devices} "
            f"devices of mesh axis {axis!r}; use a batch_size divisible by {devices}"
        )
    replicated = NamedSharding(mesh, PartitionSpec())
    put = lambda tree: jax.device_put(tree, replicated)  # noqa: E731
    batch_sharding = NamedSharding(mesh, PartitionSpec(axis))
    return put(params), put(rest_arrays), put(opt_state), put(data), batch_sharding, replicated


def _stop_nonfinite(
    step, loss_value, good, checkpointer, as_checkpoint, from_checkpoint,
    params, opt_state, rest_arrays, static, history, history_path, started,
):  # fmt: skip
    """Raise `NonFiniteLossError` for ``step`` with the newest good parameters: those
    verified in memory (step - 1), else the newest checkpoint older than ``step``."""
    where = "kept in memory"
    if good is None and checkpointer is not None:
        for saved in reversed([s for s in checkpointer.all_steps() if s < step]):
            try:
                restored, metadata = checkpointer.restore(
                    as_checkpoint(params, opt_state, 0), step=saved
                )
            except (CheckpointError, OSError) as error:
                warnings.warn(f"fit: skipping checkpoint {saved}: {error}", stacklevel=3)
                continue
            p, rest_arrays, o, s = from_checkpoint(restored)
            good = (s, p, o)
            history = metadata.get("history", history)
            where = f"restored from checkpoint {s} in {checkpointer.directory}"
            break
    if loss_value != loss_value or loss_value in (float("inf"), float("-inf")):
        what = f"the loss became non-finite ({loss_value})"
    else:
        what = f"the gradient became non-finite (NaN or inf) while the loss was {loss_value}"
    advice = (
        "Lower the learning rate, clip gradients (optax.clip_by_global_norm), shorten the "
        "unroll, or check the data and the loss for NaN (e.g. sqrt or log at 0)."
    )
    if good is None:
        _write_history(history_path, _truncate(history, step))
        raise NonFiniteLossError(
            f"fit: {what} at step {step}, the first step of this run: no parameters with a "
            f"finite loss and gradient exist to return (.result is None). {advice}",
            step,
            None,
        )
    good_step, params, opt_state = good
    history = _truncate(history, good_step)
    _write_history(history_path, history)
    model = eqx.combine(params, rest_arrays, static)
    result = FitResult(model, opt_state, good_step, history, time.perf_counter() - started)
    raise NonFiniteLossError(
        f"fit: {what} at step {step}; training stopped. The error's .result holds the "
        f"parameters after {good_step} updates ({where}), the newest whose loss and gradient "
        f"were finite. {advice}",
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
        raise ConfigurationError("fit: data holds no arrays (empty dataset)")
    lengths = {int(jnp.shape(x)[0]) if jnp.ndim(x) else -1 for x in leaves}
    if -1 in lengths:
        raise ConfigurationError(
            "fit: every leaf of data needs a leading example axis; got a scalar"
        )
    if len(lengths) != 1:
        raise ConfigurationError(
            f"fit: every leaf of data needs the same number of examples on its leading axis; "
            f"got {sorted(lengths)}"
        )
    (n,) = lengths
    if n == 0:
        raise ConfigurationError("fit: data holds 0 examples (empty dataset)")
    return n


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"fit: {name} must be an int >= {minimum}, got {value!r}")


def _check_arguments(
    loss_fn, optimizer, key, eval_fn, max_checkpoints, resume, progress, history_path
) -> None:
    if not callable(loss_fn):
        raise ConfigurationError(
            f"fit: loss_fn must be a callable (model, batch) -> scalar such as "
            f"hybrax.hybrid.UnrolledLoss(5), got {loss_fn!r}"
        )
    if not (
        callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None))
    ):
        raise ConfigurationError(
            f"fit: optimizer must be an optax.GradientTransformation such as "
            f"optax.adam(1e-3), got {optimizer!r}"
        )
    if key is not None:
        is_key = isinstance(key, jax.Array) and (
            jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
            or (key.dtype == jnp.uint32 and key.shape == (2,))
        )
        if not is_key:
            raise ConfigurationError(
                f"fit: key must be a PRNG key such as jax.random.key(0), got {key!r}"
            )
    if eval_fn is not None and not callable(eval_fn):
        raise ConfigurationError(
            f"fit: eval_fn must be a callable (model, step) -> dict, got {eval_fn!r}"
        )
    if max_checkpoints is not None and (
        isinstance(max_checkpoints, bool)
        or not isinstance(max_checkpoints, int)
        or max_checkpoints < 1
    ):
        raise ConfigurationError(
            f"fit: max_checkpoints must be None (keep all) or an int >= 1, got {max_checkpoints!r}"
        )
    for name, value in (("resume", resume), ("progress", progress)):
        if not isinstance(value, bool):
            raise ConfigurationError(f"fit: {name} must be True or False, got {value!r}")
    if history_path is not None and not isinstance(history_path, (str, os.PathLike)):
        raise ConfigurationError(
            f"fit: history_path must be a path (str or pathlib.Path), got {history_path!r}"
        )
