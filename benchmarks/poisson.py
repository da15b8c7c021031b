"""Pressure Poisson solve on the staggered grid: fast transforms vs the eigen-decomposition.

Times one solve of ``laplacian(phi) = rhs`` (jitted, float32 unless ``--float64``) on square
grids with the side conditions of three flows: a closed cavity (Neumann on all sides: DCT-II
both axes), a periodic channel (real FFT x DCT-II) and the DFG channel (inflow / outflow:
DCT-IV x DCT-II). "hybrax transforms" is `hybrax.fluids.solve_poisson` (O(n^2 log n));
"eigen (previous)" is the fast diagonalisation it replaced (dense 1-D eigenvector matrices,
four matrix products, O(n^3)), kept here as the baseline. Also times the gradient of a
scalar loss through each (implicit adjoint vs back-propagation through the products).

    python benchmarks/poisson.py [--quick] [--json benchmarks/results/poisson.json]
"""

from __future__ import annotations

import functools

import _harness as H
import jax
import jax.numpy as jnp
import numpy as np

from hybrax.fluids import Boundaries, Inflow, Outflow, Periodic, Wall, solve_poisson
from hybrax.grids import StaggeredGrid

CASES = {
    "cavity": lambda n: Boundaries(Wall(), Wall(), Wall(), Wall(velocity=1.0)),
    "channel": lambda n: Boundaries(Periodic(), Periodic(), Wall(), Wall()),
    "inflow-outflow": lambda n: Boundaries(Inflow(1.0), Outflow(), Wall(), Wall()),
}


# -- the previous solver (dense eigen-decomposition per axis), as the baseline ------------
def _second_difference(n: int, h: float, kinds: tuple[str, str]) -> np.ndarray:
    a = np.diag(-2.0 * np.ones(n)) + np.diag(np.ones(n - 1), 1) + np.diag(np.ones(n - 1), -1)
    if kinds[0] == "periodic":
        a[0, -1] += 1.0
        a[-1, 0] += 1.0
    else:
        a[0, 0] += {"neumann": 1.0, "dirichlet": -1.0}[kinds[0]]
        a[-1, -1] += {"neumann": 1.0, "dirichlet": -1.0}[kinds[1]]
    return a / h**2


@functools.lru_cache(maxsize=16)
def _eigen_tables(num_points, spacing, kinds):
    (lx, qx), (ly, qy) = (
        np.linalg.eigh(_second_difference(n, h, k))
        for n, h, k in zip(num_points, spacing, kinds, strict=True)
    )
    total = lx[:, None] + ly[None, :]
    null = np.abs(total) < 1e-10 * np.abs(total).max()
    return qx, qy, np.where(null, 0.0, 1.0 / np.where(null, 1.0, total))


def eigen_solve(rhs, grid, boundaries):
    kinds = (boundaries.axis_kinds(0), boundaries.axis_kinds(1))
    qx, qy, inverse = (
        jnp.asarray(a, rhs.dtype) for a in _eigen_tables(grid.num_points, grid.spacing, kinds)
    )
    return qx @ ((qx.T @ rhs @ qy) * inverse) @ qy.T


# ------------------------------------------------------------------------------------------
def run_case(name: str, n: int, dtype, records: list, rounds: int) -> None:
    grid, bc = StaggeredGrid((n, n)), CASES[name](n)
    x, y = grid.cell_centres(dtype)
    rhs = jnp.cos(3 * x) * jnp.sin(5 * y) + x * y
    solvers = {"hybrax transforms": solve_poisson, "eigen (previous)": eigen_solve}
    calls = {}
    for tool, solve in solvers.items():
        forward = jax.jit(functools.partial(solve, grid=grid, boundaries=bc))
        gradient = jax.jit(jax.grad(lambda r, s=solve: jnp.sum(s(r, grid, bc) ** 2)))
        calls[(tool, "ms_per_solve")] = functools.partial(forward, rhs)
        calls[(tool, "ms_per_gradient")] = functools.partial(gradient, rhs)
    new = solve_poisson(rhs, grid, bc)
    old = eigen_solve(rhs, grid, bc)
    difference = float(jnp.max(jnp.abs(new - old)) / jnp.max(jnp.abs(old)))
    seconds = H.interleaved_times(calls, rounds=rounds, min_time=0.2)
    case = f"{name} {n}^2 {jnp.dtype(dtype).name}"
    for (tool, metric), s in seconds.items():
        note = f"max rel. difference new vs old {difference:.1e}" if tool.startswith("h") else ""
        records.append(H.Record(case, tool, metric, s * 1e3, "ms", note, "jit"))


def main(argv=None) -> None:
    args = H.parse_args(__doc__.splitlines()[0], argv)
    sizes = args.sizes or ((32, 64) if args.quick else (64, 128, 256, 512))
    dtypes = (jnp.float32, jnp.float64) if args.float64 else (jnp.float32,)
    if args.float64:
        jax.config.update("jax_enable_x64", True)
    records: list[H.Record] = []
    for dtype in dtypes:
        for n in sizes:
            for name in CASES:
                run_case(name, n, dtype, records, 3 if args.quick else 5)
    baseline = {"ms_per_solve": "hybrax transforms", "ms_per_gradient": "hybrax transforms"}
    H.report(records, args.json, baseline=baseline)
    H.write_environment(args.json)


if __name__ == "__main__":
    main()
