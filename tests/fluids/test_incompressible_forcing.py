"""Body-force fields and linear drag of the finite-volume incompressible solver: the forced
laminar Kolmogorov profile (analytic, second order), the preset, gradients w.r.t. drag
against finite differences, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.core import ConfigurationError
from hybrax.fluids import IncompressibleNavierStokes, NavierStokes2D, ProjectedRK
from hybrax.grids import StaggeredGrid


def _steady_profile_error(n: int) -> float:
    """Max error of the steady forced shear flow against ``A sin(k y) / (nu k^2 + drag)``."""
    nu, drag, amplitude, k = 0.02, 1.0, 0.8, 1
    model = IncompressibleNavierStokes.kolmogorov(
        n, viscosity=nu, drag=drag, forcing_amplitude=amplitude, forcing_wavenumber=k
    )
    dt = min(0.2 * (2 * np.pi / n) ** 2 / nu, 0.5)  # diffusion number <= 0.8 of 1
    steps = int(np.ceil(25.0 / dt))  # 25 time units: e^-25 of the start remains
    # forward Euler (one stage, cheap to compile) has the same steady state as any order
    final, _ = hybrax.rollout(ProjectedRK(model, dt, 1), model.initial_state(), steps)
    _, y = model.grid.face_points(0)
    exact = amplitude * np.sin(k * np.asarray(y)) / (nu * k**2 + drag)
    np.testing.assert_allclose(final.v, 0.0, atol=1e-12)
    return float(np.max(np.abs(np.asarray(final.u) - exact)))


def test_forced_shear_flow_reaches_the_analytic_profile_at_second_order():
    errors = [_steady_profile_error(n) for n in (8, 16, 32)]
    assert errors[-1] < 6e-5  # leading term A nu k^4 h^2 / (12 (nu k^2 + drag)^2) = 4.9e-5
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    np.testing.assert_allclose(orders, 2.0, atol=0.15)  # 1.89 at 8 -> 16 points per period


def test_kolmogorov_preset_matches_the_spectral_flow():
    model = IncompressibleNavierStokes.kolmogorov(32)
    assert model.grid.domain_length == pytest.approx((2 * np.pi, 2 * np.pi))
    np.testing.assert_allclose(model.viscosity, 1e-3)
    np.testing.assert_allclose(model.drag, 0.1)
    _, y = model.grid.face_points(0)
    np.testing.assert_allclose(model.forcing, np.sin(4 * np.asarray(y)), atol=1e-12)
    # the same forcing as the pseudo-spectral Kolmogorov flow: its curl is -4 cos(4 y)
    spectral = NavierStokes2D.kolmogorov(32)
    forcing_hat = spectral.forcing.vorticity_forcing_hat(spectral.grid, 0.0, jnp.float64)
    curl = np.asarray(spectral.grid.to_physical(forcing_hat))
    y_c = np.asarray(spectral.grid.coordinates(jnp.float64)[1])
    np.testing.assert_allclose(curl, -4 * np.cos(4 * y_c), atol=1e-10)


def test_drag_damps_a_taylor_green_vortex_at_its_rate():
    """Inviscid Taylor–Green is a steady Euler solution: only the drag acts, ``e^{-drag t}``."""
    model = IncompressibleNavierStokes.taylor_green(16, 1e12, ndim=2)
    model = IncompressibleNavierStokes(model.grid, model.boundaries, 0.0, drag=0.3)
    state = model.taylor_green_state()
    final, _ = hybrax.rollout(ProjectedRK(model, 0.05), state, 20)
    np.testing.assert_allclose(final.u, np.exp(-0.3) * state.u, rtol=1e-5, atol=1e-12)


def test_gradient_wrt_drag_and_amplitude_matches_finite_differences():
    def observable(drag, amplitude):
        model = IncompressibleNavierStokes.kolmogorov(
            8, viscosity=0.05, drag=drag, forcing_amplitude=amplitude, forcing_wavenumber=1
        )
        grid = model.grid
        x, y = grid.face_points(0)
        state = model.initial_state(jnp.cos(y) + 0.3 * jnp.sin(x), None)
        final, _ = hybrax.rollout(ProjectedRK(model, 0.05), state, 10)
        return jnp.sum(final.u[3] ** 2) + jnp.sum(final.v[:, 2])

    value_and_grad = jax.jit(jax.value_and_grad(observable, argnums=(0, 1)))
    drag, amplitude = jnp.asarray(0.2), jnp.asarray(0.7)
    _, grad = value_and_grad(drag, amplitude)
    h = 1e-5

    def value(*args):
        return value_and_grad(*args)[0]

    fd_drag = (value(drag + h, amplitude) - value(drag - h, amplitude)) / (2 * h)
    fd_amp = (value(drag, amplitude + h) - value(drag, amplitude - h)) / (2 * h)
    np.testing.assert_allclose(grad[0], fd_drag, rtol=1e-6)
    np.testing.assert_allclose(grad[1], fd_amp, rtol=1e-6)
    assert abs(float(grad[0])) > 1e-3


def test_bad_forcing_and_drag_raise():
    grid = StaggeredGrid((8, 8), (2 * np.pi, 2 * np.pi))
    periodic = hybrax.fluids.Boundaries.periodic(2)
    with pytest.raises(ConfigurationError, match=r"forcing must be a number or a field .*\(9, 8\)"):
        IncompressibleNavierStokes(grid, periodic, 0.1, forcing=jnp.zeros((8, 8)))
    with pytest.raises(ConfigurationError, match="drag must be non-negative"):
        IncompressibleNavierStokes(grid, periodic, 0.1, drag=-1.0)
    with pytest.raises(ConfigurationError, match="forcing_wavenumber must be an int"):
        IncompressibleNavierStokes.kolmogorov(8, forcing_wavenumber=0)
