"""AbstractSemilinearStepper: the part ETDRK4 and CrankNicolsonRK4 share (per-leaf
coefficients from an integer or float L, prepare)."""

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
    [(hybrax.ETDRK4, 4, 1e-10), (hybrax.CrankNicolsonRK4, 2, 1e-3)],
)
def test_shared_base_prepare_and_order(stepper_class, order, rtol):
    stepper = stepper_class(Linear(), 0.1)
    assert isinstance(stepper, AbstractSemilinearStepper) and stepper_class.order == order
    prepared = stepper.prepare()
    assert prepared.coefficients is not None and stepper.coefficients is None
    assert prepared.prepare() is prepared and type(prepared) is stepper_class
    state = ODEState(jnp.array([1.0, 2.0]), 0.0)
    np.testing.assert_allclose(prepared.step(state).u, stepper.step(state).u, rtol=1e-12)
    # exact solution of du/dt = L u + 1: u* + (u0 - u*) e^{L t}, u* = -1/L (ETDRK4 is exact
    # for a constant N; Crank-Nicolson is second order, error ~ (L dt)^3 / 12)
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


@pytest.mark.parametrize("stepper_class", [hybrax.ETDRK4, hybrax.CrankNicolsonRK4])
def test_restricted_nonlinear_runs_the_stages_on_its_modes(stepper_class):
    """A model declaring that N lives on some modes gets the full stages' result there to
    round-off, and the other modes advance by the linear part alone (ETDRK4; CN-RK4 keeps
    its stages on every mode)."""
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
    if stepper_class is hybrax.ETDRK4:  # exactly e^{L dt} per step
        np.testing.assert_allclose(got.u[2:], np.array([1.0, 2.0]) * decay, rtol=1e-15)
    if stepper_class is hybrax.ETDRK4:  # prepared on N's modes
        restricted_coefficients = jax.tree.leaves(steppers[1].coefficients.restricted.u)
        assert all(c.shape == (2,) for c in restricted_coefficients)
    else:
        assert all(c.shape == (4,) for c in jax.tree.leaves(steppers[1].coefficients.u))
