"""Slab-decomposed 2-D real FFTs over a device mesh (`jax.shard_map` + `all_to_all`).

A field of shape ``(..., nx, ny)`` is split along ``x`` over one mesh axis; its spectrum
``(..., nx, ny // 2 + 1)`` is split along ``k_x`` over the same axis, so the spectral
layout equals the single-device one and every pointwise spectral operation (derivatives,
dealiasing, filters, exponential integrators) runs on the shards unchanged. Each transform
does the real FFT along ``y`` on local rows, transposes the slabs with one `all_to_all`,
does the complex FFT along ``x``, and transposes back with a second `all_to_all`. The
half-spectrum axis is padded to a multiple of the device count for the transposes
(``ny // 2 + 1`` never divides a power of two) and the padding is dropped again.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, Complex, Float

__all__ = ["SlabFFT"]


class SlabFFT(eqx.Module):
    """Distributed forward/inverse 2-D real FFT over mesh axis ``axis``.

    Use it as a `hybrax.grids.Grid` transform plan (``Grid(shape, transform=SlabFFT(...))``
    or `hybrax.parallel.distribute`) and spectral solvers run with their fields split over
    the mesh.

    Parameters
    ----------
    mesh
        Device mesh.
    axis
        Name of the mesh axis the ``x`` (and ``k_x``) axis is split over.
    shape
        ``(nx, ny)``: the physical grid; ``nx`` must be divisible by the axis size.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from hybrax.parallel import SlabFFT, make_mesh
    >>> fft = SlabFFT(make_mesh(1), "batch", (16, 16))
    >>> x = jax.random.normal(jax.random.key(0), (16, 16))
    >>> bool(jnp.allclose(fft.irfft2(fft.rfft2(x)), x, atol=1e-5))
    True
    """

    mesh: Mesh = eqx.field(static=True)
    axis: str = eqx.field(static=True)
    shape: tuple[int, int] = eqx.field(static=True)

    def __init__(self, mesh: Mesh, axis: str, shape: tuple[int, int]):
        if axis not in mesh.axis_names:
            raise ValueError(f"mesh has axes {mesh.axis_names}, not {axis!r}")
        nx, ny = (int(n) for n in shape)
        devices = mesh.shape[axis]
        if nx % devices:
            raise ValueError(
                f"SlabFFT: nx={nx} must be divisible by the {devices} devices of mesh axis {axis!r}"
            )
        self.mesh, self.axis, self.shape = mesh, axis, (nx, ny)

    @property
    def half(self) -> int:
        return self.shape[1] // 2 + 1

    @property
    def padded_half(self) -> int:
        devices = self.mesh.shape[self.axis]
        return -(-self.half // devices) * devices

    def spec(self, ndim: int) -> PartitionSpec:
        """PartitionSpec splitting the second-to-last axis of an ``ndim``-dim array."""
        return PartitionSpec(*([None] * (ndim - 2)), self.axis, None)

    def sharding(self, ndim: int) -> NamedSharding:
        """The `NamedSharding` of an ``ndim``-dim field or spectrum on this plan."""
        return NamedSharding(self.mesh, self.spec(ndim))

    def _map(self, fn, x):
        spec = self.spec(x.ndim)
        return jax.shard_map(fn, mesh=self.mesh, in_specs=spec, out_specs=spec)(x)

    def rfft2(self, x: Float[Array, "... nx ny"], norm: str = "backward") -> Complex[Array, "..."]:
        """Real FFT over the last two axes (``jnp.fft.rfft2(x, norm=norm)``), distributed."""
        self._check(x, self.shape, "field")
        return self._map(lambda block: _forward(self, block, norm), x)

    def irfft2(self, x_hat: Complex[Array, "..."], norm: str = "backward") -> Float[Array, "..."]:
        """Inverse of `rfft2` (``jnp.fft.irfft2(x_hat, s=shape, norm=norm)``), distributed."""
        self._check(x_hat, (self.shape[0], self.half), "spectrum")
        return self._map(lambda block: _inverse(self, block, norm), x_hat)

    def _check(self, x, expected, what):
        if tuple(x.shape[-2:]) != tuple(expected):
            raise ValueError(
                f"SlabFFT{self.shape}: the {what} must end in the axes {expected}, "
                f"got shape {x.shape}"
            )


def _pad_last(x: Array, size: int) -> Array:
    pad = size - x.shape[-1]
    return jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, pad)]) if pad else x


def _forward(plan: SlabFFT, block: Array, norm: str) -> Array:
    rows = jnp.fft.rfft(block, axis=-1, norm=norm)  # (..., nx/P, half)
    rows = _pad_last(rows, plan.padded_half)
    columns = jax.lax.all_to_all(rows, plan.axis, rows.ndim - 1, rows.ndim - 2, tiled=True)
    columns = jnp.fft.fft(columns, axis=-2, norm=norm)  # (..., nx, padded/P)
    rows = jax.lax.all_to_all(columns, plan.axis, rows.ndim - 2, rows.ndim - 1, tiled=True)
    return rows[..., : plan.half]


def _inverse(plan: SlabFFT, block: Array, norm: str) -> Array:
    rows = _pad_last(block, plan.padded_half)  # (..., nx/P, padded)
    columns = jax.lax.all_to_all(rows, plan.axis, rows.ndim - 1, rows.ndim - 2, tiled=True)
    columns = jnp.fft.ifft(columns, axis=-2, norm=norm)  # (..., nx, padded/P)
    rows = jax.lax.all_to_all(columns, plan.axis, rows.ndim - 2, rows.ndim - 1, tiled=True)
    return jnp.fft.irfft(rows[..., : plan.half], n=plan.shape[1], axis=-1, norm=norm)
