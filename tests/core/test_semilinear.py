"""AbstractSemilinearStepper: the part the ETD schemes (ETDRK1-4) and CrankNicolsonRK4
share (per-leaf coefficients from an integer or float L, prepare), and the ETD schemes'
steps against Cox & Matthews' formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax import ODEState
from hybrax.core import AbstractSemilinearStepper


class Linear(hybrax.AbstractSemilinearDynamics):
    """``du/dt = L u + 1`` with an integer ``L`` (promoted to float by the stepper)."""

    def linear_operator(self):
        return ODEState(jnp.array([-1, -4]), 0.0)

    def nonlinear(self, state, t):
        return ODEState(jnp.ones_like(state.u), state.time)


@pytest.mark.parametrize(
    ("stepper_class", "order", "rtol"),
    [
        (hybrax.ETDRK1, 1, 1e-10),
        (hybrax.ETDRK2, 2, 1e-10),
        (hybrax.ETDRK3, 3, 1e-10),
        (hybrax.ETDRK4, 4, 1e-10),
        (hybrax.CrankNicolsonRK4, 2, 1e-3),
    ],
)
def test_shared_base_prepare_and_order(stepper_class, order, rtol):
    stepper = stepper_class(Linear(), 0.1)
    assert isinstance(stepper, AbstractSemilinearStepper) and stepper_class.order == order
    prepared = stepper.prepare()
    assert prepared.coefficients is not None and stepper.coefficients is None
    assert prepared.prepare() is prepared and type(prepared) is stepper_class
    state = ODEState(jnp.array([1.0, 2.0]), 0.0)
    np.testing.assert_allclose(prepared.step(state).u, stepper.step(state).u, rtol=1e-12)
    # exact solution of du/dt = L u + 1: u* + (u0 - u*) e^{L t}, u* = -1/L (every ETD
    # scheme is exact for a constant N; Crank-Nicolson is second order, error ~ (L dt)^3 / 12)
    fixed = np.array([1.0, 0.25])
    exact = fixed + (np.array([1.0, 2.0]) - fixed) * np.exp(np.array([-1.0, -4.0]) * 0.1)
    np.testing.assert_allclose(prepared.step(state).u, exact, rtol=rtol)


class Coupled(hybrax.AbstractSemilinearDynamics):
    """``du/dt = L u + N(u, t)`` on four modes with ``N`` on the first two only (a function
    of them only); declares that restriction when ``restricted``."""

    restricted: bool = False

    def linear_operator(self):
        return ODEState(jnp.array([-1.0, -2.0, -30.0, -0.5]), 0.0)

    def nonlinear(self, state, t):
        u = state.u
        n = jnp.stack([u[0] * u[1] + jnp.sin(t), -(u[0] ** 2)])
        return ODEState(jnp.concatenate([n, jnp.zeros_like(u[2:])]), state.time)

    @property
    def nonlinear_is_restricted(self):
        return self.restricted

    def restrict(self, tree):
        return ODEState(tree.u[:2], tree.time) if self.restricted else tree

    def embed(self, tree, restricted):
        return ODEState(tree.u.at[:2].set(restricted.u), restricted.time)

    def nonlinear_restricted(self, state, t):
        if not self.restricted:
            return self.nonlinear(state, t)
        u = state.u
        return ODEState(jnp.stack([u[0] * u[1] + jnp.sin(t), -(u[0] ** 2)]), state.time)


def test_default_hooks_leave_the_stepper_unchanged():
    """Without a declared restriction the hooks are identities and ETDRK4's step is the
    Cox–Matthews formula, bit for bit."""
    plain, state = Linear(), ODEState(jnp.array([0.3, -0.2, 1.0, 2.0]), 0.25)
    assert not plain.nonlinear_is_restricted and plain.restrict(state) is state
    assert plain.embed(None, state) is state
    np.testing.assert_array_equal(plain.nonlinear_restricted(state, 0.0).u, jnp.ones(4))
    model = Coupled()
    c, h = hybrax.etdrk4_coefficients(model.linear_operator().u, 0.1), 0.1
    t0, u = 0.25, state.u

    def n(v, t):
        return model.nonlinear(ODEState(v, t), t).u

    nu = n(u, t0)
    a = c.exp_half * u + c.q * nu
    na = n(a, t0 + h / 2)
    b = c.exp_half * u + c.q * na
    nb = n(b, t0 + h / 2)
    cc = c.exp_half * a + c.q * (2 * nb - nu)
    nc = n(cc, t0 + h)
    expected = c.exp_full * u + c.f1 * nu + 2 * c.f2 * (na + nb) + c.f3 * nc
    for stepper in (hybrax.ETDRK4(model, h), hybrax.ETDRK4(model, h).prepare()):
        np.testing.assert_array_equal(stepper.step(state).u, expected)


_ETD = (hybrax.ETDRK1, hybrax.ETDRK2, hybrax.ETDRK3, hybrax.ETDRK4)


@pytest.mark.parametrize("stepper_class", [*_ETD, hybrax.CrankNicolsonRK4])
def test_restricted_nonlinear_runs_the_stages_on_its_modes(stepper_class):
    """A model declaring that N lives on some modes gets the full stages' result there to
    round-off, and the other modes advance by the linear part alone (the ETD schemes;
    CN-RK4 keeps its stages on every mode)."""
    full, restricted = Coupled(), Coupled(restricted=True)
    state = ODEState(jnp.array([0.3, -0.2, 1.0, 2.0]), 0.25)
    for prepare in (False, True):
        steppers = [stepper_class(m, 0.1) for m in (full, restricted)]
        if prepare:
            steppers = [s.prepare() for s in steppers]
        expected, got = (s.step(s.step(state)) for s in steppers)
        np.testing.assert_allclose(got.u, expected.u, rtol=1e-14, atol=0)
        assert float(got.time) == pytest.approx(0.45, abs=1e-15)
    decay = np.exp(np.array([-30.0, -0.5]) * 0.2)
    if stepper_class in _ETD:  # exactly e^{L dt} per step
        np.testing.assert_allclose(got.u[2:], np.array([1.0, 2.0]) * decay, rtol=1e-15)
    if stepper_class in _ETD:  # prepared on N's modes
        restricted_coefficients = jax.tree.leaves(steppers[1].coefficients.restricted.u)
        assert all(c.shape == (2,) for c in restricted_coefficients)
    else:
        assert all(c.shape == (4,) for c in jax.tree.leaves(steppers[1].coefficients.u))


def _phi(z):
    """``phi_1, phi_2, phi_3`` at ``z`` by their closed forms (NumPy, float64; exact away
    from 0)."""
    e = np.exp(z)
    return (e - 1) / z, (e - 1 - z) / z**2, (e - 1 - z - z**2 / 2) / z**3


@pytest.mark.parametrize("stepper_class", [hybrax.ETDRK1, hybrax.ETDRK2, hybrax.ETDRK3])
def test_low_order_etd_steps_are_cox_matthews(stepper_class):
    """ETDRK1 (ETD1), ETDRK2 (ETD2RK) and ETDRK3 (ETD3RK) equal Cox & Matthews' (2002)
    formulas written out in NumPy from the phi functions, with a time-dependent N."""
    model, h, t0 = Coupled(), 0.1, 0.25
    u = np.array([0.3, -0.2, 1.0, 2.0])
    z = np.array([-1.0, -2.0, -30.0, -0.5]) * h
    phi1, phi2, phi3 = _phi(z)
    e = np.exp(z)

    def n(v, t):
        return np.asarray(model.nonlinear(ODEState(jnp.asarray(v), t), t).u)

    nu = n(u, t0)
    if stepper_class is hybrax.ETDRK1:
        expected = e * u + h * phi1 * nu
    elif stepper_class is hybrax.ETDRK2:
        a = e * u + h * phi1 * nu
        expected = a + h * phi2 * (n(a, t0 + h) - nu)
    else:
        phi1_half = _phi(z / 2)[0]
        a = np.exp(z / 2) * u + h / 2 * phi1_half * nu
        na = n(a, t0 + h / 2)
        b = e * u + h * phi1 * (2 * na - nu)
        nb = n(b, t0 + h)
        f1, f2, f3 = phi1 - 3 * phi2 + 4 * phi3, phi2 - 2 * phi3, 4 * phi3 - phi2
        expected = e * u + h * (f1 * nu + 4 * f2 * na + f3 * nb)
    state = ODEState(jnp.asarray(u), t0)
    for stepper in (stepper_class(model, h), stepper_class(model, h).prepare()):
        got = stepper.step(state)
        np.testing.assert_allclose(got.u, expected, rtol=1e-12)
        assert float(got.time) == pytest.approx(t0 + h, abs=1e-15)


@pytest.mark.parametrize("complex_linear", [False, True])
def test_etd_functions_series_contour_and_float32_agree(complex_linear):
    """Every ETD function (`ETD_FUNCTIONS`) by series/closed forms equals the
    Kassam-Trefethen contour integral, and float32 stays within 1e-5 of float64, from
    |z| = 1e-8 (where the closed forms cancel) to 1e4 (where sums of phi functions would)."""
    from hybrax.core._etd_functions import ETD_FUNCTIONS, etd_values

    magnitude = jnp.logspace(-8, 4, 300)
    z = -magnitude
    if complex_linear:
        z = jax.lax.complex(z, magnitude * jnp.cos(jnp.arange(300.0)))
    series = etd_values(z, 0.5, ETD_FUNCTIONS)
    contour = etd_values(z, 0.5, ETD_FUNCTIONS, num_contour_points=64)
    single = etd_values(
        z.astype(jnp.complex64 if complex_linear else jnp.float32), 0.5, ETD_FUNCTIONS
    )
    for name in ETD_FUNCTIONS:
        np.testing.assert_allclose(series[name], contour[name], rtol=1e-10, err_msg=name)
        np.testing.assert_allclose(
            np.asarray(single[name]).astype(series[name].dtype),
            series[name],
            rtol=1e-5,
            atol=1e-30,
            err_msg=name,
        )
    zero = etd_values(jnp.zeros(2), 0.5, ("phi1", "phi2"))
    np.testing.assert_allclose(zero["phi1"], 0.5, rtol=1e-14)  # h phi_1(0) = h
    np.testing.assert_allclose(zero["phi2"], 0.25, rtol=1e-14)  # h phi_2(0) = h / 2
    with pytest.raises(hybrax.ConfigurationError, match="unknown ETD functions"):
        etd_values(z, 0.5, ("phi3",))
