"""CrankNicolsonRK4: orders of accuracy, A-stability, prepare, complex L, jit/vmap/grad."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax import ODEState


class StiffForced(hybrax.AbstractSemilinearDynamics):
    """``du/dt = L u + cos(3 t) - u^2 / 2 + 0.3 sin(u_roll)``: diagonal ``L`` (any sign, real
    or complex) plus a smooth, explicitly time-dependent nonlinearity coupling the
    components."""

    rates: jax.Array = eqx.field(converter=jnp.asarray)

    def linear_operator(self):
        return ODEState(self.rates, 0.0)

    def nonlinear(self, state, t):
        u = state.u
        t = jnp.asarray(t).astype(jnp.finfo(u.dtype).dtype)
        forcing = jnp.cos(3 * t).astype(u.dtype)
        return ODEState(forcing - 0.5 * u * u + 0.3 * jnp.sin(jnp.roll(u, 1)), state.time)


U0 = np.array([0.3, -0.2, 0.5])


def _solve(stepper, n):
    state = ODEState(jnp.asarray(U0, jnp.float64))
    final, _ = hybrax.rollout(stepper, state, n, save_every=None)
    return final


def _reference(model, t_end):
    """A converged solution: RK4 with steps far below every time scale."""
    n = 20_000
    return _solve(hybrax.RK4(model, dt=t_end / n), n).u


def _fitted_order(errors, steps):
    slope, _ = np.polyfit(np.log(steps), np.log(errors), 1)
    return slope


def test_fourth_order_for_the_explicit_part():
    model = StiffForced(jnp.zeros(3))  # L = 0: the scheme is Carpenter–Kennedy RK4
    exact = _reference(model, 1.0)
    steps, errors = [], []
    for n in (10, 20, 40, 80):
        final = _solve(hybrax.CrankNicolsonRK4(model, dt=1.0 / n), n)
        assert float(final.time) == pytest.approx(1.0, abs=1e-12)
        steps.append(1.0 / n)
        errors.append(float(jnp.max(jnp.abs(final.u - exact))))
    order = _fitted_order(errors, steps)
    # with L = 0 only the explicit Carpenter–Kennedy part acts: fourth order, above the
    # scheme's declared (coupled) order
    assert hybrax.CrankNicolsonRK4(model, dt=1.0).order < 4
    assert 3.7 < order < 4.5, (errors, order)


def test_second_order_for_the_stiff_coupled_problem():
    model = StiffForced(jnp.array([-1.0, -20.0, -60.0]))
    exact = _reference(model, 1.0)
    steps, errors = [], []
    for n in (40, 80, 160, 320):
        final = _solve(hybrax.CrankNicolsonRK4(model, dt=1.0 / n), n)
        steps.append(1.0 / n)
        errors.append(float(jnp.max(jnp.abs(final.u - exact))))
    order = _fitted_order(errors, steps)
    declared = hybrax.CrankNicolsonRK4(model, dt=1.0).order
    assert declared - 0.2 < order < declared + 0.4, (errors, order, declared)


def test_linear_part_is_crank_nicolson_exactly():
    rates = jnp.array([-0.5, -40.0, 3.0])
    model = StiffForced(rates)
    dt = 0.1
    stepper = hybrax.CrankNicolsonRK4(model, dt=dt).prepare()
    growth = jnp.ones(3)
    for stage in stepper.coefficients.u:
        growth = growth * stage.growth
    alphas = np.asarray(hybrax.CrankNicolsonRK4.alphas)
    mu = 0.5 * np.diff(alphas) * dt
    expected = np.prod([(1 + m * rates) / (1 - m * rates) for m in mu], axis=0)
    np.testing.assert_allclose(growth, expected, rtol=1e-13)
    # A-stable: every decaying mode, however stiff, is damped
    stiff = hybrax.CrankNicolsonRK4(StiffForced(jnp.array([-1e6, -1e3, -1.0])), dt=0.5)
    assert jnp.all(jnp.abs(stiff.prepare().coefficients.u[0].growth) <= 1)


def test_stable_where_explicit_rk4_blows_up():
    model = StiffForced(jnp.array([-1.0, -200.0, -2000.0]))
    dt, n = 0.05, 40  # |L dt| = 100 on the stiffest mode
    cn = _solve(hybrax.CrankNicolsonRK4(model, dt=dt), n)
    assert jnp.all(jnp.isfinite(cn.u)) and jnp.max(jnp.abs(cn.u)) < 2
    with pytest.raises(hybrax.NonFiniteStateError, match=r"at step \d+ of 40"):
        _solve(hybrax.RK4(model, dt=dt), n)


def test_complex_linear_part():
    """A rotating mode ``du/dt = i w u`` (``L`` imaginary) keeps |u| (CN is unitary) and
    converges at second order in its phase."""

    class Rotation(hybrax.AbstractSemilinearDynamics):
        def linear_operator(self):
            return ODEState(jnp.array([2j, -5j]), 0.0)

        def nonlinear(self, state, t):
            return ODEState(jnp.zeros_like(state.u), state.time)

    state = ODEState(jnp.array([1.0 + 0j, 0.5j]))
    errors = []
    for n in (20, 40):
        final, _ = hybrax.rollout(
            hybrax.CrankNicolsonRK4(Rotation(), 1.0 / n), state, n, save_every=None
        )
        np.testing.assert_allclose(jnp.abs(final.u), jnp.abs(state.u), rtol=1e-13)
        exact = state.u * jnp.exp(jnp.array([2j, -5j]))
        errors.append(float(jnp.max(jnp.abs(final.u - exact))))
    assert 3.5 < errors[0] / errors[1] < 4.5


def test_prepare_matches_step_and_jit_vmap_grad(finite_difference):
    def final_u(rate, u0):
        model = StiffForced(jnp.stack([rate, 2 * rate, jnp.asarray(-1.0)]))
        stepper = hybrax.CrankNicolsonRK4(model, dt=0.05)
        final, _ = hybrax.rollout(stepper, ODEState(u0), 20, save_every=None)
        return final.u

    u0 = jnp.asarray(U0)
    # prepare() (used by rollout) and the unprepared step agree
    model = StiffForced(jnp.array([-3.0, -6.0, -1.0]))
    stepper = hybrax.CrankNicolsonRK4(model, dt=0.05)
    direct = stepper.step(ODEState(u0))
    prepared = stepper.prepare().step(ODEState(u0))
    np.testing.assert_allclose(direct.u, prepared.u, rtol=1e-15)
    assert stepper.prepare().prepare() is not None
    # jit and vmap
    batch = jnp.stack([u0, 2 * u0])
    out = jax.jit(jax.vmap(final_u, in_axes=(None, 0)))(jnp.asarray(-3.0), batch)
    np.testing.assert_allclose(out[1], final_u(jnp.asarray(-3.0), batch[1]), rtol=1e-13)
    # gradient with respect to a parameter of L, against central finite differences
    loss = lambda r: jnp.sum(final_u(r, u0) ** 2)  # noqa: E731
    g = jax.grad(loss)(jnp.asarray(-3.0))
    # 4th-order differences at eps 1e-3 agree to ~5e-11; a 2nd-order one at 1e-6 loses ~1e-6
    # relative to rounding (the loss, 0.029, is 370 times its derivative)
    fd = finite_difference(loss, jnp.asarray(-3.0), eps=1e-3)
    np.testing.assert_allclose(g, fd, rtol=1e-9)


def test_float32_stays_float32():
    model = StiffForced(jnp.array([-1.0, -20.0, -60.0], jnp.float32))
    state = ODEState(jnp.asarray(U0, jnp.float32))
    final, _ = hybrax.rollout(hybrax.CrankNicolsonRK4(model, dt=0.05), state, 4, save_every=None)
    assert final.u.dtype == jnp.float32 and final.time.dtype == jnp.float32


class Decay(hybrax.AbstractDynamics):
    def tendency(self, state, t):
        return ODEState(-state.u, state.time)


def test_bad_input(wrong_type):
    with wrong_type("dynamics", hybrax.ConfigurationError, "AbstractSemilinearDynamics"):
        hybrax.CrankNicolsonRK4(Decay(), dt=0.01)
    with pytest.raises(hybrax.ConfigurationError, match="dt must be positive"):
        hybrax.CrankNicolsonRK4(StiffForced(jnp.zeros(3)), dt=-0.1)
