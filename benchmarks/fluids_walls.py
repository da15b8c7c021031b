"""Walls, a moving lid and an obstacle: hybrax vs PhiFlow (and jax-cfd where it runs), and the
gradient through 100 steps.

Cases, float32, the same MAC grid, viscosity, dt (Courant 0.3) and number of steps for every
tool, all started from rest:

- **lid-driven cavity**, Re 1000 (unit box, lid speed 1, viscosity 1e-3), ``n x n`` cells;
- **DFG 2D-2 channel with a cylinder** (Schafer & Turek 1996: 2.2 x 0.41, cylinder of
  diameter 0.1 at (0.2, 0.2), Re 100, viscosity 1e-3), ``3n/8`` cells across the channel
  (``n = 128``: 258 x 48 = 12,384 cells, about 111^2; ``n = 256``: 515 x 96, about 222^2;
  96 across is the resolution at which the 2D-2 validation holds). hybrax uses its preset
  (parabolic inflow, peak 1.5, Brinkman-penalised cylinder); PhiFlow its documented way, a
  constant inflow velocity boundary (1, the mean) and an `Obstacle` the pressure solve
  masks: the same cost per step.

Configurations tried (the JSON's "config" names the fastest of each tool):

- hybrax: `ProjectedRK` with 1 stage (forward Euler, the peers' order) and 3 (SSP-RK3, its
  default), central advection, its direct pressure solve (DCT / fast diagonalisation).
- PhiFlow 3 (JAX backend, `jit_compile`d step looped in Python as its examples do):
  semi-Lagrangian (its examples' default) or central (`advect.differential`) advection,
  explicit diffusion, `make_incompressible` with CG (relative tolerance 1e-5, warm-started
  from the last pressure) or 'auto'.
- jax-cfd: tried on the cavity (`dirichlet_boundary_conditions` with the lid speed,
  `semi_implicit_navier_stokes`, `convect_linear`, `solve_cg`); it has no obstacles, so it
  is not tried on the cylinder. A failure is recorded with its error. (Measured with
  jax-cfd 0.2: the cavity raises NotImplementedError with `convect_linear` and
  `advect_van_leer`, "Flux boundary condition is not implemented for velocity with
  ConstantBoundaryConditions", and with `advect_linear`, `advect_upwind` and
  `advect_van_leer_using_limiters`, "Non-periodic boundary conditions are not
  implemented".)

The gradient part (``--parts gradient``): time and XLA's scratch memory of the gradient of
the kinetic energy after 100 steps with respect to the lid speed (cavity) and the inflow
amplitude (cylinder), at the largest size, against the forward run alone; with and without
`hybrax.rollout`'s ``checkpoint="sqrt"``, and without `ProjectedRK`'s
``checkpoint_tendency`` (its default recomputes each stage's tendency in the backward pass);
central advection (hand-written backward pass) and van Leer's (differentiated by JAX).

    python benchmarks/fluids_walls.py [--quick] [--sizes 128,256] [--parts speed,gradient]
        [--clock cpu] [--json benchmarks/results/fluids_walls.json]
"""

from __future__ import annotations

import math
import sys

import _harness as H
import jax
import jax.numpy as jnp
from incompressible import add_peers, projected_rk_runs, timed_fastest

import hybrax
from hybrax.fluids import IncompressibleNavierStokes, ProjectedRK

COURANT = 0.3
LENGTH, HEIGHT = 2.2, 0.41


def cavity_model(n: int, lid=1.0, scheme: str = "central") -> IncompressibleNavierStokes:
    return IncompressibleNavierStokes.lid_driven_cavity(n, 1000.0, lid_velocity=lid, scheme=scheme)


def cylinder_model(n: int, peak=None, scheme: str = "central") -> IncompressibleNavierStokes:
    return IncompressibleNavierStokes.dfg_cylinder(
        3 * n // 8, case="2D-2", max_inflow=peak, scheme=scheme
    )


def time_step(case: str, n: int) -> float:
    if case == "cavity":
        return COURANT / n  # lid speed 1, h = 1 / n
    return COURANT * (HEIGHT / (3 * n // 8)) / 1.5  # peak inflow 1.5


def hybrax_runs(case: str, n: int, dt: float, steps: int) -> dict:
    model = cavity_model(n) if case == "cavity" else cylinder_model(n)
    return projected_rk_runs(model, model.initial_state(dtype=jnp.float32), dt, steps)


def phiflow_runs(case: str, n: int, dt: float, steps: int) -> dict:
    from phi.jax import flow as pf

    if case == "cavity":
        bounds, shape = pf.Box(x=1, y=1), {"x": n, "y": n}
        boundary = {"x": 0, "y-": 0, "y+": pf.vec(x=1.0, y=0.0)}
        obstacles = ()
    else:
        cells = 3 * n // 8
        bounds = pf.Box(x=LENGTH, y=HEIGHT)
        shape = {"x": round(LENGTH / HEIGHT * cells), "y": cells}
        boundary = {"x-": pf.vec(x=1.0, y=0.0), "x+": pf.extrapolation.ZERO_GRADIENT, "y": 0}
        obstacles = (pf.Obstacle(pf.Sphere(x=0.2, y=0.2, radius=0.05)),)
    velocity = pf.StaggeredGrid(0, boundary, bounds=bounds, **shape)
    axes = list(velocity.shape.spatial.names)
    deficiency = 1 if case == "cavity" else 0  # a closed cavity's pressure: up to a constant
    runs = {}
    for adv_name, advect in (
        ("semi-lagrangian", lambda w: pf.advect.semi_lagrangian(w, w, dt)),
        ("central", lambda w: w + dt * pf.advect.differential(w, w, order=2)),
    ):
        for solver in ("CG", "auto"):

            @pf.jit_compile
            def step(w, p, advect=advect, solver=solver):
                # arithmetic on grids adds their boundary values too: keep the lid's
                w = advect(w).with_extrapolation(velocity.extrapolation)
                w = pf.diffuse.explicit(w, 1e-3, dt)
                solve = pf.Solve(solver, 1e-5, 0, x0=p, rank_deficiency=deficiency)
                return pf.fluid.make_incompressible(w, obstacles, solve)

            def run(start, step=step):
                w, p = start, None
                for _ in range(steps):
                    w, p = step(w, p)
                return p.values.native(axes)

            runs[f"phiflow {adv_name} {solver}"] = (run, velocity)
    return runs


def jax_cfd_cavity_runs(n: int, dt: float, steps: int) -> dict:
    import jax_cfd.base as cfd
    from jax_cfd.base import boundaries, funcutils, grids

    grid = grids.Grid((n, n), domain=((0.0, 1.0), (0.0, 1.0)))
    bc_u = boundaries.dirichlet_boundary_conditions(2, ((0.0, 0.0), (0.0, 1.0)))
    bc_v = boundaries.dirichlet_boundary_conditions(2)
    velocity = tuple(
        grids.GridVariable(grids.GridArray(jnp.zeros(grid.shape, jnp.float32), offset, grid), bc)
        for offset, bc in zip(grid.cell_faces, (bc_u, bc_v), strict=True)
    )
    step = cfd.equations.semi_implicit_navier_stokes(
        density=1.0,
        viscosity=1e-3,
        dt=dt,
        grid=grid,
        convect=cfd.advection.convect_linear,
        pressure_solve=cfd.pressure.solve_cg,
    )
    repeated = funcutils.repeated(step, steps)
    return {"jax-cfd euler cg": (jax.jit(lambda vel: repeated(vel)[0].data), velocity)}


def speed(case: str, n: int, steps: int, rounds: int, records: list) -> None:
    dt = time_step(case, n)
    size = f"{n}^2" if case == "cavity" else f"{round(LENGTH / HEIGHT * (3 * n // 8))}x{3 * n // 8}"
    name = f"{case} {size} float32, {steps} steps"
    runs = hybrax_runs(case, n, dt, steps)
    peers = [("phiflow", lambda: phiflow_runs(case, n, dt, steps))]
    if case == "cavity":
        peers.append(("jax-cfd", lambda: jax_cfd_cavity_runs(n, dt, steps)))
    add_peers(name, runs, peers, records)
    seconds, best = timed_fastest(name, runs, steps, rounds, records)
    mine = seconds[best["hybrax"]]
    for tool, fastest in best.items():
        if tool == "hybrax":
            continue
        ratio = seconds[fastest] / mine
        records.append(
            H.Record(
                name,
                f"{tool} / hybrax",
                "ratio",
                ratio,
                "x",
                "peer time over hybrax time, fastest of each (>1: hybrax faster)",
                config=f"{fastest} vs {best['hybrax']}",
            )
        )
        print(f"{name}: {fastest} / {best['hybrax']} = {ratio:.2f}x", flush=True)


def gradient(case: str, n: int, steps: int, records: list, scheme: str = "central") -> None:
    """Forward alone vs value and gradient, ProjectedRK3 (the default), float32."""
    dt = time_step(case, n)
    name = f"{case} gradient, {scheme}, {steps} steps, n={n}, float32"
    make = cavity_model if case == "cavity" else cylinder_model
    start = make(n).initial_state(dtype=jnp.float32)

    def loss(parameter, checkpoint, checkpoint_tendency=True):
        model = make(n, parameter, scheme)  # lid speed, or peak inflow
        stepper = ProjectedRK(model, dt, checkpoint_tendency=checkpoint_tendency)
        final, _ = hybrax.rollout(stepper, start, steps, save_every=None, checkpoint=checkpoint)
        return 0.5 * (jnp.sum(final.u**2) + jnp.sum(final.v**2))

    value = jnp.float32(1.0 if case == "cavity" else 1.5)
    forward = jax.jit(lambda p: loss(p, None))
    compile_s, compiled = H.compile_seconds(forward, value)
    calls = {"hybrax forward": lambda: compiled(value)}
    records.append(H.Record(name, "hybrax forward", "peak_bytes", H.temp_bytes(compiled), "B"))
    # ProjectedRK's checkpoint_tendency (default True) against storing the stages' tendency
    for checkpoint, kept in ((None, True), ("sqrt", True), (None, False)):
        tool = f"hybrax value_and_grad checkpoint={checkpoint}"
        if not kept:
            tool += ", checkpoint_tendency=False"
        grad = jax.jit(jax.value_and_grad(lambda p, c=checkpoint, k=kept: loss(p, c, k)))
        compile_s, compiled_grad = H.compile_seconds(grad, value)
        records.append(H.Record(name, tool, "peak_bytes", H.temp_bytes(compiled_grad), "B"))
        records.append(H.Record(name, tool, "compile_seconds", compile_s, "s"))
        calls[tool] = lambda c=compiled_grad: c(value)
    seconds = H.interleaved_times(calls, rounds=3, min_time=0.0)
    for tool, s in seconds.items():
        records.append(H.Record(name, tool, "seconds", s, "s"))
        ratio = s / seconds["hybrax forward"]
        records.append(H.Record(name, tool, "x_forward", ratio, "x", "time over the forward's"))
        print(f"{name}: {tool} {s:.3f} s = {ratio:.2f}x the forward", flush=True)
    _, grad = jax.jit(jax.value_and_grad(lambda p: loss(p, "sqrt")))(value)
    if not math.isfinite(float(grad)):
        sys.exit(f"{name}: the gradient is not finite ({float(grad)})")


def main(argv=None) -> None:
    args = H.parse_args(__doc__.splitlines()[0], argv, parts=("speed", "gradient"))
    parts = args.parts
    sizes = args.sizes or ((32,) if args.quick else (128, 256))
    records: list[H.Record] = []
    if "speed" in parts:
        for n in sizes:
            for case in ("cavity", "cylinder"):
                speed(case, n, 5 if args.quick else 20, 2 if args.quick else 3, records)
    if "gradient" in parts:
        for scheme in ("central", "van_leer"):
            for case in ("cavity", "cylinder"):
                gradient(case, max(sizes), 10 if args.quick else 100, records, scheme)
    H.report(records, args.json, baseline={"steps_per_s": "hybrax (fastest)"})
    H.write_environment(args.json)


if __name__ == "__main__":
    main()
