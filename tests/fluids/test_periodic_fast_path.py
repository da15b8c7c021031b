"""The periodic fast path of IncompressibleNavierStokes (built-in advection schemes and the
direct projection by periodic shifts, `_periodic_fv`) equals the general padded operators."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.fluids import (
    Boundaries,
    CentralInterpolation,
    Cylinder,
    FusedLearnedInterpolation,
    IncompressibleNavierStokes,
    ProjectedRK,
)
from hybrax.grids import StaggeredGrid


def _random_state(model, seed, dtype=jnp.float64):
    rng = np.random.default_rng(seed)
    shapes = [model.grid.face_shape(a) for a in range(model.grid.ndim)]
    velocity = [jnp.asarray(rng.normal(0.0, 0.5, s), dtype) for s in shapes]
    w = velocity[2] if model.grid.ndim == 3 else None
    return model.initial_state(velocity[0], velocity[1], dtype, w=w)


@eqx.filter_jit
def _general_tendency(model, state):
    """The padded operator (`_momentum`) the fast path replaces."""
    return tuple(model._momentum(state.velocity, a, model.scheme) for a in range(model.grid.ndim))


@eqx.filter_jit
def _general_project(model, state, dt):
    """The padded projection (the same model with the fast paths switched off)."""
    general = _General(
        model.grid, model.boundaries, model.viscosity, model.scheme, model.forcing, drag=model.drag
    )
    return general.project(state, dt)


class _General(IncompressibleNavierStokes):
    """The model with both fast paths switched off (the general padded operators)."""

    @property
    def _periodic_direct(self) -> bool:
        return False


@pytest.mark.parametrize(
    ("ndim", "scheme"), [(2, "central"), (2, "upwind"), (2, "van_leer"), (3, "van_leer")]
)
def test_fast_path_equals_general_operators(ndim, scheme):
    """Tendency (advection by each built-in scheme, diffusion, drag, forcing field) and
    projection (velocity and pressure) equal the general operators to round-off on 2-D and
    3-D grids of unequal sizes and spacings; the periodic copy faces stay copies."""
    shape = (12, 10) if ndim == 2 else (8, 6, 10)
    grid = StaggeredGrid(shape, (2.0, 1.5) if ndim == 2 else (2.0, 1.5, 1.0))
    _, y, *_ = grid.face_points(0)
    model = IncompressibleNavierStokes(
        grid, Boundaries.periodic(ndim), 0.03, scheme, jnp.sin(3 * y), drag=0.2
    )
    assert model._periodic_scheme == scheme
    state = _random_state(model, 0)
    fast = eqx.filter_jit(model.tendency)(state, 0.0).velocity
    for a, (got, want) in enumerate(zip(fast, _general_tendency(model, state), strict=True)):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, err_msg=f"axis {a}")
        first, last = (jax.lax.index_in_dim(got, i, a) for i in (0, -1))
        np.testing.assert_array_equal(first, last)
    moved = state.with_velocity(
        tuple(q + 0.1 * r for q, r in zip(state.velocity, fast, strict=True))
    )
    projected = eqx.filter_jit(model.project)(moved, 0.1)
    expected = _general_project(model, moved, 0.1)
    for got, want in zip(projected.velocity, expected.velocity, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(projected.pressure, expected.pressure, rtol=0, atol=1e-11)
    assert float(jnp.max(jnp.abs(model.divergence(projected)))) < 1e-12


def _two_paths():
    model = IncompressibleNavierStokes.kolmogorov(16)
    general = _General(
        model.grid, model.boundaries, model.viscosity, model.scheme, model.forcing, drag=model.drag
    )
    return model, general, _random_state(model, 1)


def _final_energy(model, state, nu):
    model = type(model)(model.grid, model.boundaries, nu, model.scheme, model.forcing, drag=0.1)
    final, _ = hybrax.rollout(ProjectedRK(model, 0.02), state, 5, save_every=None)
    return model.kinetic_energy(final)


def test_fast_path_rollout_equals_the_general_path():
    """Five SSP-RK3 steps of the Kolmogorov flow agree between the two paths (float64)."""
    model, general, state = _two_paths()
    fast = eqx.filter_jit(_final_energy)(model, state, 1e-2)
    slow = eqx.filter_jit(_final_energy)(general, state, 1e-2)
    np.testing.assert_allclose(fast, slow, rtol=1e-12)


@pytest.mark.slow
def test_fast_path_gradient_equals_the_general_path(full_size):
    """The gradient of the final energy with respect to the viscosity agrees between the
    two paths (float64): the shifts differentiate like the padded stencils."""
    if not full_size:
        pytest.skip("compiles two gradients through the rollout (~12 CPU-s): --runslow")
    model, general, state = _two_paths()
    fast = jax.grad(_final_energy, argnums=2)(model, state, 1e-2)
    slow = jax.grad(_final_energy, argnums=2)(general, state, 1e-2)
    np.testing.assert_allclose(fast, slow, rtol=1e-9)
    assert abs(float(fast)) > 0


def test_fast_path_is_taken_only_where_it_applies():
    grid = StaggeredGrid((16, 16), (2.0, 2.0))
    periodic = Boundaries.periodic(2)
    assert IncompressibleNavierStokes(grid, periodic, 0.01)._periodic_scheme == "central"

    class Custom(CentralInterpolation):
        pass

    others = [
        IncompressibleNavierStokes(grid, periodic, 0.01, Custom()),
        IncompressibleNavierStokes(grid, periodic, 0.01, pressure_solver="krylov"),
        IncompressibleNavierStokes(grid, periodic, 0.01, obstacle=Cylinder((1.0, 1.0), 0.3, 0.125)),
        IncompressibleNavierStokes.lid_driven_cavity(16),
    ]
    assert all(m._periodic_scheme is None for m in others)
    assert others[0]._periodic_direct  # a user's scheme: the fast projection, general tendency
    assert not any(m._periodic_direct for m in others[1:])


class _Pointwise(eqx.Module):
    """A small network on any number of dimensions: ``tanh`` of a channel mix of each cell
    and its neighbour along the first axis."""

    weight: jax.Array

    def __call__(self, x):
        both = jnp.concatenate([x, jnp.roll(x, 1, axis=1)])
        return 0.3 * jnp.tanh(jnp.tensordot(self.weight, both, axes=1))


@pytest.mark.parametrize(
    ("ndim", "stencil_size", "base"), [(2, 4, "central"), (2, 2, "upwind"), (3, 4, "upwind")]
)
def test_fast_path_learned_interpolation_equals_general_operators(ndim, stencil_size, base):
    """A `FusedLearnedInterpolation` (a random network, so every stencil correction is
    non-zero) takes the fast path, bound or not, and its tendency equals the general padded
    operators with the same bound corrections to round-off; in 2-D its gradient with respect
    to the network's weights too."""
    shape = (12, 10) if ndim == 2 else (6, 4, 8)
    grid = StaggeredGrid(shape, (2.0, 1.5) if ndim == 2 else (2.0, 1.5, 1.0))
    channels = ndim * ndim * (stencil_size - 1)
    net = _Pointwise(jax.random.normal(jax.random.key(3), (channels, 2 * ndim), jnp.float64))
    scheme = FusedLearnedInterpolation(net, stencil_size=stencil_size, base=base)
    model = IncompressibleNavierStokes(grid, Boundaries.periodic(ndim), 0.03, scheme, drag=0.2)
    state = _random_state(model, 2)
    bound = scheme.bind(state.velocity)
    frozen = eqx.tree_at(lambda m: m.scheme, model, bound)
    assert model._periodic_scheme == frozen._periodic_scheme == "learned"

    @eqx.filter_jit
    def general(model, state):
        bound = model.scheme.bind(state.velocity)
        return tuple(model._momentum(state.velocity, a, bound) for a in range(ndim))

    want = general(model, state)
    for m in (model, frozen):
        got = eqx.filter_jit(m.tendency)(state, 0.0).velocity
        for a, (g, w) in enumerate(zip(got, want, strict=True)):
            np.testing.assert_allclose(g, w, rtol=0, atol=1e-12, err_msg=f"axis {a}")
    baseline = IncompressibleNavierStokes(grid, Boundaries.periodic(ndim), 0.03, base, drag=0.2)
    plain = eqx.filter_jit(baseline.tendency)(state, 0.0).velocity
    assert max(float(jnp.max(jnp.abs(g - p))) for g, p in zip(want, plain, strict=True)) > 1e-3

    if ndim == 3:
        return

    @eqx.filter_jit
    @eqx.filter_grad
    def fast_grad(m):
        return sum(jnp.sum(r**2) for r in m.tendency(state, 0.0).velocity)

    @eqx.filter_jit
    @eqx.filter_grad
    def slow_grad(m):
        bound = m.scheme.bind(state.velocity)
        return sum(jnp.sum(m._momentum(state.velocity, a, bound) ** 2) for a in range(ndim))

    leaves = zip(jax.tree.leaves(fast_grad(model)), jax.tree.leaves(slow_grad(model)), strict=True)
    for g, w in leaves:
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12)
