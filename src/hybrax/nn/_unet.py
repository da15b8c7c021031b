"""A U-Net on periodic grids."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._cnn import PeriodicConv, _check_kernel
from ._common import check_field_input, check_positive_int

__all__ = ["PeriodicUNet"]


class _Block(eqx.Module):
    first: PeriodicConv
    second: PeriodicConv

    def __call__(self, x, activation):
        return activation(self.second(activation(self.first(x))))


class PeriodicUNet(eqx.Module):
    """A U-Net (Ronneberger et al. 2015) with periodic convolutions.

    Level ``l`` works at grid size ``n / 2**l`` with ``hidden_channels * 2**l`` channels:
    the encoder applies two convolutions per level and halves the grid by 2 x 2 averaging;
    the decoder doubles it back (nearest-neighbour upsampling and a convolution),
    concatenates the encoder's features of the same level (skip connection) and applies two
    convolutions. A final pointwise convolution gives ``out_channels``. Every convolution
    pads circularly, so the network is translation-equivariant by multiples of
    ``2**num_levels`` points and sees the whole periodic domain at the coarsest level.

    Parameters
    ----------
    num_spatial_dims
        1 or 2.
    in_channels, out_channels
        Channel counts of input and output.
    hidden_channels
        Channels at the finest level (doubled at each coarser level).
    num_levels
        Number of halvings (>= 1); every spatial size must be divisible by
        ``2**num_levels``.
    kernel_size
        Odd kernel width (default 3).
    activation
        Nonlinearity (default `jax.nn.gelu`).
    key
        PRNG key for the initial weights.
    dtype
        Parameter dtype (default: JAX's default float).

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from hybrax.nn import PeriodicUNet
    >>> net = PeriodicUNet(2, 1, 1, hidden_channels=8, num_levels=2, key=jax.random.key(0))
    >>> net(jnp.ones((1, 32, 32), net.dtype)).shape
    (1, 32, 32)
    """

    lift: PeriodicConv
    encoder: tuple[_Block, ...]
    up: tuple[PeriodicConv, ...]
    decoder: tuple[_Block, ...]
    project: PeriodicConv
    activation: Callable[[Array], Array] = eqx.field(static=True)
    num_levels: int = eqx.field(static=True)

    def __init__(
        self,
        num_spatial_dims: int,
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        num_levels: int,
        kernel_size: int = 3,
        activation: Callable[[Array], Array] = jax.nn.gelu,
        *,
        key: PRNGKeyArray,
        dtype=None,
    ):
        check_positive_int("PeriodicUNet", "hidden_channels", hidden_channels)
        check_positive_int("PeriodicUNet", "num_levels", num_levels)
        _check_kernel("PeriodicUNet", kernel_size)
        keys = iter(jax.random.split(key, 5 * num_levels + 4))

        def conv(c_in, c_out, k=kernel_size):
            return PeriodicConv(num_spatial_dims, c_in, c_out, k, key=next(keys), dtype=dtype)

        channels = [hidden_channels * 2**level for level in range(num_levels + 1)]
        self.lift = conv(in_channels, channels[0])
        self.encoder = tuple(
            _Block(
                conv(channels[max(level - 1, 0)], channels[level]),
                conv(channels[level], channels[level]),
            )
            for level in range(num_levels + 1)
        )
        self.up = tuple(conv(channels[level + 1], channels[level]) for level in range(num_levels))
        self.decoder = tuple(
            _Block(
                conv(2 * channels[level], channels[level]), conv(channels[level], channels[level])
            )
            for level in range(num_levels)
        )
        self.project = conv(channels[0], out_channels, 1)
        self.activation = activation
        self.num_levels = num_levels

    @property
    def dtype(self):
        """The parameters' dtype."""
        return self.lift.conv.weight.dtype

    def __call__(self, x: Float[Array, " in_channels *spatial"]) -> Float[Array, " out *spatial"]:
        d = self.lift.num_spatial_dims
        check_field_input("PeriodicUNet", x, self.lift.in_channels, d)
        factor = 2**self.num_levels
        spatial = x.shape[1:]
        if any(n % factor for n in spatial):
            fixed = tuple(-(-n // factor) * factor for n in spatial)
            raise ValueError(
                f"PeriodicUNet with num_levels={self.num_levels} needs every spatial size "
                f"divisible by 2**num_levels={factor}, got {spatial}; use e.g. {fixed} or "
                "fewer levels"
            )
        x = self.activation(self.lift(x))
        skips = []
        for level, block in enumerate(self.encoder):
            if level > 0:
                x = _average_pool(x, d)
            x = block(x, self.activation)
            skips.append(x)
        for level in reversed(range(self.num_levels)):
            x = self.activation(self.up[level](_upsample(x, d)))
            x = jnp.concatenate([x, skips[level]], axis=0)
            x = self.decoder[level](x, self.activation)
        return self.project(x)


def _average_pool(x: Array, num_spatial_dims: int) -> Array:
    shape = [x.shape[0]]
    for n in x.shape[1:]:
        shape += [n // 2, 2]
    axes = tuple(2 + 2 * i for i in range(num_spatial_dims))
    return x.reshape(shape).mean(axis=axes)


def _upsample(x: Array, num_spatial_dims: int) -> Array:
    for axis in range(1, num_spatial_dims + 1):
        x = jnp.repeat(x, 2, axis=axis)
    return x
