"""Workflow ``qg-parameterization``: a CNN sub-grid parameterisation of the two-layer QG model,
trained offline and online, against physics baselines (Ross et al. 2023, "Benchmarking of
machine learning ocean subgrid parameterizations in an idealized model").

Reference
    `hybrax.climate.TwoLayerQG` in the ``eddy`` and ``jet`` configurations at
    ``reference_points``^2 (128² by default; 64² in `QUICK`), pyqg's AB3 stepping at
    ``time_step * coarse_points / reference_points``, ``num_members`` random starts spun
    up to statistical equilibrium. Every kept state is filtered and coarse-grained to
    ``coarse_points``^2 (64²; 32² in `QUICK`) by operator 1 of Ross et al.
    (`hybrax.climate.SharpSpectralCoarsener`: spectral truncation and the coarse model's own
    small-scale filter), and the sub-grid PV forcing ``S`` of each training sample is
    computed (`~hybrax.climate.SharpSpectralCoarsener.subgrid_forcing`).
Models (each the coarse model with pyqg's stepping, ``time_step``)
    ``none``, ``smagorinsky`` (``C_S = 0.15``), ``zanna_bolton`` (pyqg's ``kappa_BC``),
    ``backscatter_biharmonic``; ``cnn_offline``: `CNNParameterization` fitted to ``S``
    (MSE); ``cnn_online``: the same network trained further through the solver
    (`hybrax.hybrid.UnrolledLoss` over ``unroll_steps`` coarse steps against the filtered
    reference trajectory, from the offline weights).
Metrics (``OUT/metrics.json``)
    Per configuration and model: `hybrax.climate.qg_distances` between the model's
    ``eval_days`` runs (one per member, started from the filtered reference) and the
    filtered reference over the same time; ``spectral_score``, the mean of the four
    spectral distances (KE and enstrophy spectra, both layers) relative to ``none``'s
    (lower is better, 1 = no better than no parameterisation); ``ke_ratio``, the
    depth-averaged KE over the runs relative to the reference's; ``blow_up_day`` (first
    snapshot at which a run was NaN; the workflow carries on); and
    ``seconds_per_simulated_day`` of one run, network included. ``goals`` says whether the
    online CNN beats ``none``, ``smagorinsky`` and ``zanna_bolton`` on the spectral score,
    keeps KE within 10% and beats the offline CNN.

Files: ``metrics.md`` (the table), ``ke_spectra_<conf>.png``, ``ke_series_<conf>.png``,
``accuracy_cost.png``, ``cnn_{offline,online}_<conf>.eqx`` (weights), ``run_info.json``
(settings, training histories, phase wall times).
"""

from .data import ReferenceData, make_reference_data
from .evaluate import ModelRun, evaluate_model, seconds_per_simulated_day, spectral_score
from .model import CNNParameterization, baselines, flow_features
from .report import metric_table
from .settings import CONFIGURATIONS, FULL, MODEL_NAMES, QUICK, QGParameterizationSettings
from .train import ScaledPV, network_scales, train_offline, train_online
from .workflow import run

__all__ = [
    "CONFIGURATIONS",
    "FULL",
    "MODEL_NAMES",
    "QUICK",
    "CNNParameterization",
    "ModelRun",
    "QGParameterizationSettings",
    "ReferenceData",
    "ScaledPV",
    "baselines",
    "evaluate_model",
    "flow_features",
    "make_reference_data",
    "metric_table",
    "network_scales",
    "run",
    "seconds_per_simulated_day",
    "spectral_score",
    "train_offline",
    "train_online",
]
