"""The pressure Poisson problem on the staggered grid: a direct solve on rectangles and a
preconditioned conjugate-gradient (lineax) solve with face weights (masked geometries).

Both are linear in the right-hand side and differentiated implicitly: the direct solve is a
fixed sequence of matrix products (its adjoint is the same solve), and `lineax.linear_solve`
differentiates the Krylov solve with an adjoint solve, never through the iterations.
"""

import functools

import jax.numpy as jnp
import lineax as lx
import numpy as np
from jaxtyping import Array, Float

from hybrax.core import ConfigurationError

__all__ = ["laplacian", "solve_poisson", "solve_poisson_krylov"]


def _laplacian_matrix_1d(n: int, h: float, kinds: tuple[str, str]) -> np.ndarray:
    """The 1-D cell-centred second difference with the given side conditions."""
    a = np.zeros((n, n))
    idx = np.arange(n)
    a[idx, idx] = -2.0
    a[idx[:-1], idx[:-1] + 1] = 1.0
    a[idx[1:], idx[1:] - 1] = 1.0
    if kinds[0] == "periodic":
        a[0, -1] += 1.0
        a[-1, 0] += 1.0
    else:
        a[0, 0] += {"neumann": 1.0, "dirichlet": -1.0}[kinds[0]]
        a[-1, -1] += {"neumann": 1.0, "dirichlet": -1.0}[kinds[1]]
    return a / h**2


@functools.lru_cache(maxsize=64)
def _eigen_1d(n: int, h: float, kinds: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    values, vectors = np.linalg.eigh(_laplacian_matrix_1d(n, h, kinds))
    return values, vectors


def _pseudo_inverse_symbols(grid, boundaries) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    (nx, ny), (dx, dy) = grid.num_points, grid.spacing
    lx_, qx = _eigen_1d(nx, dx, boundaries.axis_kinds(0))
    ly_, qy = _eigen_1d(ny, dy, boundaries.axis_kinds(1))
    total = lx_[:, None] + ly_[None, :]
    scale = np.abs(total).max()
    inverse = np.where(np.abs(total) < 1e-10 * scale, 0.0, 1.0 / np.where(total == 0, 1, total))
    return qx, qy, inverse


def solve_poisson(rhs: Float[Array, "nx ny"], grid, boundaries) -> Float[Array, "nx ny"]:
    """Solve ``laplacian(phi) = rhs`` on the rectangle by fast diagonalisation.

    The discrete Laplacian is a Kronecker sum of 1-D second differences, each diagonalised
    once on the host (periodic, Neumann or Dirichlet sides in any combination); the solve is
    four dense matrix products, ``O(n^3)`` but exact and fast for ``n`` up to a few hundred.
    Where the operator is singular (no Dirichlet side) the mean of ``rhs`` is dropped and
    ``phi`` has zero mean.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from hybrax.grids import StaggeredGrid
    >>> from hybrax.fluids import Boundaries
    >>> grid, bc = StaggeredGrid((8, 8)), Boundaries.periodic()
    >>> x, y = grid.cell_centres()
    >>> rhs = jnp.sin(2 * jnp.pi * x)
    >>> phi = solve_poisson(rhs, grid, bc)
    >>> bool(jnp.allclose(laplacian(phi, grid, bc), rhs, atol=1e-4))
    True
    """
    qx, qy, inverse = _pseudo_inverse_symbols(grid, boundaries)
    dtype = rhs.dtype
    qx, qy, inverse = (jnp.asarray(a, dtype) for a in (qx, qy, inverse))
    hat = qx.T @ rhs @ qy
    return qx @ (hat * inverse) @ qy.T


def _face_gradient(phi: Array, axis: int, h: float, kinds: tuple[str, str]) -> Array:
    """d phi / d axis on the faces along ``axis`` (boundary faces included)."""
    x = jnp.moveaxis(phi, axis, 0)
    inner = (x[1:] - x[:-1]) / h
    if kinds[0] == "periodic":
        wrap = (x[:1] - x[-1:]) / h
        low, high = wrap, wrap
    else:
        low = 2 * x[:1] / h if kinds[0] == "dirichlet" else jnp.zeros_like(x[:1])
        high = -2 * x[-1:] / h if kinds[1] == "dirichlet" else jnp.zeros_like(x[:1])
    return jnp.moveaxis(jnp.concatenate([low, inner, high]), 0, axis)


def pressure_gradient(phi: Array, grid, boundaries) -> tuple[Array, Array]:
    """``grad phi`` on the x-faces and y-faces, with the boundary conditions of the
    projection (zero on Neumann sides)."""
    dx, dy = grid.spacing
    return (
        _face_gradient(phi, 0, dx, boundaries.axis_kinds(0)),
        _face_gradient(phi, 1, dy, boundaries.axis_kinds(1)),
    )


def divergence(u: Array, v: Array, grid) -> Array:
    """Cell-centred divergence ``du/dx + dv/dy`` of face velocities."""
    dx, dy = grid.spacing
    return (u[1:] - u[:-1]) / dx + (v[:, 1:] - v[:, :-1]) / dy


def laplacian(phi: Float[Array, "nx ny"], grid, boundaries, weights=None) -> Array:
    """``div(w grad phi)`` at cell centres, ``w`` the optional face weights ``(wu, wv)``
    (1 in fluid, 0 on faces blocked by a solid)."""
    gx, gy = pressure_gradient(phi, grid, boundaries)
    if weights is not None:
        gx, gy = gx * weights[0], gy * weights[1]
    return divergence(gx, gy, grid)


def solve_poisson_krylov(
    rhs: Float[Array, "nx ny"],
    grid,
    boundaries,
    weights=None,
    *,
    rtol: float = 1e-6,
    max_steps: int = 2000,
) -> Float[Array, "nx ny"]:
    """Solve ``div(w grad phi) = rhs`` by conjugate gradients (`lineax.CG`), preconditioned
    with the rectangle's direct solve (exact when ``weights`` is ``None``).

    ``weights`` are face weights ``(wu, wv)`` of shapes ``(nx+1, ny)`` and ``(nx, ny+1)``
    (0 blocks a face); with weights the caller supplies a consistent ``rhs`` (zero in
    enclosed cells, zero sum over each region without a Dirichlet side), as a projection's
    divergence is. Differentiated implicitly by lineax. A solve that misses ``rtol``
    within ``max_steps`` raises (lineax's run-time error, with its iteration count).
    """
    if weights is not None:
        shapes = (grid.u_shape, grid.v_shape)
        got = tuple(jnp.shape(w) for w in weights)
        if got != shapes:
            raise ConfigurationError(
                f"weights must be face weights of shapes {shapes} (x-faces, y-faces), got {got}"
            )
    singular = "dirichlet" not in boundaries.axis_kinds(0) + boundaries.axis_kinds(1)
    b = rhs - jnp.mean(rhs) if singular and weights is None else rhs
    structure = jnp.zeros_like(rhs)

    def negative_laplacian(phi):
        return -laplacian(phi, grid, boundaries, weights)

    def preconditioner(r):
        return -solve_poisson(r, grid, boundaries)

    operator = lx.FunctionLinearOperator(
        negative_laplacian, structure, tags=lx.positive_semidefinite_tag
    )
    precondition = lx.FunctionLinearOperator(
        preconditioner, structure, tags=lx.positive_semidefinite_tag
    )
    solver = lx.CG(rtol=rtol, atol=rtol * 1e-3, max_steps=max_steps)
    solution = lx.linear_solve(operator, -b, solver, options={"preconditioner": precondition})
    phi = solution.value
    return phi - jnp.mean(phi) if singular else phi
