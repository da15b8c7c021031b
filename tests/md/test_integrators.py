import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
import hybrax.md as md

from .conftest import perturbed_fcc


def lj_liquid(cells, temperature, *, dtype=jnp.float64, energy=None, seed=87287):
    positions, box = md.lattice("fcc", cells, density=0.8442, dtype=dtype)
    velocities = md.maxwell_boltzmann(
        jax.random.key(seed), positions.shape[0], temperature, dtype=dtype
    )
    nbrs = md.neighbor_list(positions, box, cutoff=2.5, skin=0.3)
    return positions, velocities, nbrs, box, energy or md.LennardJones(cutoff=2.5)


@pytest.mark.slow
def test_nve_in_lj_conserves_energy_and_momentum(full_size):
    """LAMMPS in.lj (fcc 0.8442, T0 3.0, rc 2.5, skin 0.3, dt 0.005): relative energy drift
    over the run must not exceed LAMMPS's own 2.3e-3 on this system (hard cut); with the
    shifted potential it is far smaller. Momentum stays zero to round-off."""
    cells, steps = (10, 1000) if full_size else (5, 400)
    positions, velocities, nbrs, box, lj = lj_liquid(cells, 3.0)
    stepper = md.VelocityVerlet(lj, box, dt=0.005)
    state = stepper.init(positions, velocities, nbrs)

    def observe(s):
        return md.total_energy(s), md.momentum(s.velocities)

    final, (energy, momentum) = md.simulate(
        stepper, state, steps, chunk_size=steps, save_every=10, observe=observe, progress=False
    )
    e0 = md.total_energy(state)
    drift = abs(float(energy[-1] - e0) / float(e0))
    assert drift < 2.3e-3  # LAMMPS's own drift on this system (hard cut-off)
    assert float(jnp.max(jnp.abs(momentum))) < 1e-10 * positions.shape[0]
    assert int(final.neighbors.num_builds) > 10  # the hot melt rebuilt its list in the scan
    assert not bool(final.neighbors.overflow)


@pytest.mark.slow
@pytest.mark.parametrize("thermostat", ["langevin", "nose_hoover"])
def test_thermostats_hold_the_target_temperature(thermostat, full_size):
    # reduced: Langevin (friction 2) equilibrates fast enough for 256 atoms; the Nose-Hoover
    # chain needs 500 atoms and 4000 steps to settle within 2% (measured 2.2% off at 256/3000)
    reduced = (4, 3000) if thermostat == "langevin" else (5, 4000)
    cells, steps = (8, 10000) if full_size else reduced
    target = 1.5
    # start as in.lj (T0 = 3): the crystal melts at once and the thermostat cools the liquid
    positions, velocities, nbrs, box, lj = lj_liquid(cells, 3.0)
    if thermostat == "langevin":
        stepper = md.LangevinBAOAB(lj, box, dt=0.005, temperature=target, friction=2.0)
    else:
        stepper = md.NoseHooverChain(lj, box, dt=0.005, temperature=target, tau=0.5)
    state = stepper.init(positions, velocities, nbrs, key=jax.random.key(1))

    def record(s):
        extended = stepper.extended_energy(s) if thermostat == "nose_hoover" else 0.0
        return md.temperature(s.velocities), extended

    _, (temps, extended) = md.simulate(
        stepper, state, steps, chunk_size=steps, save_every=10, observe=record, progress=False
    )
    mean = float(jnp.mean(temps[len(temps) // 4 :]))
    assert abs(mean - target) / target < 0.02
    if thermostat == "nose_hoover":
        h = np.asarray(extended)
        assert np.max(np.abs(h - h[0])) / abs(h[0]) < 2e-3


def test_brownian_dimer_equipartition():
    """Overdamped dimers on harmonic springs (rest length 0): <r^2> = 3 kT / k."""
    num_pairs = 256
    positions = jnp.zeros((2 * num_pairs, 3))
    bonds = jnp.stack([jnp.arange(0, 2 * num_pairs, 2), jnp.arange(1, 2 * num_pairs, 2)], 1)
    stiffness, kT = 4.0, 0.5
    springs = md.HarmonicBonds(bonds, stiffness=stiffness, rest_length=0.0)
    stepper = md.BrownianDynamics(springs, md.FreeSpace(), dt=0.01, temperature=kT, friction=1.0)
    positions = positions + 0.3 * jax.random.normal(jax.random.key(2), positions.shape)
    state = stepper.init(positions, key=jax.random.key(3))

    def spring_r2(s):
        d = s.positions[bonds[:, 0]] - s.positions[bonds[:, 1]]
        return jnp.mean(jnp.sum(d * d, axis=-1))

    _, r2 = hybrax.rollout(stepper, state, 2000, save_every=10, observe=spring_r2)
    # Euler-Maruyama with relaxation rate 2 k / gamma: <r^2> = 3 kT / (k (1 - k dt))
    expected = 3 * kT / (stiffness * (1 - stiffness * 0.01))
    assert abs(float(jnp.mean(r2[50:])) - expected) / expected < 0.03


def test_gradient_of_mean_energy_through_nvt_matches_finite_differences(fcc108):
    positions, box = fcc108
    nbrs = md.DenseNeighborList.build(positions, box, cutoff=2.5)
    velocities = md.maxwell_boltzmann(jax.random.key(4), positions.shape[0], 1.0)

    def mean_energy(epsilon):
        lj = md.LennardJones(epsilon=epsilon, cutoff=2.5)
        stepper = md.LangevinBAOAB(lj, box, dt=0.005, temperature=1.0, friction=1.0)
        state = stepper.init(positions, velocities, nbrs, key=jax.random.key(5))
        _, energies = hybrax.rollout(
            stepper,
            state,
            40,
            save_every=4,
            observe=lambda s: s.potential_energy,
            checkpoint="sqrt",
        )
        return jnp.mean(energies)

    epsilon = jnp.asarray(1.0)
    grad = jax.grad(mean_energy)(epsilon)
    h = 1e-5
    numeric = (mean_energy(epsilon + h) - mean_energy(epsilon - h)) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5)


def test_vmap_over_a_batch_of_systems(fcc108):
    positions, box = fcc108
    nbrs = md.DenseNeighborList.build(positions, box, cutoff=2.5)
    stepper = md.VelocityVerlet(md.LennardJones(cutoff=2.5), box, dt=0.005)
    keys = jax.random.split(jax.random.key(6), 2)
    velocities = jax.vmap(lambda k: md.maxwell_boltzmann(k, positions.shape[0], 1.0))(keys)
    states = jax.vmap(lambda v: stepper.init(positions, v, nbrs))(velocities)
    run = jax.jit(lambda s: hybrax.rollout(stepper, s, 20, save_every=None)[0])
    finals = jax.vmap(run)(states)
    single = run(stepper.init(positions, velocities[1], nbrs))
    np.testing.assert_allclose(finals.positions[1], single.positions, atol=1e-10)
    assert not np.allclose(finals.positions[0], finals.positions[1])


def test_overflow_raises_inside_rollout_and_simulate_regrows():
    """A list with no head room over the perfect crystal overflows as in.lj melts: plain
    rollout raises; simulate regrows, re-runs, warns once and matches a run that never
    overflowed."""
    positions, velocities, _, box, lj = lj_liquid(6, 3.0)
    fitted = md.neighbor_list(positions, box, cutoff=2.5, skin=0.3, capacity_multiplier=1.0)
    exact = tuple(int(c) for c in fitted.max_counts)  # no head room at all
    tight = dataclasses.replace(fitted, widths=exact).update(positions, box)
    stepper = md.VelocityVerlet(lj, box, dt=0.005)
    state = stepper.init(positions, velocities, tight)
    with pytest.raises(eqx.EquinoxRuntimeError, match=r"NeighborListError.*overflow"):
        final, _ = hybrax.rollout(stepper, state, 100, save_every=None)
        jax.block_until_ready(final)
    with pytest.warns(md.NeighborListOverflowWarning):
        final, _ = md.simulate(stepper, state, 100, chunk_size=50, progress=False)
    assert not bool(final.neighbors.overflow)
    assert final.neighbors.slots_per_atom > tight.slots_per_atom
    # an overflowed list would have given NaN forces; the regrown run conserves energy
    e0, e1 = md.total_energy(state), md.total_energy(final)
    assert np.isfinite(float(e1)) and abs(float(e1 - e0) / float(e0)) < 1e-3
    dense = md.DenseNeighborList.build(final.positions, box, cutoff=2.5)
    np.testing.assert_allclose(final.forces, lj.forces(final.positions, dense, box), atol=1e-9)
    tiny = dataclasses.replace(fitted, widths=tuple(w // 2 for w in exact))
    with pytest.raises(hybrax.NeighborListError, match="too small for these positions"):
        stepper.init(positions, velocities, tiny)


def test_bad_input_messages(fcc500, wrong_type):
    positions, box = fcc500
    nbrs = md.neighbor_list(positions, box, cutoff=2.5)
    lj = md.LennardJones(cutoff=2.5)
    stepper = md.VelocityVerlet(lj, box, dt=0.005)
    overlapping = positions.at[1].set(positions[0])
    with pytest.raises(ValueError, match=r"particles overlap.*atoms 0 and 1"):
        stepper.init(overlapping, None, md.neighbor_list(overlapping, box, cutoff=2.5))
    with pytest.raises(ValueError, match="outside the periodic box"):
        stepper.init(positions - 1.0, None, nbrs)
    with wrong_type("velocities", ValueError, "velocities must have"):
        stepper.init(positions, jnp.zeros((3, 3)), nbrs)
    with pytest.raises(ValueError, match="needs a neighbour list"):
        stepper.init(positions)
    langevin = md.LangevinBAOAB(lj, box, dt=0.005, temperature=1.0)
    state = langevin.init(positions, None, nbrs)
    with pytest.raises(ValueError, match="PRNG key"):
        langevin.step(state)
    with pytest.raises(ValueError, match="dt must be positive"):
        md.VelocityVerlet(lj, box, dt=-0.1)
    other, _ = perturbed_fcc(5, seed=3)
    with pytest.raises(ValueError, match="built for 500 atoms"):
        stepper.init(other[:400], None, nbrs)


def test_overlapping_atoms_with_finite_energy_are_rejected_naming_the_pair(fcc500):
    """Probe row 52: two atoms 0.05 sigma apart have a finite energy (1e16) and were
    accepted with |F| = 1e15; init now names the pair and the distance."""
    positions, box = fcc500
    close = positions.at[7].set(box.wrap(positions[3] + jnp.array([0.05, 0.0, 0.0])))
    nbrs = md.neighbor_list(close, box, cutoff=2.5)
    stepper = md.VelocityVerlet(md.LennardJones(cutoff=2.5), box, dt=0.005)
    with pytest.raises(hybrax.ConfigurationError, match=r"overlap: atoms 3 and 7 are 0.05 sigma"):
        stepper.init(close, None, nbrs)
    with pytest.raises(hybrax.ConfigurationError, match="velocities are too large for dt"):
        stepper.init(positions, jnp.full(positions.shape, 500.0), nbrs)


@pytest.mark.parametrize(
    "masses", [0.0, -1.0, float("nan"), float("inf"), 1.0 + 1.0j, True, "1", np.array([1, 2])]
)
def test_bad_masses_are_rejected_naming_them(fcc108, masses):
    """Probe row 53: masses 0 / -1 gave NaN or nonsense."""
    _, box = fcc108
    with pytest.raises(hybrax.ConfigurationError, match="masses"):
        md.VelocityVerlet(md.LennardJones(cutoff=2.5), box, dt=0.005, masses=masses)


@pytest.mark.parametrize("count", [10, 3, 109])
def test_masses_of_the_wrong_length_are_rejected_at_init(fcc108, count):
    """Probe row 54: masses (10,) or (3,) for 108 atoms failed with a broadcast TypeError
    at the first step."""
    positions, box = fcc108
    nbrs = md.DenseNeighborList.build(positions, box, cutoff=2.5)
    stepper = md.VelocityVerlet(md.LennardJones(cutoff=2.5), box, dt=0.005, masses=jnp.ones(count))
    with pytest.raises(hybrax.ConfigurationError, match=rf"masses has shape \({count},\).*108"):
        stepper.init(positions, None, nbrs)
    with pytest.raises(hybrax.ConfigurationError, match="masses"):
        md.VelocityVerlet(md.LennardJones(), box, dt=0.005, masses=jnp.ones((108, 1)))


THERMOSTAT_CASES = [
    (md.LangevinBAOAB, {"temperature": -1.0}, "temperature"),
    (md.LangevinBAOAB, {"temperature": 1.0, "friction": -1.0}, "friction"),
    (md.LangevinBAOAB, {"temperature": float("nan")}, "temperature"),
    (md.NoseHooverChain, {"temperature": 0.0}, "temperature"),
    (md.NoseHooverChain, {"temperature": 1.0, "tau": 0.0}, "tau"),
    (md.NoseHooverChain, {"temperature": 1.0, "tau": float("inf")}, "tau"),
    (md.NoseHooverChain, {"temperature": 1.0, "chain_length": 0}, "chain_length"),
    (md.NoseHooverChain, {"temperature": 1.0, "degrees_of_freedom": -3}, "degrees_of_freedom"),
    (md.BrownianDynamics, {"temperature": -0.5}, "temperature"),
    (md.BrownianDynamics, {"temperature": 1.0, "friction": 0.0}, "friction"),
    (md.VelocityVerlet, {"dt": float("inf")}, "dt"),
    (md.VelocityVerlet, {"on_overflow": "ignore"}, "on_overflow"),
]


@pytest.mark.parametrize("cls, kwargs, name", THERMOSTAT_CASES)
def test_bad_thermostat_parameters_are_rejected_naming_them(fcc108, cls, kwargs, name):
    """Probe row 55: Langevin T < 0 or friction < 0, Nose-Hoover T = 0 or tau = 0 were
    accepted and gave NaN."""
    _, box = fcc108
    kwargs = {"dt": 0.005, **kwargs}
    with pytest.raises(hybrax.ConfigurationError, match=name):
        cls(md.LennardJones(cutoff=2.5), box, **kwargs)


def test_traced_bad_temperature_is_caught_at_run_time(fcc108):
    _, box = fcc108

    @eqx.filter_jit
    def noise_scale(temperature):
        stepper = md.LangevinBAOAB(md.LennardJones(), box, dt=0.005, temperature=temperature)
        return jnp.sqrt(stepper.temperature * stepper.friction)

    assert float(noise_scale(jnp.asarray(1.0))) == 1.0
    with pytest.raises(eqx.EquinoxRuntimeError, match="temperature"):
        jax.block_until_ready(noise_scale(jnp.asarray(-1.0)))


def test_energy_and_box_must_be_md_objects(fcc108, wrong_type):
    _, box = fcc108
    with wrong_type("energy", hybrax.ConfigurationError, "energy"):
        md.VelocityVerlet(lambda x: 0.0, box, dt=0.005)
    with wrong_type("box", hybrax.ConfigurationError, "box"):
        md.VelocityVerlet(md.LennardJones(), 10.0, dt=0.005)


def test_init_is_idempotent_and_rejects_extra_arguments_with_a_state(fcc108):
    positions, box = fcc108
    nbrs = md.DenseNeighborList.build(positions, box, cutoff=2.5)
    stepper = md.LangevinBAOAB(md.LennardJones(cutoff=2.5), box, dt=0.005, temperature=1.0)
    state = stepper.init(positions, None, nbrs, key=jax.random.key(0))
    assert stepper.init(state) is state
    with pytest.raises(hybrax.ConfigurationError, match=r"already initialised.*neighbors"):
        stepper.init(state, neighbors=nbrs)
    with pytest.raises(hybrax.ConfigurationError, match=r"already initialised.*key"):
        stepper.init(state, key=jax.random.key(1))
