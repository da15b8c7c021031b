"""The one time loop: `rollout`, with saved observables and bounded-memory gradients."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, PyTree

from ._contract import AbstractStepper, check_stepper, guard_time_step
from ._errors import ConfigurationError, NonFiniteStateError
from ._function_cache import cached_function
from ._parameters import concrete_or_none
from ._progress import ProgressCallback
from ._time_step import check_time_step
from ._time_step import courant_number as _courant_number

__all__ = ["Checkpoint", "rollout"]

#: What `rollout`'s ``checkpoint`` accepts (and training functions pass on): ``None`` (store
#: every step), ``"sqrt"`` (blocks of about ``sqrt(n_steps)`` steps) or an int (steps per
#: checkpoint).
Checkpoint = None | Literal["sqrt"] | int

_NONFINITE = (
    "hybrax.rollout: the state became non-finite (NaN or inf) at step {step} of {total}. "
    "This usually means the time step is beyond the scheme's stability limit (try a smaller "
    "dt) or the parameters or initial state drive the model to blow up."
)
_NONFINITE_INITIAL = (
    "hybrax.rollout: the initial state already holds NaN or inf (step 0 of {total}); check "
    "how it was built (e.g. the model's parameters or the data it was loaded from)."
)
_NONFINITE_OBSERVABLE = (
    "hybrax.rollout: observe returned NaN or inf at save {save} (after step {step} of "
    "{total}) although the state stayed finite; check the observable (e.g. a log or a "
    "division by zero)."
)


@dataclasses.dataclass(frozen=True)
class _NonFiniteMessages(Sequence):
    """The messages of rollout's result code (see `_first_nonfinite`), formatted lazily."""

    total: int
    save_every: int

    def __len__(self) -> int:
        return 2 * self.total + 2

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = int(index)
        if index == 0:
            text = _NONFINITE_INITIAL.format(total=self.total)
        elif index <= self.total:
            text = _NONFINITE.format(step=index, total=self.total)
        else:
            save = index - self.total
            text = _NONFINITE_OBSERVABLE.format(
                save=save, step=save * self.save_every, total=self.total
            )
        return "NonFiniteStateError: " + text


def _inside_a_trace(state: PyTree) -> bool:
    """Whether ``state`` is being traced by an enclosing transformation."""
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(state))


def rollout(
    stepper: AbstractStepper,
    state: PyTree,
    n_steps: int,
    *,
    save_every: int | None = 1,
    observe: Callable[[PyTree], PyTree] | None = None,
    checkpoint: Checkpoint = None,
    check_finite: bool = True,
    unroll: int = 1,
    progress: bool = False,
) -> tuple[PyTree, PyTree]:
    """Advance ``state`` by ``n_steps`` steps of ``stepper`` in one `jax.lax.scan`.

    Works for any `AbstractStepper` (integrators, emulators, hybrids, steppers with their
    own state such as `hybrax.AdamsBashforth3`) and composes with `jax.jit`, `jax.vmap`
    (ensembles) and `jax.grad`. The loop starts from ``stepper.init(state)`` and steps that
    carry; ``observe`` and the saved trajectory see model states
    (``stepper.state_of(carry)``), and the final carry is returned so a run can be
    continued by passing it back as ``state``.

    Parameters
    ----------
    stepper
        What advances the state.
    state
        Initial model state (a pytree, typically a state record), or a carry returned by an
        earlier rollout of the same stepper (``init`` is idempotent).
    n_steps
        Number of steps (static, >= 0).
    save_every
        Keep ``observe(state)`` after every ``save_every``-th step (static; must divide
        ``n_steps``). ``None`` keeps nothing and returns ``None`` for the trajectory.
    observe
        Function of a model state returning what to keep (default: the whole model state).
        Observing a few scalars instead of full fields keeps memory small.
    checkpoint
        Rematerialisation for reverse-mode gradients. ``None`` stores every step's
        intermediates (memory grows like ``n_steps``). ``"sqrt"`` nests the scan into
        blocks of about ``sqrt(n_steps)`` steps under `equinox.filter_checkpoint`, so memory
        grows like ``sqrt(n_steps)`` at the price of one extra forward pass. An int ``k``
        stores one checkpoint every ``k`` steps (rounded to whole save intervals when
        ``k >= save_every``). Results are identical in every case.
    check_finite
        On by default (like diffrax's ``throw=True``): raise if the run produced NaN or
        inf, naming the first non-finite step. The initial and final states and every
        saved observable are checked once per run; only when one of them is non-finite is
        the run replayed step by step (without gradients) to find the first bad step, so a
        healthy run pays a few reductions per call, not per step. Called with concrete
        inputs, `rollout` raises `hybrax.NonFiniteStateError` (it waits for the result);
        the model states (``stepper.state_of``) are checked, not a stepper's own state;
        under an outer `jax.jit`, `jax.vmap` or `jax.grad` the same message is raised
        when the computation runs, through `equinox.branched_error_if`. A state that
        becomes non-finite and finite again between saves is not seen. Pass ``False``
        where non-finite values are expected and handled by the caller.

        Decision and cost: the issue's rule was "on unless it costs more than 3% of a
        step". The check's work does not grow with ``n_steps`` (a few reductions over the
        state per call, plus one over the saved trajectory), so its cost per step
        vanishes on long runs. Measured on CPU, float32, with
        ``taskset -c 0 python benchmarks/runtime_checks.py`` (fastest of 9 interleaved
        rounds; ``benchmarks/results/runtime_checks.json``, on a shared, loaded 2-core
        machine whose noise is several percent): Kolmogorov 256² ETDRK4 -10.7%, Lorenz-96
        1,024-member ensemble +3.2%, single trajectory +1.7% per step; a separate A/B of
        the same cases gave 252.6 vs 251.5 ms per 20 Kolmogorov steps and 9.07 vs 8.87 ms
        per 20,000 Lorenz-96 steps (off/on). All within noise, so it is on. (The earlier
        per-step check cost 8% on the ensemble and 26-36% on the single trajectory.)
    unroll
        `lax.scan` unroll factor of the innermost loop (static); helps tiny states.
    progress
        Show a tqdm progress bar, updated at every save (forward runs).

    Returns
    -------
    final, trajectory
        The carry after ``n_steps`` steps (the model state itself for the many steppers
        without state of their own; ``stepper.state_of(final)`` in general), and the
        observables (default: model states) stacked along a new leading
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
    check_stepper(stepper, "rollout")
    _check_arguments(n_steps, save_every, checkpoint, unroll)
    if not isinstance(check_finite, bool):
        raise ConfigurationError(f"check_finite must be True or False, got {check_finite!r}")
    if observe is not None and not callable(observe):
        raise ConfigurationError(
            f"observe must be a function of the state (or None), got {type(observe).__name__}"
        )
    limit = getattr(stepper, "max_courant", None)
    if limit is not None:  # a stepper that declares its stability limit gets it checked
        state = check_time_step(stepper, state, limit)
    if observe is not None and not _inside_a_trace(state):
        # Inside an enclosing jit/vmap/grad this rollout is traced into the outer program and
        # compiled with it: there is no compilation of its own to save (nor to warn about).
        observe = cached_function(observe)
    final, saved, code = _rollout(
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
    if code is None:
        return final, saved
    messages = _NonFiniteMessages(n_steps, save_every or n_steps)
    concrete = concrete_or_none(code)
    if concrete is None:  # under an outer jit / vmap / grad: raise when it runs
        # Threaded onto the final state and the trajectory, so using either keeps the check
        # (floating leaves only: the error cannot carry typed PRNG keys). The initial
        # state's stability number is only known when the program runs: it travels in the
        # error's index, rounded to one of _BUCKETS values (see _TracedHintMessages).
        floating, other = eqx.partition((final, saved), _is_inexact)
        bucket = _stability_bucket(stepper, state)
        index = jnp.maximum(code, 0) * _BUCKETS + bucket
        hinted = _TracedHintMessages(messages, n_steps, _scalar_or_none(stepper.dt))
        floating = eqx.branched_error_if(floating, code >= 0, index, hinted)
        return eqx.combine(floating, other)
    if concrete >= 0:
        text = messages[int(concrete)].removeprefix("NonFiniteStateError: ")
        if 0 < int(concrete) <= n_steps:
            text += _stability_hint(stepper, state)
        raise NonFiniteStateError(text)
    return final, saved


#: Stability numbers travel in a traced error's index as 10 ** (k / 20), k in 0 .. 200
#: (1e-5 .. 1e5, 12% apart); bucket 0 means unknown (no courant_number, or not finite).
_BUCKETS = 202


def _stability_bucket(stepper: AbstractStepper, state: PyTree) -> Array:
    """The initial state's stability number as a bucket index (traced; 0 when unknown)."""
    try:
        number = _courant_number(stepper, state)
    except (ConfigurationError, NotImplementedError, TypeError, ValueError, AttributeError):
        return jnp.zeros((), jnp.int32)
    if jnp.ndim(number):
        return jnp.zeros((), jnp.int32)
    k = jnp.clip(jnp.round(20 * jnp.log10(number)) + 100, 0, 200)
    ok = jnp.isfinite(number) & (number > 0)
    return jnp.where(ok, k.astype(jnp.int32) + 1, 0)


@dataclasses.dataclass(frozen=True)
class _TracedHintMessages(Sequence):
    """``messages`` (of `_NonFiniteMessages`) times the stability buckets: a blow-up at a
    step gets the stability hint, with the number rounded to its bucket."""

    messages: Sequence
    total: int
    dt: float | None

    def __len__(self) -> int:
        return len(self.messages) * _BUCKETS

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        code, bucket = divmod(int(index), _BUCKETS)
        text = self.messages[code]
        if not 0 < code <= self.total or bucket == 0:
            return text
        number = 10 ** ((bucket - 1 - 100) / 20)
        if self.dt is None:
            return text + (
                f" The initial state's stability number (hybrax.courant_number) is about "
                f"{number:.2g}; explicit steppers need about 1 or less."
            )
        return text + _hint_text(number, self.dt, about=True)


def _scalar_or_none(value) -> float | None:
    """A concrete scalar as a float (hashable, for the static messages), else None."""
    value = concrete_or_none(value)
    return None if value is None or np.ndim(value) else float(value)


def _hint_text(number: float, dt: float, about: bool = False) -> str:
    hint = (
        f" The initial state's stability number (hybrax.courant_number) at dt = {dt:.4g} is "
        f"{'about ' if about else ''}{number:.3g}; explicit steppers need about 1 or less "
        "(the model's courant_number docstring gives its limits)"
    )
    if number > 0:
        hint += f", which this state reaches at dt = {dt / number:.3g} (hybrax.max_time_step)"
    return hint + "."


def _stability_hint(stepper: AbstractStepper, state: PyTree) -> str:
    """The initial state's stability (Courant) number at the stepper's ``dt`` and the
    ``dt`` that would make it 1, when the model declares one (else nothing)."""
    try:
        number = concrete_or_none(_courant_number(stepper, state))
    except (ConfigurationError, NotImplementedError, TypeError, ValueError, AttributeError):
        return ""
    dt = concrete_or_none(stepper.dt)
    if number is None or dt is None or np.ndim(number) or not np.isfinite(number):
        return ""
    return _hint_text(float(number), float(np.max(dt)))


@eqx.filter_jit
def _rollout(
    stepper, state, *, n_steps, save_every, observe, checkpoint, check_finite, unroll, progress
):
    stepper = stepper.prepare()
    carry = guard_time_step(stepper, stepper.init(state))
    observe_fn = stepper.state_of if observe is None else (lambda c: observe(stepper.state_of(c)))
    saving = save_every is not None
    if saving:
        _check_observable(observe_fn(carry), observe)
    interval = save_every if saving else max(n_steps, 1)
    num_intervals = n_steps // interval if n_steps else 0
    inner_block, outer_block = _blocks(checkpoint, interval, num_intervals)

    bar = ProgressCallback(num_intervals, "rollout") if progress else None

    def one_interval(c, index):
        c, _ = _blocked_scan(
            lambda c, _: (stepper.step(c), None), c, None, interval, inner_block, unroll
        )
        if bar is not None:
            bar.update(index)
        return c, (observe_fn(c) if saving else None)

    if num_intervals:
        final, saved = _blocked_scan(
            one_interval, carry, jnp.arange(num_intervals), num_intervals, outer_block, 1
        )
    else:
        final = carry
        saved = _empty_like(observe_fn(carry)) if saving else None

    code = (
        _first_nonfinite(stepper, carry, final, saved, n_steps, interval) if check_finite else None
    )
    return final, saved, code


def _first_nonfinite(stepper, initial, final, saved, n_steps: int, interval: int) -> Array:
    """The result code of ``check_finite``: -1 if the initial and final states and every
    saved observable are finite; else the first step whose state is non-finite (0: the
    initial state), found by re-running the steps one at a time (only when something is
    non-finite); else ``n_steps + 1 + k`` for the first non-finite saved observable ``k``
    of a run whose states stayed finite."""
    saved_ok = _all_finite(saved)
    state_of = stepper.state_of
    ok = _all_finite(state_of(initial)) & _all_finite(state_of(final)) & saved_ok

    def search(_):
        # Replay without gradients: the result is an integer, and a while loop is not
        # reverse-differentiable.
        s0, step_fn = jax.tree.map(
            lambda x: lax.stop_gradient(x) if _is_inexact(x) else x, (initial, stepper)
        )

        def cond(c):
            i, _, bad = c
            return (i < n_steps) & ~bad

        def body(c):
            i, s, _ = c
            s = step_fn.step(s)
            return i + 1, s, ~_all_finite(step_fn.state_of(s))

        zero = jnp.zeros((), jnp.int32)
        i, _, bad = lax.while_loop(cond, body, (zero, s0, ~_all_finite(state_of(s0))))
        flags = [
            ~jnp.all(jnp.isfinite(x), axis=tuple(range(1, x.ndim)))
            for x in jax.tree.leaves(saved)
            if _is_inexact(x) and x.shape[0]
        ]
        first_saved = jnp.zeros((), jnp.int32)
        if flags:
            first_saved = jnp.argmax(jnp.any(jnp.stack(flags), axis=0)).astype(jnp.int32)
        observable = jnp.where(saved_ok, n_steps, n_steps + 1 + first_saved)
        return jnp.where(bad, i, observable).astype(jnp.int32)

    # unvmap_any: under jax.vmap the search runs only if some member failed (a batched
    # predicate would turn the cond into a select that always runs it).
    any_bad = eqx.internal.unvmap_any(~ok)
    code = lax.cond(any_bad, search, lambda _: jnp.full((), -1, jnp.int32), None)
    return jnp.where(ok, -1, code)


def _check_observable(value: PyTree, observe) -> None:
    for leaf in jax.tree.leaves(value):
        if not eqx.is_array_like(leaf):
            name = getattr(observe, "__name__", type(observe).__name__)
            raise ConfigurationError(
                f"rollout: observe ({name}) must return arrays (or a pytree of arrays, or "
                f"None), got a {type(leaf).__name__} ({leaf!r:.60}); return jnp values such "
                "as lambda s: s.u.mean()"
            )


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
        raise ConfigurationError(
            f"n_steps must be a non-negative Python int (it fixes the loop length), got {n_steps!r}"
        )
    if save_every is not None:
        if isinstance(save_every, bool) or not isinstance(save_every, int) or save_every < 1:
            raise ConfigurationError(
                f"save_every must be a positive int or None, got {save_every!r}"
            )
        if n_steps % save_every:
            lower = n_steps - n_steps % save_every
            raise ConfigurationError(
                f"save_every={save_every} does not divide n_steps={n_steps}; "
                f"use n_steps={lower} or {lower + save_every}, or a divisor of {n_steps}"
            )
    if checkpoint is not None and checkpoint != "sqrt":
        if isinstance(checkpoint, bool) or not isinstance(checkpoint, int) or checkpoint < 1:
            raise ConfigurationError(
                f'checkpoint must be None, "sqrt" or a positive int (steps per checkpoint), '
                f"got {checkpoint!r}"
            )
    if not isinstance(unroll, int) or unroll < 1:
        raise ConfigurationError(f"unroll must be a positive int, got {unroll!r}")
