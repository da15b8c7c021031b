"""Report of the ``fv-learned-interpolation`` workflow: the comparison table and plots."""

from __future__ import annotations

import math

import numpy as np

from .. import _plotting
from .settings import MODEL_NAMES

__all__ = ["comparison_table", "plot", "plot_accuracy_cost"]


def comparison_table(metrics: dict, censored: tuple[str, ...] = ()) -> str:
    """The metrics as a text table: decorrelation time, cost, parameters, and the ratios to
    ``plain_1x`` (time) and ``plain_2x`` (cost). ``censored`` models show ``>= t``."""
    decor, cost = metrics["decorrelation_time"], metrics["seconds_per_time_unit"]
    params = metrics.get("network_parameters", {})
    header = (
        f"{'model':<17}{'decorrelation':>14}{'vs plain_1x':>13}{'s / time unit':>15}"
        f"{'vs plain_2x':>13}{'parameters':>12}"
    )
    lines = [header, "-" * len(header)]
    for name in decor:
        bound = ">=" if name in censored else ""
        ratio = decor[name] / decor["plain_1x"] if decor.get("plain_1x") else math.nan
        cost_ratio = cost[name] / cost["plain_2x"] if cost.get("plain_2x") else math.nan
        lines.append(
            f"{name:<17}{bound + f'{decor[name]:.3f}':>14}{ratio:>12.2f}x"
            f"{cost[name]:>15.4g}{cost_ratio:>12.2f}x{params.get(name, 0):>12d}"
        )
    return "\n".join(lines)


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


def plot_accuracy_cost(run, settings, decorrelation: dict, cost: dict, censored=()) -> None:
    """``accuracy_cost.png``: decorrelation time against wall time per simulated time unit
    (log axes); the plain solvers are joined by a line, so a learned model above and to the
    left of it beats resolution at equal cost."""
    fig, ax = _plotting.figure(figsize=(6.5, 4.2))
    plain = [name for name in MODEL_NAMES if name.startswith("plain")]
    ax.plot([cost[n] for n in plain], [decorrelation[n] for n in plain], "k-", lw=0.8, zorder=1)
    for name in MODEL_NAMES:
        marker = "o" if name.startswith("plain") else "*"
        ax.scatter(cost[name], decorrelation[name], marker=marker, s=80, zorder=2, label=name)
        bound = " (>=)" if name in censored else ""
        ax.annotate(
            name + bound,
            (cost[name], decorrelation[name]),
            textcoords="offset points",
            xytext=(6, -4),
            fontsize=8,
        )
    from matplotlib.ticker import LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_minor_formatter(NullFormatter())
    ax.margins(x=0.25, y=0.15)
    ax.set_xlabel("wall time per simulated time unit (s, one trajectory, this CPU)")
    ax.set_ylabel("decorrelation time (model time units)")
    ax.set_title(
        f"finite volumes, {settings.coarse_points}² coarse grid "
        f"(correlation > {settings.threshold})"
    )
    ax.legend(fontsize=8)
    run.save_figure(fig, "accuracy_cost.png")
