"""3D incompressible Navier–Stokes in velocity form, pseudo-spectral on a periodic box."""

from __future__ import annotations

import functools
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Complex, DTypeLike, Float

from hybrax.core import (
    AbstractSemilinearDynamics,
    ConfigurationError,
    check_dtype,
    parameter,
)
from hybrax.grids import Grid, SpectralState

from ._common import as_grid, check_finite_field
from ._dealiasing import AbstractDealiasing, TwoThirdsRule, check_dealias, dealiasing_factor
from ._dealiasing import nyquist_free as _nyquist_free

__all__ = ["NavierStokes3D"]


_TWO_THIRDS = TwoThirdsRule()  # the default dealiasing (a field-less, immutable module)


@functools.lru_cache(maxsize=32)
def _tables(
    grid: Grid, dealias: AbstractDealiasing | None, dtype: np.dtype
) -> dict[str, np.ndarray]:
    """Host-side constant tables: wavenumbers (Nyquist-free), the dealiasing factor
    (``mask``), ``1/|k|^2`` (0 at k = 0), Hermitian weights and integer shell indices."""
    ks = [np.broadcast_to(k, grid.spectral_shape) for k in grid.numpy_wavenumbers()]
    mask = np.asarray(dealiasing_factor(dealias, grid), dtype=float)
    nyquist_free = _nyquist_free(grid)
    k2 = grid.numpy_wavenumber_squared()
    inverse_k2 = np.where(k2 > 0, 1.0 / np.where(k2 > 0, k2, 1.0), 0.0)
    shells = np.rint(np.sqrt(k2) * (grid.domain_length[0] / (2 * math.pi))).astype(np.int32)
    tables = {
        "k": np.stack([k * nyquist_free for k in ks]).astype(dtype),
        "mask": mask.astype(dtype),
        "nyquist_free": nyquist_free.astype(dtype),
        "inverse_k2": inverse_k2.astype(dtype),
        "k2": k2.astype(dtype),
        "weights": grid.numpy_hermitian_weights().astype(dtype),
        "shells": shells,
    }
    if isinstance(dealias, TwoThirdsRule):  # the kept modes as one box ("compact" tables)
        for name in ("k", "inverse_k2", "k2", "weights"):
            tables[f"compact_{name}"] = _restrict(grid, tables[name])
    return tables


def _kept(grid: Grid) -> tuple[int, ...]:
    """The largest ``|n_i|`` the 2/3 rule keeps on each axis (``3 |n_i| < N_i``)."""
    return tuple((n - 1) // 3 for n in grid.shape)


def _box_indices(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Full-axis indices of the 2/3 rule's kept modes on x and y, in FFT order."""
    return tuple(
        np.r_[0 : p + 1, n - p : n] for p, n in zip(_kept(grid)[:2], grid.shape[:2], strict=True)
    )


def _restrict(grid: Grid, z):
    """The 2/3 rule's kept modes of ``z`` (``(..., *grid.spectral_shape)``) as one box,
    ``(..., 2 px + 1, 2 py + 1, pz + 1)``, in FFT order on the full axes (``0 ... p``,
    then ``-p ... -1``): one gather, which XLA fuses into its consumer. Works on NumPy and
    JAX arrays."""
    ix, iy = _box_indices(grid)
    return z[..., ix[:, None], iy[None, :], : _kept(grid)[2] + 1]


@functools.lru_cache(maxsize=32)
def _box_mask(grid: Grid) -> np.ndarray:
    """Where `_restrict` gathers from: the 2/3 rule's kept modes (bool,
    ``grid.spectral_shape``)."""
    inside = np.zeros(grid.spectral_shape, bool)
    ix, iy = _box_indices(grid)
    inside[ix[:, None], iy[None, :], : _kept(grid)[2] + 1] = True
    return inside


def _extend(grid: Grid, box: Array) -> Array:
    """The inverse of `_restrict`: the full spectral array, zero outside the box (a
    gather from the box padded with one zero plane per axis, fused into the consumer)."""
    nz = grid.spectral_shape[2]
    padded = jnp.pad(box, [(0, 0)] * (box.ndim - 3) + [(0, 1), (0, 1), (0, nz - box.shape[-1])])
    sources = []
    for p, n in zip(_kept(grid)[:2], grid.shape[:2], strict=True):
        m = np.arange(n)
        source = np.where(m <= p, m, np.where(m >= n - p, m - (n - 2 * p - 1), 2 * p + 1))
        sources.append(source)
    jx, jy = sources
    return padded[..., jx[:, None], jy[None, :], :]


_DENSE_SYNTHESIS_MAX = 256  # the largest half-axis length transformed by a matrix product


@functools.lru_cache(maxsize=32)
def _synthesis_matrices(
    num_points: int, num_kept: int, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray]:
    """The real inverse DFT along the half axis from its first ``num_kept`` modes,
    ``u(z) = sum_k w_k (Re c_k cos(2 pi k z / N) - Im c_k sin(2 pi k z / N))`` with
    ``w_0 = 1``, ``w_k = 2`` (no 1/N: ``norm="forward"``), as its even part (the cosines,
    from the real parts) and odd part (the sines, from the imaginary parts) on
    ``z = 0 ... N/2``: two matrices of shape ``(N/2 + 1, num_kept)`` (see `_halves`)."""
    k = np.arange(num_kept)[None, :]
    weight = np.where(k == 0, 1.0, 2.0)
    angle = 2 * math.pi * np.arange(num_points // 2 + 1)[:, None] * k / num_points
    return (weight * np.cos(angle)).astype(dtype), (-weight * np.sin(angle)).astype(dtype)


@functools.lru_cache(maxsize=32)
def _analysis_matrices(
    num_points: int, num_kept: int, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray]:
    """The forward-normalised real DFT along the half axis onto its first ``num_kept``
    modes, ``c_k = (1/N) sum_z u(z) (cos(2 pi k z / N) - i sin(2 pi k z / N))``, from the
    even and odd parts of ``u`` on ``z = 0 ... N/2`` (`_halves`): the real parts are the
    first matrix times the even part, the imaginary parts the second times the odd part,
    both ``(num_kept, N/2 + 1)`` (the points ``0 < z < N/2`` count twice)."""
    half = num_points // 2
    k = np.arange(num_kept)[:, None]
    angle = 2 * math.pi * k * np.arange(half + 1)[None, :] / num_points
    twice = np.where((np.arange(half + 1) == 0) | (np.arange(half + 1) == half), 1.0, 2.0)
    cosine = twice * np.cos(angle) / num_points
    return cosine.astype(dtype), (-2 * np.sin(angle) / num_points).astype(dtype)


_HIGHEST = jax.lax.Precision.HIGHEST


def _matmul(matrix: Array, fields: Array) -> Array:
    """``matrix @ fields`` over the leading axis of ``fields`` (full float precision): no
    transpose when that axis is the outermost in memory."""
    out = jnp.matmul(matrix, fields.reshape(fields.shape[0], -1), precision=_HIGHEST)
    return out.reshape(matrix.shape[0], *fields.shape[1:])


def _kept_planes(grid: Grid, box: Array) -> Array:
    """The 2-D inverse FFT over x and y of the 2/3 rule's kept ``kz < N_z / 3`` planes from
    the box of kept modes (`_restrict`'s layout), the planes first: ``(kz, ..., N_x, N_y)``.

    Only the box is transposed, then padded with zero rows and columns: inside a step this
    is 6.4 ms of 36.8 faster than masking and transposing the kept planes of the whole
    array (64^3, one core; 456 -> 372 ms at 128^3), as XLA then fuses the gather of the box
    (`_restrict`) with the stepper's stage arithmetic."""
    (nx, ny), (px, py) = grid.shape[:2], _kept(grid)[:2]
    planes = jnp.moveaxis(box, -1, 0)  # (kz, ..., 2 px + 1, 2 py + 1)
    gap = jnp.zeros((*planes.shape[:-2], nx - 2 * px - 1, planes.shape[-1]), planes.dtype)
    planes = jnp.concatenate([planes[..., : px + 1, :], gap, planes[..., px + 1 :, :]], -2)
    gap = jnp.zeros((*planes.shape[:-1], ny - 2 * py - 1), planes.dtype)
    planes = jnp.concatenate([planes[..., : py + 1], gap, planes[..., py + 1 :]], -1)
    return jnp.fft.ifft2(planes, axes=(-2, -1), norm="forward")


def _halves(grid: Grid, planes: Array) -> tuple[Array, Array]:
    """The half axis of `_kept_planes` synthesised as the even and odd parts of the field,
    ``E(z) = (u(z) + u(N - z)) / 2`` and ``O(z) = (u(z) - u(N - z)) / 2`` on
    ``z = 0 ... N/2`` (``(N/2 + 1, ..., N_x, N_y)`` each; ``u = E + O`` at ``z``, ``E - O``
    at ``N - z``): two matrix products of half the size of one over all ``N`` points, the
    even part from the real parts of the planes, the odd one from the imaginary parts, and
    no transpose (z-major). On a CPU the dense products beat an FFT over the mostly zero
    modes (2/3 of them are dropped by the rule)."""
    cosine, sine = _synthesis_matrices(grid.shape[2], planes.shape[0], np.dtype(planes.real.dtype))
    return _matmul(jnp.asarray(cosine), planes.real), _matmul(jnp.asarray(sine), planes.imag)


def _planes_of_halves(grid: Grid, even: Array, odd: Array) -> Array:
    """The kept ``kz < N_z / 3`` modes along the half axis of a real field given by its even
    and odd parts (`_halves`' convention), as complex planes ``(kz, ..., N_x, N_y)``."""
    cosine, sine = _analysis_matrices(grid.shape[2], _kept(grid)[2] + 1, np.dtype(even.dtype))
    return jax.lax.complex(_matmul(jnp.asarray(cosine), even), _matmul(jnp.asarray(sine), odd))


def _box_of_planes(grid: Grid, planes: Array) -> Array:
    """The 2/3 rule's box (`_restrict`'s layout) from the kept kz planes ``(kz, ..., N_x,
    N_y)``: the 2-D FFT over x and y, the kept rows taken."""
    ix, iy = _box_indices(grid)
    planes = jnp.fft.fft2(planes, axes=(-2, -1), norm="forward")[..., ix[:, None], iy[None, :]]
    return jnp.moveaxis(planes, 0, -1)


def _products_box(grid: Grid, box: Array) -> Array:
    """The 2/3 rule's box of the five shifted products (`_FIVE_PAIRS`) of the velocity
    whose kept modes are ``box`` (`_restrict`'s layout), pruned both ways: the inverse
    transform only from the kept kz planes (`_kept_planes`), the forward one only onto them,
    the half axis as matrix products on the even and odd parts (`_halves`,
    `_five_products`: the products of the parts are the parts of the products), the grid
    fields z-major so that no large array is transposed. Beyond ``N_z = 256``
    (``_DENSE_SYNTHESIS_MAX``), where the products' cost (``N_z^2`` per column) loses to
    FFTs, the half axis is a real FFT each way. Equal to
    ``_restrict(rfftn(products(irfftn(mask u_hat))))`` to round-off."""
    n = grid.shape[2]
    planes = _kept_planes(grid, box)
    num_kept = planes.shape[0]
    if n > _DENSE_SYNTHESIS_MAX:
        planes = jnp.pad(planes, [(0, n // 2 + 1 - num_kept)] + [(0, 0)] * (planes.ndim - 1))
        u = jnp.fft.irfft(planes, n=n, axis=0, norm="forward")
        planes = jnp.fft.rfft(_five_products(u)[0], axis=0, norm="forward")[:num_kept]
    else:
        planes = _planes_of_halves(grid, *_five_products(*_halves(grid, planes)))
    return _box_of_planes(grid, planes)


_PAIRS = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))  # the distinct u_i u_j
# u_i u_j - w^2 delta_ij without its zero (2, 2) entry: the same divergence up to a gradient
_FIVE_PAIRS = ((0, 0), (1, 1), (0, 1), (0, 2), (1, 2))


def _products(u: Array) -> Array:
    """The six distinct products ``u_i u_j`` of a velocity ``(3, ...)``, in `_PAIRS` order."""
    return jnp.stack([u[i] * u[j] for i, j in _PAIRS])


def _five_products(even: Array, odd: Array | None = None) -> tuple[Array, Array | None]:
    """``u_i u_j - w^2 delta_ij`` (``w = u_2``) for `_FIVE_PAIRS`, from and to even and odd
    parts (`_halves`): ``(E_i E_j + O_i O_j, E_i O_j + O_i E_j)``; for a plain field
    (``odd=None``) the products and ``None``. Components on axis 1 (z-major ``(z, 3, ...)``
    in, ``(z, 5, ...)`` out). The (2, 2) entry is zero, and the divergence differs from
    ``div(u u)`` by ``grad(w^2)``, which the Leray projection removes."""
    e = [even[:, i] for i in range(3)]
    o = None if odd is None else [odd[:, i] for i in range(3)]

    def even_part(i, j):
        return e[i] * e[j] + (0 if o is None else o[i] * o[j])

    products = [even_part(i, j) - (even_part(2, 2) if i == j else 0) for i, j in _FIVE_PAIRS]
    if o is None:
        return jnp.stack(products, axis=1), None
    ww_odd = 2 * e[2] * o[2]
    products_odd = [e[i] * o[j] + o[i] * e[j] - (ww_odd if i == j else 0) for i, j in _FIVE_PAIRS]
    return jnp.stack(products, axis=1), jnp.stack(products_odd, axis=1)


def _i_times(c: Array, z: Array) -> Array:
    """``i c z`` for real ``c`` and complex ``z`` (no complex multiply)."""
    return jax.lax.complex(-c * z.imag, c * z.real)


def _scale(c: Array, z: Array) -> Array:
    return jax.lax.complex(c * z.real, c * z.imag)


class NavierStokes3D(AbstractSemilinearDynamics):
    """Incompressible 3D Navier–Stokes equations on a periodic box, velocity form.

    .. math::
        \\partial_t \\mathbf u = \\mathbf u \\times \\boldsymbol\\omega - \\nabla P
            + \\nu \\nabla^2 \\mathbf u + \\mathbf f,
        \\qquad \\nabla \\cdot \\mathbf u = 0,
        \\qquad \\boldsymbol\\omega = \\nabla \\times \\mathbf u

    (rotational form; ``P = p + |u|^2 / 2``). The pressure is eliminated by the Leray
    projection ``P(k) = I - k k^T / |k|^2`` onto divergence-free fields. Units: the
    domain's length and the model's time; ``nu`` in length^2 / time.

    **State**: a `hybrax.grids.SpectralState` whose ``field_hat`` holds the velocity's
    forward-normalised real-FFT coefficients, shape ``(3, nx, ny, nz // 2 + 1)`` (use
    `state_from_velocity` / `velocity`). Arrays index ``[component, x, y, z]``.

    **Discretisation**: pseudo-spectral, semilinear ``L u + N(u)`` with ``L = -nu |k|^2``
    (integrated exactly by `hybrax.ETDRK4`, implicitly by `hybrax.CrankNicolsonRK4`) and
    ``N = P[u x omega] + f``, the product evaluated on the grid from dealiased fields and
    dealiased again (6 inverse + 3 forward real FFTs per evaluation; with the 2/3 rule the
    equal divergence form ``-P[div(u u - w^2 I)]``, 3 inverse + 5 forward, which is faster;
    the transforms skip the modes the rule zeroes, and the spectral work runs on the box of
    kept modes only). With the 2/3 rule
    (the default) the truncated inviscid, unforced system conserves kinetic energy exactly
    (``u . (u x omega) = 0`` pointwise, no aliasing on the kept modes); the mean flow
    is constant. ``dealias`` makes the rule a choice, as in `NavierStokes2D`.

    **Forcing** (optional, ``forcing_power > 0``): constant-power band forcing
    ``f_hat = (epsilon / 2 E_f) u_hat`` on the shells ``0 < |k| <= forcing_wavenumber``
    (``E_f`` the kinetic energy there), which injects energy at exactly the rate
    ``epsilon`` -- a band-limited variant of Lundgren's (2003) linear forcing. In a
    statistically steady state ``epsilon`` equals the dissipation rate.

    Parameters
    ----------
    grid
        A 3D `hybrax.grids.Grid` (or an int ``N`` for ``N^3`` points on ``[0, 2 pi]^3``).
    viscosity
        Kinematic viscosity ``nu`` >= 0 (differentiable leaf), default ``1e-2``.
    forcing_power
        Injected power ``epsilon`` >= 0 (differentiable leaf), default 0 (unforced).
    forcing_wavenumber
        Forced band ``|k| <= forcing_wavenumber`` (static), default 2.5.
    transform
        ``None`` (jax.numpy FFTs) or a plan with ``rfftn(x, norm)`` / ``irfftn(x, norm)``
        over the last three axes, e.g. `hybrax.parallel.SlabFFT3D` to split the fields
        over devices.
    dealias
        An `AbstractDealiasing`: `TwoThirdsRule()` (default), `SmoothFilter()` (Hou & Li's
        36th-order filter: keeps more of the spectrum, at the price of a small aliasing
        error near its top and of exact energy conservation), or ``None`` (no dealiasing;
        Nyquist modes still dropped). Static.

    Examples
    --------
    >>> import hybrax
    >>> from hybrax.fluids import NavierStokes3D
    >>> model = NavierStokes3D.taylor_green(16, reynolds_number=100.0)
    >>> state = model.taylor_green_state()
    >>> final, _ = hybrax.rollout(hybrax.ETDRK4(model, 0.05), state, 4, save_every=None)
    >>> model.velocity(final).shape
    (3, 16, 16, 16)
    """

    grid: Grid
    viscosity: Float[Array, ""] = parameter(
        "NavierStokes3D: viscosity", nonnegative=True, scalar=True, example="viscosity=1e-2"
    )
    forcing_power: Float[Array, ""] = parameter(
        "NavierStokes3D: forcing_power", nonnegative=True, scalar=True, example="forcing_power=0.1"
    )
    forcing_wavenumber: float = eqx.field(static=True)
    transform: Any = eqx.field(static=True)
    dealias: AbstractDealiasing | None = eqx.field(static=True)

    def __init__(
        self,
        grid: Grid | int,
        viscosity: ArrayLike = 1e-2,
        forcing_power: ArrayLike = 0.0,
        forcing_wavenumber: float = 2.5,
        transform: Any = None,
        dealias: AbstractDealiasing | None = _TWO_THIRDS,
    ):
        self.grid = as_grid(grid, 3, "NavierStokes3D")
        self.viscosity = viscosity
        self.forcing_power = forcing_power
        if not (isinstance(forcing_wavenumber, (int, float)) and forcing_wavenumber > 0):
            raise ConfigurationError(
                f"NavierStokes3D: forcing_wavenumber must be a positive number, e.g. 2.5, got "
                f"{forcing_wavenumber!r}"
            )
        self.forcing_wavenumber = float(forcing_wavenumber)
        if transform is not None and not (
            hasattr(transform, "rfftn") and hasattr(transform, "irfftn")
        ):
            raise ConfigurationError(
                f"NavierStokes3D: transform must be None or a plan with rfftn/irfftn (e.g. "
                f"hybrax.parallel.SlabFFT3D), got {type(transform).__name__}"
            )
        self.transform = transform
        self.dealias = check_dealias(dealias, "NavierStokes3D")

    # ---------------------------------------------------------------- presets
    @classmethod
    def taylor_green(
        cls, num_points: int = 64, *, reynolds_number: ArrayLike = 1600.0, **kwargs
    ) -> "NavierStokes3D":
        """The Taylor–Green vortex benchmark on ``[0, 2 pi]^3`` with ``U = L = 1``, so
        ``viscosity = 1 / reynolds_number`` (Brachet et al. 1983; the Re = 1600 case of
        the high-order CFD workshop, Wang et al. 2013). Start from `taylor_green_state`.
        """
        return cls(num_points, viscosity=1.0 / jnp.asarray(reynolds_number), **kwargs)

    @classmethod
    def forced_turbulence(
        cls,
        num_points: int = 64,
        *,
        viscosity: ArrayLike = 1e-2,
        forcing_power: ArrayLike = 0.1,
        forcing_wavenumber: float = 2.5,
        **kwargs,
    ) -> "NavierStokes3D":
        """Statistically steady isotropic turbulence on ``[0, 2 pi]^3``: constant-power
        forcing ``epsilon = forcing_power`` on ``|k| <= forcing_wavenumber``. Start from
        `random_state`. Kolmogorov scale ``eta = (nu^3 / epsilon)^(1/4)``; resolve
        ``k_max eta >= 1`` (``k_max = N / 3``)."""
        return cls(
            num_points,
            viscosity=viscosity,
            forcing_power=forcing_power,
            forcing_wavenumber=forcing_wavenumber,
            **kwargs,
        )

    # ------------------------------------------------------------ transforms
    def _rfft(self, x: Array) -> Array:
        if self.transform is not None:
            return self.transform.rfftn(x, "forward")
        return jnp.fft.rfftn(x, axes=(-3, -2, -1), norm="forward")

    def _irfft(self, x_hat: Array) -> Array:
        if self.transform is not None:
            return self.transform.irfftn(x_hat, "forward")
        return jnp.fft.irfftn(x_hat, s=self.grid.shape, axes=(-3, -2, -1), norm="forward")

    def _table(self, name: str, dtype) -> Array:
        return jnp.asarray(_tables(self.grid, self.dealias, np.dtype(dtype))[name])

    # --------------------------------------------------------- the equations
    def linear_operator(self) -> SpectralState:
        dtype = self.viscosity.dtype
        k2 = self.grid.wavenumber_squared(dtype)
        return SpectralState(-self.viscosity.astype(dtype) * k2, 0.0)

    def nonlinear(self, state: SpectralState, t: ArrayLike) -> SpectralState:
        return SpectralState(self._tendency(state.field_hat), state.time)

    @property
    def nonlinear_is_restricted(self) -> bool:
        """``True`` under the 2/3 rule with jax.numpy transforms and the forced band among
        the kept modes (the defaults): ``N`` then lives on the box of kept modes
        (``|n_i| < N_i / 3``, about 30% of the spectral array), and `hybrax.ETDRK4` runs
        its stages there, the other modes decaying by the viscous factor alone."""
        return (
            isinstance(self.dealias, TwoThirdsRule)
            and self.transform is None
            and self._forcing_in_box()
        )

    def restrict(self, tree: SpectralState) -> SpectralState:
        """The 2/3 rule's box of kept modes of ``tree.field_hat``
        (``(..., 2 p_x + 1, 2 p_y + 1, p_z + 1)``, ``p_i = (N_i - 1) // 3``, FFT order on
        each axis); ``tree`` itself unless `nonlinear_is_restricted`."""
        if not self.nonlinear_is_restricted:
            return tree
        return eqx.tree_at(lambda s: s.field_hat, tree, _restrict(self.grid, tree.field_hat))

    def embed(self, tree: SpectralState, restricted: SpectralState) -> SpectralState:
        """``tree`` with its box of kept modes replaced by ``restricted``'s (`restrict`)
        and ``restricted``'s time; ``restricted`` unless `nonlinear_is_restricted`."""
        if not self.nonlinear_is_restricted:
            return restricted
        inside = _box_mask(self.grid)
        field_hat = jnp.where(inside, _extend(self.grid, restricted.field_hat), tree.field_hat)
        return SpectralState(field_hat, restricted.time)

    def nonlinear_restricted(self, state: SpectralState, t: ArrayLike) -> SpectralState:
        """`nonlinear` on the box of kept modes, from the box (see `restrict`)."""
        if not self.nonlinear_is_restricted:
            return self.nonlinear(state, t)
        return SpectralState(self._box_tendency(state.field_hat), state.time)

    def _curl_hat(self, u_hat: Array) -> Array:
        """``i k x u_hat`` with the Nyquist-free wavenumbers."""
        kx, ky, kz = self._table("k", u_hat.real.dtype)
        ux, uy, uz = u_hat
        wx = _i_times(ky, uz) - _i_times(kz, uy)
        wy = _i_times(kz, ux) - _i_times(kx, uz)
        return jnp.stack([wx, wy, _i_times(kx, uy) - _i_times(ky, ux)])

    def _project(self, n_hat: Array, compact: bool = False) -> Array:
        """Leray projection ``n - k (k . n) / |k|^2`` onto divergence-free fields (on the
        2/3 rule's box of kept modes if ``compact``)."""
        real = n_hat.real.dtype
        prefix = "compact_" if compact else ""
        k = self._table(prefix + "k", real)
        k_dot_n = sum(_scale(k[i], n_hat[i]) for i in range(3))
        k_dot_n = _scale(self._table(prefix + "inverse_k2", real), k_dot_n)
        return jnp.stack([n_hat[i] - _scale(k[i], k_dot_n) for i in range(3)])

    def _tendency(self, u_hat: Array) -> Array:
        real = u_hat.real.dtype
        if isinstance(self.dealias, TwoThirdsRule) and self.transform is None:
            return self._divergence_form(u_hat)
        mask = self._table("mask", real)
        dealiased = _scale(mask, u_hat)
        if isinstance(self.dealias, TwoThirdsRule):
            return self._divergence_form_full(dealiased, mask) + self._forcing_hat(u_hat)
        fields = self._irfft(jnp.concatenate([dealiased, self._curl_hat(dealiased)]))
        u, w = fields[:3], fields[3:]
        product = jnp.stack(
            [u[1] * w[2] - u[2] * w[1], u[2] * w[0] - u[0] * w[2], u[0] * w[1] - u[1] * w[0]]
        )
        n_hat = self._project(_scale(mask, self._rfft(product)))
        return n_hat + self._forcing_hat(u_hat)

    def _divergence_form(self, u_hat: Array) -> Array:
        """``-P[div(u u)] + f`` under the 2/3 rule, the spectral work on the kept modes only.

        3 inverse and 5 forward transforms instead of the rotational form's 6 and 3: the
        products ``u_i u_j - w^2 delta_ij`` (`_five_products`; the ``w^2`` shift is a
        gradient, which the projection removes, and zeroes the (2, 2) entry). Under the 2/3
        rule both forms are exact on the kept modes (a product of fields below ``N/3``
        aliases only above it), so they agree to round-off; ``P[u x omega] = -P[(u . grad)
        u]`` as the gradient ``grad |u|^2 / 2`` projects out. Both transforms are pruned to
        the kept modes (`_products_box`: the half axis by matrix products on the fields'
        even and odd parts, z-major, no transposes of the grid fields). The kept modes
        form a box (``|n_i| < N_i / 3``, `_restrict`): the dealiasing is a slice, and the
        divergence, projection and forcing run on the box, about 30% of the spectral array,
        then `_extend` puts the zeros back around it.
        """
        grid = self.grid
        if self._forcing_in_box():
            return _extend(grid, self._box_tendency(_restrict(grid, u_hat)))
        box = _products_box(grid, _restrict(grid, u_hat))
        return _extend(grid, self._minus_projected_divergence(box, True, _FIVE_PAIRS)) + (
            self._forcing_hat(u_hat)
        )

    def _box_tendency(self, box: Array) -> Array:
        """`_divergence_form` on the box of kept modes, from the box, for a forced band
        among them."""
        n_hat = self._minus_projected_divergence(_products_box(self.grid, box), True, _FIVE_PAIRS)
        return n_hat + self._forcing_hat(box, compact=True)

    def _forcing_in_box(self) -> bool:
        """Whether the forced band lies among the 2/3 rule's kept modes."""
        tables = _tables(self.grid, self.dealias, np.dtype(np.float64))
        return not np.any(self._band(tables["k2"]) & ~np.asarray(tables["mask"], bool))

    def _band(self, k2):
        """The forced band ``0 < |k| <= forcing_wavenumber`` (bool; NumPy or JAX ``k2``)."""
        kf = self.forcing_wavenumber * 2 * math.pi / self.grid.domain_length[0]
        return (k2 > 0) & (k2 <= kf * kf)

    def _divergence_form_full(self, dealiased: Array, mask: Array) -> Array:
        """``-P[div(u u)]`` from the dealiased ``u_hat`` on the whole spectral array (the
        path for a distributed ``transform``); see `_divergence_form`."""
        uu_hat = _scale(mask, self._rfft(_products(self._irfft(dealiased))))
        return self._minus_projected_divergence(uu_hat)

    def _minus_projected_divergence(
        self, uu_hat: Array, compact: bool = False, pairs: tuple = _PAIRS
    ) -> Array:
        """``-P[i k_j (u_i u_j)^]`` from the products of ``pairs`` (`_PAIRS`, or
        `_FIVE_PAIRS`: the entries missing from ``pairs`` are zero), on the 2/3 rule's box of
        kept modes if ``compact``."""
        k = self._table("compact_k" if compact else "k", uu_hat.real.dtype)
        index = {pair: n for n, pair in enumerate(pairs)}
        index.update({(j, i): n for (i, j), n in index.items()})
        divergence = jnp.stack(
            [
                sum(_i_times(k[j], uu_hat[index[i, j]]) for j in range(3) if (i, j) in index)
                for i in range(3)
            ]
        )
        return -self._project(divergence, compact)

    def _forcing_hat(self, u_hat: Array, compact: bool = False) -> Array:
        """``(epsilon / 2 E_f) u_hat`` on the band, from and on the full ``u_hat``, or from
        and on the 2/3 rule's box of kept modes (`_restrict`) if ``compact`` (the band among
        them). ``E_f`` is summed over the band's few modes only (gathered), not over the
        whole array, in the same order either way."""
        real = u_hat.real.dtype
        tables = _tables(self.grid, self.dealias, np.dtype(real))
        band, weights = self._band(tables["k2"]), tables["weights"]
        if compact:
            band, weights = _restrict(self.grid, band), _restrict(self.grid, weights)
        index = [np.flatnonzero(band.any(axis=other)) for other in ((1, 2), (0, 2), (0, 1))]
        ix, iy, iz = index if band.any() else [np.zeros(1, int)] * 3
        near = (slice(None), ix[:, None, None], iy[None, :, None], iz[None, None, :])
        weights = jnp.asarray((weights * band)[near[1:]])
        modes = u_hat[near]
        energy = 0.5 * jnp.sum(weights * (modes.real**2 + modes.imag**2))
        power = self.forcing_power.astype(real)
        rate = power / (2 * jnp.maximum(energy, jnp.finfo(real).tiny))
        return _scale(rate * jnp.asarray(band, real), u_hat)

    def check_state(self, state: SpectralState) -> None:
        if not isinstance(state, SpectralState):
            raise ConfigurationError(
                f"NavierStokes3D expects a hybrax.grids.SpectralState, got "
                f"{type(state).__name__}; build one with model.state_from_velocity(u)"
            )
        expected = (3, *self.grid.spectral_shape)
        if tuple(jnp.shape(state.field_hat)) != expected:
            raise ConfigurationError(
                f"NavierStokes3D: state.field_hat must have shape {expected} (velocity "
                f"components first), got {jnp.shape(state.field_hat)}; build it with "
                "model.state_from_velocity(u)"
            )
        real = jnp.finfo(jnp.result_type(state.field_hat)).dtype
        if jnp.shape(state.time) != () or jnp.result_type(state.time) != real:
            raise ConfigurationError(
                f"NavierStokes3D: state.time must be a scalar of dtype {real}, got "
                f"{jnp.result_type(state.time)}{tuple(jnp.shape(state.time))}"
            )

    def courant_number(self, state: SpectralState, dt: ArrayLike) -> Float[Array, ""]:
        """Advective Courant number ``dt sum_i max|u_i| / dx_i``; explicit RK4-type
        steppers (ETDRK4's nonlinear part included) are stable up to about 1."""
        u = self._irfft(state.field_hat)
        speeds = [jnp.max(jnp.abs(u[i])) / h for i, h in enumerate(self.grid.spacing)]
        return dt * sum(speeds)

    # ------------------------------------------------------------ conversions
    def state_from_velocity(
        self, velocity: Float[ArrayLike, "3 nx ny nz"], time: ArrayLike = 0.0
    ) -> SpectralState:
        """The state holding a physical velocity (shape ``(3, *grid.shape)``), projected
        onto divergence-free fields (every mode; the Nyquist modes, whose derivatives a
        real field cannot hold, are dropped)."""
        velocity = jnp.asarray(velocity)
        if velocity.shape != (3, *self.grid.shape):
            raise ConfigurationError(
                f"NavierStokes3D: velocity must have shape {(3, *self.grid.shape)}, got "
                f"{velocity.shape}"
            )
        if not jnp.issubdtype(velocity.dtype, jnp.floating):
            raise ConfigurationError(
                f"NavierStokes3D: velocity must be real floating (float32/float64), got "
                f"{velocity.dtype}; convert with .astype(jnp.float32)"
            )
        check_finite_field(velocity, "velocity", "NavierStokes3D.state_from_velocity")
        u_hat = self._project(self._rfft(velocity))
        keep = self._table("nyquist_free", u_hat.real.dtype)
        return SpectralState(_scale(keep, u_hat), time)

    def velocity(self, state: SpectralState) -> Float[Array, "3 nx ny nz"]:
        """The physical velocity ``(u, v, w)``, shape ``(3, *grid.shape)``."""
        return self._irfft(state.field_hat)

    def vorticity(self, state: SpectralState) -> Float[Array, "3 nx ny nz"]:
        """The physical vorticity ``curl u``, shape ``(3, *grid.shape)``."""
        return self._irfft(self._curl_hat(state.field_hat))

    def taylor_green_state(self, dtype: DTypeLike = jnp.float64) -> SpectralState:
        """The Taylor–Green vortex ``u = (sin x cos y cos z, -cos x sin y cos z, 0)``
        (``E_0 = 1/8``) at time 0."""
        dtype = check_dtype(dtype, "NavierStokes3D.taylor_green_state")
        x, y, z = self.grid.coordinates(dtype)
        u = jnp.sin(x) * jnp.cos(y) * jnp.cos(z)
        v = -jnp.cos(x) * jnp.sin(y) * jnp.cos(z)
        return self.state_from_velocity(jnp.stack([u, v, jnp.zeros_like(u)]))

    def random_state(
        self,
        key: Array | None = None,
        *,
        peak_wavenumber: float = 3.0,
        energy: float = 0.5,
        dtype: DTypeLike = jnp.float32,
    ) -> SpectralState:
        """A random divergence-free field with spectrum ``~ k^4 exp(-2 (k / k_p)^2)`` and
        kinetic energy ``energy`` (dealiased), at time 0; ``key`` defaults to key(0)."""
        dtype = check_dtype(dtype, "NavierStokes3D.random_state")
        key = jax.random.key(0) if key is None else key
        noise = jax.random.normal(key, (3, *self.grid.shape), dtype)
        k2 = self._table("k2", dtype)
        amplitude = k2 * jnp.exp(-2 * k2 / peak_wavenumber**2) * self._table("mask", dtype)
        u_hat = self._project(_scale(amplitude, self._rfft(noise)))
        u_hat = u_hat.at[:, 0, 0, 0].set(0)
        scale = jnp.sqrt(energy / self.kinetic_energy(SpectralState(u_hat)))
        return SpectralState(_scale(scale, u_hat))

    # ------------------------------------------------------------ diagnostics
    def kinetic_energy(self, state: SpectralState) -> Float[Array, ""]:
        """Mean kinetic energy ``<|u|^2> / 2`` (length^2 / time^2)."""
        return self._half_mean_square(state.field_hat)

    def enstrophy(self, state: SpectralState) -> Float[Array, ""]:
        """``Z = <|omega|^2> / 2``; the viscous energy budget is ``dE/dt = -2 nu Z``."""
        u_hat = state.field_hat
        k2 = self._table("k2", u_hat.real.dtype)
        w = self._table("weights", u_hat.real.dtype)
        return 0.5 * jnp.sum(k2 * w * (u_hat.real**2 + u_hat.imag**2))

    def dissipation_rate(self, state: SpectralState) -> Float[Array, ""]:
        """Kinetic-energy dissipation rate ``epsilon = 2 nu Z`` (length^2 / time^3)."""
        return 2 * self.viscosity.astype(state.field_hat.real.dtype) * self.enstrophy(state)

    def divergence_norm(self, state: SpectralState) -> Float[Array, ""]:
        """Root-mean-square of ``div u`` (should stay at round-off)."""
        u_hat = state.field_hat
        k = jnp.asarray(np.broadcast_arrays(*self.grid.numpy_wavenumbers()), u_hat.real.dtype)
        div = sum(_i_times(k[i], u_hat[i]) for i in range(3))
        w = self._table("weights", u_hat.real.dtype)
        return jnp.sqrt(jnp.sum(w * (div.real**2 + div.imag**2)))

    def energy_spectrum(self, state: SpectralState) -> Float[Array, " shells"]:
        """Shell-summed energy spectrum ``E(n)``, ``n = round(|k| L / 2 pi)``, for
        ``n = 0 ... max``; ``sum(E) = kinetic_energy``."""
        u_hat = state.field_hat
        tables = _tables(self.grid, self.dealias, np.dtype(u_hat.real.dtype))
        density = (
            0.5 * jnp.asarray(tables["weights"]) * jnp.sum(u_hat.real**2 + u_hat.imag**2, axis=0)
        )
        shells = tables["shells"]
        return jax.ops.segment_sum(
            density.ravel(), jnp.asarray(shells.ravel()), num_segments=int(shells.max()) + 1
        )

    def _half_mean_square(self, u_hat: Complex[Array, "..."]) -> Float[Array, ""]:
        w = self._table("weights", u_hat.real.dtype)
        return 0.5 * jnp.sum(w * (u_hat.real**2 + u_hat.imag**2))
