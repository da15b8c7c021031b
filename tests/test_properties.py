"""Property-based tests over the public constructors and entry points (hypothesis).

For every physical parameter and time step of every public model, stepper and MD object:
random bad values (NaN, inf, complex, bool, str, None, integer arrays, and values of the
wrong sign where the sign is meaningful) give a `hybrax.ConfigurationError` naming the
parameter -- eagerly, and at run time when the value arrives traced under `jit`. Random
valid values give a finite run or a hybrax error, never NaN, garbage or a raw JAX/XLA
traceback.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jaxtyping import TypeCheckError

import hybrax
from hybrax import climate, fluids, grids, hybrid, md

SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)

# ---------------------------------------------------------------------------------------
# What each constructor is, and which of its parameters carry which constraint.
# "finite": any finite real; "nonnegative": >= 0; "positive": > 0.


def _lj():
    return md.LennardJones()


def _box():
    return md.PeriodicBox(10.0)


def _net(x):
    return x


CASES = [
    # core steppers: the time step
    ("RK4.dt", lambda v: hybrax.RK4(climate.Lorenz96(), dt=v), "dt", "positive"),
    ("Euler.dt", lambda v: hybrax.Euler(climate.Lorenz63(), dt=v), "dt", "positive"),
    ("Heun.dt", lambda v: hybrax.Heun(climate.Lorenz63(), dt=v), "dt", "positive"),
    ("SSPRK3.dt", lambda v: hybrax.SSPRK3(climate.Lorenz63(), dt=v), "dt", "positive"),
    ("ETDRK4.dt", lambda v: hybrax.ETDRK4(fluids.KuramotoSivashinsky(16), dt=v), "dt", "positive"),
    (
        "CrankNicolsonRK4.dt",
        lambda v: hybrax.CrankNicolsonRK4(fluids.Burgers(16), dt=v),
        "dt",
        "positive",
    ),
    ("Emulator.dt", lambda v: hybrid.Emulator(_net, dt=v), "dt", "positive"),
    # climate
    ("Lorenz63.sigma", lambda v: climate.Lorenz63(sigma=v), "sigma", "finite"),
    ("Lorenz63.rho", lambda v: climate.Lorenz63(rho=v), "rho", "finite"),
    ("Lorenz63.beta", lambda v: climate.Lorenz63(beta=v), "beta", "finite"),
    ("Lorenz96.forcing", lambda v: climate.Lorenz96(forcing=v), "forcing", "finite"),
    ("TwoScale.forcing", lambda v: climate.TwoScaleLorenz96(forcing=v), "forcing", "finite"),
    ("TwoScale.coupling", lambda v: climate.TwoScaleLorenz96(coupling=v), "coupling", "finite"),
    (
        "TwoScale.time_scale_ratio",
        lambda v: climate.TwoScaleLorenz96(time_scale_ratio=v),
        "time_scale_ratio",
        "positive",
    ),
    ("QG.beta", lambda v: climate.TwoLayerQG(16, beta=v), "beta", "finite"),
    (
        "QG.deformation_radius",
        lambda v: climate.TwoLayerQG(16, deformation_radius=v),
        "deformation_radius",
        "positive",
    ),
    (
        "QG.bottom_drag",
        lambda v: climate.TwoLayerQG(16, bottom_drag=v),
        "bottom_drag",
        "nonnegative",
    ),
    ("SW.gravity", lambda v: climate.ShallowWater(16, gravity=v), "gravity", "positive"),
    ("SW.mean_depth", lambda v: climate.ShallowWater(16, mean_depth=v), "mean_depth", "positive"),
    ("SW.coriolis", lambda v: climate.ShallowWater(16, coriolis=v), "coriolis", "finite"),
    ("SW.viscosity", lambda v: climate.ShallowWater(16, viscosity=v), "viscosity", "nonnegative"),
    (
        "EBM.heat_capacity",
        lambda v: climate.EnergyBalance0D(heat_capacity=v),
        "heat_capacity",
        "positive",
    ),
    (
        "EBM.solar_constant",
        lambda v: climate.EnergyBalance0D(solar_constant=v),
        "solar_constant",
        "finite",
    ),
    (
        "BudykoSellers.diffusivity",
        lambda v: climate.BudykoSellers(diffusivity=v),
        "diffusivity",
        "nonnegative",
    ),
    # fluids and grids
    ("NS.viscosity", lambda v: fluids.NavierStokes2D(16, viscosity=v), "viscosity", "nonnegative"),
    ("NS.drag", lambda v: fluids.NavierStokes2D(16, drag=v), "drag", "nonnegative"),
    (
        "Kolmogorov.viscosity",
        lambda v: fluids.NavierStokes2D.kolmogorov(16, viscosity=v),
        "viscosity",
        "nonnegative",
    ),
    ("Burgers.viscosity", lambda v: fluids.Burgers(16, viscosity=v), "viscosity", "nonnegative"),
    (
        "AdvectionDiffusion.diffusivity",
        lambda v: fluids.AdvectionDiffusion(16, diffusivity=v),
        "diffusivity",
        "nonnegative",
    ),
    (
        "KolmogorovForcing.amplitude",
        lambda v: fluids.KolmogorovForcing(amplitude=v),
        "amplitude",
        "finite",
    ),
    ("Grid.domain_length", lambda v: grids.Grid(16, domain_length=v), "domain_length", "positive"),
    # molecular dynamics
    ("PeriodicBox.lengths", lambda v: md.PeriodicBox(v), "lengths", "positive"),
    ("LJ.epsilon", lambda v: md.LennardJones(epsilon=v), "epsilon", "finite"),
    ("LJ.sigma", lambda v: md.LennardJones(sigma=v), "sigma", "positive"),
    ("Morse.alpha", lambda v: md.Morse(alpha=v), "alpha", "finite"),
    ("VelocityVerlet.dt", lambda v: md.VelocityVerlet(_lj(), _box(), dt=v), "dt", "positive"),
    (
        "VelocityVerlet.masses",
        lambda v: md.VelocityVerlet(_lj(), _box(), dt=0.005, masses=v),
        "masses",
        "positive",
    ),
    (
        "Langevin.temperature",
        lambda v: md.LangevinBAOAB(_lj(), _box(), dt=0.005, temperature=v),
        "temperature",
        "nonnegative",
    ),
    (
        "Langevin.friction",
        lambda v: md.LangevinBAOAB(_lj(), _box(), dt=0.005, temperature=1.0, friction=v),
        "friction",
        "nonnegative",
    ),
    (
        "NoseHoover.temperature",
        lambda v: md.NoseHooverChain(_lj(), _box(), dt=0.005, temperature=v),
        "temperature",
        "positive",
    ),
    (
        "NoseHoover.tau",
        lambda v: md.NoseHooverChain(_lj(), _box(), dt=0.005, temperature=1.0, tau=v),
        "tau",
        "positive",
    ),
    (
        "maxwell_boltzmann.temperature",
        lambda v: md.maxwell_boltzmann(jax.random.key(0), 8, v),
        "temperature",
        "nonnegative",
    ),
]

IDS = [case[0] for case in CASES]

# Values that no real physical parameter accepts.
MALFORMED = st.sampled_from(
    [
        math.nan,
        math.inf,
        -math.inf,
        1.0 + 2.0j,
        True,
        "1.0",
        None,
        np.array(3, dtype=np.int32),
        np.array([1.0, math.nan]),
    ]
)
NEGATIVE = st.floats(max_value=-1e-300, allow_nan=False, allow_infinity=False)
NONPOSITIVE = st.one_of(NEGATIVE, st.just(0.0), st.just(-0.0))


def _bad_values(kind: str):
    if kind == "positive":
        return st.one_of(MALFORMED, NONPOSITIVE)
    if kind == "nonnegative":
        return st.one_of(MALFORMED, NEGATIVE)
    return MALFORMED


def _assert_names(error: BaseException, name: str) -> None:
    assert name.lower() in str(error).lower(), f"message does not name {name!r}: {error}"


# Parameters documented as "a float or a tuple" (annotated ``float | Sequence[float]``): an
# array there is of the wrong type too.
NO_ARRAYS = {"Grid.domain_length"}


def _is_wrong_type(value, case_id: str) -> bool:
    """A value no numeric annotation of a physical parameter admits, or admits only in part:
    a str, None, a complex or a bool (a parameter annotated ``float`` rejects these)."""
    if case_id in NO_ARRAYS and isinstance(value, np.ndarray):
        return True
    return value is None or isinstance(value, (str, bool, complex))


def _rejected(type_checked: bool, wrong_type: bool):
    """``pytest.raises`` for a bad value: under jaxtyping's checks a value of the wrong type
    may be rejected by the annotation first (`TypeCheckError` naming the parameter); a value
    of the right type but a bad value is always hybrax's own `ConfigurationError`."""
    if type_checked and wrong_type:
        return pytest.raises((hybrax.ConfigurationError, TypeCheckError))
    return pytest.raises(hybrax.ConfigurationError)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bad_parameter_is_rejected_naming_it(case, type_checked):
    case_id, factory, name, kind = case

    @SETTINGS
    @given(value=_bad_values(kind))
    def check(value):
        with _rejected(type_checked, _is_wrong_type(value, case_id)) as info:
            factory(value)
        _assert_names(info.value, name)

    check()


# Box lengths and grid domains are structure (static): a tracer there is a trace-time
# ConfigurationError, tested eagerly above.
TRACED_CASES = [c for c in CASES if c[0] not in ("PeriodicBox.lengths", "Grid.domain_length")]

# A stepper's dt is type_checked where it is used: run one step of each through rollout.
_L63 = climate.Lorenz63()
STEPPER_STATES = {
    "RK4.dt": lambda: climate.Lorenz96().initial_state(),
    "Euler.dt": lambda: _L63.initial_state(),
    "Heun.dt": lambda: _L63.initial_state(),
    "SSPRK3.dt": lambda: _L63.initial_state(),
    "ETDRK4.dt": lambda: fluids.KuramotoSivashinsky(16).initial_state(jax.random.key(0)),
    "CrankNicolsonRK4.dt": lambda: fluids.Burgers(16).state_from_field(
        jnp.sin(grids.Grid(16).coordinates()[0])
    ),
}


@pytest.mark.parametrize("case", TRACED_CASES, ids=[c[0] for c in TRACED_CASES])
def test_bad_parameter_traced_under_jit_is_caught_at_run_time(case):
    """A NaN (or, where the sign matters, a negative) value that arrives as a tracer is
    caught when the program runs, with a message naming the parameter."""
    case_id, factory, name, kind = case
    bad = -1.0 if kind in ("positive", "nonnegative") else math.nan
    state = STEPPER_STATES[case_id]() if case_id in STEPPER_STATES else None

    @eqx.filter_jit
    def build_and_use(value):
        built = factory(value)
        if state is not None:
            built, _ = hybrax.rollout(built, state, 1, save_every=None)
        leaves = [x for x in jax.tree.leaves(built) if eqx.is_inexact_array(x)]
        return sum(jnp.sum(jnp.real(x)) for x in leaves)

    good = 0.5 if kind != "finite" else 1.0
    assert jnp.isfinite(build_and_use(jnp.asarray(good)))
    with pytest.raises(eqx.EquinoxRuntimeError) as info:
        jax.block_until_ready(build_and_use(jnp.asarray(bad)))
    _assert_names(info.value, name)


# ---------------------------------------------------------------------------------------
# Random valid values: a finite run or a hybrax error, never silent NaN.


@SETTINGS
@given(
    forcing=st.floats(-40.0, 40.0),
    dt=st.floats(1e-4, 0.5),
)
def test_lorenz96_random_valid_parameters_run_finite_or_raise(forcing, dt):
    model = climate.Lorenz96(num_variables=8, forcing=forcing)
    stepper = hybrax.RK4(model, dt=dt)
    try:
        final, _ = hybrax.rollout(stepper, model.initial_state(), 200, save_every=None)
    except hybrax.NonFiniteStateError as error:
        assert "step" in str(error)
        return
    assert bool(jnp.all(jnp.isfinite(final.u)))


@SETTINGS
@given(
    viscosity=st.floats(0.0, 0.5),
    dt=st.floats(1e-3, 2.0),
)
def test_navier_stokes_random_valid_parameters_run_finite_or_raise(viscosity, dt):
    model = fluids.NavierStokes2D.kolmogorov(16, viscosity=viscosity)
    state = model.initial_state(jax.random.key(0))
    # dt as an array (a leaf, not a static float): every example reuses one compiled rollout
    stepper = hybrax.ETDRK4(model, dt=jnp.asarray(dt, state.time.dtype))
    try:
        final, _ = hybrax.rollout(stepper, state, 50, save_every=None)
    except hybrax.NonFiniteStateError as error:
        assert "step" in str(error)
        return
    assert bool(jnp.all(jnp.isfinite(final.field_hat)))


ROLLOUT_ARGS = st.fixed_dictionaries(
    {
        "n_steps": st.one_of(st.integers(-3, 12), st.floats(-2, 12), st.just("10"), st.none()),
        "save_every": st.one_of(st.integers(-2, 6), st.none(), st.floats(0, 3)),
        "checkpoint": st.one_of(st.none(), st.just("sqrt"), st.integers(-2, 5), st.just("log")),
    }
)


def _rollout_wrong_types(args) -> set[str]:
    """The arguments whose type does not fit rollout's annotations (``n_steps: int``,
    ``save_every: int | None``, ``checkpoint: None | Literal["sqrt"] | int``)."""
    wrong = set()
    if not isinstance(args["n_steps"], int):
        wrong.add("n_steps")
    if args["save_every"] is not None and not isinstance(args["save_every"], int):
        wrong.add("save_every")
    if args["checkpoint"] not in (None, "sqrt") and not isinstance(args["checkpoint"], int):
        wrong.add("checkpoint")
    return wrong


@SETTINGS
@given(args=ROLLOUT_ARGS)
def test_rollout_arguments_run_or_raise_configuration_error(args, type_checked):
    model = climate.Lorenz96(num_variables=8)
    stepper = hybrax.RK4(model, dt=0.01)
    wrong = _rollout_wrong_types(args)
    try:
        final, saved = hybrax.rollout(stepper, model.initial_state(), **args)
    except hybrax.ConfigurationError:
        return
    except Exception as error:
        # under jaxtyping's checks an argument of the wrong type fails its annotation first
        if not (type_checked and wrong and isinstance(error, TypeCheckError)):
            raise
        assert any(f"parameter '{name}'" in str(error) for name in wrong), str(error)
        return
    assert not wrong, f"rollout accepted arguments of the wrong type: {args}"
    assert bool(jnp.all(jnp.isfinite(final.u)))
    if args["save_every"] is not None:
        assert jax.tree.leaves(saved)[0].shape[0] == args["n_steps"] // args["save_every"]


NOT_A_STEPPER = st.sampled_from(
    [None, "RK4", 3.0, climate.Lorenz96(), hybrax.RK4, lambda s: s, jnp.zeros(3)]
)
NOT_A_DYNAMICS = st.sampled_from(
    [None, "Lorenz96", 3.0, hybrax.RK4(climate.Lorenz96(), dt=0.01), climate.Lorenz96,
     lambda s, t: s, jnp.zeros(3)]
)  # fmt: skip


@SETTINGS
@given(thing=NOT_A_STEPPER)
def test_rollout_of_something_that_is_not_a_stepper(thing, wrong_type):
    """A model, a class, a function or an array where a stepper belongs is a
    ConfigurationError naming the argument, not an AttributeError deep inside."""
    state = climate.Lorenz96().initial_state()
    with wrong_type("stepper", hybrax.ConfigurationError, "stepper"):
        hybrax.rollout(thing, state, 3)
    with wrong_type("stepper", hybrax.ConfigurationError, "stepper"):
        hybrax.lyapunov_spectrum(thing, state, 10)


@SETTINGS
@given(thing=NOT_A_DYNAMICS)
def test_integrator_of_something_that_is_not_a_dynamics(thing, wrong_type):
    with wrong_type("dynamics", hybrax.ConfigurationError, "dynamics"):
        hybrax.RK4(thing, dt=0.01)
