import jax
import jax.numpy as jnp
import numpy as np

import hybrax.md as md


def test_rdf_of_ideal_gas_is_one_and_fcc_peaks_at_nearest_neighbour():
    box = md.PeriodicBox(12.0)
    gas = jax.random.uniform(jax.random.key(0), (2000, 3), jnp.float64) * 12.0
    r, g = md.radial_distribution(gas, box, r_max=5.0, num_bins=25)
    assert abs(float(jnp.mean(g[5:])) - 1.0) < 0.03
    positions, box = md.lattice("fcc", 4, density=0.8442)
    r, g = md.radial_distribution(positions, box, r_max=2.0, num_bins=80)
    a = (4 / 0.8442) ** (1 / 3)
    assert abs(float(r[jnp.argmax(g)]) - a / np.sqrt(2)) < 2.0 / 80
    _, smooth_g = md.radial_distribution(positions, box, r_max=2.0, num_bins=80, smoothing=0.05)
    np.testing.assert_allclose(jnp.sum(smooth_g * r**2), jnp.sum(g * r**2), rtol=0.05)
    grad = jax.grad(
        lambda p: md.radial_distribution(p, box, r_max=2.0, num_bins=40, smoothing=0.05)[1][20]
    )(positions)
    assert np.all(np.isfinite(grad))


def test_msd_unwraps_ballistic_motion():
    box = md.PeriodicBox(5.0)
    start = jnp.array([[4.9, 0.1, 2.5], [1.0, 1.0, 1.0]])
    velocity = jnp.array([[0.3, -0.2, 0.0], [0.0, 0.0, 0.4]])
    times = jnp.arange(40, dtype=jnp.float64)
    trajectory = box.wrap(start[None] + times[:, None, None] * velocity[None])
    msd = md.mean_squared_displacement(trajectory, box)
    expected = times**2 * jnp.mean(jnp.sum(velocity**2, -1))
    np.testing.assert_allclose(msd, expected, atol=1e-10)


def test_ideal_gas_pressure_and_temperature():
    box = md.PeriodicBox(10.0)
    positions = jax.random.uniform(jax.random.key(1), (400, 3), jnp.float64) * 10.0
    v = md.maxwell_boltzmann(jax.random.key(2), 400, 1.7)
    nbrs = md.DenseNeighborList.build(positions, box, cutoff=1.0)
    nothing = md.SoftSphere(epsilon=0.0, sigma=1.0)
    p = md.pressure(nothing, positions, box, nbrs, velocities=v)
    # P = 2 KE / (3V) = (N - 1) kT / V with 3N - 3 degrees of freedom
    np.testing.assert_allclose(p, (400 - 1) * 1.7 / 1000.0, rtol=1e-10)
    np.testing.assert_allclose(md.kinetic_energy(v), 1.5 * 399 * 1.7, rtol=1e-10)
