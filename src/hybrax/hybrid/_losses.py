"""Training losses: one-step, unrolled through the solver, pushforward, and regression.

Each loss is a small module called as ``loss(model, batch) -> scalar``, the form
`hybrax.hybrid.fit` takes. The trajectory losses read ``batch`` as windows of states: a
state record whose leaves have leading axes ``(batch, window_length)`` (see
`hybrax.hybrid.sliding_windows`); entry 0 of a window is the initial condition and entries
1, 2, ... the targets one, two, ... steps later, in the model's own ``dt``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PyTree, Scalar

from hybrax.core import AbstractStepper, rollout
from hybrax.core._rollout import Checkpoint

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
        raise ValueError("loss: nothing to compare (no floating leaves in the observation)")
    total = sum(jnp.sum(jnp.abs(p - t.astype(p.dtype)) ** 2) for p, t in pairs)
    count = sum(p.size for p, _ in pairs)
    return total / count


def _window_length(batch: PyTree) -> int:
    leaves = jax.tree.leaves(batch)
    if not leaves:
        raise ValueError("loss: the batch holds no arrays (empty dataset?)")
    if any(jnp.ndim(x) < 2 for x in leaves):
        raise ValueError(
            "loss: a trajectory batch needs leaves with leading axes (batch, window); got "
            f"shapes {[jnp.shape(x) for x in leaves]}; build windows with "
            "hybrax.hybrid.sliding_windows"
        )
    return int(jnp.shape(leaves[0])[1])


def _check_window(who: str, batch: PyTree, needed: int) -> None:
    length = _window_length(batch)
    if length < needed:
        raise ValueError(
            f"{who} needs windows of at least {needed} states (initial state + targets), got "
            f"windows of {length}; use hybrax.hybrid.sliding_windows(..., length={needed})"
        )


def _at(batch: PyTree, index) -> PyTree:
    return jax.tree.map(lambda x: x[:, index], batch)


def _unrolled_error(model, initial, targets, num_steps, observe, checkpoint) -> Scalar:
    """Mean squared error of a ``num_steps`` rollout from ``initial`` (batched) against
    ``targets`` (batch, num_steps, ...)."""

    def one(state):
        _, saved = rollout(model, state, num_steps, observe=observe, checkpoint=checkpoint)
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

    def __call__(self, model: AbstractStepper, batch: PyTree) -> Scalar:
        _check_window("OneStepLoss", batch, 2)
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
    >>> import jax, hybrax
    >>> model = hybrax.climate.Lorenz96(num_variables=8)
    >>> stepper = hybrax.RK4(model, 0.01)
    >>> data = hybrax.hybrid.generate_trajectories(stepper, model.initial_state,
    ...     jax.random.key(0), n=2, n_steps=20)
    >>> windows = hybrax.hybrid.sliding_windows(data, length=6)
    >>> float(UnrolledLoss(5, checkpoint="sqrt")(stepper, windows)) < 1e-10
    True
    """

    num_steps: int = eqx.field(static=True)
    checkpoint: Checkpoint = eqx.field(static=True, default=None)
    observe: Callable[[PyTree], PyTree] = eqx.field(static=True, default=without_time)

    def __check_init__(self):
        _check_steps("UnrolledLoss", "num_steps", self.num_steps, 1)

    def __call__(self, model: AbstractStepper, batch: PyTree) -> Scalar:
        k = self.num_steps
        _check_window("UnrolledLoss", batch, k + 1)
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

    def __call__(self, model: AbstractStepper, batch: PyTree) -> Scalar:
        warm, k = self.num_warmup, self.num_steps
        _check_window("PushforwardLoss", batch, warm + k + 1)
        initial = _at(batch, 0)
        if warm:
            frozen = jax.tree.map(
                lambda x: jax.lax.stop_gradient(x) if eqx.is_array(x) else x, model
            )
            initial = jax.vmap(lambda s: rollout(frozen, s, warm, save_every=None)[0])(initial)
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

    def __call__(self, net: Callable, batch: PyTree) -> Scalar:
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
            raise ValueError(
                "RegressionLoss expects batch = (inputs, targets), each with a leading batch "
                f"axis; got a {type(batch).__name__}"
            )
        inputs, targets = batch
        predictions = jax.vmap(net)(inputs)
        pred_shapes = [jnp.shape(x) for x in jax.tree.leaves(predictions)]
        target_shapes = [jnp.shape(x) for x in jax.tree.leaves(targets)]
        if pred_shapes != target_shapes:
            raise ValueError(
                f"RegressionLoss: the network's outputs have shapes {pred_shapes} (with the "
                f"batch axis) but the targets have {target_shapes}"
            )
        return _mean_squared_error(predictions, targets) / self.scale


def _check_steps(who: str, name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{who}: {name} must be an int >= {minimum}, got {value!r}")
