"""The ``lorenz96-closure`` run: truth data, four closures, evaluation, report."""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp

from .._registry import register_workflow
from .._workflow import Run, thin
from . import report
from .data import forecast_windows, make_truth_data
from .evaluate import evaluate, truth_noise_floor
from .model import LocalClosureNet, fit_polynomial
from .settings import FULL, QUICK, ClosureSettings
from .train import train_offline, train_online

__all__ = ["run"]


@register_workflow(
    "lorenz96-closure",
    "two-scale Lorenz-96: no closure vs cubic polynomial vs neural closures (offline, online)",
    full=FULL,
    quick=QUICK,
)
def run(
    settings: ClosureSettings = FULL,
    out: str | os.PathLike | None = None,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the whole comparison; write ``metrics.json``, ``run_info.json`` and the plots
    into the run folder ``out`` (default: a fresh ``runs/lorenz96-closure-NNN``). Returns
    the metrics."""
    presets = {"full": FULL, "quick": QUICK}
    run = Run("lorenz96-closure", settings, out, progress=progress, presets=presets)
    s = settings
    keys = jax.random.split(jax.random.key(s.seed), 7)
    with run.phase("truth_data"):
        train = make_truth_data(keys[0], s.num_train_trajectories, s.train_time, s)
        climate_truth = make_truth_data(keys[2], s.num_climate_members, s.climate_time, s)
        forecast_truth = forecast_windows(climate_truth, s)
        jax.block_until_ready((train, forecast_truth, climate_truth))
    with run.phase("polynomial_fit"):
        polynomial = fit_polynomial(train.x, train.u)
    with run.phase("offline_training"):
        net = LocalClosureNet.build(train.x, train.u, s, keys[3])
        offline = train_offline(net, train, s, keys[4], progress=progress)
    with run.phase("online_training"):
        online = train_online(offline.model, train, s, keys[5], progress=progress)

    with run.phase("evaluation"):
        closures = {
            "no_closure": None,
            "polynomial": polynomial,
            "neural_offline": offline.model,
            "neural_online": online.model.dynamics.net,
        }
        metrics, curves = evaluate(closures, forecast_truth, climate_truth, s)
        # Sampling noise of the PDF metric: a second, independent truth ensemble.
        other_truth = make_truth_data(keys[6], s.num_climate_members, s.climate_time, s)
        noise_floor = truth_noise_floor(other_truth, curves)
    with run.phase("plots"):
        report.plot(run, curves)

    info = {
        "dtype": str(jnp.zeros(()).dtype),
        "pdf_hellinger_truth_vs_truth": noise_floor,
        "polynomial_coefficients": [float(c) for c in polynomial.coefficients],
        "offline_history": thin(offline.history["train"]),
        "online_history": thin(online.history["train"]),
    }
    summary = report.comparison_table(metrics, s) + (
        f"\n(Hellinger distance between two independent truth ensembles: {noise_floor:.4f})"
    )
    return run.finish(metrics, info, summary)
