"""Precision policies: a network computing in a lower precision inside a solver."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PyTree

from ._errors import ConfigurationError

__all__ = ["MixedPrecision", "cast_floating"]


def cast_floating(tree: PyTree, dtype) -> PyTree:
    """``tree`` with every real floating array leaf cast to ``dtype`` (others untouched)."""
    dtype = jnp.dtype(dtype)

    def cast(x):
        if eqx.is_array(x) and jnp.issubdtype(x.dtype, jnp.floating):
            return x.astype(dtype)
        return x

    return jax.tree.map(cast, tree)


class MixedPrecision(eqx.Module):
    """A network whose arithmetic runs in ``compute_dtype`` while it stores and returns the
    solver's precision.

    The policy of mixed-precision training (Micikevicius et al. 2018) applied to hybrids:
    the *master* parameters live in the solver's dtype (float32 or float64, so optimizer
    updates do not lose small increments and the wrapper passes the hybrid wrappers' dtype
    checks); each call casts parameters and inputs to ``compute_dtype`` (e.g. bfloat16 or
    float32), evaluates the network, and casts the output back to the input's dtype.
    Gradients flow through the casts to the master parameters.

    Parameters
    ----------
    net
        Any callable equinox module (e.g. a `hybrax.nn` network).
    compute_dtype
        Dtype of the network's arithmetic (static), e.g. ``jnp.bfloat16``.
    master_dtype
        Dtype the parameters are stored in (default: keep the network's own).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, hybrax
    >>> net = hybrax.nn.MLP(4, 4, 16, 2, key=jax.random.key(0), dtype=jnp.float32)
    >>> fast = hybrax.MixedPrecision(net, jnp.bfloat16)
    >>> fast(jnp.ones(4, jnp.float32)).dtype
    dtype('float32')
    """

    net: Any
    compute_dtype: Any = eqx.field(static=True)

    def __init__(self, net: Any, compute_dtype, master_dtype=None):
        self.net = net if master_dtype is None else cast_floating(net, master_dtype)
        self.compute_dtype = jnp.dtype(compute_dtype)
        if not jnp.issubdtype(self.compute_dtype, jnp.floating):
            raise ConfigurationError(
                f"compute_dtype must be a floating dtype (bfloat16, float16, float32, "
                f"float64), got {self.compute_dtype}"
            )

    @property
    def dtype(self):
        """The master parameters' dtype."""
        leaves = [x for x in jax.tree.leaves(self.net) if eqx.is_inexact_array(x)]
        return leaves[0].dtype if leaves else self.compute_dtype

    def __call__(self, x, *args, **kwargs):
        out_dtypes = jax.tree.map(lambda v: jnp.result_type(v), x)
        first = jax.tree.leaves(out_dtypes)[0]
        net = cast_floating(self.net, self.compute_dtype)
        y = net(cast_floating(x, self.compute_dtype), *args, **kwargs)
        return jax.tree.map(
            lambda v: v.astype(first) if jnp.issubdtype(v.dtype, jnp.floating) else v, y
        )
