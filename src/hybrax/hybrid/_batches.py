"""`Batches`: the training examples of `fit` and how each step draws them."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray, PyTree

from hybrax.core import ConfigurationError

from ._fit_checks import check_int

__all__ = ["Batches", "check_key", "num_examples"]


class Batches(eqx.Module):
    """Training examples and how `fit` draws them: ``batch_size`` per step, in an order
    drawn from ``key``.

    Pass it as `fit`'s ``data`` (a plain pytree of arrays there means every example every
    step). Each epoch reshuffles the examples with the permutation drawn from
    ``jax.random.fold_in(key, epoch)`` and cuts it into ``num_examples // batch_size``
    batches (the last incomplete one is dropped), so the data order is a pure function of
    ``key`` and the step: a run resumed from `Checkpoints` draws the batches of the
    uninterrupted run. With a `Curriculum` as the loss, ``data`` holds trajectories and
    ``batch_size`` and ``key`` apply to each stage's windows (``batch_size`` capped at the
    windows available, stage ``i`` drawing from ``jax.random.fold_in(key, i)``).

    Parameters
    ----------
    data
        A pytree of arrays sharing a leading example axis (e.g. trajectory windows from
        `sliding_windows`, or ``(inputs, targets)``).
    batch_size
        Examples per step, an int from 1 to the number of examples (checked by `fit`,
        after a `Curriculum` has cut its windows). Default ``None``: the whole dataset
        every step (``key`` is then unused).
    key
        Data-order PRNG key (default ``jax.random.key(0)``).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, optax, hybrax
    >>> from hybrax.hybrid import Batches, RegressionLoss, fit
    >>> x = jnp.linspace(-1.0, 1.0, 64)[:, None]
    >>> batches = Batches((x, x**2), batch_size=16, key=jax.random.key(1))
    >>> batches.num_examples, batches.steps_per_epoch
    (64, 4)
    >>> net = hybrax.nn.MLP(1, 1, 16, 2, key=jax.random.key(0), dtype=x.dtype)
    >>> result = fit(net, RegressionLoss(), batches, optax.adam(1e-2), steps=100)
    >>> result.history["train"][-1]["loss"] < result.history["train"][0]["loss"]
    True
    """

    data: PyTree
    key: PRNGKeyArray
    batch_size: int | None = eqx.field(static=True)
    num_examples: int = eqx.field(static=True)

    def __init__(
        self, data: PyTree, batch_size: int | None = None, *, key: PRNGKeyArray | None = None
    ):
        if isinstance(data, Batches):
            raise ConfigurationError(
                "Batches: data is already a Batches; pass its arrays, "
                "e.g. Batches(batches.data, batch_size=16)"
            )
        self.num_examples = num_examples(data, "Batches")
        if batch_size is not None:
            check_int("batch_size", batch_size, 1, "Batches")
        self.data, self.batch_size = data, batch_size
        self.key = jax.random.key(0) if key is None else check_key(key, "Batches")

    @property
    def steps_per_epoch(self) -> int:
        """Batches per pass over the data (1 with ``batch_size=None``)."""
        self.check_size()
        return 1 if self.batch_size is None else self.num_examples // self.batch_size

    def check_size(self, where: str = "Batches") -> None:
        """Raise `hybrax.ConfigurationError` if ``batch_size`` exceeds the examples."""
        if self.batch_size is not None and self.batch_size > self.num_examples:
            raise ConfigurationError(
                f"{where}: batch_size={self.batch_size} exceeds the {self.num_examples} "
                f"examples in data; use Batches(data, batch_size=n) with n <= "
                f"{self.num_examples}"
            )


def num_examples(data: PyTree, where: str = "fit") -> int:
    """The length of the leading example axis shared by every leaf of ``data``."""
    leaves = jax.tree.leaves(data)
    if not leaves:
        raise ConfigurationError(f"{where}: data holds no arrays (empty dataset)")
    lengths = {int(jnp.shape(x)[0]) if jnp.ndim(x) else -1 for x in leaves}
    if -1 in lengths:
        raise ConfigurationError(
            f"{where}: every leaf of data needs a leading example axis; got a scalar"
        )
    if len(lengths) != 1:
        raise ConfigurationError(
            f"{where}: every leaf of data needs the same number of examples on its leading "
            f"axis; got {sorted(lengths)}"
        )
    (n,) = lengths
    if n == 0:
        raise ConfigurationError(f"{where}: data holds 0 examples (empty dataset)")
    return n


def check_key(key, owner: str):
    """``key`` itself if it is a PRNG key (typed, or a legacy ``uint32[2]``), else a
    `ConfigurationError` naming ``owner``."""
    is_key = isinstance(key, jax.Array) and (
        jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
        or (key.dtype == jnp.uint32 and key.shape == (2,))
    )
    if not is_key:
        raise ConfigurationError(
            f"{owner}: key must be a PRNG key such as jax.random.key(0), got {key!r}"
        )
    return key
