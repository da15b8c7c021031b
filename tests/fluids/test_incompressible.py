"""Staggered-grid incompressible Navier–Stokes: Poiseuille (second order in space), Couette
(exact), the lid-driven cavity against Ghia, Ghia & Shin (1982) at Re 100 and 1000, the
energy of a closed cavity (conserved without viscosity, its budget closed with it),
inflow/outflow mass balance, gradients against finite differences, jit/vmap, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.fluids import (
    Boundaries,
    FreeSlip,
    IncompressibleNavierStokes,
    Inflow,
    Outflow,
    Periodic,
    ProjectedRK,
    Wall,
)
from hybrax.grids import StaggeredGrid

# Ghia, U., Ghia, K. N. & Shin, C. T. (1982), J. Comput. Phys. 48, 387-411, Table I, Re = 100:
# u along the vertical centreline x = 0.5, as (y, u).
GHIA_RE100_U = np.array(
    [
        [1.0000, 1.00000], [0.9766, 0.84123], [0.9688, 0.78871], [0.9609, 0.73722],
        [0.9531, 0.68717], [0.8516, 0.23151], [0.7344, 0.00332], [0.6172, -0.13641],
        [0.5000, -0.20581], [0.4531, -0.21090], [0.2813, -0.15662], [0.1719, -0.10150],
        [0.1016, -0.06434], [0.0703, -0.04775], [0.0625, -0.04192], [0.0547, -0.03717],
        [0.0000, 0.00000],
    ]
)  # fmt: skip
# Table II, Re = 100: v along the horizontal centreline y = 0.5, as (x, v).
GHIA_RE100_V = np.array(
    [
        [1.0000, 0.00000], [0.9688, -0.05906], [0.9609, -0.07391], [0.9531, -0.08864],
        [0.9453, -0.10313], [0.9063, -0.16914], [0.8594, -0.22445], [0.8047, -0.24533],
        [0.5000, 0.05454], [0.2344, 0.17527], [0.2266, 0.17507], [0.1563, 0.16077],
        [0.0938, 0.12317], [0.0781, 0.10890], [0.0703, 0.10091], [0.0625, 0.09233],
        [0.0000, 0.00000],
    ]
)  # fmt: skip

# Table I and II at Re = 1000 (the same points).
GHIA_RE1000_U = np.array(
    [
        [1.0000, 1.00000], [0.9766, 0.65928], [0.9688, 0.57492], [0.9609, 0.51117],
        [0.9531, 0.46604], [0.8516, 0.33304], [0.7344, 0.18719], [0.6172, 0.05702],
        [0.5000, -0.06080], [0.4531, -0.10648], [0.2813, -0.27805], [0.1719, -0.38289],
        [0.1016, -0.29730], [0.0703, -0.22220], [0.0625, -0.20196], [0.0547, -0.18109],
        [0.0000, 0.00000],
    ]
)  # fmt: skip
GHIA_RE1000_V = np.array(
    [
        [1.0000, 0.00000], [0.9688, -0.21388], [0.9609, -0.27669], [0.9531, -0.33714],
        [0.9453, -0.39188], [0.9063, -0.51550], [0.8594, -0.42665], [0.8047, -0.31966],
        [0.5000, 0.02526], [0.2344, 0.32235], [0.2266, 0.33075], [0.1563, 0.37095],
        [0.0938, 0.32627], [0.0781, 0.30353], [0.0703, 0.29012], [0.0625, 0.27485],
        [0.0000, 0.00000],
    ]
)  # fmt: skip
GHIA = {  # Re: (u profile, v profile, (u_min, its y))
    100: (GHIA_RE100_U, GHIA_RE100_V, (-0.21090, 0.4531)),
    1000: (GHIA_RE1000_U, GHIA_RE1000_V, (-0.38289, 0.1719)),
}


def _final(model, dt, n_steps, state=None):
    state = model.initial_state() if state is None else state
    final, _ = hybrax.rollout(ProjectedRK(model, dt), state, n_steps, save_every=None)
    return final


def _poiseuille_error(ny: int) -> float:
    model = IncompressibleNavierStokes.channel((4, ny))
    dt = 0.2 / ny**2
    final = _final(model, dt, int(1.2 / dt))  # e^{-pi^2 1.2}: transients below 1e-5
    exact = model.poiseuille_profile(model.grid.centres_1d(1))
    return float(jnp.max(jnp.abs(final.u[0] - exact)))


def test_poiseuille_profile_converges_at_second_order(full_size):
    sizes = (8, 16, 32) if full_size else (8, 16)
    errors = np.array([_poiseuille_error(n) for n in sizes])
    orders = np.log2(errors[:-1] / errors[1:])
    assert errors[-1] < 0.02  # centreline velocity 1
    assert np.all(orders > 1.9), (errors, orders)


def test_couette_profile_is_exact_at_every_resolution():
    """Plane Couette flow (periodic in x, the top wall sliding at U): from rest to the steady
    linear profile u = U y / Ly, which the second-order scheme holds exactly: the error is
    round-off on 8 and 16 cells (stronger than second-order convergence), in float64."""
    for ny in (8, 16):
        grid = StaggeredGrid((4, ny), (1.0, 1.0))
        sides = Boundaries(Periodic(), Periodic(), Wall(), Wall(velocity=1.5))
        model = IncompressibleNavierStokes(grid, sides, 1.0)
        dt = 0.4 / ny**2  # diffusion number 0.8; e^{-pi^2 t} below 1e-12 by t = 3
        final = _final(model, dt, round(3.0 / dt), model.initial_state(dtype=jnp.float64))
        exact = 1.5 * model.grid.centres_1d(1)
        np.testing.assert_allclose(final.u, jnp.broadcast_to(exact, final.u.shape), atol=1e-12)


def _closed_box(viscosity, scheme, sides=None):
    """A 32² closed box (walls at rest) with a divergence-free swirl that reaches the walls."""
    grid = StaggeredGrid((32, 32), (1.0, 1.0))
    sides = sides or Boundaries(Wall(), Wall(), Wall(), Wall())
    model = IncompressibleNavierStokes(grid, sides, viscosity, scheme)
    x, y = grid.u_points(jnp.float64)
    xv, yv = grid.v_points(jnp.float64)
    u = jnp.sin(2 * jnp.pi * y) * jnp.sin(jnp.pi * x) ** 2 + 0.3 * jnp.cos(3 * y)
    v = -jnp.sin(2 * jnp.pi * xv) * jnp.sin(jnp.pi * yv) ** 2 * (1 + 0.5 * xv)
    return model, model.initial_state(u, v, jnp.float64)


@pytest.mark.parametrize("side", [Wall, FreeSlip])
def test_inviscid_closed_cavity_conserves_energy_but_for_the_time_scheme(side):
    """nu = 0 in a closed box: the central scheme's advection and the projection do no work,
    so the kinetic energy changes only by SSP-RK3's dissipation, third order in dt
    (measured over one time unit, Courant 0.8 and 0.4: -4.4e-7, -5.4e-8, for no-slip and
    free-slip walls alike); van Leer's limiter dissipates 1-1.4% whatever the step."""
    changes = []
    for dt in (0.01, 0.005):
        model, state = _closed_box(0.0, "central", Boundaries(*(side() for _ in range(4))))
        final = _final(model, dt, round(1.0 / dt), state)
        changes.append(float(model.kinetic_energy(final) / model.kinetic_energy(state)) - 1)
    assert abs(changes[0]) < 1e-6 and abs(changes[1]) < 1e-7, changes
    assert changes[0] / changes[1] > 6, changes  # third order: 8
    model, state = _closed_box(0.0, "van_leer")
    kept = model.kinetic_energy(_final(model, 0.01, 100, state)) / model.kinetic_energy(state)
    assert 0.95 < float(kept) < 0.995, float(kept)


def test_viscous_cavity_energy_budget_closes():
    """With viscosity the kinetic energy falls by exactly the work of the tendency (its
    viscous part; advection and pressure do none): E(1) - E(0) against the trapezoid rule
    of mean(u . F(u)) over every step, second order in dt (measured 2.0e-5, 5.0e-6 at
    dt = 0.004, 0.002; the energy falls by 66%)."""

    model, state = _closed_box(0.01, "central")

    def observe(s):
        rates = model.tendency(s, 0.0)
        work = sum(jnp.mean(q * r) for q, r in zip(s.velocity, rates.velocity, strict=True))
        return model.kinetic_energy(s), work

    gaps = []
    for dt in (0.004, 0.002):
        stepper = ProjectedRK(model, dt)
        _, (energy, power) = hybrax.rollout(
            stepper, state, round(1.0 / dt), save_every=1, observe=observe
        )
        start = observe(state)
        energy = np.concatenate([[float(start[0])], np.asarray(energy)])
        power = np.concatenate([[float(start[1])], np.asarray(power)])
        assert energy[-1] < 0.5 * energy[0]
        gaps.append((energy[-1] - energy[0]) / np.trapezoid(power, dx=dt) - 1)
    assert abs(gaps[0]) < 5e-5 and abs(gaps[1]) < 1.5e-5, gaps
    assert 3 < gaps[0] / gaps[1] < 5, gaps  # second order (the trapezoid rule): 4


def _centrelines(final, n):
    y = np.concatenate([[0.0], (np.arange(n) + 0.5) / n, [1.0]])
    u = np.concatenate([[0.0], np.asarray(final.u[n // 2]), [1.0]])
    v = np.concatenate([[0.0], np.asarray(final.v[:, n // 2]), [0.0]])
    return np.interp(GHIA_RE100_U[:, 0], y, u), np.interp(GHIA_RE100_V[:, 0], y, v)


def _centreline_minimum(final, n):
    """The minimum of u on the vertical centreline and its height: the parabola through the
    smallest cell value and its two neighbours."""
    y = (np.arange(n) + 0.5) / n
    u = np.asarray(final.u[n // 2])
    i = int(np.argmin(u))
    a, b, c = np.polyfit(y[i - 1 : i + 2], u[i - 1 : i + 2], 2)
    return c - b * b / (4 * a), -b / (2 * a)


@pytest.mark.parametrize(
    ("reynolds_number", "scheme"), [(100, "central"), (1000, "central"), (1000, "van_leer")]
)
def test_lid_driven_cavity_at_128_matches_ghia_within_2_percent(reynolds_number, scheme, full_size):
    """Steady cavity at 128² (float64, t = 30 at Re 100, 60 at Re 1000: the field then moves
    by < 3e-4 per 5 time units) against Ghia, Ghia & Shin's centrelines, as the issue asks:
    every tabulated u and v within 2% of the lid speed, u's minimum within 2% of Ghia's and
    within a cell of its height. Measured (max |u - Ghia|, max |v - Ghia|, u_min):
    Re 100 0.0049, 0.0091, -0.21374 at y 0.4581 (+1.3%: Ghia's 129-point grid reads
    -0.2109 at 0.4531, the converged value is about -0.2140 at 0.458); Re 1000 central
    0.0030, 0.0122, -0.38237 at 0.1729 (-0.14%); van Leer 0.0050, 0.0099, -0.38519 (+0.6%).
    The default run is Re 1000 at 64² (Ghia's profiles, second-order error 4x larger):
    0.018, 0.020, -0.36601 (-4.4%), against 3% and 6%."""
    if not full_size and (reynolds_number, scheme) != (1000, "central"):
        pytest.skip("128² runs under --runslow; the default run is Re 1000 at 64²")
    n = 128 if full_size else 64
    profile_tolerance, minimum_tolerance = (0.02, 0.02) if full_size else (0.03, 0.06)
    u_ghia, v_ghia, (u_min, y_min) = GHIA[reynolds_number]
    model = IncompressibleNavierStokes.lid_driven_cavity(n, reynolds_number, scheme=scheme)
    viscosity = 1.0 / reynolds_number
    dt = min(0.5 / n, 0.5 / (viscosity * 4 * n * n))  # Courant and diffusion number 0.5
    horizon = 30.0 if reynolds_number == 100 else 60.0
    final = _final(model, dt, round(horizon / dt), model.initial_state(dtype=jnp.float64))
    y = np.concatenate([[0.0], (np.arange(n) + 0.5) / n, [1.0]])
    u = np.concatenate([[0.0], np.asarray(final.u[n // 2]), [1.0]])
    v = np.concatenate([[0.0], np.asarray(final.v[:, n // 2]), [0.0]])
    u_error = np.max(np.abs(np.interp(u_ghia[:, 0], y, u) - u_ghia[:, 1]))
    v_error = np.max(np.abs(np.interp(v_ghia[:, 0], y, v) - v_ghia[:, 1]))
    assert u_error < profile_tolerance and v_error < profile_tolerance, (u_error, v_error)
    minimum, height = _centreline_minimum(final, n)
    assert abs(minimum / u_min - 1) < minimum_tolerance, minimum
    assert abs(height - y_min) < 1 / n, height
    assert float(jnp.max(jnp.abs(model.divergence(final)))) < 1e-10


@pytest.mark.parametrize("scheme", ["central", "van_leer"])
def test_lid_driven_cavity_matches_ghia_at_re100(scheme, full_size):
    # measured max |error| at 32^2, t = 15: central 0.0021, van Leer 0.0039 (u, of lid speed 1)
    n, tolerance = (32, 0.01) if full_size else (16, 0.03)
    model = IncompressibleNavierStokes.lid_driven_cavity(n, 100.0, scheme=scheme)
    final = _final(model, 0.02 if n == 16 else 0.01, 750 if n == 16 else 1500)
    u, v = _centrelines(final, n)
    assert np.max(np.abs(u - GHIA_RE100_U[:, 1])) < tolerance
    assert np.max(np.abs(v - GHIA_RE100_V[:, 1])) < tolerance
    assert float(jnp.max(jnp.abs(model.divergence(final)))) < 1e-10


def test_upwind_cavity_is_stable_and_more_diffusive():
    model = IncompressibleNavierStokes.lid_driven_cavity(16, 100.0, scheme="upwind")
    final = _final(model, 0.02, 500)
    u, _ = _centrelines(final, 16)
    assert np.all(np.isfinite(u))
    assert -0.21 < u.min() < -0.1  # weaker recirculation than Ghia's -0.2109


def test_inflow_outflow_channel_conserves_mass(dtype):
    grid = StaggeredGrid((16, 8), (2.0, 1.0))
    y = jnp.asarray(grid.centres_1d(1), dtype)
    sides = Boundaries(Inflow(4 * y * (1 - y)), Outflow(), Wall(), FreeSlip())
    model = IncompressibleNavierStokes(grid, sides, 0.05, "van_leer")
    final = _final(model, 0.01, 100, model.initial_state(dtype=dtype))
    assert final.u.dtype == dtype
    tol = 1e-4 if dtype == jnp.float32 else 1e-10
    np.testing.assert_allclose(jnp.sum(final.u[-1]), jnp.sum(final.u[0]), atol=tol)
    assert float(jnp.max(jnp.abs(model.divergence(final)))) < tol * 10


def test_gradient_wrt_lid_velocity_and_viscosity_matches_finite_differences():
    def observable(lid, viscosity):
        grid = StaggeredGrid((8, 8))
        model = IncompressibleNavierStokes(
            grid, Boundaries(Wall(), Wall(), Wall(), Wall(velocity=lid)), viscosity, "van_leer"
        )
        final = _final(model, 0.02, 10)
        return jnp.sum(final.u[4] ** 2) + jnp.sum(final.v[:, 3])

    # one compilation for the gradient and the four evaluations of the differences
    value_and_grad = jax.jit(jax.value_and_grad(observable, argnums=(0, 1)))
    lid, nu = jnp.asarray(1.0), jnp.asarray(0.05)
    _, grad = value_and_grad(lid, nu)
    h = 1e-5

    def value(*args):
        return value_and_grad(*args)[0]

    fd_lid = (value(lid + h, nu) - value(lid - h, nu)) / (2 * h)
    fd_nu = (value(lid, nu + h) - value(lid, nu - h)) / (2 * h)
    np.testing.assert_allclose(grad[0], fd_lid, rtol=1e-5)
    np.testing.assert_allclose(grad[1], fd_nu, rtol=1e-5)


def test_jit_and_vmap_over_reynolds_numbers():
    def final_min_u(re):
        model = IncompressibleNavierStokes.lid_driven_cavity(8, re)
        return jnp.min(_final(model, 0.02, 10).u)

    values = jax.jit(jax.vmap(final_min_u))(jnp.array([50.0, 100.0]))
    np.testing.assert_allclose(values[1], final_min_u(jnp.asarray(100.0)), rtol=1e-10)


def test_courant_number_is_read_by_check_time_step():
    model = IncompressibleNavierStokes.lid_driven_cavity(10, 100.0)
    state = model.initial_state()
    state = state.__class__(state.u.at[5, 5].set(2.0), state.v, state.pressure, state.time)
    np.testing.assert_allclose(model.courant_number(state, 0.01), 0.01 * 2.0 / 0.1)
    with pytest.raises(hybrax.ConfigurationError):
        hybrax.check_time_step(ProjectedRK(model, 1.0), state, 1.0)


def test_bad_input_is_rejected_naming_the_argument():
    grid = StaggeredGrid((4, 4))
    with pytest.raises(hybrax.ConfigurationError, match="num_points"):
        StaggeredGrid((4, 1))
    with pytest.raises(hybrax.ConfigurationError, match="domain_length"):
        StaggeredGrid((4, 4), (1.0, -1.0))
    with pytest.raises(hybrax.ConfigurationError, match="left and right"):
        Boundaries(Periodic(), Wall(), Wall(), Wall())
    with pytest.raises(hybrax.ConfigurationError, match="viscosity"):
        IncompressibleNavierStokes(grid, Boundaries.periodic(), -1.0)
    with pytest.raises(hybrax.ConfigurationError, match="scheme"):
        IncompressibleNavierStokes(grid, Boundaries.periodic(), 0.1, "quick")
    with pytest.raises(hybrax.ConfigurationError, match="Inflow profile"):
        sides = Boundaries(Inflow(jnp.ones(3)), Outflow(), Wall(), Wall())
        IncompressibleNavierStokes(grid, sides, 0.1)
    # a closed box cannot take in fluid: the net inflow must be zero without an Outflow
    with pytest.raises(hybrax.ConfigurationError, match=r"net volume flux of \+1 .*left \+1"):
        IncompressibleNavierStokes(grid, Boundaries(Inflow(1.0), Wall(), Wall(), Wall()), 0.1)
    profile = jnp.array([0.5, 1.0, 1.0, 0.5])
    with pytest.raises(hybrax.ConfigurationError, match="no side lets fluid out"):
        sides = Boundaries(Inflow(profile), Inflow(0.5), FreeSlip(), FreeSlip())
        IncompressibleNavierStokes(grid, sides, 0.1)
    balanced = Boundaries(Inflow(profile), Inflow(profile), Wall(), Wall())  # in = out
    IncompressibleNavierStokes(grid, balanced, 0.1)
    model = IncompressibleNavierStokes(grid, Boundaries.periodic(), 0.1)
    with pytest.raises(hybrax.ConfigurationError, match="shapes"):
        model.initial_state(u=jnp.zeros((4, 4)))
    with pytest.raises(hybrax.ConfigurationError, match="stages"):
        ProjectedRK(model, 0.1, stages=4)
