"""Two-layer QG: agreement with pyqg-jax, physics (energy, linear waves and instability,
equilibrium KE), the parameterisation hook, AB3, transforms and bad input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.climate import AdamsBashforth3, Filtered, TwoLayerQG
from hybrax.core import mul
from hybrax.errors import ConfigurationError
from hybrax.grids import SpectralState

HOUR = 3600.0
DAY = 86400.0
YEAR = 360 * DAY  # pyqg's year


def _relative(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def _run(stepper, state, n):
    final, _ = hybrax.rollout(stepper, state, n, save_every=None)
    return final


@eqx.filter_jit
def _tendency(model, state):  # jitted: eager evaluation dispatches hundreds of small ops
    return model.tendency(state, 0.0).field_hat


@eqx.filter_jit
def _step(stepper, state):
    return stepper.step(state)


# --------------------------------------------------------------------- pyqg-jax agreement
def _pyqg_jax_run(pyqg_jax, q, n, **params):
    with jax.numpy_dtype_promotion("standard"):
        return _pyqg_jax_run_standard(pyqg_jax, q, n, **params)


def _pyqg_jax_run_standard(pyqg_jax, q, n, **params):
    model = pyqg_jax.steppers.SteppedModel(
        pyqg_jax.qg_model.QGModel(precision=pyqg_jax.state.Precision.DOUBLE, **params),
        pyqg_jax.steppers.AB3Stepper(dt=HOUR),
    )
    inner = model.model.create_initial_state(jax.random.key(0)).update(q=q)
    state = model.initialize_stepper_state(inner)

    @jax.jit
    def run(s):
        return jax.lax.scan(lambda c, _: (model.step_model(c), None), s, None, length=n)[0]

    return run(state).state.qh


@pytest.fixture(scope="module")
def turbulent_pv():
    """PV (float64, 64^2) of the eddy configuration after 2 years: developed eddies."""
    model = TwoLayerQG.eddy(64)
    stepper = model.pyqg_stepper(HOUR)
    initial = model.initial_state(jax.random.key(3), dtype=jnp.float64)
    # 2 years in chunks of 100 steps: the same compiled rollout as the comparison below
    carry = stepper.init(initial)
    for _ in range(round(2 * YEAR / HOUR / 100)):
        carry = _run(stepper, carry, 100)
    spun = carry.state
    assert float(model.kinetic_energy(spun)[0]) > 5e-5  # really turbulent
    return model.pv(spun)


@pytest.mark.parametrize("config", ["eddy", "jet"])
def test_matches_pyqg_jax_after_100_steps_float64(config, turbulent_pv):
    pyqg_jax = pytest.importorskip("pyqg_jax")
    model = getattr(TwoLayerQG, config)(64)
    params = {"nx": 64} | ({"rek": 7e-8, "delta": 0.1, "beta": 1e-11} if config == "jet" else {})
    stepper = model.pyqg_stepper(HOUR)
    # Start 1: pyqg's random initial PV. Start 2: developed turbulence, where the nonlinear
    # terms dominate.
    initial = model.pv(model.initial_state(jax.random.key(3), dtype=jnp.float64))
    for q in (initial, turbulent_pv):
        ours = _run(stepper, stepper.init(model.state_from_pv(q)), 100).state
        reference = _pyqg_jax_run(pyqg_jax, q, 100, **params)
        n = model.grid.num_points  # pyqg's qh is unnormalised
        assert _relative(ours.field_hat * n, reference) < 1e-10
        assert float(ours.time) == pytest.approx(100 * HOUR)


# ----------------------------------------------------------------------- spin-up to equilibrium
@pytest.mark.slow
def test_eddy_configuration_reaches_pyqg_equilibrium_kinetic_energy(full_size):
    # pyqg's two-layer example (default eddy configuration, 64^2, dt = 1 h) logs a depth-
    # weighted KE of 3.8e-4, 4.9e-4, 5.1e-4, 5.0e-4 m^2/s^2 after 2.3, 4.6, 6.9, 9.3 years.
    years, average_from = (10, 5) if full_size else (4, 3)
    model = TwoLayerQG.eddy(64)
    stepper = model.pyqg_stepper(HOUR)
    state = stepper.init(model.initial_state(jax.random.key(0), dtype=jnp.float32))
    per_month = int(30 * DAY / HOUR)

    def total_ke(s):
        h = model.layer_depths.astype(jnp.float32)
        return jnp.sum(h / jnp.sum(h) * model.kinetic_energy(s))

    final, ke = hybrax.rollout(
        stepper, state, 12 * years * per_month, save_every=per_month, observe=total_ke
    )
    ke = np.asarray(ke)[12 * average_from :]
    assert np.all(np.isfinite(ke))
    mean = ke.mean()
    assert 3.5e-4 < mean < 6.5e-4, mean
    first, second = np.array_split(ke, 2)
    assert abs(first.mean() - second.mean()) < 0.25 * mean  # statistically steady
    assert float(model.courant_number(final.state, HOUR)) < 0.25


# ----------------------------------------------------------------------------- physics
def _band_limited_state(model, key, amplitude=1e-5, dtype=jnp.float64):
    ny, nx = model.grid.shape
    q = amplitude * jax.random.normal(key, (2, ny, nx), dtype)
    s = model.state_from_pv(q)
    return SpectralState(model.grid.dealias(s.field_hat), s.time)


def test_inviscid_dealiased_energy_conserved_to_time_stepping_error():
    model = TwoLayerQG(
        32,
        upper_velocity=0.0,
        lower_velocity=0.0,
        bottom_drag=0.0,
        filter_factor=0.0,
        dealias=True,
    )
    state = _band_limited_state(model, jax.random.key(1))
    e0 = model.total_energy(state)
    assert float(model.courant_number(state, 3600.0)) > 0.05  # a real nonlinear flow
    errors = []
    for dt in (4 * HOUR, 2 * HOUR, HOUR):  # same step count, dt traced: one compilation
        final = _run(hybrax.RK4(model, jnp.asarray(dt)), state, 240)  # T = 240 dt
        errors.append(abs(float((model.total_energy(final) - e0) / e0)))
    assert errors[-1] < 1e-9
    # error ~ T dt^4 = 240 dt^5: halving dt divides it by >= 16 (RK4)
    assert errors[0] / errors[1] > 16 and errors[1] / errors[2] > 16


def test_energy_budget_of_the_tendency_is_shear_production_minus_drag():
    # dE/dt = -(H1/H)(U1 - U2)<v1 q1> - 2 r_ek (H2/H) KE_2, exactly for the 2/3-rule model.
    model = TwoLayerQG.eddy(32, filter_factor=0.0, dealias=True, bottom_drag=2e-6)
    state = _band_limited_state(model, jax.random.key(2))
    tendency = _tendency(model, state)
    psi = model._inversion(state.field_hat)
    h = model.layer_depths
    weights = model.grid.hermitian_weights(jnp.float64)
    dedt = -jnp.sum((h / h.sum())[:, None, None] * weights * jnp.real(jnp.conj(psi) * tendency))
    flux = model.eddy_pv_flux(state)
    production = -(h[0] / h.sum()) * (model.upper_velocity - model.lower_velocity) * flux[0]
    drag = -2 * model.bottom_drag * (h[1] / h.sum()) * model.kinetic_energy(state)[1]
    assert float(dedt) == pytest.approx(float(production + drag), rel=1e-10)
    # momentum conservation: H1 <v1 q1> + H2 <v2 q2> = 0
    assert abs(float(jnp.sum(h * flux))) < 1e-12 * float(jnp.max(jnp.abs(h * flux)))


def _linear_eigen(model, kx_index, ky_index):
    """Eigenvalues/vectors of pyqg's linearised equations for one mode (numpy, float64)."""
    ny, (w, length) = model.grid.shape[0], model.grid.domain_length
    k = 2 * np.pi / length * kx_index
    ell = 2 * np.pi / w * np.fft.fftfreq(ny, 1 / ny)[ky_index]
    kappa2 = k * k + ell * ell
    rd, delta = float(model.deformation_radius), float(model.layer_ratio)
    f1 = 1 / (rd**2 * (1 + delta))
    f2 = delta * f1
    u = np.array([float(model.upper_velocity), float(model.lower_velocity)])
    beta, rek = float(model.beta), float(model.bottom_drag)
    qy = np.array([beta + f1 * (u[0] - u[1]), beta - f2 * (u[0] - u[1])])
    to_psi = np.linalg.inv(np.array([[-(kappa2 + f1), f1], [f2, -(kappa2 + f2)]]))
    matrix = -1j * k * (np.diag(u) + np.diag(qy) @ to_psi)
    matrix[1] += rek * kappa2 * to_psi[1]
    return np.linalg.eig(matrix)


@pytest.mark.parametrize(
    ("params", "mode"),
    [
        ({}, (7, 1)),  # eddy: the fastest-growing baroclinic mode (e-folds in 150 days)
        ({"upper_velocity": 0.0, "bottom_drag": 0.0}, (2, 1)),  # neutral Rossby waves
    ],
)
def test_linear_modes_grow_and_propagate_as_the_dispersion_relation(params, mode):
    model = TwoLayerQG.eddy(32, filter_factor=0.0, **params)
    kx_index, ky_index = mode
    values, vectors = _linear_eigen(model, kx_index, ky_index)
    pick = int(np.argmax(values.real)) if not params else 0
    rate = values[pick]
    field_hat = np.zeros((2, *model.grid.spectral_shape), complex)
    field_hat[:, ky_index, kx_index] = 1e-12 * vectors[:, pick]  # tiny: linear regime
    state = SpectralState(jnp.asarray(field_hat), 0.0)
    horizon = 100 * DAY
    final = _run(hybrax.RK4(model, HOUR), state, int(horizon / HOUR))
    expected = field_hat[:, ky_index, kx_index] * np.exp(rate * horizon)
    got = np.asarray(final.field_hat[:, ky_index, kx_index])
    assert np.max(np.abs(got - expected)) < 1e-6 * np.max(np.abs(expected))
    if not params:
        assert rate.real * DAY > 0.006  # baroclinic instability, damped by beta
        assert np.linalg.norm(got) > 1.8 * np.linalg.norm(field_hat[:, ky_index, kx_index])
    else:
        assert abs(rate.real) < 1e-15 and abs(rate.imag) > 0  # neutral, propagating


@eqx.filter_jit
def _diagnostics(model, state):
    return (
        model.flow(state),
        model.kinetic_energy(state),
        model.eddy_pv_flux(state),
        model.streamfunction(state),
        model.available_potential_energy(state),
        model.kinetic_energy_spectrum(state, truncate=False),
        model.kinetic_energy_spectrum(state),
        model.pv(state),
    )


def test_diagnostics_parseval_and_physical_space():
    model = TwoLayerQG.eddy(32)
    state = _band_limited_state(model, jax.random.key(4))
    flow, ke, flux, psi, ape, (k, spectrum), (k_trunc, spectrum_trunc), q = _diagnostics(
        model, state
    )
    np.testing.assert_allclose(ke, 0.5 * jnp.mean(flow.u**2 + flow.v**2, axis=(1, 2)), rtol=1e-12)
    np.testing.assert_allclose(flux, jnp.mean(flow.v * flow.q, axis=(1, 2)), rtol=1e-10)
    h1, h2 = model.layer_depths
    f1 = 1 / (model.deformation_radius**2 * (1 + model.layer_ratio))
    expected_ape = 0.5 * h1 / (h1 + h2) * f1 * jnp.mean((psi[0] - psi[1]) ** 2)
    assert float(ape) == pytest.approx(float(expected_ape), rel=1e-12)
    np.testing.assert_allclose(jnp.sum(spectrum, -1) * (k[1] - k[0]), ke, rtol=1e-12)
    assert float(k_trunc[-1]) <= np.pi * 32 / 1e6 and spectrum_trunc.shape == (2, k_trunc.size)
    np.testing.assert_allclose(q, flow.q, atol=1e-18)


# ------------------------------------------------------------------------- steppers
def test_adams_bashforth3_third_order_and_pyqg_start_up():
    model = hybrax.climate.Lorenz63()
    state = model.initial_state(dtype=jnp.float64)
    horizon = 1.0
    reference = _run(hybrax.RK4(model, horizon / 8000), state, 8000).u
    errors = []
    for n in (400, 800, 1600):  # chunks of 400 steps, dt traced: one compilation
        stepper = AdamsBashforth3(model, jnp.asarray(horizon / n))
        carry = stepper.init(state)
        for _ in range(n // 400):
            carry = _run(stepper, carry, 400)
        errors.append(float(jnp.max(jnp.abs(carry.state.u - reference))))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(orders - stepper.order) < 0.3), (errors, stepper.order)
    # start-up: forward Euler, then AB2 (3/2, -1/2), then AB3
    stepper = AdamsBashforth3(model, 0.01)
    s0 = stepper.init(state)
    s1, s2 = stepper.step(s0), stepper.step(stepper.step(s0))
    f0 = model.tendency(state, 0.0).u
    f1 = model.tendency(s1.state, 0.01).u
    np.testing.assert_allclose(s1.state.u, state.u + 0.01 * f0, rtol=1e-14)
    np.testing.assert_allclose(s2.state.u, s1.state.u + 0.01 * (1.5 * f1 - 0.5 * f0), rtol=1e-14)
    assert int(s2.level) == 2 and float(s2.time) == pytest.approx(0.02)


def test_rk4_and_etdrk4_converge_to_the_same_solution_and_run_in_float32():
    model = TwoLayerQG.eddy(32, filter_factor=0.0, dealias=True)
    state = _band_limited_state(model, jax.random.key(5), amplitude=5e-6)
    differences = []
    for dt in (4 * HOUR, 2 * HOUR):  # same step count, dt traced: one compilation each
        rk4 = _run(hybrax.RK4(model, jnp.asarray(dt)), state, 30)
        etd = _run(hybrax.ETDRK4(model, jnp.asarray(dt)), state, 30)
        differences.append(_relative(etd.field_hat, rk4.field_hat))
    assert differences[1] < 1e-7 and differences[0] / differences[1] > 10  # both 4th order
    model = TwoLayerQG.eddy(32)
    # Filtered applies the model's filter after each inner step (to the model state only)
    filtered = Filtered(hybrax.RK4(model, HOUR), model.apply_filter)
    np.testing.assert_array_equal(
        _step(filtered, state).field_hat,
        model.apply_filter(_step(hybrax.RK4(model, HOUR), state)).field_hat,
    )
    # float32 end to end (state, history and time), close to the float64 run (100 steps at
    # 64^2 in float64 is also the pyqg-jax comparison's compilation)
    model = TwoLayerQG.eddy(64)
    state = _band_limited_state(model, jax.random.key(5), amplitude=2e-6)
    stepper = model.pyqg_stepper(HOUR)
    s32 = stepper.init(SpectralState(state.field_hat.astype(jnp.complex64), jnp.float32(0)))
    out32 = _run(stepper, s32, 100)
    out64 = _run(stepper, stepper.init(state), 100)
    assert out32.state.field_hat.dtype == jnp.complex64 and out32.time.dtype == jnp.float32
    assert out32.previous.field_hat.dtype == jnp.complex64
    assert _relative(out32.state.field_hat.astype(jnp.complex128), out64.state.field_hat) < 1e-4


# ------------------------------------------------------------------- parameterisation hook
class LinearDamping(eqx.Module):
    """An analytic parameterisation: ``S = -rate * q`` (physical) or spectrally."""

    rate: jax.Array
    spectral: bool = eqx.field(static=True, default=False)

    def __call__(self, flow, model):
        if self.spectral:
            return mul(-self.rate, flow.pv_hat)
        return -self.rate.astype(flow.q.dtype) * flow.q


def _physical_pv(state):
    return jnp.fft.irfft2(state.field_hat, s=(32, 32), norm="forward")


def _add_physical_tendency(tendency, output):
    extra = jnp.fft.rfft2(output, norm="forward")
    return SpectralState(tendency.field_hat + extra, tendency.time)


@pytest.mark.parametrize("spectral", [False, True])
def test_parameterization_hook_adds_its_tendency(spectral):
    model = TwoLayerQG.eddy(32)
    state = _band_limited_state(model, jax.random.key(6))
    rate = 1e-6
    hooked = eqx.tree_at(
        lambda m: m.parameterization,
        model,
        LinearDamping(jnp.asarray(rate), spectral),
        is_leaf=lambda x: x is None,
    )
    difference = _tendency(hooked, state) - _tendency(model, state)
    scale = rate * float(jnp.max(jnp.abs(state.field_hat)))
    np.testing.assert_allclose(difference, -rate * state.field_hat, rtol=0, atol=1e-12 * scale)
    # the same closure as a hybrax.hybrid.Closure around the model (a net on physical q)
    closure = hybrax.hybrid.Closure(
        model,
        lambda q: -rate * q,
        to_input=_physical_pv,
        from_output=_add_physical_tendency,
    )
    np.testing.assert_allclose(
        eqx.filter_jit(lambda c, s: c.tendency(s, 0.0).field_hat)(closure, state),
        _tendency(hooked, state),
        rtol=0,
        atol=1e-12 * scale,
    )

    if spectral:
        return

    # gradients reach the parameterisation's parameter through a rollout
    def loss(p):
        m = eqx.tree_at(lambda mm: mm.parameterization.rate, hooked, p)
        final = _run(m.pyqg_stepper(HOUR), m.pyqg_stepper(HOUR).init(state), 20)
        return jnp.sum(m.kinetic_energy(final.state))

    value_and_grad = jax.jit(jax.value_and_grad(loss))  # one compilation for all three
    grad = value_and_grad(jnp.asarray(rate))[1]
    eps = 1e-9
    plus, minus = (value_and_grad(jnp.asarray(r))[0] for r in (rate + eps, rate - eps))
    fd = (plus - minus) / (2 * eps)
    assert float(grad) < 0 and float(grad) == pytest.approx(float(fd), rel=1e-6)


def test_parameterization_with_wrong_shape_is_rejected():
    model = TwoLayerQG.eddy(32, parameterization=lambda flow, m: flow.q[0])
    state = _band_limited_state(model, jax.random.key(6))
    with pytest.raises(
        ConfigurationError, match=r"parameterization output must have shape \(2, 32, 32\)"
    ):
        model.tendency(state, 0.0)


# ------------------------------------------------------------------- gradients, transforms
def test_gradient_matches_finite_differences():
    model = TwoLayerQG.eddy(32)
    state = _band_limited_state(model, jax.random.key(7), amplitude=3e-6)

    def loss(values):  # values = (beta, bottom_drag)
        m = eqx.tree_at(lambda mm: (mm.beta, mm.bottom_drag), model, (values[0], values[1]))
        stepper = m.pyqg_stepper(HOUR)
        final = _run(stepper, stepper.init(state), 48)
        return jnp.sum(m.kinetic_energy(final.state))

    value_and_grad = jax.jit(jax.value_and_grad(loss))  # one compilation for every evaluation
    values = jnp.stack([model.beta, model.bottom_drag])
    grads = value_and_grad(values)[1]
    for i, name in enumerate(("beta", "bottom_drag")):
        eps = 1e-4 * values[i]
        plus, minus = (value_and_grad(values.at[i].add(e))[0] for e in (eps, -eps))
        fd = (plus - minus) / (2 * eps)
        assert abs(float(grads[i])) > 0, name
        assert float(grads[i]) == pytest.approx(float(fd), rel=1e-6), name


def test_jit_and_vmap_ensemble():
    model = TwoLayerQG.eddy(32)
    stepper = model.pyqg_stepper(HOUR)
    keys = jax.random.split(jax.random.key(8), 3)
    states = jax.vmap(lambda k: stepper.init(model.initial_state(k, dtype=jnp.float64)))(keys)
    batched = jax.jit(jax.vmap(lambda s: _run(stepper, s, 30)))(states)
    for i in range(3):
        single = _run(stepper, jax.tree.map(lambda x, i=i: x[i], states), 30)
        np.testing.assert_allclose(
            batched.state.field_hat[i], single.state.field_hat, rtol=1e-12, atol=1e-25
        )


# ------------------------------------------------------------------------- bad input
def test_bad_input_messages(wrong_type):
    model = TwoLayerQG.eddy(32)
    q = jnp.zeros((2, 32, 32))
    with pytest.raises(ConfigurationError, match=r"physical field: use model\.state_from_pv"):
        model.tendency(SpectralState(q.astype(jnp.complex64)), 0.0)
    with wrong_type("q", ConfigurationError, r"for an ensemble use jax\.vmap"):
        model.state_from_pv(jnp.zeros((4, 2, 32, 32)))
    with wrong_type("state", ConfigurationError, r"wrap the model state with stepper\.init"):
        model.pyqg_stepper(HOUR).step(model.state_from_pv(q))
    with pytest.raises(ConfigurationError, match="deformation_radius must be positive"):
        TwoLayerQG(32, deformation_radius=-1.0)
    with pytest.raises(ConfigurationError, match=r"layer_ratio must be positive.*delta = H1 / H2"):
        TwoLayerQG(32, layer_ratio=0.0)
    with pytest.raises(ConfigurationError, match="beta must be a single number"):
        TwoLayerQG(32, beta=jnp.array([1e-11, 2e-11]))
    rest = model.state_from_pv(q)  # the mean flow alone
    with pytest.raises(ConfigurationError, match=r"Courant number .* use dt <="):
        hybrax.check_time_step(model.pyqg_stepper(dt=3e6), rest, 0.23)
    with pytest.raises(ConfigurationError, match="Grid sizes must be even"):
        TwoLayerQG(33)
    developed = model.state_from_pv(2e-5 * jax.random.normal(jax.random.key(0), (2, 32, 32)))
    with pytest.raises(ConfigurationError, match="Courant number"):
        hybrax.check_time_step(model.pyqg_stepper(6 * HOUR), developed, 0.23)
