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
from .model import VorticityCorrection, plain_stepper, reference_stepper
from .settings import FACTORS, FULL, MODEL_NAMES, QUICK, CorrectionSettings
from .train import network_scales, train_correction

__all__ = ["SavedRun", "load_run", "run"]

_SAVED = ("correction.eqx", "reference_data.npz")


@register_workflow(
    "kolmogorov-correction",
    "Kolmogorov flow (Re 1000): CNN-corrected coarse solver vs plain solvers at 1x, 2x, 4x",
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
    trained weights (``correction.eqx``) and the reference data (``reference_data.npz``)
    into the run folder ``out`` (default: a fresh ``runs/kolmogorov-correction-NNN``).
    Training checkpoints go to ``out/checkpoints``: running again into the same folder with
    the same settings resumes from them. Returns the metrics."""
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
        net = VorticityCorrection.build(s, input_scales, output_scale, keys[2])
        checkpoints = Checkpoints(run.folder("checkpoints"))
        trained = train_correction(
            net, train, s, keys[3], progress=progress, checkpoints=checkpoints
        )
        hybrid = trained.model
    with run.phase("evaluation"):
        models = {
            name: (plain_stepper(s, FACTORS[name]), FACTORS[name])
            for name in MODEL_NAMES
            if name != "hybrid_1x"
        }
        models["hybrid_1x"] = (hybrid, 1)
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
        eqx.tree_serialise_leaves(run.file("correction.eqx"), hybrid.net)
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
        "training_wall_time_s": round(trained.wall_time, 2),
        "optimizer_steps": trained.step,
        "num_training_windows": {
            str(k): int(sliding_windows(train, k + 1, s.window_stride).time.shape[0])
            for k, _ in s.stages
        },
        "num_forecasts": int(test.starts.time.shape[0]),
        "censored": censored,
        "decorrelation_time_per_forecast": per_forecast,
        "reference_seconds_per_time_unit": reference_cost,
        "network_scales": {"inputs": input_scales, "output": output_scale},
        "network_parameters": int(
            sum(x.size for x in jax.tree.leaves(eqx.filter(hybrid.net, eqx.is_array)))
        ),
        "mean_correlation": {
            "times": times[::thinned].tolist(),
            **{name: c.mean(axis=0)[::thinned].tolist() for name, c in correlations.items()},
        },
        "training_history": thin(trained.history["train"], keep=300),
    }
    summary = report.comparison_table(metrics, tuple(censored)) + (
        f"\n({info['num_forecasts']} held-out forecasts; training {trained.step} steps in "
        f"{trained.wall_time:.0f} s; reference {s.reference_factor}x costs "
        f"{reference_cost:.3g} s per time unit)"
    )
    return run.finish(metrics, info, summary)


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
        The trained `VorticityCorrection` (build the hybrid with `hybrid_stepper`).
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
    like = VorticityCorrection.build(
        settings, tuple(scales["inputs"]), scales["output"], jax.random.key(0)
    )
    net = eqx.tree_deserialise_leaves(out / "correction.eqx", like)
    with np.load(out / "reference_data.npz") as data:
        arrays = {name: jnp.asarray(data[name]) for name in data.files}

    def state(prefix: str) -> SpectralState:
        return SpectralState(arrays[f"{prefix}_field_hat"], arrays[f"{prefix}_time"])

    forecasts = ForecastData(state("starts"), state("targets"))
    return SavedRun(settings, net, state("train"), forecasts, saved["metrics"], info)
