"""Report of the ``kolmogorov-correction`` workflow: the comparison table and the plots."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from hybrax.fluids import energy_spectrum

from .. import _plotting
from .._resolution_report import accuracy_cost_figure, resolution_table
from .data import ForecastData
from .settings import MODEL_NAMES

__all__ = ["comparison_table", "plot", "plot_accuracy_cost"]


def comparison_table(metrics: dict, censored: tuple[str, ...] = ()) -> str:
    """The metrics as a text table: decorrelation time, cost (and network parameters when
    recorded), with the ratios to ``plain_1x`` (time) and ``plain_2x`` (cost); ``censored``
    models, whose decorrelation time is only a lower bound, show ``>= t``."""
    return resolution_table(metrics, censored)


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
    """``accuracy_cost.png``: decorrelation time against wall time per simulated time unit
    (log axes); the plain solvers are joined by a line, so a learned model above and to the
    left of it beats resolution at equal cost; dotted lines mark plain_2x's accuracy and
    cost."""
    title = (
        f"accuracy against cost, {settings.coarse_points}² coarse grid "
        f"(correlation > {settings.threshold})"
    )
    accuracy_cost_figure(run, MODEL_NAMES, decorrelation, cost, title, censored)
