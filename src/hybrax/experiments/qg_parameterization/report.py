"""Report of the ``qg-parameterization`` workflow: the metric table and the plots."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import numpy as np

from hybrax.grids import SpectralState

from .. import _plotting
from .settings import DAYS, MODEL_NAMES, SPECTRAL_METRICS

__all__ = ["metric_table"]

_COLUMNS = (
    ("spectral_score", "spectral"),
    *((name, name.replace("spectral_diff_", "")) for name in SPECTRAL_METRICS),
    ("timeseries_diff_KE1", "KE(t)1"),
    ("distrib_diff_q1", "q dist1"),
    ("ke_ratio", "KE ratio"),
    ("seconds_per_simulated_day", "s/day"),
)


def metric_table(metrics: dict) -> str:
    """The metrics as a markdown table per configuration: the spectral score (mean of the
    four spectral distances relative to no parameterisation's; lower is better), each
    spectral distance (KE spectra in m^3/s^2, enstrophy spectra in 1/s^2 per 1/m), the
    upper-layer KE time-series distance (m^2/s^2), the upper-layer PV distribution distance
    (1/s), the total KE relative to the filtered reference, the cost (wall s per simulated
    day) and blow-ups."""
    lines = []
    for configuration, results in metrics["configurations"].items():
        lines.append(f"\n### {configuration}\n")
        lines.append("| model | " + " | ".join(label for _, label in _COLUMNS) + " |")
        lines.append("|---" * (len(_COLUMNS) + 1) + "|")
        for name, row in results.items():
            cells = []
            for key, _ in _COLUMNS:
                value = row.get(key, row.get("distances", {}).get(key))
                cells.append("—" if value is None else f"{value:.3g}")
            if row.get("blow_up_day") is not None:
                cells[0] = f"blew up at day {row['blow_up_day']:.0f}"
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines).strip() + "\n"


@eqx.filter_jit
def _spectra(model, field_hat):
    flat = field_hat.reshape(-1, *field_hat.shape[-3:])
    return jax.vmap(lambda f: model.kinetic_energy_spectrum(SpectralState(f, 0.0)))(flat)


@eqx.filter_jit
def _energies(model, field_hat):
    return jax.vmap(jax.vmap(lambda f: model.kinetic_energy(SpectralState(f, 0.0))))(field_hat)


def _mean_spectrum(model, field_hat):
    k, spectra = _spectra(model, field_hat)
    return np.asarray(k[0]), np.asarray(spectra.mean(axis=0))


def ke_series(model, field_hat):
    """Member-mean depth-averaged KE of each snapshot, m^2/s^2."""
    energy = _energies(model, field_hat)
    depths = np.asarray(model.layer_depths)
    return (np.asarray(energy) * depths / depths.sum()).sum(axis=-1).mean(axis=0)


def plot(run, settings, configuration: str, reference, runs: dict) -> None:
    """``ke_spectra_<configuration>.png`` (time-mean KE spectra of both layers) and
    ``ke_series_<configuration>.png`` (depth-averaged KE against time, member mean)."""
    model = settings.model(configuration, settings.coarse_points)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    k, ref = _mean_spectrum(model, reference.field_hat)
    for z, ax in enumerate(axes):
        ax.loglog(k, ref[z], "k", lw=2.5, label="filtered reference")
        for name, model_run in runs.items():
            if model_run.blow_up_day is None:
                ax.loglog(k, _mean_spectrum(model, model_run.states.field_hat)[1][z], label=name)
        ax.set_ylim(bottom=1e-4 * float(ref[z].max()))  # the filter's cliff would hide the rest
        ax.set_xlabel("wavenumber (1/m)")
        ax.set_ylabel("KE spectrum (m³/s²)")
        ax.set_title(f"{configuration}, layer {z + 1}, {settings.coarse_points}²")
    axes[0].legend(fontsize=7)
    run.save_figure(fig, f"ke_spectra_{configuration}.png")

    fig, ax = _plotting.figure(figsize=(6.5, 4))
    snapshots = reference.field_hat.shape[1]
    per = settings.steps(settings.eval_days) // settings.eval_snapshots
    days = np.arange(1, snapshots + 1) * per * settings.time_step / DAYS
    ax.plot(days, ke_series(model, reference.field_hat), "k", lw=2.5, label="filtered reference")
    for name, model_run in runs.items():
        if model_run.blow_up_day is None:
            ax.plot(days, ke_series(model, model_run.states.field_hat), label=name)
    ax.set_xlabel("days since the start of the evaluation runs")
    ax.set_ylabel("depth-averaged KE (m²/s²)")
    ax.set_title(f"{configuration}: kinetic energy, member mean")
    ax.legend(fontsize=7)
    run.save_figure(fig, f"ke_series_{configuration}.png")


def plot_accuracy_cost(run, settings, metrics: dict) -> None:
    """``accuracy_cost.png``: spectral score (lower is better) against wall seconds per
    simulated day, every model and configuration (blown-up models left out)."""
    fig, ax = _plotting.figure(figsize=(6.5, 4.5))
    configurations = metrics["configurations"].items()
    for marker, (configuration, results) in zip("os^", configurations, strict=False):
        for name, row in results.items():
            i = MODEL_NAMES.index(name)
            score = row["spectral_score"]
            if score is None or not math.isfinite(score):
                continue
            ax.scatter(row["seconds_per_simulated_day"], score, marker=marker, color=f"C{i}",
                       label=f"{name} ({configuration})")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel(
        f"cost: wall s per simulated day (one {settings.coarse_points}² run incl. network)"
    )
    ax.set_ylabel("spectral distance / no parameterisation's")
    ax.set_title("accuracy against cost (lower left is better)")
    ax.legend(fontsize=6, ncol=2)
    run.save_figure(fig, "accuracy_cost.png")
