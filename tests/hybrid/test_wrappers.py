"""Corrected, Closure, SemilinearClosure, Emulator: semantics, transforms, errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.climate import Lorenz96, TwoScaleLorenz96
from hybrax.core import ODEState
from hybrax.hybrid import Closure, Corrected, Emulator, SemilinearClosure


class Affine(eqx.Module):
    """``a * x + b``: a tiny network with two parameters."""

    a: jax.Array
    b: jax.Array

    def __call__(self, x):
        return self.a.astype(x.dtype) * x + self.b.astype(x.dtype)


def affine(a=0.0, b=0.0, dtype=jnp.float64):
    return Affine(jnp.asarray(a, dtype), jnp.asarray(b, dtype))


@pytest.fixture(scope="module")
def l96():
    return Lorenz96(num_variables=8, forcing=20.0)


@pytest.fixture(scope="module")
def state(l96):
    final, _ = hybrax.rollout(hybrax.RK4(l96, 0.01), l96.initial_state(dtype=jnp.float64), 200)
    return final


def test_zero_network_leaves_the_solver_unchanged(l96, state):
    solver = hybrax.RK4(l96, 0.01)
    corrected = Corrected(solver, affine())
    closure = hybrax.RK4(Closure(l96, affine()), 0.01)
    reference, _ = hybrax.rollout(solver, state, 20)
    for stepper in (corrected, closure):
        final, _ = hybrax.rollout(stepper, state, 20)
        np.testing.assert_allclose(final.u, reference.u, rtol=1e-13)
        np.testing.assert_allclose(final.time, reference.time, rtol=1e-13)
    assert corrected.dt == 0.01


def test_corrected_adds_the_correction_after_the_step(l96, state):
    solver = hybrax.RK4(l96, 0.01)
    net = affine(0.1, 0.5)
    stepped = solver.step(state)
    out = Corrected(solver, net).step(state)
    np.testing.assert_allclose(out.u, stepped.u + 0.1 * stepped.u + 0.5, rtol=1e-14)
    assert out.time == stepped.time


def test_closure_adds_the_term_to_the_tendency(l96, state):
    net = affine(-0.5, 2.0)
    tendency = Closure(l96, net).tendency(state, state.time)
    physics = l96.tendency(state, state.time)
    np.testing.assert_allclose(tendency.u, physics.u - 0.5 * state.u + 2.0, rtol=1e-14)


def test_closure_with_constant_term_equals_extra_forcing(state):
    """F=18 plus a closure term of +2 is exactly F=20."""
    stepper = hybrax.RK4(Closure(Lorenz96(8, 18.0), affine(0.0, 2.0)), 0.01)
    reference, _ = hybrax.rollout(hybrax.RK4(Lorenz96(8, 20.0), 0.01), state, 50)
    final, _ = hybrax.rollout(stepper, state, 50)
    np.testing.assert_allclose(final.u, reference.u, rtol=1e-10)


def test_emulator_replaces_the_field_and_advances_time(state):
    emulator = Emulator(affine(0.5, 1.0), dt=0.05)
    final, traj = hybrax.rollout(emulator, state, 3)
    expected = state.u
    for _ in range(3):
        expected = 0.5 * expected + 1.0
    np.testing.assert_allclose(final.u, expected, rtol=1e-14)
    np.testing.assert_allclose(traj.time, state.time + 0.05 * jnp.arange(1.0, 4.0), rtol=1e-12)


def test_emulator_on_a_bare_array():
    emulator = Emulator(affine(2.0), dt=0.1)
    final, _ = hybrax.rollout(emulator, jnp.ones(4), 3)
    np.testing.assert_allclose(final, 8 * jnp.ones(4))


def test_custom_maps_on_a_two_field_state():
    """The two-scale state has two fields: the maps say the network corrects x only."""
    model = TwoScaleLorenz96()
    state = model.initial_state(jax.random.key(0), dtype=jnp.float64)
    solver = hybrax.RK4(model, 0.005)
    corrected = Corrected(
        solver,
        affine(0.0, 1.0),
        to_input=lambda s: s.x,
        from_output=lambda s, out: eqx.tree_at(lambda s: s.x, s, s.x + out),
    )
    out, stepped = corrected.step(state), solver.step(state)
    np.testing.assert_allclose(out.x, stepped.x + 1.0, rtol=1e-14)
    np.testing.assert_array_equal(out.y, stepped.y)


def test_semilinear_closure_with_etdrk4():
    class Decay(hybrax.AbstractSemilinearDynamics):
        def linear_operator(self):
            return ODEState(-jnp.ones(4, jnp.float64), 0.0)

        def nonlinear(self, state, t):
            return ODEState(jnp.zeros_like(state.u), state.time)

    # du/dt = -u + 1 has the exact solution u = 1 + (u0 - 1) e^{-t}, which ETDRK4 reproduces
    stepper = hybrax.ETDRK4(SemilinearClosure(Decay(), affine(0.0, 1.0)), dt=0.1)
    assert stepper.prepare().coefficients is not None
    wrapped = Corrected(stepper, affine())
    assert wrapped.prepare().stepper.coefficients is not None  # prepare is forwarded
    final, _ = hybrax.rollout(wrapped, ODEState(jnp.zeros(4, jnp.float64)), 10)
    np.testing.assert_allclose(final.u, 1 - np.exp(-1.0), rtol=1e-10)
    with pytest.raises(ValueError, match=r"use hybrax\.hybrid\.Closure instead"):
        SemilinearClosure(Closure(Lorenz96(8), affine()), affine())


@pytest.mark.parametrize("kind", ["corrected", "closure", "emulator"])
def test_jit_vmap_grad_through_rollout(kind, l96, state):
    def build(net):
        if kind == "corrected":
            return Corrected(hybrax.RK4(l96, 0.01), net)
        if kind == "closure":
            return hybrax.RK4(Closure(l96, net), 0.01)
        return Emulator(
            net, 0.01, from_output=lambda s, out: eqx.tree_at(lambda s: s.u, s, s.u + out)
        )

    net = affine(0.01, 0.1)
    states = jax.tree.map(lambda x: jnp.stack([x, 1.01 * x]), state)

    def loss(net):
        run = lambda s: hybrax.rollout(build(net), s, 10, checkpoint="sqrt")[0].u  # noqa: E731
        return jnp.mean(jax.vmap(run)(states) ** 2)

    value, grads = eqx.filter_jit(eqx.filter_value_and_grad(loss))(net)
    np.testing.assert_allclose(value, loss(net), rtol=1e-12)
    eps = 1e-6
    fd = (loss(affine(0.01, 0.1 + eps)) - loss(affine(0.01, 0.1 - eps))) / (2 * eps)
    np.testing.assert_allclose(grads.b, fd, rtol=1e-5)


def test_errors_say_what_is_wrong(l96, state):
    solver = hybrax.RK4(l96, 0.01)
    wide = hybrax.nn.MLP(8, 9, 4, 1, key=jax.random.key(0, impl="rbg"))
    with pytest.raises(
        ValueError, match=r"network returned shape \(9,\) but the state field `u` has shape \(8,\)"
    ):
        Corrected(solver, wide).step(state)
    with pytest.raises(ValueError, match=r"returned shape \(9,\) but the tendency field `u`"):
        Closure(l96, wide).tendency(state, 0.0)
    f32 = hybrax.nn.MLP(8, 8, 4, 1, key=jax.random.key(0, impl="rbg"), dtype=jnp.float32)
    with pytest.raises(
        ValueError, match="parameters are float32 but the state field `u` is float64"
    ):
        Corrected(solver, f32).step(state)
    two = TwoScaleLorenz96().initial_state(dtype=jnp.float64)
    with pytest.raises(ValueError, match=r"TwoScaleState has 2 \(x, y\); pass to_input="):
        Corrected(hybrax.RK4(TwoScaleLorenz96(), 0.005), affine()).step(two)
    with pytest.raises(ValueError, match="from_output must return a record like state"):
        Corrected(solver, affine(), from_output=lambda s, out: out).step(state)
    with pytest.raises(ValueError, match=r"from_output returned `u` with shape \(4,\)"):
        Corrected(solver, affine(), from_output=lambda s, out: ODEState(out[:4], s.time)).step(
            state
        )
    complex_state = ODEState(jnp.ones(8, jnp.complex128), 0.0)
    with pytest.raises(ValueError, match="is complex"):
        Emulator(affine(), 0.1).step(complex_state)
    with pytest.raises(hybrax.ConfigurationError, match="Emulator: dt must be positive"):
        Emulator(affine(), -0.1)


class TupleNet(eqx.Module):
    def __call__(self, x):
        return x, x


@pytest.mark.parametrize("wrapper", ["Corrected", "Closure", "Emulator"])
def test_a_network_returning_a_tuple_is_named(wrapper, l96, state, wrong_type):
    """Probe row 62: a tuple output used to give a TracerArrayConversionError."""
    hybrid = {
        "Corrected": lambda: Corrected(hybrax.RK4(l96, 0.01), TupleNet()),
        "Closure": lambda: hybrax.RK4(Closure(l96, TupleNet()), 0.01),
        "Emulator": lambda: Emulator(TupleNet(), 0.01),
    }[wrapper]()
    # under jaxtyping's checks the tuple fails the annotation of the output map's ``output``
    match = f"{wrapper}: the network returned a tuple, not one array"
    with wrong_type("output", hybrax.ConfigurationError, match):
        eqx.filter_jit(hybrid.step)(state)


def test_constructors_reject_bad_parts(l96, wrong_type):
    """Probe row 62 (Closure(net=None)) and the class: every constructor argument."""
    error = hybrax.ConfigurationError
    solver = hybrax.RK4(l96, 0.01)
    for build in (
        lambda net: Closure(l96, net),
        lambda net: Corrected(solver, net),
        lambda net: Emulator(net, 0.01),
        lambda net: SemilinearClosure(hybrax.fluids.Burgers(16), net),
    ):
        with pytest.raises(error, match=r"net must be a callable network .*, got None"):
            build(None)
        with pytest.raises(error, match="net must be a network instance, got the class MLP"):
            build(hybrax.nn.MLP)
        with pytest.raises(error, match="net must be a callable network"):
            build(3.0)
    with wrong_type("stepper", error, r"Corrected: stepper must be a hybrax\.AbstractStepper.*RK4"):
        Corrected(l96, affine())
    with wrong_type("dynamics", error, r"Closure: dynamics must be a hybrax\.AbstractDynamics"):
        Closure(solver, affine())
    with wrong_type("to_input", error, "to_input must be None or a function"):
        Corrected(solver, affine(), to_input="u")
    with wrong_type("from_output", error, "from_output must be None or a function"):
        Closure(l96, affine(), from_output=1)
    for dt in (float("nan"), float("inf"), 0.0, 1 + 1j):
        with pytest.raises(error, match="dt"):
            Emulator(affine(), dt)
    for dt in ("0.1", None):
        with wrong_type("dt", error, "dt"):
            Emulator(affine(), dt)
