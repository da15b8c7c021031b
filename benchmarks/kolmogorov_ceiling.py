"""How much of plain 2x's lead in ``kolmogorov-correction`` is the information it starts from.

In the workflow every plain model starts from the reference coarse-grained to ITS OWN band
(the 2/3-rule band ``|n| < N / 3`` of its grid), so plain 2x starts from twice the
resolution of initial data that a 32² hybrid sees. This script builds the workflow's
held-out forecasts with its own functions and settings (`make_forecast_data` with the
same key as `run`: ``split(key(seed), 4)[1]``; FULL, or QUICK with ``--quick``) and
measures the decorrelation time (mean correlation over the forecasts below ``threshold``,
`decorrelation_times`, on the coarse band) of

- every plain model (1x, 2x, 4x) started from its own band and from the coarse (1x) band,
  zero-filled above it (`hybrax.grids.resample`);
- the reference solver itself (``reference_factor`` x, `reference_stepper`) started from
  the bands in ``--reference-bands`` (default the 1x, 2x and 4x bands), zero-filled
  likewise.

The reference from the 1x band is the ceiling of any model that starts from the coarse band
and does not reconstruct the unresolved scales: the exact equations, given only what a
coarse model sees. The reference is expensive (256² with 32 fine steps per coarse step on
the FULL settings: about 4 minutes per band on 2 cores), so ``--reference-horizon`` may cut
it shorter than the workflow's ``horizon`` (the default); a run still correlated at its
horizon is reported at the horizon and marked censored (``+``).

    nice -n 5 python benchmarks/kolmogorov_ceiling.py \
        --json benchmarks/results/workflows/kolmogorov-correction/ceiling.json
    python benchmarks/kolmogorov_ceiling.py --quick          # seconds, a smoke run
    python benchmarks/kolmogorov_ceiling.py --run RUN_DIR    # a finished run's forecasts
"""

from __future__ import annotations

import argparse
import sys
import time

import _harness as H
import equinox as eqx
import jax
import numpy as np

import hybrax
from hybrax.experiments import kolmogorov_correction as kc
from hybrax.fluids import vorticity_correlation
from hybrax.grids import SpectralState, resample

PLAIN = (1, 2, 4)


def band_limited(starts: SpectralState, s: kc.CorrectionSettings, band: int, factor: int):
    """The forecast starts (on the 4x band) coarse-grained to the band of the grid ``band``
    times the coarse one, zero-filled onto the grid ``factor`` times the coarse one."""
    field = kc.start_on(starts, s, band).field_hat
    return SpectralState(resample(field, s.grid(band), s.grid(factor)), starts.time)


@eqx.filter_jit
def _reference_forecasts(s, starts: SpectralState, steps: int):
    """The reference solver from each start for ``steps`` coarse steps, on the coarse band."""
    stepper, sub = kc.reference_stepper(s), s.reference_substeps
    observe = kc.band_observer(s, s.reference_factor)

    def one(state):
        return hybrax.rollout(stepper, state, steps * sub, save_every=sub, observe=observe)[1]

    return jax.vmap(one)(starts).field_hat


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=None, help="use a finished run's forecasts (load_run)")
    parser.add_argument(
        "--reference-bands",
        type=lambda text: tuple(int(v) for v in text.split(",")),
        default=(1, 2, 4),
        help="bands (factors of the coarse grid, among 1,2,4) to start the reference from",
    )
    parser.add_argument(
        "--reference-horizon",
        type=float,
        default=None,
        help="time units to follow the reference for (default: the settings' horizon)",
    )
    args, rest = parser.parse_known_args(argv)
    common = H.parse_args("kolmogorov-correction information ceiling", rest)
    t0 = time.perf_counter()
    if args.run is not None:
        saved = kc.load_run(args.run)
        s, data, source = saved.settings, saved.forecast_data, f"run {args.run}"
    else:
        s = kc.QUICK if common.quick else kc.FULL
        keys = jax.random.split(jax.random.key(s.seed), 4)  # as in kc.run: keys[1] = forecasts
        data = jax.block_until_ready(kc.make_forecast_data(keys[1], s))
        source = "QUICK" if common.quick else "FULL"
    finest = data.starts.field_hat.shape[-2] // s.coarse_points
    bad = [b for b in args.reference_bands if b not in PLAIN]
    if bad:
        parser.error(f"--reference-bands: {bad} given, each must be one of {PLAIN}")
    n = data.starts.time.shape[0]
    print(f"forecast data ({source}, {n} forecasts): {time.perf_counter() - t0:.0f} s", flush=True)

    results = {}  # (solver, band) -> (time, censored, per-forecast)

    def record(correlations: dict[str, np.ndarray], band: int) -> None:
        _, decorrelation, censored, per_forecast = kc.decorrelation_times(correlations, s)
        for name in correlations:
            results[name, band] = (decorrelation[name], name in censored, per_forecast[name])
            print(
                f"  {name} from the {s.coarse_points * band}² band: "
                f"{decorrelation[name]:.3f}  ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )

    for band in sorted({1, *PLAIN}):
        models = {f"plain_{f}x": (kc.plain_stepper(s, f), f) for f in PLAIN if band in (1, f)}
        # starts zero-filled onto the 4x band: `correlation_curves` coarse-grains them to
        # each model's grid (`start_on`), which keeps exactly the ``band`` band.
        starts = band_limited(data.starts, s, band, finest)
        correlations, _ = kc.correlation_curves(models, kc.ForecastData(starts, data.targets), s)
        record(correlations, band)

    steps = data.targets.field_hat.shape[1]
    if args.reference_horizon is not None:
        steps = min(s.steps(args.reference_horizon), steps)
    truth = s.grid(1).to_physical(data.targets.field_hat[:, :steps])
    for band in args.reference_bands:
        starts = band_limited(data.starts, s, band, s.reference_factor)
        predicted = s.grid(1).to_physical(_reference_forecasts(s, starts, steps))
        record({"reference": np.asarray(vorticity_correlation(predicted, truth))}, band)

    solvers = [f"plain_{f}x" for f in PLAIN] + ["reference"]
    bands = sorted({b for _, b in results})
    grids = {name: s.coarse_points * f for name, f in zip(solvers, PLAIN, strict=False)}
    grids["reference"] = s.coarse_points * s.reference_factor
    horizon = {"reference": steps * s.time_step(1)}
    case = f"kolmogorov-correction {source} {s.coarse_points}² ({n} forecasts)"
    records = []
    for (name, band), (value, cut, per) in results.items():
        own = "own band" if name != "reference" and grids[name] == s.coarse_points * band else ""
        note = "; ".join(
            x
            for x in (
                own,
                f"censored at horizon {horizon.get(name, s.horizon):g}" if cut else "",
                f"per forecast {min(per):.2f}-{max(per):.2f}",
            )
            if x
        )
        start = f"start on {s.coarse_points * band}² band"
        records.append(
            H.Record(f"{case}: {start}", name, "decorrelation_time", value, "time", note, "")
        )
    H.report(
        records,
        common.json,
        baseline={"decorrelation_time": "plain_2x"},
        higher_is_better=("decorrelation_time",),
    )
    H.write_environment(common.json)

    print(f"\ndecorrelation time (corr < {s.threshold}, mean of {n} forecasts, model time units)")
    print(
        f"{'solver':<12} {'grid':>6}  "
        + "  ".join(f"{f'from {s.coarse_points * b}² band':>16}" for b in bands)
    )
    for name in solvers:
        cells = []
        for b in bands:
            if (name, b) in results:
                value, cut, _ = results[name, b]
                cells.append(f"{value:>15.3f}{'+' if cut else ' '}")
            else:
                cells.append(f"{'-':>16}")
        print(f"{name:<12} {grids[name]:>5}²  " + "  ".join(cells))
    print(
        "(+: still correlated at the horizon, a lower bound; ratio column: plain_2x's time "
        "over the solver's)",
        file=sys.stderr,
    )
    print(f"total {time.perf_counter() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
