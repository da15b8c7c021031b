"""2D Navier–Stokes: analytic decay, orders in time and space, conservation, reference code,
gradients, transforms, bad input."""

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax import check_time_step
from hybrax.errors import ConfigurationError
from hybrax.fluids import (
    KolmogorovForcing,
    NavierStokes2D,
    enstrophy,
    kinetic_energy,
    random_vorticity,
    taylor_green_vorticity,
)
from hybrax.grids import Grid, SpectralState, resample

STEPPERS = [hybrax.ETDRK4, hybrax.CrankNicolsonRK4]


def _final(stepper, state, n):
    final, _ = hybrax.rollout(stepper, state, n, save_every=None)
    return final


def _smooth_state(model, key=0, peak=2.0, speed=1.0, dtype=jnp.float64):
    w = random_vorticity(
        model.grid, jax.random.key(key), peak_wavenumber=peak, max_velocity=speed, dtype=dtype
    )
    return model.state_from_vorticity(w)


def _fitted_order(errors, steps):
    return np.polyfit(np.log(steps), np.log(errors), 1)[0]


@pytest.mark.parametrize("stepper_cls", STEPPERS)
def test_taylor_green_decays_at_the_analytic_rate(stepper_cls):
    """omega = 2 k U sin(kx) sin(ky) is a steady Euler flow; with viscosity and drag it
    decays as exp(-(2 nu k^2 + alpha) t)."""
    nu, alpha, k, t_end = 0.01, 0.1, 2, 1.0
    model = NavierStokes2D(Grid((32, 32)), viscosity=nu, drag=alpha)
    w0 = taylor_green_vorticity(model.grid, wavenumber=k, amplitude=1.5, dtype=jnp.float64)
    final = _final(stepper_cls(model, dt=0.01), model.state_from_vorticity(w0), 100)
    exact = w0 * math.exp(-(2 * nu * k**2 + alpha) * t_end)
    error = jnp.max(jnp.abs(model.vorticity(final) - exact)) / jnp.max(jnp.abs(exact))
    assert error < 1e-5, error
    assert float(final.time) == pytest.approx(t_end, abs=1e-12)


def test_temporal_order_four_etdrk4_and_cnrk4():
    """ETDRK4 is fourth order on a smooth viscous flow. CN-RK4 is fourth order in the
    explicit (advective) part, i.e. for inviscid flow, and second order once the viscous
    (Crank–Nicolson) part dominates its error."""
    viscous = NavierStokes2D(16, viscosity=0.01)
    inviscid = NavierStokes2D(16, viscosity=0.0)
    state = _smooth_state(viscous)
    t_end, steps = 1.0, (10, 20, 40)

    # One compiled program per scheme: dt and the number of steps are traced (a static float
    # dt or a static rollout length would compile once per resolution and viscosity).
    @eqx.filter_jit
    def run(cls, model, n):
        stepper = cls(model, t_end / n).prepare()
        return jax.lax.fori_loop(0, n, lambda _, s: stepper.step(s), state).field_hat

    def order(model, cls):
        reference = run(hybrax.ETDRK4, model, jnp.asarray(640))
        errors = [
            float(jnp.max(jnp.abs(run(cls, model, jnp.asarray(n)) - reference))) for n in steps
        ]
        return _fitted_order(errors, [t_end / n for n in steps]), errors

    etd, errors = order(viscous, hybrax.ETDRK4)
    assert 3.8 < etd < 4.3, errors
    cn, errors = order(inviscid, hybrax.CrankNicolsonRK4)
    assert 3.8 < cn < 4.3, errors
    strongly_viscous = NavierStokes2D(16, viscosity=0.2)
    cn_viscous, errors = order(strongly_viscous, hybrax.CrankNicolsonRK4)
    assert 1.8 < cn_viscous < 2.4, errors


def test_spectral_convergence_in_space(full_size):
    """For an analytic initial field the error against a fine reference falls
    geometrically with the number of retained modes (exponential convergence): each two
    more dealiased modes (six more points) gain a steady factor, where an algebraic rate
    would gain less and less. (Measured errors at 12, 18, 24, 30 points: 7.7e-2, 5.4e-3,
    5.0e-4, 3.5e-5; the default run uses the last three, --runslow all four.)"""

    def initial(grid):
        x, y = grid.coordinates(jnp.float64)
        return jnp.exp(jnp.sin(x)) * jnp.cos(y) + 0.5 * jnp.exp(jnp.cos(y + 0.3)) * jnp.sin(2 * x)

    @functools.partial(jax.jit, static_argnums=0)
    def solve(n):
        model = NavierStokes2D(n, viscosity=0.02)
        state = model.state_from_vorticity(initial(model.grid))
        return _final(hybrax.ETDRK4(model, 0.05), state, 10).field_hat

    @functools.partial(jax.jit, static_argnums=0)
    def error(n, reference):  # one compiled program per resolution
        grid = Grid((n, n))
        difference = grid.to_physical(solve(n) - resample(reference, fine_grid, grid))
        return jnp.max(jnp.abs(difference))

    fine_grid, reference = Grid((48, 48)), solve(48)
    # 3, 5, 7, 9 retained modes per direction
    errors = [float(error(n, reference)) for n in ((12,) if full_size else ()) + (18, 24, 30)]
    gains = np.asarray(errors[:-1]) / np.asarray(errors[1:])
    assert np.all(gains > 8) and gains[-1] > 0.5 * gains[0], (errors, gains)
    assert errors[-1] < 1e-4, errors


@pytest.mark.parametrize("stepper_cls", STEPPERS)
def test_inviscid_flow_conserves_energy_and_enstrophy(stepper_cls):
    """The 2/3-truncated Euler system conserves energy and enstrophy exactly, so the
    drift is time-stepping error, shrinking at (at least) the scheme's order 4."""
    model = NavierStokes2D(32, viscosity=0.0)
    state = _smooth_state(model, key=3, peak=3.0)
    energy0 = kinetic_energy(model.grid, state.field_hat)
    enstrophy0 = enstrophy(model.grid, state.field_hat)

    @jax.jit
    def run(n):  # traced dt and step count: one compiled program for the three step sizes
        stepper = stepper_cls(model, 1.0 / n).prepare()
        return jax.lax.fori_loop(0, n, lambda _, s: stepper.step(s), state)

    drifts = []
    for n in (10, 20, 40):
        final = run(jnp.asarray(n))
        drifts.append(
            (
                abs(float(kinetic_energy(model.grid, final.field_hat) / energy0 - 1)),
                abs(float(enstrophy(model.grid, final.field_hat) / enstrophy0 - 1)),
            )
        )
    drifts = np.asarray(drifts)
    for column in drifts.T:
        assert _fitted_order(column, [0.1, 0.05, 0.025]) > 3.5, drifts
    assert drifts[-1].max() < 1e-7, drifts


def test_advection_matches_jax_cfd():
    """The Basdevant-form advection plus forcing equals jax-cfd's explicit term (velocity
    times vorticity gradient, Kolmogorov forcing) on every mode both keep. jax-cfd's
    brick-wall filter is asymmetric in the first axis (for N = 32 it keeps rows -11..9,
    the symmetric 2/3 rule keeps -10..10), so the two differ on one row each."""
    spectral = pytest.importorskip("jax_cfd.spectral")
    cfd = pytest.importorskip("jax_cfd.base")
    n = 32
    model = NavierStokes2D.kolmogorov(n)
    state = _smooth_state(model, peak=4.0, speed=2.0)
    grid = cfd.grids.Grid((n, n), domain=((0, 2 * np.pi), (0, 2 * np.pi)))
    ours = model.nonlinear(state, 0.0).field_hat
    # jax-cfd uses unnormalised FFTs (coefficients scale with N^2) and standard promotion
    with jax.numpy_dtype_promotion("standard"):
        equation = spectral.equations.ForcedNavierStokes2D(1e-3, grid, smooth=True)
        theirs = equation.explicit_terms(state.field_hat * n**2) / n**2
        mask = model.grid.dealias_mask(jnp.float64)
        common = spectral.utils.brick_wall_filter_2d(grid) * mask
        difference = jnp.max(jnp.abs((ours - theirs) * common))
        outside = jnp.max(jnp.abs(ours * (1 - mask)))
    assert difference < 1e-13 * jnp.max(jnp.abs(ours)), difference
    assert outside == 0
    assert jnp.sum(common) > 0.9 * jnp.sum(mask)


def test_crank_nicolson_rk4_matches_jax_cfd_time_stepper():
    """Our CrankNicolsonRK4 reproduces jax-cfd's crank_nicolson_rk4 applied to the same
    equations, step for step."""
    time_stepping = pytest.importorskip("jax_cfd.spectral.time_stepping")
    model = NavierStokes2D.kolmogorov(16, viscosity=0.02)
    state = _smooth_state(model, speed=3.0)
    linear = model.linear_operator().field_hat

    class Equation(time_stepping.ImplicitExplicitODE):
        def explicit_terms(self, w_hat):
            return model.nonlinear(SpectralState(w_hat), 0.0).field_hat

        def implicit_terms(self, w_hat):
            return linear * w_hat

        def implicit_solve(self, w_hat, step):
            return w_hat / (1 - step * linear)

    dt = 0.02
    with jax.numpy_dtype_promotion("standard"):
        step = jax.jit(time_stepping.crank_nicolson_rk4(Equation(), dt))
        theirs = state.field_hat
        for _ in range(20):
            theirs = step(theirs)
    ours = _final(hybrax.CrankNicolsonRK4(model, dt), state, 20).field_hat
    assert jnp.max(jnp.abs(ours - theirs)) < 1e-12 * jnp.max(jnp.abs(ours))


@pytest.mark.parametrize("stepper_cls", STEPPERS)
def test_gradients_match_finite_differences(stepper_cls, finite_difference):
    """d(loss)/d(viscosity), d/d(forcing amplitude) and the directional derivative along an
    initial-field perturbation, through 10 steps, against 4th-order central differences."""
    base = NavierStokes2D.kolmogorov(16, viscosity=0.05, drag=0.1, forcing_amplitude=1.0)
    state = _smooth_state(base, speed=2.0)
    target = _smooth_state(base, key=7, speed=2.0).field_hat
    perturbation = _smooth_state(base, key=9, speed=1.0).field_hat

    @jax.jit
    def loss(viscosity, amplitude, w_hat):
        model = eqx.tree_at(
            lambda m: (m.viscosity, m.forcing.amplitude), base, (viscosity, amplitude)
        )
        final = _final(stepper_cls(model, 0.05), SpectralState(w_hat), 10)
        return jnp.sum(jnp.abs(final.field_hat - target) ** 2)

    nu, amp, w0 = jnp.asarray(0.05), jnp.asarray(1.0), state.field_hat
    grads = jax.grad(loss, argnums=(0, 1, 2))(nu, amp, w0)
    fd_nu = finite_difference(lambda v: loss(v, amp, w0), nu)
    fd_amp = finite_difference(lambda a: loss(nu, a, w0), amp)
    fd_w = finite_difference(lambda w: loss(nu, amp, w), w0, perturbation)
    np.testing.assert_allclose(grads[0], fd_nu, rtol=1e-6)
    np.testing.assert_allclose(grads[1], fd_amp, rtol=1e-6)
    # for a real loss of a complex input JAX returns d/dRe - i d/dIm, so the
    # directional derivative along p is Re(sum(g p))
    directional = jnp.sum(jnp.real(grads[2] * perturbation))
    np.testing.assert_allclose(directional, fd_w, rtol=1e-6)


def test_jit_vmap_and_float32():
    model = NavierStokes2D.kolmogorov(32)
    keys = jax.random.split(jax.random.key(0), 3)
    states = jax.vmap(lambda k: model.initial_state(k, max_velocity=2.0))(keys)
    assert states.field_hat.dtype == jnp.complex64 and states.time.dtype == jnp.float32
    stepper = hybrax.CrankNicolsonRK4(model, 0.01)
    run = jax.jit(jax.vmap(lambda s: _final(stepper, s, 5)))
    batched = run(states)
    single = _final(stepper, jax.tree.map(lambda x: x[1], states), 5)
    assert batched.field_hat.dtype == jnp.complex64
    np.testing.assert_allclose(batched.field_hat[1], single.field_hat, atol=1e-4)
    np.testing.assert_allclose(batched.time, 0.05, rtol=1e-6)


def test_kolmogorov_preset_becomes_turbulent_and_stays_bounded():
    """From rest plus noise, the forcing drives the flow; at Courant 0.5 both schemes stay
    stable and the energy settles at O(1) (Kochkov et al. report speeds up to ~7)."""
    model = NavierStokes2D.kolmogorov(32)
    state = model.initial_state(max_velocity=1.0)
    dt = hybrax.grids.cfl_time_step(model.grid, 7.0, courant=0.5)
    for cls in STEPPERS:
        _, energy = hybrax.rollout(
            cls(model, dt),
            state,
            2000,
            save_every=500,
            observe=lambda s: kinetic_energy(model.grid, s.field_hat),
        )
        assert jnp.all(jnp.isfinite(energy)) and 0.05 < float(energy[-1]) < 20, energy


def test_bad_input(wrong_type):
    with pytest.raises(ConfigurationError, match="even ints"):
        NavierStokes2D(63)
    with pytest.raises(ConfigurationError, match="2D grid"):
        NavierStokes2D(Grid((32,)))
    with wrong_type("forcing", ConfigurationError, "AbstractForcing"):
        NavierStokes2D(32, forcing=lambda grid, t: 0.0)
    with pytest.raises(ConfigurationError, match="viscosity must be non-negative and finite"):
        NavierStokes2D(32, viscosity=-1.0)
    model = NavierStokes2D(32)
    stepper = hybrax.ETDRK4(model, 0.01)
    other = NavierStokes2D(16).initial_state()
    with pytest.raises(ConfigurationError, match=r"spectral shape \(32, 17\)"):
        stepper.step(other)
    with pytest.raises(ConfigurationError, match="physical field"):
        stepper.step(SpectralState(jnp.zeros((32, 32), jnp.complex64)))
    with pytest.raises(ConfigurationError, match="complex"):
        stepper.step(SpectralState(jnp.zeros((32, 17), jnp.float32)))
    with pytest.raises(ConfigurationError, match=r"state\.time must be a scalar of dtype float32"):
        good = SpectralState(jnp.zeros((32, 17), jnp.complex64))
        stepper.step(eqx.tree_at(lambda s: s.time, good, jnp.float64(0.0)))
    with wrong_type("state", ConfigurationError, "SpectralState"):
        stepper.step(hybrax.ODEState(jnp.zeros(3)))
    with pytest.raises(ConfigurationError, match=r"grid's shape \(32, 32\)"):
        model.state_from_vorticity(jnp.zeros((32, 16)))
    with pytest.raises(ConfigurationError, match="more than 48 points"):
        NavierStokes2D(32, forcing=KolmogorovForcing(wavenumber=16)).nonlinear(
            model.initial_state(), 0.0
        )


def test_time_step_beyond_cfl_is_rejected():
    model = NavierStokes2D.kolmogorov(32)
    state = model.initial_state()  # maximum speed 7
    safe = hybrax.grids.cfl_time_step(model.grid, 7.0, courant=0.5)
    assert check_time_step(hybrax.ETDRK4(model, safe), state) is state
    with pytest.raises(ConfigurationError, match=r"Courant number 4(\.\d+)? for this state"):
        check_time_step(hybrax.ETDRK4(model, 8 * safe), state)

    @jax.jit
    def checked(s):
        return check_time_step(hybrax.CrankNicolsonRK4(model, 8 * safe), s).field_hat

    with pytest.raises(jax.errors.JaxRuntimeError, match=r"Courant number above 1\.0"):
        jax.block_until_ready(checked(state))
