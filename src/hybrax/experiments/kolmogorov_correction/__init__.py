"""Workflow ``kolmogorov-correction``: a learned correction for a coarse Kolmogorov-flow solver.

The forced 2D turbulence of Kochkov et al. (2021): `hybrax.fluids.NavierStokes2D.kolmogorov` on
``[0, 2 pi]^2`` with vorticity forcing ``-4 cos(4 y)``, drag 0.1 and viscosity ``1e-3``
(Re = 1000), pseudo-spectral, `hybrax.ETDRK4` at Courant number 2 for speed 7 on every
model grid (so ``dt`` halves when the resolution doubles). Speed 7 bounds the flow's
largest speed by about 2x; the plain solvers' decorrelation times agree to three digits at
Courant 0.5, 1 and 2, so every model runs at the cheapest of them (until December 2026 the
plain baselines ran at Courant 0.5, four times the cost for the same accuracy).

Reference
    The same equations at ``reference_factor`` (8) times the coarse resolution (256² for
    the default 32² coarse grid), at Courant number ``reference_courant`` (0.5),
    coarse-grained exactly by Fourier truncation (`hybrax.grids.coarse_grain`) to the
    modes the coarse solver resolves: its 2/3-rule band ``|n_x|, |n_y| < N / 3``.
    Every comparison below is made on that band.
Models
    ``plain_1x``, ``plain_2x``, ``plain_4x``: the plain solver at 1, 2 and 4 times the
    coarse resolution, each started from the reference coarse-grained to its own band.
    ``hybrid_1x``: the coarse solver followed, after every step, by a learned correction
    (`hybrax.hybrid.Corrected`, see ``model.py``), trained through the solver on windows
    of reference trajectories with a curriculum of growing unroll lengths
    (`hybrax.hybrid.Curriculum`, ``CorrectionSettings.stages``).
    ``tendency_1x``: the learned correction of the nonlinear term in spectral space
    (Dresdner et al. 2022; `tendency_stepper`): the same kind of CNN adds a vorticity
    tendency, filtered to the 2/3-rule band, to ``N(w)`` inside ETDRK4
    (`hybrax.hybrid.SemilinearClosure`), evaluated once per step and held over the four
    stages (`hybrax.hybrid.FrozenClosure`) so it costs one network call per step; trained
    the same way.

Metrics (``OUT/metrics.json``)::

    {"decorrelation_time": {model: time},        # model time units
     "seconds_per_time_unit": {model: seconds}}  # wall time of one trajectory

``decorrelation_time`` is `hybrax.fluids.decorrelation_time` of the vorticity correlation
with the reference (`hybrax.fluids.vorticity_correlation` on the coarse band), averaged
over the held-out forecasts, at ``threshold`` (0.95). The forecasts start from
independent reference runs that no model was trained on, ``test_spacing`` apart. A model
still above the threshold at the end of the ``horizon`` is reported at the horizon and
listed under ``censored`` in ``run_info.json``. ``seconds_per_time_unit`` is the wall time
of one jitted trajectory (compilation excluded), the minimum over interleaved rounds.

``OUT/run_info.json`` holds the settings, the wall time of every phase, the training
history, the number of training windows and held-out forecasts, per-forecast decorrelation
times and the mean correlation curves. Plots: ``correlation.png``, ``vorticity.png``,
``spectrum.png``, ``accuracy_cost.png`` (decorrelation time against cost, every model).
``OUT/correction.eqx`` and ``OUT/tendency_correction.eqx`` hold the trained networks' weights and
``OUT/reference_data.npz`` the reference data; `load_run` reads them back.

`reference_stepper` (the reference solver) and `band_observer` (a rollout's ``observe``
that coarse-grains to the coarse band) let other scripts run the reference from any start,
e.g. ``benchmarks/kolmogorov_ceiling.py``: the reference itself started from the coarse band,
the ceiling of a coarse model that does not reconstruct the unresolved scales.

Layout: ``settings.py``, ``model.py``, ``data.py``, ``train.py``, ``evaluate.py``,
``report.py``, ``workflow.py`` (`run`, `load_run`). The names below are the public surface.
"""

from .data import ForecastData, band_observer, make_forecast_data, make_training_data, start_on
from .evaluate import correlation_curves, decorrelation_times, seconds_per_time_unit
from .model import (
    AddVorticityCorrection,
    FlowFeatures,
    VorticityCorrection,
    hybrid_stepper,
    network_of,
    plain_stepper,
    reference_stepper,
    tendency_stepper,
)
from .report import comparison_table
from .settings import FULL, HYBRIDS, MODEL_NAMES, QUICK, CorrectionSettings
from .train import network_scales, train_correction
from .workflow import SavedRun, load_run, run

__all__ = [
    "FULL",
    "HYBRIDS",
    "MODEL_NAMES",
    "QUICK",
    "AddVorticityCorrection",
    "CorrectionSettings",
    "FlowFeatures",
    "ForecastData",
    "SavedRun",
    "VorticityCorrection",
    "band_observer",
    "comparison_table",
    "correlation_curves",
    "decorrelation_times",
    "hybrid_stepper",
    "load_run",
    "make_forecast_data",
    "make_training_data",
    "network_of",
    "network_scales",
    "plain_stepper",
    "reference_stepper",
    "run",
    "seconds_per_time_unit",
    "start_on",
    "tendency_stepper",
    "train_correction",
]
