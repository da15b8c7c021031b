"""Spectral solvers with the field split over 8 host devices equal the one-device solver."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec

import hybrax
from hybrax.parallel import distribute, make_mesh, shard_fields


def _field_hat(state):  # a named function: rollout recompiles for a new observe
    return state.field_hat


@pytest.fixture(scope="module")
def mesh():
    return make_mesh(8, "space")


@pytest.mark.parametrize("method", [hybrax.ETDRK4, hybrax.CrankNicolsonRK4])
def test_sharded_navier_stokes_step_equals_unsharded(mesh, method):
    model = hybrax.fluids.NavierStokes2D.kolmogorov(64)
    state = model.initial_state(jax.random.key(0), dtype=jnp.float64)
    sharded_model = distribute(model, mesh)
    sharded_state = shard_fields(state, sharded_model)
    assert sharded_state.field_hat.sharding.spec == PartitionSpec("space", None)

    plain, split = method(model, 0.02), method(sharded_model, 0.02)
    # one compiled rollout each: the first saved step is the single step
    final_one, history_one = hybrax.rollout(plain, state, 20, observe=_field_hat)
    final_many, history_many = hybrax.rollout(split, sharded_state, 20, observe=_field_hat)
    one, many = history_one[0], history_many[0]
    scale = float(jnp.max(jnp.abs(one)))
    np.testing.assert_allclose(many, one, atol=1e-14 * scale)
    assert final_many.field_hat.sharding.spec[0] == "space"
    np.testing.assert_allclose(final_many.field_hat, final_one.field_hat, atol=1e-13 * scale)


def test_sharded_step_only_transposes(mesh):
    """Communication is the FFT transposes: no gathers or reductions of the field."""
    model = distribute(hybrax.fluids.NavierStokes2D.kolmogorov(64), mesh)
    state = shard_fields(model.initial_state(dtype=jnp.float32), model)
    stepper = hybrax.ETDRK4(model, 0.02).prepare()
    hlo = jax.jit(lambda s: stepper.step(s)).lower(state).compile().as_text()
    assert hlo.count("all-to-all(") == 16  # 4 evaluations x (inverse + forward) x 2
    for collective in ("all-gather(", "all-reduce(", "collective-permute("):
        assert collective not in hlo, collective


def test_sharded_gradient_equals_unsharded(mesh):
    model = hybrax.fluids.NavierStokes2D.kolmogorov(32)
    state = model.initial_state(jax.random.key(1), dtype=jnp.float64)
    sharded = distribute(model, mesh)

    def loss(viscosity, m, s):
        m = m.__class__(m.grid, viscosity, m.drag, m.forcing)
        final, _ = hybrax.rollout(hybrax.ETDRK4(m, 0.05), s, 10, save_every=None)
        return jnp.sum(jnp.abs(final.field_hat) ** 2)

    nu = jnp.asarray(1e-3)
    g_one = jax.grad(loss)(nu, model, state)
    g_many = jax.jit(jax.grad(loss))(nu, sharded, shard_fields(state, sharded))
    np.testing.assert_allclose(g_many, g_one, rtol=1e-10)


def test_distribute_needs_a_grid_and_known_axis(mesh):
    with pytest.raises(ValueError, match=r"no hybrax\.grids\.Grid"):
        distribute(hybrax.climate.Lorenz96(), mesh)
    with pytest.raises(ValueError, match="not 'batch'"):
        distribute(hybrax.fluids.NavierStokes2D.kolmogorov(32), mesh, "batch")
    with pytest.raises(ValueError, match="nx=36 must be divisible by the 8 devices"):
        distribute(hybrax.fluids.NavierStokes2D.kolmogorov(36), mesh)
    with pytest.raises(ValueError, match="call distribute first"):
        flow = hybrax.fluids.NavierStokes2D.kolmogorov(32)
        shard_fields(flow.initial_state(), flow)


def test_sharded_quasi_geostrophic_equals_unsharded(mesh):
    """Two-layer QG (fields ``(layer, y, x)``, split along y): pyqg's AB3 scheme over 20 steps
    and one ETDRK4 step with the field on 8 devices equal the one-device model."""
    model = hybrax.climate.TwoLayerQG.eddy(32)
    sharded = distribute(model, mesh)
    state = model.initial_state(jax.random.key(2), dtype=jnp.float64)
    sharded_state = shard_fields(state, sharded)
    assert sharded_state.field_hat.sharding.spec == PartitionSpec(None, "space", None)

    plain, split = model.pyqg_stepper(), sharded.pyqg_stepper()
    final_one, _ = hybrax.rollout(plain, plain.init(state), 20, save_every=None)
    final_many, _ = hybrax.rollout(split, split.init(sharded_state), 20, save_every=None)
    one, many = final_one.state, final_many.state
    scale = float(jnp.max(jnp.abs(one.field_hat)))
    np.testing.assert_allclose(many.field_hat, one.field_hat, atol=1e-13 * scale)
    assert many.field_hat.sharding.spec[1] == "space"

    # the sharded step is compiled once: inspected, then run
    prepared = hybrax.ETDRK4(sharded, 3 * 3600.0).prepare()
    compiled = jax.jit(lambda s: prepared.step(s)).lower(many).compile()
    step = eqx.filter_jit(lambda stepper, s: stepper.step(s))
    etd_one = step(hybrax.ETDRK4(model, 3 * 3600.0), one)
    etd_many = compiled(many)
    np.testing.assert_allclose(etd_many.field_hat, etd_one.field_hat, atol=1e-13 * scale)
    pv = eqx.filter_jit(lambda m, s: m.pv(s))
    np.testing.assert_allclose(pv(sharded, etd_many), pv(model, etd_one), atol=1e-13 * scale)

    text = compiled.as_text()
    assert text.count("all-to-all(") == 40  # 4 evaluations x (3 inverse + 2 forward) x 2
    for collective in ("all-gather(", "all-reduce(", "collective-permute("):
        assert collective not in text, collective
