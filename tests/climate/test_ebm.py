"""Energy-balance models: analytic equilibria and relaxation, the 1-D steady state and its
convergence, ice-line hysteresis, gradients, transforms and bad input."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.climate import (
    BudykoSellers,
    ConstantAlbedo,
    EBMState,
    EnergyBalance0D,
    IceAlbedo,
    hysteresis_sweep,
    stable_steady_state,
)
from hybrax.errors import ConfigurationError


def _p2(x):
    return 1.5 * x * x - 0.5


def _temperature(state):  # a named function: rollout recompiles for a new observe
    return state.temperature


# --------------------------------------------------------------------------- 0-D model
class ConstantForcing(eqx.Module):
    """A constant radiative forcing ``F`` (W/m^2); its value is a leaf, so changing it does
    not recompile."""

    value: jax.Array

    def __call__(self, t):
        return self.value.astype(t.dtype) * jnp.ones_like(t)


def test_0d_relaxes_exponentially_to_the_analytic_equilibrium():
    model = EnergyBalance0D(forcing=ConstantForcing(jnp.asarray(0.0)))
    t_star = float(model.equilibrium_temperature())
    assert t_star == pytest.approx(((1 - 0.3) * 1361 / 4 - 203.3) / 2.09)
    state = model.initial_state(jnp.asarray(-5.0, jnp.float64))
    stepper = hybrax.DiffraxStepper(model, dt=0.5, solver=diffrax.Tsit5(), num_substeps=2)
    _, temps = hybrax.rollout(stepper, state, 200, observe=_temperature)
    times = 0.5 * np.arange(1, 201)
    exact = t_star + (-5.0 - t_star) * np.exp(-2.09 * times / 8.0)
    np.testing.assert_allclose(temps, exact, rtol=0, atol=1e-6)
    assert abs(float(temps[-1]) - t_star) < 1e-8  # 100 years = 26 e-folding times
    equilibrium = stable_steady_state(model, state)
    assert float(equilibrium.temperature) == pytest.approx(t_star, abs=1e-10)
    # a constant forcing F shifts the equilibrium by F / B (same compiled solve)
    forced = eqx.tree_at(lambda m: m.forcing.value, model, jnp.asarray(3.7))
    equilibrium = stable_steady_state(forced, state)
    expected = float(model.equilibrium_temperature(3.7))
    assert float(equilibrium.temperature) == pytest.approx(expected, abs=1e-10)
    assert expected - t_star == pytest.approx(3.7 / 2.09)


_0D_PARAMETERS = ("olr_slope", "olr_intercept", "albedo", "solar_constant", "heat_capacity")


def test_0d_gradients_match_finite_differences():
    model = EnergyBalance0D(forcing=_ramp)  # a warming ramp, W/m^2 per year
    state = model.initial_state(jnp.asarray(14.0, jnp.float64))

    def mean_warming(m):
        stepper = hybrax.DiffraxStepper(m, dt=1.0, num_substeps=4)
        _, temps = hybrax.rollout(stepper, state, 30, observe=_temperature)
        return jnp.mean(temps)

    grads = eqx.filter_grad(mean_warming)(model)
    for name in _0D_PARAMETERS:
        value = float(getattr(model, name))
        eps = 1e-5 * abs(value)
        plus, minus = (
            mean_warming(eqx.tree_at(lambda m, n=name: getattr(m, n), model, jnp.asarray(v)))
            for v in (value + eps, value - eps)
        )
        fd = float(plus - minus) / (2 * eps)
        assert float(getattr(grads, name)) == pytest.approx(fd, rel=1e-6), name


def _ramp(t):
    return 0.04 * t


def test_0d_steady_state_gradient_is_the_analytic_sensitivity():
    model = EnergyBalance0D(forcing=ConstantForcing(jnp.asarray(0.0)))
    state = model.initial_state(jnp.asarray(0.0, jnp.float64))

    def t_eq(b):
        m = eqx.tree_at(lambda mm: mm.olr_slope, model, b)
        return stable_steady_state(m, state).temperature

    b = jnp.asarray(2.09, jnp.float64)
    t_star = float(model.equilibrium_temperature())
    assert float(jax.grad(t_eq)(b)) == pytest.approx(-t_star / 2.09, rel=1e-6)  # dT*/dB


# --------------------------------------------------------------------------- 1-D model
@eqx.filter_jit
def _linear_steady_state(model):
    """The steady state of a model linear in the temperature: one Newton step from 0 (jitted:
    the eager Jacobian dispatches thousands of small ops)."""

    def residual(t):
        return model.tendency(EBMState(t), 0.0).temperature

    zeros = jnp.zeros(model.num_points, jnp.float64)
    return -jnp.linalg.solve(jax.jacfwd(residual)(zeros), residual(zeros))


def test_1d_constant_albedo_steady_state_converges_at_second_order():
    # Closed form: T = (Q a - A)/B + Q a s2 P2(x) / (B + 6 D), with co-albedo a = 1 - alpha.
    # With a constant albedo the model is linear: its discrete steady state is one solve.
    constant = IceAlbedo(ice_free=0.3, ice_free_p2=0.0, ice=0.3)  # alpha = 0.3 everywhere
    errors = []
    for n in (30, 60):
        model = BudykoSellers(num_points=n, albedo=constant)
        discrete = _linear_steady_state(model)
        q, a = 1337.6 / 4, 0.7
        x = np.asarray(model.sin_latitude(jnp.float64))
        exact = (q * a - 203.3) / 2.09 + q * a * (-0.482) * _p2(x) / (2.09 + 6 * 0.649)
        errors.append(float(jnp.max(jnp.abs(discrete - exact))))
        if n == 30:  # found by time integration (+ Newton)
            state = stable_steady_state(model, model.initial_state(0.0, jnp.float64))
            np.testing.assert_allclose(state.temperature, discrete, rtol=0, atol=1e-10)
    assert errors[-1] < 5e-3
    assert abs(np.log2(errors[0] / errors[1]) - 2) < 0.1, errors


def test_1d_transport_conserves_heat_and_global_budget_holds():
    model = BudykoSellers(num_points=48)
    temperature = 20 * jax.random.normal(jax.random.key(0), (48,), jnp.float64)
    transport = model._transport(temperature)
    assert abs(float(jnp.mean(transport))) < 1e-13 * float(jnp.max(jnp.abs(transport)))
    state = EBMState(temperature)
    dtdt = model.tendency(state, 0.0).temperature
    x = model.sin_latitude(jnp.float64)
    absorbed = model.insolation(jnp.float64) * (1 - model.albedo(temperature, x))
    budget = (jnp.mean(absorbed) - 203.3 - 2.09 * jnp.mean(temperature)) / 8.0
    assert float(jnp.mean(dtdt)) == pytest.approx(float(budget), rel=1e-12)


def test_1d_defaults_reproduce_north_et_al_present_climate():
    model = BudykoSellers(num_points=30)  # 71.6 deg and 14.3 C with the default 90 cells
    warm = stable_steady_state(model, model.initial_state(15.0, jnp.float64))
    assert 68 < float(model.ice_edge_latitude(warm)) < 76  # North et al. 1981: 72 deg
    assert 13 < float(model.global_mean(warm)) < 16
    snowball = stable_steady_state(model, model.initial_state(-40.0, jnp.float64))
    assert float(model.ice_edge_latitude(snowball)) == 0.0  # the other stable state
    assert float(model.global_mean(snowball)) < -30
    latitude = model.latitude(jnp.float64)
    assert np.all(np.diff(np.asarray(latitude)) > 0)  # south to north


def test_1d_ice_line_hysteresis():
    model = BudykoSellers(num_points=30)
    solar = jnp.linspace(1150.0, 1800.0, 27)
    sweep = jax.jit(hysteresis_sweep)(model, solar)
    up, down = np.asarray(sweep.ice_edge_increasing), np.asarray(sweep.ice_edge_decreasing)
    # a range of solar constants with two stable climates: snowball (rising) and a partial
    # ice cap or ice-free (falling)
    two_states = (up == 0) & (down > 30)
    s = np.asarray(solar)[two_states]
    assert two_states.sum() >= 10 and s.min() < 1300 and s.max() > 1600, (up, down)
    # the present-day solar constant is inside the bistable range
    assert s.min() < 1337.6 < s.max()
    # outside it the two sweeps agree: snowball at low S, ice-free at high S
    assert up[0] == down[0] == 0 and up[-1] == down[-1] == 90
    tm_up, tm_down = (
        np.asarray(sweep.mean_temperature_increasing),
        np.asarray(sweep.mean_temperature_decreasing),
    )
    assert np.all(tm_down[two_states] - tm_up[two_states] > 25)
    np.testing.assert_allclose(tm_up[[0, -1]], tm_down[[0, -1]], atol=1e-4)


_1D_PARAMETERS = (
    ("diffusivity",),
    ("olr_slope",),
    ("olr_intercept",),
    ("solar_constant",),
    ("albedo", "ice"),
    ("albedo", "ice_free"),
)


def _get(model, path):
    for name in path:
        model = getattr(model, name)
    return model


def test_1d_steady_state_gradients_match_finite_differences():
    model = BudykoSellers(num_points=30)
    start = stable_steady_state(model, model.initial_state(15.0, jnp.float64))

    def mean_temperature(m):
        return m.global_mean(stable_steady_state(m, start))

    grads = eqx.filter_grad(mean_temperature)(model)
    for path in _1D_PARAMETERS:
        value = float(_get(model, path))
        eps = 1e-5 * abs(value)
        plus, minus = (
            mean_temperature(eqx.tree_at(lambda m, p=path: _get(m, p), model, jnp.asarray(v)))
            for v in (value + eps, value - eps)
        )
        fd = float(plus - minus) / (2 * eps)
        assert float(_get(grads, path)) == pytest.approx(fd, rel=1e-5), path


def test_jit_and_vmap_over_an_ensemble_of_parameters():
    model = BudykoSellers(num_points=30)
    state = model.initial_state(15.0, jnp.float64)

    def equilibrium(b):
        m = eqx.tree_at(lambda mm: mm.olr_slope, model, b)
        return m.global_mean(stable_steady_state(m, state))

    slopes = jnp.asarray([1.8, 2.09, 2.4])
    batched = jax.jit(jax.vmap(equilibrium))(slopes)
    for b, value in zip(slopes, batched, strict=True):
        assert float(value) == pytest.approx(float(equilibrium(b)), abs=1e-10)
    assert float(batched[0]) > float(batched[2])  # weaker feedback, warmer climate


def test_albedo_is_smooth_and_bounded():
    constant = ConstantAlbedo(0.25)(jnp.ones(3), jnp.zeros(3))
    np.testing.assert_allclose(constant, 0.25)
    albedo = IceAlbedo()
    t = jnp.linspace(-40.0, 30.0, 141)
    values = albedo(t, jnp.zeros_like(t))
    assert float(values[0]) == pytest.approx(0.62, abs=1e-6)
    assert float(values[-1]) == pytest.approx(0.319 - 0.5 * 0.202, abs=1e-6)
    assert np.all(np.diff(np.asarray(values)) <= 0)
    slope = jax.grad(lambda x: albedo(x, jnp.zeros(()))[()])(jnp.asarray(-10.0))
    assert float(slope) == pytest.approx(-(0.62 - 0.218) / 2, rel=1e-6)  # tanh at width 1 K


# --------------------------------------------------------------------------- bad input
def test_bad_input_messages(wrong_type):
    model = BudykoSellers(num_points=24)
    with pytest.raises(
        ConfigurationError, match=r"shape \(24,\), got \(3, 24\); for an ensemble use jax"
    ):
        model.tendency(EBMState(jnp.zeros((3, 24))), 0.0)
    with pytest.raises(ConfigurationError, match="num_points >= 4"):
        BudykoSellers(num_points=2)
    with pytest.raises(ConfigurationError, match="heat_capacity must be positive"):
        EnergyBalance0D(heat_capacity=-1.0)
    with pytest.raises(ConfigurationError, match="diffusivity must be non-negative"):
        BudykoSellers(diffusivity=-0.1)
    with pytest.raises(ConfigurationError, match="transition_width must be positive"):
        IceAlbedo(transition_width=0.0)
    with wrong_type("state", ConfigurationError, "expects an EBMState"):
        EnergyBalance0D().tendency(hybrax.ODEState(jnp.zeros(1)), 0.0)
    with wrong_type("solar_constants", ConfigurationError, "1-D array of increasing values"):
        hysteresis_sweep(model, jnp.zeros((2, 3)))


def test_core_newton_solve_agrees_with_the_stable_steady_state():
    """With a constant albedo the steady state is unique: Newton alone (hybrax.steady_state)
    and time integration + Newton (stable_steady_state) find the same one."""
    model = BudykoSellers(num_points=20, albedo=ConstantAlbedo(0.3))
    start = model.initial_state(0.0, jnp.float64)
    direct = hybrax.steady_state(model, start)
    relaxed = stable_steady_state(model, start)
    np.testing.assert_allclose(direct.temperature, relaxed.temperature, rtol=0, atol=1e-9)
    residual = model.tendency(direct, 0.0).temperature
    assert float(jnp.max(jnp.abs(residual))) < 1e-10
