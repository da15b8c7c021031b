"""Multilayer perceptron."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._common import check_positive_int, default_float, identity

__all__ = ["MLP"]


class MLP(eqx.Module):
    """A fully connected network ``R^in_size -> R^out_size``.

    ``depth`` hidden layers of ``width_size`` units, each followed by ``activation``; the
    output layer is linear (then ``final_activation``, identity by default). Weights use
    equinox's default (Lecun-uniform-like) initialisation. Input and output are vectors
    (no batch axis: use `jax.vmap` for batches, which is also how a pointwise network is
    applied at every grid point).

    Parameters
    ----------
    in_size, out_size
        Input and output lengths.
    width_size
        Units per hidden layer.
    depth
        Number of hidden layers (0 gives one linear map).
    activation
        Hidden nonlinearity (default `jax.nn.gelu`, smooth, a good default for closures).
    final_activation
        Applied to the output (default identity).
    key
        PRNG key for the initial weights.
    dtype
        Parameter dtype (default: JAX's default float). It must match the input's dtype.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from hybrax.nn import MLP
    >>> net = MLP(3, 2, width_size=16, depth=2, key=jax.random.key(0))
    >>> net(jnp.ones(3, dtype=net.dtype)).shape
    (2,)
    """

    layers: tuple[eqx.nn.Linear, ...]
    activation: Callable[[Array], Array] = eqx.field(static=True)
    final_activation: Callable[[Array], Array] = eqx.field(static=True)
    in_size: int = eqx.field(static=True)
    out_size: int = eqx.field(static=True)

    def __init__(
        self,
        in_size: int,
        out_size: int,
        width_size: int,
        depth: int,
        activation: Callable[[Array], Array] = jax.nn.gelu,
        final_activation: Callable[[Array], Array] = identity,
        *,
        key: PRNGKeyArray,
        dtype=None,
    ):
        check_positive_int("MLP", "in_size", in_size)
        check_positive_int("MLP", "out_size", out_size)
        check_positive_int("MLP", "width_size", width_size)
        check_positive_int("MLP", "depth", depth, minimum=0)
        dtype = dtype or default_float()
        sizes = [in_size] + [width_size] * depth + [out_size]
        keys = jax.random.split(key, len(sizes) - 1)
        self.layers = tuple(
            eqx.nn.Linear(n_in, n_out, key=k, dtype=dtype)
            for n_in, n_out, k in zip(sizes[:-1], sizes[1:], keys, strict=True)
        )
        self.activation = activation
        self.final_activation = final_activation
        self.in_size, self.out_size = in_size, out_size

    @property
    def dtype(self):
        """The parameters' dtype."""
        return self.layers[0].weight.dtype

    def __call__(self, x: Float[Array, " in_size"]) -> Float[Array, " out_size"]:
        if jnp.shape(x) != (self.in_size,):
            hint = "; for a batch use jax.vmap" if jnp.ndim(x) == 2 else ""
            raise ValueError(
                f"MLP expects an input of shape ({self.in_size},), got {jnp.shape(x)}{hint}"
            )
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.final_activation(self.layers[-1](x))
