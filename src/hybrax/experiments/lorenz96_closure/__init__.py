"""Workflow ``lorenz96-closure``: learning the sub-grid term of two-scale Lorenz-96.

Truth: the two-scale Lorenz-96 model (K=8 slow ``X``, J=32 fast ``Y`` per slow variable,
F=20, h=1, b=10, c=10; Wilks 2005, Arnold et al. 2013), RK4 at ``dt = 0.005``. Coarse
model: the one-scale Lorenz-96 in ``X`` alone plus a closure ``U(X)`` standing in for the
coupling term ``-(h c / b) sum_j Y_{j,k}``, RK4 at ``dt = 0.01``. Four coarse models:

``no_closure``
    ``U = 0``.
``polynomial``
    Wilks (2005): a cubic ``U(X_k) = a_0 + a_1 X_k + a_2 X_k^2 + a_3 X_k^3``, least squares
    on the true coupling term over the training states (one fit shared by all ``k``).
``neural_offline``
    A local network ``U_k = MLP(X_{k-2}, ..., X_{k+2})`` shared across ``k``, regressed on
    the same coupling-term data (`hybrax.hybrid.RegressionLoss`).
``neural_online``
    The same network, started from the offline one and trained through the coarse RK4
    solver on truth ``X`` trajectories (`hybrax.hybrid.UnrolledLoss`, short unrolls).

Metrics (``OUT/metrics.json``)::

    {"forecast_rmse": {model: {"0.5": rmse, "1.0": rmse}},   # by lead time (model units)
     "pdf_hellinger": {model: distance}}

``forecast_rmse`` is the root-mean-square error of ``X`` over all ``k`` and all forecasts
(300 at full size, 100 in ``--quick``) started from truth states on the attractor, taken
2 time units apart from the long truth runs that no model is trained on;
``pdf_hellinger`` is the Hellinger distance ``sqrt(1 - sum_i sqrt(p_i q_i))`` between
histograms of ``X`` in long runs of the model and of the truth (0: identical, 1: disjoint).
``OUT/run_info.json`` holds the settings, wall times, training histories and the Hellinger
distance between two independent truth ensembles (the sampling noise of that metric);
``forecast_rmse.png`` and ``pdf.png`` are the plots.

Layout: ``settings.py`` (`ClosureSettings`, `FULL`, `QUICK`), ``data.py`` (truth runs),
``model.py`` (coarse stepper, closures), ``train.py``, ``evaluate.py``, ``report.py``
(table, plots), ``workflow.py`` (`run`). The names below are the public surface.
"""

from .data import TruthData, forecast_windows, make_truth_data, truth_model
from .evaluate import evaluate, hellinger_distance
from .model import LocalClosureNet, PolynomialClosure, coarse_stepper, fit_polynomial
from .report import MODEL_NAMES, comparison_table
from .settings import FULL, QUICK, ClosureSettings
from .train import train_offline, train_online
from .workflow import run

__all__ = [
    "FULL",
    "MODEL_NAMES",
    "QUICK",
    "ClosureSettings",
    "LocalClosureNet",
    "PolynomialClosure",
    "TruthData",
    "coarse_stepper",
    "comparison_table",
    "evaluate",
    "fit_polynomial",
    "forecast_windows",
    "hellinger_distance",
    "make_truth_data",
    "run",
    "train_offline",
    "train_online",
    "truth_model",
]
