"""Immersed obstacles on 3-D staggered grids: a spanwise cylinder is the 2-D flow, a sphere
in a symmetric channel feels no side force, a drawn block of cells acts as the box it
draws, the drag's gradient with respect to the sphere's radius, and bad input."""

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
    MaskObstacle,
    Outflow,
    Periodic,
    ProjectedRK,
    Rectangle,
    Sphere,
    Wall,
    penalization_force,
)
from hybrax.grids import StaggeredGrid


def _run(model, steps, dt=0.02):
    final, _ = hybrax.rollout(
        ProjectedRK(model, dt), model.initial_state(dtype=jnp.float64), steps, save_every=None
    )
    return final


def _channel_3d(nz, profile_2d):
    """Inflow on the left, outflow on the right, walls in y, periodic in z."""
    profile = jnp.repeat(profile_2d[:, None], nz, axis=1)
    return Boundaries(Inflow(profile), Outflow(), Wall(), Wall(), Periodic(), Periodic())


def test_spanwise_cylinder_is_the_2d_flow():
    """A cylinder through a z-periodic channel: every d/dz vanishes, so u and v equal the
    2-D run's to round-off, w stays zero, and the force per unit depth times the depth is
    the 3-D force."""
    plane = StaggeredGrid((16, 8), (2.0, 1.0))
    y = jnp.asarray(plane.centres_1d(1), jnp.float64)
    profile = 4 * y * (1 - y)
    body = Cylinder(jnp.array([0.6, 0.5]), 0.2, 0.0625)
    flat = IncompressibleNavierStokes(
        plane, Boundaries(Inflow(profile), Outflow(), Wall(), Wall()), 0.05, obstacle=body
    )
    grid = StaggeredGrid((16, 8, 4), (2.0, 1.0, 0.5))
    deep = IncompressibleNavierStokes(grid, _channel_3d(4, profile), 0.05, obstacle=body)
    final2, final3 = _run(flat, 8), _run(deep, 8)
    spread = lambda q: jnp.repeat(q[..., None], 4, axis=-1)  # noqa: E731
    np.testing.assert_allclose(final3.u, spread(final2.u), atol=1e-12)
    np.testing.assert_allclose(final3.v, spread(final2.v), atol=1e-12)
    assert float(jnp.max(jnp.abs(final3.w))) < 1e-12
    f2, f3 = penalization_force(flat, final2, 0.02), penalization_force(deep, final3, 0.02)
    assert float(f2[0]) > 0  # drag along the flow
    np.testing.assert_allclose([f3[0], f3[1]], [0.5 * f2[0], 0.5 * f2[1]], atol=1e-12 * f2[0])
    np.testing.assert_allclose(float(f3[2]), 0.0, atol=1e-12)


def _sphere_channel(radius, cells=(12, 8, 8), width=0.0625):
    grid = StaggeredGrid(cells, (1.5, 1.0, 1.0))
    y, z = (jnp.asarray(grid.centres_1d(a), jnp.float64) for a in (1, 2))
    profile = 16 * (y * (1 - y))[:, None] * (z * (1 - z))[None, :]  # zero on all walls
    sides = Boundaries(Inflow(profile), Outflow(), Wall(), Wall(), Wall(), Wall())
    body = Sphere(jnp.array([0.5, 0.5, 0.5]), radius, width)
    return IncompressibleNavierStokes(grid, sides, 0.05, obstacle=body)


def test_sphere_in_a_square_duct_feels_only_drag():
    """A sphere on the axis of a square duct: the flow keeps the duct's mirror symmetries
    in y and z, so the side forces vanish; the drag is positive and the divergence stays at
    round-off. The flow is slowed inside the sphere, not stopped: the projection after each
    Brinkman step re-adds a pressure gradient there (about 10% of the peak speed is left,
    as in 2-D)."""
    model = _sphere_channel(0.25)
    final = _run(model, 12)
    fx, fy, fz = (float(f) for f in penalization_force(model, final, 0.02))
    assert fx > 0
    assert abs(fy) < 1e-10 * fx and abs(fz) < 1e-10 * fx
    u = np.asarray(final.u)
    np.testing.assert_allclose(u, u[:, ::-1, :], atol=1e-12)
    np.testing.assert_allclose(u, u[:, :, ::-1], atol=1e-12)
    assert float(jnp.max(jnp.abs(model.divergence(final)))) < 1e-11
    centre = u[4, 4, 4]  # the x-face at (0.5, 0.5625, 0.5625), inside the body
    assert abs(centre) < 0.15 * float(jnp.max(jnp.abs(final.u)))  # measured 0.104


def test_drawn_block_acts_as_the_box_it_draws():
    """A block of cells as a 3-D `MaskObstacle` gives the flow of the same `Rectangle`
    box (their masks agree on every face away from the box's edges)."""
    grid = StaggeredGrid((12, 8, 8), (1.5, 1.0, 1.0))
    solid = np.zeros(grid.cell_shape, bool)
    solid[4:6, 2:6, 3:5] = True  # x in [0.5, 0.75], y in [0.25, 0.75], z in [0.375, 0.625]
    drawn = MaskObstacle(solid, grid)
    box = Rectangle((0.625, 0.5, 0.5), (0.25, 0.5, 0.25), drawn.width)
    for axis in range(3):
        points = grid.face_points(axis, jnp.float64)
        np.testing.assert_allclose(drawn.mask(*points), box.mask(*points), atol=1e-12)
    sides = Boundaries(Inflow(jnp.ones((8, 8))), Outflow(), *(Periodic() for _ in range(4)))
    finals = [
        _run(IncompressibleNavierStokes(grid, sides, 0.05, obstacle=body), 6)
        for body in (drawn, box)
    ]
    for a, b in zip(finals[0].velocity, finals[1].velocity, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-10)


@pytest.mark.slow  # a 3-D gradient: about 20 s of compile, same size under --runslow
def test_drag_gradient_wrt_sphere_radius_matches_finite_differences():
    """On cells of 0.25 the mask's band is widened to 0.2 so that faces fall inside it
    (a band thinner than the cells would leave every face fully solid or fluid: no
    gradient)."""

    def drag(radius):
        model = _sphere_channel(radius, cells=(6, 4, 4), width=0.2)
        return penalization_force(model, _run(model, 2), 0.02)[0]

    r, h = jnp.asarray(0.3), 1e-5
    grad = jax.jit(jax.grad(drag))(r)
    fd = (drag(r + h) - drag(r - h)) / (2 * h)
    assert float(grad) > 0  # a bigger sphere, more drag
    np.testing.assert_allclose(grad, fd, rtol=1e-5)


def test_bad_3d_obstacles_name_the_problem():
    grid = StaggeredGrid((8, 6, 6), (1.5, 1.0, 1.0))
    walls = Boundaries(*(Wall() for _ in range(6)))
    with pytest.raises(hybrax.ConfigurationError, match=r"Sphere's centre has 2 .* 3-D"):
        IncompressibleNavierStokes(grid, walls, 0.1, obstacle=Sphere((0.5, 0.5), 0.2, 0.05))
    with pytest.raises(hybrax.ConfigurationError, match=r"Rectangle's centre has 2 .* 3-D"):
        IncompressibleNavierStokes(
            grid, walls, 0.1, obstacle=Rectangle((0.5, 0.5), (0.2, 0.2), 0.05)
        )
    with pytest.raises(hybrax.ConfigurationError, match="one entry per axis"):
        Rectangle((0.5, 0.5, 0.5), (0.2, 0.2), 0.05)
    with pytest.raises(hybrax.ConfigurationError, match=r"centre must be \(x, y\)"):
        Cylinder((0.5, 0.5, 0.5), 0.2, 0.05)
    inflow = Boundaries(Inflow(jnp.ones((6, 6))), Outflow(), *(Wall() for _ in range(4)))
    with pytest.raises(hybrax.ConfigurationError, match=r"cuts the inflow on the left side .* z ="):
        IncompressibleNavierStokes(grid, inflow, 0.1, obstacle=Sphere((0.1, 0.5, 0.5), 0.2, 0.05))
    with pytest.raises(hybrax.ConfigurationError, match="needs 3 coordinates"):
        grid.interpolate_cells(jnp.zeros(grid.cell_shape), 0.1, 0.2)
