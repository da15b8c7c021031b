"""How a pseudo-spectral fluid model removes aliasing: Orszag's 2/3 rule or a smooth filter."""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from hybrax.core import ConfigurationError, check_float
from hybrax.grids import Grid

__all__ = ["AbstractDealiasing", "SmoothFilter", "TwoThirdsRule"]


class AbstractDealiasing(eqx.Module):
    """A dealiasing rule for the quadratic terms of a pseudo-spectral model: a real factor
    per Fourier mode, applied to the fields before the product on the grid and to the
    product after it. ``None`` in a model's ``dealias`` means no dealiasing."""

    @abc.abstractmethod
    def numpy_factor(self, grid: Grid) -> np.ndarray:
        """The factor per mode, a host-side float64 (or bool) array of
        ``grid.spectral_shape``, 0 on every Nyquist mode."""


class TwoThirdsRule(AbstractDealiasing):
    """Orszag's 2/3 rule: keep the modes with ``|n_i| < N_i / 3`` on every axis, drop the
    rest (`hybrax.grids.Grid.dealias_mask`). Exact removal of quadratic aliasing on the
    kept modes; the top third of the spectrum is not resolved.

    Examples
    --------
    >>> from hybrax.grids import Grid
    >>> from hybrax.fluids import TwoThirdsRule
    >>> TwoThirdsRule().numpy_factor(Grid((8, 8)))[:4, 0].tolist()
    [True, True, True, False]
    """

    def numpy_factor(self, grid: Grid) -> np.ndarray:
        return grid.numpy_dealias_mask()


class SmoothFilter(AbstractDealiasing):
    """A smooth exponential filter ``exp(-strength (kappa / pi)^order)`` with
    ``kappa = |k dx|`` the dimensionless wavenumber (``pi`` at a 1D Nyquist mode).

    The defaults (``strength=36``, ``order=36``) are Hou & Li's (J. Comput. Phys. 226,
    2007) 36th-order Fourier smoothing: 1 to within ``2e-13`` below ``kappa = 0.4 pi`` (a
    field band-limited there passes unchanged), 0.99 at ``0.8 pi``, about ``2e-16`` at the
    Nyquist mode (set to 0). It keeps more modes than the 2/3 rule at the price of a small
    aliasing error in the top of the spectrum. Built on
    `hybrax.grids.Grid.exponential_filter` (radial form).

    Parameters
    ----------
    strength
        Damping at ``kappa = pi`` is ``exp(-strength)`` (dimensionless, > 0).
    order
        Even power of the roll-off (>= 2).

    Examples
    --------
    >>> from hybrax.grids import Grid
    >>> from hybrax.fluids import SmoothFilter
    >>> factor = SmoothFilter().numpy_factor(Grid((16, 16)))
    >>> round(float(factor[2, 0]), 12), float(factor[8, 0])
    (1.0, 0.0)
    """

    strength: float = eqx.field(static=True, default=36.0)
    order: int = eqx.field(static=True, default=36)

    def __check_init__(self):
        check_float(self.strength, "SmoothFilter: strength", positive=True)
        if isinstance(self.order, bool) or not isinstance(self.order, int) or self.order < 2:
            raise ConfigurationError(
                f"SmoothFilter: order must be an even int >= 2 (Hou & Li: 36), got {self.order!r}"
            )
        if self.order % 2:
            raise ConfigurationError(
                f"SmoothFilter: order must be even (Hou & Li: 36), got {self.order!r}"
            )

    def numpy_factor(self, grid: Grid) -> np.ndarray:
        strength = float(self.strength) / math.pi**self.order
        factor = grid.exponential_filter(
            jnp.result_type(float), cutoff=0.0, strength=strength, order=self.order
        )
        return np.asarray(factor) * nyquist_free(grid)


def nyquist_free(grid: Grid) -> np.ndarray:
    """1 away from every axis's Nyquist mode, 0 on it (host-side, ``grid.spectral_shape``)."""
    keep = np.ones(grid.spectral_shape)
    for k, n, length in zip(grid.numpy_wavenumbers(), grid.shape, grid.domain_length, strict=True):
        m = np.rint(np.abs(k) * length / (2 * math.pi))
        keep = keep * (m != n // 2)
    return keep


def check_dealias(dealias, owner: str) -> AbstractDealiasing | None:
    """``dealias`` if it is an `AbstractDealiasing` or ``None``; else a
    `hybrax.ConfigurationError` that names ``owner`` and the three choices."""
    if dealias is not None and not isinstance(dealias, AbstractDealiasing):
        raise ConfigurationError(
            f"{owner}: dealias must be hybrax.fluids.TwoThirdsRule() (the 2/3 rule), "
            f"hybrax.fluids.SmoothFilter() (Hou & Li's filter) or None (no dealiasing), got "
            f"{dealias!r}"
        )
    return dealias


def dealiasing_factor(dealias: AbstractDealiasing | None, grid: Grid) -> np.ndarray:
    """The factor of ``dealias`` on ``grid`` (Nyquist-free ones for ``None``)."""
    return nyquist_free(grid) if dealias is None else dealias.numpy_factor(grid)
