"""The trainer: optax updates of a model's trainable leaves, checkpointed and resumable."""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PyTree, Scalar

from hybrax.core import ConfigurationError, NonFiniteLossError

from ._batches import Batches, num_examples
from ._curriculum import Curriculum
from ._fit_checkpoints import CheckpointSession, truncate
from ._fit_checks import (
    check_callbacks,
    check_int,
    check_loss_and_optimizer,
    check_options,
)
from ._fit_options import AbstractCallback, Checkpoints, DataParallel, FitResult, History

__all__ = ["FitResult", "NonFiniteLossError", "fit", "trainable_filter"]

_BLOCK = 100  # losses are read back at least every _BLOCK steps


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


def _moved_into_batches(fit):
    """Turn the removed ``batch_size=``/``key=`` keywords into an error saying how to
    write them now; other keywords reach `fit` (an unknown one gets Python's TypeError)."""

    @functools.wraps(fit)
    def checked(*args, **kwargs):
        if "batch_size" in kwargs or "key" in kwargs:
            now = ["data"]
            if "batch_size" in kwargs:
                now.append(f"batch_size={kwargs['batch_size']!r}")
            if "key" in kwargs:
                now.append("key=key")
            raise TypeError(
                "fit: batch_size= and key= moved into the data argument; write "
                f"fit(model, loss, Batches({', '.join(now)}), optimizer, ...) with "
                "hybrax.hybrid.Batches"
            )
        return fit(*args, **kwargs)

    return checked


@_moved_into_batches
def fit(
    model: PyTree,
    loss: Callable[[PyTree, PyTree], Scalar] | Curriculum,
    data: PyTree | Batches,
    optimizer: Any,
    *,
    steps: int | None = None,
    trainable: PyTree | Callable[[Any], bool] = eqx.is_inexact_array,
    checkpoints: Checkpoints | None = None,
    sharding: DataParallel | None = None,
    callbacks: Sequence[AbstractCallback] = (),
) -> FitResult:
    """Minimise ``loss(model, batch)`` over the model's trainable leaves with optax.

    Each step draws a minibatch as ``data`` says (a `Batches`: ``batch_size`` examples,
    reshuffled every epoch with a key derived from its ``key`` and the epoch number, so the
    data order is a pure function of the key and the step; plain arrays: every example),
    evaluates the loss and its gradient with respect to the trainable leaves
    (`equinox.filter_value_and_grad` inside `equinox.filter_jit`) and applies the
    ``optimizer`` update. Works for any model pytree: a network, a `Closure` inside a
    stepper, a `Corrected` solver, a `hybrax.nn.FlaxModule`.

    Only parameters whose loss *and* gradient were finite are ever checkpointed, passed to
    a callback or returned. Losses are read back in blocks (at most 100 steps, and at the
    callbacks' and checkpoints' intervals), each while the next step runs, so the host
    neither syncs every step nor stalls the device; the device itself keeps the newest
    parameters whose loss and gradient were finite. The final parameters are checked the
    same way (one extra loss and gradient evaluation). A non-finite loss or gradient at step
    ``s`` stops training with `hybrax.NonFiniteLossError` (``.step == s``), whose
    ``.result`` holds the newest good parameters (those of step ``s - 1``; ``None`` if the
    initial model already fails).

    Parameters
    ----------
    model
        The initial model (when resuming: a model of the same structure, e.g. freshly
        initialised; its arrays are replaced by the checkpoint's).
    loss
        ``(model, batch) -> scalar``, e.g. `UnrolledLoss` or `RegressionLoss`; or a
        `Curriculum`, which runs one fit per stage on windows of the trajectories ``data``.
    data
        The training examples: a pytree of arrays sharing a leading example axis (e.g.
        trajectory windows from `sliding_windows`, or ``(inputs, targets)``), all of them
        used every step; or a `Batches` of them, which says how many each step draws
        (``batch_size``) and in what order (``key``). With a `Curriculum`: the
        trajectories, plain or in a `Batches` (whose ``batch_size`` and ``key`` then apply
        to each stage's windows).
    optimizer
        An ``optax.GradientTransformation`` (schedules included); with a `Curriculum`,
        also a callable ``stage_steps -> GradientTransformation``. Optimizers taking extra
        update arguments (``optax.GradientTransformationExtraArgs``) receive ``value``
        (the batch loss), ``grad`` and ``value_fn`` (the loss of the current batch as a
        function of the trainable leaves), so ``optax.lbfgs``, ``optax.polyak_sgd``,
        ``optax.contrib.reduce_on_plateau`` and ``momo`` work: every optimizer of ``optax``
        and ``optax.contrib`` runs in `fit` (tests/hybrid/test_fit_optimizers.py) except
        ``dpsgd`` (per-example gradients), ``galore`` (matrices only) and ``sophia`` (it
        wants the loss as ``obj_fn``, a keyword optax's line searches reject).
    steps
        Total number of optimizer steps (a resumed run counts the restored ones). Required,
        except with a `Curriculum`, whose stages say it.
    trainable
        Filter spec of the trained leaves: a callable on leaves, or a pytree of bools such
        as `trainable_filter(model, where)` (default: every floating array). It is an
        argument rather than part of the model so that one model can be trained in parts
        (the net first, then the physics) without rebuilding it.
    checkpoints
        A `Checkpoints` policy (directory, interval, how many to keep, resume); ``None``
        writes none. A run given the same directory again resumes from the newest intact
        checkpoint and reproduces the uninterrupted run exactly; a damaged one (failed
        checksums, incomplete) is moved aside with a warning.
    sharding
        `DataParallel` to split each batch over a device mesh (``None``: one device).
    callbacks
        `AbstractCallback` objects called as training goes: `Evaluate` (metrics into
        ``history["eval"]``), `History` (the history as JSON), `Progress` (a progress bar),
        `Metrics` (``(step, metrics)`` to a logger such as TensorBoard, W&B or `JsonLines`
        every N steps).

    Returns
    -------
    FitResult

    Examples
    --------
    >>> import jax, jax.numpy as jnp, optax, hybrax
    >>> from hybrax.hybrid import Batches, RegressionLoss, fit
    >>> net = hybrax.nn.MLP(1, 1, 16, 2, key=jax.random.key(0))
    >>> x = jnp.linspace(-1, 1, 64, dtype=net.dtype)[:, None]
    >>> result = fit(net, RegressionLoss(), Batches((x, x**2), batch_size=16), optax.adam(1e-2),
    ...     steps=200)
    >>> result.history["train"][-1]["loss"] < result.history["train"][0]["loss"]
    True
    """
    callbacks = check_callbacks(callbacks)
    check_options(checkpoints, sharding)
    if not isinstance(data, Batches):
        num_examples(data, "fit")  # errors name fit's data, not Batches
        data = Batches(data)
    if isinstance(loss, Curriculum):
        return loss.run(
            fit, model, data, optimizer,
            dict(steps=steps, trainable=trainable, checkpoints=checkpoints, sharding=sharding,
                 callbacks=callbacks),
        )  # fmt: skip
    check_loss_and_optimizer(loss, optimizer)
    if steps is None:
        raise ConfigurationError("fit: steps is required, e.g. steps=1000")
    check_int("steps", steps, 0)
    return _Loop(model, loss, data, optimizer, steps, trainable).run(
        checkpoints, sharding, callbacks
    )


class _Loop:
    """One `fit` call: the model split into trained and fixed parts, and the update loop."""

    def __init__(self, model, loss, batches: Batches, optimizer, steps, trainable):
        self.started = time.perf_counter()
        batches.check_size("fit")
        data = batches.data
        self.num_examples = batches.num_examples
        check_data = getattr(loss, "check_data", None)
        if callable(check_data):  # e.g. the time spacing of trajectory windows vs model.dt
            check_data(model, data)
        self.spec = trainable
        self.params, rest = eqx.partition(model, trainable)
        self.rest_arrays, self.static = eqx.partition(rest, eqx.is_array)
        if not any(eqx.is_inexact_array(x) for x in jax.tree.leaves(self.params)):
            raise ConfigurationError(
                "fit: the model has no trainable floating arrays under the given `trainable` "
                "filter; check trainable= (e.g. trainable_filter(model, lambda m: m.net))"
            )
        with _optax_promotion():
            self.opt_state = optimizer.init(self.params)
        self.loss, self.optimizer, self.data = loss, optimizer, data
        self.steps, self.batch_size = steps, batches.batch_size
        self.steps_per_epoch = batches.steps_per_epoch
        self.key = batches.key
        self.history: dict[str, list] = {"train": [], "eval": []}

    def model(self, params):
        return eqx.combine(params, self.rest_arrays, self.static)

    def run(self, checkpoints, sharding, callbacks) -> FitResult:
        batch_sharding = self.replicated = None
        if sharding is not None:
            per_step = self.batch_size if self.batch_size is not None else self.num_examples
            placed, batch_sharding, self.replicated = sharding.place(
                per_step, (self.params, self.rest_arrays, self.opt_state, self.data)
            )
            self.params, self.rest_arrays, self.opt_state, self.data = placed
        if checkpoints is not None and not any(isinstance(c, History) for c in callbacks):
            callbacks = (*callbacks, History(Path(checkpoints.directory) / "history.json"))
        self.session = None
        if checkpoints is not None:
            self.session = CheckpointSession(
                checkpoints, self.spec, self.rest_arrays, self.static, self.key
            )
        self.callbacks, self.states = callbacks, []
        params, opt_state, step = self.params, self.opt_state, 0
        try:
            if self.session is not None:
                params, opt_state, step, self.history = self.session.resume(
                    params, opt_state, self.history
                )
                self.rest_arrays, self.key = self.session.rest_arrays, self.session.key
                if step > self.steps:
                    warnings.warn(
                        f"fit: the checkpoint in {checkpoints.directory} is at step {step}, "
                        f"beyond steps={self.steps}; returning it without training (use "
                        "another Checkpoints.directory to train afresh)",
                        stacklevel=3,
                    )
            self.start_step, self.good = step, None
            self.states = [c.start(step, self.steps) for c in callbacks]
            update = _make_update(
                self.loss, self.optimizer, self.static, self.batch_size, batch_sharding
            )
            self.order_epoch, self.order = -1, None
            if step < self.steps:
                params, opt_state = self.loop(update, step, params, opt_state)
                step = self.steps
        finally:
            for callback, state in zip(self.callbacks, self.states, strict=False):
                callback.close(state, self.history)
            if self.session is not None:
                self.session.close()
        wall = time.perf_counter() - self.started
        return FitResult(self.model(params), opt_state, step, self.history, wall)

    def dispatch(self, update, step, params, opt_state, good):
        """Start the loss, gradient and update of ``step`` (asynchronously)."""
        epoch, position = divmod(step, self.steps_per_epoch)
        if self.batch_size is not None and epoch != self.order_epoch:  # reshuffle per epoch
            self.order = _epoch_order(self.key, jnp.asarray(epoch, jnp.int32), self.num_examples)
            if self.replicated is not None:
                self.order = jax.device_put(self.order, self.replicated)
            self.order_epoch = epoch
        position = jnp.asarray(position, jnp.int32)
        return update(params, self.rest_arrays, opt_state, good, self.data, self.order, position)

    def boundaries(self) -> tuple[int, ...]:
        """The intervals at which parameters must be read back: the callbacks' and the
        checkpoints' (losses are read back in blocks, not every step)."""
        wanted = [c.interval(self.steps) for c in self.callbacks]
        if self.session is not None:
            wanted.append(self.session.policy.every)
        return tuple(sorted({k for k in wanted if k is not None}))

    def loop(self, update, step, params, opt_state):
        """Dispatch steps ``step .. steps`` (the last one only verifies the final
        parameters) and read their losses back one block behind, so the host never stalls
        the device and never syncs every step. The device keeps the newest parameters
        whose loss and gradient were finite (``good``), so a block that turns non-finite
        still returns the parameters just before the first bad step."""
        intervals = self.boundaries()
        good = (jnp.asarray(True), params, opt_state)
        block, pending = [], None
        for s in range(step, self.steps + 1):
            new_params, new_opt_state, good, status = self.dispatch(
                update, s, params, opt_state, good
            )
            if pending is not None:
                self.read_back(*pending)
                pending = None
            block.append((s, status))
            due = any(s % k == 0 for k in intervals)
            if s == self.steps or due or len(block) >= _BLOCK:
                pending, block = (block, good), []
            params, opt_state = new_params, new_opt_state
        self.read_back(*pending)
        return self.good[1], self.good[2]

    def read_back(self, block, good):
        """Read the losses of ``block`` (one transfer); stop at the first non-finite one,
        else call back, checkpoint when due and record each loss."""
        _, good_params, good_opt_state = good
        statuses = np.asarray(jax.device_get([status for _, status in block])).tolist()
        last = block[-1][0]
        for (s, _), (loss_value, flag) in zip(block, statuses, strict=True):
            if flag != 1.0:
                if s > block[0][0]:  # the device kept the parameters of step s - 1
                    self.good = (s - 1, good_params, good_opt_state)
                self.stop(s, loss_value)
            record = s < self.steps
            if s == last:
                self.good = (s, good_params, good_opt_state)
            self.check(s, loss_value if record else None, s == last)
            if record:
                self.history["train"].append({"step": s, "loss": loss_value})

    def check(self, s, loss_value, kept):
        """The parameters after ``s`` updates are good: call back, checkpoint them when
        due. ``kept``: whether they are still in memory (the end of a block)."""
        done = s == self.steps

        def model():
            if not kept:
                raise ConfigurationError(
                    f"fit: the parameters of step {s} were not kept (losses are read back "
                    "in blocks); a callback that needs the model at a step must say how "
                    "often in AbstractCallback.interval"
                )
            return self.model(self.good[1])

        for i, callback in enumerate(self.callbacks):
            self.states[i] = callback.verified(self.states[i], s, loss_value, model, self.history)
        session = self.session
        if kept and session is not None and s > self.start_step and session.policy.due(s, done):
            session.save(s, self.good[1], self.good[2], self.history)
            for i, callback in enumerate(self.callbacks):
                self.states[i] = callback.checkpointed(self.states[i], s, self.history)

    def stop(self, step, loss_value):
        """Raise `NonFiniteLossError` for ``step`` with the newest good parameters: those
        verified in memory (step - 1), else the newest checkpoint older than ``step``."""
        where, good = "kept in memory", self.good
        if good is None and self.session is not None:
            found = self.session.newest_before(step, self.params, self.opt_state)
            if found is not None:
                good_step, p, o, history = found
                good, self.history = (good_step, p, o), history or self.history
                self.rest_arrays = self.session.rest_arrays
                where = f"restored from checkpoint {good_step} in {self.session.directory}"
        if loss_value != loss_value or loss_value in (float("inf"), float("-inf")):
            what = f"the loss became non-finite ({loss_value})"
        else:
            what = f"the gradient became non-finite (NaN or inf) while the loss was {loss_value}"
        advice = (
            "Lower the learning rate, clip gradients (optax.clip_by_global_norm), shorten the "
            "unroll, or check the data and the loss for NaN (e.g. sqrt or log at 0)."
        )
        if good is None:
            self.history = truncate(self.history, step)
            raise NonFiniteLossError(
                f"fit: {what} at step {step}, the first step of this run: no parameters with "
                f"a finite loss and gradient exist to return (.result is None). {advice}",
                step,
                None,
            )
        good_step, params, opt_state = good
        self.history = truncate(self.history, good_step)
        wall = time.perf_counter() - self.started
        result = FitResult(self.model(params), opt_state, good_step, self.history, wall)
        raise NonFiniteLossError(
            f"fit: {what} at step {step}; training stopped. The error's .result holds the "
            f"parameters after {good_step} updates ({where}), the newest whose loss and "
            f"gradient were finite. {advice}",
            step,
            result,
        )


def _make_update(loss_fn, optimizer, static, batch_size, sharding):
    import optax

    extra_args = isinstance(optimizer, optax.GradientTransformationExtraArgs)

    @eqx.filter_jit
    def update(params, rest_arrays, opt_state, good, data, order, position):
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
        ok, good_params, good_opt_state = good
        ok = ok & finite  # sticky: after the first bad step, `good` stays where it was
        keep = lambda new, old: _where(ok, new, old)  # noqa: E731
        good = (ok, keep(params, good_params), keep(opt_state, good_opt_state))
        with _optax_promotion():
            if extra_args:  # e.g. optax.lbfgs, optax.contrib.reduce_on_plateau
                updates, opt_state = optimizer.update(
                    grads, opt_state, params, value=loss, grad=grads, value_fn=loss_of
                )
            else:
                updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
        return params, opt_state, good, jnp.stack([loss, finite.astype(loss.dtype)])

    return update


def _where(condition, new: PyTree, old: PyTree) -> PyTree:
    """``new`` where ``condition`` holds, else ``old``, leaf by leaf (arrays only)."""
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b) if eqx.is_array(a) else a, new, old)


def _optax_promotion():
    """optax mixes Python floats with int32 step counts (Adam's bias correction), which
    ``jax_numpy_dtype_promotion="strict"`` rejects; its updates run under standard
    promotion. The model's own computations (the loss) keep the caller's setting."""
    return jax.numpy_dtype_promotion("standard")


@eqx.filter_jit
def _epoch_order(key, epoch, num_examples: int):
    """The data order of one epoch: a permutation drawn from ``fold_in(key, epoch)``."""
    return jax.random.permutation(jax.random.fold_in(key, epoch), num_examples)
