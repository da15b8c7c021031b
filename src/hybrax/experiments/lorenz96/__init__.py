"""Workflow ``lorenz96``: simulate Lorenz-96, plot it, measure its climate and chaos.

``run(settings, out)`` integrates the one-scale model (K=40, F=8, RK4, ``dt`` 0.01) from a
random state after a spin-up, and writes into the run folder ``out``:

- ``metrics.json``: mean and standard deviation of ``X``, mean energy
  ``<sum_k X_k^2 / 2>``, the leading Lyapunov exponents (`hybrax.lyapunov_spectrum`) and
  the error-doubling time ``ln 2 / lambda_1``;
- ``run_info.json``: settings, wall time of every phase, integration speed;
- ``hovmoller.png``: the last ``plot_time`` time units.

Public: `Lorenz96Settings`, its presets `FULL` and `QUICK`, and `run`.
"""

from .settings import FULL, QUICK, Lorenz96Settings
from .workflow import run

__all__ = ["FULL", "QUICK", "Lorenz96Settings", "run"]
