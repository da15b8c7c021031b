"""Staggered-grid incompressible Navier–Stokes: Poiseuille (second order in space), lid-driven
cavity against Ghia, Ghia & Shin (1982), inflow/outflow mass balance, gradients against
finite differences, jit/vmap, bad input."""

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


def _centrelines(final, n):
    y = np.concatenate([[0.0], (np.arange(n) + 0.5) / n, [1.0]])
    u = np.concatenate([[0.0], np.asarray(final.u[n // 2]), [1.0]])
    v = np.concatenate([[0.0], np.asarray(final.v[:, n // 2]), [0.0]])
    return np.interp(GHIA_RE100_U[:, 0], y, u), np.interp(GHIA_RE100_V[:, 0], y, v)


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
