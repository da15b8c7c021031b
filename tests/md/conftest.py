"""Shared small systems for the hybrax.md tests (float64 unless a test says otherwise)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax.md as md


def perturbed_fcc(cells: int, *, noise: float = 0.08, seed: int = 0, dtype=jnp.float64):
    """An fcc LJ solid at the LAMMPS in.lj density with small random displacements."""
    positions, box = md.lattice("fcc", cells, density=0.8442, dtype=dtype)
    rng = np.random.default_rng(seed)
    shifted = np.asarray(positions) + rng.normal(0.0, noise, positions.shape)
    return box.wrap(jnp.asarray(shifted, dtype)), box


@pytest.fixture(scope="session")
def fcc500():
    """500 atoms (5^3 fcc cells, box 8.4 sigma): big enough for cell lists."""
    return perturbed_fcc(5)


@pytest.fixture(scope="session")
def fcc108():
    """108 atoms (3^3 fcc cells, box 5.04 sigma): dense (all-pairs) lists."""
    return perturbed_fcc(3)


@pytest.fixture(scope="session")
def key():
    return jax.random.key(0)
