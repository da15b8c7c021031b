"""The stepper contract, for every public stepper: a declared order of accuracy, and
jax.jit with jax.vmap over an ensemble, and jax.grad (against a central finite difference
in float64), in float32 and float64.

Small problems and short rollouts: Lorenz-96 (8 variables) for the explicit steppers,
Burgers on 16 points for the semilinear ones (ETDRK1-4, CrankNicolsonRK4).
"""

from collections.abc import Callable
from dataclasses import dataclass

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax import AB3State, AdamsBashforth3, Filtered
from hybrax.climate import Lorenz96
from hybrax.fluids import Burgers

NUM_STEPS = 6


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable  # (parameter) -> stepper; the parameter's dtype sets the model's
    initial: Callable  # (dtype, index) -> model state
    parameter: float  # value of the physical parameter differentiated
    field: Callable  # model state -> real array compared between runs


def _lorenz_initial(dtype, index):
    return Lorenz96(8).initial_state(jax.random.key(index), dtype=dtype)


def _explicit(name, make):
    return Case(
        name,
        lambda forcing: make(Lorenz96(8, forcing=forcing)),
        _lorenz_initial,
        8.0,
        lambda state: state.u,
    )


_BURGERS = Burgers(16)


def _burgers_initial(dtype, index):
    (x,) = _BURGERS.grid.coordinates()
    x = x.astype(dtype)
    return _BURGERS.state_from_field(jnp.sin(x) + (0.2 + 0.1 * index) * jnp.cos(2 * x))


def _semilinear(name, make):
    return Case(
        name,
        lambda viscosity: make(Burgers(16, viscosity=viscosity)),
        _burgers_initial,
        0.1,
        lambda state: _BURGERS.field(state),
    )


def _damp(state):
    """A smooth filter for `Filtered` (multiplies the state by 0.99)."""
    return hybrax.ODEState(state.u * jnp.asarray(0.99, state.u.dtype), state.time)


CASES = [
    _explicit("Euler", lambda m: hybrax.Euler(m, 0.005)),
    _explicit("Heun", lambda m: hybrax.Heun(m, 0.01)),
    _explicit("SSPRK3", lambda m: hybrax.SSPRK3(m, 0.01)),
    _explicit("RK4", lambda m: hybrax.RK4(m, 0.01)),
    _explicit("DiffraxStepper", lambda m: hybrax.DiffraxStepper(m, 0.01, diffrax.Tsit5())),
    _explicit("AdamsBashforth3", lambda m: AdamsBashforth3(m, 0.01)),
    _explicit("Filtered", lambda m: Filtered(hybrax.RK4(m, 0.01), _damp)),
    _explicit("FilteredAdamsBashforth3", lambda m: Filtered(AdamsBashforth3(m, 0.01), _damp)),
    _semilinear("ETDRK1", lambda m: hybrax.ETDRK1(m, 0.05)),
    _semilinear("ETDRK2", lambda m: hybrax.ETDRK2(m, 0.05)),
    _semilinear("ETDRK3", lambda m: hybrax.ETDRK3(m, 0.05)),
    _semilinear("ETDRK4", lambda m: hybrax.ETDRK4(m, 0.05)),
    _semilinear("CrankNicolsonRK4", lambda m: hybrax.CrankNicolsonRK4(m, 0.05)),
]
DECLARED_ORDER = {
    "Euler": 1,
    "Heun": 2,
    "SSPRK3": 3,
    "RK4": 4,
    "DiffraxStepper": 5,  # Tsit5
    "AdamsBashforth3": 3,
    "Filtered": None,  # the filter is not a consistent approximation: undeclared
    "FilteredAdamsBashforth3": None,
    "ETDRK1": 1,
    "ETDRK2": 2,
    "ETDRK3": 3,
    "ETDRK4": 4,
    "CrankNicolsonRK4": 2,
}
_ids = [case.name for case in CASES]


def _stepper(case, dtype, parameter=None):
    value = case.parameter if parameter is None else parameter
    return case.build(jnp.asarray(value, dtype))


def _final_field(case, stepper, state):
    """Run from the model state (rollout calls ``init``) and compare model states."""
    final, _ = hybrax.rollout(stepper, state, NUM_STEPS, save_every=None)
    return case.field(stepper.state_of(final))


def _rtol(dtype):
    return 1e-5 if dtype == jnp.float32 else 1e-12


def test_every_public_core_stepper_is_covered():
    public = {
        name
        for name in hybrax.core.__all__
        if isinstance(getattr(hybrax.core, name), type)
        and issubclass(getattr(hybrax.core, name), hybrax.AbstractStepper)
        and not name.startswith("Abstract")
    }
    assert public <= set(_ids), public - set(_ids)


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_order_is_declared(case):
    stepper = _stepper(case, jnp.float64)
    assert stepper.order == DECLARED_ORDER[case.name]
    assert stepper.order is None or isinstance(stepper.order, int)
    if case.name != "DiffraxStepper":  # the one whose order depends on the instance
        assert type(stepper).order == stepper.order


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_jit_and_vmap_over_an_ensemble_match_eager(case, dtype):
    """``jax.jit(jax.vmap(rollout))`` over three initial states equals each member run
    alone (one compiled program for both transforms keeps the test quick)."""
    stepper = _stepper(case, dtype)
    members = [case.initial(dtype, i) for i in range(3)]
    ensemble = jax.tree.map(lambda *xs: jnp.stack(xs), *members)
    batched = eqx.filter_jit(jax.vmap(lambda x: _final_field(case, stepper, x)))(ensemble)
    assert batched.shape[0] == 3 and batched.dtype == dtype
    assert bool(jnp.all(jnp.isfinite(batched)))
    for i, member in enumerate(members):
        eager = _final_field(case, stepper, member)
        assert eager.dtype == dtype
        np.testing.assert_allclose(batched[i], eager, rtol=_rtol(dtype), atol=_rtol(dtype))


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_grad_matches_central_difference(case, dtype):
    def loss(parameter, run_dtype):
        stepper = case.build(parameter)
        return jnp.sum(_final_field(case, stepper, case.initial(run_dtype, 0)) ** 2)

    # one compiled program: an eager grad of the jitted rollout compiles forward and backward
    grad = jax.jit(jax.grad(loss), static_argnums=1)(jnp.asarray(case.parameter, dtype), dtype)
    assert grad.dtype == dtype and bool(jnp.isfinite(grad)) and grad != 0
    eps = 1e-6 * case.parameter
    plus = loss(jnp.asarray(case.parameter + eps, jnp.float64), jnp.float64)
    minus = loss(jnp.asarray(case.parameter - eps, jnp.float64), jnp.float64)
    central = (plus - minus) / (2 * eps)
    np.testing.assert_allclose(grad, central, rtol=1e-3 if dtype == jnp.float32 else 1e-6)


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_init_is_idempotent_and_state_of_inverts_it(case):
    """``init(init(x)) == init(x)``, ``state_of(init(x)) == x`` and ``with_state`` replaces
    the model state: what lets every caller call ``init`` and observe model states."""
    stepper = _stepper(case, jnp.float64)
    state = case.initial(jnp.float64, 0)
    carry = stepper.init(state)
    again = stepper.init(carry)
    assert jax.tree.structure(again) == jax.tree.structure(carry)
    for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(carry), strict=True):
        np.testing.assert_array_equal(a, b)
    assert jax.tree.structure(stepper.state_of(carry)) == jax.tree.structure(state)
    np.testing.assert_array_equal(case.field(stepper.state_of(carry)), case.field(state))
    stepped = stepper.step(carry)
    replaced = stepper.with_state(stepped, state)
    assert jax.tree.structure(replaced) == jax.tree.structure(stepped)
    np.testing.assert_array_equal(case.field(stepper.state_of(replaced)), case.field(state))


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_rollout_saves_model_states_and_returns_a_carry_to_continue(case):
    """The trajectory holds model states (not AB3State histories), and continuing from the
    returned carry equals one run of twice the length (the history is kept)."""
    stepper = _stepper(case, jnp.float64)
    state = case.initial(jnp.float64, 0)
    half, first = hybrax.rollout(stepper, state, NUM_STEPS)
    assert jax.tree.structure(jax.tree.map(lambda x: x[0], first)) == jax.tree.structure(state)
    assert not isinstance(first, AB3State)
    final, second = hybrax.rollout(stepper, half, NUM_STEPS)
    whole, trajectory = hybrax.rollout(stepper, state, 2 * NUM_STEPS)
    np.testing.assert_allclose(
        case.field(stepper.state_of(final)), case.field(stepper.state_of(whole)), rtol=1e-12
    )
    np.testing.assert_allclose(
        jax.vmap(case.field)(second),
        jax.vmap(case.field)(jax.tree.map(lambda x: x[NUM_STEPS:], trajectory)),
        rtol=1e-12,
    )
