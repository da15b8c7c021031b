"""Convolutional networks on periodic grids: circular padding, channels first."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float, PRNGKeyArray

from ..core import ConfigurationError
from ._common import check_field_input, check_positive_int, check_spatial_dims, default_float

__all__ = ["PeriodicCNN", "PeriodicConv", "PeriodicResNet"]


class PeriodicConv(eqx.Module):
    """A convolution on a periodic grid: circular padding keeps the grid size.

    Maps ``(in_channels, *spatial)`` to ``(out_channels, *spatial)``; the field wraps
    around every spatial axis, so the layer is exactly translation-equivariant on the
    torus (the right inductive bias for doubly periodic flows and ring models such as
    Lorenz-96).

    Parameters
    ----------
    num_spatial_dims
        1 or 2.
    in_channels, out_channels
        Channel counts.
    kernel_size
        Odd width of the (square) kernel; 1 gives a pointwise linear map across channels.
    key
        PRNG key for the initial weights.
    dtype
        Parameter dtype (default: JAX's default float).

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from hybrax.nn import PeriodicConv
    >>> conv = PeriodicConv(2, 3, 8, kernel_size=3, key=jax.random.key(0))
    >>> conv(jnp.ones((3, 16, 16), conv.dtype)).shape
    (8, 16, 16)
    """

    conv: eqx.nn.Conv
    num_spatial_dims: int = eqx.field(static=True)
    in_channels: int = eqx.field(static=True)

    def __init__(
        self,
        num_spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        key: PRNGKeyArray,
        dtype=None,
    ):
        check_spatial_dims("PeriodicConv", num_spatial_dims)
        check_positive_int("PeriodicConv", "in_channels", in_channels)
        check_positive_int("PeriodicConv", "out_channels", out_channels)
        _check_kernel("PeriodicConv", kernel_size)
        self.conv = eqx.nn.Conv(
            num_spatial_dims,
            in_channels,
            out_channels,
            kernel_size,
            padding=kernel_size // 2,
            padding_mode="CIRCULAR",
            key=key,
            dtype=dtype or default_float(),
        )
        self.num_spatial_dims = num_spatial_dims
        self.in_channels = in_channels

    @property
    def dtype(self):
        """The parameters' dtype."""
        return self.conv.weight.dtype

    def __call__(self, x: Float[Array, " in_channels *spatial"]) -> Float[Array, " out *spatial"]:
        check_field_input("PeriodicConv", x, self.in_channels, self.num_spatial_dims)
        if self.conv.kernel_size[0] == 1:  # pointwise: a matrix product, cheaper than a conv
            weight = self.conv.weight.reshape(self.conv.weight.shape[:2])
            out = jax.numpy.tensordot(weight, x, axes=1)
            return out + self.conv.bias if self.conv.use_bias else out
        if jax.default_backend() != "cpu":
            return self.conv(x)
        if self.conv.use_bias and max(self.conv.weight.shape[:2]) <= _SMALL_LAYER:
            return _small_layer(self.conv.weight, self.conv.bias, x)
        return _shifted_products(self.conv.weight, self.conv.bias, x)


_SMALL_LAYER = 8
"""Layers with at most this many input and output channels run XLA's convolution forward on
CPU (`_small_layer`)."""


def _shifted_products(weight: Array, bias: Array | None, x: Array) -> Array:
    """A circular convolution as a sum of ``kernel_size**d`` matrix products.

    ``out = bias + sum_offsets W[:, :, offset] @ roll(x, centre - offset)``: the same
    cross-correlation as `eqx.nn.Conv` with ``padding_mode="CIRCULAR"``. Inside a loop
    body (a rollout's or an unrolled loss's `jax.lax.scan`, where hybrid models run) XLA's
    CPU convolution falls off its fast path beyond 8 channels: a 3 x 3, 16-channel layer on
    32² took 1.9 ms there against 0.19 ms this way, 32 channels on 64² 36 ms against 4 ms
    (`benchmarks/periodic_conv.py`). Called alone, outside any loop, XLA's is about 1.5x
    faster; this form costs the same in both places.
    """
    kernel = weight.shape[2:]
    axes = tuple(range(1, x.ndim))
    out = None
    for offset in itertools.product(*(range(k) for k in kernel)):
        shifts = tuple(k // 2 - i for k, i in zip(kernel, offset, strict=True))
        tap = weight[(slice(None), slice(None), *offset)]
        term = jnp.tensordot(tap, jnp.roll(x, shifts, axes), 1)
        out = term if out is None else out + term
    return out if bias is None else out + bias


@jax.custom_vjp
def _small_layer(weight: Array, bias: Array, x: Array) -> Array:
    """`_shifted_products` for a layer of at most `_SMALL_LAYER` channels in and out:
    forward by XLA's convolution on the circularly padded input, which stays on its fast
    path at these widths and is faster there (an 8-channel 3 x 3 network on 32² inside a
    `jax.lax.scan`: 96 against 136 µs per call); backward by the shifted products'
    derivative, which is faster than XLA's convolution gradients (1.2 against 1.7 ms)."""
    pad = [(0, 0)] + [(k // 2, k // 2) for k in weight.shape[2:]]
    padded = jnp.pad(x, pad, mode="wrap")
    dims = lax.conv_dimension_numbers(padded[None].shape, weight.shape, None)
    ones = (1,) * (x.ndim - 1)
    out = lax.conv_general_dilated(padded[None], weight, ones, "VALID", dimension_numbers=dims)
    return out[0] + bias


def _small_layer_forward(weight, bias, x):
    return _small_layer(weight, bias, x), (weight, bias, x)


def _small_layer_backward(residuals, cotangent):
    return jax.vjp(_shifted_products, *residuals)[1](cotangent)


_small_layer.defvjp(_small_layer_forward, _small_layer_backward)


class PeriodicCNN(eqx.Module):
    """A stack of periodic convolutions with a nonlinearity between them.

    ``num_layers`` convolutions ``in_channels -> hidden_channels -> ... -> out_channels``,
    ``activation`` after every one but the last. The receptive field is
    ``sum(kernel_size - 1) + 1`` grid points per axis. A kernel size per layer such as
    ``(5, 1, 1)`` makes a *local* network: one pointwise MLP applied to every point's
    5-point (or 5 x 5) periodic neighbourhood, weights shared across the grid.

    Parameters
    ----------
    num_spatial_dims
        1 or 2.
    in_channels, out_channels, hidden_channels
        Channel counts.
    num_layers
        Number of convolutions (>= 1).
    kernel_size
        Odd kernel width, one for all layers or a sequence with one per layer.
    activation
        Nonlinearity between layers (default `jax.nn.gelu`).
    key
        PRNG key for the initial weights.
    dtype
        Parameter dtype (default: JAX's default float).

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from hybrax.nn import PeriodicCNN
    >>> net = PeriodicCNN(1, 1, 1, hidden_channels=16, num_layers=3, kernel_size=(5, 1, 1),
    ...     key=jax.random.key(0))
    >>> net(jnp.ones((1, 8), net.dtype)).shape
    (1, 8)
    """

    layers: tuple[PeriodicConv, ...]
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(
        self,
        num_spatial_dims: int,
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        num_layers: int,
        kernel_size: int | Sequence[int] = 3,
        activation: Callable[[Array], Array] = jax.nn.gelu,
        *,
        key: PRNGKeyArray,
        dtype=None,
    ):
        check_positive_int("PeriodicCNN", "num_layers", num_layers)
        check_positive_int("PeriodicCNN", "hidden_channels", hidden_channels)
        kernels = _per_layer("PeriodicCNN", kernel_size, num_layers)
        channels = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        keys = jax.random.split(key, num_layers)
        self.layers = tuple(
            PeriodicConv(num_spatial_dims, c_in, c_out, k, key=layer_key, dtype=dtype)
            for c_in, c_out, k, layer_key in zip(
                channels[:-1], channels[1:], kernels, keys, strict=True
            )
        )
        self.activation = activation

    @property
    def dtype(self):
        """The parameters' dtype."""
        return self.layers[0].conv.weight.dtype

    def __call__(self, x: Float[Array, " in_channels *spatial"]) -> Float[Array, " out *spatial"]:
        first = self.layers[0]
        check_field_input("PeriodicCNN", x, first.in_channels, first.num_spatial_dims)
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)


class PeriodicResNet(eqx.Module):
    """A residual network of periodic convolutions.

    A lifting convolution ``in_channels -> hidden_channels``, then ``num_blocks`` residual
    blocks ``x + conv(act(conv(act(x))))`` (pre-activation, He et al. 2016), then a
    pointwise projection to ``out_channels``. Identity-friendly: deep stacks start close to
    a linear map, which trains stably as a learned correction.

    Parameters
    ----------
    num_spatial_dims
        1 or 2.
    in_channels, out_channels, hidden_channels
        Channel counts.
    num_blocks
        Number of residual blocks (>= 1).
    kernel_size
        Odd kernel width of every convolution except the final pointwise one.
    activation
        Nonlinearity (default `jax.nn.gelu`).
    key
        PRNG key for the initial weights.
    dtype
        Parameter dtype (default: JAX's default float).

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from hybrax.nn import PeriodicResNet
    >>> net = PeriodicResNet(2, 1, 1, hidden_channels=8, num_blocks=2, key=jax.random.key(0))
    >>> net(jnp.ones((1, 16, 16), net.dtype)).shape
    (1, 16, 16)
    """

    lift: PeriodicConv
    blocks: tuple[tuple[PeriodicConv, PeriodicConv], ...]
    project: PeriodicConv
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(
        self,
        num_spatial_dims: int,
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        num_blocks: int,
        kernel_size: int = 3,
        activation: Callable[[Array], Array] = jax.nn.gelu,
        *,
        key: PRNGKeyArray,
        dtype=None,
    ):
        check_positive_int("PeriodicResNet", "num_blocks", num_blocks)
        check_positive_int("PeriodicResNet", "hidden_channels", hidden_channels)
        _check_kernel("PeriodicResNet", kernel_size)
        keys = jax.random.split(key, 2 * num_blocks + 2)
        conv = lambda c_in, c_out, k, key: PeriodicConv(  # noqa: E731
            num_spatial_dims, c_in, c_out, k, key=key, dtype=dtype
        )
        self.lift = conv(in_channels, hidden_channels, kernel_size, keys[0])
        self.blocks = tuple(
            (
                conv(hidden_channels, hidden_channels, kernel_size, keys[2 * i + 1]),
                conv(hidden_channels, hidden_channels, kernel_size, keys[2 * i + 2]),
            )
            for i in range(num_blocks)
        )
        self.project = conv(hidden_channels, out_channels, 1, keys[-1])
        self.activation = activation

    @property
    def dtype(self):
        """The parameters' dtype."""
        return self.lift.conv.weight.dtype

    def __call__(self, x: Float[Array, " in_channels *spatial"]) -> Float[Array, " out *spatial"]:
        check_field_input("PeriodicResNet", x, self.lift.in_channels, self.lift.num_spatial_dims)
        x = self.lift(x)
        for first, second in self.blocks:
            x = x + second(self.activation(first(self.activation(x))))
        return self.project(self.activation(x))


def _check_kernel(name: str, kernel_size) -> None:
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1:
        raise ConfigurationError(
            f"{name}: kernel_size must be a positive odd int, got {kernel_size!r}"
        )
    if kernel_size % 2 == 0:
        raise ConfigurationError(
            f"{name}: kernel_size must be odd so the periodic padding is symmetric, got "
            f"{kernel_size}; use {kernel_size - 1} or {kernel_size + 1}"
        )


def _per_layer(name: str, kernel_size, num_layers: int) -> tuple[int, ...]:
    if isinstance(kernel_size, int) and not isinstance(kernel_size, bool):
        kernels = (kernel_size,) * num_layers
    else:
        kernels = tuple(kernel_size)
        if len(kernels) != num_layers:
            raise ConfigurationError(
                f"{name}: kernel_size has {len(kernels)} entries but num_layers={num_layers}; "
                "give one odd int for all layers or one per layer"
            )
    for k in kernels:
        _check_kernel(name, k)
    return kernels
