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


def test_mask_obstacle_equals_the_rectangle_it_draws_along_straight_edges():
    """A block of cells as a `MaskObstacle` has the signed distance of the same rectangle
    on every face except near its corners (where a cell mask cannot know the corner)."""
    from hybrax.fluids import MaskObstacle

    grid = StaggeredGrid((24, 16), (1.5, 1.0))
    solid = np.zeros(grid.cell_shape, bool)
    solid[8:12, 4:10] = True  # x in [0.5, 0.75], y in [0.25, 0.625]
    body = MaskObstacle(solid, grid)
    box = Rectangle((0.625, 0.4375), (0.25, 0.375), body.width)
    for points in (grid.u_points(jnp.float64), grid.v_points(jnp.float64)):
        x, y = points
        away = (jnp.abs(x - 0.625) < 0.125 - 0.0625) | (jnp.abs(y - 0.4375) < 0.1875 - 0.0625)
        near = jnp.abs(box.signed_distance(x, y)) < 0.0625  # within one cell of the surface
        keep = away & near
        assert int(keep.sum()) > 10
        np.testing.assert_allclose(
            jnp.where(keep, body.mask(x, y), 0), jnp.where(keep, box.mask(x, y), 0), atol=1e-12
        )
    # in a channel the drawn block acts exactly as the rectangle
    profile = jnp.ones(grid.num_points[1])
    sides = Boundaries(Inflow(profile), Outflow(), Wall(), Wall())
    finals = []
    for obstacle in (body, box):
        model = IncompressibleNavierStokes(grid, sides, 0.05, obstacle=obstacle)
        finals.append(hybrax.rollout(ProjectedRK(model, 0.01), model.initial_state(), 8)[0])
    assert float(jnp.max(jnp.abs(finals[1].u))) > 1.5  # accelerated around the body
    np.testing.assert_allclose(finals[0].u, finals[1].u, atol=1e-10)
    np.testing.assert_allclose(finals[0].v, finals[1].v, atol=1e-10)


def test_bad_obstacles_are_rejected_naming_the_problem():
    from hybrax.fluids import MaskObstacle

    grid = StaggeredGrid((16, 8), (2.0, 1.0))
    solid = np.zeros((16, 8), bool)
    solid[6:8, 3:5] = True
    with pytest.raises(
        hybrax.ConfigurationError,
        match=r"solid must have the grid's cell shape "
        r"\(16, 8\).*got shape \(8, 16\)",
    ):
        MaskObstacle(solid.T, grid)
    with pytest.raises(hybrax.ConfigurationError, match="boolean"):
        MaskObstacle(solid * 0.5, grid)
    with pytest.raises(hybrax.ConfigurationError, match="no cell"):
        MaskObstacle(np.zeros((16, 8)), grid)
    sides = Boundaries(Inflow(1.0), Outflow(), Wall(), Wall())
    other = StaggeredGrid((32, 16), (2.0, 1.0))
    with pytest.raises(hybrax.ConfigurationError, match=r"drawn on \(16, 8\) cells.*\(32, 16\)"):
        IncompressibleNavierStokes(other, sides, 0.01, obstacle=MaskObstacle(solid, grid))
    # a body across the inflow side would swallow the prescribed inflow
    with pytest.raises(hybrax.ConfigurationError, match="cuts the inflow on the left side"):
        IncompressibleNavierStokes(grid, sides, 0.01, obstacle=Cylinder((0.05, 0.5), 0.2, 0.06))
    top = Boundaries(Wall(), Outflow(), Wall(), Inflow(-1.0))
    with pytest.raises(hybrax.ConfigurationError, match="cuts the inflow on the top side"):
        IncompressibleNavierStokes(
            grid, top, 0.01, obstacle=Rectangle((1.0, 0.9), (0.2, 0.3), 0.06)
        )
    # a body the grid cannot see (outside the domain, or far thinner than a cell) would
    # leave the flow without it
    for body in (Cylinder((5.0, 0.5), 0.1, 0.06), Cylinder((1.0, 0.5), 1e-3, 5e-4)):
        with pytest.raises(hybrax.ConfigurationError, match="covers no face of the grid"):
            IncompressibleNavierStokes(grid, sides, 0.01, obstacle=body)
    with pytest.raises(hybrax.ConfigurationError, match="covers no face of the grid"):
        IncompressibleNavierStokes.dfg_cylinder(3)  # 16 x 3 cells: the body falls between

    # a traced position (optimising the body) is not checked at construction, and works
    def drag_free_build(cx):
        body = Cylinder(jnp.stack([cx, 0.5]), 0.1, 0.06)
        return IncompressibleNavierStokes(grid, sides, 0.01, obstacle=body).obstacle.centre[0]

    assert float(jax.jit(drag_free_build)(0.05)) == pytest.approx(0.05)


def test_stability_number_counts_boundary_speeds_and_diffusion():
    """At rest the lid drives the cavity: its speed counts; a viscous flow is limited by
    diffusion; rollout's blow-up message names the number and a stable dt."""
    model = IncompressibleNavierStokes.lid_driven_cavity(16, 10.0)  # nu = 0.1
    state = model.initial_state()
    dx = 1 / 16
    advective = 0.001 * 1.0 / dx
    diffusive = 0.001 * 0.1 * 4 / dx**2
    np.testing.assert_allclose(model.courant_number(state, 0.001), max(advective, diffusive))
    inflow = IncompressibleNavierStokes(
        StaggeredGrid((16, 8), (2.0, 1.0)), Boundaries(Inflow(3.0), Outflow(), Wall(), Wall()), 0.0
    )
    np.testing.assert_allclose(
        inflow.courant_number(inflow.initial_state(), 0.01), 0.01 * 3 / 0.125
    )
    # ProjectedRK's max_courant stops such a run before it starts ...
    with pytest.raises(hybrax.ConfigurationError, match=r"Courant number 5\.12 .* dt <= 0\.01465"):
        hybrax.rollout(ProjectedRK(model, 0.05), state, 10)
    # ... and without it, the blow-up's message names the number and a stable dt
    unchecked = ProjectedRK(model, 0.05, max_courant=None)
    with pytest.raises(
        hybrax.NonFiniteStateError,
        match=r"stability number .* at dt = 0\.05 is "
        r"5\.12.*reaches at dt = 0\.00977",
    ):
        hybrax.rollout(unchecked, state, 10)
    # under an outer jit the number is known only at run time: it comes rounded (12% steps)
    with pytest.raises(Exception, match=r"at dt = 0\.05 is about 5\.01.*reaches at dt = 0\.00998"):
        jax.jit(lambda s: hybrax.rollout(unchecked, s, 10))(state)
