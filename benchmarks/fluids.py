"""Spectral fluids: hybrax vs jax-cfd vs exponax, against the FFT floor, float32.

(a) 2D Kolmogorov flow (Re 1000, Kochkov et al. 2021) at 64², 256², 512², all tools at the
    same dt (Courant 0.5 for speed 7), from the same vorticity:
    - hybrax ETDRK4 and CrankNicolsonRK4 (``hybrax.rollout`` of a prepared stepper),
    - jax-cfd spectral ``crank_nicolson_rk4`` on ``ForcedNavierStokes2D`` (same CN-RK4),
    - exponax ``KolmogorovFlowVorticity`` with ``order=4`` (ETDRK4) stepped in Fourier
      space (``step_fourier``, its fastest path).
    Reported: ms per step, steps/s, FFTs per step (counted in each tool's compiled HLO,
    batched transforms counted per field) and the FFT floor: each FFT op of the step costs
    half an rfft2+irfft2 pair of the same batch size, timed in the same run;
    ``x_floor`` = time / floor.
(b) Stability at 64²: the largest Courant number (of 0.25 ... 2.0) each scheme survives for
    5 time units, and the resulting time per simulated time unit at 256² (ms per step /
    largest stable dt). exponax's default ETDRK2 is included here.
(c) 1D Kuramoto–Sivashinsky (ETDRK4, dt 0.25): L=22/N=64 and L=200/N=1024, vs exponax.
(d) ``jax.grad`` through 100 steps at 256² w.r.t. the initial vorticity and viscosity:
    time relative to the forward run, and XLA's scratch memory per step (compiled memory
    analysis), without checkpointing and with ``checkpoint="sqrt"``; the gradient w.r.t.
    the initial field alone with the ETDRK4 coefficients computed once outside
    ("field-only"); jax-cfd (initial field only) for reference.
All timings are minima over interleaved rounds (every tool timed once per round), since the
machine is shared.

Run on one core: ``taskset -c 0 python benchmarks/fluids.py [--quick] [--json PATH]``.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _harness as H

import hybrax
from hybrax.fluids import KolmogorovFlow, KuramotoSivashinsky
from hybrax.grids import Grid, cfl_time_step

MAX_SPEED, COURANT = 7.0, 0.5


# --------------------------------------------------------------------------- helpers
def fft_batches(jitted, *args) -> list[int]:
    """The FFT ops in the compiled HLO of one call, as their batch sizes (fields per op)."""
    text = jitted.lower(*args).compile().as_text()
    batches = []
    for match in re.finditer(r"= (\w+)\[([\d,]*)\][^ ]* fft\(.*?fft_length=\{([\d,]+)\}", text):
        dims = [int(d) for d in match.group(2).split(",") if d]
        rank = len(match.group(3).split(","))
        batches.append(math.prod(dims[: len(dims) - rank]) if len(dims) > rank else 1)
    return batches


def pair_call(n: int, batch: int, steps: int):
    """A call running ``steps`` rfft2 + irfft2 pairs on ``batch`` n x n float32 fields."""
    x = jnp.fft.rfft2(jax.random.normal(jax.random.key(0), (batch, n, n), jnp.float32))

    @jax.jit
    def run(y):
        return jax.lax.fori_loop(0, steps, lambda i, z: jnp.fft.rfft2(jnp.fft.irfft2(z)), y)

    return lambda: run(x)


def fft_floor(batches: list[int], pair_seconds: dict) -> float:
    """Time of a step's FFTs: each FFT op costs half a pair of its batch size."""
    return sum(pair_seconds[b] / 2 for b in batches)


def hybrax_runner(stepper, steps):
    prepared = jax.block_until_ready(stepper.prepare())

    def run(state):
        return hybrax.rollout(prepared, state, steps, save_every=None)[0]

    # one stepper, not retraced: close over the prepared coefficients as arguments
    params, static = eqx.partition(prepared, eqx.is_array)

    @jax.jit
    def run_jit(params, state):
        stepper = eqx.combine(params, static)
        return jax.lax.fori_loop(0, steps, lambda i, s: stepper.step(s), state)

    return run, run_jit, params


def jax_cfd_runner(n, dt, steps):
    import jax_cfd.base as cfd
    import jax_cfd.spectral as spectral

    grid = cfd.grids.Grid((n, n), domain=((0, 2 * np.pi), (0, 2 * np.pi)))
    equation = spectral.equations.ForcedNavierStokes2D(viscosity=1e-3, grid=grid, smooth=True)
    step = spectral.time_stepping.crank_nicolson_rk4(equation, dt)

    @jax.jit
    def run(w_hat):
        return jax.lax.fori_loop(0, steps, lambda i, w: step(w), w_hat)

    return run, step


def exponax_stepper(n, dt, order):
    import exponax

    return exponax.stepper.KolmogorovFlowVorticity(
        2, 2 * np.pi, n, dt, diffusivity=1e-3, drag=-0.1, injection_mode=4, order=order
    )


def exponax_runner(stepper, steps):
    @jax.jit
    def run(w_hat):
        return jax.lax.fori_loop(0, steps, lambda i, w: stepper.step_fourier(w), w_hat)

    return run


# --------------------------------------------------------------------------- (a) speed
def kolmogorov_speed(n: int, steps: int, records: list, rounds: int) -> dict:
    model = KolmogorovFlow(n)
    dt = cfl_time_step(model.grid, MAX_SPEED, COURANT)
    state = model.initial_state()
    w = model.vorticity(state)
    case = f"kolmogorov {n}^2"

    runs = {}
    for name, cls in (("hybrax ETDRK4", hybrax.ETDRK4), ("hybrax CN-RK4", hybrax.CrankNicolsonRK4)):
        _, run_jit, params = hybrax_runner(cls(model, dt), steps)
        runs[name] = (run_jit, (params, state), fft_batches(run_jit, params, state))
    cfd_run, _ = jax_cfd_runner(n, dt, steps)
    w_hat_cfd = jnp.fft.rfft2(w)  # jax-cfd: unnormalised rfft of the vorticity
    runs["jax-cfd CN-RK4"] = (cfd_run, (w_hat_cfd,), fft_batches(cfd_run, w_hat_cfd))
    ex4 = exponax_stepper(n, dt, 4)
    ex_run = exponax_runner(ex4, steps)
    w_hat_ex = jnp.fft.rfft2(-w)[None]  # exponax's vorticity is minus the usual one
    runs["exponax ETDRK4"] = (ex_run, (w_hat_ex,), fft_batches(ex_run, w_hat_ex))

    calls = {name: (lambda fn=fn, args=args: fn(*args)) for name, (fn, args, _) in runs.items()}
    batch_sizes = sorted({b for _, _, batches in runs.values() for b in batches})
    for b in batch_sizes:
        calls[f"pair x{b}"] = pair_call(n, b, steps)
    seconds_per_call = H.interleaved_times(calls, rounds=rounds, min_time=0.2)
    pairs = {b: seconds_per_call[f"pair x{b}"] / steps for b in batch_sizes}
    records.append(H.Record(case, "fft pair", "ms_per_pair", pairs[1] * 1e3, "ms"))
    out = {}
    for name, (_, _, batches) in runs.items():
        seconds = seconds_per_call[name] / steps
        ffts, floor = sum(batches), fft_floor(batches, pairs)
        out[name] = seconds
        records += [
            H.Record(case, name, "ms_per_step", seconds * 1e3, "ms"),
            H.Record(case, name, "steps_per_s", 1 / seconds, "1/s"),
            H.Record(case, name, "ffts_per_step", ffts, "count"),
            H.Record(case, name, "fft_floor_ms", floor * 1e3, "ms"),
            H.Record(case, name, "x_floor", seconds / floor, "ratio"),
            H.Record(case, name, "ms_per_time_unit_at_C0.5", seconds / dt * 1e3, "ms"),
        ]
    return out


# ----------------------------------------------------------------------- (b) stability
def largest_stable_courant(make_step, state, grid, courants, horizon=5.0):
    """Largest Courant number (tried in increasing order) for which ``horizon`` time units
    stay finite and bounded (|omega| below 10x its initial maximum)."""
    best = 0.0
    for courant in courants:
        dt = cfl_time_step(grid, MAX_SPEED, courant)
        n = math.ceil(horizon / dt)
        step = make_step(dt)
        final = jax.jit(lambda s, step=step, n=n: jax.lax.fori_loop(0, n, lambda i, x: step(x), s))(
            state
        )
        w = np.asarray(final[0] if isinstance(final, tuple) else final)
        bound = 10 * float(np.max(np.abs(np.asarray(state))))
        if not (np.all(np.isfinite(w)) and np.max(np.abs(w)) < bound):
            break
        best = courant
    return best


def stability(records: list, timings: dict, n_timing: int, quick: bool) -> None:
    n = 64
    model = KolmogorovFlow(n)
    state = model.initial_state()
    w = model.vorticity(state)
    courants = (0.25, 0.5, 0.75, 1.0) if quick else (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
    grid = model.grid

    def hybrax_step(cls):
        def make(dt):
            stepper = cls(model, dt).prepare()
            return lambda w_hat: stepper.step(hybrax.grids.SpectralState(w_hat)).field_hat

        return make

    def cfd_step(dt):
        return jax_cfd_runner(n, dt, 1)[1]

    def exponax_step(order):
        return lambda dt: exponax_stepper(n, dt, order).step_fourier

    schemes = {
        "hybrax ETDRK4": (hybrax_step(hybrax.ETDRK4), state.field_hat),
        "hybrax CN-RK4": (hybrax_step(hybrax.CrankNicolsonRK4), state.field_hat),
        "jax-cfd CN-RK4": (cfd_step, jnp.fft.rfft2(w)),
        "exponax ETDRK4": (exponax_step(4), jnp.fft.rfft2(-w)[None]),
        "exponax ETDRK2": (exponax_step(2), jnp.fft.rfft2(-w)[None]),
    }
    for name, (make, start) in schemes.items():
        best = largest_stable_courant(make, start, grid, courants)
        records.append(H.Record(f"stability {n}^2", name, "max_stable_courant", best, "C"))
        if name in timings and best > 0:
            dt = cfl_time_step(Grid((n_timing, n_timing)), MAX_SPEED, best)
            records.append(
                H.Record(
                    f"kolmogorov {n_timing}^2",
                    name,
                    "ms_per_time_unit_at_max_C",
                    timings[name] / dt * 1e3,
                    "ms",
                    note=f"C={best}",
                )
            )


# ----------------------------------------------------------------------------- (c) KS
def kuramoto_sivashinsky(records: list, steps: int) -> None:
    import exponax

    for length, n in ((22.0, 64), (200.0, 1024)):
        case = f"KS 1D L={length:g} N={n}"
        model = KuramotoSivashinsky(Grid((n,), length))
        state = model.initial_state(jax.random.key(0))
        prepared = hybrax.ETDRK4(model, 0.25).prepare()
        params, static = eqx.partition(prepared, eqx.is_array)

        @jax.jit
        def run_hybrax(params, s, static=static):
            stepper = eqx.combine(params, static)
            return jax.lax.fori_loop(0, steps, lambda i, x: stepper.step(x), s)

        ex = exponax.stepper.KuramotoSivashinskyConservative(1, length, n, 0.25, order=4)

        @jax.jit
        def run_exponax(u_hat, ex=ex):
            return jax.lax.fori_loop(0, steps, lambda i, x: ex.step_fourier(x), u_hat)

        u_hat = jnp.fft.rfft(model.field(state))[None]
        seconds = H.interleaved_times(
            {
                "hybrax ETDRK4": lambda run=run_hybrax, p=params, s=state: run(p, s),
                "exponax ETDRK4": lambda run=run_exponax, u=u_hat: run(u),
            },
            min_time=0.2,
        )
        for name, value in seconds.items():
            records += [
                H.Record(case, name, "us_per_step", value / steps * 1e6, "us"),
                H.Record(case, name, "steps_per_s", steps / value, "1/s"),
            ]


# --------------------------------------------------------------------------- (d) grad
def gradients(records: list, n: int, steps: int) -> None:
    model = KolmogorovFlow(n)
    dt = cfl_time_step(model.grid, MAX_SPEED, COURANT)
    state = model.initial_state()
    case = f"grad {steps} steps {n}^2"

    def make_loss(cls, checkpoint):
        def loss(viscosity, w_hat):
            m = eqx.tree_at(lambda m: m.viscosity, model, viscosity)
            final, _ = hybrax.rollout(
                cls(m, dt),
                hybrax.grids.SpectralState(w_hat),
                steps,
                save_every=None,
                checkpoint=checkpoint,
            )
            return jnp.sum(jnp.abs(final.field_hat) ** 2)

        return loss

    nu = jnp.asarray(1e-3, jnp.float32)
    w0 = state.field_hat
    calls, memory = {}, {}
    for cls, label in ((hybrax.ETDRK4, "ETDRK4"), (hybrax.CrankNicolsonRK4, "CN-RK4")):
        for checkpoint in (None, "sqrt"):
            loss = make_loss(cls, checkpoint)
            name = f"hybrax {label}" + (" sqrt-ckpt" if checkpoint else "")
            forward = jax.jit(loss)
            backward = jax.jit(jax.grad(loss, argnums=(0, 1)))
            calls[name, "forward"] = lambda f=forward: f(nu, w0)
            calls[name, "grad"] = lambda b=backward: b(nu, w0)
            memory[name] = H.temp_bytes(backward.lower(nu, w0).compile())
    # the same without the viscosity: the stepper prepared once outside, gradient w.r.t. the
    # initial field only (separates ETDRK4's coefficient computation from the stepping)
    prepared = hybrax.ETDRK4(model, dt).prepare()
    params, static = eqx.partition(prepared, eqx.is_array)

    def field_loss(params, w_hat):
        stepper = eqx.combine(params, static)
        final, _ = hybrax.rollout(
            stepper, hybrax.grids.SpectralState(w_hat), steps, save_every=None
        )
        return jnp.sum(jnp.abs(final.field_hat) ** 2)

    forward, backward = jax.jit(field_loss), jax.jit(jax.grad(field_loss, argnums=1))
    name = "hybrax ETDRK4 field-only"
    calls[name, "forward"] = lambda f=forward: f(params, w0)
    calls[name, "grad"] = lambda b=backward: b(params, w0)
    memory[name] = H.temp_bytes(backward.lower(params, w0).compile())

    # jax-cfd reference (no checkpointing, gradient w.r.t. the initial field)
    _, step = jax_cfd_runner(n, dt, 1)

    def cfd_loss(w_hat):
        final = jax.lax.fori_loop(0, steps, lambda i, w: step(w), w_hat)
        return jnp.sum(jnp.abs(final) ** 2)

    w_hat = jnp.fft.rfft2(model.vorticity(state))
    forward, backward = jax.jit(cfd_loss), jax.jit(jax.grad(cfd_loss))
    calls["jax-cfd CN-RK4", "forward"] = lambda f=forward: f(w_hat)
    calls["jax-cfd CN-RK4", "grad"] = lambda b=backward: b(w_hat)
    memory["jax-cfd CN-RK4"] = H.temp_bytes(backward.lower(w_hat).compile())

    seconds = H.interleaved_times(calls, rounds=3, min_time=0.2)
    for name in memory:
        t_fwd, t_grad = seconds[name, "forward"], seconds[name, "grad"]
        records += [
            H.Record(case, name, "grad_over_forward", t_grad / t_fwd, "ratio"),
            H.Record(case, name, "forward_ms", t_fwd * 1e3, "ms"),
            H.Record(case, name, "grad_ms", t_grad * 1e3, "ms"),
            H.Record(case, name, "MiB_per_step", memory[name] / steps / 2**20, "MiB"),
        ]


def main(argv=None) -> None:
    args = H.parse_args(__doc__.splitlines()[0], argv)
    sizes = args.sizes or ((64,) if args.quick else (64, 256, 512))
    records: list[H.Record] = []
    timings = {}
    for n in sizes:
        steps = 200 if n <= 64 else 20
        timings[n] = kolmogorov_speed(n, steps, records, 3 if args.quick else 7)
    timing_size = sizes[min(1, len(sizes) - 1)]
    stability(records, timings[timing_size], timing_size, args.quick)
    kuramoto_sivashinsky(records, 200 if args.quick else 1000)
    gradients(records, timing_size, 20 if args.quick else 100)
    H.report(records, args.json, baseline={})
    H.write_environment(args.json)


if __name__ == "__main__":
    main()
