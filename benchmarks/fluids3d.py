"""3-D periodic Navier–Stokes step time: hybrax NavierStokes3D vs exponax NavierStokesVelocity.

Taylor–Green vortex, float32, same grid and dt; hybrax ETDRK4, ETDRK3, ETDRK2 and CN-RK4 vs
exponax's NavierStokesVelocity in 3-D at ETDRK orders 4, 3 and 2 (its default), each exponax
order compared with hybrax's scheme of the same order, all timed interleaved in one run,
plus the FFT floor: the real FFTs of one evaluation of hybrax's nonlinear term (3 inverse,
6 forward), times the evaluations of a step (ETDRKk: k; CN-RK4: 5; until 2026-12-06 the
floor counted 4 for CN-RK4 too). (Until 2026-12 the floor was 1.5 "pairs" of a 3-component
forward + inverse transform, the rotational form's 6 inverse + 3 forward counted as if both
directions cost the same; an inverse transform costs about twice a forward one here, so
that floor was too low.) Since 2026-12-06 hybrax's own transforms are pruned both ways (the
2-D FFTs only on the kept kz < N/3 planes, the half axis as matrix products over its kept
modes) and it transforms five products (u_i u_j - w^2 delta_ij) instead of six, so its step
can beat this full-grid floor; the floor is still the full-grid FFTs of the six-product
evaluation (3 inverse + 6 forward), and `x_fft_floor` is measured against it.
jax-cfd has no 3-D spectral Navier–Stokes, so it is not included.

    python benchmarks/fluids3d.py [--quick] [--json benchmarks/results/fluids3d.json]
"""

from __future__ import annotations

import math

import _harness as H
import jax
import jax.numpy as jnp

import hybrax
from hybrax.fluids import NavierStokes3D

REYNOLDS = 1600.0
DT = 0.01
# evaluations of the nonlinear term per step (ETDRKk: k; CN-RK4: its five stages)
EVALUATIONS = {"ETDRK4": 4, "ETDRK3": 3, "ETDRK2": 2, "CN-RK4": 5}


def hybrax_runner(stepper, steps):
    @jax.jit
    def run(state):
        final, _ = hybrax.rollout(stepper, state, steps, save_every=None)
        return final

    return run


def dealiasing_fraction(n: int) -> float:
    """exponax keeps ``|k_i| <= fraction * (n // 2) - 1``: with its default 2/3 one mode
    fewer per axis than the 2/3 rule (``|k_i| <= (n - 1) // 3``, hybrax's); this fraction
    keeps the same modes (half a mode above the last), so both integrate the same system
    (`matched_fields`). It does not change exponax's speed; before 2026-12-06 the default
    was used (6% apart after 10 steps of a noisy 32³ field)."""
    return (2 * ((n - 1) // 3) + 3) / n


def matched_fields(n, model, state, records, case, steps=2) -> None:
    """Relative L2 difference of the velocity after ``steps`` ETDRK4 steps, exponax against
    hybrax, from the same field (float32 round-off when the systems agree)."""
    mine = model.velocity(hybrax_runner(hybrax.ETDRK4(model, DT), steps)(state))
    u_hat = exponax_runner(n, steps, 4)(jnp.fft.rfftn(model.velocity(state), axes=(-3, -2, -1)))
    theirs = jnp.fft.irfftn(u_hat, s=(n, n, n), axes=(-3, -2, -1))
    gap = float(jnp.linalg.norm(theirs - mine) / jnp.linalg.norm(mine))
    print(f"{case}: exponax ETDRK4 vs hybrax, {steps} steps: relative L2 difference {gap:.2e}")
    records.append(
        H.Record(case, "matched fields exponax ETDRK4", "relative_l2_difference", gap, "")
    )


def exponax_runner(n, steps, order):
    import exponax

    stepper = exponax.stepper.NavierStokesVelocity(
        3,
        2 * math.pi,
        n,
        DT,
        diffusivity=1.0 / REYNOLDS,
        order=order,
        dealiasing_fraction=dealiasing_fraction(n),
    )

    @jax.jit
    def run(u_hat):
        return jax.lax.fori_loop(0, steps, lambda i, u: stepper.step_fourier(u), u_hat)

    return run


def evaluation_ffts(n, steps):
    """The transforms of one evaluation of hybrax's nonlinear term (the divergence form
    under the 2/3 rule): 3 inverse real FFTs (u) and 6 forward ones (the products u_i u_j),
    ``steps`` times."""

    @jax.jit
    def run(u_hat):
        def body(i, z):
            u = jnp.fft.irfftn(z, s=(n, n, n), axes=(-3, -2, -1))
            products = jnp.fft.rfftn(jnp.concatenate([u, u * u[::-1]]), axes=(-3, -2, -1))
            return products[:3] + products[3:]

        return jax.lax.fori_loop(0, steps, body, u_hat)

    return run


def taylor_green(n: int, steps: int, records: list, rounds: int) -> None:
    model = NavierStokes3D.taylor_green(n, reynolds_number=REYNOLDS)
    state = model.taylor_green_state(jnp.float32)
    case = f"taylor-green {n}^3 float32"
    runs = {
        f"hybrax ETDRK{order}": (hybrax_runner(stepper(model, DT), steps), state)
        for order, stepper in ((4, hybrax.ETDRK4), (3, hybrax.ETDRK3), (2, hybrax.ETDRK2))
    }
    runs["hybrax CN-RK4"] = (hybrax_runner(hybrax.CrankNicolsonRK4(model, DT), steps), state)
    try:
        u = model.velocity(state)
        u_hat = jnp.fft.rfftn(u, axes=(-3, -2, -1))
        for order in (4, 3, 2):
            runs[f"exponax ETDRK{order}"] = (exponax_runner(n, steps, order), u_hat)
        matched_fields(n, model, state, records, case)
    except ImportError:
        print("exponax not installed: hybrax alone")
    # floor: the real FFTs of one nonlinear evaluation (3 inverse + 6 forward), 4 a step
    ffts = evaluation_ffts(n, steps)
    calls = {name: (lambda fn=fn, a=a: fn(a)) for name, (fn, a) in runs.items()}
    calls["ffts per evaluation"] = lambda: ffts(state.field_hat)
    seconds = H.interleaved_times(calls, rounds=rounds, min_time=0.2)
    evaluation_s = seconds.pop("ffts per evaluation") / steps
    records.append(
        H.Record(case, "ffts per evaluation", "ms_per_evaluation", evaluation_s * 1e3, "ms")
    )
    for name, total in seconds.items():
        per_step = total / steps
        records += [
            H.Record(case, name, "ms_per_step", per_step * 1e3, "ms"),
            H.Record(case, name, "steps_per_s", 1 / per_step, "1/s"),
        ]
        if name.startswith("hybrax"):
            floor = EVALUATIONS[name.split()[-1]] * evaluation_s
            records.append(H.Record(case, name, "x_fft_floor", per_step / floor, "ratio"))
    for name in [k for k in seconds if k.startswith("exponax")]:
        # the same scheme (order), hybrax's fourth-order ETDRK4, and CN-RK4
        same = name.replace("exponax", "hybrax")
        for mine in dict.fromkeys((same, "hybrax ETDRK4", "hybrax CN-RK4")):
            records.append(
                H.Record(
                    case,
                    f"{name} / {mine}",
                    "ratio",
                    seconds[name] / seconds[mine],
                    "x",
                    "peer time over hybrax time (>1: hybrax faster)",
                )
            )


def main(argv=None) -> None:
    args = H.parse_args(__doc__.splitlines()[0], argv)
    sizes = args.sizes or ((32,) if args.quick else (64, 128))
    records: list[H.Record] = []
    for n in sizes:
        taylor_green(n, 10 if args.quick or n > 64 else 20, records, 3 if args.quick else 5)
    H.report(records, args.json, baseline={})
    H.write_environment(args.json)


if __name__ == "__main__":
    main()
