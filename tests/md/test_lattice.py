import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
import hybrax.md as md


@pytest.mark.parametrize(("kind", "per_cell"), [("fcc", 4), ("bcc", 2), ("sc", 1)])
def test_lattices_have_the_right_density_and_spacing(kind, per_cell):
    positions, box = md.lattice(kind, (3, 4, 5), density=0.8)
    assert positions.shape == (per_cell * 60, 3)
    np.testing.assert_allclose(positions.shape[0] / box.volume, 0.8, rtol=1e-12)
    a = (per_cell / 0.8) ** (1 / 3)
    nearest = {"fcc": a / np.sqrt(2), "bcc": a * np.sqrt(3) / 2, "sc": a}[kind]
    d = box.displacement(positions[:, None], positions[None])
    r = np.sqrt(np.sum(np.asarray(d) ** 2, -1))
    np.fill_diagonal(r, np.inf)
    np.testing.assert_allclose(r.min(), nearest, rtol=1e-12)
    assert np.all(np.asarray(positions) >= 0) and np.all(
        np.asarray(positions) < np.asarray(box.lengths)
    )


def test_in_lj_lattice_energy_matches_lammps():
    """LAMMPS in.lj at step 0: PE/atom -6.773368053 (hard cut-off 2.5)."""
    positions, box = md.lattice("fcc", 10, density=0.8442)
    nbrs = md.neighbor_list(positions, box, cutoff=2.5)
    energy = md.LennardJones(cutoff=2.5, shift=False).energy(positions, nbrs, box)
    np.testing.assert_allclose(float(energy) / 4000, -6.773368053, rtol=1e-9)


def test_maxwell_boltzmann_zero_momentum_exact_temperature():
    masses = jnp.linspace(1.0, 3.0, 1000)
    v = md.maxwell_boltzmann(jax.random.key(0), 1000, 2.5, masses)
    np.testing.assert_allclose(md.momentum(v, masses), 0.0, atol=1e-12)
    np.testing.assert_allclose(md.temperature(v, masses), 2.5, rtol=1e-12)
    raw = md.maxwell_boltzmann(jax.random.key(1), 20000, 1.0, exact=False)
    assert abs(float(md.temperature(raw)) - 1.0) < 0.03


def test_random_packing_has_no_close_pairs():
    box = md.PeriodicBox(6.0)
    positions = md.random_packing(jax.random.key(2), 120, box, min_distance=0.9)
    d = box.displacement(positions[:, None], positions[None])
    r = np.sqrt(np.sum(np.asarray(d) ** 2, -1))
    np.fill_diagonal(r, np.inf)
    assert r.min() > 0.88
    with pytest.raises(ValueError, match="jam"):
        md.random_packing(jax.random.key(2), 1500, box, min_distance=0.9)


def test_lattice_bad_input():
    with pytest.raises(ValueError, match="unknown lattice"):
        md.lattice("hcp", 3, density=1.0)
    with pytest.raises(ValueError, match="exactly one"):
        md.lattice("fcc", 3)
    with pytest.raises(ValueError, match="positive int"):
        md.lattice("fcc", (3, 0, 3), density=1.0)


@pytest.mark.parametrize("count", [0, -3, 2.0, True])
def test_random_packing_needs_a_positive_int_count(count, wrong_type):
    """Probe row 60: random_packing(N=0) raised ZeroDivisionError."""
    if isinstance(count, int):
        raises = pytest.raises(hybrax.ConfigurationError, match="num_atoms")
    else:
        raises = wrong_type("num_atoms", hybrax.ConfigurationError, "num_atoms")
    with raises:
        md.random_packing(jax.random.key(0), count, md.PeriodicBox(6.0))
    with pytest.raises(hybrax.ConfigurationError, match="min_distance"):
        md.random_packing(jax.random.key(0), 10, md.PeriodicBox(6.0), min_distance=-0.9)


@pytest.mark.parametrize("temperature", [-1.0, float("nan"), float("inf"), 1j, "1"])
def test_maxwell_boltzmann_rejects_bad_temperatures(temperature, wrong_type):
    """Probe row 55: maxwell_boltzmann(temperature=-1) gave NaN velocities."""
    if isinstance(temperature, str):
        raises = wrong_type("temperature", hybrax.ConfigurationError, "temperature")
    else:
        raises = pytest.raises(hybrax.ConfigurationError, match="temperature")
    with raises:
        md.maxwell_boltzmann(jax.random.key(0), 8, temperature)


def test_maxwell_boltzmann_at_zero_temperature_is_at_rest():
    v = md.maxwell_boltzmann(jax.random.key(0), 8, 0.0)
    np.testing.assert_array_equal(v, 0.0)
    with pytest.raises(hybrax.ConfigurationError, match="masses"):
        md.maxwell_boltzmann(jax.random.key(0), 8, 1.0, masses=-1.0)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"density": -1.0}, "density"), ({"density": float("nan")}, "density"),
     ({"lattice_constant": float("inf")}, "lattice_constant")],
)  # fmt: skip
def test_lattice_rejects_bad_sizes(kwargs, name):
    with pytest.raises(hybrax.ConfigurationError, match=name):
        md.lattice("fcc", 3, **kwargs)
