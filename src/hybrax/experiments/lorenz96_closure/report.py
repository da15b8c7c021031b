"""Report of the ``lorenz96-closure`` workflow: the comparison table and the plots."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _plotting
from .settings import ClosureSettings

__all__ = ["MODEL_NAMES", "comparison_table", "plot"]

MODEL_NAMES = ("no_closure", "polynomial", "neural_offline", "neural_online")


def comparison_table(metrics: dict, settings: ClosureSettings) -> str:
    """The metrics as a text table: one row per model, RMSE by lead and Hellinger."""
    leads = [f"{lead:.1f}" for lead in settings.leads]
    header = f"{'model':<16}" + "".join(f"{'RMSE @' + lead:>12}" for lead in leads)
    header += f"{'Hellinger':>12}"
    lines = [header, "-" * len(header)]
    for name in metrics["forecast_rmse"]:
        rmse = metrics["forecast_rmse"][name]
        cells = "".join(
            f"{rmse[lead]:>12.4f}" if rmse[lead] is not None else f"{'nan':>12}" for lead in leads
        )
        lines.append(f"{name:<16}{cells}{metrics['pdf_hellinger'][name]:>12.4f}")
    return "\n".join(lines)


def plot(run, curves: dict[str, Any]) -> None:
    """``forecast_rmse.png`` (RMSE against lead time) and ``pdf.png`` (long-run PDFs)."""
    lead_times = curves["lead_times"]
    fig, ax = _plotting.figure()
    for name in MODEL_NAMES:
        if name in curves:
            ax.plot(lead_times, curves[name]["rmse"], label=name)
    ax.set_yscale("log")
    ax.set_xlabel("lead time (model time units)")
    ax.set_ylabel("RMSE of X")
    ax.set_title("two-scale Lorenz-96: forecast error")
    ax.legend()
    run.save_figure(fig, "forecast_rmse.png")

    bins = curves["bins"]
    centres = 0.5 * (bins[1:] + bins[:-1])
    fig, ax = _plotting.figure()
    density = lambda s: np.histogram(np.ravel(s), bins=bins, density=True)[0]  # noqa: E731
    ax.plot(centres, density(curves["truth_samples"]), "k", lw=2.5, label="truth")
    for name in MODEL_NAMES:
        if name in curves and np.isfinite(curves[name]["samples"]).all():
            ax.plot(centres, density(curves[name]["samples"]), label=name)
    ax.set_xlabel("X")
    ax.set_ylabel("probability density")
    ax.set_title("long-run distribution of X")
    ax.legend()
    run.save_figure(fig, "pdf.png")
