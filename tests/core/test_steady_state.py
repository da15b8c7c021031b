"""hybrax.steady_state: Newton on tendency(state) = 0 with implicit-function gradients."""

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

import hybrax
from hybrax.core import parameter


class Relaxation(hybrax.AbstractDynamics):
    """dy/dt = -k (y - target) - c y^3: steady state y* = target when c = 0."""

    rate: jax.Array = parameter("rate", positive=True)
    target: jax.Array = parameter("target")
    cubic: jax.Array = parameter("cubic", nonnegative=True)

    def tendency(self, state, t):
        y = state.u
        rate, target, cubic = (p.astype(y.dtype) for p in (self.rate, self.target, self.cubic))
        return hybrax.ODEState(-rate * (y - target) - cubic * y**3, state.time)


class NoRoot(hybrax.AbstractDynamics):
    """dy/dt = 1 + y^2 > 0: no steady state."""

    def tendency(self, state, t):
        return hybrax.ODEState(1 + state.u**2, state.time)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_linear_relaxation_reaches_the_analytic_steady_state(dtype):
    target = jnp.asarray([1.0, -2.0, 0.5], dtype)
    model = Relaxation(jnp.asarray(3.0, dtype), target, jnp.asarray(0.0, dtype))
    guess = hybrax.ODEState(jnp.zeros(3, dtype), jnp.asarray(7.0, dtype))
    state = hybrax.steady_state(model, guess)
    tol = 1e-12 if dtype == jnp.float64 else 1e-5
    assert jnp.max(jnp.abs(state.u - target)) < tol
    assert state.u.dtype == dtype
    assert float(state.time) == 7.0  # evaluated at (and stamped with) the guess's time


def test_gradient_matches_central_finite_differences():
    def mean_steady(cubic):
        model = Relaxation(jnp.asarray(2.0), jnp.asarray([1.0, 1.5, -0.5]), jnp.asarray(cubic))
        guess = hybrax.ODEState(jnp.asarray([1.0, 1.0, -0.5]))
        return jnp.sum(hybrax.steady_state(model, guess).u)

    c, h = 0.7, 1e-5
    grad = jax.grad(mean_steady)(jnp.asarray(c))
    fd = (mean_steady(jnp.asarray(c + h)) - mean_steady(jnp.asarray(c - h))) / (2 * h)
    assert float(grad) == pytest.approx(float(fd), rel=1e-7)
    assert abs(float(grad)) > 0.1  # a real sensitivity, not a zero gradient


def test_gradient_of_linear_relaxation_is_analytic():
    def steady(target):
        model = Relaxation(jnp.asarray(3.0), target, jnp.asarray(0.0))
        return hybrax.steady_state(model, hybrax.ODEState(jnp.zeros(2))).u[1]

    grad = jax.grad(steady)(jnp.asarray([1.0, -2.0]))
    assert jnp.allclose(grad, jnp.asarray([0.0, 1.0]), atol=1e-12)


def test_works_under_jit():
    model = Relaxation(jnp.asarray(3.0), jnp.asarray([2.0]), jnp.asarray(0.0))
    state = eqx.filter_jit(hybrax.steady_state)(model, hybrax.ODEState(jnp.zeros(1)))
    assert jnp.allclose(state.u, 2.0, atol=1e-12)


def test_no_steady_state_raises_instability_error():
    with pytest.raises(hybrax.InstabilityError, match="max_steps=20"):
        hybrax.steady_state(NoRoot(), hybrax.ODEState(jnp.full(2, 0.3)), max_steps=20)


def test_singular_newton_step_raises_non_finite_state_error():
    # d/dy (1 + y^2) = 0 at y = 0: the first Newton step divides by zero
    with pytest.raises(hybrax.NonFiniteStateError, match="NoRoot"):
        hybrax.steady_state(NoRoot(), hybrax.ODEState(jnp.zeros(2)), max_steps=20)


def test_no_steady_state_under_jit_raises_at_run_time():
    solve = eqx.filter_jit(lambda m, s: hybrax.steady_state(m, s, max_steps=20))
    with pytest.raises(eqx.EquinoxRuntimeError, match="InstabilityError"):
        jax.block_until_ready(solve(NoRoot(), hybrax.ODEState(jnp.full(2, 0.3))))


def test_bad_arguments_are_configuration_errors(wrong_type):
    model = Relaxation(jnp.asarray(3.0), jnp.asarray([2.0]), jnp.asarray(0.0))
    guess = hybrax.ODEState(jnp.zeros(1))
    with pytest.raises(hybrax.ConfigurationError, match="max_steps"):
        hybrax.steady_state(model, guess, max_steps=0)
    with wrong_type("solver", hybrax.ConfigurationError, "solver"):
        hybrax.steady_state(model, guess, solver="newton")
    with pytest.raises(hybrax.ConfigurationError, match="rtol"):
        hybrax.steady_state(model, guess, rtol=-1.0)
