"""Lorenz-96 (K=40): ensemble throughput and reverse-mode memory, hybrax vs diffrax vs lax.scan.

(a) 1,024-member ensemble, RK4, float32: steps per second of
    - hybrax: ``jax.vmap`` over ``hybrax.rollout(RK4(Lorenz96), ...)``,
    - diffrax: classic RK4 (as a diffrax Butcher tableau) on the batched (1024, 40) state,
    - scan: a hand-written RK4 step in ``lax.scan``, vmapped over members.
    One trajectory is timed too.
(b) Gradient of a loss after a 10,000-step rollout: XLA's scratch memory for
    ``checkpoint=None`` vs ``"sqrt"`` (compiled memory analysis) and diffrax's
    RecursiveCheckpointAdjoint; and the time of the gradient relative to the forward run.

Run on one core for comparable numbers: ``taskset -c 0 python benchmarks/lorenz96.py``.
"""

from __future__ import annotations

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


def make_runners(n_steps):
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

    @jax.jit
    def run_diffrax(x):
        term = diffrax.ODETerm(lambda t, y, args: l96(y))
        sol = diffrax.diffeqsolve(
            term,
            ClassicRK4(),
            t0=0.0,
            t1=n_steps * DT,
            dt0=DT,
            y0=x,
            saveat=diffrax.SaveAt(t1=True),
            max_steps=n_steps + 1,
        )
        return sol.ys[0]

    return run_hybrax, run_scan, run_diffrax


def ensemble_records(members, n_steps, repeat):
    states = initial_ensemble(members)
    x = states.u
    # The three must compute the same thing (over a horizon short enough that float32
    # rounding differences have not been amplified by the chaos).
    check_hybrax, check_scan, check_diffrax = make_runners(100)
    a, b, c = check_hybrax(states).u, check_scan(x), check_diffrax(x)
    scale = float(jnp.max(jnp.abs(a)))
    np.testing.assert_allclose(a, b, atol=1e-3 * scale)
    np.testing.assert_allclose(a, c, atol=1e-3 * scale)
    run_hybrax, run_scan, run_diffrax = make_runners(n_steps)
    case = f"L96 K={K} ensemble {members}, RK4 f32"
    records = []
    for tool, fn, arg in (
        ("hybrax", run_hybrax, states),
        ("diffrax", run_diffrax, x),
        ("lax.scan+vmap", run_scan, x),
    ):
        seconds = H.time_call(lambda fn=fn, arg=arg: fn(arg), repeat=repeat)
        records.append(H.Record(case, tool, "steps_per_s", n_steps / seconds, "steps/s"))
    return records


def memory_records(n_steps, repeat):
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

    def diffrax_loss(forcing):
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
            adjoint=diffrax.RecursiveCheckpointAdjoint(),
        )
        return jnp.sum(sol.ys[-1] ** 2)

    forcing = jnp.float32(F)
    records = []
    forward = jax.jit(lambda f: hybrax_loss(f, None))
    forward_seconds = H.time_call(lambda: forward(forcing), repeat=repeat)
    records.append(H.Record(case, "hybrax forward", "seconds", forward_seconds, "s"))
    for tool, loss in (
        ("hybrax plain", lambda f: hybrax_loss(f, None)),
        ("hybrax sqrt", lambda f: hybrax_loss(f, "sqrt")),
        ("diffrax recursive", diffrax_loss),
    ):
        grad = jax.jit(jax.grad(loss))
        _, compiled = H.compile_seconds(grad, forcing)
        records.append(H.Record(case, tool, "peak_bytes", H.temp_bytes(compiled), "bytes"))
        seconds = H.time_call(lambda g=compiled: g(forcing), repeat=repeat)
        records.append(
            H.Record(case, tool, "grad_over_forward", seconds / forward_seconds, "ratio")
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
    for tool, fn, arg in (("hybrax", run, state), ("lax.scan", scan, state.u)):
        seconds = H.time_call(lambda fn=fn, arg=arg: fn(arg), repeat=repeat)
        records.append(H.Record(case, tool, "steps_per_s", n_steps / seconds, "steps/s"))
    return records


def main(argv=None):
    args = H.parse_args(__doc__.splitlines()[0], argv)
    repeat = 3 if args.quick else 5
    records = ensemble_records(1024, 200 if args.quick else 1000, repeat)
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
