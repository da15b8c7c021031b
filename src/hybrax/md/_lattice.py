"""Initial configurations: crystal lattices, random packings, Maxwell–Boltzmann velocities."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from hybrax.core import ConfigurationError, check_parameter

from ._neighbors import _static_length
from ._space import PeriodicBox

__all__ = ["lattice", "maxwell_boltzmann", "random_packing"]

_BASES = {
    "sc": np.array([[0.0, 0.0, 0.0]]),
    "bcc": np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]),
    "fcc": np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]]),
}
_ALIASES = {"simple_cubic": "sc", "simple-cubic": "sc", "cubic": "sc"}


def lattice(
    kind: str,
    cells: int | tuple[int, int, int],
    *,
    density: float | None = None,
    lattice_constant: float | None = None,
    dtype=None,
) -> tuple[Float[Array, "N 3"], PeriodicBox]:
    """A perfect cubic crystal filling a periodic box.

    Parameters
    ----------
    kind
        ``"fcc"`` (4 atoms per cell), ``"bcc"`` (2) or ``"sc"`` / ``"simple_cubic"`` (1).
    cells
        Unit cells along x, y, z (an int for a cube).
    density
        Number density (sigma^-3); sets the lattice constant ``a = (atoms per cell /
        density)^(1/3)`` like LAMMPS ``lattice fcc 0.8442``. Give this or
        ``lattice_constant``.
    lattice_constant
        Cubic cell edge ``a`` (sigma).
    dtype
        Positions' dtype (default: JAX's default float).

    Returns
    -------
    positions, box
        ``(N, 3)`` positions (ordered cell by cell, x fastest) and the `PeriodicBox`.

    Examples
    --------
    >>> import hybrax.md as md
    >>> positions, box = md.lattice("fcc", 10, density=0.8442)  # LAMMPS in.lj, 4000 atoms
    >>> positions.shape
    (4000, 3)
    """
    key = _ALIASES.get(kind, kind) if isinstance(kind, str) else None
    if key not in _BASES:
        raise ConfigurationError(f"unknown lattice {kind!r}; choose one of 'fcc', 'bcc', 'sc'")
    cells = (cells,) * 3 if _is_int(cells) else cells
    try:
        cells = tuple(cells)
    except TypeError:
        cells = (cells,)
    if len(cells) != 3 or not all(_is_int(c) and c >= 1 for c in cells):
        raise ConfigurationError(
            f"cells must be a positive int or three positive ints, got {cells!r}"
        )
    cells = tuple(int(c) for c in cells)
    basis = _BASES[key]
    if (density is None) == (lattice_constant is None):
        raise ConfigurationError("give exactly one of density= or lattice_constant=")
    if density is not None:
        density = _static_length(density, "density", positive=True, example="density=0.8442")
        a = (len(basis) / density) ** (1.0 / 3.0)
    else:
        a = _static_length(
            lattice_constant, "lattice_constant", positive=True, example="lattice_constant=1.5"
        )
    grid = np.stack(np.meshgrid(*(np.arange(c) for c in cells), indexing="ij"), axis=-1).reshape(
        -1, 1, 3
    )
    grid = grid[np.lexsort((grid[:, 0, 0], grid[:, 0, 1], grid[:, 0, 2]))]
    positions = ((grid + basis[None]).reshape(-1, 3)) * a
    dtype = dtype or jnp.result_type(float)
    lengths = np.asarray(cells, np.float64) * a
    return jnp.asarray(positions, dtype), PeriodicBox(jnp.asarray(lengths, dtype))


def maxwell_boltzmann(
    key: PRNGKeyArray,
    num_atoms: int,
    temperature: ArrayLike,
    masses: ArrayLike = 1.0,
    *,
    dtype=None,
    exact: bool = True,
) -> Float[Array, "N 3"]:
    """Random velocities from the Maxwell–Boltzmann distribution with zero total momentum.

    Draws ``v ~ N(0, kT / m)``, removes the centre-of-mass velocity and, with ``exact``
    (default), rescales so the kinetic temperature (``3N - 3`` degrees of freedom) is exactly
    ``temperature``, as LAMMPS ``velocity all create T seed`` does.

    Parameters
    ----------
    key
        PRNG key.
    num_atoms
        ``N``.
    temperature
        ``k_B T`` (epsilon).
    masses
        Scalar or ``(N,)`` masses.
    dtype
        Velocities' dtype (default: JAX's default float).
    exact
        Rescale to the exact temperature.

    Examples
    --------
    >>> import jax, hybrax.md as md
    >>> v = md.maxwell_boltzmann(jax.random.key(87287), 4000, temperature=3.0)
    >>> round(float(md.temperature(v)), 6)
    3.0
    """
    if not (_is_int(num_atoms) and num_atoms >= 2):
        raise ConfigurationError(f"num_atoms must be an int >= 2, got {num_atoms!r}")
    num_atoms = int(num_atoms)
    dtype = dtype or jnp.result_type(float)
    kT = check_parameter(
        temperature, "temperature", nonnegative=True, scalar=True, example="temperature=1.0"
    ).astype(dtype)
    m = check_parameter(masses, "masses", positive=True, example="masses=1.0").astype(dtype)
    if m.ndim not in (0, 1) or (m.ndim == 1 and m.shape[0] != num_atoms):
        raise ConfigurationError(
            f"masses must be a scalar or shape ({num_atoms},), got shape {m.shape}"
        )
    m_col = m[:, None] if m.ndim == 1 else m
    v = jax.random.normal(key, (num_atoms, 3), dtype) / jnp.sqrt(m_col)  # kT = 1
    total_mass = jnp.sum(jnp.broadcast_to(m_col, (num_atoms, 1)))
    v = v - jnp.sum(m_col * v, axis=0) / total_mass
    if exact:  # scale the unit-temperature draw, so kT = 0 gives zeros, not 0 / 0
        current = jnp.sum(m_col * v * v) / (3 * num_atoms - 3)
        return v * jnp.sqrt(kT / current)
    return v * jnp.sqrt(kT)


def random_packing(
    key: PRNGKeyArray,
    num_atoms: int,
    box: PeriodicBox,
    *,
    min_distance: float = 0.9,
    dtype=None,
) -> Float[Array, "N 3"]:
    """Random positions in a periodic box with no two atoms closer than ``min_distance``.

    Uniform random points are pushed apart by minimising soft-sphere repulsion of diameter
    ``min_distance`` with FIRE, so the packing is random but free of overlaps (safe to start
    LJ dynamics from when ``min_distance`` is near 1 sigma).

    Parameters
    ----------
    key
        PRNG key.
    num_atoms
        ``N``.
    box
        The `PeriodicBox`.
    min_distance
        Smallest allowed pair distance (sigma); must be reachable at this density.
    dtype
        Positions' dtype (default: the box's).

    Examples
    --------
    >>> import jax, hybrax.md as md
    >>> box = md.PeriodicBox(8.0)
    >>> positions = md.random_packing(jax.random.key(0), 200, box, min_distance=0.9)
    """
    from ._minimize import minimize
    from ._neighbor_list import neighbor_list
    from ._pair import SoftSphere

    if not isinstance(box, PeriodicBox):
        raise ConfigurationError(f"random_packing needs a PeriodicBox, got {box!r}")
    if not (_is_int(num_atoms) and num_atoms >= 1):
        raise ConfigurationError(
            f"random_packing: num_atoms must be an int >= 1, got {num_atoms!r}"
        )
    num_atoms = int(num_atoms)
    min_distance = _static_length(
        min_distance, "min_distance", positive=True, example="min_distance=0.9"
    )
    dtype = dtype or box.lengths.dtype
    lengths = box.lengths.astype(dtype)
    volume = float(np.prod(np.asarray(lengths)))
    packing = num_atoms * np.pi / 6 * min_distance**3 / volume
    if packing > 0.55:
        raise ConfigurationError(
            f"min_distance={min_distance} at {num_atoms} atoms in volume {volume:.4g} is a "
            f"packing fraction {packing:.2f}; random packings jam above about 0.55. Use a "
            "smaller min_distance or a bigger box (or hybrax.md.lattice)"
        )
    positions = jax.random.uniform(key, (num_atoms, 3), dtype) * lengths
    if num_atoms == 1:
        return positions
    spheres = SoftSphere(epsilon=1.0, sigma=min_distance * 1.02, alpha=2.0)
    nbrs = neighbor_list(positions, box, cutoff=spheres.cutoff, skin=0.3 * min_distance)
    result = minimize(spheres, positions, box, nbrs, force_tolerance=1e-7, max_steps=20_000)
    return box.wrap(result.positions)


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
