"""Staggered-grid pressure Poisson solves: direct vs Krylov, manufactured solutions (second
order), projection to round-off divergence, implicit gradients equal a dense solve."""

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
    Wall,
    solve_poisson,
    solve_poisson_krylov,
)
from hybrax.grids import StaggeredGrid

CASES = {
    "periodic": Boundaries.periodic(),
    "walls": Boundaries(Wall(), Wall(), Wall(), Wall()),
    "channel": Boundaries(Periodic(), Periodic(), Wall(), Wall()),
    "outflow": Boundaries(Wall(), Outflow(), Wall(), Wall()),
}


def _manufactured(grid, kind):
    """(phi, lap phi) for a smooth phi meeting the side conditions of ``kind``."""
    x, y = grid.cell_centres(jnp.float64)
    c = 2 * jnp.pi
    if kind == "periodic":
        return jnp.sin(c * x) * jnp.cos(c * y), -2 * c**2 * jnp.sin(c * x) * jnp.cos(c * y)
    if kind in ("walls", "channel"):  # dphi/dn = 0 on y walls (and x walls)
        return jnp.cos(c * x) * jnp.cos(jnp.pi * y), -(c**2 + jnp.pi**2) * jnp.cos(c * x) * jnp.cos(
            jnp.pi * y
        )
    k = jnp.pi / 2  # Neumann at x = 0, zero at x = 1
    return jnp.cos(k * x) * jnp.cos(jnp.pi * y), -(k**2 + jnp.pi**2) * jnp.cos(k * x) * jnp.cos(
        jnp.pi * y
    )


@pytest.mark.parametrize("kind", list(CASES))
def test_manufactured_solution_converges_at_second_order(kind):
    errors = []
    for n in (8, 16, 32):
        grid = StaggeredGrid((n, n))
        phi, rhs = _manufactured(grid, kind)
        got = solve_poisson(rhs, grid, CASES[kind])
        if kind != "outflow":
            got, phi = got - jnp.mean(got), phi - jnp.mean(phi)
        errors.append(float(jnp.max(jnp.abs(got - phi))))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert errors[-1] < 5e-3
    assert np.all(orders > 1.8), (errors, orders)


@pytest.mark.parametrize("kind", list(CASES))
def test_krylov_agrees_with_direct(kind):
    grid = StaggeredGrid((12, 10), (1.2, 1.0))
    rhs = jax.random.normal(jax.random.key(0), grid.cell_shape, jnp.float64)
    if kind != "outflow":
        rhs = rhs - jnp.mean(rhs)
    direct = solve_poisson(rhs, grid, CASES[kind])
    krylov = solve_poisson_krylov(rhs, grid, CASES[kind], rtol=1e-10)
    np.testing.assert_allclose(krylov, direct, atol=1e-8)
    weights = (jnp.ones(grid.u_shape), jnp.ones(grid.v_shape))
    weighted = solve_poisson_krylov(rhs, grid, CASES[kind], weights, rtol=1e-10, max_steps=500)
    np.testing.assert_allclose(weighted, direct, atol=1e-7)


def test_krylov_with_blocked_faces_solves_the_weighted_problem():
    from hybrax.fluids._poisson import laplacian

    grid, bc = StaggeredGrid((10, 10)), CASES["walls"]
    wu = jnp.ones(grid.u_shape).at[4:7, 4:6].set(0.0)
    wv = jnp.ones(grid.v_shape).at[4:6, 4:7].set(0.0)
    fluid = jnp.ones(grid.cell_shape).at[4:6, 4:6].set(0.0)  # the enclosed cells
    rhs = jax.random.normal(jax.random.key(1), grid.cell_shape, jnp.float64) * fluid
    rhs = (rhs - jnp.sum(rhs) / jnp.sum(fluid)) * fluid
    phi = solve_poisson_krylov(rhs, grid, bc, (wu, wv), rtol=1e-10, max_steps=1000)
    residual = laplacian(phi, grid, bc, (wu, wv)) - rhs
    assert float(jnp.max(jnp.abs(residual))) < 1e-6


def test_gradient_through_poisson_equals_dense_solve():
    grid, bc = StaggeredGrid((5, 4)), CASES["outflow"]
    from hybrax.fluids._poisson import laplacian

    matrix = jax.jacfwd(lambda p: laplacian(p, grid, bc).ravel())(
        jnp.zeros(grid.cell_shape, jnp.float64)
    ).reshape(20, 20)
    target = jnp.linspace(0.0, 1.0, 20).reshape(grid.cell_shape)
    rhs = jnp.cos(jnp.arange(20.0)).reshape(grid.cell_shape)

    def loss(solve):
        return lambda r: jnp.sum((solve(r) - target) ** 2)

    dense = jax.grad(loss(lambda r: jnp.linalg.solve(matrix, r.ravel()).reshape(r.shape)))(rhs)
    direct = jax.grad(loss(lambda r: solve_poisson(r, grid, bc)))(rhs)
    krylov = jax.grad(loss(lambda r: solve_poisson_krylov(r, grid, bc, rtol=1e-12)))(rhs)
    np.testing.assert_allclose(direct, dense, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(krylov, dense, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind", list(CASES))
def test_projection_leaves_round_off_divergence(kind, dtype):
    grid = StaggeredGrid((16, 12), (1.0, 0.75))
    model = IncompressibleNavierStokes(grid, CASES[kind], 0.01)
    keys = jax.random.split(jax.random.key(2))
    u = jax.random.normal(keys[0], grid.u_shape, dtype)
    v = jax.random.normal(keys[1], grid.v_shape, dtype)
    state = model.initial_state(u, v, dtype)
    assert state.u.dtype == dtype
    tol = 1e-3 if dtype == jnp.float32 else 1e-10
    assert float(jnp.max(jnp.abs(model.divergence(state)))) < tol


def test_krylov_rejects_weights_of_the_wrong_shape():
    grid = StaggeredGrid((6, 6))
    with pytest.raises(hybrax.ConfigurationError, match="weights"):
        solve_poisson_krylov(jnp.zeros((6, 6)), grid, CASES["walls"], (jnp.ones((6, 6)),) * 2)
