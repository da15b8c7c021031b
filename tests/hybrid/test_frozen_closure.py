"""FrozenClosure: the closure's learned term once per step, held over the stages."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.climate import Lorenz96
from hybrax.core import ODEState
from hybrax.hybrid import Closure, Corrected, FrozenClosure, SemilinearClosure


class Linear(eqx.Module):
    """``a * x + b``, counting its calls (at trace time) in a Python list."""

    a: jax.Array
    b: jax.Array
    calls: list = eqx.field(static=True)

    def __call__(self, x):
        self.calls.append(1)
        return self.a * x + self.b


def linear(a=0.0, b=0.0):
    return Linear(jnp.asarray(a, jnp.float64), jnp.asarray(b, jnp.float64), [])


class Decay(hybrax.AbstractSemilinearDynamics):
    """``du/dt = -u``: ``L = -1``, ``N = 0``."""

    def linear_operator(self):
        return ODEState(-jnp.ones(4, jnp.float64), 0.0)

    def nonlinear(self, state, t):
        return ODEState(jnp.zeros_like(state.u), state.time)


class Still(hybrax.AbstractDynamics):
    """``du/dt = 0``: the closure term is the whole tendency."""

    def tendency(self, state, t):
        return ODEState(jnp.zeros_like(state.u), state.time)


def test_one_network_call_per_step_where_the_closure_makes_four():
    net = linear(0.5, 1.0)
    u0 = ODEState(jnp.arange(4.0, dtype=jnp.float64), 0.0)
    per_stage = hybrax.RK4(Closure(Still(), net), 0.1)
    per_stage.step(u0)
    assert len(net.calls) == 4
    net.calls.clear()
    FrozenClosure(per_stage).step(u0)
    assert len(net.calls) == 1


def test_held_term_integrates_a_constant_forcing_exactly():
    # du/dt = -u + c with c = net(u_n) held over the step: u_n+1 = e^-h u_n + (1 - e^-h) c,
    # which ETDRK4 reproduces exactly; here c = 0.5 u_n + 1
    h, u = 0.3, jnp.asarray([0.0, 1.0, -2.0, 3.0], jnp.float64)
    stepper = FrozenClosure(hybrax.ETDRK4(SemilinearClosure(Decay(), linear(0.5, 1.0)), h))
    out = stepper.step(ODEState(u, 0.0))
    expected = np.exp(-h) * u + (1 - np.exp(-h)) * (0.5 * u + 1.0)
    np.testing.assert_allclose(out.u, expected, rtol=1e-13)
    assert float(out.time) == pytest.approx(h)
    assert stepper.dt == 0.3
    assert stepper.prepare().stepper.coefficients is not None  # prepare is forwarded
    # a constant network: holding it changes nothing, frozen and per-stage agree
    constant = hybrax.ETDRK4(SemilinearClosure(Decay(), linear(0.0, 1.0)), h)
    np.testing.assert_allclose(
        FrozenClosure(constant).step(ODEState(u, 0.0)).u,
        constant.step(ODEState(u, 0.0)).u,
        rtol=1e-14,
    )


def test_held_term_is_first_order_in_time_with_rk4():
    # du/dt = a u with a = net slope: RK4 of the frozen term is one Euler step u (1 + a h)
    h, u = 0.2, jnp.asarray([1.0, -1.0, 2.0, 0.5], jnp.float64)
    stepper = hybrax.RK4(Closure(Still(), linear(-1.5, 0.0)), h)
    np.testing.assert_allclose(FrozenClosure(stepper).step(ODEState(u, 0.0)).u, u * (1 - 1.5 * h))
    z = -1.5 * h
    rk4 = 1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24
    np.testing.assert_allclose(stepper.step(ODEState(u, 0.0)).u, u * rk4, rtol=1e-14)


def test_gradient_through_rollout_matches_finite_differences(finite_difference):
    model = Lorenz96(num_variables=8, forcing=8.0)
    u0, _ = hybrax.rollout(hybrax.RK4(model, 0.01), model.initial_state(dtype=jnp.float64), 50)
    net = hybrax.nn.MLP(8, 8, 8, 1, key=jax.random.key(0), dtype=jnp.float64)
    params, static = eqx.partition(net, eqx.is_array)

    def loss(p):
        stepper = FrozenClosure(hybrax.RK4(Closure(model, eqx.combine(p, static)), 0.01))
        final, _ = hybrax.rollout(stepper, u0, 5)
        return jnp.sum(final.u**2)

    direction = jax.tree.map(lambda x: jax.random.normal(jax.random.key(1), x.shape), params)
    grad = jax.jit(jax.grad(loss))(params)
    analytic = sum(
        jnp.vdot(g, d)
        for g, d in zip(jax.tree.leaves(grad), jax.tree.leaves(direction), strict=True)
    )
    numeric = finite_difference(jax.jit(loss), params, direction, eps=1e-4)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6)


def test_stepper_without_a_closure_is_refused():
    with pytest.raises(hybrax.ConfigurationError, match=r"stepper\.dynamics must be a"):
        FrozenClosure(hybrax.RK4(Lorenz96(8), 0.01))
    with pytest.raises(hybrax.ConfigurationError, match=r"stepper\.dynamics must be a"):
        FrozenClosure(Corrected(hybrax.RK4(Lorenz96(8), 0.01), linear()))
