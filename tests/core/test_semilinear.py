"""AbstractSemilinearStepper: the part ETDRK4 and CrankNicolsonRK4 share (per-leaf
coefficients from an integer or float L, prepare)."""

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
