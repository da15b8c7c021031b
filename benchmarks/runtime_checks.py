"""Cost of hybrax's run-time checks: ``rollout(check_finite=...)`` and traced parameter checks.

Per-step time of the same rollout with and without each check, on the configurations of the
other benchmarks:

(a) Kolmogorov flow 256² (Re 1000), ETDRK4 at Courant 0.5 for speed 7, float32
    (``benchmarks/fluids.py``);
(b) Lorenz-96 K=40, F=8, RK4 dt 0.01, float32: a 1,024-member ensemble (``jax.vmap`` over
    ``rollout``) and a single trajectory (``benchmarks/lorenz96.py``).

Variants per case:

- ``check_finite=False`` (the baseline), ``check_finite=True``;
- ``parameters traced``: the model and stepper are built inside the jitted function from
  traced ``viscosity``/``forcing`` and ``dt`` (so `hybrax.check_parameter`'s
  `equinox.error_if` checks and rollout's traced-``dt`` check are in the program),
  compared with ``parameters as arguments``: the same stepper built outside (checked once,
  on the host) and passed in as an argument, so the same values are traced but unchecked.
  Both with ``check_finite=False``.

Timings are the least disturbed of interleaved rounds (`_harness.interleaved_times`); the
overhead is ``checked / baseline - 1`` in percent. Run on one core for comparable numbers:
``taskset -c 0 python benchmarks/runtime_checks.py --json benchmarks/results/runtime_checks.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).parent))
import _harness as H

import hybrax
from hybrax.climate import Lorenz96
from hybrax.fluids import NavierStokes2D
from hybrax.grids import cfl_time_step

MAX_SPEED, COURANT = 7.0, 0.5
K, F, DT = 40, 8.0, 0.01


def as_arguments(stepper, fn):
    """``fn(stepper, state)`` jitted with the stepper's arrays as traced arguments (built
    and checked on the host once; no run-time checks in the program), and those arrays."""
    params, static = eqx.partition(stepper, eqx.is_array)
    return jax.jit(lambda p, s: fn(eqx.combine(p, static), s)), params


def kolmogorov_calls(n: int, steps: int) -> tuple[str, dict]:
    model = NavierStokes2D.kolmogorov(n)
    dt = float(cfl_time_step(model.grid, MAX_SPEED, COURANT))
    state = model.initial_state()
    stepper = hybrax.ETDRK4(model, dt)

    def run(check):
        fn = jax.jit(
            lambda s: hybrax.rollout(stepper, s, steps, save_every=None, check_finite=check)[0]
        )
        return lambda: fn(state)

    @jax.jit
    def traced(viscosity, dt, s):
        m = NavierStokes2D.kolmogorov(n, viscosity=viscosity)
        return hybrax.rollout(hybrax.ETDRK4(m, dt), s, steps, save_every=None, check_finite=False)[
            0
        ]

    viscosity = model.viscosity
    dt_array = jnp.asarray(dt, jnp.float32)
    arguments, params = as_arguments(
        hybrax.ETDRK4(model, dt_array),
        lambda stepper, s: hybrax.rollout(stepper, s, steps, save_every=None, check_finite=False)[
            0
        ],
    )
    calls = {
        "check_finite=False": run(False),
        "check_finite=True": run(True),
        "parameters as arguments": lambda: arguments(params, state),
        "parameters traced": lambda: traced(viscosity, dt_array, state),
    }
    return f"Kolmogorov {n}² ETDRK4 f32 ({steps} steps)", calls


def l96_ensemble_calls(members: int, steps: int) -> tuple[str, dict]:
    model = Lorenz96(K, F)
    keys = jax.random.split(jax.random.key(0), members)
    states = jax.vmap(lambda k: model.initial_state(k, dtype=jnp.float32))(keys)
    stepper = hybrax.RK4(model, DT)

    def run(check):
        fn = jax.jit(
            jax.vmap(
                lambda s: hybrax.rollout(stepper, s, steps, save_every=None, check_finite=check)[0]
            )
        )
        return lambda: fn(states)

    def ensemble(stepper, s):
        return jax.vmap(
            lambda x: hybrax.rollout(stepper, x, steps, save_every=None, check_finite=False)[0]
        )(s)

    traced = jax.jit(lambda forcing, dt, s: ensemble(hybrax.RK4(Lorenz96(K, forcing), dt), s))
    forcing, dt = jnp.float32(F), jnp.float32(DT)
    arguments, params = as_arguments(hybrax.RK4(Lorenz96(K, forcing), dt), ensemble)
    calls = {
        "check_finite=False": run(False),
        "check_finite=True": run(True),
        "parameters as arguments": lambda: arguments(params, states),
        "parameters traced": lambda: traced(forcing, dt, states),
    }
    return f"L96 K={K} {members} members RK4 f32 ({steps} steps)", calls


def l96_single_calls(steps: int) -> tuple[str, dict]:
    model = Lorenz96(K, F)
    state = model.initial_state(jax.random.key(0), dtype=jnp.float32)
    stepper = hybrax.RK4(model, DT)

    def run(check):
        fn = jax.jit(
            lambda s: hybrax.rollout(stepper, s, steps, save_every=None, check_finite=check)[0]
        )
        return lambda: fn(state)

    def one(stepper, s):
        return hybrax.rollout(stepper, s, steps, save_every=None, check_finite=False)[0]

    traced = jax.jit(lambda forcing, dt, s: one(hybrax.RK4(Lorenz96(K, forcing), dt), s))
    forcing, dt = jnp.float32(F), jnp.float32(DT)
    arguments, params = as_arguments(hybrax.RK4(Lorenz96(K, forcing), dt), one)
    calls = {
        "check_finite=False": run(False),
        "check_finite=True": run(True),
        "parameters as arguments": lambda: arguments(params, state),
        "parameters traced": lambda: traced(forcing, dt, state),
    }
    return f"L96 K={K} one trajectory RK4 f32 ({steps} steps)", calls


# (checked variant, its baseline)
PAIRS = (
    ("check_finite=True", "check_finite=False"),
    ("parameters traced", "parameters as arguments"),
)


def records_for(case: str, calls: dict, steps: int, rounds: int) -> list[H.Record]:
    seconds = H.interleaved_times(calls, rounds=rounds)
    records = [
        H.Record(case, name, "us_per_step", value / steps * 1e6, "us")
        for name, value in seconds.items()
    ]
    for checked, base in PAIRS:
        overhead = (seconds[checked] / seconds[base] - 1) * 100
        records.append(
            H.Record(case, checked, "overhead_percent", overhead, "%", note=f"vs {base}")
        )
    return records


def main(argv=None):
    args = H.parse_args(__doc__.splitlines()[0], argv)
    quick = args.quick
    rounds = 3 if quick else 9
    records = []
    n = 64 if quick else 256
    kol_steps = 20 if quick else 100
    for case, calls, steps in (
        (*kolmogorov_calls(n, kol_steps), kol_steps),
        (*l96_ensemble_calls(1024, 200 if quick else 1000), 200 if quick else 1000),
        (*l96_single_calls(2_000 if quick else 20_000), 2_000 if quick else 20_000),
    ):
        records += records_for(case, calls, steps, rounds)
    H.report(records, args.json, baseline={"us_per_step": "check_finite=False"})
    print("\noverhead of each check (least disturbed of interleaved rounds):")
    for r in records:
        if r.metric == "overhead_percent":
            print(f"  {r.case}: {r.tool} {r.value:+.2f}% ({r.note})")
    H.write_environment(args.json)


if __name__ == "__main__":
    main()
