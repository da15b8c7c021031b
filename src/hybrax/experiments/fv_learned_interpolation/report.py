"""Report of the ``fv-learned-interpolation`` workflow: the comparison table and plots."""

from __future__ import annotations

import numpy as np

from .. import _plotting
from .._resolution_report import accuracy_cost_figure, resolution_table
from .settings import MODEL_NAMES

__all__ = ["comparison_table", "plot", "plot_accuracy_cost"]


def comparison_table(metrics: dict, censored: tuple[str, ...] = ()) -> str:
    """The metrics as a text table: decorrelation time, cost (and network parameters when
    recorded), with the ratios to ``plain_1x`` (time) and ``plain_2x`` (cost); ``censored``
    models, whose decorrelation time is only a lower bound, show ``>= t``."""
    return resolution_table(metrics, censored)


def plot(run, settings, times, correlations, fields) -> None:
    """``correlation.png`` (mean correlation against time) and ``vorticity.png`` (coarse
    vorticity of the reference and the 1x models at three times of the first forecast)."""
    fig, ax = _plotting.figure(figsize=(6, 4))
    for name in MODEL_NAMES:
        ax.plot(times, correlations[name].mean(axis=0), label=name)
    ax.axhline(settings.threshold, color="k", lw=0.8, ls="--")
    ax.set_xlabel("time (model units)")
    ax.set_ylabel("vorticity correlation with reference")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"finite-volume Kolmogorov flow, {settings.coarse_points}² coarse grid")
    ax.legend(fontsize=8)
    run.save_figure(fig, "correlation.png")

    from matplotlib.figure import Figure

    horizon = len(times)
    picks = sorted({max(0, horizon // 8 - 1), horizon // 3, horizon - 1})
    rows = ["reference", "plain_1x", "plain_2x", "interpolation_1x", "correction_1x"]
    fig = Figure(figsize=(3 * len(picks), 2.8 * len(rows)))
    limit = float(np.max(np.abs(fields["reference"][0, 0])))
    for r, name in enumerate(rows):
        for c, i in enumerate(picks):
            ax = fig.add_subplot(len(rows), len(picks), r * len(picks) + c + 1)
            ax.imshow(
                fields[name][0, i].T,
                origin="lower",
                cmap="RdBu_r",
                vmin=-limit,
                vmax=limit,
                extent=(0, 2 * np.pi, 0, 2 * np.pi),
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"t = {times[i]:.2f}")
            if c == 0:
                ax.set_ylabel(name)
    run.save_figure(fig, "vorticity.png", dpi=100)


def plot_accuracy_cost(
    run, settings, decorrelation: dict, cost: dict, censored=(), **figure
) -> None:
    """``accuracy_cost.png``: decorrelation time against wall time per simulated time unit
    (log axes); the plain solvers are joined by a line, so a learned model above and to the
    left of it beats resolution at equal cost; dotted lines mark plain_2x's accuracy and
    cost. ``figure``: ``xlabel`` and ``filename`` for costs measured otherwise (e.g. CPU
    seconds of one pinned core, `benchmarks/workflow_costs.py`)."""
    title = (
        f"finite volumes, {settings.coarse_points}² coarse grid "
        f"(correlation > {settings.threshold})"
    )
    accuracy_cost_figure(run, MODEL_NAMES, decorrelation, cost, title, censored, **figure)
