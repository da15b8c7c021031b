"""Staggered-grid flow diagnostics against analytic cases: stream function of a known field,
Poiseuille wall shear, bilinear point pressures, divergence norms, shedding frequency of
synthetic signals."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.fluids import (
    Boundaries,
    FlowState,
    IncompressibleNavierStokes,
    Wall,
    divergence_norm,
    dominant_frequency,
    pressure_at,
    pressure_difference,
    stream_function,
    strouhal_number,
    wall_shear_stress,
)
from hybrax.grids import StaggeredGrid


def _with(state, **fields):
    values = {k: getattr(state, k) for k in ("u", "v", "pressure", "time")} | fields
    return FlowState(**values)


def _box(nx=12, ny=10, lengths=(1.5, 1.0)):
    grid = StaggeredGrid((nx, ny), lengths)
    return IncompressibleNavierStokes(grid, Boundaries(Wall(), Wall(), Wall(), Wall()), 0.1)


def test_stream_function_recovers_a_known_field_exactly():
    """u, v from differences of a corner field psi: stream_function gives psi back (to the
    constant psi(0, 0) = 0), for a field that is not zero on the boundary."""
    model = _box()
    (dx, dy), lx = model.grid.spacing, model.grid.domain_length[0]
    xc, yc = model.grid.corner_points(jnp.float64)
    psi = jnp.sin(np.pi * xc / lx) * jnp.cos(2.0 * yc) + 0.3 * xc * yc
    u = (psi[:, 1:] - psi[:, :-1]) / dy
    v = -(psi[1:, :] - psi[:-1, :]) / dx
    state = _with(model.initial_state(), u=u, v=v)
    np.testing.assert_allclose(stream_function(model, state), psi - psi[0, 0], atol=1e-13)


def test_stream_function_is_zero_on_cavity_walls_and_the_flux_in_a_channel():
    model = _box()
    rng = np.random.default_rng(1)
    u, v = (jnp.asarray(rng.standard_normal(s)) for s in (model.grid.u_shape, model.grid.v_shape))
    psi = stream_function(model, model.initial_state(u=u, v=v))  # any projected state
    for edge in (psi[0], psi[-1], psi[:, 0], psi[:, -1]):
        np.testing.assert_allclose(edge, 0.0, atol=1e-12)
    assert float(jnp.max(jnp.abs(psi))) > 1e-2

    channel = IncompressibleNavierStokes.channel((4, 16), viscosity=1.0, forcing=8.0)
    _, y = channel.grid.u_points(jnp.float64)
    state = channel.initial_state(u=channel.poiseuille_profile(y))
    psi = stream_function(channel, state)
    flux = float(jnp.sum(state.u[0]) * channel.grid.spacing[1])
    np.testing.assert_allclose(psi[:, -1], flux, rtol=1e-12)  # top wall: the whole flux
    np.testing.assert_allclose(flux, 8.0 / 12.0, rtol=1e-2)  # forcing Ly^3 / (12 nu)


@pytest.mark.parametrize("side", ["bottom", "top"])
def test_wall_shear_of_the_discrete_poiseuille_state_is_exact(side):
    """The solver's steady channel state is u = G y (Ly - y) / (2 nu) + G dy^2 / (8 nu) (its
    tendency vanishes); the stress on either wall is then exactly G Ly / 2, the body force
    per unit wall area, and converges at first order for the sampled exact profile."""
    forcing, viscosity, height = 3.0, 0.7, 1.3
    model = IncompressibleNavierStokes.channel(
        (4, 9), (2.0, height), viscosity=viscosity, forcing=forcing
    )
    _, y = model.grid.u_points(jnp.float64)
    dy = model.grid.spacing[1]
    exact = model.poiseuille_profile(y)
    steady = model.initial_state(u=exact + forcing * dy**2 / (8 * viscosity))
    np.testing.assert_allclose(model.tendency(steady, 0.0).u, 0.0, atol=1e-12)
    tau = wall_shear_stress(model, steady, side)
    assert tau.shape == (5,)
    np.testing.assert_allclose(tau, forcing * height / 2, rtol=1e-12)
    sampled = wall_shear_stress(model, model.initial_state(u=exact), side)
    np.testing.assert_allclose(sampled, forcing * height / 2 - forcing * dy / 4, rtol=1e-12)


def test_wall_shear_on_moving_and_side_walls():
    """Couette flow u = U y / Ly under a lid: the lid feels -nu U / Ly, the floor +nu U / Ly;
    a vertical shear flow v = W x / Lx: the left wall feels +nu W / Lx."""
    grid = StaggeredGrid((6, 8), (1.0, 2.0))
    lid = 1.5
    model = IncompressibleNavierStokes(
        grid, Boundaries(Wall(), Wall(), Wall(), Wall(velocity=lid)), 0.2
    )
    _, y = grid.u_points(jnp.float64)
    state = _with(model.initial_state(), u=lid * y / 2.0)
    np.testing.assert_allclose(wall_shear_stress(model, state, "top"), -0.2 * lid / 2, rtol=1e-12)
    np.testing.assert_allclose(wall_shear_stress(model, state, "bottom"), 0.2 * lid / 2)
    side_walls = Boundaries(Wall(), Wall(velocity=2.0), Wall(), Wall())
    model = IncompressibleNavierStokes(grid, side_walls, 0.2)
    x, _ = grid.v_points(jnp.float64)
    state = _with(model.initial_state(), v=2.0 * x)
    left = wall_shear_stress(model, state, "left")
    assert left.shape == (9,)
    np.testing.assert_allclose(left, 0.2 * 2.0, rtol=1e-12)
    np.testing.assert_allclose(wall_shear_stress(model, state, "right"), -0.2 * 2.0, rtol=1e-12)


def test_wall_shear_rejects_a_side_that_is_not_a_wall():
    model = IncompressibleNavierStokes.channel((4, 8))
    state = model.initial_state()
    with pytest.raises(hybrax.ConfigurationError, match="left side must be"):
        wall_shear_stress(model, state, "left")
    with pytest.raises(hybrax.ConfigurationError, match="side must be one of"):
        wall_shear_stress(model, state, "north")


def test_point_pressure_is_exact_for_a_bilinear_field_and_clamped_at_the_sides():
    model = _box()
    x, y = model.grid.cell_centres(jnp.float64)
    state = _with(model.initial_state(), pressure=1.0 + 2.0 * x - 3.0 * y + 0.5 * x * y)
    px, py = jnp.array([0.31, 1.17, 0.77]), jnp.array([0.42, 0.88, 0.5])
    expected = 1.0 + 2.0 * px - 3.0 * py + 0.5 * px * py
    np.testing.assert_allclose(pressure_at(model, state, px, py), expected, rtol=1e-12)
    dp = pressure_difference(model, state, (0.31, 0.42), (1.17, 0.88))
    np.testing.assert_allclose(dp, expected[0] - expected[1], rtol=1e-12)
    # the corner (0, 0) is half a cell from the nearest centre: the centre's value
    np.testing.assert_allclose(pressure_at(model, state, 0.0, 0.0), state.pressure[0, 0])
    grad = jax.grad(lambda p: pressure_at(model, _with(state, pressure=p), 0.31, 0.42))
    np.testing.assert_allclose(jnp.sum(grad(state.pressure)), 1.0)  # weights sum to one


def test_divergence_norms():
    model = _box()
    projected = model.initial_state(u=jnp.ones(model.grid.u_shape))
    assert float(divergence_norm(model, projected)) < 1e-12
    x, _ = model.grid.u_points(jnp.float64)
    diverging = _with(projected, u=x * (1.5 - x) * 4.0)  # du/dx = 6 - 8x at the centres
    xc, _ = model.grid.cell_centres(jnp.float64)
    expected = 6.0 - 8.0 * xc
    np.testing.assert_allclose(divergence_norm(model, diverging), jnp.max(jnp.abs(expected)))
    np.testing.assert_allclose(
        divergence_norm(model, diverging, 2), jnp.sqrt(jnp.mean(expected**2)), rtol=1e-12
    )
    with pytest.raises(hybrax.ConfigurationError, match="ord"):
        divergence_norm(model, diverging, 1)


@pytest.mark.parametrize("method", ["crossings", "fft"])
def test_frequency_of_a_sine_with_harmonic_noise_and_offset(method):
    dt, frequency = 0.013, 2.71
    t = jnp.arange(1500.0) * dt  # 52.8 periods, not a whole number
    rng = np.random.default_rng(0)
    signal = (
        0.4
        + jnp.sin(2 * np.pi * frequency * t + 1.0)
        + 0.3 * jnp.sin(4 * np.pi * frequency * t)  # the drag's double frequency
        + 0.02 * jnp.asarray(rng.standard_normal(t.shape))
    )
    got = dominant_frequency(signal, dt, method)
    np.testing.assert_allclose(got, frequency, rtol=2e-3 if method == "fft" else 1e-3)
    jitted = jax.jit(dominant_frequency, static_argnums=2)(signal, dt, method)
    np.testing.assert_allclose(jitted, got, rtol=1e-12)


def test_strouhal_of_a_synthetic_dfg_2d2_lift():
    """DFG 2D-2: D = 0.1, U_mean = 1; a lift at f = 3.0 has St = 0.30."""
    t = jnp.arange(4000.0) * 0.0025
    lift = 1.0 * jnp.sin(2 * np.pi * 3.0 * t)
    np.testing.assert_allclose(strouhal_number(lift, 0.0025, 0.1, 1.0), 0.3, rtol=1e-5)
    with pytest.raises(hybrax.ConfigurationError, match="length"):
        strouhal_number(lift, 0.0025, -0.1, 1.0)
    with pytest.raises(hybrax.ConfigurationError, match="method"):
        dominant_frequency(lift, 0.0025, "wavelet")
    with pytest.raises(hybrax.ConfigurationError, match="at least 8"):
        dominant_frequency(lift[:4], 0.0025)
    with pytest.raises(hybrax.ConfigurationError, match="no measurable period"):
        dominant_frequency(jnp.linspace(-1.0, 1.0, 20), 0.1)  # one crossing: no period
