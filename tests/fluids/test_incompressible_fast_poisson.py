"""The fast-transform pressure solve (FFT / DCT-II / DST-II / DCT-IV per axis) against the
dense pseudo-inverse of the discrete Laplacian on every kind of side, its implicit gradient
against central finite differences, and the model's Krylov pressure solver."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.fluids import (
    Boundaries,
    IncompressibleNavierStokes,
    Outflow,
    Periodic,
    ProjectedRK,
    Wall,
    solve_poisson,
    solve_poisson_krylov,
)
from hybrax.grids import StaggeredGrid

# pressure conditions per axis: P periodic, N Neumann (wall), D Dirichlet (outflow)
SIDES = {
    "P": (Periodic(), Periodic()),
    "NN": (Wall(), Wall()),
    "DD": (Outflow(), Outflow()),
    "ND": (Wall(), Outflow()),
    "DN": (Outflow(), Wall()),
}
KIND = {"P": "periodic", "N": "neumann", "D": "dirichlet"}


def _second_difference(n: int, h: float, kinds: str) -> np.ndarray:
    """The 1-D cell-centred second difference (the reference the transforms diagonalise)."""
    a = np.diag(-2.0 * np.ones(n)) + np.diag(np.ones(n - 1), 1) + np.diag(np.ones(n - 1), -1)
    if kinds == "P":
        a[0, -1] += 1.0
        a[-1, 0] += 1.0
    else:
        a[0, 0] += {"N": 1.0, "D": -1.0}[kinds[0]]
        a[-1, -1] += {"N": 1.0, "D": -1.0}[kinds[1]]
    return a / h**2


# every 1-D transform appears on each axis
@pytest.mark.parametrize(
    "kx, ky", [("P", "P"), ("NN", "NN"), ("P", "NN"), ("ND", "DD"), ("DN", "ND"), ("DD", "DN")]
)
def test_transform_solve_equals_dense_pseudo_inverse(kx, ky):
    grid = StaggeredGrid((7, 6), (1.3, 0.9))
    bc = Boundaries(*SIDES[kx], *SIDES[ky])
    assert bc.axis_kinds(0)[0] == KIND[kx[0]] and bc.axis_kinds(1)[1] == KIND[ky[-1]]
    (nx, ny), (dx, dy) = grid.num_points, grid.spacing
    dense = np.kron(_second_difference(nx, dx, kx), np.eye(ny)) + np.kron(
        np.eye(nx), _second_difference(ny, dy, ky)
    )
    rhs = np.random.default_rng(0).normal(size=(nx, ny))
    expected = (np.linalg.pinv(dense) @ rhs.ravel()).reshape(nx, ny)
    got = solve_poisson(jnp.asarray(rhs), grid, bc)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=0, atol=1e-12)


def test_gradient_of_the_direct_solve_matches_central_differences():
    grid = StaggeredGrid((6, 5), (1.2, 1.0))
    bc = Boundaries(Wall(), Outflow(), Wall(), Wall())
    x, y = grid.cell_centres(jnp.float64)
    base, direction = jnp.cos(3.0 * x) * y, jnp.sin(2.0 * y + x)

    @jax.jit
    def loss(a):
        phi = solve_poisson(base + a * direction, grid, bc)
        return jnp.sum(jnp.sin(phi) * x)

    a, h = jnp.asarray(0.3), 1e-5
    fd = (loss(a + h) - loss(a - h)) / (2 * h)
    np.testing.assert_allclose(float(jax.grad(loss)(a)), float(fd), rtol=1e-7)


def test_krylov_pressure_solver_steps_like_the_direct_one():
    grid = StaggeredGrid((12, 8), (1.5, 1.0))
    bc = Boundaries(Wall(), Outflow(), Wall(), Wall(velocity=1.0))
    keys = jax.random.split(jax.random.key(3))
    u = jax.random.normal(keys[0], grid.u_shape, jnp.float64)
    v = jax.random.normal(keys[1], grid.v_shape, jnp.float64)

    def run(solver):
        model = IncompressibleNavierStokes(grid, bc, 0.05, pressure_solver=solver)
        stepper = ProjectedRK(model, 0.01, stages=1)
        return jax.jit(lambda a, b: stepper.step(model.initial_state(a, b)))(u, v)

    direct, krylov = run("direct"), run("krylov")
    assert float(jnp.max(jnp.abs(direct.u))) > 0.1
    for a, b in zip(jax.tree.leaves(direct), jax.tree.leaves(krylov), strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=0, atol=1e-8)


def test_krylov_solve_is_differentiated_like_the_direct_one():
    grid = StaggeredGrid((6, 5))
    bc = Boundaries(Periodic(), Periodic(), Wall(), Wall())
    rhs = jnp.cos(jnp.arange(30.0)).reshape(grid.cell_shape)

    def loss(solve):
        return lambda r: jnp.sum(jnp.sin(solve(r)))

    direct = jax.grad(loss(lambda r: solve_poisson(r, grid, bc)))(rhs)
    krylov = jax.grad(loss(lambda r: solve_poisson_krylov(r, grid, bc, rtol=1e-12)))(rhs)
    np.testing.assert_allclose(np.asarray(krylov), np.asarray(direct), rtol=1e-8, atol=1e-10)


def test_unknown_pressure_solver_is_rejected():
    grid = StaggeredGrid((4, 4))
    with pytest.raises(hybrax.ConfigurationError, match="pressure_solver"):
        IncompressibleNavierStokes(grid, Boundaries.periodic(), 0.1, pressure_solver="fft")
