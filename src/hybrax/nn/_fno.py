"""Fourier neural operator (Li et al. 2021) on periodic grids."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..core import ConfigurationError
from ._cnn import PeriodicConv
from ._common import check_field_input, check_positive_int, check_spatial_dims, default_float

__all__ = ["FNO", "SpectralConv"]


class SpectralConv(eqx.Module):
    """A spectral convolution: a learned linear map on the lowest Fourier modes.

    ``y = irfft( W(k) . rfft(x)(k) )`` for the retained wavenumbers ``k`` (the others are
    set to zero), with a complex ``out_channels x in_channels`` matrix ``W(k)`` per mode.
    In 1D the modes ``0 .. modes-1`` are kept; in 2D the modes ``|k_x| < modes_x`` (both
    signs) and ``0 <= k_y < modes_y``. The number of modes is static and independent of the
    grid, so the same layer applies at any resolution with enough points
    (``n_x >= 2 modes_x``, ``n_y >= 2 (modes_y - 1)``).

    Weights are stored as real and imaginary parts (plain real leaves for optimisers),
    initialised uniformly in ``[0, 1/(in_channels out_channels))`` as in Li et al.

    Parameters
    ----------
    num_spatial_dims
        1 or 2.
    in_channels, out_channels
        Channel counts.
    modes
        Retained modes, one int for all axes or one per axis.
    key
        PRNG key for the initial weights.
    dtype
        Real dtype of the weights (default: JAX's default float).

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from hybrax.nn import SpectralConv
    >>> layer = SpectralConv(1, 2, 4, modes=8, key=jax.random.key(0))
    >>> layer(jnp.ones((2, 64), layer.dtype)).shape
    (4, 64)
    """

    weights_real: tuple[Array, ...]
    weights_imag: tuple[Array, ...]
    num_spatial_dims: int = eqx.field(static=True)
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    modes: tuple[int, ...] = eqx.field(static=True)

    def __init__(
        self,
        num_spatial_dims: int,
        in_channels: int,
        out_channels: int,
        modes: int | Sequence[int],
        *,
        key: PRNGKeyArray,
        dtype=None,
    ):
        check_spatial_dims("SpectralConv", num_spatial_dims)
        check_positive_int("SpectralConv", "in_channels", in_channels)
        check_positive_int("SpectralConv", "out_channels", out_channels)
        modes = _per_axis(modes, num_spatial_dims)
        for m in modes:
            check_positive_int("SpectralConv", "modes", m)
        dtype = dtype or default_float()
        num_blocks = 1 if num_spatial_dims == 1 else 2  # 2D: positive and negative k_x
        shape = (out_channels, in_channels, *modes)
        scale = 1.0 / (in_channels * out_channels)
        keys = jax.random.split(key, 2 * num_blocks)
        uniform = lambda k: scale * jax.random.uniform(k, shape, dtype)  # noqa: E731
        self.weights_real = tuple(uniform(keys[2 * i]) for i in range(num_blocks))
        self.weights_imag = tuple(uniform(keys[2 * i + 1]) for i in range(num_blocks))
        self.num_spatial_dims = num_spatial_dims
        self.in_channels, self.out_channels = in_channels, out_channels
        self.modes = modes

    @property
    def dtype(self):
        """The real dtype of the weights."""
        return self.weights_real[0].dtype

    def __call__(self, x: Float[Array, " in_channels *spatial"]) -> Float[Array, " out *spatial"]:
        check_field_input("SpectralConv", x, self.in_channels, self.num_spatial_dims)
        spatial = x.shape[1:]
        self._check_resolution(spatial)
        weights = [
            jax.lax.complex(r, i) for r, i in zip(self.weights_real, self.weights_imag, strict=True)
        ]
        mix = lambda w, xk: jnp.einsum("oi...,i...->o...", w, xk)  # noqa: E731
        axes = tuple(range(1, self.num_spatial_dims + 1))
        x_hat = jnp.fft.rfftn(x, axes=axes)
        out_shape = (self.out_channels, *x_hat.shape[1:])
        out = jnp.zeros(out_shape, x_hat.dtype)
        if self.num_spatial_dims == 1:
            (m,) = self.modes
            out = out.at[:, :m].set(mix(weights[0], x_hat[:, :m]))
        else:
            mx, my = self.modes
            out = out.at[:, :mx, :my].set(mix(weights[0], x_hat[:, :mx, :my]))
            out = out.at[:, -mx:, :my].set(mix(weights[1], x_hat[:, -mx:, :my]))
        return jnp.fft.irfftn(out, s=spatial, axes=axes).astype(x.dtype)

    def _check_resolution(self, spatial: tuple[int, ...]) -> None:
        if self.num_spatial_dims == 1:
            (m,), (n,) = self.modes, spatial
            ok = m <= n // 2 + 1
            need = f"nx >= {2 * (m - 1)}"
        else:
            (mx, my), (nx, ny) = self.modes, spatial
            ok = 2 * mx <= nx and my <= ny // 2 + 1
            need = f"nx >= {2 * mx} and ny >= {2 * (my - 1)}"
        if not ok:
            raise ConfigurationError(
                f"SpectralConv with modes={self.modes} needs a finer grid than {spatial}: "
                f"{need}; use fewer modes or a finer grid"
            )


class FNO(eqx.Module):
    """The Fourier neural operator of Li et al. (ICLR 2021) on a periodic grid.

    A pointwise lift ``in_channels -> width``, ``num_layers`` Fourier layers
    ``x <- act(SpectralConv(x) + W x)`` (no activation after the last one), and a pointwise
    two-layer projection ``width -> projection_width -> out_channels``. Resolution
    independent: trained on one grid, it applies to any grid with enough points for
    ``modes``. No grid coordinates are appended, so the operator is exactly
    translation-equivariant, as periodic problems are.

    Parameters
    ----------
    num_spatial_dims
        1 or 2.
    in_channels, out_channels
        Channel counts.
    width
        Channels inside the Fourier layers.
    num_layers
        Number of Fourier layers (>= 1).
    modes
        Retained Fourier modes (static), one int or one per axis.
    projection_width
        Hidden channels of the projection (default ``2 * width``).
    activation
        Nonlinearity (default `jax.nn.gelu`).
    key
        PRNG key for the initial weights.
    dtype
        Parameter dtype (default: JAX's default float).

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from hybrax.nn import FNO
    >>> net = FNO(2, 1, 1, width=8, num_layers=2, modes=6, key=jax.random.key(0))
    >>> net(jnp.ones((1, 32, 32), net.dtype)).shape
    (1, 32, 32)
    """

    lift: PeriodicConv
    spectral: tuple[SpectralConv, ...]
    pointwise: tuple[PeriodicConv, ...]
    project_hidden: PeriodicConv
    project_out: PeriodicConv
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(
        self,
        num_spatial_dims: int,
        in_channels: int,
        out_channels: int,
        width: int,
        num_layers: int,
        modes: int | Sequence[int],
        projection_width: int | None = None,
        activation: Callable[[Array], Array] = jax.nn.gelu,
        *,
        key: PRNGKeyArray,
        dtype=None,
    ):
        check_spatial_dims("FNO", num_spatial_dims)
        check_positive_int("FNO", "width", width)
        check_positive_int("FNO", "num_layers", num_layers)
        projection_width = 2 * width if projection_width is None else projection_width
        keys = iter(jax.random.split(key, 2 * num_layers + 3))

        def pointwise(c_in, c_out):
            return PeriodicConv(num_spatial_dims, c_in, c_out, 1, key=next(keys), dtype=dtype)

        self.lift = pointwise(in_channels, width)
        self.spectral = tuple(
            SpectralConv(num_spatial_dims, width, width, modes, key=next(keys), dtype=dtype)
            for _ in range(num_layers)
        )
        self.pointwise = tuple(pointwise(width, width) for _ in range(num_layers))
        self.project_hidden = pointwise(width, projection_width)
        self.project_out = pointwise(projection_width, out_channels)
        self.activation = activation

    @property
    def dtype(self):
        """The parameters' dtype."""
        return self.lift.conv.weight.dtype

    def __call__(self, x: Float[Array, " in_channels *spatial"]) -> Float[Array, " out *spatial"]:
        check_field_input("FNO", x, self.lift.in_channels, self.lift.num_spatial_dims)
        x = self.lift(x)
        last = len(self.spectral) - 1
        for i, (spectral, pointwise) in enumerate(zip(self.spectral, self.pointwise, strict=True)):
            x = spectral(x) + pointwise(x)
            if i < last:
                x = self.activation(x)
        return self.project_out(self.activation(self.project_hidden(x)))


def _per_axis(modes, num_spatial_dims: int) -> tuple[int, ...]:
    if isinstance(modes, int) and not isinstance(modes, bool):
        return (modes,) * num_spatial_dims
    modes = tuple(modes)
    if len(modes) != num_spatial_dims:
        raise ConfigurationError(
            f"SpectralConv: modes needs one entry per spatial axis ({num_spatial_dims}), "
            f"got {modes}"
        )
    return modes
