"""The one time loop: `rollout`, with saved observables and bounded-memory gradients."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, PyTree

from ._contract import AbstractStepper
from ._errors import StepMessages
from ._progress import ProgressCallback

__all__ = ["rollout"]

Checkpoint = None | Literal["sqrt"] | int

_NONFINITE = (
    "hybrax.rollout: the state became non-finite (NaN or inf) at step {step} of {total}. "
    "This usually means the time step is beyond the scheme's stability limit (try a smaller "
    "dt) or the parameters or initial state drive the model to blow up."
)


def rollout(
    stepper: AbstractStepper,
    state: PyTree,
    n_steps: int,
    *,
    save_every: int | None = 1,
    observe: Callable[[PyTree], PyTree] | None = None,
    checkpoint: Checkpoint = None,
    check_finite: bool = False,
    unroll: int = 1,
    progress: bool = False,
) -> tuple[PyTree, PyTree]:
    """Advance ``state`` by ``n_steps`` steps of ``stepper`` in one `jax.lax.scan`.

    Works for any `AbstractStepper` (integrators, emulators, hybrids) and composes with
    `jax.jit`, `jax.vmap` (ensembles) and `jax.grad`.

    Parameters
    ----------
    stepper
        What advances the state.
    state
        Initial state (a pytree, typically a state record).
    n_steps
        Number of steps (static, >= 0).
    save_every
        Keep ``observe(state)`` after every ``save_every``-th step (static; must divide
        ``n_steps``). ``None`` keeps nothing and returns ``None`` for the trajectory.
    observe
        Function of a state returning what to keep (default: the whole state). Observing a
        few scalars instead of full fields keeps memory small.
    checkpoint
        Rematerialisation for reverse-mode gradients. ``None`` stores every step's
        intermediates (memory grows like ``n_steps``). ``"sqrt"`` nests the scan into
        blocks of about ``sqrt(n_steps)`` steps under `equinox.filter_checkpoint`, so memory
        grows like ``sqrt(n_steps)`` at the price of one extra forward pass. An int ``k``
        stores one checkpoint every ``k`` steps (rounded to whole save intervals when
        ``k >= save_every``). Results are identical in every case.
    check_finite
        If true, check every step for NaN/inf and raise an error naming the first
        non-finite step (works under `jax.jit` through `equinox.branched_error_if`).
    unroll
        `lax.scan` unroll factor of the innermost loop (static); helps tiny states.
    progress
        Show a tqdm progress bar, updated at every save (forward runs).

    Returns
    -------
    final, trajectory
        The state after ``n_steps`` steps, and the observables stacked along a new leading
        axis of length ``n_steps // save_every`` (the values after steps ``save_every``,
        ``2 save_every``, ..., ``n_steps``; the initial state is not included), or ``None``.

    Examples
    --------
    >>> import hybrax
    >>> model = hybrax.climate.Lorenz96(num_variables=40, forcing=8.0)
    >>> stepper = hybrax.RK4(model, dt=0.01)
    >>> final, mean_x = hybrax.rollout(stepper, model.initial_state(), 1000,
    ...     save_every=10, observe=lambda s: s.u.mean())
    >>> mean_x.shape
    (100,)
    """
    _check_arguments(n_steps, save_every, checkpoint, unroll)
    return _rollout(
        stepper,
        state,
        n_steps=n_steps,
        save_every=save_every,
        observe=observe,
        checkpoint=checkpoint,
        check_finite=check_finite,
        unroll=unroll,
        progress=progress,
    )


@eqx.filter_jit
def _rollout(
    stepper, state, *, n_steps, save_every, observe, checkpoint, check_finite, unroll, progress
):
    stepper = stepper.prepare()
    observe_fn = (lambda s: s) if observe is None else observe
    saving = save_every is not None
    interval = save_every if saving else max(n_steps, 1)
    num_intervals = n_steps // interval if n_steps else 0
    inner_block, outer_block = _blocks(checkpoint, interval, num_intervals)

    if check_finite:

        def step(carry):
            s, index, first_bad = carry
            s = stepper.step(s)
            bad = ~_all_finite(s)
            first_bad = jnp.where((first_bad < 0) & bad, index, first_bad)
            return s, index + 1, first_bad

        carry = (state, jnp.zeros((), jnp.int32), -jnp.ones((), jnp.int32))
    else:

        def step(carry):
            return stepper.step(carry)

        carry = state

    bar = ProgressCallback(num_intervals, "rollout") if progress else None

    def one_interval(carry, index):
        carry, _ = _blocked_scan(
            lambda c, _: (step(c), None), carry, None, interval, inner_block, unroll
        )
        if bar is not None:
            bar.update(index)
        s = carry[0] if check_finite else carry
        return carry, (observe_fn(s) if saving else None)

    if num_intervals:
        carry, saved = _blocked_scan(
            one_interval, carry, jnp.arange(num_intervals), num_intervals, outer_block, 1
        )
    else:
        saved = _empty_like(observe_fn(state)) if saving else None

    if check_finite:
        final, _, first_bad = carry
        # The error is attached to the floating leaves only: equinox's host callback cannot
        # carry typed PRNG keys (Langevin, Brownian and stochastic states hold one).
        floating, other = eqx.partition(final, _is_inexact)
        floating = eqx.branched_error_if(
            floating, first_bad >= 0, jnp.maximum(first_bad, 0), StepMessages(_NONFINITE, n_steps)
        )
        final = eqx.combine(floating, other)
    else:
        final = carry
    return final, saved


def _blocked_scan(body, carry, xs, length: int, block: int | None, unroll: int):
    """``lax.scan(body, carry, xs, length)``, as scans over checkpointed blocks of ``block``
    iterations when ``block`` is set: reverse mode then stores one carry per block plus one
    block's intermediates."""
    if block is None or block >= length:
        return lax.scan(body, carry, xs, length=length, unroll=unroll)
    num_blocks, remainder = divmod(length, block)

    def run_block(c, x, n):
        return lax.scan(body, c, x, length=n, unroll=unroll)

    checkpointed = eqx.filter_checkpoint(run_block)

    head = None if xs is None else xs[: num_blocks * block].reshape(num_blocks, block)
    carry, ys = lax.scan(lambda c, x: checkpointed(c, x, block), carry, head, length=num_blocks)
    ys = jax.tree.map(lambda y: y.reshape(num_blocks * block, *y.shape[2:]), ys)
    if remainder:
        tail = None if xs is None else xs[num_blocks * block :]
        carry, ys_tail = checkpointed(carry, tail, remainder)
        ys = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), ys, ys_tail)
    return carry, ys


def _blocks(checkpoint: Checkpoint, interval: int, num_intervals: int):
    """(steps per inner checkpoint block, intervals per outer checkpoint block)."""
    if checkpoint is None:
        return None, None
    if checkpoint == "sqrt":
        inner = math.ceil(math.sqrt(interval)) if interval > 1 else None
        outer = math.ceil(math.sqrt(num_intervals)) if num_intervals > 1 else None
        return inner, outer
    if checkpoint >= interval:
        return None, max(1, checkpoint // interval)
    return checkpoint, 1


def _is_inexact(x) -> bool:
    return eqx.is_array(x) and jnp.issubdtype(x.dtype, jnp.inexact)


def _all_finite(tree: PyTree) -> Array:
    leaves = [
        jnp.all(jnp.isfinite(x))
        for x in jax.tree.leaves(tree)
        if eqx.is_array(x) and jnp.issubdtype(x.dtype, jnp.inexact)
    ]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def _empty_like(tree: PyTree) -> PyTree:
    return jax.tree.map(lambda x: jnp.zeros((0, *jnp.shape(x)), jnp.result_type(x)), tree)


def _check_arguments(n_steps: Any, save_every: Any, checkpoint: Any, unroll: Any) -> None:
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 0:
        raise ValueError(
            f"n_steps must be a non-negative Python int (it fixes the loop length), got {n_steps!r}"
        )
    if save_every is not None:
        if isinstance(save_every, bool) or not isinstance(save_every, int) or save_every < 1:
            raise ValueError(f"save_every must be a positive int or None, got {save_every!r}")
        if n_steps % save_every:
            lower = n_steps - n_steps % save_every
            raise ValueError(
                f"save_every={save_every} does not divide n_steps={n_steps}; "
                f"use n_steps={lower} or {lower + save_every}, or a divisor of {n_steps}"
            )
    if checkpoint is not None and checkpoint != "sqrt":
        if isinstance(checkpoint, bool) or not isinstance(checkpoint, int) or checkpoint < 1:
            raise ValueError(
                f'checkpoint must be None, "sqrt" or a positive int (steps per checkpoint), '
                f"got {checkpoint!r}"
            )
    if not isinstance(unroll, int) or unroll < 1:
        raise ValueError(f"unroll must be a positive int, got {unroll!r}")
