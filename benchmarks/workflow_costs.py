"""Cost per simulated time unit of a finished fv-learned-interpolation run's models,
re-measured on a steady clock.

A workflow times its models once, at the end of training, on whatever the machine is doing
then (wall clock, three rounds): on a shared 2-core machine that spreads the ratios by 2x
between runs. This script reads a finished run folder (`load_run`), rebuilds the five
models (plain 1x, 2x, 4x and both learned models, with their trained networks) and times
each on the same reference start (`simulated` time units in one jitted `hybrax.rollout`,
network included, compilation excluded), interleaved over ``--rounds`` rounds, keeping the
least disturbed round. Use ``--clock cpu`` with the process pinned to one core (``taskset
-c 0``) for CPU seconds of one core. Ratios are against ``plain_2x``.

    taskset -c 0 python benchmarks/workflow_costs.py RUN_FOLDER --clock cpu \
        [--rounds 7] [--time 1.0] [--decorrelation] [--figure] [--json OUT.json]

``--decorrelation`` also re-runs the learned models' forecasts on the run's held-out starts
(regenerated from its seed) and reports their decorrelation times with the current code
(a change of kernels changes float32 round-off, and the flow is chaotic); ``--figure``
writes the run's accuracy-cost figure with these costs as ``accuracy_cost_cpu.png``.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import _harness as H
import equinox as eqx
import jax

import hybrax
from hybrax.experiments import fv_learned_interpolation as fvli


class _Folder:
    """Where `fvli.plot_accuracy_cost` saves: the run folder (a new file only)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def save_figure(self, fig, name: str) -> Path:
        path = self.folder / name
        fig.savefig(path, dpi=120, bbox_inches="tight")
        return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a finished fv-learned-interpolation run folder")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--time", type=float, default=1.0, help="simulated time per call")
    parser.add_argument(
        "--figure",
        action="store_true",
        help="write accuracy_cost_cpu.png into the run folder: the run's accuracy-cost "
        "figure with these costs",
    )
    parser.add_argument(
        "--decorrelation",
        action="store_true",
        help="also re-measure the learned models' decorrelation times on the run's held-out "
        "forecasts with the current code (the stored ones come from the run)",
    )
    args, rest = parser.parse_known_args(argv)
    common = H.parse_args("workflow costs", rest)
    saved = fvli.load_run(args.run)
    s = saved.settings
    models = {
        name: (fvli.plain_stepper(s, factor), factor)
        for name, factor in (("plain_1x", 1), ("plain_2x", 2), ("plain_4x", 4))
    }
    models["interpolation_1x"] = (fvli.interpolation_stepper(saved.interpolation, s), 1)
    models["correction_1x"] = (
        fvli.correction_stepper(saved.correction, s, saved.velocity_scale),
        1,
    )
    # one reference start, face-averaged onto every grid
    one = s.replace(num_test_trajectories=1, test_starts=1, horizon=s.time_step())
    data = fvli.make_forecast_data(jax.random.key(1), one)
    calls = {}
    for name, (stepper, factor) in models.items():
        state = jax.tree.map(lambda x: x[0], fvli.start_on(data.starts, s, factor))
        steps = max(1, round(args.time / float(stepper.dt)))
        run = eqx.filter_jit(lambda st, x, n=steps: hybrax.rollout(st, x, n, save_every=None)[0])
        calls[name] = (functools.partial(run, stepper, state), steps * float(stepper.dt))
    stored = dict(saved.metrics["decorrelation_time"])
    if args.decorrelation:  # the run's own held-out forecasts (the workflow's key)
        test = fvli.make_forecast_data(jax.random.split(jax.random.key(s.seed), 5)[1], s)
        learned = {k: v for k, v in models.items() if k.endswith("_1x") and k != "plain_1x"}
        curves, _ = fvli.correlation_curves(learned, test, s)
        for name, t in fvli.decorrelation_times(curves, s)[1].items():
            print(f"{name}: decorrelation {t:.4f} now, {stored[name]:.4f} in the run")
            stored[name] = t
    seconds = H.interleaved_samples({k: v[0] for k, v in calls.items()}, args.rounds)
    case = f"fv-learned-interpolation {s.coarse_points}^2 ({args.run})"
    records = []
    for name, samples in seconds.items():
        per_time = min(samples) / calls[name][1]
        note = f"{stored[name]:.3f} time units to corr < {s.threshold}"
        records.append(H.Record(case, name, "s_per_time_unit", per_time, "s", note, common.clock))
    H.report(records, common.json, baseline={"s_per_time_unit": "plain_2x"})
    if args.figure:
        cost = {r.tool: r.value for r in records}
        unit = "CPU s of one core" if common.clock == "cpu" else "wall s"
        fvli.plot_accuracy_cost(
            _Folder(Path(args.run)),
            s,
            stored,
            cost,
            tuple(saved.run_info.get("censored", ())),
            xlabel=f"cost per simulated time unit ({unit}, one trajectory; workflow_costs.py)",
            filename="accuracy_cost_cpu.png",
        )
    H.write_environment(common.json)
    print(f"clock: {common.clock}; rounds: {args.rounds}", file=sys.stderr)


if __name__ == "__main__":
    main()
