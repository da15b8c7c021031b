"""The ``qg-parameterization`` run."""

from __future__ import annotations

import os
from typing import Any

import equinox as eqx
import jax

from hybrax.core import NonFiniteLossError

from .._registry import register_workflow
from .._workflow import Run, finite_or_none, thin
from . import report
from .data import make_reference_data
from .evaluate import evaluate_model, seconds_per_simulated_day, spectral_score
from .model import CNNParameterization, baselines, cnn_of
from .settings import FULL, QUICK, QGParameterizationSettings
from .train import network_scales, train_offline, train_online

__all__ = ["run"]

BASELINES = ("none", "smagorinsky", "zanna_bolton")


def _mean_ke(model, field_hat) -> float:
    """Depth-averaged KE over runs and snapshots, m^2/s^2."""
    return float(report.ke_series(model, field_hat).mean())


def _train(run, s, configuration, data, key, info):
    k_build, k_off, k_on = jax.random.split(key, 3)
    input_scales, output_scales = network_scales(data, s, configuration)
    cnn = CNNParameterization.build(
        input_scales,
        output_scales,
        hidden_channels=s.hidden_channels,
        num_layers=s.num_layers,
        kernel_size=s.kernel_size,
        velocity_inputs=s.velocity_inputs,
        key=k_build,
    )
    with run.phase(f"{configuration}_offline_training"):
        offline = train_offline(cnn, data, s, configuration, k_off)
    with run.phase(f"{configuration}_online_training"):
        try:
            online = train_online(offline.model, data, s, configuration, k_on)
            online_cnn, online_error = cnn_of(online.model), None
            history = online.history["train"]
        except NonFiniteLossError as error:  # keep the newest finite parameters
            good = error.result
            online_cnn = cnn_of(good.model) if good is not None else offline.model
            history = good.history["train"] if good is not None else []
            online_error = str(error).splitlines()[0]
    info.update(
        network_scales={"inputs": input_scales, "outputs": output_scales},
        network_parameters=int(
            sum(x.size for x in jax.tree.leaves(eqx.filter(cnn.net, eqx.is_array)))
        ),
        offline_history=thin(offline.history["train"], keep=100),
        online_history=thin(history, keep=100),
        online_training_error=online_error,
        num_training_samples=int(data.forcing.shape[0]),
    )
    eqx.tree_serialise_leaves(run.file(f"cnn_offline_{configuration}.eqx"), offline.model)
    eqx.tree_serialise_leaves(run.file(f"cnn_online_{configuration}.eqx"), online_cnn)
    return offline.model, online_cnn


def _goals(results: dict) -> dict[str, bool]:
    if not {*BASELINES, "cnn_online", "cnn_offline"} <= set(results):
        return {}
    online = results["cnn_online"]
    score = online["spectral_score"]
    beats = score is not None and all(
        results[name]["spectral_score"] is None or score < results[name]["spectral_score"]
        for name in BASELINES
    )
    ke = online["ke_ratio"]
    offline = results["cnn_offline"]["spectral_score"]
    return {
        "online_beats_none_smagorinsky_zanna_bolton_on_spectral_score": bool(beats),
        "online_total_ke_within_10_percent": ke is not None and abs(ke - 1) <= 0.1,
        "online_beats_offline_on_spectral_score": score is not None
        and (offline is None or score < offline),
    }


@register_workflow(
    "qg-parameterization",
    "Two-layer QG (eddy, jet): CNN sub-grid parameterisation trained offline and online "
    "vs Smagorinsky, Zanna-Bolton, backscatter and none (Ross et al. 2023 metrics)",
    full=FULL,
    quick=QUICK,
)
def run(
    settings: QGParameterizationSettings = FULL,
    out: str | os.PathLike | None = None,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the whole comparison for every configuration; write ``metrics.json``,
    ``run_info.json``, ``metrics.md`` (the table), the plots and the trained networks
    (``cnn_{offline,online}_<configuration>.eqx``) into the run folder ``out`` (default: a
    fresh ``runs/qg-parameterization-NNN``). Returns the metrics."""
    presets = {"full": FULL, "quick": QUICK}
    run = Run("qg-parameterization", settings, out, progress=progress, presets=presets)
    s = settings
    metrics: dict[str, Any] = {"configurations": {}, "goals": {}}
    info: dict[str, Any] = {
        "reference_grid": s.reference_points,
        "coarse_grid": s.coarse_points,
        "filter": "operator 1 of Ross et al. (2023): sharp spectral truncation + model filter",
        "coarse_time_step_s": s.time_step,
        "reference_time_step_s": s.time_step / s.factor,
        "configurations": {},
    }
    keys = jax.random.split(jax.random.key(s.seed), len(s.configurations))
    for configuration, key in zip(s.configurations, keys, strict=True):
        k_data, k_train = jax.random.split(key)
        conf_info: dict[str, Any] = {}
        with run.phase(f"{configuration}_reference_data"):
            data = jax.block_until_ready(make_reference_data(k_data, s, configuration))
        offline_cnn, online_cnn = _train(run, s, configuration, data, k_train, conf_info)
        parameterizations = baselines() | {"cnn_offline": offline_cnn, "cnn_online": online_cnn}
        steppers = {
            name: s.coarse_stepper(configuration, parameterizations[name]) for name in s.models
        }
        with run.phase(f"{configuration}_evaluation"):
            runs = {
                name: evaluate_model(st, data, s, configuration) for name, st in steppers.items()
            }
        with run.phase(f"{configuration}_timing"):
            start = jax.tree.map(lambda x: x[0], data.eval_start)
            cost = seconds_per_simulated_day(steppers, start, s)
        model = s.model(configuration, s.coarse_points)
        reference_ke = _mean_ke(model, data.eval_states.field_hat)
        base = runs["none"].distances
        results = {}
        for name in s.models:
            r = runs[name]
            ok = r.blow_up_day is None
            results[name] = {
                "spectral_score": finite_or_none(spectral_score(r.distances, base)) if ok else None,
                "ke_ratio": finite_or_none(_mean_ke(model, r.states.field_hat) / reference_ke)
                if ok
                else None,
                "blow_up_day": r.blow_up_day,
                "seconds_per_simulated_day": cost[name],
                "distances": {k: finite_or_none(v) for k, v in r.distances.items()},
            }
        metrics["configurations"][configuration] = results
        metrics["goals"][configuration] = _goals(results)
        conf_info["reference_mean_ke_m2_s2"] = reference_ke
        info["configurations"][configuration] = conf_info
        with run.phase(f"{configuration}_plots"):
            report.plot(run, s, configuration, data.eval_states, runs)
    with run.phase("plots"):
        report.plot_accuracy_cost(run, s, metrics)
        table = report.metric_table(metrics)
        run.file("metrics.md").write_text(
            f"# qg-parameterization ({run.preset}): {s.reference_points}² reference filtered "
            f"to {s.coarse_points}²\n\n{table}\nGoals: {metrics['goals']}\n"
        )
    return run.finish(metrics, info, table + f"\ngoals: {metrics['goals']}")
