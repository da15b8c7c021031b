"""Workflow ``fv-learned-interpolation``: learned interpolation against learned correction on
the finite-volume solver (Kochkov et al. 2021), and against resolution.

Flow
    Kolmogorov flow on the periodic ``[0, 2 pi]^2``: body force ``sin(4 y) e_x``, linear
    drag 0.1, viscosity ``1e-3`` (Re 1000), as in ``kolmogorov-correction``, solved by
    finite volumes on a staggered grid (`hybrax.fluids.IncompressibleNavierStokes.kolmogorov`,
    `hybrax.fluids.ProjectedRK`: SSP-RK3 with a pressure projection per stage, central
    advective fluxes by default) at ``dt = courant dx / max_velocity`` on every grid.
Reference
    The pseudo-spectral solver of the same equations (`hybrax.fluids.NavierStokes2D` with
    `hybrax.fluids.KolmogorovForcing`, ETDRK4) at ``reference_factor`` (8) x the coarse
    resolution (256² for 32²), face-averaged onto the staggered grids (Kochkov et al.'s
    choice; exact, from the spectral field: see ``data.py``).
Models
    ``plain_1x``, ``plain_2x``, ``plain_4x``: the finite-volume solver at 1, 2, 4 x the
    coarse resolution, started from the reference face-averaged onto its grid.
    ``interpolation_1x``: learned interpolation (a CNN correcting the polynomial stencil,
    weights summing to one) in every advective flux: by default
    `hybrax.fluids.FusedLearnedInterpolation`, one network call per time step for all
    fluxes, held over the Runge–Kutta stages (``interpolation_calls="per_step"``);
    ``"per_flux"`` is `hybrax.fluids.LearnedInterpolation`, one call per flux and stage.
    ``correction_1x``: a learned correction after every coarse step
    (`hybrax.hybrid.Corrected`): a CNN of the same width and depth returns a
    stream-function increment whose staggered curl is added (divergence-free). Both are
    trained the same way: `hybrax.hybrid.fit` with a `hybrax.hybrid.Curriculum` of
    `hybrax.hybrid.UnrolledLoss` (``checkpoint="sqrt"``) on the face velocities.

Metrics (``OUT/metrics.json``)::

    {"decorrelation_time": {model: time},         # model time units
     "seconds_per_time_unit": {model: seconds},   # one trajectory, network included
     "network_parameters": {model: count}}

``decorrelation_time`` is `hybrax.fluids.decorrelation_time` (threshold 0.95) of the mean
vorticity correlation with the reference, the vorticity taken at the coarse grid's corners
from every model's velocity face-averaged onto the coarse grid. ``run_info.json`` holds the
settings, wall times, training histories, per-forecast times and the correlation curves.
Plots: ``correlation.png``, ``vorticity.png``, ``accuracy_cost.png``. The trained networks
are ``OUT/interpolation.eqx`` and ``OUT/correction.eqx``; `load_run` reads them back.

Layout: ``settings.py``, ``model.py``, ``data.py``, ``train.py``, ``evaluate.py``,
``report.py``, ``workflow.py`` (`run`, `load_run`).
"""

from .data import (
    ForecastData,
    coarse_vorticity,
    face_average,
    make_forecast_data,
    make_training_data,
    restrict,
)
from .evaluate import correlation_curves, decorrelation_times, seconds_per_time_unit, start_on
from .model import (
    AddStreamCorrection,
    CentredVelocity,
    StreamCorrection,
    correction_stepper,
    interpolation_network,
    interpolation_stepper,
    parameter_count,
    plain_stepper,
    reference_stepper,
)
from .report import comparison_table, plot_accuracy_cost
from .settings import FULL, LEARNED, MODEL_NAMES, QUICK, FVSettings
from .train import network_scales, train_model, velocity_only
from .workflow import SavedRun, load_run, run

__all__ = [
    "FULL",
    "LEARNED",
    "MODEL_NAMES",
    "QUICK",
    "AddStreamCorrection",
    "CentredVelocity",
    "FVSettings",
    "ForecastData",
    "SavedRun",
    "StreamCorrection",
    "coarse_vorticity",
    "comparison_table",
    "correction_stepper",
    "correlation_curves",
    "decorrelation_times",
    "face_average",
    "interpolation_network",
    "interpolation_stepper",
    "load_run",
    "make_forecast_data",
    "make_training_data",
    "network_scales",
    "parameter_count",
    "plain_stepper",
    "plot_accuracy_cost",
    "reference_stepper",
    "restrict",
    "run",
    "seconds_per_time_unit",
    "start_on",
    "train_model",
    "velocity_only",
]
