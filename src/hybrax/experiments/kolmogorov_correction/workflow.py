"""The ``kolmogorov-correction`` run, and reading a finished run back (`load_run`)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from hybrax.grids import SpectralState
from hybrax.hybrid import Checkpoints, sliding_windows

from .._registry import register_workflow
from .._workflow import Run, read_run, thin
from . import report
from .data import ForecastData, make_forecast_data, make_training_data
from .evaluate import correlation_curves, decorrelation_times, seconds_per_time_unit
from .model import (
    VorticityCorrection,
    hybrid_stepper,
    network_of,
    plain_stepper,
    reference_stepper,
    tendency_stepper,
)
from .settings import FACTORS, FULL, HYBRIDS, MODEL_NAMES, QUICK, CorrectionSettings
from .train import network_scales, train_correction

__all__ = ["SavedRun", "load_run", "run"]

_TENDENCY = "tendency_correction.eqx"
_SAVED = ("correction.eqx", _TENDENCY, "reference_data.npz")


@register_workflow(
    "kolmogorov-correction",
    "Kolmogorov flow (Re 1000): coarse solver with a CNN correction after each step or of "
    "its nonlinear term, vs plain solvers at 1x, 2x, 4x",
    full=FULL,
    quick=QUICK,
)
def run(
    settings: CorrectionSettings = FULL,
    out: str | os.PathLike | None = None,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the whole comparison; write ``metrics.json``, ``run_info.json``, the plots, the
    trained weights (``correction.eqx``: the post-step correction, ``hybrid_1x``;
    ``tendency_correction.eqx``: the correction of the nonlinear term, ``tendency_1x``) and
    the reference data (``reference_data.npz``) into the run folder ``out`` (default: a
    fresh ``runs/kolmogorov-correction-NNN``). Training checkpoints go to
    ``out/checkpoints`` and ``out/checkpoints_tendency``: running again into the same folder
    with the same settings resumes from them. Returns the metrics."""
    presets = {"full": FULL, "quick": QUICK}
    run = Run("kolmogorov-correction", settings, out, progress=progress, presets=presets)
    s = settings
    keys = jax.random.split(jax.random.key(s.seed), 4)
    with run.phase("training_data"):
        train = jax.block_until_ready(make_training_data(keys[0], s))
    with run.phase("forecast_data"):
        test = jax.block_until_ready(make_forecast_data(keys[1], s))
    with run.phase("training"):
        input_scales, output_scale = network_scales(train, s)
        nets = _networks(s, input_scales, output_scale, keys[2])
        trained = {}
        for name, folder, stepper in (
            ("hybrid_1x", "checkpoints", hybrid_stepper),
            ("tendency_1x", "checkpoints_tendency", tendency_stepper),
        ):
            with run.phase(f"training_{name}"):
                trained[name] = train_correction(
                    nets[name],
                    train,
                    s,
                    keys[3],
                    progress=progress,
                    checkpoints=Checkpoints(run.folder(folder)),
                    stepper=stepper,
                )
    with run.phase("evaluation"):
        models = {
            name: (plain_stepper(s, FACTORS[name]), FACTORS[name])
            for name in MODEL_NAMES
            if name not in HYBRIDS
        }
        models.update({name: (trained[name].model, 1) for name in HYBRIDS})
        correlations, trajectories = correlation_curves(models, test, s)
        times, decorrelation, censored, per_forecast = decorrelation_times(correlations, s)
    with run.phase("timing"):
        first = jax.tree.map(lambda x: x[0], test.starts)
        cost = seconds_per_time_unit(models, first, s)
        reference_cost = seconds_per_time_unit(
            {"reference": (reference_stepper(s), s.reference_factor)},
            first,
            dataclasses.replace(s, timing_time=s.timing_time / 4),
            rounds=1,
        )["reference"]
    with run.phase("plots"):
        report.plot(run, s, times, correlations, test, trajectories)
        report.plot_accuracy_cost(run, s, decorrelation, cost, tuple(censored))
        for name, file in (("hybrid_1x", "correction.eqx"), ("tendency_1x", _TENDENCY)):
            eqx.tree_serialise_leaves(run.file(file), network_of(trained[name].model))
        _save_reference(run.file("reference_data.npz"), train, test)

    metrics = {
        "decorrelation_time": {name: decorrelation[name] for name in MODEL_NAMES},
        "seconds_per_time_unit": {name: cost[name] for name in MODEL_NAMES},
    }
    thinned = max(1, len(times) // 200)
    info = {
        "dtype": str(s.real_dtype()),
        "grids": {name: s.coarse_points * FACTORS[name] for name in MODEL_NAMES},
        "reference_grid": s.coarse_points * s.reference_factor,
        "time_steps": {name: float(models[name][0].dt) for name in MODEL_NAMES},
        "reference_time_step": s.reference_time_step(),
        "training_wall_time_s": {n: round(trained[n].wall_time, 2) for n in HYBRIDS},
        "optimizer_steps": {n: trained[n].step for n in HYBRIDS},
        "num_training_windows": {
            str(k): int(sliding_windows(train, k + 1, s.window_stride).time.shape[0])
            for k, _ in s.stages
        },
        "num_forecasts": int(test.starts.time.shape[0]),
        "censored": censored,
        "decorrelation_time_per_forecast": per_forecast,
        "reference_seconds_per_time_unit": reference_cost,
        "network_scales": {
            "inputs": input_scales,
            "output": output_scale,
            "tendency_output": output_scale / s.time_step(1),
        },
        "network_parameters": {
            n: int(sum(x.size for x in jax.tree.leaves(eqx.filter(nets[n], eqx.is_array))))
            for n in HYBRIDS
        },
        "mean_correlation": {
            "times": times[::thinned].tolist(),
            **{name: c.mean(axis=0)[::thinned].tolist() for name, c in correlations.items()},
        },
        "training_history": {n: thin(trained[n].history["train"], keep=300) for n in HYBRIDS},
    }
    summary = report.comparison_table(metrics, tuple(censored)) + (
        f"\n({info['num_forecasts']} held-out forecasts; training "
        + ", ".join(f"{n} {trained[n].step} steps in {trained[n].wall_time:.0f} s" for n in HYBRIDS)
        + f"; reference {s.reference_factor}x costs {reference_cost:.3g} s per time unit)"
    )
    return run.finish(metrics, info, summary)


def _networks(
    settings: CorrectionSettings,
    input_scales: tuple[float, ...],
    output_scale: float,
    key,
) -> dict[str, VorticityCorrection]:
    """Fresh networks of both hybrids: the post-step correction scaled by one plain step's
    error, the tendency correction by that error per unit time (``/ dt``)."""
    s = settings
    return {
        "hybrid_1x": VorticityCorrection.build(s, input_scales, output_scale, key),
        "tendency_1x": VorticityCorrection.build(
            s,
            input_scales,
            output_scale / s.time_step(1),
            key,
            hidden_channels=s.tendency_hidden_channels,
            num_layers=s.tendency_num_layers,
        ),
    }


def _save_reference(path: Path, train: SpectralState, test: ForecastData) -> None:
    np.savez_compressed(
        path,
        train_field_hat=np.asarray(train.field_hat),
        train_time=np.asarray(train.time),
        starts_field_hat=np.asarray(test.starts.field_hat),
        starts_time=np.asarray(test.starts.time),
        targets_field_hat=np.asarray(test.targets.field_hat),
        targets_time=np.asarray(test.targets.time),
    )


@dataclasses.dataclass
class SavedRun:
    """A finished run read back by `load_run`.

    Attributes
    ----------
    settings
        The run's `CorrectionSettings` (``dtype`` filled in with the one the run used).
    net
        The trained post-step `VorticityCorrection` (build the hybrid with `hybrid_stepper`).
    tendency_net
        The trained correction of the nonlinear term (build it with `tendency_stepper`).
    training_data
        The reference training trajectories (as from `make_training_data`).
    forecast_data
        The held-out forecasts (as from `make_forecast_data`).
    metrics
        The run's ``metrics.json``.
    run_info
        The run's ``run_info.json``.
    """

    settings: CorrectionSettings
    net: VorticityCorrection
    tendency_net: VorticityCorrection
    training_data: SpectralState
    forecast_data: ForecastData
    metrics: dict[str, Any]
    run_info: dict[str, Any]


def load_run(out: str | os.PathLike) -> SavedRun:
    """Read a finished run's settings, trained network and reference data from its run
    folder, e.g. to evaluate the trained correction under another precision policy.
    `hybrax.CheckpointError` if ``out`` is not a finished kolmogorov-correction run."""
    out = Path(out)
    saved = read_run(out, "kolmogorov-correction", needs=_SAVED)
    info = saved["run_info"]
    fields = dict(info["settings"])
    if fields.get("dtype") is None:  # the run used the default dtype: say which it was
        fields["dtype"] = info["dtype"]
    settings = CorrectionSettings.from_dict(fields)
    scales = info["network_scales"]
    like = _networks(settings, tuple(scales["inputs"]), scales["output"], jax.random.key(0))
    net = eqx.tree_deserialise_leaves(out / "correction.eqx", like["hybrid_1x"])
    tendency_net = eqx.tree_deserialise_leaves(out / _TENDENCY, like["tendency_1x"])
    with np.load(out / "reference_data.npz") as data:
        arrays = {name: jnp.asarray(data[name]) for name in data.files}

    def state(prefix: str) -> SpectralState:
        return SpectralState(arrays[f"{prefix}_field_hat"], arrays[f"{prefix}_time"])

    forecasts = ForecastData(state("starts"), state("targets"))
    return SavedRun(settings, net, tendency_net, state("train"), forecasts, saved["metrics"], info)
