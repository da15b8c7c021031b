"""The ``fv-learned-interpolation`` run."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import equinox as eqx
import jax

from hybrax.fluids import FusedLearnedInterpolation, LearnedInterpolation
from hybrax.hybrid import Checkpoints, sliding_windows

from .._registry import register_workflow
from .._workflow import Run, read_run, saved_settings, thin
from . import report
from .data import make_forecast_data, make_training_data
from .evaluate import correlation_curves, decorrelation_times, seconds_per_time_unit
from .model import (
    StreamCorrection,
    correction_stepper,
    interpolation_network,
    interpolation_stepper,
    parameter_count,
    plain_stepper,
)
from .settings import FACTORS, FULL, LEARNED, MODEL_NAMES, QUICK, FVSettings
from .train import network_scales, train_model

__all__ = ["SavedRun", "load_run", "run"]

_SAVED = ("interpolation.eqx", "correction.eqx")


@register_workflow(
    "fv-learned-interpolation",
    "Finite-volume Kolmogorov flow: learned interpolation and correction vs plain 1x, 2x, 4x",
    full=FULL,
    quick=QUICK,
)
def run(
    settings: FVSettings = FULL,
    out: str | os.PathLike | None = None,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the whole comparison; write ``metrics.json``, ``run_info.json``, the plots and
    both trained networks (``interpolation.eqx``, ``correction.eqx``) into the run folder
    ``out`` (default: a fresh ``runs/fv-learned-interpolation-NNN``). Training checkpoints go
    to ``out/checkpoints``; running again into the same folder with the same settings
    resumes from them. Returns the metrics."""
    presets = {"full": FULL, "quick": QUICK}
    run = Run("fv-learned-interpolation", settings, out, progress=progress, presets=presets)
    s = settings
    keys = jax.random.split(jax.random.key(s.seed), 5)
    with run.phase("training_data"):
        train = jax.block_until_ready(make_training_data(keys[0], s))
    with run.phase("forecast_data"):
        test = jax.block_until_ready(make_forecast_data(keys[1], s))
    velocity_scale, output_scale = network_scales(train, s)
    trained = {}
    with run.phase("training_interpolation"):
        scheme = interpolation_network(s, keys[2], velocity_scale)
        model = interpolation_stepper(scheme, s)
        result = train_model(
            model,
            lambda m: m.dynamics.scheme.network,
            train,
            s,
            keys[4],
            progress=progress,
            checkpoints=Checkpoints(run.folder("checkpoints_interpolation")),
        )
        trained["interpolation_1x"] = result
    with run.phase("training_correction"):
        model = correction_stepper(
            StreamCorrection.build(s, output_scale, keys[3]), s, velocity_scale
        )
        result = train_model(
            model,
            lambda m: m.net,
            train,
            s,
            keys[4],
            progress=progress,
            checkpoints=Checkpoints(run.folder("checkpoints_correction")),
        )
        trained["correction_1x"] = result
    nets = {
        "interpolation_1x": trained["interpolation_1x"].model.dynamics.scheme,
        "correction_1x": trained["correction_1x"].model.net,
    }
    with run.phase("evaluation"):
        models = {
            name: (plain_stepper(s, FACTORS[name]), FACTORS[name])
            for name in MODEL_NAMES
            if name not in LEARNED
        }
        for name in LEARNED:
            models[name] = (trained[name].model, 1)
        correlations, fields = correlation_curves(models, test, s)
        times, decorrelation, censored, per_forecast = decorrelation_times(correlations, s)
    with run.phase("timing"):
        cost = seconds_per_time_unit(models, test.starts, s)
    with run.phase("plots"):
        report.plot(run, s, times, correlations, fields)
        report.plot_accuracy_cost(run, s, decorrelation, cost, tuple(censored))
        eqx.tree_serialise_leaves(run.file("interpolation.eqx"), nets["interpolation_1x"])
        eqx.tree_serialise_leaves(run.file("correction.eqx"), nets["correction_1x"])

    params = {name: parameter_count(nets[name]) if name in nets else 0 for name in MODEL_NAMES}
    metrics = {
        "decorrelation_time": {name: decorrelation[name] for name in MODEL_NAMES},
        "seconds_per_time_unit": {name: cost[name] for name in MODEL_NAMES},
        "network_parameters": params,
    }
    thinned = max(1, len(times) // 200)
    info = {
        "dtype": str(s.real_dtype()),
        "reference": (
            f"pseudo-spectral NavierStokes2D (ETDRK4) at {s.coarse_points * s.reference_factor}², "
            "face-averaged onto the staggered grids"
        ),
        "grids": {name: s.coarse_points * FACTORS[name] for name in MODEL_NAMES},
        "time_steps": {name: float(models[name][0].dt) for name in MODEL_NAMES},
        "reference_time_step": s.reference_time_step(),
        "training_wall_time_s": {name: round(trained[name].wall_time, 2) for name in LEARNED},
        "optimizer_steps": {name: trained[name].step for name in LEARNED},
        "num_training_windows": {
            str(k): int(sliding_windows(train, k + 1, s.window_stride).time.shape[0])
            for k, _ in s.stages
        },
        "num_forecasts": int(test.starts.time.shape[0]),
        "censored": censored,
        "decorrelation_time_per_forecast": per_forecast,
        "network_scales": {"velocity": velocity_scale, "stream_output": output_scale},
        "mean_correlation": {
            "times": times[::thinned].tolist(),
            **{name: c.mean(axis=0)[::thinned].tolist() for name, c in correlations.items()},
        },
        "training_history": {
            name: thin(trained[name].history["train"], keep=200) for name in LEARNED
        },
    }
    summary = report.comparison_table(metrics, tuple(censored)) + (
        f"\n({info['num_forecasts']} held-out forecasts; training "
        + ", ".join(f"{n} {trained[n].step} steps in {trained[n].wall_time:.0f} s" for n in LEARNED)
        + ")"
    )
    return run.finish(metrics, info, summary)


@dataclasses.dataclass
class SavedRun:
    """A finished run read back by `load_run`.

    Attributes
    ----------
    settings
        The run's `FVSettings` (``dtype`` filled in with the one the run used).
    interpolation
        The trained learned interpolation (build the model with `interpolation_stepper`).
    correction
        The trained `StreamCorrection` (build the hybrid with `correction_stepper`, passing
        ``velocity_scale``).
    velocity_scale
        The correction's input velocity scale.
    metrics
        The run's ``metrics.json``.
    run_info
        The run's ``run_info.json``.
    """

    settings: FVSettings
    interpolation: LearnedInterpolation | FusedLearnedInterpolation
    correction: StreamCorrection
    velocity_scale: float
    metrics: dict[str, Any]
    run_info: dict[str, Any]


def load_run(out: str | os.PathLike) -> SavedRun:
    """Read a finished run's settings and both trained networks from its run folder, e.g.
    to run the learned models on new initial conditions. `hybrax.CheckpointError` if
    ``out`` is not a finished fv-learned-interpolation run.

    Examples
    --------
    >>> from hybrax.experiments import fv_learned_interpolation as fvli
    >>> saved = fvli.load_run("benchmarks/results/workflows/fv-learned-interpolation")
    ... # doctest: +SKIP
    >>> stepper = fvli.interpolation_stepper(saved.interpolation, saved.settings)
    ... # doctest: +SKIP
    """
    out = Path(out)
    saved = read_run(out, "fv-learned-interpolation", needs=_SAVED)
    info = saved["run_info"]
    # runs made before ``interpolation_calls`` existed used one network call per flux
    settings = saved_settings(info, FVSettings, interpolation_calls="per_flux")
    scales = info["network_scales"]
    key = jax.random.key(0)
    like = interpolation_network(settings, key, scales["velocity"])
    interpolation = eqx.tree_deserialise_leaves(out / "interpolation.eqx", like)
    like = StreamCorrection.build(settings, scales["stream_output"], key)
    correction = eqx.tree_deserialise_leaves(out / "correction.eqx", like)
    return SavedRun(settings, interpolation, correction, scales["velocity"], saved["metrics"], info)
