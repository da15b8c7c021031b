"""Physical parameters and initial conditions of the fluid models are checked (probe rows
28, 31, 32, 35)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

import hybrax
from hybrax.errors import ConfigurationError
from hybrax.fluids import (
    AdvectionDiffusion,
    Burgers,
    FieldForcing,
    KolmogorovForcing,
    KuramotoSivashinsky,
    NavierStokes2D,
    random_vorticity,
)
from hybrax.grids import Grid, cfl_time_step

NAN, INF = float("nan"), float("inf")

CASES = [
    (lambda v: NavierStokes2D(16, viscosity=v), "viscosity", [NAN, INF, -1e-3, 1j, "x"]),
    (lambda v: NavierStokes2D(16, drag=v), "drag", [NAN, -0.1, True]),
    (lambda v: Burgers(16, viscosity=v), "viscosity", [-0.05, NAN, jnp.ones(2)]),
    (lambda v: AdvectionDiffusion(16, diffusivity=v), "diffusivity", [-1.0, INF]),
    (lambda v: AdvectionDiffusion(Grid((8, 8)), velocity=v), "velocity", [[1.0, NAN]]),
    (lambda v: KolmogorovForcing(amplitude=v), "amplitude", [NAN, None]),
    (lambda v: NavierStokes2D.kolmogorov(16, forcing_amplitude=v), "amplitude", [INF]),
    (lambda v: FieldForcing(jnp.zeros((8, 5), jnp.complex64), v), "amplitude", [NAN]),
    (lambda v: cfl_time_step(Grid((16, 16)), v), "max_velocity", [NAN, -7.0, 0.0]),
    (lambda v: cfl_time_step(Grid((16, 16)), 7.0, v), "courant", [NAN, -0.5]),
    (lambda v: Grid((16, 16), v), "domain_length", [NAN, INF, -1.0, True]),
]


@pytest.mark.parametrize(("make", "name", "values"), CASES, ids=[c[1] for c in CASES])
def test_bad_parameters_name_the_parameter(make, name, values, wrong_type):
    for value in values:
        if isinstance(value, str | None) or (name == "domain_length" and isinstance(value, bool)):
            raises = wrong_type(name, ConfigurationError, name)  # not the annotated type
        else:
            raises = pytest.raises(ConfigurationError, match=name)
        with raises:
            make(value)


@pytest.mark.parametrize("max_velocity", [NAN, -7.0])
def test_initial_state_max_velocity(max_velocity):
    with pytest.raises(ConfigurationError, match="max_velocity must be positive and finite"):
        NavierStokes2D.kolmogorov(16).initial_state(max_velocity=max_velocity)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.int32, jnp.complex64])
def test_initial_state_dtype(dtype):
    with pytest.raises(ConfigurationError, match="dtype must be a real floating dtype"):
        NavierStokes2D.kolmogorov(16).initial_state(dtype=dtype)
    with pytest.raises(ConfigurationError, match="dtype must be a real floating dtype"):
        random_vorticity(Grid((16, 16)), jax.random.key(0), dtype=dtype)
    with pytest.raises(ConfigurationError, match="dtype must be a real floating dtype"):
        KuramotoSivashinsky(16).initial_state(dtype=dtype)


def test_traced_nan_viscosity_raises_when_run():
    state = NavierStokes2D.kolmogorov(16).initial_state()

    @eqx.filter_jit
    def run(viscosity):
        model = NavierStokes2D.kolmogorov(16, viscosity=viscosity)
        return hybrax.rollout(hybrax.ETDRK4(model, 0.01), state, 2)[0].field_hat

    assert jnp.all(jnp.isfinite(run(jnp.asarray(1e-3))))
    with pytest.raises(eqx.EquinoxRuntimeError, match="viscosity must be non-negative"):
        jax.block_until_ready(run(jnp.asarray(jnp.nan)))
