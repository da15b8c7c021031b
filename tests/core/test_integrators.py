"""Order of accuracy of every integrator, and the contract's transforms (jit, vmap, grad)."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax import ODEState


class KuramotoSivashinskyModes(hybrax.AbstractSemilinearDynamics):
    """1D KS ``u_t = -u u_x - u_xx - u_xxxx`` in Fourier space (a stiff test problem)."""

    length: float = eqx.field(static=True)
    num_points: int = eqx.field(static=True)

    def _k(self, dtype):
        return (2 * np.pi / self.length) * jnp.fft.rfftfreq(self.num_points, 1 / self.num_points)

    def linear_operator(self):
        k = self._k(None)
        return ODEState((k**2 - k**4).astype(jnp.complex128), 0.0)

    def nonlinear(self, state, t):
        k = self._k(None).astype(state.u.dtype)
        u = jnp.fft.irfft(state.u, n=self.num_points)
        return ODEState(-0.5j * k * jnp.fft.rfft(u * u), state.time)


def _fitted_order(errors, steps):
    slope, _ = np.polyfit(np.log(1.0 / np.asarray(steps)), np.log(np.asarray(errors)), 1)
    return slope


def _final(stepper, state, n):
    final, _ = hybrax.rollout(stepper, state, n, save_every=None)
    return final


@pytest.mark.parametrize(
    ("method", "steps"),
    [
        (hybrax.Euler, (200, 400, 800, 1600)),
        (hybrax.Heun, (100, 200, 400, 800)),
        (hybrax.SSPRK3, (100, 200, 400, 800)),
        (hybrax.RK4, (50, 100, 200, 400)),
    ],
)
def test_explicit_order_of_accuracy(method, steps):
    model = hybrax.climate.Lorenz96(num_variables=16, forcing=8.0)
    state = model.initial_state(jax.random.key(1), dtype=jnp.float64)
    horizon = 1.0
    reference = _final(hybrax.RK4(model, horizon / 6400), state, 6400)
    errors = [
        float(jnp.max(jnp.abs(_final(method(model, horizon / n), state, n).u - reference.u)))
        for n in steps
    ]
    order = method(model, horizon).order
    assert isinstance(order, int)
    assert abs(_fitted_order(errors, steps) - order) < 0.3, (errors, order)


@pytest.mark.parametrize(
    ("method", "steps"),
    [
        (hybrax.ETDRK1, (40, 80, 160, 320)),
        (hybrax.ETDRK2, (20, 40, 80, 160)),
        (hybrax.ETDRK3, (10, 20, 40, 80)),
        (hybrax.ETDRK4, (10, 20, 40, 80)),
    ],
)
def test_etd_order_on_stiff_problem(method, steps):
    model = KuramotoSivashinskyModes(length=22.0, num_points=64)
    x = jnp.linspace(0, 22.0, 64, endpoint=False)
    state = ODEState(jnp.fft.rfft(jnp.exp(jnp.cos(2 * np.pi * x / 22.0))))
    # The stiffest mode has L dt down to -700 at the largest step: explicit RK4 would
    # need dt < 4e-4 here.
    horizon = 1.0
    reference = _final(hybrax.ETDRK4(model, horizon / 4000), state, 4000)
    errors = [
        float(jnp.max(jnp.abs(_final(method(model, horizon / n), state, n).u - reference.u)))
        for n in steps
    ]
    order = method(model, horizon).order
    assert abs(_fitted_order(errors, steps) - order) < 0.3, (errors, order)


def test_etdrk4_coefficients_match_closed_form_away_from_zero():
    z = jnp.array([-50.0, -3.0, -0.7, 0.9])
    c = hybrax.etdrk4_coefficients(z, 1.0)
    ez = np.exp(np.asarray(z))
    f1 = (-4 - z + ez * (4 - 3 * z + z**2)) / z**3
    f2 = (2 + z + ez * (z - 2)) / z**3
    f3 = (-4 - 3 * z - z**2 + ez * (4 - z)) / z**3
    np.testing.assert_allclose(c.f1, f1, rtol=1e-12)
    np.testing.assert_allclose(c.f2, f2, rtol=1e-12)
    np.testing.assert_allclose(c.f3, f3, rtol=1e-12)
    np.testing.assert_allclose(c.q, (np.exp(np.asarray(z) / 2) - 1) / z, rtol=1e-12)


def test_etdrk4_coefficients_finite_at_zero():
    """The contour integral avoids the 0/0 of the closed forms: phi functions at z = 0."""
    c = hybrax.etdrk4_coefficients(jnp.zeros(3), 0.5)
    np.testing.assert_allclose(c.q, 0.25, rtol=1e-13)  # h/2 * phi_1(0)
    np.testing.assert_allclose(c.f1, 0.5 / 6, rtol=1e-13)
    np.testing.assert_allclose(c.f2, 0.5 / 6, rtol=1e-13)
    np.testing.assert_allclose(c.f3, 0.5 / 6, rtol=1e-13)


def test_diffrax_stepper_matches_rk4_reference():
    model = hybrax.climate.Lorenz96(num_variables=16)
    state = model.initial_state(jax.random.key(2), dtype=jnp.float64)
    reference = _final(hybrax.RK4(model, 1 / 4000), state, 4000)
    fixed = hybrax.DiffraxStepper(model, 0.05, diffrax.Tsit5(), num_substeps=20)
    adaptive = hybrax.DiffraxStepper(
        model,
        0.05,
        diffrax.Dopri5(),
        stepsize_controller=diffrax.PIDController(rtol=1e-10, atol=1e-10),
    )
    for stepper, tol in ((fixed, 1e-8), (adaptive, 1e-7)):
        final = _final(stepper, state, 20)
        np.testing.assert_allclose(final.u, reference.u, atol=tol)
        np.testing.assert_allclose(final.time, 1.0, rtol=1e-12)


def test_nonpositive_dt_is_rejected():
    model = hybrax.climate.Lorenz96()
    for bad in (0.0, -0.01, float("nan")):
        with pytest.raises(hybrax.ConfigurationError, match="dt must be positive"):
            hybrax.RK4(model, bad)
    with pytest.raises(hybrax.ConfigurationError, match="dt must be positive"):
        hybrax.ETDRK4(model, 0)


def test_etdrk4_needs_semilinear_dynamics(wrong_type):
    class Plain(hybrax.AbstractDynamics):
        def tendency(self, state, t):
            return state

    with wrong_type("dynamics", hybrax.ConfigurationError, "AbstractSemilinearDynamics"):
        hybrax.ETDRK4(Plain(), 0.1)


@pytest.mark.parametrize("complex_linear", [False, True])
def test_series_and_contour_coefficients_agree(complex_linear):
    """The default evaluation (series near 0, closed forms elsewhere) and the
    Kassam–Trefethen contour integral give the same coefficients."""
    magnitude = jnp.logspace(-8, 4, 300)
    z = -magnitude
    if complex_linear:
        z = jax.lax.complex(z, magnitude * jnp.cos(jnp.arange(300.0)))
    series = hybrax.etdrk4_coefficients(z, 0.5)
    contour = hybrax.etdrk4_coefficients(z, 0.5, num_contour_points=64)
    for name in ("exp_full", "exp_half", "q", "f1", "f2", "f3"):
        np.testing.assert_allclose(getattr(series, name), getattr(contour, name), rtol=1e-10)


def test_float32_coefficients_are_accurate():
    """In float32 the series/closed-form evaluation stays within a few 1e-6 of float64,
    also for very stiff modes (where phi-function sums would cancel) and near |z| = 2."""
    z = jnp.concatenate([-jnp.logspace(-6, 5, 200), jnp.logspace(-6, 1, 100)])
    single = hybrax.etdrk4_coefficients(z.astype(jnp.float32), 1.0)
    double = hybrax.etdrk4_coefficients(z, 1.0)
    for name in ("q", "f1", "f2", "f3"):
        np.testing.assert_allclose(
            np.asarray(getattr(single, name), np.float64), getattr(double, name), rtol=1e-5
        )


def test_etdrk4_contour_option_gives_the_same_solution():
    model = hybrax.climate.Lorenz96(num_variables=12)
    state = model.initial_state(jax.random.key(4), dtype=jnp.float64)
    a = _final(hybrax.ETDRK4(model, 0.01), state, 100)
    b = _final(hybrax.ETDRK4(model, 0.01, num_contour_points=32), state, 100)
    np.testing.assert_allclose(a.u, b.u, rtol=1e-11)
