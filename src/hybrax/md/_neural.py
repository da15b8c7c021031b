"""Neural MD potentials: a learned pair potential and a SchNet-style message-passing energy.

Both are `hybrax.md` energies: they add to analytic ones (``LennardJones() +
NeuralPairPotential(...)``), their forces are ``-grad`` of the energy, and they run through
the MD neighbour list (cell windows or all pairs) and every MD integrator. Distances enter
through a radial basis of ``x = r / cutoff`` (`hybrax.nn.BesselBasis`,
`hybrax.nn.GaussianBasis`) times a smooth envelope that takes energy and force to zero at
the cut-off, so nothing jumps when pairs cross it. md builds on nn (networks, radial
features); nn knows nothing of md.
"""

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from hybrax.core import ConfigurationError, check_parameter
from hybrax.nn import (
    MLP,
    AbstractEnvelope,
    AbstractRadialBasis,
    BesselBasis,
    GaussianBasis,
    PolynomialEnvelope,
)

from ._dense_list import DenseNeighborList
from ._energy import AbstractEnergy
from ._neighbors import AbstractNeighborList
from ._pair import AbstractPairEnergy
from ._space import AbstractBox

__all__ = ["NeuralPairPotential", "SchNetPotential"]


def _default_float():
    """JAX's default floating dtype (float64 when ``jax_enable_x64`` is on)."""
    return jnp.zeros(()).dtype


def _check_positive_int(name: str, argument: str, value, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{name}: {argument} must be an int >= {minimum}, got {value!r}")


class _RadialSetup(NamedTuple):
    """The checked set-up both neural potentials share: cut-off, radial features,
    envelope and species."""

    cutoff: float
    basis: AbstractRadialBasis
    envelope: AbstractEnvelope
    species: Array | None
    num_species: int


def _radial_setup(name, cutoff, basis, envelope, default_basis, species, num_species):
    cutoff = _check_cutoff(name, cutoff)
    basis = default_basis if basis is None else basis
    envelope = PolynomialEnvelope(6) if envelope is None else envelope
    if not isinstance(basis, AbstractRadialBasis):
        raise ConfigurationError(
            f"{name}: basis must be a radial basis (e.g. hybrax.nn.BesselBasis(16)), got {basis!r}"
        )
    if not isinstance(envelope, AbstractEnvelope):
        raise ConfigurationError(
            f"{name}: envelope must be an envelope (e.g. hybrax.nn.PolynomialEnvelope(6)), "
            f"got {envelope!r}"
        )
    species, num_species = _check_species(name, species, num_species)
    return _RadialSetup(cutoff, basis, envelope, species, num_species)


def _dense(mlp: MLP, x: Array) -> Array:
    """``mlp`` applied along the last axis of ``x`` (any leading shape) as matrix products."""
    for layer in mlp.layers[:-1]:
        x = mlp.activation(x @ layer.weight.T + layer.bias)
    last = mlp.layers[-1]
    return mlp.final_activation(x @ last.weight.T + last.bias)


def _check_cutoff(name: str, cutoff) -> float:
    cutoff = float(cutoff)
    if not cutoff > 0:
        raise ConfigurationError(f"{name}: cutoff must be positive (sigma), got {cutoff}")
    return cutoff


def _check_species(name: str, species, num_species: int | None) -> tuple[Array | None, int]:
    """Validate ``species`` and return it with the number of species (inferred if None)."""
    if num_species is not None:
        _check_positive_int(name, "num_species", num_species)
    if species is None:
        return None, 1 if num_species is None else num_species
    species = jnp.asarray(species)
    if species.ndim != 1 or not jnp.issubdtype(species.dtype, jnp.integer):
        raise ConfigurationError(
            f"{name}: species must be a 1-D integer array (one species index per atom), got "
            f"shape {species.shape} and dtype {species.dtype}"
        )
    values = np.asarray(species)
    top = int(values.max()) if values.size else 0
    if num_species is None:
        num_species = top + 1
    if values.size and (values.min() < 0 or top >= num_species):
        raise ConfigurationError(
            f"{name}: species values must lie in [0, {num_species}), got values from "
            f"{int(values.min())} to {top}; set num_species to the number of species"
        )
    return species, num_species


def _check_dtype(name: str, network_dtype, like: Array) -> None:
    if jnp.dtype(network_dtype) != jnp.result_type(like):
        raise ConfigurationError(
            f"{name}: the network's parameters are {jnp.dtype(network_dtype)} but the positions "
            f"are {jnp.result_type(like)}; build the potential with dtype=positions.dtype"
        )


def _pair_index_table(num_species: int) -> np.ndarray:
    """``(S, S)`` symmetric table of the output channel of each unordered species pair."""
    table = np.zeros((num_species, num_species), np.int32)
    k = 0
    for a in range(num_species):
        for b in range(a, num_species):
            table[a, b] = table[b, a] = k
            k += 1
    return table


def _neighbors(name: str, neighbors) -> AbstractNeighborList:
    if not isinstance(neighbors, AbstractNeighborList):
        raise ConfigurationError(
            f"{name} needs a neighbour list: build one with "
            "hybrax.md.neighbor_list(positions, box, cutoff)"
        )
    return neighbors


class NeuralPairPotential(AbstractPairEnergy):
    """A learned pair potential ``U = sum_{i<j} phi(r_ij)`` with

    .. math::
        \\phi_{ab}(r) = s\\, u(r / r_c)\\, \\mathrm{MLP}_{ab}(B(r / r_c))

    a network ``MLP`` of the radial features ``B`` (a `BesselBasis` by default) times a
    smooth envelope ``u`` (`PolynomialEnvelope` by default), so that ``phi`` and its force
    vanish at the cut-off ``r_c``; ``s`` is a fixed energy scale. With species, the network
    has one output per unordered species pair ``(a, b)`` (``S (S + 1) / 2`` outputs) and
    ``phi_ab = phi_ba``.

    A network only knows the distances it was trained on: below the closest pair distance of
    the data its ``phi`` is an extrapolation, bounded (the features stay finite as
    ``r -> 0``) and often soft or even attractive, so that in a long simulation two atoms can
    fuse. ``core_radius`` adds a fixed repulsive prior, a short-range wall (as the ZBL prior
    of NequIP and Allegro),

    .. math::
        \\phi_{ab}(r) \\mathrel{+}= s\\, u(r / r_c)\\, (r_{core} / r)^{12},

    positive and monotonically decreasing (both factors are), smooth, vanishing at the
    cut-off with the envelope, and growing without bound as ``r -> 0`` faster than any
    bounded network output can cancel it. The network then learns the difference to the
    data. Choose ``r_core`` at or a little below the closest approach in the data (the
    wall is ``s`` at ``r = r_core``, ``4096 s`` at ``r_core / 2``); it is evaluated
    exactly per pair, also with ``num_knots``.

    It is an ordinary `hybrax.md.AbstractPairEnergy`: it sums over the MD neighbour list
    (cell windows or all pairs), its forces are the exact derivative of the energy (one
    forward-mode derivative of ``phi`` per pair, in the same pass), it adds to analytic
    energies (``md.LennardJones(epsilon=0.8) + NeuralPairPotential(...)``), and its weights
    are array leaves that `jax.grad`, `hybrax.hybrid.fit` and checkpoints reach. Energies
    in epsilon, distances in sigma (reduced LJ units).

    Parameters
    ----------
    cutoff
        Cut-off radius ``r_c`` (sigma, static), default 2.5.
    key
        PRNG key for the network's initial weights.
    num_knots
        None (default): evaluate the network at every pair. An int ``K``: evaluate it at
        ``K`` distances ``r_c k / K`` (``k = 1..K``, values and slopes, rebuilt from the
        weights at every call, so gradients reach them) and interpolate between them with
        cubic Hermite polynomials; energy and force stay exactly consistent and continuous,
        and with ``K = 1024`` they match the network to about ``1e-7`` relative. A pair then
        costs a table look-up instead of an MLP: at 500 atoms a force evaluation takes
        ~2 ms instead of ~170 ms on one CPU core (float32). Static.
    basis
        Radial features (`hybrax.nn.AbstractRadialBasis`), default ``BesselBasis(16)``.
    envelope
        Cut-off function (`hybrax.nn.AbstractEnvelope`), default ``PolynomialEnvelope(6)``.
    width_size, depth
        Hidden units per layer and number of hidden layers of the MLP, defaults 32 and 2.
    activation
        Hidden nonlinearity, default `jax.nn.silu` (smooth, so forces are smooth).
    energy_scale
        ``s`` (epsilon, static), default 1.
    core_radius
        ``r_core`` of the repulsive prior ``s u(r / r_c) (r_core / r)^12`` (sigma, static,
        positive and below the cut-off), or None (default): no prior, ``phi`` is the network
        alone. For a liquid like Lennard-Jones at ``T ~ 1`` a value near ``0.9 sigma``.
    species
        ``(N,)`` integer species per atom, or None (one species).
    num_species
        ``S`` (static); default: ``max(species) + 1`` (1 without species).
    dtype
        Parameter dtype (default: JAX's default float); it must match the positions'.

    Examples
    --------
    >>> import jax
    >>> import hybrax.md as md
        >>> net = md.NeuralPairPotential(2.5, key=jax.random.key(0), core_radius=0.9)
    >>> bool(net.pair_potential(0.5) > 1000.0)  # the wall, whatever the network says
    True
    >>> positions, box = md.lattice("fcc", 3, density=0.8442)
    >>> nbrs = md.neighbor_list(positions, box, cutoff=2.5)
    >>> total = md.LennardJones(epsilon=0.8) + md.NeuralPairPotential(2.5, key=jax.random.key(0))
    >>> energy, forces = total.energy_and_forces(positions, nbrs, box)
    >>> forces.shape
    (108, 3)
    """

    mlp: MLP
    basis: AbstractRadialBasis
    envelope: AbstractEnvelope
    cutoff: float = eqx.field(static=True)
    energy_scale: float = eqx.field(static=True)
    num_knots: int | None = eqx.field(static=True)
    core_radius: float | None = eqx.field(static=True)
    num_species: int = eqx.field(static=True)
    species: Int[Array, " N"] | None

    def __init__(
        self,
        cutoff: float = 2.5,
        *,
        key: PRNGKeyArray,
        num_knots: int | None = None,
        basis: AbstractRadialBasis | None = None,
        envelope: AbstractEnvelope | None = None,
        width_size: int = 32,
        depth: int = 2,
        activation: Callable[[Array], Array] = jax.nn.silu,
        energy_scale: float = 1.0,
        core_radius: float | None = None,
        species: Int[Array, " N"] | None = None,
        num_species: int | None = None,
        dtype=None,
    ):
        setup = _radial_setup(
            "NeuralPairPotential", cutoff, basis, envelope, BesselBasis(16), species, num_species
        )
        self.cutoff, self.basis, self.envelope = setup.cutoff, setup.basis, setup.envelope
        self.species, self.num_species = setup.species, setup.num_species
        num_pairs = self.num_species * (self.num_species + 1) // 2
        self.mlp = MLP(
            self.basis.num_basis,
            num_pairs,
            width_size,
            depth,
            activation,
            key=key,
            dtype=dtype or _default_float(),
        )
        self.energy_scale = float(energy_scale)
        if num_knots is not None:
            _check_positive_int("NeuralPairPotential", "num_knots", num_knots, minimum=4)
        self.num_knots = num_knots
        if core_radius is not None:
            core_radius = float(check_parameter(core_radius, "core_radius", positive=True))
            if not core_radius < self.cutoff:
                raise ConfigurationError(
                    f"NeuralPairPotential: core_radius must lie below the cutoff "
                    f"{self.cutoff}, got {core_radius}; use about the closest pair distance "
                    "of the training data, e.g. 0.9 for a Lennard-Jones liquid"
                )
        self.core_radius = core_radius

    def channels(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape pairs"]:
        """``phi`` of every species pair at scaled distances ``x = r / cutoff`` (epsilon),
        evaluated directly with the network: shape ``x.shape + (S (S + 1) / 2,)``."""
        _check_dtype("NeuralPairPotential", self.mlp.dtype, x)
        out = _dense(self.mlp, self.basis(x))
        return self.energy_scale * self.envelope(x)[..., None] * out

    def pair_energy(self, r2: Array, species_i: Array | None, species_j: Array | None) -> Array:
        x = jnp.sqrt(r2) / self.cutoff
        if self.num_species == 1:
            channel = None
        else:
            if species_i is None or species_j is None:
                raise ConfigurationError(
                    f"NeuralPairPotential: built for {self.num_species} species but the pair "
                    "sum got no species; pass species=(N,) integer array"
                )
            table = jnp.asarray(_pair_index_table(self.num_species))
            channel = jnp.broadcast_to(table[species_i, species_j], x.shape)
        if self.num_knots is None:
            out = self.channels(x)
            if channel is None:
                learned = out[..., 0]
            else:
                learned = jnp.take_along_axis(out, channel[..., None], axis=-1)[..., 0]
        else:
            learned = self._interpolate(x, channel)
        return learned + self.core_repulsion(r2)

    def core_repulsion(self, r2: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """The fixed repulsive prior ``s u(r / r_c) (r_core / r)^12`` at squared distances
        ``r2`` (epsilon; zero without ``core_radius``)."""
        if self.core_radius is None:
            return jnp.zeros_like(r2)
        x = jnp.sqrt(r2) / self.cutoff
        wall = (self.core_radius**2 / r2) ** 6
        return self.energy_scale * self.envelope(x) * wall

    def _interpolate(self, x: Array, channel: Array | None) -> Array:
        """Cubic Hermite interpolation of the network's ``phi`` between ``num_knots`` knots
        ``x_k = k / K`` (``k = 1..K``), with the exact values and slopes at the knots."""
        k_total = self.num_knots
        h = 1.0 / k_total
        knots = jnp.arange(1, k_total + 1).astype(x.dtype) * h
        values, slopes = jax.jvp(self.channels, (knots,), (jnp.ones_like(knots),))
        t = x * k_total - 1.0
        k = jnp.clip(jnp.floor(t), 0, k_total - 2)
        s = t - k
        k = k.astype(jnp.int32)
        c = 0 if channel is None else channel
        f0, f1 = values[k, c], values[k + 1, c]
        d0, d1 = h * slopes[k, c], h * slopes[k + 1, c]
        one_minus = 1.0 - s
        return (
            (1.0 + 2.0 * s) * one_minus * one_minus * f0
            + s * one_minus * one_minus * d0
            + s * s * (3.0 - 2.0 * s) * f1
            - s * s * one_minus * d1
        )

    def pair_potential(
        self, r: Float[ArrayLike, "*shape"], species_i: int = 0, species_j: int = 0
    ) -> Float[Array, "*shape"]:
        """``phi_ab(r)`` (epsilon) at distances ``r`` (sigma; zero beyond the cut-off), for
        plotting and comparing with an analytic potential."""
        r = jnp.asarray(r)
        r2 = jnp.minimum(r * r, self.cutoff**2)
        if self.num_species == 1:
            return jnp.where(r < self.cutoff, self.pair_energy(r2, None, None), 0.0)
        si = jnp.full(r.shape, species_i, jnp.int32)
        sj = jnp.full(r.shape, species_j, jnp.int32)
        return jnp.where(r < self.cutoff, self.pair_energy(r2, si, sj), 0.0)


class _Interaction(eqx.Module):
    """One SchNet interaction block: ``h_i += g(sum_j W(r_ij) * (A h)_j)``."""

    filter: MLP  # radial features -> features
    atom_in: eqx.nn.Linear  # features -> features, no bias
    atom_out: MLP  # features -> features


class SchNetPotential(AbstractEnergy):
    """A SchNet-style message-passing energy (Schütt et al. 2018) over the MD neighbour list.

    Atoms start from a learned embedding of their species, ``h_i = e_{s_i}``. Each of
    ``num_interactions`` blocks applies a continuous-filter convolution and a residual
    update,

    .. math::
        m_i = \\sum_{j: r_{ij} < r_c} W(r_{ij}) \\odot (A h)_j, \\qquad
        h_i \\leftarrow h_i + g(m_i),

    with a radial filter ``W(r) = u(r / r_c) MLP(B(r / r_c))`` (radial features ``B``
    times the smooth envelope ``u``, so every message fades out continuously at the
    cut-off), a linear map ``A`` and an atom-wise MLP ``g``. The energy is a sum of
    per-atom energies, ``U = sum_i (shift + scale * MLP_out(h_i))``. It is invariant to
    translations, rotations and permutations of like atoms, smooth in the positions, and its
    forces are ``-jax.grad`` of the energy. Units: reduced LJ (epsilon, sigma).

    With a cell list the messages run through the list's pair machinery
    (`hybrax.md.AbstractNeighborList.pair_sums`), which sums quantities symmetric in ``i, j`` over
    each pair once. The message is not symmetric, so it is assembled from two symmetric
    sums, ``m_i = sum_j W_ij ((A h)_i + (A h)_j) - (A h)_i sum_j W_ij``, one scalar sum per
    feature channel. With a dense (all-pairs) list it is one ``(N, N, F)`` contraction.
    Cost on a CPU (float32, 16 features, 2 interactions, energy and forces): ~15 ms at 108
    atoms (dense), ~0.5-1 s at 500 atoms (cell list: per-channel sums and their gradients
    dominate), so cell lists work but are slow for this model.

    Parameters
    ----------
    cutoff
        Cut-off radius (sigma, static), default 2.5.
    key
        PRNG key for the initial weights.
    num_features
        Width of the atom features ``h`` and of the filters (static), default 32.
    num_interactions
        Number of interaction blocks (static), default 3.
    basis, envelope
        Radial features and cut-off function, defaults ``GaussianBasis(16)`` and
        ``PolynomialEnvelope(6)``.
    activation
        Nonlinearity of the filter, update and readout networks, default `jax.nn.silu`.
    energy_shift, energy_scale
        Fixed affine map of the per-atom readout (epsilon, static), defaults 0 and 1; set
        them from the data (mean and spread of the energy per atom) for faster training.
    species
        ``(N,)`` integer species per atom, or None (one species).
    num_species
        Number of species (static); default ``max(species) + 1`` (1 without species).
    dtype
        Parameter dtype (default: JAX's default float); it must match the positions'.

    Examples
    --------
    >>> import jax
    >>> import hybrax.md as md
        >>> positions, box = md.lattice("fcc", 3, density=0.8442)
    >>> nbrs = md.neighbor_list(positions, box, cutoff=2.5)
    >>> schnet = md.SchNetPotential(2.5, key=jax.random.key(0), num_features=16)
    >>> forces = schnet.forces(positions, nbrs, box)   # -grad of the energy
    """

    embedding: Float[Array, "species features"]
    interactions: tuple[_Interaction, ...]
    readout: MLP
    basis: AbstractRadialBasis
    envelope: AbstractEnvelope
    cutoff: float = eqx.field(static=True)
    energy_shift: float = eqx.field(static=True)
    energy_scale: float = eqx.field(static=True)
    num_species: int = eqx.field(static=True)
    species: Int[Array, " N"] | None

    def __init__(
        self,
        cutoff: float = 2.5,
        *,
        key: PRNGKeyArray,
        num_features: int = 32,
        num_interactions: int = 3,
        basis: AbstractRadialBasis | None = None,
        envelope: AbstractEnvelope | None = None,
        activation: Callable[[Array], Array] = jax.nn.silu,
        energy_shift: float = 0.0,
        energy_scale: float = 1.0,
        species: Int[Array, " N"] | None = None,
        num_species: int | None = None,
        dtype=None,
    ):
        name = "SchNetPotential"
        _check_positive_int(name, "num_features", num_features)
        _check_positive_int(name, "num_interactions", num_interactions)
        setup = _radial_setup(
            name, cutoff, basis, envelope, GaussianBasis(16), species, num_species
        )
        self.cutoff, self.basis, self.envelope = setup.cutoff, setup.basis, setup.envelope
        self.species, self.num_species = setup.species, setup.num_species
        dtype = dtype or _default_float()
        f = num_features
        keys = jax.random.split(key, 2 + 3 * num_interactions)
        self.embedding = jax.random.normal(keys[0], (self.num_species, f), dtype)
        self.interactions = tuple(
            _Interaction(
                MLP(self.basis.num_basis, f, f, 1, activation, key=keys[2 + 3 * k], dtype=dtype),
                eqx.nn.Linear(f, f, use_bias=False, key=keys[3 + 3 * k], dtype=dtype),
                MLP(f, f, f, 1, activation, key=keys[4 + 3 * k], dtype=dtype),
            )
            for k in range(num_interactions)
        )
        self.readout = MLP(f, 1, max(f // 2, 1), 1, activation, key=keys[1], dtype=dtype)
        self.energy_shift, self.energy_scale = float(energy_shift), float(energy_scale)

    @property
    def required_cutoff(self) -> float:
        return self.cutoff

    @property
    def num_features(self) -> int:
        return self.embedding.shape[1]

    def per_atom_energy(
        self,
        positions: Float[Array, "N 3"],
        neighbors: AbstractNeighborList | None,
        box: AbstractBox,
    ) -> Float[Array, " N"]:
        """Each atom's energy ``shift + scale * MLP_out(h_i)`` (epsilon), shape ``(N,)``."""
        neighbors = _neighbors("SchNetPotential", neighbors)
        _check_dtype("SchNetPotential", self.embedding.dtype, positions)
        n = positions.shape[0]
        if self.species is not None and self.species.shape != (n,):
            raise ConfigurationError(
                f"SchNetPotential: species has shape {self.species.shape} but there are {n} "
                "atoms; pass one species index per atom"
            )
        if self.cutoff > neighbors.cutoff + 1e-12:
            raise ConfigurationError(
                f"SchNetPotential has cutoff {self.cutoff} but the neighbour list was built for "
                f"{neighbors.cutoff}; build it with neighbor_list(positions, box, "
                f"cutoff={self.cutoff})"
            )
        if neighbors.num_atoms != n:
            raise ConfigurationError(
                f"positions have {n} atoms but the neighbour list was built for "
                f"{neighbors.num_atoms}; build a new list with hybrax.md.neighbor_list"
            )
        species = jnp.zeros(n, jnp.int32) if self.species is None else self.species
        h = self.embedding[species]
        convolve = self._dense_pass if isinstance(neighbors, DenseNeighborList) else self._list_pass
        for block in self.interactions:
            x = h @ block.atom_in.weight.T
            h = h + _dense(block.atom_out, convolve(block, x, positions, neighbors, box))
        out = _dense(self.readout, h)[:, 0]
        return self.energy_shift + self.energy_scale * out

    def _filter(self, block: _Interaction, r2: Array) -> Array:
        scaled = jnp.sqrt(r2) / self.cutoff
        return _dense(block.filter, self.basis(scaled)) * self.envelope(scaled)[..., None]

    def _list_pass(self, block, x, positions, neighbors: AbstractNeighborList, box) -> Array:
        """``m_i = sum_j W(r_ij) x_j`` through the list's pair sums (cell windows: each pair
        once), from the symmetric sums ``sum_j W_ij (x_i + x_j)`` and ``sum_j W_ij``."""
        f = x.shape[1]
        index = jnp.arange(x.shape[0], dtype=jnp.int32)  # atom ids, gathered per pair

        def pair_fn(r2, i, j):
            w = self._filter(block, r2)
            both = w * (x[i] + x[j])
            return (*(both[..., c] for c in range(f)), *(w[..., c] for c in range(f))), ()

        sums, _ = neighbors.pair_sums(positions, box, pair_fn, cutoff=self.cutoff, species=index)
        return jnp.stack(sums[:f], axis=-1) - x * jnp.stack(sums[f:], axis=-1)

    def _dense_pass(self, block, x, positions, neighbors: AbstractNeighborList, box) -> Array:
        """``m_i = sum_j W(r_ij) x_j`` over all pairs as one ``(N, N, F)`` contraction (the
        all-pairs list: small systems, where this is much faster than per-channel sums)."""
        n = x.shape[0]
        d = box.displacement(positions[:, None, :], positions[None, :, :])
        r2 = jnp.sum(d * d, axis=-1)
        mask = (r2 < self.cutoff**2) & ~jnp.eye(n, dtype=bool)
        w = self._filter(block, jnp.where(mask, r2, self.cutoff**2))
        w = jnp.where(mask[..., None], w, 0.0)
        message = jnp.einsum("ijf,jf->if", w, x)
        # an overflowed list gives NaN, as the list's own pair sums do
        return jnp.where(neighbors.overflow, jnp.nan, message)

    def energy(
        self,
        positions: Float[Array, "N 3"],
        neighbors: AbstractNeighborList | None,
        box: AbstractBox,
    ) -> Float[Array, ""]:
        return jnp.sum(self.per_atom_energy(positions, neighbors, box))
