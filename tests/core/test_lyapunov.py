"""Lyapunov spectra against systems whose exponents are known exactly."""

import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax import ODEState


class LinearDiagonal(hybrax.AbstractDynamics):
    rates: jnp.ndarray

    def tendency(self, state, t):
        return ODEState(self.rates.astype(state.u.dtype) * state.u, state.time)


def test_linear_system_exponents_are_its_rates():
    rates = jnp.array([0.3, -0.1, -1.2, 0.05])
    stepper = hybrax.RK4(LinearDiagonal(rates), 0.01)
    exponents = hybrax.lyapunov_spectrum(
        stepper, ODEState(jnp.ones(4)), 20_000, k=4, reorthonormalize_every=10, discard_steps=10_000
    )
    # After 100 time units of alignment the tangent basis is the eigenbasis to ~e^-15, and
    # RK4's growth factor differs from exp(a dt) by O(dt^5).
    np.testing.assert_allclose(exponents, jnp.sort(rates)[::-1], atol=1e-6)


def test_lorenz63_spectrum_sums_to_the_divergence():
    """Phase-space volume contracts at -(sigma + 1 + beta): the exponents must sum to it."""
    model = hybrax.climate.Lorenz63()
    stepper = hybrax.RK4(model, 0.01)
    start = model.initial_state(dtype=jnp.float64)
    state, _ = hybrax.rollout(stepper, start, 2000, save_every=None)
    exponents = hybrax.lyapunov_spectrum(stepper, state, 20_000, k=3, discard_steps=1000)
    np.testing.assert_allclose(jnp.sum(exponents), -(10 + 1 + 8 / 3), rtol=1e-3)
    assert abs(float(exponents[1])) < 0.02  # the flow direction: zero exponent


def test_arguments_are_checked():
    stepper = hybrax.RK4(LinearDiagonal(jnp.ones(2)), 0.1)
    state = ODEState(jnp.ones(2))
    with pytest.raises(hybrax.ConfigurationError, match="exceeds the state's dimension 2"):
        hybrax.lyapunov_spectrum(stepper, state, 10, k=3)
    with pytest.raises(hybrax.ConfigurationError, match="multiples of reorthonormalize_every"):
        hybrax.lyapunov_spectrum(stepper, state, 10, k=1, reorthonormalize_every=3)
    with pytest.raises(hybrax.ConfigurationError, match="discard_steps must be in"):
        hybrax.lyapunov_spectrum(stepper, state, 10, k=1, discard_steps=10)


class ComplexRotation(hybrax.AbstractDynamics):
    """du/dt = (a + i w) u for a complex u, alongside a real decaying v: exponents a, a
    (the complex entry's real 2-plane) and -b."""

    a: float = 0.2
    omega: float = 3.0
    b: float = 0.7

    def tendency(self, state, t):
        u, v = state
        return (complex(self.a, self.omega) * u, -self.b * v)


def test_complex_and_real_leaves_mix():
    """Complex leaves are perturbed as real pairs: a rotating complex mode has two equal
    exponents, not one (and strict promotion accepts the mixed state)."""
    stepper = hybrax.RK4(ComplexRotation(), 0.01)
    state = (jnp.ones(1, jnp.complex128), jnp.ones(1, jnp.float64))
    exponents = hybrax.lyapunov_spectrum(
        stepper, state, 10_000, k=3, reorthonormalize_every=10, discard_steps=2_000
    )
    np.testing.assert_allclose(exponents, [0.2, 0.2, -0.7], atol=1e-6)
