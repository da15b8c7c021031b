"""Physical parameters of the climate models are checked (probe rows 12, 14-16, 43)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

import hybrax
from hybrax.climate import (
    BudykoSellers,
    EnergyBalance0D,
    HeightRelaxation,
    IceAlbedo,
    Lorenz63,
    Lorenz96,
    ShallowWater,
    TwoLayerQG,
    TwoScaleLorenz96,
)
from hybrax.errors import ConfigurationError

NAN, INF = float("nan"), float("inf")

CASES = [
    (lambda v: Lorenz96(8, forcing=v), "forcing", [NAN, INF, 8 + 5j, "8", True, None]),
    (lambda v: Lorenz63(sigma=v), "sigma", [NAN, -1.0, 0.0]),
    (lambda v: Lorenz63(rho=v), "rho", [INF, 1j]),
    (lambda v: TwoScaleLorenz96(time_scale_ratio=v), "time_scale_ratio", [NAN, -10.0]),
    (lambda v: TwoScaleLorenz96(coupling=v), "coupling", [INF, jnp.ones(3)]),
    (lambda v: TwoLayerQG(16, beta=v), "beta", [NAN, INF, 1j, "x"]),
    (lambda v: TwoLayerQG(16, bottom_drag=v), "bottom_drag", [-1e-7, NAN]),
    (lambda v: ShallowWater(16, coriolis=v), "coriolis", [NAN, INF, jnp.ones(2)]),
    (lambda v: ShallowWater(16, beta=v), "beta", [NAN]),
    (lambda v: ShallowWater(16, viscosity=v), "viscosity", [-1.0, NAN]),
    (lambda v: EnergyBalance0D(albedo=v), "albedo", [NAN, True]),
    (lambda v: EnergyBalance0D(heat_capacity=v), "heat_capacity", [0.0, INF]),
    (lambda v: BudykoSellers(8, diffusivity=v), "diffusivity", [-0.1, NAN]),
    (lambda v: IceAlbedo(transition_width=v), "transition_width", [0.0, NAN]),
    (lambda v: HeightRelaxation(jnp.zeros((4, 4)), v), "relaxation_time", [-1.0, NAN]),
]


@pytest.mark.parametrize(("make", "name", "values"), CASES, ids=[c[1] for c in CASES])
def test_bad_parameters_name_the_parameter(make, name, values, wrong_type):
    for value in values:
        if isinstance(value, str | None):  # not the annotated type
            raises = wrong_type(name, ConfigurationError, name)
        else:
            raises = pytest.raises(ConfigurationError, match=name)
        with raises:
            make(value)


def test_int_forcing_gives_a_float_model():
    model = Lorenz96(40, 8)
    state = model.initial_state()
    assert jnp.issubdtype(state.u.dtype, jnp.floating)
    assert float(state.u[0]) == pytest.approx(8.01)


def test_traced_nan_forcing_raises_when_run():
    base = Lorenz96(8)

    @eqx.filter_jit
    def run(forcing):
        model = Lorenz96(8, forcing)
        return hybrax.rollout(hybrax.RK4(model, 0.01), base.initial_state(), 3)[0].u

    assert jnp.all(jnp.isfinite(run(jnp.asarray(8.0))))
    with pytest.raises(eqx.EquinoxRuntimeError, match="forcing must be finite"):
        jax.block_until_ready(run(jnp.asarray(jnp.nan)))


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.complex64, "bogus"])
def test_initial_state_dtype(dtype):
    with pytest.raises(ConfigurationError, match="dtype must be a real floating dtype"):
        Lorenz96(8).initial_state(dtype=dtype)
    with pytest.raises(ConfigurationError, match="dtype must be a real floating dtype"):
        TwoLayerQG(16).initial_state(dtype=dtype)
    with pytest.raises(ConfigurationError, match="dtype must be a real floating dtype"):
        ShallowWater(16).rest_state(dtype=dtype)


def test_shallow_water_state_builders():
    model = ShallowWater(16)
    with pytest.raises(ConfigurationError, match="radius must be positive"):
        model.vortex_state(radius=-1.0)
    with pytest.raises(ConfigurationError, match="amplitude must be finite"):
        model.vortex_state(amplitude=NAN)
    with pytest.raises(ConfigurationError, match="non-zero coriolis"):
        ShallowWater(16, coriolis=0.0).vortex_state()


def test_steppers_and_solvers_check_their_arguments(wrong_type):
    from hybrax.climate import AdamsBashforth3, Filtered, stable_steady_state

    with wrong_type("dynamics", ConfigurationError, "AdamsBashforth3: dynamics must be"):
        AdamsBashforth3(None, 0.01)
    with wrong_type("filter", ConfigurationError, "filter must be a function"):
        Filtered(hybrax.RK4(Lorenz63(), 0.01), 3)
    model = EnergyBalance0D()
    for name in ("rtol", "atol", "initial_dt", "transient_tolerance"):
        with pytest.raises(ConfigurationError, match=name):
            stable_steady_state(model, model.initial_state(), **{name: NAN})
    with wrong_type("solver", ConfigurationError, "solver must be a diffrax solver"):
        stable_steady_state(model, model.initial_state(), solver="implicit")
