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


def _channel(radius, n_steps=30):
    grid = StaggeredGrid((16, 8), (2.0, 1.0))
    y = grid.centres_1d(1)
    sides = Boundaries(Inflow(jnp.asarray(4 * y * (1 - y))), Outflow(), Wall(), Wall())
    body = Cylinder(jnp.array([0.6, 0.5]), radius, 0.0625)
    model = IncompressibleNavierStokes(grid, sides, 0.05, "van_leer", obstacle=body)
    dt = 0.02
    final, _ = hybrax.rollout(ProjectedRK(model, dt), model.initial_state(), n_steps)
    return model, final, dt


def test_obstacle_slows_the_flow_and_feels_a_drag():
    model, final, dt = _channel(jnp.asarray(0.2))
    chi_u, _ = model.obstacle_masks(final.u.dtype)
    inside = chi_u > 0.95
    assert float(jnp.max(jnp.abs(final.u[inside]))) < 0.3 * float(jnp.max(final.u))
    fx, fy = penalization_force(model, final, dt)
    assert float(fx) > 0
    assert abs(float(fy)) < 0.05 * float(fx)  # symmetric body in a symmetric channel


def test_drag_gradient_wrt_radius_matches_finite_differences():
    @jax.jit
    def drag(radius):
        model, final, dt = _channel(radius, 15)
        return penalization_force(model, final, dt)[0]

    r = jnp.asarray(0.2)
    grad = jax.jit(jax.grad(drag))(r)
    h = 1e-5
    fd = (drag(r + h) - drag(r - h)) / (2 * h)
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
