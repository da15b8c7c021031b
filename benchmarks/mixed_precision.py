"""Mixed precision in the Kolmogorov-flow hybrid: speed and accuracy of each precision policy.

The hybrid of the ``kolmogorov-correction`` workflow (coarse ETDRK4 Kolmogorov-flow solver +
periodic-CNN vorticity correction, `hybrax.hybrid.Corrected`) under four policies,
written solver dtype / network compute dtype:

- ``f32/f32``: everything float32 (the workflow's default; the baseline of the ratios);
- ``f32/bf16``: `hybrax.MixedPrecision` (net, bfloat16): master weights float32, the
  network's arithmetic in bfloat16, its output cast back to float32;
- ``f64/f32``: a float64 solver with the network computing in float32
  (``MixedPrecision(net, float32, master_dtype=float64)``);
- ``f64/f64``: everything float64.

Cases
(a) ``hybrid step``: ms per coarse step of one trajectory (a jitted `hybrax.rollout`,
    compilation excluded, minimum over interleaved rounds); also the plain coarse solver.
(b) ``network``: ms per call of the correction network alone, inside a `jax.lax.scan`
    (as in a rollout).
(c) ``training step``: seconds per optimizer step (gradient of the unrolled loss through the
    solver, batch and unroll of the run's last curriculum stage) for ``f32/f32`` and
    ``f32/bf16``.
(d) ``decorrelation``: time until the vorticity correlation with the reference falls below
    0.95 on the held-out forecasts, for the *same trained weights* (trained in float32)
    evaluated under every policy; and for a correction *trained* under ``f32/bf16`` from
    the same initial weights, data and curriculum.

The trained run comes from ``--run-dir`` (a finished ``hybrax run kolmogorov-correction``
output folder: weights, settings and reference data). Without it the workflow is run
first, at its ``--quick`` size with ``--quick``, else at full size (about an hour on 2
cores). Timings are machine-dependent: on a CPU without native bfloat16 arithmetic the
bfloat16 policy is expected to be *slower* (conversions, no vector units for it).

``python benchmarks/mixed_precision.py [--quick] [--json PATH] [--run-dir DIR]``
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)  # the f64 policies; every f32 path is explicit

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import _harness as H  # noqa: E402

import hybrax  # noqa: E402
from hybrax.core import cast_floating  # noqa: E402
from hybrax.experiments import kolmogorov_correction as kc  # noqa: E402
from hybrax.fluids import decorrelation_time  # noqa: E402
from hybrax.grids import SpectralState  # noqa: E402

POLICIES = {  # name: (solver dtype, compute dtype)
    "f32/f32": (jnp.float32, jnp.float32),
    "f32/bf16": (jnp.float32, jnp.bfloat16),
    "f64/f32": (jnp.float64, jnp.float32),
    "f64/f64": (jnp.float64, jnp.float64),
}


def policy_net(net, policy: str):
    """The trained network under ``policy``: master weights in the solver dtype, arithmetic
    in the compute dtype (a plain network when the two agree)."""
    solver, compute = POLICIES[policy]
    if solver == compute:
        return cast_floating(net, solver)
    return hybrax.MixedPrecision(net, compute, master_dtype=solver)


def policy_settings(settings: kc.CorrectionSettings, policy: str) -> kc.CorrectionSettings:
    return dataclasses.replace(settings, dtype=jnp.dtype(POLICIES[policy][0]).name)


def cast_state(state: SpectralState, dtype) -> SpectralState:
    complex_dtype = jnp.complex128 if jnp.dtype(dtype) == jnp.float64 else jnp.complex64
    return SpectralState(state.field_hat.astype(complex_dtype), state.time.astype(dtype))


def cast_forecasts(data: kc.ForecastData, dtype) -> kc.ForecastData:
    return kc.ForecastData(cast_state(data.starts, dtype), cast_state(data.targets, dtype))


def step_records(saved: kc.SavedRun, n_steps: int, rounds: int) -> list[H.Record]:
    """(a) ms per hybrid step and (b) ms per network call, for every policy."""
    settings = saved.settings
    start = jax.tree.map(lambda x: x[0], saved.forecast_data.starts)
    rollout = eqx.filter_jit(lambda s, x: hybrax.rollout(s, x, n_steps, save_every=None)[0])
    features = kc.FlowFeatures(settings.grid(1), settings.velocity_inputs)

    @eqx.filter_jit
    def network_loop(net, fields):
        def body(x, _):
            out = net(x)
            return x.at[0].add(1e-3 * out), None

        return jax.lax.scan(body, fields, None, length=n_steps)[0]

    steps, nets = {}, {}
    for policy in POLICIES:
        p_settings = policy_settings(settings, policy)
        dtype = POLICIES[policy][0]
        state = kc.start_on(cast_state(start, dtype), p_settings, 1)
        hybrid = kc.hybrid_stepper(policy_net(saved.net, policy), p_settings)
        steps[policy] = lambda h=hybrid, s=state: rollout(h, s)
        fields = features(state)
        net = policy_net(saved.net, policy)
        nets[policy] = lambda n=net, f=fields: network_loop(n, f)
    plain_settings = policy_settings(settings, "f32/f32")
    plain_state = kc.start_on(cast_state(start, jnp.float32), plain_settings, 1)
    plain = kc.plain_stepper(plain_settings, 1)
    steps["plain solver f32"] = lambda: rollout(plain, plain_state)
    seconds = H.interleaved_times(
        {**{("step", k): v for k, v in steps.items()}, **{("net", k): v for k, v in nets.items()}},
        rounds,
        min_time=0.0,  # each call is a whole rollout: one per sample
    )
    n = settings.coarse_points
    records = []
    for (kind, tool), value in seconds.items():
        case = f"hybrid step {n}^2" if kind == "step" else f"network alone {n}^2 (in scan)"
        records.append(H.Record(case, tool, "ms_per_step", 1e3 * value / n_steps, "ms"))
    return records


def training_step_records(saved: kc.SavedRun, rounds: int) -> list[H.Record]:
    """(c) seconds per optimizer step (value and gradient of the unrolled loss + Adam)."""
    import optax

    settings = dataclasses.replace(saved.settings, dtype="float32")
    unroll, _ = settings.stages[-1]
    train = cast_state(saved.training_data, jnp.float32)
    windows = hybrax.hybrid.sliding_windows(train, unroll + 1, stride=settings.window_stride)
    batch = jax.tree.map(lambda x: x[: settings.batch_size], windows)
    loss = hybrax.hybrid.UnrolledLoss(unroll)
    optimizer = optax.adam(1e-4)
    calls = {}
    for policy in ("f32/f32", "f32/bf16"):
        model = kc.hybrid_stepper(policy_net(saved.net, policy), settings)
        params, static = eqx.partition(model, eqx.is_inexact_array)
        with jax.numpy_dtype_promotion("standard"):
            opt_state = optimizer.init(params)

        @eqx.filter_jit
        def update(params, opt_state, static=static):
            value, grads = jax.value_and_grad(lambda p: loss(eqx.combine(p, static), batch))(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, value

        calls[policy] = lambda u=update, p=params, o=opt_state: u(p, o)
    seconds = H.interleaved_times(calls, rounds, min_time=0.0)
    case = f"training step (unroll {unroll}, batch {settings.batch_size})"
    return [H.Record(case, tool, "seconds", value, "s") for tool, value in seconds.items()]


def decorrelation(settings, net, data: kc.ForecastData, policy: str) -> float:
    p_settings = policy_settings(settings, policy)
    data = cast_forecasts(data, POLICIES[policy][0])
    hybrid = kc.hybrid_stepper(policy_net(net, policy), p_settings)
    correlations, _ = kc.correlation_curves({"hybrid": (hybrid, 1)}, data, p_settings)
    times = np.arange(1, data.targets.field_hat.shape[1] + 1) * settings.time_step(1)
    return decorrelation_time(times, correlations["hybrid"].mean(axis=0), settings.threshold)[0]


def accuracy_records(saved: kc.SavedRun, train_bf16: bool) -> list[H.Record]:
    """(d) decorrelation time of the same weights under every policy, and of a correction
    trained under f32/bf16."""
    settings = saved.settings
    case = "decorrelation (same float32-trained weights)"
    records = []
    for policy in POLICIES:
        value = decorrelation(settings, saved.net, saved.forecast_data, policy)
        records.append(H.Record(case, policy, "decorrelation_time", value, "time units"))
    plain = saved.metrics["decorrelation_time"]
    for name in ("plain_1x", "plain_2x"):
        records.append(
            H.Record(case, f"{name} (run)", "decorrelation_time", plain[name], "time units")
        )
    if train_bf16:
        f32 = dataclasses.replace(settings, dtype="float32")
        train = cast_state(saved.training_data, jnp.float32)
        keys = jax.random.split(jax.random.key(f32.seed), 4)
        fresh = kc.VorticityCorrection.build(
            f32, saved.net.input_scales, saved.net.output_scale, keys[2]
        )
        start = time.perf_counter()
        trained = kc.train_correction(
            hybrax.MixedPrecision(fresh, jnp.bfloat16), train, f32, keys[3]
        )
        wall = time.perf_counter() - start
        net = trained.model.net.net  # the master float32 weights
        case = "decorrelation (trained under f32/bf16)"
        for policy in ("f32/f32", "f32/bf16"):
            value = decorrelation(settings, net, saved.forecast_data, policy)
            records.append(H.Record(case, policy, "decorrelation_time", value, "time units"))
        records.append(H.Record("training wall time", "f32/bf16", "seconds", wall, "s"))
        records.append(
            H.Record(
                "training wall time",
                "f32/f32",
                "seconds",
                saved.run_info["training_wall_time_s"],
                "s",
                note="measured in the workflow run",
            )
        )
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI size (trains a quick run)")
    parser.add_argument("--json", type=str, default=None, help="write records to this path")
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="a finished kolmogorov-correction run to evaluate",
    )
    parser.add_argument(
        "--no-bf16-training", action="store_true", help="skip training a correction under f32/bf16"
    )
    args = parser.parse_args(argv)
    run_dir = args.run_dir
    if run_dir is None:
        run_dir = Path(tempfile.mkdtemp(prefix="hybrax-mixed-precision-"))
        settings = dataclasses.replace(kc.QUICK if args.quick else kc.FULL, dtype="float32")
        print(
            f"training a {'quick' if args.quick else 'full'} run in {run_dir} ...", file=sys.stderr
        )
        kc.run(settings, run_dir, progress=False)
    saved = kc.load_run(run_dir)
    rounds = 3 if args.quick else 5
    records = step_records(saved, 100 if args.quick else 400, rounds)
    records += training_step_records(saved, rounds)
    records += accuracy_records(saved, train_bf16=not args.no_bf16_training)
    H.report(
        records,
        args.json,
        baseline={
            "ms_per_step": "f32/f32",
            "seconds": "f32/f32",
            "decorrelation_time": "f32/f32",
        },
        higher_is_better=("decorrelation_time",),
    )
    H.write_environment(args.json)
    return records


if __name__ == "__main__":
    main()
