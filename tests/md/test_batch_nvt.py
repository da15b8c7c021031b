"""Thermostats in padded batches (hybrax.md.simulate_batch with LangevinBAOAB and
NoseHooverChain): each system follows its own trajectory alone, padding atoms never move."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
import hybrax.md as md

CUTOFF = 1.5  # boxes of 24-32 atoms (side ~3.3 sigma) stay wider than twice the cut-off
STEPS = 40


def _kinetic(state):
    # unit masses; padding atoms have zero velocity, so this is the real atoms' sum
    return 0.5 * jnp.sum(state.velocities**2)


# every batch run uses these, so its chunk compiles once per stepper kind
RUN = dict(chunk_size=STEPS, save_every=STEPS, observe=_kinetic)


@pytest.fixture(scope="module")
def systems():
    """Three perturbed fcc systems of 32, 28 and 24 atoms in three different boxes."""
    rng = np.random.default_rng(0)
    out = []
    for density, count in [(0.8442, 32), (0.8, 28), (0.9, 24)]:
        positions, box = md.lattice("fcc", 2, density=density)
        positions = box.wrap(positions + jnp.asarray(rng.normal(0.0, 0.04, positions.shape)))
        v = rng.normal(0.0, 1.0, (count, 3))  # kT = 1, host-side (no compile per size)
        v = jnp.asarray(v - v.mean(axis=0))
        out.append((positions[:count], box, v))
    return out


@pytest.fixture(scope="module")
def batch(systems):
    return md.SystemBatch.from_systems(systems)


@pytest.fixture(scope="module")
def nbrs(batch):
    return md.batch_neighbor_list(batch, CUTOFF)


def _alone(stepper, system, key=None):
    positions, _, velocities = system
    nbrs = md.neighbor_list(positions, stepper.box, CUTOFF)
    state = stepper.init(positions, velocities, nbrs, key=key)
    final, _ = md.simulate(stepper, state, STEPS, chunk_size=STEPS, progress=False)
    return final


def _assert_matches_alone(final, b, alone):
    n = alone.positions.shape[0]
    for name in ("positions", "velocities", "forces"):
        np.testing.assert_allclose(
            getattr(final, name)[b, :n], getattr(alone, name), rtol=0, atol=1e-12, err_msg=name
        )
    np.testing.assert_allclose(final.potential_energy[b], alone.potential_energy, rtol=1e-12)


def _assert_padding_still(final, batch):
    padding = ~batch.mask
    assert bool(jnp.all(jnp.where(padding[..., None], final.positions == batch.positions, True)))
    assert bool(jnp.all(jnp.where(padding[..., None], final.velocities == 0, True)))


def _nose_hoover(box, masses):
    lj = md.LennardJones(cutoff=CUTOFF)
    return md.NoseHooverChain(lj, box, dt=0.005, temperature=1.4, tau=0.1, masses=masses)


def _langevin(box, masses):
    lj = md.LennardJones(cutoff=CUTOFF)
    return md.LangevinBAOAB(lj, box, dt=0.005, temperature=1.2, friction=2.0, masses=masses)


KEYS = jax.random.split(jax.random.key(7), 3)


@pytest.fixture(scope="module")
def nose_hoover_run(batch, nbrs):
    final, kinetic = md.simulate_batch(_nose_hoover, batch, nbrs, STEPS, **RUN)
    assert kinetic.shape == (3, 1)
    _assert_padding_still(final, batch)
    return final


@pytest.fixture(scope="module")
def langevin_run(batch, nbrs):
    final, _ = md.simulate_batch(
        _langevin,
        batch,
        nbrs,
        STEPS,
        **RUN,
        key=KEYS,
    )
    _assert_padding_still(final, batch)
    return final


@pytest.mark.parametrize("b", [0, 1, 2])
def test_nose_hoover_chain_batch_equals_single_run(systems, nose_hoover_run, b):
    """Each system's chain counts its own 3 n_b - 3 degrees of freedom (with the padded
    count 3 N - 3 the velocities of the 28- and 24-atom systems differ by 0.1 after 40
    steps); padding atoms stay put (checked in the fixture)."""
    alone = _alone(_nose_hoover(systems[b][1], 1.0), systems[b])
    _assert_matches_alone(nose_hoover_run, b, alone)
    for name in ("positions", "velocities"):
        np.testing.assert_allclose(
            getattr(nose_hoover_run.thermostat, name)[b],
            getattr(alone.thermostat, name),
            rtol=0,
            atol=1e-12,
        )


@pytest.mark.parametrize("b", [0, 1, 2])
def test_langevin_batch_equals_single_run_with_the_same_key(systems, langevin_run, b):
    """System b draws its noise from keys[b], as alone; padding atoms get none (checked in
    the fixture: they would move otherwise)."""
    alone = _alone(_langevin(systems[b][1], 1.0), systems[b], key=KEYS[b])
    _assert_matches_alone(langevin_run, b, alone)
    np.testing.assert_array_equal(
        jax.random.key_data(langevin_run.key[b]), jax.random.key_data(alone.key)
    )


def test_overflowed_list_is_rebuilt_and_forces_recomputed(batch, nbrs, nose_hoover_run):
    """A continued state whose list overflowed in system 1 (forces NaN): simulate_batch
    rebuilds the lists and recomputes that system's energy and forces in its box
    (`_reevaluated` through the thermostat wrapper), keeping the others' values."""
    inner = nose_hoover_run.neighbors.inner
    flagged = inner.overflow.at[1].set(True)
    broken = eqx.tree_at(
        lambda s: (s.neighbors.inner.overflow, s.forces, s.potential_energy),
        nose_hoover_run,
        (
            flagged,
            nose_hoover_run.forces.at[1].set(jnp.nan),
            nose_hoover_run.potential_energy.at[1].set(jnp.nan),
        ),
    )
    expected, _ = md.simulate_batch(_nose_hoover, batch, nbrs, STEPS, state=nose_hoover_run, **RUN)
    with pytest.warns(md.NeighborListOverflowWarning):
        final, _ = md.simulate_batch(_nose_hoover, batch, nbrs, STEPS, state=broken, **RUN)
    np.testing.assert_allclose(final.positions, expected.positions, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        final.thermostat.velocities, expected.thermostat.velocities, atol=1e-12
    )


def test_langevin_one_key_is_split_per_system(batch, nbrs, langevin_run):
    split, _ = md.simulate_batch(
        _langevin,
        batch,
        nbrs,
        STEPS,
        **RUN,
        key=jax.random.key(7),  # KEYS is its split into 3
    )
    np.testing.assert_array_equal(split.velocities, langevin_run.velocities)


def test_langevin_heats_every_system_to_the_target(batch, nbrs):
    """From rest, strong friction (gamma = 10) brings each system to the target within a
    few 1 / (2 gamma) = 0.05 tau. The kinetic temperature sampled every 0.2 tau over
    t in [0.4, 2] tau (9 samples, more than the velocity correlation time apart) averages
    within 20% of the target: an instantaneous value fluctuates by sqrt(2 / (3 n_b - 3))
    (17% for 24 atoms), so the mean's standard error is under 6% and 20% is over 3.4 of
    them; a system left unheated (T = 0 at the start) or heated to another target fails."""
    lj = md.LennardJones(cutoff=CUTOFF)
    target = 1.5
    still = batch.replace(batch.positions, jnp.zeros_like(batch.velocities))

    def make(box, masses):
        return md.LangevinBAOAB(lj, box, dt=0.005, temperature=target, friction=10.0, masses=masses)

    final, kinetic = md.simulate_batch(  # the chunk compiled for langevin_run is reused
        make,
        still,
        nbrs,
        10 * STEPS,
        **RUN,
        key=jax.random.key(3),
    )
    _assert_padding_still(final, still)
    dof = 3.0 * np.asarray(batch.num_atoms) - 3.0
    temperatures = 2.0 * np.asarray(kinetic) / dof[:, None]
    assert temperatures.shape == (3, 10)
    np.testing.assert_allclose(temperatures[:, 1:].mean(axis=1), target, rtol=0.2)


def test_bad_input(batch, nbrs, langevin_run, wrong_type):
    lj = md.LennardJones(cutoff=CUTOFF)
    langevin = _langevin

    with pytest.raises(
        hybrax.ConfigurationError,
        match=r"BrownianDynamics is not supported.*VelocityVerlet.*LangevinBAOAB.*NoseHooverChain",
    ):
        md.simulate_batch(
            lambda box, m: md.BrownianDynamics(lj, box, dt=1e-3, temperature=1.0, masses=m),
            batch,
            nbrs,
            2,
        )
    with pytest.raises(hybrax.ConfigurationError, match="degrees_of_freedom"):
        md.simulate_batch(
            lambda box, m: md.NoseHooverChain(
                lj, box, dt=0.005, temperature=1.0, degrees_of_freedom=60, masses=m
            ),
            batch,
            nbrs,
            2,
        )
    with pytest.raises(hybrax.ConfigurationError, match="needs key="):
        md.simulate_batch(langevin, batch, nbrs, 2)
    with pytest.raises(hybrax.ConfigurationError, match=r"3 keys \(one per system\).*\(2,\)"):
        md.simulate_batch(langevin, batch, nbrs, 2, key=jax.random.split(jax.random.key(0), 2))
    with wrong_type("key", hybrax.ConfigurationError, "key must be a jax.random.key"):
        md.simulate_batch(langevin, batch, nbrs, 2, key=3)
    with pytest.raises(hybrax.ConfigurationError, match="both state and key"):
        md.simulate_batch(langevin, batch, nbrs, 1, state=langevin_run, key=jax.random.key(0))
    single, box = md.lattice("fcc", 2, density=0.8442)
    lonely = md.SystemBatch.from_systems([(single, box), (single[:1], box)])
    with pytest.raises(hybrax.ConfigurationError, match="system 1 has 1 atom"):
        md.simulate_batch(
            lambda box, m: md.NoseHooverChain(lj, box, dt=0.005, temperature=1.0, masses=m),
            lonely,
            md.batch_neighbor_list(lonely, CUTOFF),
            2,
        )
