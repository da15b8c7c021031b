"""Immersed obstacles by Brinkman penalisation: masks, flow stopped inside, drag sign and
gradient with respect to the cylinder radius against finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.fluids import (
    Boundaries,
    Cylinder,
    IncompressibleNavierStokes,
    Inflow,
    Outflow,
    ProjectedRK,
    Rectangle,
    Wall,
    penalization_force,
)
from hybrax.grids import StaggeredGrid


def test_masks_are_one_inside_zero_outside():
    x = jnp.array([0.5, 0.9])
    y = jnp.array([0.5, 0.5])
    np.testing.assert_allclose(Cylinder((0.5, 0.5), 0.1, 0.01).mask(x, y), [1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(
        Rectangle((0.5, 0.5), (0.2, 0.4), 0.01).mask(x, y), [1.0, 0.0], atol=1e-6
    )
    with pytest.raises(hybrax.ConfigurationError, match="radius"):
        Cylinder((0.5, 0.5), -0.1, 0.01)


DT = 0.02


def _model(radius):
    grid = StaggeredGrid((16, 8), (2.0, 1.0))
    y = grid.centres_1d(1)
    sides = Boundaries(Inflow(jnp.asarray(4 * y * (1 - y))), Outflow(), Wall(), Wall())
    body = Cylinder(jnp.array([0.6, 0.5]), radius, 0.0625)
    return IncompressibleNavierStokes(grid, sides, 0.05, "van_leer", obstacle=body)


def _drag(radius, n_steps):
    """The x force on the cylinder after ``n_steps`` steps, and the final state."""
    model = _model(radius)
    final, _ = hybrax.rollout(ProjectedRK(model, DT), model.initial_state(), n_steps)
    return penalization_force(model, final, DT)[0], final


@pytest.fixture(scope="module")
def drag_and_gradient():
    """``jit(value_and_grad)`` of the 15-step drag: one compilation serves the gradient, the
    finite differences and (by default) the flow checks."""
    return jax.jit(jax.value_and_grad(lambda r: _drag(r, 15), has_aux=True))


def test_obstacle_slows_the_flow_and_feels_a_drag(full_size, drag_and_gradient):
    # 30 steps (t = 0.6) at full size; by default the 15 steps (t = 0.3) the gradient test
    # compiles already
    radius = jnp.asarray(0.2)
    if full_size:
        _, final = _drag(radius, 30)
    else:
        (_, final), _ = drag_and_gradient(radius)
    model = _model(radius)
    chi_u, _ = model.obstacle_masks(final.u.dtype)
    inside = chi_u > 0.95
    assert float(jnp.max(jnp.abs(final.u[inside]))) < 0.3 * float(jnp.max(final.u))
    fx, fy = penalization_force(model, final, DT)
    assert float(fx) > 0
    assert abs(float(fy)) < 0.05 * float(fx)  # symmetric body in a symmetric channel


def test_drag_gradient_wrt_radius_matches_finite_differences(drag_and_gradient):
    r = jnp.asarray(0.2)
    _, grad = drag_and_gradient(r)
    h = 1e-5
    (plus, _), _ = drag_and_gradient(r + h)
    (minus, _), _ = drag_and_gradient(r - h)
    fd = (plus - minus) / (2 * h)
    assert float(grad) > 0  # a bigger cylinder feels more drag
    np.testing.assert_allclose(grad, fd, rtol=1e-5)


def test_vorticity_of_solid_body_rotation_is_twice_the_rate():
    from hybrax.fluids import staggered_vorticity

    grid = StaggeredGrid((8, 8))
    model = IncompressibleNavierStokes(grid, Boundaries(Wall(), Wall(), Wall(), Wall()), 0.1)
    _, yu = grid.u_points(jnp.float64)
    xv, _ = grid.v_points(jnp.float64)
    state = model.initial_state()
    state = state.__class__(-(yu - 0.5), xv - 0.5, state.pressure, state.time)
    np.testing.assert_allclose(staggered_vorticity(model, state), 2.0, rtol=1e-12)
