"""Report of the ``kolmogorov-correction`` workflow: the comparison table and the plots."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from hybrax.fluids import energy_spectrum

from .. import _plotting
from .data import ForecastData
from .settings import MODEL_NAMES

__all__ = ["comparison_table", "plot", "plot_accuracy_cost"]


def comparison_table(metrics: dict, censored: tuple[str, ...] = ()) -> str:
    """The metrics as a text table: decorrelation time, cost, and both relative to
    ``plain_1x`` / ``plain_2x``.

    ``censored`` names the models whose decorrelation time is only a lower bound (shown as
    ``>= t``).
    """
    decor, cost = metrics["decorrelation_time"], metrics["seconds_per_time_unit"]
    header = (
        f"{'model':<11}{'decorrelation':>15}{'vs plain_1x':>13}{'s / time unit':>15}"
        f"{'vs plain_2x':>13}"
    )
    lines = [header, "-" * len(header)]
    for name in decor:
        bound = ">=" if name in censored else ""
        ratio = decor[name] / decor["plain_1x"] if decor.get("plain_1x") else math.nan
        cost_ratio = cost[name] / cost["plain_2x"] if cost.get("plain_2x") else math.nan
        lines.append(
            f"{name:<11}{bound + f'{decor[name]:.3f}':>15}{ratio:>12.2f}x"
            f"{cost[name]:>15.4g}{cost_ratio:>12.2f}x"
        )
    return "\n".join(lines)


def plot(run, settings, times, correlations, test: ForecastData, trajectories) -> None:
    """``correlation.png`` (mean correlation against time), ``vorticity.png`` (snapshots of
    the reference and the 1x models), ``spectrum.png`` (energy spectra at the end)."""
    fig, ax = _plotting.figure(figsize=(6, 4))
    for name in MODEL_NAMES:
        ax.plot(times, correlations[name].mean(axis=0), label=name)
    ax.axhline(settings.threshold, color="k", lw=0.8, ls="--")
    ax.set_xlabel("time (model units)")
    ax.set_ylabel("vorticity correlation with reference")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Kolmogorov flow, {settings.coarse_points}² coarse grid")
    ax.legend()
    run.save_figure(fig, "correlation.png")

    from matplotlib.figure import Figure

    grid = settings.grid(1)
    horizon = test.targets.field_hat.shape[1]
    picks = sorted({max(0, horizon // 8 - 1), horizon // 3, horizon - 1})
    rows = {"reference": test.targets.field_hat[0]}
    for name in ("plain_1x", "plain_2x", "hybrid_1x", "tendency_1x"):
        rows[name] = trajectories[name][0]
    fig = Figure(figsize=(3 * len(picks), 2.8 * len(rows)))
    limit = float(np.max(np.abs(grid.to_physical(test.targets.field_hat[0, 0]))))
    for r, (name, fields) in enumerate(rows.items()):
        for c, i in enumerate(picks):
            ax = fig.add_subplot(len(rows), len(picks), r * len(picks) + c + 1)
            field = np.asarray(grid.to_physical(jnp.asarray(fields[i])))
            extent = (0, 2 * np.pi, 0, 2 * np.pi)
            ax.imshow(
                field.T, origin="lower", cmap="RdBu_r", vmin=-limit, vmax=limit, extent=extent
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"t = {times[i]:.2f}")
            if c == 0:
                ax.set_ylabel(name)
    run.save_figure(fig, "vorticity.png", dpi=100)

    fig, ax = _plotting.figure()
    k, e = energy_spectrum(grid, jnp.asarray(test.targets.field_hat[:, -1]))
    band = slice(1, settings.coarse_points // 3 + 1)
    ax.loglog(np.asarray(k)[band], np.asarray(e).mean(axis=0)[band], "k", lw=2.5, label="reference")
    for name in MODEL_NAMES:
        _, e = energy_spectrum(grid, jnp.asarray(trajectories[name][:, -1]))
        ax.loglog(np.asarray(k)[band], np.asarray(e).mean(axis=0)[band], label=name)
    ax.set_xlabel("wavenumber k")
    ax.set_ylabel("E(k)")
    ax.set_title(f"energy spectra at t = {times[-1]:.1f} (coarse band)")
    ax.legend()
    run.save_figure(fig, "spectrum.png")


def plot_accuracy_cost(run, settings, decorrelation: dict, cost: dict, censored=()) -> None:
    """``accuracy_cost.png``: each model's decorrelation time against its wall time per
    simulated time unit (log axes); the plain solvers are joined by a line, so a hybrid
    above and to the left of that line beats resolution at equal cost. Dotted lines mark
    plain_2x's decorrelation time and cost: the goal is the upper-left quadrant."""
    fig, ax = _plotting.figure(figsize=(6, 4))
    plain = [name for name in MODEL_NAMES if name.startswith("plain")]
    ax.plot([cost[n] for n in plain], [decorrelation[n] for n in plain], "k-", lw=0.8, zorder=1)
    # the goal: a coarse hybrid up and to the left of plain_2x (as accurate, no dearer)
    goal = dict(color="grey", lw=0.8, ls=":", zorder=0)
    ax.axhline(decorrelation["plain_2x"], **goal)
    ax.axvline(cost["plain_2x"], **goal)
    for index, name in enumerate(MODEL_NAMES):
        marker = "o" if name.startswith("plain") else "*"
        ax.scatter(cost[name], decorrelation[name], marker=marker, s=80, zorder=2, label=name)
        bound = " (>=)" if name in censored else ""
        ax.annotate(
            name + bound,
            (cost[name], decorrelation[name]),
            textcoords="offset points",
            xytext=(6, -4 if index % 2 else 6),  # alternate, so neighbours do not overlap
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
        f"accuracy against cost, {settings.coarse_points}² coarse grid "
        f"(correlation > {settings.threshold})"
    )
    ax.legend(fontsize=8)
    run.save_figure(fig, "accuracy_cost.png")
