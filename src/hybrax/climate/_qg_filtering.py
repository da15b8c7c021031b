"""Filtering and coarse-graining of a high-resolution `TwoLayerQG` state onto a coarse grid,
and the sub-grid PV forcing it implies: operators 1 and 2 of Ross et al. (2023)."""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Complex, DTypeLike, Float

from hybrax.core import ConfigurationError, check_parameter, mul, parameter
from hybrax.grids import Grid, SpectralState

from ._qg import TwoLayerQG, _constants

__all__ = ["AbstractSpectralCoarsener", "GaussianSpectralCoarsener", "SharpSpectralCoarsener"]


def _check_grids(owner: str, fine, coarse) -> None:
    for name, grid in (("fine", fine), ("coarse", coarse)):
        if not isinstance(grid, Grid) or grid.ndim != 2:
            raise ConfigurationError(
                f"{owner}: {name} must be a 2D hybrax.grids.Grid (e.g. model.grid), got {grid!r}"
            )
    same_box = all(
        math.isclose(a, b, rel_tol=1e-12)
        for a, b in zip(fine.domain_length, coarse.domain_length, strict=True)
    )
    if not same_box or any(c > f for c, f in zip(coarse.shape, fine.shape, strict=True)):
        raise ConfigurationError(
            f"{owner}: the coarse grid must cover the fine grid's domain with at most as many "
            f"points, got fine Grid{fine.shape} of side {fine.domain_length} and coarse "
            f"Grid{coarse.shape} of side {coarse.domain_length}; e.g. Grid((64, 64), 1e6) for "
            "a 256^2 reference"
        )


class AbstractSpectralCoarsener(eqx.Module):
    """Spectral truncation of a fine field to a coarse grid followed by a filter, as
    pyqg-parameterization-benchmarks' ``SpectralCoarsener`` (Ross et al. 2023).

    ``coarsen(f) = IFFT_coarse(G(k) * T[FFT_fine(f)])`` where ``T`` keeps the Fourier modes the
    coarse grid indexes (``-N_c/2 <= n_y < N_c/2``, ``0 <= n_x <= N_c/2``, the coarse Nyquist
    row and column included, exactly as the paper's code; `hybrax.grids.coarse_grain` drops
    them instead) and ``G`` is the subclass's `spectral_filter` on the coarse grid. With
    forward-normalised coefficients no rescaling by the grid ratio is needed.

    Subclasses define `spectral_filter`; everything else is implemented here.
    """

    fine: eqx.AbstractVar[Grid]
    coarse: eqx.AbstractVar[Grid]

    @abc.abstractmethod
    def spectral_filter(self, dtype: DTypeLike) -> Float[Array, "my mk"]:
        """The filter ``G`` on the coarse grid's real-FFT modes (dimensionless)."""

    def filter_spectral(
        self, field_hat: Complex[Array, "*batch ny nk"]
    ) -> Complex[Array, "*batch my mk"]:
        """Truncated and filtered forward-normalised coefficients on the coarse grid
        (before the inverse transform makes the coarse Nyquist modes those of a real field)."""
        field_hat = jnp.asarray(field_hat)
        shape = tuple(field_hat.shape)
        if shape[len(shape) - 2 :] != self.fine.spectral_shape:
            raise ConfigurationError(
                f"{type(self).__name__}: field_hat must end in the fine grid's spectral shape "
                f"{self.fine.spectral_shape}, got {shape}"
            )
        my, mx = self.coarse.shape
        half = my // 2
        rows = jnp.concatenate([field_hat[..., :half, :], field_hat[..., -half:, :]], axis=-2)
        kept = rows[..., : mx // 2 + 1]
        return mul(self.spectral_filter(kept.real.dtype), kept)

    def __call__(self, field: Float[Array, "*batch ny nx"]) -> Float[Array, "*batch my mx"]:
        """Filter and coarse-grain a physical field on the fine grid (the paper's
        ``coarsen``): shape ``(..., *fine.shape)`` to ``(..., *coarse.shape)``, same units."""
        field = jnp.asarray(field)
        if tuple(field.shape[field.ndim - 2 :]) != self.fine.shape or not jnp.issubdtype(
            field.dtype, jnp.floating
        ):
            raise ConfigurationError(
                f"{type(self).__name__}: field must be a real array ending in the fine grid's "
                f"shape {self.fine.shape}, got {field.dtype}{tuple(field.shape)}"
            )
        coarse_hat = self.filter_spectral(self.fine.rfft(field, norm="forward"))
        return self.coarse.irfft(coarse_hat, norm="forward")

    def coarse_state(self, state: SpectralState) -> SpectralState:
        """The coarse model's state holding the filtered, coarse-grained PV of a fine
        `TwoLayerQG` state (``field_hat`` of shape ``(..., 2, *fine.spectral_shape)``)."""
        coarse_q = self.coarse.irfft(self.filter_spectral(state.field_hat), norm="forward")
        return SpectralState(self.coarse.rfft(coarse_q, norm="forward"), state.time)

    def subgrid_forcing(
        self, fine_model: TwoLayerQG, coarse_model: TwoLayerQG, state: SpectralState
    ) -> Float[Array, "2 my mx"]:
        """The total sub-grid PV forcing of Ross et al. (2023), their ``S_q_tot``:

        .. math::
            S = \\overline{\\partial_t q} - \\partial_t \\bar q\\big|_{\\text{coarse model}}
              = \\overline{\\dot q(q)} - \\dot q_{\\text{coarse}}(\\bar q)

        the filtered, coarse-grained PV tendency of the fine model minus the coarse model's
        tendency at the filtered state (both without the per-step small-scale filter, as
        pyqg's ``dqhdt``). Added to the coarse model's tendency (its ``parameterization``),
        it makes the coarse model follow the filtered fine one at this instant; for these
        spectral filters the linear terms commute with the filter, so ``S`` is the advective
        part ``(u_bar . grad) q_bar - bar((u . grad) q)`` (up to the coarse Nyquist modes).

        Parameters
        ----------
        fine_model, coarse_model
            `TwoLayerQG` models on `fine` and `coarse` (same physical parameters; a
            ``parameterization`` of either is included in its tendency).
        state
            One fine state (use `jax.vmap` for a trajectory).

        Returns
        -------
        ``S`` on the coarse grid, 1/s^2, shape ``(2, *coarse.shape)``.
        """
        owner = f"{type(self).__name__}.subgrid_forcing"
        parts = (("fine_model", fine_model, self.fine), ("coarse_model", coarse_model, self.coarse))
        for name, model, grid in parts:
            if not isinstance(model, TwoLayerQG) or model.grid != grid:
                raise ConfigurationError(
                    f"{owner}: {name} must be a TwoLayerQG on Grid{grid.shape}, got "
                    f"{type(model).__name__}"
                    + (f" on Grid{model.grid.shape}" if isinstance(model, TwoLayerQG) else "")
                )
        fine_tendency = fine_model.tendency(state, state.time).field_hat
        coarse = self.coarse_state(state)
        coarse_tendency = coarse_model.tendency(coarse, coarse.time).field_hat
        filtered = self.coarse.irfft(self.filter_spectral(fine_tendency), norm="forward")
        return filtered - self.coarse.irfft(coarse_tendency, norm="forward")


class SharpSpectralCoarsener(AbstractSpectralCoarsener):
    """Operator 1 of Ross et al. (2023): spectral truncation to the coarse grid and the
    coarse model's own sharp small-scale filter ``exp(-f (kappa - 0.65 pi)_+^4)`` (1 for
    ``kappa = |(k dx, l dy)| <= 0.65 pi``, ``f`` = ``filter_factor``; see
    `TwoLayerQG.apply_filter`).

    Parameters
    ----------
    fine, coarse
        Grids of the reference and coarse models (same domain; static).
    filter_factor
        ``f`` (default 23.6, pyqg's and the coarse model's default).

    Examples
    --------
    >>> import jax
    >>> from hybrax.climate import SharpSpectralCoarsener, TwoLayerQG
    >>> fine, coarse = TwoLayerQG.eddy(128), TwoLayerQG.eddy(64)
    >>> operator = SharpSpectralCoarsener(fine.grid, coarse.grid)
    >>> state = fine.initial_state(jax.random.key(0))
    >>> operator.coarse_state(state).field_hat.shape
    (2, 64, 33)
    >>> operator.subgrid_forcing(fine, coarse, state).shape
    (2, 64, 64)
    """

    fine: Grid = eqx.field(static=True)
    coarse: Grid = eqx.field(static=True)
    filter_factor: Float[Array, ""] = parameter(
        "filter_factor", default=23.6, nonnegative=True, scalar=True, example="filter_factor=23.6"
    )

    def __check_init__(self):
        _check_grids("SharpSpectralCoarsener", self.fine, self.coarse)

    def spectral_filter(self, dtype: DTypeLike) -> Float[Array, "my mk"]:
        excess4 = _constants(self.coarse, np.dtype(dtype))[3]
        return jnp.exp(-self.filter_factor.astype(dtype) * excess4)


class GaussianSpectralCoarsener(AbstractSpectralCoarsener):
    """Operator 2 of Ross et al. (2023): spectral truncation to the coarse grid and a
    Gaussian filter ``exp(-|k|^2 Delta^2 / 24)`` of width ``Delta`` (default twice the coarse
    grid spacing, as in the paper), which also smooths the scales the coarse grid resolves.

    Parameters
    ----------
    fine, coarse
        Grids of the reference and coarse models (same domain; static).
    filter_width
        ``Delta``, m (default ``2 dx`` of the coarse grid). A differentiable leaf.

    Examples
    --------
    >>> import jax
    >>> from hybrax.climate import GaussianSpectralCoarsener, TwoLayerQG
    >>> fine = TwoLayerQG.eddy(64)
    >>> operator = GaussianSpectralCoarsener(fine.grid, TwoLayerQG.eddy(32).grid)
    >>> operator(fine.pv(fine.initial_state(jax.random.key(0)))).shape
    (2, 32, 32)
    """

    fine: Grid = eqx.field(static=True)
    coarse: Grid = eqx.field(static=True)
    filter_width: Float[Array, ""]

    def __init__(self, fine: Grid, coarse: Grid, filter_width: float | Array | None = None):
        _check_grids("GaussianSpectralCoarsener", fine, coarse)
        self.fine, self.coarse = fine, coarse
        if filter_width is None:
            filter_width = 2 * coarse.spacing[1]
        self.filter_width = check_parameter(
            filter_width, "filter_width", positive=True, scalar=True, example="filter_width=31250.0"
        )

    def spectral_filter(self, dtype: DTypeLike) -> Float[Array, "my mk"]:
        k2 = _constants(self.coarse, np.dtype(dtype))[2]
        width = self.filter_width.astype(dtype)
        return jnp.exp(-k2 * (width * width / 24))
