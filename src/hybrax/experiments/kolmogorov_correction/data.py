"""Reference data of the ``kolmogorov-correction`` workflow: fine runs on the coarse band.

The reference is the same flow at ``reference_factor`` times the coarse resolution,
coarse-grained exactly (`hybrax.grids.coarse_grain`) to the band ``|n_x|, |n_y| < N / 3``
that the coarse solver resolves; every comparison is made on that band.
"""

from __future__ import annotations

import equinox as eqx
from jaxtyping import PRNGKeyArray

from hybrax.grids import SpectralState, coarse_grain

from .._kolmogorov import FINEST, reference_forecasts, reference_trajectories
from .model import reference_stepper
from .settings import FULL, CorrectionSettings

__all__ = ["ForecastData", "make_forecast_data", "make_training_data", "start_on"]


def band_observer(settings: CorrectionSettings, factor: int):
    """``observe`` for a rollout at ``factor`` x: the state coarse-grained to the band.

    Every comparison of the workflow is made on the coarse grid's band (``|n_x|, |n_y| <
    N / 3``, N = ``settings.coarse_points``): a rollout of the model at ``factor`` times the
    coarse resolution saves its states through this function, exactly truncated to that
    band (`hybrax.grids.coarse_grain`), so that every model's trajectory has the coarse
    grid's shape.

    Parameters
    ----------
    settings
        The workflow's settings (`FULL`, `QUICK` or your own).
    factor
        The rollout's resolution relative to the coarse grid (1, 2, 4 or
        ``settings.reference_factor``).

    Returns
    -------
    observe
        ``SpectralState -> SpectralState`` on the coarse grid, time unchanged.

    Examples
    --------
    >>> import jax
    >>> from hybrax.experiments.kolmogorov_correction import QUICK, band_observer
    >>> fine = QUICK.model(2).initial_state(jax.random.key(0), max_velocity=1.0)
    >>> band_observer(QUICK, 2)(fine).field_hat.shape == QUICK.model(1).initial_state(
    ...     jax.random.key(0)).field_hat.shape
    True
    """
    source, target = settings.grid(factor), settings.grid(1)

    def observe(state: SpectralState) -> SpectralState:
        return SpectralState(coarse_grain(state.field_hat, source, target), state.time)

    return observe


def make_training_data(key: PRNGKeyArray, settings: CorrectionSettings = FULL) -> SpectralState:
    """Reference trajectories on the coarse band, one state every coarse step.

    ``num_train_trajectories`` random starts (`hybrax.fluids.random_vorticity`, peak
    wavenumber 4, speed 7) are spun up for ``spin_up_time`` at the reference resolution,
    then run for ``train_time``; every ``reference_substeps`` fine steps (one coarse ``dt``)
    the state is coarse-grained (`hybrax.grids.coarse_grain`) and kept. All members run at
    once (`hybrax.hybrid.generate_trajectories`).

    Returns
    -------
    A `SpectralState` whose ``field_hat`` has shape ``(members, times, N, N // 2 + 1)`` and
    ``time`` ``(members, times)``.
    """
    observe = band_observer(settings, settings.reference_factor)
    return reference_trajectories(key, settings, reference_stepper(settings), observe)


class ForecastData(eqx.Module):
    """Held-out reference forecasts.

    Attributes
    ----------
    starts
        Initial states on the band of the finest plain model (4x), one per forecast:
        ``field_hat`` ``(forecasts, 4N, 2N + 1)``, ``time`` ``(forecasts,)``.
    targets
        The reference on the coarse band every coarse step after each start, up to the
        horizon: ``field_hat`` ``(forecasts, horizon_steps, N, N // 2 + 1)``.
    """

    starts: SpectralState
    targets: SpectralState


def make_forecast_data(key: PRNGKeyArray, settings: CorrectionSettings = FULL) -> ForecastData:
    """Reference runs no model is trained on, cut into forecasts.

    Each of ``num_test_trajectories`` random starts is spun up, then run for about
    ``(test_starts - 1) * test_spacing + horizon``; the states ``test_spacing`` apart start
    the forecasts (kept on the 4x band, from which the coarser models' starts follow by
    `start_on`) and the reference's coarse band is kept every coarse step after each
    start for ``horizon`` time units.
    """
    spacing, horizon = settings.steps(settings.test_spacing), settings.steps(settings.horizon)
    return _forecast_data(key, settings, spacing, horizon, settings.test_starts)


@eqx.filter_jit
def _forecast_data(key, settings, spacing: int, horizon: int, count: int) -> ForecastData:
    fine_grid, start_grid = settings.grid(settings.reference_factor), settings.grid(FINEST)

    def start(state: SpectralState) -> SpectralState:
        return SpectralState(coarse_grain(state.field_hat, fine_grid, start_grid), state.time)

    starts, targets = reference_forecasts(
        key,
        settings,
        reference_stepper(settings),
        start,
        band_observer(settings, settings.reference_factor),
        spacing=spacing,
        horizon=horizon,
        count=count,
    )
    return ForecastData(starts, targets)


def start_on(starts: SpectralState, settings: CorrectionSettings, factor: int) -> SpectralState:
    """Forecast starts (on the 4x band, as in `ForecastData`) coarse-grained to the grid
    ``factor`` times the coarse one (`hybrax.grids.coarse_grain`)."""
    field = coarse_grain(starts.field_hat, settings.grid(FINEST), settings.grid(factor))
    return SpectralState(field, starts.time)
