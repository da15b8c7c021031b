"""Meshes and sharded ensembles on the 8 host CPU devices of the test session."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec

import hybrax
from hybrax.parallel import make_mesh, replicate, shard_batch, sharded_rollout


@pytest.fixture
def ensemble():
    model = hybrax.climate.Lorenz96(num_variables=40, forcing=8.0)
    keys = jax.random.split(jax.random.key(0), 32)
    states = jax.vmap(lambda k: model.initial_state(k, dtype=jnp.float64))(keys)
    return hybrax.RK4(model, 0.01), states


def test_eight_host_devices_are_available():
    assert len(jax.devices()) == 8
    assert make_mesh().shape == {"batch": 8}
    assert make_mesh(4).size == 4
    assert make_mesh(8, ("data", "space"), shape=(2, 4)).shape == {"data": 2, "space": 4}


def test_sharded_rollout_equals_single_device(ensemble):
    stepper, states = ensemble
    mesh = make_mesh(8)
    final, energy = sharded_rollout(
        stepper, states, 300, mesh, save_every=100, observe=lambda s: jnp.sum(s.u**2)
    )
    reference, reference_energy = jax.vmap(
        lambda s: hybrax.rollout(stepper, s, 300, save_every=100, observe=lambda s: jnp.sum(s.u**2))
    )(states)
    np.testing.assert_allclose(final.u, reference.u, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(energy, reference_energy, rtol=1e-13)
    # The members never leave their devices: outputs keep the batch split ...
    assert final.u.sharding.spec == PartitionSpec("batch")
    assert energy.sharding.spec == PartitionSpec("batch")
    assert {s.device for s in final.u.addressable_shards} == set(mesh.devices.flat)
    assert final.u.addressable_shards[0].data.shape == (4, 40)


def test_sharded_rollout_has_no_collectives(ensemble):
    """The compiled program does not gather, reduce or permute the ensemble. (rollout's
    default check_finite adds one scalar all-reduce per call, "did any member fail?",
    so the stepping itself is checked with it off.)"""
    stepper, states = ensemble
    mesh = make_mesh(8)
    states = shard_batch(states, mesh)
    stepper = replicate(stepper, mesh)
    run = jax.jit(
        jax.vmap(lambda s: hybrax.rollout(stepper, s, 50, save_every=None, check_finite=False)[0])
    )
    hlo = run.lower(states).compile().as_text()
    for collective in ("all-gather", "all-reduce", "all-to-all", "collective-permute"):
        assert collective not in hlo, collective


def test_shard_batch_rejects_indivisible_ensembles(ensemble):
    _, states = ensemble
    odd = jax.tree.map(lambda x: x[:30], states)
    with pytest.raises(ValueError, match="divisible by the 8 devices"):
        shard_batch(odd, make_mesh(8))


def test_bad_mesh_arguments():
    with pytest.raises(ValueError, match="between 1 and the 8 available devices"):
        make_mesh(9)
    with pytest.raises(ValueError, match="multiply to num_devices=8"):
        make_mesh(8, ("a", "b"), shape=(2, 2))
    with pytest.raises(ValueError, match="not 'data'"):
        hybrax.parallel.batch_sharding(make_mesh(2), "data")


def test_initialize_needs_a_complete_address(monkeypatch):
    for var in ("HYBRAX_COORDINATOR", "HYBRAX_NUM_PROCESSES", "HYBRAX_PROCESS_ID", "SLURM_JOB_ID"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ValueError, match="give all of coordinator_address"):
        hybrax.parallel.initialize("localhost:1234")
    with pytest.raises(ValueError, match="process_id must be in"):
        hybrax.parallel.initialize("localhost:1234", num_processes=2, process_id=2)
    with pytest.raises(ValueError, match="no coordinator"):
        hybrax.parallel.initialize()
