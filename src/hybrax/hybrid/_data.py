"""Training data: ensembles of trajectories, windows for unrolled losses, coarse-graining."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray, PyTree

from hybrax.core import AbstractStepper, ConfigurationError, rollout

from ._batches import check_key
from ._maps import check_part

__all__ = ["block_average", "generate_trajectories", "sliding_windows"]


def generate_trajectories(
    stepper: AbstractStepper,
    sample_initial_state: Callable[[PRNGKeyArray], PyTree],
    key: PRNGKeyArray,
    n: int,
    n_steps: int,
    save_every: int = 1,
    *,
    spin_up_steps: int = 0,
    observe: Callable[[PyTree], PyTree] | None = None,
    batch_size: int | None = None,
) -> PyTree:
    """An ensemble of ``n`` trajectories, generated in one jitted, vmapped computation.

    Each member starts from ``sample_initial_state(k)`` (``k`` one of ``n`` keys split from
    ``key``), is spun up for ``spin_up_steps`` steps (nothing saved; use it to reach the
    attractor), then advanced ``n_steps`` steps with `hybrax.rollout`, keeping
    ``observe(state)`` every ``save_every`` steps *including the start*.

    Parameters
    ----------
    stepper
        Any Stepper (the "truth" solver, usually fine and expensive).
    sample_initial_state
        ``key -> state``, e.g. ``model.initial_state``.
    key
        PRNG key.
    n
        Number of trajectories.
    n_steps
        Steps after spin-up (a multiple of ``save_every``).
    save_every
        Save interval in steps.
    spin_up_steps
        Steps discarded before saving.
    observe
        What to keep of each saved model state (default: the model state, also for a
        stepper with its own state such as `hybrax.AdamsBashforth3`); e.g. a
        coarse-graining.
    batch_size
        Members computed at once (``None``: all ``n`` in one `jax.vmap`; smaller values
        bound memory through `jax.lax.map`).

    Returns
    -------
    PyTree
        ``observe(state)`` with leading axes ``(n, n_steps // save_every + 1)``; index 0 on
        the second axis is the state right after spin-up.

    Examples
    --------
    >>> import jax, hybrax
    >>> model = hybrax.climate.Lorenz96(num_variables=8)
    >>> data = hybrax.hybrid.generate_trajectories(hybrax.RK4(model, 0.01),
    ...     model.initial_state, jax.random.key(0), n=4, n_steps=100, save_every=10)
    >>> data.u.shape
    (4, 11, 8)
    """
    check_part("generate_trajectories", "stepper", stepper, AbstractStepper)
    if not callable(sample_initial_state):
        raise ConfigurationError(
            "generate_trajectories: sample_initial_state must be a function key -> state "
            f"(e.g. model.initial_state), got {sample_initial_state!r}"
        )
    if observe is not None and not callable(observe):
        raise ConfigurationError(
            f"generate_trajectories: observe must be None or a function, got {observe!r}"
        )
    check_key(key, "generate_trajectories")
    for name, value, minimum in (
        ("n", n, 1),
        ("n_steps", n_steps, 0),
        ("save_every", save_every, 1),
        ("spin_up_steps", spin_up_steps, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigurationError(
                f"generate_trajectories: {name} must be an int >= {minimum}, got {value!r}"
            )
    if n_steps % save_every:
        lower = n_steps - n_steps % save_every
        raise ConfigurationError(
            f"generate_trajectories: save_every={save_every} does not divide "
            f"n_steps={n_steps}; use n_steps={lower} or {lower + save_every}"
        )
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ConfigurationError(
            f"generate_trajectories: batch_size must be None or >= 1, got {batch_size!r}"
        )
    return _generate(
        stepper,
        sample_initial_state,
        key,
        n=n,
        n_steps=n_steps,
        save_every=save_every,
        spin_up_steps=spin_up_steps,
        observe=observe,
        batch_size=batch_size,
    )


@eqx.filter_jit
def _generate(stepper, sample, key, *, n, n_steps, save_every, spin_up_steps, observe, batch_size):
    observe_fn = (lambda s: s) if observe is None else observe

    def member(member_key):
        # The stepper's carry (the model state plus e.g. a multistep history): the spin-up
        # hands its history on; what is saved are model states.
        carry = stepper.init(sample(member_key))
        if spin_up_steps:
            carry, _ = rollout(stepper, carry, spin_up_steps, save_every=None)
        first = observe_fn(stepper.state_of(carry))
        if n_steps == 0:
            return jax.tree.map(lambda x: x[None], first)
        _, saved = rollout(stepper, carry, n_steps, save_every=save_every, observe=observe_fn)
        return jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, saved)

    keys = jax.random.split(key, n)
    if batch_size is None or batch_size >= n:
        return jax.vmap(member)(keys)
    return jax.lax.map(member, keys, batch_size=batch_size)


def sliding_windows(trajectories: PyTree, length: int, stride: int = 1) -> PyTree:
    """Cut trajectories ``(n, T, ...)`` into windows ``(n * num_windows, length, ...)``.

    Window ``w`` of trajectory ``i`` holds time indices ``w stride, ..., w stride + length
    - 1``. Windows of ``k + 1`` states are what the unrolled losses compare a ``k``-step
    rollout against.

    Parameters
    ----------
    trajectories
        A pytree whose leaves have leading axes ``(n, T)`` (e.g. from
        `generate_trajectories`).
    length
        States per window (``2 <= length <= T``).
    stride
        Offset between consecutive windows.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from hybrax.hybrid import sliding_windows
    >>> sliding_windows(jnp.arange(10.0).reshape(1, 10), length=3, stride=2).shape
    (4, 3)
    """
    leaves = jax.tree.leaves(trajectories)
    if not leaves:
        raise ConfigurationError("sliding_windows: the trajectories hold no arrays (empty dataset)")
    shapes = {tuple(jnp.shape(x)[:2]) for x in leaves}
    if len(shapes) != 1 or any(len(jnp.shape(x)) < 2 for x in leaves):
        raise ConfigurationError(
            "sliding_windows: every leaf needs the same leading axes (n, T); got leading "
            f"shapes {sorted(shapes)}"
        )
    ((n, steps),) = shapes
    if isinstance(length, bool) or not (isinstance(length, int) and 1 <= length <= steps):
        raise ConfigurationError(
            f"sliding_windows: length must be an int between 1 and T={steps} (the number of "
            f"saved times), got {length!r}"
        )
    if isinstance(stride, bool) or not (isinstance(stride, int) and stride >= 1):
        raise ConfigurationError(f"sliding_windows: stride must be a positive int, got {stride!r}")
    starts = jnp.arange(0, steps - length + 1, stride)
    index = starts[:, None] + jnp.arange(length)[None, :]  # (num_windows, length)

    def cut(x):
        windows = x[:, index]  # (n, num_windows, length, ...)
        return windows.reshape(n * index.shape[0], length, *x.shape[2:])

    return jax.tree.map(cut, trajectories)


def block_average(field: Array, factors: int | Sequence[int]) -> Array:
    """Average a field over non-overlapping blocks of its trailing axes (coarse-graining).

    ``factors`` gives the block size along each of the last ``len(factors)`` axes (an int
    applies to the last axis only). The result keeps the leading axes; each coarse cell is
    the mean of the fine cells it covers, so domain means are preserved exactly.

    Parameters
    ----------
    field
        The fine field, e.g. ``(channels, nx, ny)``.
    factors
        Block sizes; each must divide the corresponding axis.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from hybrax.hybrid import block_average
    >>> block_average(jnp.arange(8.0).reshape(2, 4), (2, 2)).tolist()
    [[2.5, 4.5]]
    """
    if isinstance(factors, int) and not isinstance(factors, bool):
        factors = (factors,)
    elif isinstance(factors, (tuple, list)):
        factors = tuple(factors)
    else:
        raise ConfigurationError(
            f"block_average: factors must be an int or a sequence of ints, got {factors!r}"
        )
    try:
        field = jnp.asarray(field)
    except TypeError as error:
        raise ConfigurationError(
            f"block_average: field must be an array, got {type(field).__name__}"
        ) from error
    if not factors or len(factors) > field.ndim:
        raise ConfigurationError(
            f"block_average: need between 1 and {field.ndim} block factors for a field of "
            f"shape {field.shape}, got {factors}"
        )
    trailing = field.shape[field.ndim - len(factors) :]
    for n, f in zip(trailing, factors, strict=True):
        if isinstance(f, bool) or not isinstance(f, int) or f < 1 or n % f:
            raise ConfigurationError(
                f"block_average: block factors {factors} must be positive ints dividing the "
                f"trailing axes {trailing} of the field"
            )
    lead = field.shape[: field.ndim - len(factors)]
    shape = list(lead)
    for n, f in zip(trailing, factors, strict=True):
        shape += [n // f, f]
    axes = tuple(len(lead) + 2 * i + 1 for i in range(len(factors)))
    return field.reshape(shape).mean(axis=axes)
