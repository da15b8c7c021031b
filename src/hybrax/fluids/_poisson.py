"""The pressure Poisson problem on the staggered grid: a direct solve on rectangles and a
preconditioned conjugate-gradient (lineax) solve with face weights (masked geometries).

Both are linear in the right-hand side and differentiated implicitly: the direct (fast
transform) solve through `jax.lax.custom_linear_solve` of the symmetric Laplacian (its adjoint
is the same solve), and `lineax.linear_solve` differentiates the Krylov solve with an adjoint
solve, never through the iterations.
"""

import functools

import jax
import jax.numpy as jnp
import lineax as lx
from jax import lax
from jaxtyping import Array, Float

from hybrax.core import ConfigurationError

from ._poisson_transforms import transform_solve

__all__ = ["laplacian", "solve_poisson", "solve_poisson_krylov"]


def solve_poisson(rhs: Float[Array, "..."], grid, boundaries) -> Float[Array, "..."]:
    """Solve ``laplacian(phi) = rhs`` on the rectangle by fast transforms.

    The discrete Laplacian is a Kronecker sum of 1-D second differences, each diagonalised
    by a fast transform: a real FFT on periodic axes, a DCT-II between Neumann sides (walls,
    inflow), a DST-II between Dirichlet sides (outflow, ``p = 0``) and a DCT-IV between one
    of each, so every combination of sides is solved directly in ``O(n^2 log n)``. Where the
    operator is singular (no Dirichlet side) the mean of ``rhs`` is dropped and ``phi`` has
    zero mean (the minimum-norm solution). Differentiated implicitly: the solve is a
    `jax.lax.custom_linear_solve` of the symmetric Laplacian, so its adjoint is the same fast
    solve.

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
    kinds = tuple(boundaries.axis_kinds(axis) for axis in range(grid.ndim))
    return _direct_solve(rhs, grid.num_points, grid.spacing, kinds)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _direct_solve(rhs: Array, num_points, spacing, kinds) -> Array:
    def matvec(phi):
        gradients = [_face_gradient(phi, a, spacing[a], kinds[a]) for a in range(phi.ndim)]
        return _divergence(gradients, spacing)

    def solve(_matvec, b):
        return transform_solve(b, num_points, spacing, kinds)

    return lax.custom_linear_solve(matvec, rhs, solve, symmetric=True)


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


def pressure_gradient(phi: Array, grid, boundaries) -> tuple[Array, ...]:
    """``grad phi`` on the x-faces, y-faces (and z-faces), with the boundary conditions of
    the projection (zero on Neumann sides)."""
    return tuple(
        _face_gradient(phi, axis, h, boundaries.axis_kinds(axis))
        for axis, h in enumerate(grid.spacing)
    )


def _divergence(components, spacing) -> Array:
    total = 0
    for axis, (q, h) in enumerate(zip(components, spacing, strict=True)):
        n = q.shape[axis]
        upper = lax.slice_in_dim(q, 1, n, axis=axis)
        lower = lax.slice_in_dim(q, 0, n - 1, axis=axis)
        total = total + (upper - lower) / h
    return total


def divergence(*components: Array, grid) -> Array:
    """Cell-centred divergence ``du/dx + dv/dy (+ dw/dz)`` of face velocities."""
    return _divergence(components, grid.spacing)


def laplacian(phi: Float[Array, "..."], grid, boundaries, weights=None) -> Array:
    """``div(w grad phi)`` at cell centres, ``w`` the optional face weights ``(wu, wv)``
    (1 in fluid, 0 on faces blocked by a solid)."""
    gradients = pressure_gradient(phi, grid, boundaries)
    if weights is not None:
        gradients = tuple(g * w for g, w in zip(gradients, weights, strict=True))
    return divergence(*gradients, grid=grid)


def solve_poisson_krylov(
    rhs: Float[Array, "..."],
    grid,
    boundaries,
    weights=None,
    *,
    rtol: float = 1e-6,
    max_steps: int = 2000,
) -> Float[Array, "..."]:
    """Solve ``div(w grad phi) = rhs`` by conjugate gradients (`lineax.CG`), preconditioned
    with the rectangle's direct solve (exact when ``weights`` is ``None``).

    ``weights`` are face weights ``(wu, wv)`` of shapes ``(nx+1, ny)`` and ``(nx, ny+1)``
    (0 blocks a face); with weights the caller supplies a consistent ``rhs`` (zero in
    enclosed cells, zero sum over each region without a Dirichlet side), as a projection's
    divergence is. Differentiated implicitly by lineax. A solve that misses ``rtol``
    within ``max_steps`` raises (lineax's run-time error, with its iteration count).
    """
    if weights is not None:
        shapes = tuple(grid.face_shape(axis) for axis in range(grid.ndim))
        got = tuple(jnp.shape(w) for w in weights)
        if got != shapes:
            raise ConfigurationError(
                f"weights must be face weights of shapes {shapes} (x-faces, y-faces, ...), "
                f"got {got}"
            )
    kinds = sum((boundaries.axis_kinds(axis) for axis in range(grid.ndim)), ())
    singular = "dirichlet" not in kinds
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
