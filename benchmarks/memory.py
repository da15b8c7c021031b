"""Memory-bounded gradients at scale: d(loss)/d(viscosity) after a long Navier–Stokes rollout.

Kolmogorov flow at 128^2 (float32, dt at Courant 0.5 for speed 7, so 10,000 steps are 35
time units), gradient of the final enstrophy-like loss with respect to the viscosity through
10,000 steps (1,000 with --quick, at 64^2), starting from a Re-1000 turbulent state:

- hybrax RK4 with ``checkpoint="sqrt"`` (nested scans, ~2 sqrt(n) stored states),
- hybrax ETDRK4 with ``checkpoint="sqrt"``,
- hybrax RK4 without checkpointing (every step's intermediates stored; its memory is read
  from the compiled program and it is only run when that fits in ``--max-gib``),
- the same RK4 right-hand side through `diffrax.diffeqsolve` with each of diffrax's
  adjoints that fit: `diffrax.RecursiveCheckpointAdjoint` as default (checkpoints chosen
  from ``max_steps``: online treeverse, O(log n) stored states) and with
  ``checkpoints=sqrt(n)`` (100 stored states: less recomputation), and
  `diffrax.BacksolveAdjoint` (O(1) memory: integrates the adjoint ODE backwards in time,
  which for a viscous flow runs the diffusion backwards; reported with its gradient so it
  can be judged). DirectAdjoint stores every step like "plain" and is not run.

Reported: XLA's scratch memory of each compiled gradient (``temp_size_in_bytes``), its wall
time, and the time of one forward rollout, so the price of rematerialisation is visible;
also the gradient itself and the relative spread of the RK4 variants (same arithmetic,
different recomputation), which checks that all compute the same derivative.

The viscosity at which the gradient is taken (``--viscosity``, default 0.05) makes the flow
decay from the turbulent start towards the laminar Kolmogorov state: the cost per step is
that of any viscosity (same grid, same dt), but the derivative over 35 time units is well
conditioned. At Re 1000 (viscosity 1e-3) it is not: the flow is chaotic, the adjoint grows
like exp(35 lambda), and float32 rounding differences between the variants reach 100 % of
the gradient (measured: relative spread 1.0), which says nothing about the methods.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _harness as H
from lorenz96 import ClassicRK4

import hybrax
from hybrax.fluids import NavierStokes2D
from hybrax.grids import cfl_time_step


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", default=None)
    parser.add_argument("--max-gib", type=float, default=12.0, help="largest run allowed")
    parser.add_argument(
        "--viscosity", type=float, default=0.05, help="viscosity of the differentiated run"
    )
    parser.add_argument("--clock", choices=tuple(H.CLOCKS), default="wall", help="timer")
    parser.add_argument(
        "--memory-only",
        action="store_true",
        help="compile and report XLA's memory analysis only (no gradient runs, no timings)",
    )
    args = parser.parse_args(argv)
    H.set_clock(args.clock)

    size, n_steps = (64, 1_000) if args.quick else (128, 10_000)
    base = NavierStokes2D.kolmogorov(size)
    dt = float(cfl_time_step(base.grid, 7.0, 0.5))
    start = base.initial_state(jax.random.key(0), dtype=jnp.float32)
    start, _ = hybrax.rollout(hybrax.ETDRK4(base, dt), start, 200, save_every=None)

    def model_with(viscosity):
        return NavierStokes2D(base.grid, viscosity, base.drag, base.forcing)

    def loss_hybrax(method, checkpoint):
        def loss(viscosity):
            stepper = method(model_with(viscosity), dt)
            final, _ = hybrax.rollout(
                stepper, start, n_steps, save_every=None, checkpoint=checkpoint
            )
            return jnp.sum(jnp.abs(final.field_hat) ** 2)

        return loss

    # diffrax works on the real and imaginary parts (its complex support is "a work in
    # progress", and BacksolveAdjoint fails on a complex state)
    def to_real(z):
        return jnp.stack([z.real, z.imag])

    def to_complex(y):
        return jax.lax.complex(y[0], y[1])

    def loss_diffrax(adjoint):
        def loss(viscosity):
            def vector_field(t, y, viscosity):
                model = model_with(viscosity)
                state = hybrax.grids.SpectralState(to_complex(y), t)
                return to_real(model.tendency(state, t).field_hat)

            solution = diffrax.diffeqsolve(
                diffrax.ODETerm(vector_field),
                ClassicRK4(),
                0.0,
                n_steps * dt,
                dt,
                to_real(start.field_hat),
                args=viscosity,  # BacksolveAdjoint differentiates w.r.t. args only
                max_steps=n_steps + 1,
                adjoint=adjoint,
            )
            return jnp.sum(solution.ys[-1] ** 2)

        return loss

    viscosity = jnp.float32(args.viscosity)
    case = f"grad through {n_steps} Kolmogorov steps {size}^2 f32, nu {args.viscosity:g}"
    records = []
    forward = jax.jit(
        lambda v: hybrax.rollout(hybrax.RK4(model_with(v), dt), start, n_steps, save_every=None)[0]
    )
    if not args.memory_only:
        records.append(
            H.Record(
                case,
                "RK4 forward only",
                "seconds",
                H.time_call(lambda: forward(viscosity), repeat=1, min_time=0),
                "s",
            )
        )
    gradients = {}
    root = math.isqrt(n_steps)
    variants = (
        ("hybrax RK4 sqrt", loss_hybrax(hybrax.RK4, "sqrt"), 'RK4, checkpoint="sqrt"'),
        ("hybrax ETDRK4 sqrt", loss_hybrax(hybrax.ETDRK4, "sqrt"), 'ETDRK4, checkpoint="sqrt"'),
        ("hybrax RK4 plain", loss_hybrax(hybrax.RK4, None), "RK4, checkpoint=None"),
        (
            "diffrax RK4 recursive",
            loss_diffrax(diffrax.RecursiveCheckpointAdjoint()),
            "RecursiveCheckpointAdjoint() (default: checkpoints from max_steps=n+1)",
        ),
        (
            "diffrax RK4 recursive sqrt",
            loss_diffrax(diffrax.RecursiveCheckpointAdjoint(checkpoints=root)),
            f"RecursiveCheckpointAdjoint(checkpoints={root}), max_steps=n+1",
        ),
        (
            "diffrax RK4 backsolve",
            loss_diffrax(diffrax.BacksolveAdjoint()),
            "BacksolveAdjoint(), max_steps=n+1",
        ),
    )
    for tool, loss, config in variants:
        compile_s, compiled = H.compile_seconds(jax.jit(jax.grad(loss)), viscosity)
        need = H.temp_bytes(compiled)
        records.append(H.Record(case, tool, "peak_bytes", need, "bytes", "", config))
        records.append(H.Record(case, tool, "compile_seconds", compile_s, "s", "", config))
        if args.memory_only:
            continue
        if need > args.max_gib * 2**30:
            records.append(
                H.Record(case, tool, "seconds", float("nan"), "s", "not run: too big", config)
            )
            continue
        seconds = H.time_call(lambda c=compiled: c(viscosity), repeat=1, min_time=0)
        records.append(H.Record(case, tool, "seconds", seconds, "s", "", config))
        gradients[tool] = float(compiled(viscosity))
        records.append(H.Record(case, tool, "gradient", gradients[tool], "", "", config))
    values = np.array(
        [gradients[t] for t in gradients if "RK4" in t and "ETD" not in t and "backsolve" not in t]
    )
    if len(values) > 1:
        spread = float(np.max(np.abs(values - values[0])) / abs(values[0]))
        records.append(H.Record(case, "RK4 variants", "gradient_relative_spread", spread, ""))
        if "diffrax RK4 backsolve" in gradients:
            error = abs(gradients["diffrax RK4 backsolve"] - values[0]) / abs(values[0])
            records.append(
                H.Record(
                    case,
                    "diffrax RK4 backsolve",
                    "gradient_relative_error",
                    error,
                    "",
                    "against the RK4 variants that store or recompute the forward states",
                    "BacksolveAdjoint(), max_steps=n+1",
                )
            )
    H.report(
        records, args.json, baseline={"peak_bytes": "hybrax RK4 sqrt", "seconds": "hybrax RK4 sqrt"}
    )
    H.write_environment(args.json)
    return records


if __name__ == "__main__":
    main()
