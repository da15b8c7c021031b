"""Viscous Burgers: Cole–Hopf analytic solution, conservation, gradients, transforms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax import check_time_step
from hybrax.errors import ConfigurationError
from hybrax.fluids import Burgers
from hybrax.grids import Grid

NU = 0.1


def cole_hopf(x, t):
    """u = -2 nu phi_x / phi with phi a solution of the heat equation phi_t = nu phi_xx
    (positive, so u is smooth; its steepest front is about 0.3 wide initially)."""
    e1, e2 = jnp.exp(-NU * t), jnp.exp(-4 * NU * t)
    phi = 1.05 + e1 * jnp.cos(x) + 0.2 * e2 * jnp.cos(2 * x + 0.5)
    phi_x = -e1 * jnp.sin(x) - 0.4 * e2 * jnp.sin(2 * x + 0.5)
    return -2 * NU * phi_x / phi


@pytest.mark.parametrize(
    "stepper_cls, tolerance",
    [(hybrax.ETDRK4, 1e-10), (hybrax.CrankNicolsonRK4, 1e-6)],  # 4th / 2nd order at dt 0.01
)
def test_matches_cole_hopf_solution(stepper_cls, tolerance):
    model = Burgers(128, viscosity=NU)
    (x,) = model.grid.coordinates(jnp.float64)
    state = model.state_from_field(cole_hopf(x, 0.0))
    final, _ = hybrax.rollout(stepper_cls(model, 0.01), state, 200, save_every=None)
    exact = cole_hopf(x, 2.0)
    error = jnp.max(jnp.abs(model.field(final) - exact)) / jnp.max(jnp.abs(exact))
    assert error < tolerance, error
    # the mean of u is conserved
    np.testing.assert_allclose(final.field_hat[0].real, state.field_hat[0].real, atol=1e-15)


def test_gradient_and_transforms(finite_difference):
    (x,) = Grid((64,)).coordinates(jnp.float64)
    u0 = cole_hopf(x, 0.0)

    @jax.jit
    def loss(viscosity, u):
        model = Burgers(64, viscosity=viscosity)
        final, _ = hybrax.rollout(
            hybrax.ETDRK4(model, 0.05), model.state_from_field(u), 20, save_every=None
        )
        return jnp.sum(model.field(final) ** 2)

    g = jax.grad(loss)(jnp.asarray(NU), u0)
    np.testing.assert_allclose(
        g, finite_difference(lambda v: loss(v, u0), jnp.asarray(NU)), rtol=1e-7
    )
    g_u = jax.grad(loss, argnums=1)(jnp.asarray(NU), u0)
    direction = jnp.sin(3 * x)
    fd = finite_difference(lambda u: loss(jnp.asarray(NU), u), u0, direction)
    np.testing.assert_allclose(jnp.sum(g_u * direction), fd, rtol=1e-7)
    batch = jnp.stack([u0, 0.5 * u0]).astype(jnp.float32)
    losses = jax.vmap(loss, in_axes=(None, 0))(jnp.asarray(NU, jnp.float32), batch)
    assert losses.dtype == jnp.float32 and losses[0] > losses[1]


def test_bad_input():
    with pytest.raises(ConfigurationError, match="1D grid"):
        Burgers(Grid((16, 16)))
    with pytest.raises(ConfigurationError, match="even ints"):
        Burgers(33)
    model = Burgers(64)
    with pytest.raises(ConfigurationError, match=r"grid's shape \(64,\)"):
        model.state_from_field(jnp.zeros(32))
    with pytest.raises(ConfigurationError, match="real floating"):
        model.state_from_field(jnp.zeros(64, jnp.int32))
    with pytest.raises(ConfigurationError, match=r"spectral shape \(33,\)"):
        hybrax.ETDRK4(model, 0.1).step(Burgers(32).state_from_field(jnp.zeros(32)))
    (x,) = model.grid.coordinates()
    state = model.state_from_field(10 * jnp.sin(x))  # speed 10, dx ~ 0.1
    with pytest.raises(ConfigurationError, match="Courant number"):
        check_time_step(hybrax.ETDRK4(model, 0.05), state)
