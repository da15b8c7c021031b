"""Adapter: a Flax NNX module as an equinox module (a pytree of its arrays)."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
from jaxtyping import PyTree

__all__ = ["FlaxModule", "from_flax"]


class FlaxModule(eqx.Module):
    """A Flax NNX module split into a static graph definition and array leaves.

    Built by `from_flax`. The ``nnx.GraphDef`` (the module's Python structure) is a static
    field; the ``nnx.Param`` variables (``params``) and every other variable (``rest``:
    batch statistics, RNG counters, ...) are ordinary pytree leaves. Calling it merges them
    back into a fresh NNX module and calls that, so the adapter works under `jax.jit`,
    `jax.vmap` and `jax.grad`, is trained by `hybrax.hybrid.fit` (its inexact leaves in
    ``params`` are the trainable ones) and saved by `hybrax.io` checkpoints like any other
    equinox module.

    The call is functional: updates the NNX module makes to its own variables during the
    call (running batch statistics, RNG stream counters) are discarded, and ``rest`` is
    held under `jax.lax.stop_gradient`. Use modules in evaluation mode
    (``module.eval()`` before `from_flax`) when they have such state.

    Attributes
    ----------
    graphdef
        The static ``nnx.GraphDef``.
    params
        ``nnx.State`` of the ``nnx.Param`` variables.
    rest
        ``nnx.State`` of all other variables (often empty).
    """

    graphdef: Any = eqx.field(static=True)
    params: PyTree
    rest: PyTree

    def __call__(self, *args, **kwargs):
        return self.to_flax()(*args, **kwargs)

    def to_flax(self):
        """The equivalent ``nnx.Module`` (a new object; the adapter is not changed)."""
        from flax import nnx

        rest = jax.tree.map(jax.lax.stop_gradient, self.rest)
        return nnx.merge(self.graphdef, self.params, rest)


def from_flax(module) -> FlaxModule:
    """Adapt a Flax NNX module so it is usable wherever hybrax expects a network.

    Parameters
    ----------
    module
        An ``flax.nnx.Module`` (any callable NNX graph node).

    Returns
    -------
    FlaxModule
        An equinox module computing ``module(*args, **kwargs)``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from hybrax.nn import from_flax
    >>> net = from_flax(nnx.Linear(3, 2, rngs=nnx.Rngs(0)))
    >>> net(jnp.ones(3, jnp.float32)).shape  # the input in the module's dtype
    (2,)
    """
    from flax import nnx

    if not isinstance(module, nnx.Module):
        raise TypeError(
            f"from_flax expects a flax.nnx.Module, got {type(module).__name__}; for a Linen "
            "module, wrap it with flax.nnx.bridge.ToNNX first, and equinox modules need no "
            "adapter"
        )
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    return FlaxModule(graphdef, params, rest)
