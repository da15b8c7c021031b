"""Slab-decomposed 3-D real FFTs over a device mesh (`jax.shard_map` + `all_to_all`)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, Complex, Float

__all__ = ["SlabFFT3D"]


class SlabFFT3D(eqx.Module):
    """Distributed forward/inverse 3-D real FFT over mesh axis ``axis`` (slab decomposition).

    A field ``(..., nx, ny, nz)`` and its spectrum ``(..., nx, ny, nz // 2 + 1)`` are both
    split along ``x``, so the spectral layout equals the single-device one and pointwise
    spectral work runs on the slabs unchanged. A transform does the real FFT along ``z``
    and the FFT along ``y`` on local slabs, one `all_to_all` to split along ``y`` instead,
    the FFT along ``x``, and one `all_to_all` back. Pass it as ``transform=`` to
    `hybrax.fluids.NavierStokes3D`; place fields with `sharding`.

    Parameters
    ----------
    mesh
        Device mesh.
    axis
        Name of the mesh axis ``x`` is split over.
    shape
        ``(nx, ny, nz)``; ``nx`` and ``ny`` must be divisible by the axis size.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from hybrax.parallel import SlabFFT3D, make_mesh
    >>> fft = SlabFFT3D(make_mesh(1), "batch", (8, 8, 8))
    >>> x = jax.random.normal(jax.random.key(0), (8, 8, 8))
    >>> bool(jnp.allclose(fft.irfftn(fft.rfftn(x)), x, atol=1e-5))
    True
    """

    mesh: Mesh = eqx.field(static=True)
    axis: str = eqx.field(static=True)
    shape: tuple[int, int, int] = eqx.field(static=True)

    def __init__(self, mesh: Mesh, axis: str, shape: tuple[int, int, int]):
        if axis not in mesh.axis_names:
            raise ValueError(f"SlabFFT3D: mesh has axes {mesh.axis_names}, not {axis!r}")
        if len(shape) != 3:
            raise ValueError(f"SlabFFT3D: shape must be (nx, ny, nz), got {shape}")
        nx, ny, nz = (int(n) for n in shape)
        devices = mesh.shape[axis]
        if nx % devices or ny % devices:
            raise ValueError(
                f"SlabFFT3D: nx={nx} and ny={ny} must be divisible by the {devices} devices "
                f"of mesh axis {axis!r}"
            )
        self.mesh, self.axis, self.shape = mesh, axis, (nx, ny, nz)

    def spec(self, ndim: int) -> PartitionSpec:
        """PartitionSpec splitting the third-to-last axis of an ``ndim``-dim array."""
        return PartitionSpec(*([None] * (ndim - 3)), self.axis, None, None)

    def sharding(self, ndim: int) -> NamedSharding:
        """The `NamedSharding` of an ``ndim``-dim field or spectrum on this plan."""
        return NamedSharding(self.mesh, self.spec(ndim))

    def _map(self, fn, x):
        spec = self.spec(x.ndim)
        return jax.shard_map(fn, mesh=self.mesh, in_specs=spec, out_specs=spec)(x)

    def rfftn(self, x: Float[Array, "..."], norm: str = "backward") -> Complex[Array, "..."]:
        """``jnp.fft.rfftn`` over the last three axes, distributed."""
        return self._map(lambda block: self._forward(block, norm), x)

    def irfftn(self, x_hat: Complex[Array, "..."], norm: str = "backward") -> Float[Array, "..."]:
        """Inverse of `rfftn`, distributed."""
        return self._map(lambda block: self._inverse(block, norm), x_hat)

    def _swap(self, x: Array, split: int, concat: int) -> Array:
        return jax.lax.all_to_all(x, self.axis, split, concat, tiled=True)

    def _forward(self, block: Array, norm: str) -> Array:
        n = block.ndim
        planes = jnp.fft.fft(jnp.fft.rfft(block, axis=-1, norm=norm), axis=-2, norm=norm)
        columns = self._swap(planes, n - 2, n - 3)  # (..., nx, ny/P, half)
        columns = jnp.fft.fft(columns, axis=-3, norm=norm)
        return self._swap(columns, n - 3, n - 2)

    def _inverse(self, block: Array, norm: str) -> Array:
        n = block.ndim
        columns = jnp.fft.ifft(self._swap(block, n - 2, n - 3), axis=-3, norm=norm)
        planes = jnp.fft.ifft(self._swap(columns, n - 3, n - 2), axis=-2, norm=norm)
        return jnp.fft.irfft(planes, n=self.shape[2], axis=-1, norm=norm)
