"""Fast diagonalisation of the cell-centred Laplacian on a rectangle by fast transforms.

The 1-D cell-centred second difference with the side conditions of the projection is
diagonalised by a discrete trigonometric transform (all ``O(n log n)``, orthonormal):

====================  ===================================  ================================
sides (low, high)     eigenvectors, ``j = 0..n-1``         transform
====================  ===================================  ================================
periodic              ``exp(2 pi i k j / n)``              real FFT
Neumann, Neumann      ``cos(pi k (j + 1/2) / n)``          DCT-II
Dirichlet, Dirichlet  ``sin(pi (k + 1) (j + 1/2) / n)``    DST-II (DCT-II of ``(-1)^j x``)
Neumann, Dirichlet    ``cos(pi (k + 1/2) (j + 1/2) / n)``  DCT-IV (a complex FFT of n/2)
Dirichlet, Neumann    the same, mirrored                   DCT-IV of the reversed array
====================  ===================================  ================================

so every combination of periodic, Neumann (walls, inflow) and Dirichlet (outflow) sides has a
transform, and the 2-D solve is forward transforms, a division by the eigenvalue sums, and
inverse transforms: ``O(n^2 log n)``. The DCT-II and its inverse take one real FFT of the
same length each (Makhoul's reordering) rather than `jax.scipy.fft.dct` (a complex FFT and
gathers, several times slower on CPU).
"""

import functools

import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array

__all__ = ["inverse_symbol", "transform_solve"]


def _alternate(x: Array, axis: int) -> Array:
    signs = np.where(np.arange(x.shape[axis]) % 2 == 0, 1.0, -1.0)
    return x * _along(signs, x.ndim, axis, x.dtype)


def _along(values: np.ndarray, ndim: int, axis: int, dtype) -> Array:
    shape = [1] * ndim
    shape[axis] = values.size
    return jnp.asarray(values.reshape(shape), dtype)


def _scales(n: int) -> np.ndarray:
    """Orthonormal DCT-II scaling of the unnormalised coefficients."""
    return np.where(np.arange(n) == 0, np.sqrt(1 / (4 * n)), np.sqrt(1 / (2 * n)))


def _dct2(x: Array, axis: int) -> Array:
    """Orthonormal DCT-II by one real FFT of the same length (Makhoul 1980): the even
    samples, then the odd ones reversed; ``X_k = 2 Re(w_k V_k)``, ``X_(n-k) = -2 Im(w_k V_k)``
    with ``w_k = exp(-i pi k / 2n)``."""
    n, half = x.shape[axis], x.shape[axis] // 2
    even = lax.slice_in_dim(x, 0, n, stride=2, axis=axis)
    odd = jnp.flip(lax.slice_in_dim(x, 1, n, stride=2, axis=axis), axis)
    spectrum = jnp.fft.rfft(jnp.concatenate([even, odd], axis=axis), axis=axis)
    k = np.arange(half + 1)
    z = spectrum * _along(np.exp(-0.5j * np.pi * k / n), x.ndim, axis, spectrum.dtype)
    upper = jnp.flip(lax.slice_in_dim(-jnp.imag(z), 1, n - half, axis=axis), axis)
    coefficients = 2 * jnp.concatenate([jnp.real(z), upper], axis=axis)
    return coefficients * _along(_scales(n), x.ndim, axis, x.dtype)


def _idct2(c: Array, axis: int) -> Array:
    """Inverse of `_dct2` (an orthonormal DCT-III) by one inverse real FFT."""
    n, half = c.shape[axis], c.shape[axis] // 2
    y = c / _along(_scales(n), c.ndim, axis, c.dtype)
    head = lax.slice_in_dim(y, 0, half + 1, axis=axis)
    mirrored = jnp.flip(lax.slice_in_dim(y, n - half, n, axis=axis), axis)  # y_(n-1) ..
    mirrored = jnp.concatenate(
        [jnp.zeros_like(lax.slice_in_dim(y, 0, 1, axis=axis)), mirrored], axis
    )
    k = np.arange(half + 1)
    twiddle = _along(0.5 * np.exp(0.5j * np.pi * k / n), c.ndim, axis, _complex(c.dtype))
    v = jnp.fft.irfft(lax.complex(head, -mirrored) * twiddle, n=n, axis=axis)
    count = (n + 1) // 2  # v = [x_0, x_2, ..., x_(odd ones reversed)]
    even = lax.slice_in_dim(v, 0, count, axis=axis)
    odd = jnp.flip(lax.slice_in_dim(v, count, n, axis=axis), axis)
    if n % 2:
        odd = jnp.concatenate([odd, jnp.zeros_like(lax.slice_in_dim(v, 0, 1, axis=axis))], axis)
    pairs = jnp.stack([even, odd], axis=axis + 1)
    shape = list(c.shape)
    shape[axis] = 2 * count
    return lax.slice_in_dim(pairs.reshape(shape), 0, n, axis=axis)


def _complex(dtype) -> np.dtype:
    return np.result_type(dtype, np.complex64)


def _dst2(x: Array, axis: int) -> Array:
    # DST-II[k] = DCT-II[(-1)^j x][n - 1 - k] (orthonormal scalings match as well)
    return jnp.flip(_dct2(_alternate(x, axis), axis), axis)


def _idst2(x: Array, axis: int) -> Array:
    return _alternate(_idct2(jnp.flip(x, axis), axis), axis)


def _dct4(x: Array, axis: int) -> Array:
    """Orthonormal DCT-IV (its own inverse). Even lengths: one complex FFT of half the
    length on ``z_m = x_(2m) + i x_(n-1-2m)``, ``W_p = exp(-i pi (4p+1) / 4n) FFT(z_m
    exp(-i pi m / n))_p``, ``X_(2p) = Re W_p``, ``X_(n-1-2p) = -Im W_p``. Odd lengths: the
    odd modes of the 2n-point DCT-II of the odd extension ``[x, -reversed(x)]``."""
    n = x.shape[axis]
    if n % 2:
        doubled = jnp.concatenate([x, -jnp.flip(x, axis)], axis=axis)
        odd = lax.slice_in_dim(_dct2(doubled, axis), 1, 2 * n, stride=2, axis=axis)
        return odd / np.sqrt(2.0).astype(x.dtype)
    half, complex_dtype = n // 2, _complex(x.dtype)
    even = lax.slice_in_dim(x, 0, n, stride=2, axis=axis)
    odd = jnp.flip(lax.slice_in_dim(x, 1, n, stride=2, axis=axis), axis)
    m = np.arange(half)
    z = lax.complex(even, odd) * _along(np.exp(-1j * np.pi * m / n), x.ndim, axis, complex_dtype)
    twiddle = np.sqrt(2 / n) * np.exp(-1j * np.pi * (4 * m + 1) / (4 * n))
    w = jnp.fft.fft(z, axis=axis) * _along(twiddle, x.ndim, axis, complex_dtype)
    pairs = jnp.stack([jnp.real(w), jnp.flip(-jnp.imag(w), axis)], axis=axis + 1)
    return pairs.reshape(x.shape)


def _dct4_mirrored(x: Array, axis: int) -> Array:
    return _dct4(jnp.flip(x, axis), axis)


def _idct4_mirrored(x: Array, axis: int) -> Array:
    return jnp.flip(_dct4(x, axis), axis)


# (forward, inverse) per non-periodic pair of side conditions
_REAL_TRANSFORMS = {
    ("neumann", "neumann"): (_dct2, _idct2),
    ("dirichlet", "dirichlet"): (_dst2, _idst2),
    ("neumann", "dirichlet"): (_dct4, _dct4),
    ("dirichlet", "neumann"): (_dct4_mirrored, _idct4_mirrored),
}


def _eigenvalues(n: int, h: float, kinds: tuple[str, str], half: bool) -> np.ndarray:
    """Eigenvalues of the 1-D second difference in the order of the axis's transform
    (``half``: the real FFT's ``n // 2 + 1`` frequencies)."""
    k = np.arange(n // 2 + 1 if half else n, dtype=np.float64)
    if kinds[0] == "periodic":
        angle = np.pi * k / n
    elif kinds == ("neumann", "neumann"):
        angle = np.pi * k / (2 * n)
    elif kinds == ("dirichlet", "dirichlet"):
        angle = np.pi * (k + 1) / (2 * n)
    else:
        angle = np.pi * (2 * k + 1) / (4 * n)
    return -4.0 / h**2 * np.sin(angle) ** 2


@functools.lru_cache(maxsize=64)
def inverse_symbol(
    num_points: tuple[int, ...], spacing: tuple[float, ...], kinds: tuple[tuple[str, str], ...]
) -> np.ndarray:
    """``1 / (sum of the axes' eigenvalues)`` on the transformed grid, 0 on the null mode
    (the mean, where no side is Dirichlet). Host array, cached per geometry."""
    periodic = [a for a, kind in enumerate(kinds) if kind[0] == "periodic"]
    total = np.zeros(())
    for axis, (n, h, kind) in enumerate(zip(num_points, spacing, kinds, strict=True)):
        half = bool(periodic) and axis == periodic[-1]
        values = _eigenvalues(n, h, kind, half)
        shape = [1] * len(num_points)
        shape[axis] = values.size
        total = total + values.reshape(shape)
    scale = np.abs(total).max()
    null = np.abs(total) < 1e-12 * scale
    return np.where(null, 0.0, 1.0 / np.where(null, 1.0, total))


def _on_last_axis(transform, x: Array, axis: int) -> Array:
    """``transform`` along ``axis``, applied with that axis moved last. XLA's FFTs run
    along the last axis, so it transposes anyway; moving the axis once, before the
    transform's flips, strided slices and concatenations, keeps those contiguous too
    (before, the 256² cavity's projection spent most of its time in transposing fusions),
    and XLA merges the transposes of consecutive axes into one."""
    last = x.ndim - 1
    if axis == last:
        return transform(x, last)
    return jnp.moveaxis(transform(jnp.moveaxis(x, axis, -1), last), -1, axis)


def transform_solve(
    rhs: Array,
    num_points: tuple[int, ...],
    spacing: tuple[float, ...],
    kinds: tuple[tuple[str, str], ...],
) -> Array:
    """The minimum-norm solution of ``laplacian(phi) = rhs`` (cell-centred, side conditions
    ``kinds`` per axis) by fast transforms; real axes first, then one real FFT over all
    periodic axes."""
    periodic = tuple(a for a, kind in enumerate(kinds) if kind[0] == "periodic")
    real = [a for a in range(rhs.ndim) if a not in periodic]
    hat = rhs
    for axis in reversed(real):
        hat = _on_last_axis(_REAL_TRANSFORMS[kinds[axis]][0], hat, axis)
    if periodic:
        hat = jnp.fft.rfftn(hat, axes=periodic)
    symbol = inverse_symbol(tuple(num_points), tuple(spacing), tuple(kinds))
    hat = hat * jnp.asarray(symbol, hat.dtype)
    if periodic:
        hat = jnp.fft.irfftn(hat, s=[num_points[a] for a in periodic], axes=periodic)
    for axis in real:
        hat = _on_last_axis(_REAL_TRANSFORMS[kinds[axis]][1], hat, axis)
    return hat.astype(rhs.dtype)
