"""Configuration errors and run-time checks of the contract, rollout and lyapunov_spectrum
(probe rows 7-11, 20-24, 41, 91 of the reliability probe)."""

import warnings

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

import hybrax
from hybrax.climate import Lorenz63, Lorenz96
from hybrax.core import ConfigurationError, ODEState


@pytest.fixture
def model():
    return Lorenz96(8)


@pytest.mark.parametrize(
    "dt, message",
    [
        (float("inf"), "dt must be positive and finite, got inf"),
        (float("nan"), "dt must be positive and finite"),
        (-0.01, "dt must be positive and finite, got -0.01"),
        (0.0, "dt must be positive"),
        ("0.01", "dt must be a number"),
        (None, "dt must be a number"),
        ([0.01, 0.02], "dt must be a single time step, got shape \\(2,\\)"),
        (0.01 + 0j, "dt must be real"),
        (True, "dt must be a number, got the boolean"),
        (jnp.array([1, 2]), "dt must be floating point"),
    ],
)
def test_bad_time_steps_are_rejected(model, dt, message, wrong_type):
    # values that are not ArrayLike fail the steppers' annotation check first under
    # --jaxtyping-packages; time_step's own check names them too
    if isinstance(dt, str) or dt is None:
        with pytest.raises(ConfigurationError, match=message):
            hybrax.core.time_step(dt)
    for cls in (hybrax.RK4, hybrax.ETDRK4, hybrax.CrankNicolsonRK4, hybrax.DiffraxStepper):
        if isinstance(dt, str | list) or dt is None:
            raises = wrong_type("dt", ConfigurationError, message)
        else:
            raises = pytest.raises(ConfigurationError, match=message)
        with raises:
            cls(model, dt)


def test_int_time_step_is_accepted(model):
    final, _ = hybrax.rollout(hybrax.RK4(model, 1), model.initial_state(), 1, save_every=None)
    assert final.u.dtype == model.initial_state().u.dtype


@pytest.mark.parametrize("dt", [-0.01, float("nan"), float("inf")])
def test_traced_bad_time_step_raises_when_run(model, dt):
    run = eqx.filter_jit(
        lambda dt: hybrax.rollout(hybrax.RK4(model, dt), model.initial_state(), 5)[0]
    )
    assert jnp.all(jnp.isfinite(run(jnp.asarray(0.01)).u))
    with pytest.raises(eqx.EquinoxRuntimeError, match="dt must be positive and finite"):
        jax.block_until_ready(run(jnp.asarray(dt)))


def test_traced_bad_time_step_in_lyapunov(model):
    run = eqx.filter_jit(
        lambda dt: hybrax.lyapunov_spectrum(hybrax.RK4(model, dt), model.initial_state(), 4)
    )
    with pytest.raises(eqx.EquinoxRuntimeError, match="dt must be positive"):
        jax.block_until_ready(run(jnp.asarray(-0.01)))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda m: m, "got Lorenz96 \\(a Dynamics\\); wrap the model"),
        (lambda m: hybrax.RK4, "got the class RK4 \\(not an instance\\)"),
        (lambda m: None, "rollout needs a stepper such as hybrax.RK4\\(model, dt=...\\), got None"),
    ],
)
def test_rollout_needs_a_stepper(model, make, message, wrong_type):
    with wrong_type("stepper", hybrax.ConfigurationError, message):
        hybrax.rollout(make(model), model.initial_state(), 3)


def test_lyapunov_needs_a_stepper(model, wrong_type):
    with wrong_type("stepper", hybrax.ConfigurationError, "lyapunov_spectrum needs a stepper"):
        hybrax.lyapunov_spectrum(model, model.initial_state(), 10)


def test_integrators_need_a_dynamics(model, wrong_type):
    with wrong_type("dynamics", hybrax.ConfigurationError, r"RK4: dynamics must be .* got None"):
        hybrax.RK4(None, 0.01)
    with wrong_type("dynamics", hybrax.ConfigurationError, "not another stepper"):
        hybrax.RK4(hybrax.RK4(model, 0.01), 0.01)
    with wrong_type("dynamics", hybrax.ConfigurationError, "ETDRK4: dynamics must be"):
        hybrax.ETDRK4(None, 0.01)

    class DuckTyped:
        def tendency(self, state, t):
            return state

    with wrong_type("dynamics", hybrax.ConfigurationError, r"subclass hybrax.AbstractDynamics"):
        hybrax.Heun(DuckTyped(), 0.01)


def test_diffrax_stepper_arguments(model, wrong_type):
    with wrong_type("solver", hybrax.ConfigurationError, "solver must be a diffrax object"):
        hybrax.DiffraxStepper(model, 0.01, solver="tsit5")
    with wrong_type("solver", hybrax.ConfigurationError, r"solver must be .* the class Tsit5"):
        hybrax.DiffraxStepper(model, 0.01, solver=diffrax.Tsit5)
    with wrong_type("stepsize_controller", hybrax.ConfigurationError, "stepsize_controller"):
        hybrax.DiffraxStepper(model, 0.01, stepsize_controller="pid")


def test_observe_must_return_arrays(model, wrong_type):
    stepper = hybrax.RK4(model, 0.01)
    with pytest.raises(hybrax.ConfigurationError, match=r"observe .* must return arrays"):
        hybrax.rollout(stepper, model.initial_state(), 4, observe=lambda s: "energy")
    with wrong_type("observe", hybrax.ConfigurationError, "observe must be a function"):
        hybrax.rollout(stepper, model.initial_state(), 4, observe="u")


def test_tendency_returning_a_bare_array_is_named():
    class Bare(hybrax.AbstractDynamics):
        def tendency(self, state, t):
            return -state.u

    with pytest.raises(hybrax.ConfigurationError, match=r"Bare.tendency must return .* ODEState"):
        hybrax.rollout(hybrax.RK4(Bare(), 0.1), ODEState(jnp.ones(3)), 2)


def test_nonfinite_state_raises_the_hybrax_class_from_the_host(model):
    stepper = hybrax.RK4(Lorenz96(8, forcing=8.0), 0.01)
    state = ODEState(jnp.ones(8).at[3].set(1e30))
    with pytest.raises(hybrax.NonFiniteStateError, match=r"at step \d+ of 50"):
        hybrax.rollout(stepper, state, 50)
    with pytest.raises(hybrax.NonFiniteStateError, match="initial state already holds NaN"):
        hybrax.rollout(stepper, ODEState(jnp.full(8, jnp.nan)), 5, save_every=None)
    # opting out returns the non-finite state
    final, _ = hybrax.rollout(stepper, state, 50, check_finite=False)
    assert not jnp.all(jnp.isfinite(final.u))


def test_nonfinite_observable_is_named(model):
    stepper = hybrax.RK4(model, 0.01)
    with pytest.raises(hybrax.NonFiniteStateError, match="observe returned NaN or inf at save 1"):
        hybrax.rollout(
            stepper, model.initial_state(), 4, save_every=2, observe=lambda s: jnp.log(s.u - 100)
        )


def test_nonfinite_under_vmap_names_the_step():
    stepper = hybrax.RK4(Lorenz96(8), 0.01)
    states = jax.vmap(ODEState)(jnp.ones((2, 8)).at[1, 3].set(1e30))
    run = eqx.filter_jit(jax.vmap(lambda s: hybrax.rollout(stepper, s, 50, save_every=None)[0]))
    with pytest.raises(eqx.EquinoxRuntimeError, match=r"NonFiniteStateError: .* at step \d+ of 50"):
        jax.block_until_ready(run(states))
    finite = run(jax.vmap(ODEState)(jnp.ones((2, 8)) + jnp.arange(8.0)))
    assert jnp.all(jnp.isfinite(finite.u))


def test_lyapunov_overflow_names_reorthonormalize_every():
    model = Lorenz63()
    stepper = hybrax.RK4(model, 0.05)
    state = model.initial_state(dtype=jnp.float32)
    with pytest.raises(hybrax.NonFiniteStateError, match="reorthonormalize_every=400"):
        hybrax.lyapunov_spectrum(stepper, state, 4000, k=1, reorthonormalize_every=4000)


def test_fresh_equal_lambdas_compile_once(model):
    stepper = hybrax.RK4(model, 0.01)
    state = model.initial_state()
    traces = []
    counts = []
    for scale in (2.0, 2.0, 2.0, 3.0):
        hybrax.rollout(stepper, state, 3, observe=lambda s, c=scale: traces.append(1) or c * s.u)
        counts.append(len(traces))
    assert counts[0] > 0
    assert counts[0] == counts[1] == counts[2]  # three fresh lambdas, one compilation
    assert counts[3] > counts[2]  # a different default value is a different function


def test_fresh_lambda_capturing_fresh_arrays_warns_once(model, monkeypatch):
    from hybrax.core import _function_cache

    # the warning is given once per process: start from a process that has not given it yet
    monkeypatch.setattr(_function_cache, "_WARNED", False)
    monkeypatch.setattr(_function_cache, "_IDENTITY_SEEN", {})
    stepper = hybrax.RK4(model, 0.01)
    state = model.initial_state()
    with pytest.warns(RuntimeWarning, match="Define the function once"):
        for _ in range(3):
            weights = jnp.ones(8)
            hybrax.rollout(stepper, state, 2, observe=lambda s: weights @ s.u)  # noqa: B023


def test_rollout_inside_jit_does_not_warn_about_fresh_captures(model, monkeypatch):
    """Inside an enclosing jit the rollout is compiled with the outer program: a fresh
    captured array costs no compilation of its own, so there is nothing to warn about."""
    from hybrax.core import _function_cache

    monkeypatch.setattr(_function_cache, "_WARNED", False)
    monkeypatch.setattr(_function_cache, "_IDENTITY_SEEN", {})
    stepper = hybrax.RK4(model, 0.01)

    def run(weights, state):
        return hybrax.rollout(stepper, state, 2, observe=lambda s: weights @ s.u)[1]

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for _ in range(3):
            weights = jnp.ones(8)  # a concrete array captured by the traced function
            jax.jit(lambda state: run(weights, state))(model.initial_state())  # noqa: B023
    # the same loop run eagerly does warn (the check above is not vacuous)
    with pytest.warns(RuntimeWarning, match="Define the function once"):
        for _ in range(3):
            run(jnp.ones(8), model.initial_state())


def test_etdrk4_contour_arguments(wrong_type):
    from hybrax.fluids import Burgers

    model = Burgers(16)
    for bad in (0, True):
        with pytest.raises(hybrax.ConfigurationError, match="num_contour_points"):
            hybrax.ETDRK4(model, 0.01, num_contour_points=bad)
    with wrong_type("num_contour_points", hybrax.ConfigurationError, "num_contour_points"):
        hybrax.ETDRK4(model, 0.01, num_contour_points=2.5)
    with pytest.raises(hybrax.ConfigurationError, match="radius must be positive"):
        hybrax.etdrk4_coefficients(jnp.ones(3), 0.1, num_contour_points=8, radius=float("nan"))


def test_wrapper_around_none_names_the_stepper(wrong_type):
    from hybrax.climate import Filtered

    with wrong_type("stepper", hybrax.ConfigurationError, "Filtered needs a stepper"):
        Filtered(None, lambda s: s)


def test_check_survives_when_only_the_trajectory_is_used():
    stepper = hybrax.RK4(Lorenz96(8), 0.01)
    run = eqx.filter_jit(
        lambda s: hybrax.rollout(stepper, s, 20, save_every=5, observe=lambda x: x.u.sum())[1]
    )
    with pytest.raises(eqx.EquinoxRuntimeError, match=r"at step \d+ of 20"):
        jax.block_until_ready(run(ODEState(jnp.ones(8).at[2].set(1e30))))
