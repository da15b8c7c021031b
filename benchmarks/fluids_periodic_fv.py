"""Periodic finite-volume Navier-Stokes step time: hybrax vs jax-cfd (its home ground) and PhiFlow.

jax-cfd's finite-volume solver cannot run the wall-bounded cases of
``benchmarks/incompressible.py`` (its channel fails inside its own boundary padding under the
installed jax), but it runs fully periodic flows: Kochkov et al.'s (2021) Kolmogorov flow at
Re 1000 (2-pi box, forcing ``sin(4 y)``, linear drag 0.1, viscosity 1e-3), the flow of the
``fv-learned-interpolation`` workflow. Every tool runs the same MAC grid, float32 state, dt
(Courant 0.5 at speed 2) and number of steps, started from the same divergence-free random
velocity (jax-cfd's ``filtered_velocity_field``), in its own jit-compiled form (a whole
rollout for hybrax and jax-cfd; PhiFlow's ``jit_compile``d step looped in Python as its
examples do). Configurations tried (the JSON's "config" says which won):

- hybrax: `ProjectedRK` with 1 stage (forward Euler) and 3 stages (SSP-RK3, its default),
  central and van Leer advection; FFT pressure solve (its default for periodic boxes).
- jax-cfd: `semi_implicit_navier_stokes` with `convect_linear` or van Leer
  (`advect_van_leer_using_limiters`, its default and Kochkov et al.'s baseline), time
  steppers forward Euler (its default), Heun RK2 and classic RK4, pressure by
  `solve_fast_diag` (its default: ``implementation=None``, which on CPU and GPU is a real
  FFT for periodic grids); with forward Euler and linear advection also its other
  implementations, ``"matmul"`` (dense eigenvector products, its choice on TPUs up to 1024
  points) and ``"fft"`` (complex FFT). On this CPU the default won (steps per CPU-second,
  64^2 / 128^2 / 256^2: default 17,860 / 8,960 / 1,608, matmul 16,217 / 5,264 / 615, fft
  16,338 / 6,358 / 1,189, 2026-12-06).
  jax-cfd 0.2 calls ``jax.tree_map``, gone from the installed jax: the script restores
  that alias (``jax.tree.map``) before using it, and changes nothing else.
- PhiFlow 3: semi-Lagrangian or central advection, explicit diffusion, `make_incompressible`
  with 'CG' (relative tolerance 1e-5, warm start) or 'auto' (2-D only: in 3-D it picks a
  sparse direct solve that takes minutes per round).

The FFT floor ("floor fft pair"): the pressure solve's real FFT, eigenvalue product and
inverse FFT of one cell field, alone in a scan; both hybrax and jax-cfd's fastest
configuration are reported in its units ("x_floor"), which bounds what any FFT-projection
step can gain over another.

Ratios (peer time over hybrax time): each tool's fastest; "matched", the same time order and
scheme (forward Euler with central advection, after checking that the two fields agree: the
largest difference after the run is printed and recorded; forward Euler with van Leer); and
each tool's default (jax-cfd: van Leer, forward Euler; hybrax: central, SSP-RK3). Forward
Euler with central advection is unstable (slowly at this Courant number), so it is a speed
reference, not a usable configuration.

    python benchmarks/fluids_periodic_fv.py [--quick] [--json PATH] [--clock cpu] [--sizes 64,-32]

A negative size is the 3-D periodic box (jax-cfd's solver is n-dimensional; 3-D Kolmogorov
forcing along x, no drag-free blow-up in a short run).
"""

from __future__ import annotations

import functools

import _harness as H
import jax
import jax.numpy as jnp
import numpy as np
from incompressible import add_peers, phiflow_loops, timed_fastest

import hybrax
from hybrax.fluids import IncompressibleNavierStokes, ProjectedRK

VISCOSITY, DRAG, AMPLITUDE, WAVENUMBER = 1e-3, 0.1, 1.0, 4
MAX_VELOCITY, COURANT = 2.0, 0.5


def _jax_cfd_compat() -> None:
    """jax-cfd 0.2's finite-volume terms call ``jax.tree_map``, which the installed jax has
    removed (it is ``jax.tree.map`` now): put the alias back, changing nothing else."""
    if not hasattr(jax, "tree_map"):
        jax.tree_map = jax.tree.map


def jax_cfd_start(n: int, ndim: int):
    """jax-cfd's grid and its random divergence-free start (peak wavenumber 4)."""
    _jax_cfd_compat()
    from jax_cfd.base import grids, initial_conditions

    grid = grids.Grid((n,) * ndim, domain=((0.0, 2 * np.pi),) * ndim)
    velocity = initial_conditions.filtered_velocity_field(
        jax.random.key(0), grid, maximum_velocity=1.0, peak_wavenumber=4
    )
    return grid, tuple(
        type(u)(type(u.array)(u.data.astype(jnp.float32), u.offset, u.grid), u.bc) for u in velocity
    )


def to_hybrax_faces(data: np.ndarray, axis: int) -> np.ndarray:
    """jax-cfd stores ``n`` faces per axis, the first at ``x = h``; hybrax's periodic faces
    are ``n + 1``, the first at ``x = 0`` and the last its periodic copy."""
    data = np.asarray(data)
    last = np.take(data, [-1], axis=axis)
    return np.concatenate([last, data], axis=axis)


def hybrax_model(n: int, ndim: int, scheme: str) -> IncompressibleNavierStokes:
    if ndim == 2:
        return IncompressibleNavierStokes.kolmogorov(
            n,
            viscosity=VISCOSITY,
            drag=DRAG,
            forcing_amplitude=AMPLITUDE,
            forcing_wavenumber=WAVENUMBER,
            scheme=scheme,
        )
    from hybrax.fluids import Boundaries
    from hybrax.grids import StaggeredGrid

    grid = StaggeredGrid((n,) * 3, (2 * np.pi,) * 3)
    _, y, _ = grid.face_points(0)
    forcing = AMPLITUDE * jnp.sin(WAVENUMBER * y)
    return IncompressibleNavierStokes(
        grid, Boundaries.periodic(3), VISCOSITY, scheme, forcing, drag=DRAG
    )


def hybrax_runs(n: int, dt: float, steps: int, velocity, ndim: int) -> dict:
    faces = [to_hybrax_faces(u.data, axis) for axis, u in enumerate(velocity)]
    runs = {}
    for scheme in ("central", "van_leer"):
        model = hybrax_model(n, ndim, scheme)
        w = faces[2] if ndim == 3 else None
        state = model.initial_state(faces[0], faces[1], jnp.float32, w=w)
        for stages in (1, 3):
            stepper = ProjectedRK(model, dt, stages=stages)

            @jax.jit
            def run(s, stepper=stepper):
                return hybrax.rollout(stepper, s, steps, save_every=None)[0].velocity

            label = "central" if scheme == "central" else "van-leer"
            runs[f"hybrax RK{stages} {label}"] = (run, state)
    return runs


def floor_runs(n: int, steps: int, ndim: int) -> dict:
    """The pressure solve's transforms alone: a real FFT of one cell field, a product with
    the Laplacian's inverse eigenvalues and the inverse FFT, ``steps`` times in a scan (what
    every FFT-projection step does at least once: hybrax, jax-cfd's ``solve_fast_diag``)."""
    shape = (n,) * ndim
    k2 = sum(
        np.meshgrid(*([np.fft.fftfreq(n) ** 2] * (ndim - 1) + [np.fft.rfftfreq(n) ** 2]),
                    indexing="ij")
    )  # fmt: skip
    inverse = jnp.asarray(1.0 / (1.0 + k2), jnp.float32)
    field = jnp.asarray(np.random.default_rng(0).standard_normal(shape), jnp.float32)

    @jax.jit
    def run(p):
        def solve(p, _):
            return jnp.fft.irfftn(jnp.fft.rfftn(p) * inverse, s=shape), None

        return jax.lax.scan(solve, p, None, length=steps)[0]

    return {"floor fft pair": (run, field)}


def jax_cfd_runs(n: int, dt: float, steps: int, grid, velocity) -> dict:
    _jax_cfd_compat()
    import jax_cfd.base as cfd
    from jax_cfd.base import advection, forcings, funcutils, pressure, time_stepping

    forcing = forcings.simple_turbulence_forcing(
        grid,
        constant_magnitude=AMPLITUDE,
        constant_wavenumber=WAVENUMBER,
        linear_coefficient=-DRAG,
        forcing_type="kolmogorov",
    )
    schemes = {
        "linear": advection.convect_linear,
        "van-leer": lambda v: tuple(advection.advect_van_leer_using_limiters(u, v, dt) for u in v),
    }
    steppers = {
        "euler": time_stepping.forward_euler,
        "heun": time_stepping.heun_rk2,
        "rk4": time_stepping.classic_rk4,
    }
    # (scheme, stepper, pressure-solve implementation): every scheme and stepper with the
    # default solve, and the other implementations with forward Euler and linear advection
    configs = [(scheme, name, None) for scheme in schemes for name in steppers]
    configs += [("linear", "euler", "matmul"), ("linear", "euler", "fft")]
    runs = {}
    for scheme, name, implementation in configs:
        step = cfd.equations.semi_implicit_navier_stokes(
            density=1.0,
            viscosity=VISCOSITY,
            dt=dt,
            grid=grid,
            convect=schemes[scheme],
            forcing=forcing,
            time_stepper=steppers[name],
            pressure_solve=functools.partial(
                pressure.solve_fast_diag, implementation=implementation
            ),
        )
        repeated = funcutils.repeated(step, steps)
        label = f"jax-cfd {name} {scheme}" + (f" {implementation}" if implementation else "")
        runs[label] = (jax.jit(lambda vel, f=repeated: tuple(u.data for u in f(vel))), velocity)
    return runs


def phiflow_runs(n: int, dt: float, steps: int, velocity, ndim: int) -> dict:
    from phi import math as pmath
    from phi.jax import flow as pf

    names = "xyz"[:ndim]
    bounds = pf.Box(**{a: 2 * np.pi for a in names})
    sizes = {a: n for a in names}
    periodic = pf.extrapolation.PERIODIC
    # PhiFlow's periodic staggered grid holds n faces per axis, the first at x = 0: the
    # hybrax faces without their periodic copy
    faces = [to_hybrax_faces(u.data, axis) for axis, u in enumerate(velocity)]
    components = [
        pmath.tensor(np.take(f, np.arange(n), axis=axis), pmath.spatial(*names))
        for axis, f in enumerate(faces)
    ]
    values = pmath.stack(components, pmath.dual(vector=",".join(names)))
    start = pf.StaggeredGrid(values, periodic, bounds=bounds, **sizes)

    def force_field(x):
        yy = x.vector["y"]
        zero = 0 * yy
        return pmath.stack(
            [AMPLITUDE * pmath.sin(WAVENUMBER * yy)] + [zero] * (ndim - 1),
            pmath.channel(vector=",".join(names)),
        )

    force = pf.StaggeredGrid(force_field, periodic, bounds=bounds, **sizes)
    pressure0 = pf.CenteredGrid(0, periodic, bounds=bounds, **sizes)
    forced = lambda w: w + dt * (force - DRAG * w)  # noqa: E731
    # in 3-D 'auto' picks a sparse direct solve that takes minutes per round at 32^3
    # (benchmarks/incompressible.py measured it 6.4x slower than CG at 16^3): CG only
    solvers = ("CG", "auto") if ndim == 2 else ("CG",)
    return phiflow_loops(start, forced, pressure0, dt, steps, solvers, VISCOSITY)


def periodic(n: int, steps: int, records: list, rounds: int, ndim: int) -> None:
    dt = COURANT * (2 * np.pi / n) / MAX_VELOCITY
    case = f"kolmogorov {n}^{ndim} float32, {steps} steps"
    grid, velocity = jax_cfd_start(n, ndim)
    runs = hybrax_runs(n, dt, steps, velocity, ndim) | floor_runs(n, steps, ndim)
    peers = (
        ("jax-cfd", lambda: jax_cfd_runs(n, dt, steps, grid, velocity)),
        ("phiflow", lambda: phiflow_runs(n, dt, steps, velocity, ndim)),
    )
    add_peers(case, runs, peers, records)
    matched = ("hybrax RK1 central", "jax-cfd euler linear")
    if all(m in runs for m in matched):
        # the same discretisation: the fields agree to float32 round-off after the run
        mine = runs[matched[0]][0](runs[matched[0]][1])
        theirs = runs[matched[1]][0](runs[matched[1]][1])
        gap = max(
            float(np.max(np.abs(to_hybrax_faces(t, a) - np.asarray(m))))
            for a, (m, t) in enumerate(zip(mine, theirs, strict=True))
        )
        scale = max(float(np.max(np.abs(np.asarray(m)))) for m in mine)
        config = " vs ".join(matched)
        print(f"{case}: {config}: largest velocity difference {gap:.2e} (speed {scale:.2f})")
        record = H.Record(case, "matched fields", "max_abs_difference", gap, "", config=config)
        records.append(record)
    seconds, best = timed_fastest(case, runs, steps, rounds, records)
    floor = "floor fft pair"
    for tool in ("hybrax", "jax-cfd"):  # each tool's fastest, in units of the FFT floor
        if tool in best:
            times = seconds[best[tool]] / seconds[floor]
            note = "time over the pressure solve's FFT pair alone"
            records.append(H.Record(case, f"{tool} (fastest)", "x_floor", times, "x", note,
                                    best[tool]))  # fmt: skip
            print(f"{case}: {best[tool]} = {times:.2f}x the FFT floor")
    peer_tools = [tool for tool in best if tool not in ("hybrax", "floor")]
    pairs = [(f"{tool} (fastest)", best[tool], best["hybrax"]) for tool in peer_tools]
    if all(m in seconds for m in matched):
        pairs.append(("jax-cfd (matched: Euler, central)", matched[1], matched[0]))
    if "jax-cfd euler van-leer" in seconds:
        # the same scheme again (van Leer, forward Euler), and each tool's default: jax-cfd's
        # (van Leer, forward Euler: Kochkov et al.'s baseline) vs hybrax's (central, SSP-RK3)
        pairs.append(("jax-cfd (matched: Euler, van Leer)", "jax-cfd euler van-leer",
                      "hybrax RK1 van-leer"))  # fmt: skip
        pairs.append(("jax-cfd (each default)", "jax-cfd euler van-leer", "hybrax RK3 central"))
    for label, theirs, mine in pairs:
        ratio = seconds[theirs] / seconds[mine]
        records.append(
            H.Record(
                case,
                label,
                "ratio",
                ratio,
                "x",
                "peer time over hybrax time (>1: hybrax faster)",
                config=f"{theirs} vs {mine}",
            )
        )
        print(f"{case}: {theirs} / {mine} = {ratio:.2f}x")


def main(argv=None) -> None:
    args = H.parse_args(__doc__.splitlines()[0], argv)
    sizes = args.sizes or ((32,) if args.quick else (64, 128, 256))
    records: list[H.Record] = []
    for n in sizes:
        # forward Euler with central advection is unstable (slowly, at Courant 0.5: the
        # 64^2 run blows up after ~100 steps), so each timed call runs 40 steps
        steps = 10 if args.quick else 40
        rounds = 2 if args.quick else 5
        periodic(abs(n), steps, records, rounds, ndim=2 if n > 0 else 3)
    H.report(records, args.json, baseline={"steps_per_s": "hybrax RK1 central"})
    H.write_environment(args.json)


if __name__ == "__main__":
    main()
