"""Training losses: one-step, unrolled through the solver, pushforward, and regression.

Each loss is a small module called as ``loss(model, batch) -> scalar``, the form
`hybrax.hybrid.fit` takes. The trajectory losses read ``batch`` as windows of states: a
state record whose leaves have leading axes ``(batch, window_length)`` (see
`hybrax.hybrid.sliding_windows`); entry 0 of a window is the initial condition and entries
1, 2, ... the targets one, two, ... steps later, in the model's own ``dt``. When the states
carry a ``time`` field, its spacing within the windows is compared with the model's ``dt``
(data saved every 10 steps used with a per-step model raises `hybrax.DataMismatchError`
instead of training against targets 10 steps farther ahead); `hybrax.hybrid.fit` runs that
check once on the whole dataset before training (``loss.check_data(model, data)``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PyTree, Scalar

from hybrax.core import (
    AbstractStepper,
    Checkpoint,
    ConfigurationError,
    DataMismatchError,
    concrete_or_none,
    rollout,
)

__all__ = [
    "OneStepLoss",
    "PushforwardLoss",
    "RegressionLoss",
    "UnrolledLoss",
    "without_time",
]


def without_time(state: PyTree) -> PyTree:
    """The state's fields other than ``time``, as a dict (a bare array is returned as is).

    The default ``observe`` of the trajectory losses: errors are measured on every field
    except the clock.
    """
    if eqx.is_array(state) or not dataclasses.is_dataclass(state):
        return state
    return {f.name: getattr(state, f.name) for f in dataclasses.fields(state) if f.name != "time"}


def _mean_squared_error(prediction: PyTree, target: PyTree) -> Scalar:
    """Mean of squared differences over every floating element of the pytrees (pooled)."""
    pairs = [
        (p, t)
        for p, t in zip(jax.tree.leaves(prediction), jax.tree.leaves(target), strict=True)
        if jnp.issubdtype(jnp.result_type(p), jnp.inexact)
    ]
    if not pairs:
        raise ConfigurationError("loss: nothing to compare (no floating leaves in the observation)")
    total = sum(jnp.sum(jnp.abs(p - t.astype(p.dtype)) ** 2) for p, t in pairs)
    count = sum(p.size for p, _ in pairs)
    return total / count


def _window_length(batch: PyTree) -> int:
    leaves = jax.tree.leaves(batch)
    if not leaves:
        raise ConfigurationError("loss: the batch holds no arrays (empty dataset?)")
    if any(jnp.ndim(x) < 2 for x in leaves):
        raise ConfigurationError(
            "loss: a trajectory batch needs leaves with leading axes (batch, window); got "
            f"shapes {[jnp.shape(x) for x in leaves]}; build windows with "
            "hybrax.hybrid.sliding_windows"
        )
    return int(jnp.shape(leaves[0])[1])


def _check_window(who: str, batch: PyTree, needed: int) -> None:
    length = _window_length(batch)
    if length < needed:
        raise ConfigurationError(
            f"{who} needs windows of at least {needed} states (initial state + targets), got "
            f"windows of {length}; use hybrax.hybrid.sliding_windows(..., length={needed})"
        )


def _window_times(batch: PyTree):
    """The ``time`` leaf of a batch of windows, shape (batch, window), or ``None``."""
    if isinstance(batch, Mapping):
        times = batch.get("time")
    elif dataclasses.is_dataclass(batch) and any(
        f.name == "time" for f in dataclasses.fields(batch)
    ):
        times = batch.time
    else:
        return None
    if not eqx.is_array(times) or times.ndim != 2 or times.shape[1] < 2:
        return None
    if not jnp.issubdtype(times.dtype, jnp.floating):
        return None
    return times


def _model_dt(model):
    try:
        dt = getattr(model, "dt", None)
    except Exception:  # a dt property that cannot be evaluated: nothing to compare
        return None
    if dt is None or isinstance(dt, bool) or jnp.size(dt) != 1:
        return None
    return dt


def _bad_spacing(times, dt, xp):
    """Mask of window steps whose time spacing differs from ``dt`` (5% plus round-off);
    a zero spacing (time not advanced by the data's stepper) is not compared."""
    spacing = times[:, 1:] - times[:, :-1]
    dt = xp.asarray(dt, dtype=times.dtype).reshape(())
    eps = float(jnp.finfo(times.dtype).eps)
    tolerance = 0.05 * xp.abs(dt) + 16 * eps * xp.max(xp.abs(times))
    return (spacing != 0) & (xp.abs(spacing - dt) > tolerance), spacing


def _check_time_spacing(who: str, model, batch: PyTree, steps: int) -> PyTree:
    """Compare the windows' ``time`` spacing with ``model.dt``: a `DataMismatchError` now
    when both are concrete, a run-time `equinox.error_if` when traced. Returns ``batch``."""
    times, dt = _window_times(batch), _model_dt(model)
    if times is None or dt is None:
        return batch
    concrete_times, concrete_dt = concrete_or_none(times), concrete_or_none(dt)
    if concrete_times is not None and concrete_dt is not None:
        if not np.isfinite(concrete_dt):
            return batch
        bad, spacing = _bad_spacing(concrete_times, concrete_dt, np)
        if np.any(bad):
            found = float(spacing[bad].ravel()[0])
            step = float(concrete_dt)
            ratio = found / step if step else math.inf
            raise DataMismatchError(
                f"{who}: the data's states are {found:.6g} time units apart (the `time` of "
                f"consecutive window entries) but the model steps dt={step:.6g}, so a "
                f"{steps}-step rollout would be compared with targets {ratio:.3g}x as far "
                "ahead. Use data saved once per model step (generate_trajectories(truth, "
                f"..., save_every=n) with n * truth_dt == {step:.6g}), or a model with "
                f"dt={found:.6g}"
            )
        return batch
    bad, _ = _bad_spacing(times, dt, jnp)
    return eqx.error_if(
        batch,
        jnp.any(bad),
        f"DataMismatchError: {who}: the `time` spacing of the data windows differs from the "
        "model's dt (checked at run time because the data or dt were traced); use data "
        "saved once per model step or a model whose dt is the data's spacing",
    )


def _check_observe(who: str, observe) -> None:
    if not callable(observe):
        raise ConfigurationError(
            f"{who}: observe must be a function state -> what is compared, got {observe!r}"
        )


def _check_checkpoint(who: str, checkpoint) -> None:
    ok = checkpoint is None or checkpoint == "sqrt"
    ok = ok or (
        isinstance(checkpoint, int) and not isinstance(checkpoint, bool) and checkpoint >= 1
    )
    if not ok:
        raise ConfigurationError(
            f"{who}: checkpoint must be None, 'sqrt' or an int >= 1 (steps per segment), got "
            f"{checkpoint!r}"
        )


def _at(batch: PyTree, index) -> PyTree:
    return jax.tree.map(lambda x: x[:, index], batch)


def _unrolled_error(model, initial, targets, num_steps, observe, checkpoint) -> Scalar:
    """Mean squared error of a ``num_steps`` rollout from ``initial`` (batched) against
    ``targets`` (batch, num_steps, ...)."""

    # check_finite=False: a state that blows up makes the loss non-finite, which `fit`
    # catches and answers with NonFiniteLossError and the last good parameters; a run-time
    # error raised inside the jitted training step would skip that restore.
    def one(state):
        _, saved = rollout(
            model, state, num_steps, observe=observe, checkpoint=checkpoint, check_finite=False
        )
        return saved

    predictions = jax.vmap(one)(initial)
    return _mean_squared_error(predictions, jax.vmap(jax.vmap(observe))(targets))


class OneStepLoss(eqx.Module):
    """Mean squared error of one model step: ``|observe(step(x_0)) - observe(x_1)|^2``.

    The cheapest ("teacher forcing") loss; models trained on it alone often drift in long
    rollouts because they never see their own errors.

    Parameters
    ----------
    observe
        What is compared (default: every field except ``time``, see `without_time`).

    Examples
    --------
    >>> import jax, hybrax
    >>> model = hybrax.climate.Lorenz96(num_variables=8)
    >>> stepper = hybrax.RK4(model, 0.01)
    >>> data = hybrax.hybrid.generate_trajectories(stepper, model.initial_state,
    ...     jax.random.key(0), n=2, n_steps=10)
    >>> windows = hybrax.hybrid.sliding_windows(data, length=2)
    >>> float(OneStepLoss()(stepper, windows)) < 1e-10
    True
    """

    observe: Callable[[PyTree], PyTree] = eqx.field(static=True, default=without_time)

    def __check_init__(self):
        _check_observe("OneStepLoss", self.observe)

    def check_data(self, model: AbstractStepper, data: PyTree) -> None:
        """Raise `hybrax.DataMismatchError` if the windows' time spacing is not model.dt."""
        _check_time_spacing("OneStepLoss", model, data, 1)

    def __call__(self, model: AbstractStepper, batch: PyTree) -> Scalar:
        _check_window("OneStepLoss", batch, 2)
        batch = _check_time_spacing("OneStepLoss", model, _at(batch, slice(0, 2)), 1)
        return _unrolled_error(model, _at(batch, 0), _at(batch, slice(1, 2)), 1, self.observe, None)


class UnrolledLoss(eqx.Module):
    """Mean squared error over a ``num_steps`` rollout, differentiated through every step.

    ``(1 / k) sum_{i=1..k} |observe(step^i(x_0)) - observe(x_i)|^2`` with ``k =
    num_steps``: the "online", "a posteriori" or solver-in-the-loop loss (Um et al. 2020,
    Kochkov et al. 2021, Frezat et al. 2022). The gradient flows through the solver, so the
    network learns to correct the errors it causes itself. ``checkpoint`` is passed to
    `hybrax.rollout` to bound the memory of the backward pass (``"sqrt"``).

    Parameters
    ----------
    num_steps
        Steps unrolled (static, >= 1); windows need ``num_steps + 1`` states.
    checkpoint
        Rematerialisation policy of `hybrax.rollout` (``None``, ``"sqrt"``, or an int).
    observe
        What is compared (default: every field except ``time``).

    Examples
    --------
    >>> import equinox as eqx, jax, hybrax
    >>> model = hybrax.climate.Lorenz96(num_variables=8)
    >>> stepper = hybrax.RK4(model, 0.01)
    >>> data = hybrax.hybrid.generate_trajectories(stepper, model.initial_state,
    ...     jax.random.key(0), n=2, n_steps=20)
    >>> windows = hybrax.hybrid.sliding_windows(data, length=6)
    >>> loss = eqx.filter_jit(UnrolledLoss(5, checkpoint="sqrt"))
    >>> float(loss(stepper, windows)) < 1e-10
    True
    """

    num_steps: int = eqx.field(static=True)
    checkpoint: Checkpoint = eqx.field(static=True, default=None)
    observe: Callable[[PyTree], PyTree] = eqx.field(static=True, default=without_time)

    def __check_init__(self):
        _check_steps("UnrolledLoss", "num_steps", self.num_steps, 1)
        _check_checkpoint("UnrolledLoss", self.checkpoint)
        _check_observe("UnrolledLoss", self.observe)

    def check_data(self, model: AbstractStepper, data: PyTree) -> None:
        """Raise `hybrax.DataMismatchError` if the windows' time spacing is not model.dt."""
        _check_time_spacing("UnrolledLoss", model, data, self.num_steps)

    def __call__(self, model: AbstractStepper, batch: PyTree) -> Scalar:
        k = self.num_steps
        _check_window("UnrolledLoss", batch, k + 1)
        batch = _check_time_spacing("UnrolledLoss", model, _at(batch, slice(0, k + 1)), k)
        targets = _at(batch, slice(1, k + 1))
        return _unrolled_error(model, _at(batch, 0), targets, k, self.observe, self.checkpoint)


class PushforwardLoss(eqx.Module):
    """The pushforward trick (Brandstetter, Worrall & Welling, ICLR 2022).

    The model first runs ``num_warmup`` steps from ``x_0`` *without* gradient
    (`jax.lax.stop_gradient` on the result), then ``num_steps`` steps with gradient, and is
    compared with the truth at steps ``num_warmup + 1 .. num_warmup + num_steps``. It trains
    the model on inputs drawn from its own (slightly wrong) distribution, which stabilises
    long rollouts, at the cost of a forward pass only for the warm-up. (Brandstetter et al.
    also randomise the warm-up length; draw ``num_warmup`` per run or combine several
    losses for that.)

    Parameters
    ----------
    num_warmup
        Steps unrolled without gradient (static, >= 0).
    num_steps
        Steps with gradient (static, >= 1; the paper uses 1).
    checkpoint
        Rematerialisation policy for the gradient steps.
    observe
        What is compared (default: every field except ``time``).

    Examples
    --------
    >>> import jax, hybrax
    >>> model = hybrax.climate.Lorenz96(num_variables=8)
    >>> stepper = hybrax.RK4(model, 0.01)
    >>> data = hybrax.hybrid.generate_trajectories(stepper, model.initial_state,
    ...     jax.random.key(0), n=2, n_steps=20)
    >>> windows = hybrax.hybrid.sliding_windows(data, length=5)
    >>> float(PushforwardLoss(num_warmup=3)(stepper, windows)) < 1e-10
    True
    """

    num_warmup: int = eqx.field(static=True)
    num_steps: int = eqx.field(static=True, default=1)
    checkpoint: Checkpoint = eqx.field(static=True, default=None)
    observe: Callable[[PyTree], PyTree] = eqx.field(static=True, default=without_time)

    def __check_init__(self):
        _check_steps("PushforwardLoss", "num_warmup", self.num_warmup, 0)
        _check_steps("PushforwardLoss", "num_steps", self.num_steps, 1)
        _check_checkpoint("PushforwardLoss", self.checkpoint)
        _check_observe("PushforwardLoss", self.observe)

    def check_data(self, model: AbstractStepper, data: PyTree) -> None:
        """Raise `hybrax.DataMismatchError` if the windows' time spacing is not model.dt."""
        steps = self.num_warmup + self.num_steps
        _check_time_spacing("PushforwardLoss", model, data, steps)

    def __call__(self, model: AbstractStepper, batch: PyTree) -> Scalar:
        warm, k = self.num_warmup, self.num_steps
        _check_window("PushforwardLoss", batch, warm + k + 1)
        batch = _check_time_spacing(
            "PushforwardLoss", model, _at(batch, slice(0, warm + k + 1)), warm + k
        )
        initial = _at(batch, 0)
        if warm:
            frozen = jax.tree.map(
                lambda x: jax.lax.stop_gradient(x) if eqx.is_array(x) else x, model
            )
            initial = jax.vmap(
                lambda s: rollout(frozen, s, warm, save_every=None, check_finite=False)[0]
            )(initial)
            initial = jax.lax.stop_gradient(initial)
        targets = _at(batch, slice(warm + 1, warm + k + 1))
        return _unrolled_error(model, initial, targets, k, self.observe, self.checkpoint)


class RegressionLoss(eqx.Module):
    """Mean squared error of a network on input/target pairs: the "offline" loss.

    ``batch = (inputs, targets)`` with a leading batch axis on both; the network is applied
    to each input with `jax.vmap`. Use it to fit a closure to diagnosed sub-grid terms (the
    offline, a priori approach) before or instead of an `UnrolledLoss`.

    Parameters
    ----------
    scale
        Divides the error (e.g. the targets' variance, to report a normalised loss);
        default 1.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, hybrax
    >>> net = hybrax.nn.MLP(1, 1, 8, 1, key=jax.random.key(0))
    >>> x = jnp.linspace(-1, 1, 32, dtype=net.dtype)[:, None]
    >>> float(RegressionLoss()(net, (x, x**2))) > 0
    True
    """

    scale: float = eqx.field(static=True, default=1.0)

    def __check_init__(self):
        scale = self.scale
        ok = isinstance(scale, (int, float, np.floating)) and not isinstance(scale, bool)
        if not (ok and math.isfinite(scale) and scale > 0):
            raise ConfigurationError(
                f"RegressionLoss: scale must be a positive, finite number (e.g. the targets' "
                f"variance), got {scale!r}"
            )

    def __call__(self, net: Callable, batch: PyTree) -> Scalar:
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
            raise ConfigurationError(
                "RegressionLoss expects batch = (inputs, targets), each with a leading batch "
                f"axis; got a {type(batch).__name__}"
            )
        inputs, targets = batch
        predictions = jax.vmap(net)(inputs)
        pred_shapes = [jnp.shape(x) for x in jax.tree.leaves(predictions)]
        target_shapes = [jnp.shape(x) for x in jax.tree.leaves(targets)]
        if pred_shapes != target_shapes:
            raise ConfigurationError(
                f"RegressionLoss: the network's outputs have shapes {pred_shapes} (with the "
                f"batch axis) but the targets have {target_shapes}"
            )
        return _mean_squared_error(predictions, targets) / self.scale


def _check_steps(who: str, name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{who}: {name} must be an int >= {minimum}, got {value!r}")
