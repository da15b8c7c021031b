"""The pressure Poisson problem on the staggered grid: a direct solve on rectangles and a
preconditioned conjugate-gradient (lineax) solve with face weights (masked geometries).

Both are linear in the right-hand side and differentiated implicitly: the direct (fast
transform) solve through `jax.lax.custom_linear_solve` of the symmetric Laplacian (its adjoint
is the same solve), and `lineax.linear_solve` differentiates the Krylov solve with an adjoint
solve, never through the iterations.
"""

import functools
import numbers

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jax import lax
from jaxtyping import Array, Float

from hybrax.core import ConfigurationError, check_float, check_parameter, concrete_or_none
from hybrax.grids import StaggeredGrid

from ._boundaries import Boundaries
from ._poisson_transforms import transform_solve

__all__ = ["laplacian", "solve_poisson", "solve_poisson_krylov"]


def _check_problem(rhs, grid, boundaries, owner: str) -> Array:
    """``rhs`` as an array after checking the grid, the boundaries and ``rhs`` itself (a
    floating cell field of the grid's shape; finite when it is concrete)."""
    if not isinstance(grid, StaggeredGrid):
        raise ConfigurationError(
            f"{owner}: grid must be a hybrax.grids.StaggeredGrid, got {type(grid).__name__}"
        )
    if not isinstance(boundaries, Boundaries):
        raise ConfigurationError(
            f"{owner}: boundaries must be hybrax.fluids.Boundaries (one condition per side), "
            f"got {type(boundaries).__name__}"
        )
    boundaries.check_grid(grid)
    try:
        rhs = jnp.asarray(rhs)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(
            f"{owner}: rhs must be a floating array of the grid's cell shape "
            f"{tuple(grid.cell_shape)}, got {type(rhs).__name__}"
        ) from error
    if tuple(rhs.shape) != tuple(grid.cell_shape):
        raise ConfigurationError(
            f"{owner}: rhs must have the grid's cell shape {tuple(grid.cell_shape)} (one value "
            f"per cell), got {tuple(rhs.shape)}; for an ensemble use jax.vmap"
        )
    if not jnp.issubdtype(rhs.dtype, jnp.floating):
        raise ConfigurationError(
            f"{owner}: rhs must be real floating point (float32 or float64), got dtype "
            f"{rhs.dtype}; convert with .astype(float)"
        )
    concrete = concrete_or_none(rhs)
    if concrete is not None and not np.all(np.isfinite(concrete)):
        bad = int(np.sum(~np.isfinite(concrete)))
        raise ConfigurationError(
            f"{owner}: rhs must be finite, got NaN or inf in {bad} of {concrete.size} cells"
        )
    return rhs


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
    rhs = _check_problem(rhs, grid, boundaries, "solve_poisson")
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
    """d phi / d axis on the faces along ``axis`` (boundary faces included); slices along
    the axis itself (no transpose, which would copy the whole field)."""
    n = phi.shape[axis]

    def span(start, stop):
        return lax.slice_in_dim(phi, start, stop, axis=axis)

    first, last = span(0, 1), span(n - 1, n)
    inner = (span(1, n) - span(0, n - 1)) / h
    if kinds[0] == "periodic":
        wrap = (first - last) / h
        low, high = wrap, wrap
    else:
        low = 2 * first / h if kinds[0] == "dirichlet" else jnp.zeros_like(first)
        high = -2 * last / h if kinds[1] == "dirichlet" else jnp.zeros_like(first)
    return jnp.concatenate([low, inner, high], axis)


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
    divergence is. Differentiated implicitly by lineax.

    ``rtol`` is the relative residual to reach, in ``(0, 1)``; ``max_steps`` a positive
    int. A solve that misses ``rtol`` within ``max_steps`` (or yields NaN) raises, never
    returns a partial answer: called with concrete inputs, a `hybrax.ConfigurationError`
    giving the iterations taken and the relative residual reached; under `jax.jit` /
    `jax.grad` / `jax.vmap`, an `equinox.EquinoxRuntimeError` when the computation runs.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from hybrax.grids import StaggeredGrid
    >>> from hybrax.fluids import Boundaries, Wall
    >>> grid, walls = StaggeredGrid((8, 8)), Boundaries(Wall(), Wall(), Wall(), Wall())
    >>> x, y = grid.cell_centres()
    >>> phi = solve_poisson_krylov(jnp.cos(jnp.pi * x) * jnp.cos(jnp.pi * y), grid, walls)
    >>> phi.shape
    (8, 8)
    """
    owner = "solve_poisson_krylov"
    rhs = _check_problem(rhs, grid, boundaries, owner)
    rtol = check_float(rtol, "rtol", positive=True)
    if rtol >= 1:
        raise ConfigurationError(
            f"{owner}: rtol is a relative residual and must lie in (0, 1), got {rtol}; pass "
            "e.g. rtol=1e-6 (float32 reaches about 1e-6, float64 about 1e-14)"
        )
    if isinstance(max_steps, bool) or not isinstance(max_steps, numbers.Integral) or max_steps < 1:
        raise ConfigurationError(
            f"{owner}: max_steps must be a positive int (most conjugate-gradient "
            f"iterations), got {max_steps!r}; pass e.g. max_steps=2000"
        )
    max_steps = int(max_steps)
    if weights is not None:
        shapes = tuple(grid.face_shape(axis) for axis in range(grid.ndim))
        if not isinstance(weights, (tuple, list)):
            raise ConfigurationError(
                f"{owner}: weights must be a tuple of face weights of shapes {shapes} "
                f"(x-faces, y-faces, ...), got {type(weights).__name__}"
            )
        got = tuple(jnp.shape(w) for w in weights)
        if got != shapes:
            raise ConfigurationError(
                f"weights must be face weights of shapes {shapes} (x-faces, y-faces, ...), "
                f"got {got}"
            )
        weights = tuple(
            check_parameter(w, f"weights[{axis}]", nonnegative=True)
            for axis, w in enumerate(weights)
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
    solution = lx.linear_solve(
        operator, -b, solver, options={"preconditioner": precondition}, throw=False
    )
    phi = _checked_solution(solution, b, negative_laplacian, rtol, max_steps, weights)
    return phi - jnp.mean(phi) if singular else phi


def _checked_solution(
    solution, b, negative_laplacian, rtol: float, max_steps: int, weights
) -> Array:
    """``solution.value``, or an error when conjugate gradients missed the tolerance or
    produced NaN: with the iterations and the relative residual when they are concrete,
    through `equinox.error_if` when traced. With face weights the caller's ``rhs`` may be
    inconsistent (a source in an enclosed region), where CG can stop early on a zero
    preconditioned residual: the true residual is then checked too (one Laplacian; a
    solution that misses the equation by more than 10% of ``rhs`` is a failure)."""
    phi = solution.value
    failed = (solution.result != lx.RESULTS.successful) | ~jnp.all(jnp.isfinite(phi))
    if weights is not None:
        miss = jnp.max(jnp.abs(-b - negative_laplacian(phi)))
        failed = failed | (miss > 0.1 * jnp.max(jnp.abs(b)))
    known = concrete_or_none(failed)
    if known is None:
        return eqx.error_if(
            phi,
            failed,
            f"solve_poisson_krylov: conjugate gradients did not reach rtol={rtol:g} within "
            f"max_steps={max_steps} iterations (or produced NaN); raise max_steps, loosen "
            "rtol, or check that rhs is consistent (zero sum over every region without an "
            "Outflow side) and the weights finite",
        )
    if bool(known):
        residual = float(jnp.linalg.norm(-b - negative_laplacian(phi)))
        scale = float(jnp.linalg.norm(b))
        relative = residual / scale if scale > 0 else residual
        steps = int(solution.stats.get("num_steps", max_steps))
        raise ConfigurationError(
            f"solve_poisson_krylov: conjugate gradients did not reach rtol={rtol:g}: after "
            f"{steps} of max_steps={max_steps} iterations the relative residual is "
            f"{relative:.3g}; raise max_steps, loosen rtol (float32 reaches about 1e-6), or "
            "check that rhs is consistent (zero sum over every region without an Outflow "
            "side) and the weights finite"
        )
    return phi
