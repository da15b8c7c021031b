"""Periodic grids with real-FFT spectral operators (1D, 2D, 3D)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Complex, DTypeLike, Float, Shaped

from hybrax.core import ConfigurationError, mul

__all__ = ["Grid"]


def _as_tuple(value, ndim: int, name: str) -> tuple:
    if isinstance(value, (list, tuple)):
        if len(value) != ndim:
            raise ConfigurationError(
                f"Grid: {name} has {len(value)} entries but the grid has {ndim} axes"
            )
        return tuple(value)
    return (value,) * ndim


def _even_suggestion(shape: tuple) -> tuple:
    out = []
    for n in shape:
        ok = isinstance(n, (int, np.integer)) and not isinstance(n, bool)
        out.append(max(4, int(n) + int(n) % 2) if ok else 64)
    return tuple(out)


def _real_dtype(dtype: DTypeLike | None) -> np.dtype:
    dtype = np.dtype(jnp.float32 if dtype is None else dtype)
    if np.issubdtype(dtype, np.complexfloating):
        return np.dtype(jnp.finfo(dtype).dtype)
    if not np.issubdtype(dtype, np.floating):
        raise ConfigurationError(
            f"Grid: dtype must be a floating dtype such as float32, got {dtype}"
        )
    return dtype


def _mul_i(coefficient: Array, x: Array) -> Array:
    """``1j * coefficient * x`` for a real ``coefficient`` and complex ``x``, in ``x``'s
    precision."""
    c = coefficient.astype(x.real.dtype)
    return jax.lax.complex(-c * x.imag, c * x.real)


class Grid(eqx.Module):
    """A periodic box ``[0, L_1) x ... x [0, L_d)`` with ``N_i`` equispaced points per axis.

    The grid is pure structure (static fields, no array leaves), so it can sit inside any
    model without affecting `jax.grad`. Fields are arrays whose *last* ``ndim`` axes are
    the grid axes in the order ``x, y, z`` (``"ij"`` indexing: ``field[i, j]`` is the value
    at ``(x_i, y_j)``); leading axes (layers, channels, a batch) are carried along.

    Spectral fields are real-FFT coefficients over the grid axes, of shape
    `spectral_shape` ``= (N_1, ..., N_{d-1}, N_d // 2 + 1)``, normalised as Fourier
    amplitudes ("forward" normalisation)::

        field(x) = sum_k field_hat[k] exp(i k . x),   field_hat[k] = mean(field exp(-i k . x))

    so the coefficients of a resolved mode do not depend on the resolution (which makes
    `resample` a pure truncation / zero-padding) and ``field_hat[0]`` is the mean.
    Wavenumbers are angular, ``k_i = 2 pi n_i / L_i`` (units 1/length).

    Parameters
    ----------
    shape
        Points per axis, an even int >= 4 (the same for every axis) or a tuple of 1–3
        of them. Static.
    domain_length
        Period ``L`` of each axis (a positive float or a tuple, model length units);
        default ``2 pi``. Static.
    transform
        How the grid's real FFTs are computed (static): ``None`` for `jax.numpy.fft` on
        one device, or a plan with ``rfft2(x, norm)`` / ``irfft2(x_hat, norm)`` methods
        for 2-D grids, such as `hybrax.parallel.SlabFFT`, which splits fields over a
        device mesh. Solvers that transform through `rfft` / `irfft` (or `to_spectral` /
        `to_physical`) then run distributed unchanged.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from hybrax.grids import Grid
    >>> grid = Grid((64, 64))
    >>> x, y = grid.coordinates()
    >>> f_hat = grid.to_spectral(jnp.sin(3 * x) * jnp.cos(y))
    >>> dfdx = grid.to_physical(grid.derivative(f_hat, axis=0))
    >>> bool(jnp.allclose(dfdx, 3 * jnp.cos(3 * x) * jnp.cos(y), atol=1e-4))
    True
    """

    shape: tuple[int, ...] = eqx.field(static=True)
    domain_length: tuple[float, ...] = eqx.field(static=True)
    transform: Any = eqx.field(static=True)

    def __init__(
        self,
        shape: int | Sequence[int],
        domain_length: float | Sequence[float] = 2 * math.pi,
        transform: Any = None,
    ):
        shape_tuple = tuple(shape) if isinstance(shape, (list, tuple)) else (shape,)
        if not 1 <= len(shape_tuple) <= 3:
            raise ConfigurationError(f"Grid supports 1 to 3 axes, got shape {shape_tuple}")
        for n in shape_tuple:
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 4 or n % 2:
                raise ConfigurationError(
                    f"Grid sizes must be even ints >= 4 (real FFTs with a Nyquist mode), got "
                    f"shape {shape_tuple}; use e.g. {_even_suggestion(shape_tuple)}"
                )
        lengths = _as_tuple(domain_length, len(shape_tuple), "domain_length")
        for length in lengths:
            if (
                isinstance(length, (bool, np.bool_))
                or not isinstance(length, (int, float, np.number))
                or not 0 < float(length) < math.inf
            ):
                raise ConfigurationError(
                    f"Grid: domain_length must be positive finite numbers (static), got "
                    f"{domain_length!r}"
                )
        self.shape = tuple(int(n) for n in shape_tuple)
        self.domain_length = tuple(float(length) for length in lengths)
        if transform is not None and len(self.shape) != 2:
            raise ConfigurationError(
                f"Grid: a transform plan is supported for 2-D grids only, got shape {self.shape}"
            )
        self.transform = transform

    def with_transform(self, transform: Any) -> "Grid":
        """The same grid with its FFTs computed by ``transform`` (``None``: jax.numpy)."""
        return Grid(self.shape, self.domain_length, transform)

    # ------------------------------------------------------------------ geometry
    @property
    def ndim(self) -> int:
        """Number of grid axes."""
        return len(self.shape)

    @property
    def spacing(self) -> tuple[float, ...]:
        """Grid spacing ``L_i / N_i`` per axis."""
        return tuple(length / n for length, n in zip(self.domain_length, self.shape, strict=True))

    @property
    def spectral_shape(self) -> tuple[int, ...]:
        """Shape of real-FFT coefficients: ``(N_1, ..., N_d // 2 + 1)``."""
        return (*self.shape[:-1], self.shape[-1] // 2 + 1)

    @property
    def num_points(self) -> int:
        """Total number of grid points."""
        return math.prod(self.shape)

    def coordinates(self, dtype: DTypeLike | None = None) -> tuple[Float[Array, "..."], ...]:
        """Point coordinates ``x_i = j L_i / N_i``, one full-shape array per axis (``ij``)."""
        dtype = _real_dtype(dtype)
        axes = [
            np.arange(n) * (length / n)
            for n, length in zip(self.shape, self.domain_length, strict=True)
        ]
        return tuple(jnp.asarray(a, dtype) for a in np.meshgrid(*axes, indexing="ij"))

    # ------------------------------------------------------------- wavenumbers
    def _integer_wavenumbers(self) -> tuple[np.ndarray, ...]:
        """Integer mode numbers per axis, broadcastable to `spectral_shape`."""
        out = []
        for axis, n in enumerate(self.shape):
            if axis == self.ndim - 1:
                m = np.arange(n // 2 + 1)
            else:
                m = np.fft.fftfreq(n, 1.0 / n).round().astype(np.int64)
            shape = [1] * self.ndim
            shape[axis] = m.size
            out.append(m.reshape(shape))
        return tuple(out)

    def numpy_wavenumbers(self) -> tuple[np.ndarray, ...]:
        """`wavenumbers` as host-side NumPy float64 arrays, for building constant tables
        (operators, masks) outside `jax.jit`; the ``numpy_*`` methods never trace."""
        return tuple(
            m * (2 * math.pi / length)
            for m, length in zip(self._integer_wavenumbers(), self.domain_length, strict=True)
        )

    def _nyquist_mask(self) -> np.ndarray:
        """True away from every axis's Nyquist mode (``|n_i| = N_i / 2``)."""
        keep = np.ones(self.spectral_shape, bool)
        for m, n in zip(self._integer_wavenumbers(), self.shape, strict=True):
            keep = keep & (np.abs(m) != n // 2)
        return keep

    def wavenumbers(self, dtype: DTypeLike | None = None) -> tuple[Float[Array, "..."], ...]:
        """Angular wavenumbers ``k_i = 2 pi n_i / L_i``, one array per axis, each
        broadcastable to `spectral_shape` (length ``N_i`` along its own axis, 1 elsewhere).

        Full axes follow `numpy.fft.fftfreq` order (the Nyquist mode is ``-N/2``); the last
        axis is ``0 ... N/2``.
        """
        dtype = _real_dtype(dtype)
        return tuple(jnp.asarray(k, dtype) for k in self.numpy_wavenumbers())

    def wavenumber_squared(self, dtype: DTypeLike | None = None) -> Float[Array, "..."]:
        """``|k|^2`` on the spectral grid (the symbol of ``-nabla^2``)."""
        return jnp.asarray(self.numpy_wavenumber_squared(), _real_dtype(dtype))

    def numpy_wavenumber_squared(self) -> np.ndarray:
        """`wavenumber_squared` as a host-side NumPy float64 array."""
        return sum(np.broadcast_to(k, self.spectral_shape) ** 2 for k in self.numpy_wavenumbers())

    def numpy_inverse_wavenumber_squared(self) -> np.ndarray:
        """``1 / |k|^2`` on the spectral grid, 0 at ``k = 0`` (the symbol of the inverse
        Laplacian up to sign, mean mode dropped), as a host-side NumPy float64 array.

        Examples
        --------
        >>> from hybrax.grids import Grid
        >>> Grid((4, 4)).numpy_inverse_wavenumber_squared()[:2, :2].tolist()
        [[0.0, 1.0], [1.0, 0.5]]
        """
        k2 = self.numpy_wavenumber_squared()
        return np.where(k2 > 0, 1.0 / np.where(k2 > 0, k2, 1.0), 0.0)

    def hermitian_weights(self, dtype: DTypeLike | None = None) -> Float[Array, "..."]:
        """How many Fourier modes each real-FFT coefficient stands for: 1 on the ``n_d = 0``
        and Nyquist columns, 2 elsewhere (the conjugate mode is implied).

        With the forward normalisation, Parseval reads
        ``mean(f * g) = sum(weights * real(conj(f_hat) * g_hat))``.
        """
        return jnp.asarray(self.numpy_hermitian_weights(), _real_dtype(dtype))

    def numpy_hermitian_weights(self) -> np.ndarray:
        """`hermitian_weights` as a host-side NumPy float64 array."""
        n = self.shape[-1]
        w = np.full(n // 2 + 1, 2.0)
        w[0] = w[-1] = 1.0
        shape = [1] * (self.ndim - 1) + [n // 2 + 1]
        return np.broadcast_to(w.reshape(shape), self.spectral_shape)

    # --------------------------------------------------------------- transforms
    def _check_trailing(self, value, expected: tuple[int, ...], what: str) -> None:
        actual = tuple(jnp.shape(value))
        if actual[len(actual) - self.ndim :] != expected or len(actual) < self.ndim:
            raise ConfigurationError(
                f"Grid{self.shape}: {what} must end in the axes {expected}, got shape {actual}"
                + ("" if what != "field_hat" else "; build it with grid.to_spectral(field)")
            )

    def to_spectral(self, field: Float[Array, "..."]) -> Complex[Array, "..."]:
        """Real FFT over the last ``ndim`` axes, forward-normalised (Fourier amplitudes)."""
        self._check_trailing(field, self.shape, "field")
        field = jnp.asarray(field)
        if not jnp.issubdtype(field.dtype, jnp.floating):
            raise ConfigurationError(
                f"Grid.to_spectral needs a real floating field (float32/float64), got "
                f"{field.dtype}; for complex data transform real and imaginary parts separately"
            )
        return self.rfft(field, norm="forward")

    def to_physical(self, field_hat: Complex[Array, "..."]) -> Float[Array, "..."]:
        """Inverse of `to_spectral`: the real field on the grid points."""
        self._check_trailing(field_hat, self.spectral_shape, "field_hat")
        return self.irfft(field_hat, norm="forward")

    def rfft(self, field: Float[Array, "..."], norm: str = "backward") -> Complex[Array, "..."]:
        """Real FFT over the grid axes with numpy's ``norm`` convention, through the
        grid's transform plan (no shape checks: the fast path for solvers)."""
        if self.transform is not None:
            return self.transform.rfft2(field, norm)
        return jnp.fft.rfftn(field, axes=tuple(range(-self.ndim, 0)), norm=norm)

    def irfft(
        self, field_hat: Complex[Array, "..."], norm: str = "backward"
    ) -> Float[Array, "..."]:
        """Inverse of `rfft` (the physical field on the grid points)."""
        if self.transform is not None:
            return self.transform.irfft2(field_hat, norm)
        axes = tuple(range(-self.ndim, 0))
        return jnp.fft.irfftn(field_hat, s=self.shape, axes=axes, norm=norm)

    # ---------------------------------------------------------------- operators
    def derivative(
        self, field_hat: Complex[Array, "..."], axis: int, order: int = 1
    ) -> Complex[Array, "..."]:
        """Spectral ``d^order / dx_axis^order`` of ``field_hat`` (multiplication by
        ``(i k_axis)^order``).

        For odd orders the Nyquist mode of that axis is set to zero (its derivative is not
        representable as a real field), as is standard for Fourier differentiation.
        """
        if not (isinstance(axis, int) and -self.ndim <= axis < self.ndim):
            raise ConfigurationError(f"axis must be an int in [0, {self.ndim}), got {axis!r}")
        if isinstance(order, bool) or not isinstance(order, int) or order < 0:
            raise ConfigurationError(f"order must be a non-negative int, got {order!r}")
        self._check_trailing(field_hat, self.spectral_shape, "field_hat")
        axis = axis % self.ndim
        k = self.numpy_wavenumbers()[axis]
        if order % 2:
            m = self._integer_wavenumbers()[axis]
            k = np.where(np.abs(m) == self.shape[axis] // 2, 0.0, k)
        coefficient = k**order * (-1.0) ** (order // 2)  # (i k)^order = i^(order % 2) * this
        coefficient = jnp.asarray(coefficient, field_hat.real.dtype)
        if order % 2:
            return _mul_i(coefficient, field_hat)
        return mul(coefficient, field_hat)

    def gradient(self, field_hat: Complex[Array, "..."]) -> Complex[Array, "ndim ..."]:
        """Spectral gradient, stacked along a new leading axis of length ``ndim``."""
        return jnp.stack([self.derivative(field_hat, axis) for axis in range(self.ndim)])

    def laplacian(self, field_hat: Complex[Array, "..."]) -> Complex[Array, "..."]:
        """Spectral Laplacian, ``-|k|^2 field_hat``."""
        self._check_trailing(field_hat, self.spectral_shape, "field_hat")
        return mul(jnp.asarray(-self.numpy_wavenumber_squared(), field_hat.real.dtype), field_hat)

    def inverse_laplacian(self, field_hat: Complex[Array, "..."]) -> Complex[Array, "..."]:
        """Solve ``nabla^2 psi = f`` spectrally: ``-field_hat / |k|^2``, with the ``k = 0``
        (mean) mode of the result set to zero (the zero-mean solution)."""
        self._check_trailing(field_hat, self.spectral_shape, "field_hat")
        k2 = self.numpy_wavenumber_squared()
        inverse = np.where(k2 > 0, -1.0 / np.where(k2 > 0, k2, 1.0), 0.0)
        return mul(jnp.asarray(inverse, field_hat.real.dtype), field_hat)

    # ---------------------------------------------------------------- filtering
    def numpy_dealias_mask(self) -> np.ndarray:
        """`dealias_mask` as a host-side NumPy bool array."""
        keep = np.ones(self.spectral_shape, bool)
        for m, n in zip(self._integer_wavenumbers(), self.shape, strict=True):
            keep = keep & (3 * np.abs(m) < n)
        return keep

    def dealias_mask(self, dtype: DTypeLike | None = None) -> Float[Array, "..."]:
        """Orszag's 2/3 rule as a 0/1 array on the spectral grid: keeps the modes with
        ``|n_i| < N_i / 3`` on every axis.

        A quadratic product of two fields so truncated, computed on the grid and truncated
        again, is free of aliasing error on the kept modes.
        """
        return jnp.asarray(self.numpy_dealias_mask(), _real_dtype(dtype))

    def dealias(self, field_hat: Complex[Array, "..."]) -> Complex[Array, "..."]:
        """``field_hat`` with the modes outside the 2/3-rule band set to zero."""
        self._check_trailing(field_hat, self.spectral_shape, "field_hat")
        return mul(self.dealias_mask(field_hat.real.dtype), field_hat)

    def exponential_filter(
        self,
        dtype: DTypeLike | None = None,
        *,
        cutoff: float = 0.65,
        strength: float = 23.6,
        order: int = 4,
    ) -> Float[Array, "..."]:
        """Smooth spectral filter ``exp(-strength (kappa - cutoff pi)^order)`` above a cutoff.

        ``kappa = sqrt(sum_i (k_i dx_i)^2)`` is the dimensionless wavenumber (``pi`` at a
        1D Nyquist mode); the filter is 1 for ``kappa <= cutoff pi``. The defaults
        (``cutoff=0.65``, ``strength=23.6``, ``order=4``) are pyqg's enstrophy filter
        (Arbic & Flierl 2003), which damps the top third of the spectrum smoothly and
        leaves the resolved scales untouched. Multiply spectral fields (or tendencies) by it.

        Parameters
        ----------
        dtype
            Real dtype of the result (default float32).
        cutoff
            Fraction of ``pi`` below which the filter is exactly 1 (in ``[0, 1]``).
        strength
            Damping coefficient (dimensionless, > 0).
        order
            Even power of the roll-off (>= 2).
        """
        if not 0 <= cutoff <= 1:
            raise ConfigurationError(f"cutoff must be in [0, 1] (a fraction of pi), got {cutoff!r}")
        if not strength > 0:
            raise ConfigurationError(f"strength must be positive, got {strength!r}")
        if isinstance(order, bool) or not isinstance(order, int) or order < 2 or order % 2:
            raise ConfigurationError(f"order must be an even int >= 2, got {order!r}")
        kappa = np.sqrt(
            sum(
                np.broadcast_to(k * dx, self.spectral_shape) ** 2
                for k, dx in zip(self.numpy_wavenumbers(), self.spacing, strict=True)
            )
        )
        excess = np.maximum(kappa - cutoff * math.pi, 0.0)
        return jnp.asarray(np.exp(-strength * excess**order), _real_dtype(dtype))

    # ---------------------------------------------------------------- helpers
    def check_spectral(self, name: str, value: Shaped[ArrayLike, "..."], *, model: str) -> None:
        """Raise `ValueError` unless ``value`` is a complex array of `spectral_shape`
        (no leading axes)."""
        actual = tuple(jnp.shape(value))
        if actual != self.spectral_shape:
            hint = ""
            if actual == self.shape:
                hint = "; that is a physical field: convert it with grid.to_spectral(field)"
            elif actual[-self.ndim :] == self.spectral_shape:
                hint = "; for an ensemble use jax.vmap over the leading axis"
            raise ConfigurationError(
                f"{model}: {name} must have the spectral shape {self.spectral_shape} of "
                f"Grid{self.shape}, got {actual}{hint}"
            )
        dtype = jnp.result_type(value)
        if not jnp.issubdtype(dtype, jnp.complexfloating):
            raise ConfigurationError(
                f"{model}: {name} must be complex (complex64 or complex128: real-FFT "
                f"coefficients), got {dtype}; build it with grid.to_spectral(field)"
            )
