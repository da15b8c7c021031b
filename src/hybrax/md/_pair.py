"""Pair potentials: Lennard-Jones (shifted and switched), Morse, soft sphere, any phi(r)."""

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from equinox import AbstractVar
from jaxtyping import Array, Float, Int

from hybrax.core import ConfigurationError, check_parameter, concrete_or_none, parameter

from ._energy import AbstractEnergy
from ._neighbors import AbstractNeighborList, _static_length
from ._space import AbstractBox

__all__ = [
    "AbstractPairEnergy",
    "LennardJones",
    "Morse",
    "PairPotential",
    "SmoothLennardJones",
    "SoftSphere",
]


def _param(name: str, **constraints):
    """A pair parameter: a scalar or an (S, S) matrix over species pairs, checked by
    `hybrax.core.parameter` (NaN, inf, complex, bool, str, integer arrays and wrong signs
    are a `ConfigurationError` naming it; traced values are checked at run time)."""
    return parameter(name, **constraints)


def _species(value) -> Array | None:
    if value is None:
        return None
    try:
        return jnp.asarray(value)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(
            f"species must be an (N,) integer array (one species index per atom), got {value!r}"
        ) from error


class AbstractPairEnergy(AbstractEnergy):
    """``U = sum_{i<j, r_ij < cutoff} phi(r_ij)``, summed over a neighbour list.

    Subclasses implement ``pair_energy(r2, species_i, species_j)``, the pair energy as a
    function of the squared distance (elementwise). Parameters are scalars, or
    ``(S, S)`` symmetric matrices indexed by the species of the two atoms when the term
    has ``species`` (an ``(N,)`` integer array).

    Forces are the exact analytic derivative ``F_i = -sum_j 2 phi'(r_ij^2) (r_i - r_j)``
    (``phi'`` by forward-mode differentiation of ``pair_energy``), computed in the same
    pass as the energy; they equal ``-jax.grad(energy)`` to round-off.
    """

    cutoff: AbstractVar[float]
    species: AbstractVar[Int[Array, " N"] | None]

    @abc.abstractmethod
    def pair_energy(self, r2: Array, species_i: Array | None, species_j: Array | None) -> Array:
        """``phi`` at squared distance ``r2`` (elementwise; ``r2 < cutoff**2``)."""

    def _param(self, value: Array, species_i, species_j, like: Array) -> Array:
        value = jnp.asarray(value).astype(like.dtype)
        if value.ndim == 2:
            if species_i is None:
                raise ConfigurationError(
                    f"{type(self).__name__}: per-species-pair parameters (shape "
                    f"{value.shape}) need species=...: an (N,) integer array"
                )
            return value[species_i, species_j]
        return value

    @property
    def required_cutoff(self) -> float:
        return self.cutoff

    def _energy_terms(self, r2, species_i, species_j):
        return (self.pair_energy(r2, species_i, species_j),), ()

    def _force_terms(self, r2, species_i, species_j):
        phi, dphi = jax.jvp(
            lambda x: self.pair_energy(x, species_i, species_j), (r2,), (jnp.ones_like(r2),)
        )
        return (phi,), (-2.0 * dphi,)

    def _neighbors(self, neighbors: AbstractNeighborList | None) -> AbstractNeighborList:
        if not isinstance(neighbors, AbstractNeighborList):
            raise ConfigurationError(
                f"{type(self).__name__} is a pair potential and needs a neighbour list: "
                "build one with hybrax.md.neighbor_list(positions, box, cutoff) "
                "(hybrax.md.DenseNeighborList.build(...) for all pairs)"
            )
        return neighbors

    def energy(self, positions, neighbors, box: AbstractBox):
        (total,) = self._neighbors(neighbors).pair_total(
            positions, box, self._energy_terms, cutoff=self.cutoff, species=self.species
        )
        return total

    def energy_and_forces(self, positions, neighbors, box: AbstractBox):
        (energy,), (forces,) = self._neighbors(neighbors).pair_sums(
            positions,
            box,
            self._force_terms,
            cutoff=self.cutoff,
            species=self.species,
            per_atom_scalars=False,
        )
        return energy, forces

    def forces(self, positions, neighbors, box: AbstractBox):
        return self.energy_and_forces(positions, neighbors, box)[1]

    def per_atom_energy(
        self, positions: Float[Array, "N 3"], neighbors: AbstractNeighborList, box: AbstractBox
    ) -> Float[Array, " N"]:
        """Each atom's share (half of each of its pairs), shape ``(N,)``."""
        (phi,), _ = self._neighbors(neighbors).pair_sums(
            positions, box, self._energy_terms, cutoff=self.cutoff, species=self.species
        )
        return 0.5 * phi


def _check_species(name: str, species, params: dict) -> Array | None:
    matrices = {k: v for k, v in params.items() if jnp.ndim(v) == 2}
    for key, value in params.items():
        shape = jnp.shape(value)
        if len(shape) not in (0, 2) or (len(shape) == 2 and shape[0] != shape[1]):
            raise ConfigurationError(
                f"{name}: {key} must be a scalar or a square (S, S) matrix over species "
                f"pairs, got shape {shape}"
            )
    if species is None:
        if matrices:
            raise ConfigurationError(
                f"{name}: {', '.join(matrices)} given per species pair (shape "
                f"{jnp.shape(next(iter(matrices.values())))}) but species=None; pass "
                "species=(N,) integer array"
            )
        return None
    species = jnp.asarray(species)
    if species.ndim != 1 or not jnp.issubdtype(species.dtype, jnp.integer):
        raise ConfigurationError(
            f"{name}: species must be a 1-D integer array (one species index per atom), got "
            f"shape {species.shape} and dtype {species.dtype}"
        )
    sizes = {jnp.shape(v)[0] for v in matrices.values()}
    if len(sizes) > 1:
        raise ConfigurationError(f"{name}: species matrices disagree in size: {sorted(sizes)}")
    concrete = concrete_or_none(species)
    if concrete is None or concrete.size == 0:  # traced
        return species
    top, bottom = int(np.max(concrete)), int(np.min(concrete))
    num_species = sizes.pop() if sizes else 1
    if bottom < 0 or top >= num_species:
        raise ConfigurationError(
            f"{name}: species values must lie in [0, {num_species}) to index the "
            f"({num_species}, {num_species}) parameter matrices, got values from {bottom} to "
            f"{top}"
        )
    return species


def _cutoff(value, name: str = "cutoff") -> float:
    return _static_length(value, name, positive=True, example=f"{name}=2.5 (sigma)")


class LennardJones(AbstractPairEnergy):
    """Lennard-Jones 12-6, truncated at ``cutoff`` and (by default) shifted to zero there.

    .. math::
        \\phi(r) = 4 \\epsilon [(\\sigma / r)^{12} - (\\sigma / r)^6] - \\phi_{LJ}(r_c),
        \\quad r < r_c

    With ``shift=False`` the potential is plainly truncated, as LAMMPS ``pair_style lj/cut``
    (energy then jumps when pairs cross the cut-off, so NVE drifts more).

    Parameters
    ----------
    epsilon, sigma
        Well depth (epsilon) and size (sigma): scalars, or ``(S, S)`` matrices per species
        pair (then give ``species``). Differentiable leaves. Defaults 1.
    cutoff
        Cut-off radius (static), default 2.5 sigma.
    shift
        Subtract ``phi(cutoff)`` so the energy is continuous (static, default True).
    species
        ``(N,)`` integer species per atom, or None.

    Examples
    --------
    >>> import hybrax.md as md
    >>> positions, box = md.lattice("fcc", (4, 4, 4), density=0.8442)
    >>> nbrs = md.neighbor_list(positions, box, cutoff=2.5)
    >>> lj = md.LennardJones(cutoff=2.5, shift=False)
    >>> round(float(lj.energy(positions, nbrs, box)) / 256, 4)
    -6.7734
    """

    epsilon: Float[Array, "..."] = _param("epsilon", example="epsilon=1.0")
    sigma: Float[Array, "..."] = _param("sigma", positive=True, example="sigma=1.0")
    cutoff: float = eqx.field(static=True, default=2.5)
    shift: bool = eqx.field(static=True, default=True)
    species: Int[Array, " N"] | None = eqx.field(default=None, converter=_species)

    def __init__(self, epsilon=1.0, sigma=1.0, cutoff=2.5, shift=True, species=None):
        self.epsilon, self.sigma = epsilon, sigma
        self.cutoff, self.shift = _cutoff(cutoff), bool(shift)
        self.species = species

    def __check_init__(self):
        _check_species("LennardJones", self.species, {"epsilon": self.epsilon, "sigma": self.sigma})

    def pair_energy(self, r2, species_i, species_j):
        epsilon = self._param(self.epsilon, species_i, species_j, r2)
        sigma = self._param(self.sigma, species_i, species_j, r2)
        s2 = sigma * sigma
        x6 = (s2 / r2) ** 3
        phi = 4.0 * epsilon * x6 * (x6 - 1.0)
        if self.shift:
            c6 = (s2 / self.cutoff**2) ** 3
            phi = phi - 4.0 * epsilon * c6 * (c6 - 1.0)
        return phi


class SmoothLennardJones(AbstractPairEnergy):
    """Lennard-Jones multiplied by a smooth switch that takes it to zero at ``cutoff``.

    .. math::
        \\phi(r) = \\phi_{LJ}(r) S(r), \\quad
        S = \\frac{(r_c^2 - r^2)^2 (r_c^2 + 2 r^2 - 3 r_{on}^2)}{(r_c^2 - r_{on}^2)^3}
        \\text{ for } r_{on} \\le r < r_c

    (``S = 1`` below ``onset``). Energy and force are continuous, which keeps NVE energy
    drift small; jax-md's default LJ uses this switch with onset 2.0 and cut-off 2.5.

    Parameters
    ----------
    epsilon, sigma
        As in `LennardJones` (scalars or per-species matrices; differentiable).
    onset, cutoff
        Switching range (sigma, static), defaults 2.0 and 2.5.
    species
        ``(N,)`` integer species per atom, or None.

    Examples
    --------
    >>> import hybrax.md as md
    >>> lj = md.SmoothLennardJones(onset=2.0, cutoff=2.5)
    """

    epsilon: Float[Array, "..."] = _param("epsilon", example="epsilon=1.0")
    sigma: Float[Array, "..."] = _param("sigma", positive=True, example="sigma=1.0")
    onset: float = eqx.field(static=True, default=2.0)
    cutoff: float = eqx.field(static=True, default=2.5)
    species: Int[Array, " N"] | None = eqx.field(default=None, converter=_species)

    def __init__(self, epsilon=1.0, sigma=1.0, onset=2.0, cutoff=2.5, species=None):
        self.epsilon, self.sigma = epsilon, sigma
        self.onset, self.cutoff = _cutoff(onset, "onset"), _cutoff(cutoff)
        if not self.onset < self.cutoff:
            raise ConfigurationError(f"need 0 < onset < cutoff, got onset={onset}, cutoff={cutoff}")
        self.species = species

    def __check_init__(self):
        _check_species(
            "SmoothLennardJones", self.species, {"epsilon": self.epsilon, "sigma": self.sigma}
        )

    def pair_energy(self, r2, species_i, species_j):
        epsilon = self._param(self.epsilon, species_i, species_j, r2)
        sigma = self._param(self.sigma, species_i, species_j, r2)
        x6 = (sigma * sigma / r2) ** 3
        phi = 4.0 * epsilon * x6 * (x6 - 1.0)
        rc2, ron2 = self.cutoff**2, self.onset**2
        switch = (rc2 - r2) ** 2 * (rc2 + 2.0 * r2 - 3.0 * ron2) / (rc2 - ron2) ** 3
        return phi * jnp.where(r2 < ron2, 1.0, switch)


class Morse(AbstractPairEnergy):
    """Morse potential, truncated and shifted at ``cutoff``.

    .. math::
        \\phi(r) = \\epsilon [(1 - e^{-\\alpha (r - r_0)})^2 - 1] - \\phi(r_c)

    Parameters
    ----------
    epsilon, alpha, r0
        Well depth (epsilon), stiffness (1/sigma) and equilibrium distance (sigma); scalars
        or per-species matrices; differentiable. Defaults 1, 5, 1.
    cutoff
        Cut-off (static), default 2.5.
    shift
        Subtract ``phi(cutoff)`` (static, default True).
    species
        ``(N,)`` integer species per atom, or None.

    Examples
    --------
    >>> import hybrax.md as md
    >>> morse = md.Morse(epsilon=1.0, alpha=5.0, r0=1.0, cutoff=2.0)
    """

    epsilon: Float[Array, "..."] = _param("epsilon", example="epsilon=1.0")
    alpha: Float[Array, "..."] = _param("alpha", example="alpha=5.0")
    r0: Float[Array, "..."] = _param("r0", nonnegative=True, example="r0=1.0")
    cutoff: float = eqx.field(static=True, default=2.5)
    shift: bool = eqx.field(static=True, default=True)
    species: Int[Array, " N"] | None = eqx.field(default=None, converter=_species)

    def __init__(self, epsilon=1.0, alpha=5.0, r0=1.0, cutoff=2.5, shift=True, species=None):
        self.epsilon, self.alpha, self.r0 = epsilon, alpha, r0
        self.cutoff, self.shift = _cutoff(cutoff), bool(shift)
        self.species = species

    def __check_init__(self):
        _check_species(
            "Morse", self.species, {"epsilon": self.epsilon, "alpha": self.alpha, "r0": self.r0}
        )

    def _phi(self, r, epsilon, alpha, r0):
        return epsilon * ((1.0 - jnp.exp(-alpha * (r - r0))) ** 2 - 1.0)

    def pair_energy(self, r2, species_i, species_j):
        params = [
            self._param(p, species_i, species_j, r2) for p in (self.epsilon, self.alpha, self.r0)
        ]
        phi = self._phi(jnp.sqrt(r2), *params)
        if self.shift:
            phi = phi - self._phi(self.cutoff, *params)
        return phi


class SoftSphere(AbstractPairEnergy):
    """Purely repulsive soft spheres: ``phi(r) = epsilon / alpha (1 - r / sigma)^alpha``
    for ``r < sigma``, zero beyond (``alpha = 2``: harmonic spheres).

    Parameters
    ----------
    epsilon, sigma
        Strength (epsilon) and diameter (sigma); scalars or per-species matrices;
        differentiable. Defaults 1.
    alpha
        Exponent (static), default 2.
    cutoff
        Static bound on the interaction range, at least the largest ``sigma``; defaults to
        the largest ``sigma`` given.
    species
        ``(N,)`` integer species per atom, or None.

    Examples
    --------
    >>> import hybrax.md as md
    >>> spheres = md.SoftSphere(epsilon=1.0, sigma=1.0)
    """

    epsilon: Float[Array, "..."] = _param("epsilon", example="epsilon=1.0")
    sigma: Float[Array, "..."] = _param("sigma", positive=True, example="sigma=1.0")
    alpha: float = eqx.field(static=True, default=2.0)
    cutoff: float = eqx.field(static=True, default=1.0)
    species: Int[Array, " N"] | None = eqx.field(default=None, converter=_species)

    def __init__(self, epsilon=1.0, sigma=1.0, alpha=2.0, cutoff=None, species=None):
        self.epsilon, self.sigma = epsilon, sigma
        self.alpha = _static_length(alpha, "alpha", positive=True, example="alpha=2.0")
        if cutoff is None:
            concrete = concrete_or_none(check_parameter(sigma, "sigma", positive=True))
            if concrete is None:  # traced sigma
                raise ConfigurationError(
                    "SoftSphere: pass cutoff= (at least the largest sigma) when sigma is traced"
                )
            cutoff = float(np.max(concrete))
        self.cutoff = _cutoff(cutoff)
        self.species = species

    def __check_init__(self):
        _check_species("SoftSphere", self.species, {"epsilon": self.epsilon, "sigma": self.sigma})

    def pair_energy(self, r2, species_i, species_j):
        epsilon = self._param(self.epsilon, species_i, species_j, r2)
        sigma = self._param(self.sigma, species_i, species_j, r2)
        overlap = jnp.maximum(1.0 - jnp.sqrt(r2) / sigma, 0.0)
        return epsilon / self.alpha * overlap**self.alpha


class PairPotential(AbstractPairEnergy):
    """Any pair potential given as a function of the distance ``r``.

    ``function(r)`` maps distances (an array) to pair energies elementwise. It may be an
    `equinox.Module` (for example a small network wrapped to act elementwise), whose array
    leaves are then differentiable parameters like epsilon and sigma.

    Parameters
    ----------
    function
        ``phi(r)`` (epsilon), elementwise.
    cutoff
        Cut-off (sigma, static).
    shift
        Subtract ``function(cutoff)`` (static, default True).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import hybrax.md as md
    >>> yukawa = md.PairPotential(lambda r: jnp.exp(-2.0 * r) / r, cutoff=3.0)
    """

    function: Callable[[Array], Array]
    cutoff: float = eqx.field(static=True)
    shift: bool = eqx.field(static=True, default=True)
    species: None = None

    def __init__(self, function: Callable[[Array], Array], cutoff: float, shift: bool = True):
        if not callable(function):
            raise ConfigurationError(f"PairPotential: function must be callable, got {function!r}")
        self.function = function
        self.cutoff, self.shift = _cutoff(cutoff), bool(shift)
        self.species = None

    def pair_energy(self, r2, species_i, species_j):
        phi = self.function(jnp.sqrt(r2))
        if self.shift:
            phi = phi - self.function(jnp.asarray(self.cutoff, r2.dtype))
        return phi
