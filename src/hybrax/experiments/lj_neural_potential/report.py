"""Report of the ``lj-neural-potential`` workflow: the comparison table and the plots."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .. import _plotting
from .data import reference_energy
from .settings import NVE_SAVE_EVERY

__all__ = ["comparison_table", "plot"]


def comparison_table(metrics: dict, info: dict) -> str:
    """The metrics as a text table: one row per potential."""
    header = f"{'potential':<14}{'force RMSE':>12}{'NVE drift':>12}{'g(r) L2':>10}"
    lines = [header, "-" * len(header)]

    def cell(value, fmt, width):
        return f"{'-':>{width}}" if value is None else f"{value:>{width}{fmt}}"

    names = ["reference"] + [n for n in metrics["force_rmse"]]
    for name in names:
        lines.append(
            f"{name:<14}"
            + cell(metrics["force_rmse"].get(name), ".4f", 12)
            + cell(metrics["nve_drift"].get(name), ".2e", 12)
            + cell(metrics["rdf_l2"].get(name), ".4f", 10)
        )
    lines.append(
        f"(reference force scale: RMS component {info['force_scale']:.3f} epsilon/sigma; "
        f"{info['num_atoms']} atoms for the pair potential)"
    )
    mp = info.get("message_passing") or {}
    if mp:
        lines.append(
            f"(schnet: {mp['num_atoms']} atoms, force scale {mp['force_scale']:.3f}; LJ on that "
            f"system: NVE drift {mp['reference_nve_drift']:.2e}, g(r) L2 "
            f"{mp['reference_rdf_l2']:.4f})"
        )
    return "\n".join(lines)


def plot(run, data, settings, pair_model, pair, g_reference, rerun, reference_trace) -> None:
    """``force_parity.png``, ``rdf.png``, ``pair_potential.png``, ``nve_energy.png``."""
    reference = np.asarray(data.held_out.forces).ravel()
    predicted = pair["forces"].ravel()
    pick = np.random.default_rng(0).permutation(reference.size)[:20000]
    fig, ax = _plotting.figure(figsize=(4.5, 4.5))
    ax.plot(reference[pick], predicted[pick], ".", ms=1.5, alpha=0.4)
    limit = float(np.max(np.abs(reference)))
    ax.plot([-limit, limit], [-limit, limit], "k--", lw=1)
    ax.set_xlabel("Lennard-Jones force component (epsilon/sigma)")
    ax.set_ylabel("neural pair potential force")
    ax.set_title(f"held-out frames: RMSE {pair['force_rmse']:.3g}")
    run.save_figure(fig, "force_parity.png")

    r, g = g_reference
    fig, ax = _plotting.figure()
    ax.plot(r, g, "k", lw=2.5, label="Lennard-Jones (reference frames)")
    if rerun is not None:
        ax.plot(rerun[0], rerun[1], "k:", label="Lennard-Jones (independent run)")
    if pair["g"] is not None:
        ax.plot(pair["r"], pair["g"], "C1--", label="neural pair potential")
    ax.set_xlabel("r (sigma)")
    ax.set_ylabel("g(r)")
    ax.set_title(f"rho {settings.density}, T {settings.temperature}")
    ax.legend()
    run.save_figure(fig, "rdf.png")

    distances = jnp.linspace(0.85, settings.cutoff + 0.2, 400).astype(jnp.zeros(()).dtype)
    lj = reference_energy(settings)
    true_u = jnp.where(distances < settings.cutoff, lj.pair_energy(distances**2, None, None), 0.0)
    learned_u = pair_model.pair_potential(distances)
    fig, ax = _plotting.figure()
    ax.plot(distances, true_u, "k", lw=2.5, label="Lennard-Jones (shifted)")
    ax.plot(distances, learned_u, "C1--", label="learned")
    ax.axvline(settings.cutoff, color="0.6", lw=0.8)
    ax.set_ylim(-1.3, 2.0)
    ax.set_xlabel("r (sigma)")
    ax.set_ylabel("u(r) (epsilon)")
    atoms = data.train.positions.shape[1]
    ax.set_title(f"pair potential ({atoms} atoms, {data.train.num_frames} frames)")
    ax.legend()
    run.save_figure(fig, "pair_potential.png")

    fig, ax = _plotting.figure()
    time_axis = np.arange(len(reference_trace)) * NVE_SAVE_EVERY * settings.dt
    n = settings.num_atoms
    ax.plot(time_axis, (reference_trace - reference_trace[0]) / n, "k", label="Lennard-Jones")
    trace = pair["nve_trace"]
    ax.plot(time_axis, (trace - trace[0]) / n, "C1", label="neural pair potential")
    ax.set_xlabel("time (tau)")
    ax.set_ylabel("E(t) - E(0) per atom (epsilon)")
    ax.set_title(f"NVE, velocity Verlet, dt {settings.dt}")
    ax.legend()
    run.save_figure(fig, "nve_energy.png")
