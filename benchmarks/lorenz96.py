"""Lorenz-96 (K=40): ensemble throughput and reverse-mode memory, hybrax vs diffrax vs lax.scan.

(a) 1,024-member ensemble, RK4, float32: steps per second of
    - hybrax: ``jax.vmap`` over ``hybrax.rollout(RK4(Lorenz96), ...)``,
    - diffrax: classic RK4 (as a diffrax Butcher tableau; diffrax ships no classic RK4) in
      its fastest configuration, found first by trying, one option at a time around the
      best so far: the batched (1024, 40) state in one solve or ``jax.vmap`` over members;
      ``throw`` True/False; ``max_steps=n+1`` (a bounded loop that reverse mode can
      differentiate) or ``None`` (a plain ``lax.while_loop``, forward only); the RK stage
      loop's ``scan_kind`` (default or "lax"); ``ConstantStepSize`` or ``StepTo``. All
      with ``SaveAt(t1=True)`` under one ``jax.jit`` of the whole solve. Every tried
      configuration is recorded under "...: diffrax search" (``--no-search`` skips it),
    - scan: a hand-written RK4 step in ``lax.scan``, vmapped over members.
    Timed in interleaved rounds (best round, and the paired speed-up: the median over
    rounds of the per-round ratio). One trajectory is timed too.
(b) Gradient w.r.t. the forcing of a loss after a 10,000-step rollout: XLA's scratch memory
    (compiled memory analysis), the time relative to one forward run, and the gradient,
    for hybrax ``checkpoint=None`` / ``"sqrt"`` and each diffrax adjoint:
    RecursiveCheckpointAdjoint (default, and with sqrt(n) checkpoints) and
    BacksolveAdjoint. Over 100 time units the chaotic L96 gradient is ~1e16 and differs
    between methods by rounding alone; the memory and time columns are the point.

Run on one core for comparable numbers: ``taskset -c 0 python benchmarks/lorenz96.py``.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _harness as H

import hybrax
from hybrax.climate import Lorenz96

K, F, DT = 40, 8.0, 0.01


class ClassicRK4(diffrax.AbstractERK):
    """Classic RK4 expressed as a diffrax explicit Runge–Kutta tableau."""

    tableau = diffrax.ButcherTableau(
        c=np.array([0.5, 0.5, 1.0]),
        b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
        b_error=np.zeros(4),
        a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])),
    )
    interpolation_cls = diffrax.ThirdOrderHermitePolynomialInterpolation.from_k

    def order(self, terms):
        return 4


def l96(x):
    return (jnp.roll(x, -1, -1) - jnp.roll(x, 2, -1)) * jnp.roll(x, 1, -1) - x + F


def rk4_step(x):
    k1 = l96(x)
    k2 = l96(x + 0.5 * DT * k1)
    k3 = l96(x + 0.5 * DT * k2)
    k4 = l96(x + DT * k3)
    return x + DT / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def initial_ensemble(members, dtype=jnp.float32):
    model = Lorenz96(K, F)
    keys = jax.random.split(jax.random.key(0), members)
    states = jax.vmap(lambda k: model.initial_state(k, dtype=dtype))(keys)
    stepper = hybrax.RK4(model, DT)
    states, _ = jax.vmap(lambda s: hybrax.rollout(stepper, s, 500, save_every=None))(states)
    return states


@dataclasses.dataclass(frozen=True)
class DiffraxConfig:
    """One way of running classic RK4 in `diffrax.diffeqsolve` (all documented options that
    change the speed of a fixed-step solve, none that change the arithmetic)."""

    layout: str = "batched"  # "batched": one solve of the (members, K) state; "vmap": vmapped
    controller: str = "ConstantStepSize"  # or "StepTo" (the step times given up front)
    max_steps: str = "n+1"  # "n+1": bounded (reverse-differentiable) loop; "None": lax.while
    throw: bool = True  # False: no run-time error check at the end of the solve
    scan_kind: str = "default"  # RK stage loop: diffrax's default ("checkpointed") or "lax"

    def label(self) -> str:
        return (
            f"{self.layout} state, {self.controller}, max_steps={self.max_steps}, "
            f"throw={self.throw}, scan_kind={self.scan_kind}, SaveAt(t1=True), jit"
        )


def diffrax_solve(config: DiffraxConfig, n_steps: int):
    """A jitted function running ``n_steps`` RK4 steps of L96 with diffrax in ``config``."""
    solver = ClassicRK4() if config.scan_kind == "default" else ClassicRK4(scan_kind="lax")
    if config.controller == "StepTo":
        controller, dt0 = diffrax.StepTo(ts=np.arange(n_steps + 1) * DT), None
    else:
        controller, dt0 = diffrax.ConstantStepSize(), DT
    max_steps = n_steps + 1 if config.max_steps == "n+1" else None

    def solve(x):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(lambda t, y, args: l96(y)),
            solver,
            t0=0.0,
            t1=n_steps * DT,
            dt0=dt0,
            y0=x,
            saveat=diffrax.SaveAt(t1=True),
            stepsize_controller=controller,
            max_steps=max_steps,
            throw=config.throw,
        )
        return sol.ys[0]

    return jax.jit(solve if config.layout == "batched" else jax.vmap(solve))


def make_runners(n_steps, diffrax_config=None):
    model = Lorenz96(K, F)
    stepper = hybrax.RK4(model, DT)

    @jax.jit
    def run_hybrax(states):
        return jax.vmap(lambda s: hybrax.rollout(stepper, s, n_steps, save_every=None)[0])(states)

    @jax.jit
    def run_scan(x):
        def one(x0):
            return jax.lax.scan(lambda x, _: (rk4_step(x), None), x0, length=n_steps)[0]

        return jax.vmap(one)(x)

    run_diffrax = diffrax_solve(diffrax_config or DiffraxConfig(), n_steps)
    return run_hybrax, run_scan, run_diffrax


def diffrax_search(x, n_steps, repeat):
    """diffrax's fastest configuration for the ensemble, one option at a time around the best
    so far. Returns (best, {config: steps/s})."""
    tried: dict[DiffraxConfig, float] = {}

    def best_of(candidates):
        for c in candidates:
            if c not in tried:
                fn = diffrax_solve(c, n_steps)
                tried[c] = n_steps / H.time_call(lambda fn=fn: fn(x), repeat=repeat)
                print(f"  diffrax {c.label()}: {tried[c]:.4g} steps/s", file=sys.stderr)
        return max(candidates, key=tried.get)

    best = best_of([DiffraxConfig(layout=v) for v in ("batched", "vmap")])
    best = best_of([dataclasses.replace(best, throw=v) for v in (True, False)])
    best = best_of([dataclasses.replace(best, max_steps=v) for v in ("n+1", "None")])
    best = best_of([dataclasses.replace(best, scan_kind=v) for v in ("default", "lax")])
    best = best_of(
        [dataclasses.replace(best, controller=v) for v in ("ConstantStepSize", "StepTo")]
    )
    return best, tried


def ensemble_records(members, n_steps, repeat, search=True):
    states = initial_ensemble(members)
    x = states.u
    case = f"L96 K={K} ensemble {members}, RK4 f32"
    if search:
        best, tried = diffrax_search(x, n_steps, repeat)
    else:  # the fastest found on a CPU (see benchmarks/results/lorenz96.txt)
        best, tried = DiffraxConfig(throw=False), {}
    records = [
        H.Record(f"{case}: diffrax search", "diffrax", "steps_per_s", v, "steps/s", "", c.label())
        for c, v in tried.items()
    ]
    # The three must compute the same thing (over a horizon short enough that float32
    # rounding differences have not been amplified by the chaos).
    check_hybrax, check_scan, check_diffrax = make_runners(100, best)
    a, b, c = check_hybrax(states).u, check_scan(x), check_diffrax(x)
    scale = float(jnp.max(jnp.abs(a)))
    np.testing.assert_allclose(a, b, atol=1e-3 * scale)
    np.testing.assert_allclose(a, c, atol=1e-3 * scale)
    run_hybrax, run_scan, run_diffrax = make_runners(n_steps, best)
    samples = H.interleaved_samples(
        {
            "hybrax": lambda: run_hybrax(states),
            "diffrax": lambda: run_diffrax(x),
            "lax.scan+vmap": lambda: run_scan(x),
        },
        rounds=repeat,
    )
    configs = {
        "hybrax": "vmap over hybrax.rollout(RK4(Lorenz96)), jit",
        "diffrax": best.label(),
        "lax.scan+vmap": "hand-written RK4 step in lax.scan, vmap over members, jit",
    }
    for tool, values in samples.items():
        records.append(
            H.Record(
                case,
                tool,
                "steps_per_s",
                n_steps / min(values),
                "steps/s",
                f"best of {repeat} interleaved rounds",
                configs[tool],
            )
        )
    paired = float(np.median(np.array(samples["diffrax"]) / np.array(samples["hybrax"])))
    records.append(
        H.Record(case, "hybrax vs diffrax", "paired_speedup", paired, "ratio", "", best.label())
    )
    return records


def memory_records(n_steps, repeat):
    """Reverse mode through ``n_steps`` RK4 steps (gradient w.r.t. the forcing): XLA's
    scratch memory, time relative to one forward run, and the gradient itself, for hybrax
    with and without checkpointing and diffrax with each of its adjoints:
    RecursiveCheckpointAdjoint (its default, checkpoints chosen from max_steps; and with
    sqrt(n) checkpoints) and BacksolveAdjoint (O(1) memory: integrates the adjoint ODE
    backwards, which for a chaotic system over 100 Lyapunov times gives a different
    number; reported, not eligible as "best")."""
    state = initial_ensemble(1).u[0]
    case = f"grad through {n_steps} L96 steps f32"

    def hybrax_loss(forcing, checkpoint):
        m = Lorenz96(K, forcing)
        final, _ = hybrax.rollout(
            hybrax.RK4(m, DT),
            hybrax.ODEState(state),
            n_steps,
            save_every=None,
            checkpoint=checkpoint,
        )
        return jnp.sum(final.u**2)

    def diffrax_loss(adjoint):
        def loss(forcing):
            term = diffrax.ODETerm(
                lambda t, y, f: (jnp.roll(y, -1) - jnp.roll(y, 2)) * jnp.roll(y, 1) - y + f
            )
            sol = diffrax.diffeqsolve(
                term,
                ClassicRK4(),
                0.0,
                n_steps * DT,
                DT,
                state,
                args=forcing,
                max_steps=n_steps + 1,
                adjoint=adjoint,
            )
            return jnp.sum(sol.ys[-1] ** 2)

        return loss

    root = math.isqrt(n_steps)
    forcing = jnp.float32(F)
    records = []
    forward = jax.jit(lambda f: hybrax_loss(f, None))
    forward_seconds = H.time_call(lambda: forward(forcing), repeat=repeat)
    records.append(H.Record(case, "hybrax forward", "seconds", forward_seconds, "s"))
    variants = (
        ("hybrax plain", lambda f: hybrax_loss(f, None), "checkpoint=None"),
        ("hybrax sqrt", lambda f: hybrax_loss(f, "sqrt"), 'checkpoint="sqrt"'),
        (
            "diffrax recursive",
            diffrax_loss(diffrax.RecursiveCheckpointAdjoint()),
            "RecursiveCheckpointAdjoint() (default), max_steps=n+1",
        ),
        (
            "diffrax recursive sqrt",
            diffrax_loss(diffrax.RecursiveCheckpointAdjoint(checkpoints=root)),
            f"RecursiveCheckpointAdjoint(checkpoints={root}), max_steps=n+1",
        ),
        (
            "diffrax backsolve",
            diffrax_loss(diffrax.BacksolveAdjoint()),
            "BacksolveAdjoint(), max_steps=n+1",
        ),
    )
    for tool, loss, config in variants:
        grad = jax.jit(jax.grad(loss))
        _, compiled = H.compile_seconds(grad, forcing)
        records.append(
            H.Record(case, tool, "peak_bytes", H.temp_bytes(compiled), "bytes", "", config)
        )
        seconds = H.time_call(lambda g=compiled: g(forcing), repeat=repeat)
        records.append(
            H.Record(
                case, tool, "grad_over_forward", seconds / forward_seconds, "ratio", "", config
            )
        )
        records.append(
            H.Record(case, tool, "gradient", float(compiled(forcing)), "", "d loss / d F", config)
        )
    return records


def single_records(n_steps, repeat):
    model = Lorenz96(K, F)
    stepper = hybrax.RK4(model, DT)
    state = initial_ensemble(1)
    state = jax.tree.map(lambda v: v[0], state)
    run = jax.jit(lambda s: hybrax.rollout(stepper, s, n_steps, save_every=None)[0])
    scan = jax.jit(lambda x: jax.lax.scan(lambda x, _: (rk4_step(x), None), x, length=n_steps)[0])
    case = f"L96 K={K} one trajectory, RK4 f32"
    records = []
    samples = H.interleaved_samples(
        {"hybrax": lambda: run(state), "lax.scan": lambda: scan(state.u)}, rounds=repeat
    )
    for tool, values in samples.items():
        records.append(H.Record(case, tool, "steps_per_s", n_steps / min(values), "steps/s"))
    return records


def main(argv=None):
    import argparse

    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument(
        "--no-search",
        action="store_true",
        help="skip the search over diffrax options; use the fastest found on a CPU",
    )
    known, rest = extra.parse_known_args(argv)
    args = H.parse_args(__doc__.splitlines()[0], rest)
    repeat = 3 if args.quick else 5
    records = ensemble_records(
        1024, 200 if args.quick else 1000, repeat, search=not known.no_search
    )
    records += single_records(2_000 if args.quick else 20_000, repeat)
    records += memory_records(2_000 if args.quick else 10_000, repeat)
    H.report(
        records,
        args.json,
        baseline={"peak_bytes": "hybrax sqrt", "grad_over_forward": "hybrax sqrt"},
    )
    H.write_environment(args.json)
    return records


if __name__ == "__main__":
    main()
