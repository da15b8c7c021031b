"""The ``lj-neural-potential`` run: reference MD, training, evaluation, report."""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp

import hybrax.md as md

from .._registry import register_workflow
from .._workflow import Run, finite_or_none, thin
from . import report
from .data import make_reference_data, reference_energy
from .evaluate import evaluate_model, nve_drift, nve_fluctuation, rdf_l2, rdf_of_frames, rdf_of_run
from .model import new_pair_potential, new_schnet_potential
from .settings import FULL, QUICK, LJSettings
from .train import train_potential

__all__ = ["run"]


@register_workflow(
    "lj-neural-potential",
    "neural pair potential (and SchNet) fitted to LJ liquid energies and forces: force RMSE, "
    "NVE drift, g(r)",
    full=FULL,
    quick=QUICK,
)
def run(
    settings: LJSettings = FULL,
    out: str | os.PathLike | None = None,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the whole experiment; write ``metrics.json``, ``run_info.json`` and the plots
    into the run folder ``out`` (default: a fresh ``runs/lj-neural-potential-NNN``).
    Returns the metrics."""
    presets = {"full": FULL, "quick": QUICK}
    run = Run("lj-neural-potential", settings, out, progress=progress, presets=presets)
    s = settings
    lj = reference_energy(s)
    keys = jax.random.split(jax.random.key(s.seed), 10)
    with run.phase("reference_md"):
        data = make_reference_data(keys[0], s)
    with run.phase("reference_nve_and_rdf"):
        frames = jnp.concatenate([data.train.positions, data.held_out.positions])
        g_reference = rdf_of_frames(frames, data.box, s)
        rerun = rdf_of_run(lj, data.state, data.box, s, keys[1])
        reference_drift, reference_trace = nve_drift(lj, data.state, data.box, s)
    with run.phase("pair_training"):
        pair = _train(new_pair_potential(keys[2], s), data, keys[3], s, "", progress)
    with run.phase("pair_evaluation"):
        results = [
            evaluate_model(
                "neural_pair", pair.model, data, s, g_reference, keys[4], rdf_steps=s.rdf_steps
            )
        ]
    run.timings["pair_training_fit_wall_time"] = round(pair.wall_time, 2)

    schnet_info: dict[str, Any] = {}
    if s.message_passing:
        with run.phase("schnet_reference_md"):
            small = make_reference_data(
                keys[5], s, cells=s.schnet_cells, num_frames=s.schnet_num_frames
            )
            frames = jnp.concatenate([small.train.positions, small.held_out.positions])
            g_small = rdf_of_frames(frames, small.box, s)
            small_rerun = rdf_of_run(
                lj, small.state, small.box, s, keys[6], num_steps=s.schnet_rdf_steps
            )
            small_drift, _ = nve_drift(lj, small.state, small.box, s)
        with run.phase("schnet_training"):
            model = new_schnet_potential(keys[7], small.train, s)
            schnet = _train(model, small, keys[8], s, "schnet_", progress)
        with run.phase("schnet_evaluation"):
            results.append(
                evaluate_model(
                    "schnet",
                    schnet.model,
                    small,
                    s,
                    g_small,
                    keys[9],
                    rdf_steps=s.schnet_rdf_steps,
                )
            )
        run.timings["schnet_training_fit_wall_time"] = round(schnet.wall_time, 2)
        schnet_info = {
            "num_atoms": small.state.positions.shape[0],
            "reference_nve_drift": small_drift,
            "reference_rdf_l2": rdf_l2(*g_small, None if small_rerun is None else small_rerun[1]),
            "force_scale": float(jnp.sqrt(jnp.mean(small.held_out.forces**2))),
            "history": thin(schnet.history["train"]),
        }

    metrics: dict[str, Any] = {
        "force_rmse": {res["name"]: finite_or_none(res["force_rmse"]) for res in results},
        "nve_drift": {"reference": finite_or_none(reference_drift)},
        "rdf_l2": {"reference": rdf_l2(*g_reference, None if rerun is None else rerun[1])},
    }
    for res in results:
        metrics["nve_drift"][res["name"]] = finite_or_none(res["nve_drift"])
        metrics["rdf_l2"][res["name"]] = finite_or_none(res["rdf_l2"])
    with run.phase("plots"):
        report.plot(run, data, s, pair.model, results[0], g_reference, rerun, reference_trace)

    neighbors = data.state.neighbors  # the list's algorithm: its mode, or its class
    info = {
        "dtype": str(jnp.zeros(()).dtype),
        "num_atoms": s.num_atoms,
        "neighbor_list_mode": getattr(neighbors, "mode", type(neighbors).__name__),
        "num_train_frames": data.train.num_frames,
        "num_held_out_frames": data.held_out.num_frames,
        "force_scale": float(jnp.sqrt(jnp.mean(data.held_out.forces**2))),
        "energy_per_atom_mean": float(jnp.mean(data.train.energies) / s.num_atoms),
        # the repulsive prior's radius against the closest approach the network was shown
        "core_radius": s.core_radius,
        "closest_pair_distance_train": _closest_pair_distance(data.train.positions, data.box),
        "energy_rmse_per_atom": {res["name"]: res["energy_rmse_per_atom"] for res in results},
        "nve_fluctuation": {
            "reference": nve_fluctuation(reference_trace),
            **{res["name"]: nve_fluctuation(res["nve_trace"]) for res in results},
        },
        "kinetic_temperature_final": float(md.temperature(data.state.velocities)),
        "pair_history": thin(pair.history["train"]),
        "message_passing": schnet_info,
    }
    return run.finish(metrics, info, report.comparison_table(metrics, info))


def _closest_pair_distance(frames, box: md.PeriodicBox) -> float:
    """The smallest distance between two atoms in any of ``frames`` (sigma)."""

    def one(positions):
        d = box.displacement(positions[:, None, :], positions[None, :, :])
        r2 = jnp.sum(d * d, axis=-1)
        return jnp.min(jnp.where(jnp.eye(positions.shape[0], dtype=bool), jnp.inf, r2))

    return float(jnp.sqrt(jnp.min(jax.lax.map(one, frames))))


def _train(potential, data, key, s: LJSettings, prefix: str, progress: bool):
    """`train_potential` with the settings of the pair (``prefix=""``) or SchNet model."""
    return train_potential(
        potential,
        data.train,
        data.box,
        key,
        num_steps=getattr(s, prefix + "train_steps"),
        batch_frames=getattr(s, prefix + "batch_frames"),
        learning_rate=getattr(s, prefix + "learning_rate"),
        energy_weight=s.energy_weight,
        progress=progress,
    )
