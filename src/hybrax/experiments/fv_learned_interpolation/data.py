"""Reference data of the ``fv-learned-interpolation`` workflow.

The reference is the pseudo-spectral Kolmogorov flow (`hybrax.fluids.NavierStokes2D`, the
same equations as the finite-volume model: body force ``sin(4 y) e_x``, linear drag,
viscosity) at ``reference_factor`` x the coarse resolution, carried onto a staggered grid
by face averaging (Kochkov et al. 2021): ``u`` on an x-face is the mean of the reference
``u`` over that face, ``v`` likewise. Face averages of a divergence-free field are exactly
discretely divergence-free on the staggered grid (Gauss over every cell), and they are
what a finite-volume velocity represents. They are computed exactly from the spectral
field (a box filter ``sinc(k H / 2)`` across the face, then sampling at the faces).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray

from hybrax.fluids import FlowState, velocity_from_vorticity
from hybrax.grids import Grid, SpectralState

from .._kolmogorov import FINEST, reference_forecasts, reference_trajectories
from .model import reference_stepper
from .settings import FULL, FVSettings

__all__ = [
    "ForecastData",
    "coarse_vorticity",
    "face_average",
    "make_forecast_data",
    "make_training_data",
    "restrict",
]


def face_average(grid: Grid, vorticity_hat: Array, cells: int) -> tuple[Array, Array]:
    """Face-averaged velocity on a periodic ``cells``² staggered grid from a spectral
    vorticity on the (finer) periodic ``grid`` of ``[0, 2 pi]^2``.

    Parameters
    ----------
    grid
        The spectral grid, ``N`` points per axis, ``N`` a multiple of ``cells``.
    vorticity_hat
        Spectral vorticity, shape ``(N, N // 2 + 1)`` (no batch axes).
    cells
        Cells per axis of the staggered grid.

    Returns
    -------
    u, v
        Shapes ``(cells + 1, cells)`` and ``(cells, cells + 1)`` (the periodic duplicate
        face included): the exact means of the spectral field's ``u`` over each x-face and
        of ``v`` over each y-face.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from hybrax.grids import Grid
    >>> grid = Grid((16, 16))
    >>> y = grid.coordinates()[1]
    >>> u, v = face_average(grid, grid.to_spectral(-jnp.cos(y)), 8)  # u = sin y
    >>> u.shape, v.shape, round(float(u[0, 1]), 4)  # sin(3 pi / 8) sinc(pi / 8)
    ((9, 8), (8, 9), 0.9003)
    """
    n = grid.shape[0]
    r = n // cells
    kx, ky = grid.numpy_wavenumbers()
    dtype = vorticity_hat.dtype  # complex
    box_y = jnp.asarray(np.sinc(ky / cells) * np.ones_like(kx), dtype)  # width 2 pi / cells
    box_x = jnp.asarray(np.sinc(kx / cells) * np.ones_like(ky), dtype)
    u = velocity_from_vorticity(grid, vorticity_hat * box_y)[0]
    v = velocity_from_vorticity(grid, vorticity_hat * box_x)[1]
    u = u[::r, r // 2 :: r]  # x-faces at x = i H, centred in y
    v = v[r // 2 :: r, ::r]
    return jnp.concatenate([u, u[:1]], axis=0), jnp.concatenate([v, v[:, :1]], axis=1)


def restrict(u: Array, v: Array, factor: int) -> tuple[Array, Array]:
    """Face averages of a periodic staggered velocity ``factor`` x coarser (exact: each
    coarse face is the mean of the ``factor`` fine faces on it); leading batch axes allowed.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> u, v = restrict(jnp.ones((9, 8)), jnp.zeros((8, 9)), 2)
    >>> u.shape, v.shape
    ((5, 4), (4, 5))
    """
    if factor == 1:
        return u, v
    fu = u[..., :-1:factor, :]
    fu = fu.reshape(*fu.shape[:-1], fu.shape[-1] // factor, factor).mean(axis=-1)
    fv = v[..., :, :-1:factor]
    fv = fv.reshape(*fv.shape[:-2], fv.shape[-2] // factor, factor, fv.shape[-1]).mean(axis=-2)
    u = jnp.concatenate([fu, fu[..., :1, :]], axis=-2)
    v = jnp.concatenate([fv, fv[..., :1]], axis=-1)
    return u, v


def coarse_vorticity(u: Array, v: Array, spacing: float) -> Array:
    """Vorticity ``dv/dx - du/dy`` at the corners of a periodic square staggered grid
    (cell size ``spacing``), shape ``(..., n, n)``: the circulation around each dual cell
    over its area.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> y = (jnp.arange(8.0) + 0.5)[None, :]  # unit cells: u = y (shear), vorticity -1
    >>> w = coarse_vorticity(jnp.broadcast_to(y, (9, 8)), jnp.zeros((8, 9)), 1.0)
    >>> float(w[3, 3])
    -1.0
    """
    u, v = u[..., :-1, :], v[..., :, :-1]
    dvdx = v - jnp.roll(v, 1, axis=-2)
    dudy = u - jnp.roll(u, 1, axis=-1)
    return (dvdx - dudy) / spacing


def _coarse_state(settings: FVSettings, cells: int):
    grid = settings.reference_model().grid

    def observe(state: SpectralState) -> FlowState:
        u, v = face_average(grid, state.field_hat, cells)
        return FlowState(u, v, jnp.zeros((cells, cells), u.dtype), state.time)

    return observe


def make_training_data(key: PRNGKeyArray, settings: FVSettings = FULL) -> FlowState:
    """Reference trajectories face-averaged onto the coarse staggered grid, one state every
    coarse step: ``num_train_trajectories`` random starts, spun up ``spin_up_time`` at the
    reference resolution, then ``train_time`` kept (`hybrax.hybrid.generate_trajectories`).

    Returns
    -------
    A `hybrax.fluids.FlowState` with leading axes ``(members, times)`` (pressure zero).
    """
    observe = _coarse_state(settings, settings.coarse_points)
    return reference_trajectories(key, settings, reference_stepper(settings), observe)


class ForecastData(eqx.Module):
    """Held-out reference forecasts.

    Attributes
    ----------
    starts
        Face-averaged start velocities on the finest plain grid (4x), ``u`` of shape
        ``(forecasts, 4N + 1, 4N)``, ``v`` ``(forecasts, 4N, 4N + 1)``.
    targets
        The reference face-averaged on the coarse grid every coarse step after each start:
        ``u`` ``(forecasts, horizon_steps, N + 1, N)``, ``v`` likewise.
    """

    starts: FlowState
    targets: FlowState


def make_forecast_data(key: PRNGKeyArray, settings: FVSettings = FULL) -> ForecastData:
    """Reference runs no model is trained on, cut into forecasts ``test_spacing`` apart,
    each followed for ``horizon``."""
    spacing, horizon = settings.steps(settings.test_spacing), settings.steps(settings.horizon)
    return _forecast_data(key, settings, spacing, horizon, settings.test_starts)


@eqx.filter_jit
def _forecast_data(key, settings, spacing: int, horizon: int, count: int) -> ForecastData:
    finest = _coarse_state(settings, settings.coarse_points * FINEST)
    coarse = _coarse_state(settings, settings.coarse_points)
    starts, targets = reference_forecasts(
        key,
        settings,
        reference_stepper(settings),
        finest,
        coarse,
        spacing=spacing,
        horizon=horizon,
        count=count,
    )
    return ForecastData(starts, targets)
