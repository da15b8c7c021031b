"""Steppers with their own state (the carry, see `hybrax.AbstractStepper.init`): rollout's
finiteness check, Lyapunov exponents and wrappers treat them like any stepper."""

import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.climate import Lorenz63


def test_lyapunov_spectrum_of_a_multistep_stepper_matches_rk4():
    """The carry's extra (history) directions are damped: AB3's leading exponents are
    Lorenz-63's, like RK4's (lambda_1 about 0.9, lambda_2 about 0, sum about -13.67)."""
    model = Lorenz63()
    state = model.initial_state(dtype=jnp.float64)
    results = []
    for stepper in (hybrax.RK4(model, 0.01), hybrax.AdamsBashforth3(model, 0.005)):
        carry, _ = hybrax.rollout(stepper, state, 500, save_every=None)
        steps = round(40 / float(stepper.dt))
        results.append(hybrax.lyapunov_spectrum(stepper, carry, steps, k=3, discard_steps=500))
    rk4, ab3 = results
    np.testing.assert_allclose(ab3, rk4, atol=0.15)
    assert 0.7 < ab3[0] < 1.1 and abs(ab3[1]) < 0.1
    np.testing.assert_allclose(ab3.sum(), -(10 + 1 + 8 / 3), rtol=0.01)


def test_lyapunov_spectrum_counts_the_model_state_dimension():
    model = Lorenz63()
    with pytest.raises(hybrax.ConfigurationError, match="k=4 exceeds the state's dimension 3"):
        hybrax.lyapunov_spectrum(
            hybrax.AdamsBashforth3(model, 0.005), model.initial_state(), 10, k=4
        )


def test_rollout_checks_the_model_state_of_a_carry():
    model = Lorenz63()
    stepper = hybrax.AdamsBashforth3(model, 0.5)  # far beyond AB3's stability limit
    with pytest.raises(hybrax.NonFiniteStateError, match=r"became non-finite .* at step"):
        hybrax.rollout(stepper, model.initial_state(), 400, save_every=None)


def test_filtered_filters_only_the_model_state_of_a_multistep_carry():
    model = Lorenz63()
    inner = hybrax.AdamsBashforth3(model, 0.005)
    halve = lambda s: hybrax.ODEState(s.u / 2, s.time)  # noqa: E731
    filtered = hybrax.Filtered(inner, halve)
    carry = filtered.init(model.initial_state(dtype=jnp.float64))
    assert filtered.init(carry) is carry
    stepped = inner.step(carry)
    out = filtered.step(carry)
    np.testing.assert_allclose(out.state.u, stepped.state.u / 2)
    np.testing.assert_allclose(out.previous.u, stepped.previous.u)
    assert filtered.state_of(out) is out.state


def test_climate_names_are_the_core_objects():
    assert hybrax.climate.AdamsBashforth3 is hybrax.AdamsBashforth3
    assert hybrax.climate.AB3State is hybrax.core.AB3State
    assert hybrax.climate.Filtered is hybrax.Filtered


def test_check_time_step_reads_the_model_state_inside_a_carry():
    model = hybrax.climate.TwoLayerQG.eddy(num_points=16)
    stepper = hybrax.AdamsBashforth3(model, 3600.0)
    state = model.initial_state()
    carry = stepper.init(state)
    assert hybrax.check_time_step(stepper, carry, 0.23) is carry
    assert float(hybrax.courant_number(stepper, carry)) == float(
        hybrax.courant_number(stepper, state)
    )
    with pytest.raises(hybrax.ConfigurationError, match="Courant number"):
        hybrax.check_time_step(stepper, carry, 0.5 * float(hybrax.courant_number(stepper, state)))
