"""An E(3)-equivariant message-passing potential (NequIP-style) on e3nn-jax.

Atom features are irreducible representations of O(3) (scalars ``0e``, vectors ``1o``,
rank-2 tensors ``2e``); messages are tensor products of neighbour features with spherical
harmonics of the bond vectors, weighted by learned radial functions that vanish smoothly at
the cut-off. The energy is a sum of per-atom scalars, so it is invariant under rotations,
reflections, translations and permutations of like atoms, and its forces (``-grad``) and
virial are equivariant. It is an `AbstractManyBodyEnergy`: per-atom neighbour tables from
any MD neighbour list, forces and the virial tensor from one gradient with respect to the
bond vectors.

e3nn-jax is imported on first use (it takes seconds to import), so ``import hybrax`` does not
pay for it.
"""

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from hybrax.core import ConfigurationError
from hybrax.nn import MLP, AbstractEnvelope, AbstractRadialBasis, BesselBasis

from ._manybody import AbstractManyBodyEnergy, check_max_neighbors
from ._neural import _check_dtype, _check_positive_int, _default_float, _dense, _radial_setup

__all__ = ["EquivariantPotential"]

_NAME = "EquivariantPotential"


def _e3nn():
    """The ``e3nn_jax`` module, imported on first use."""
    import e3nn_jax

    return e3nn_jax


def _hidden_irreps(num_features: int, num_vectors: int, l_max: int):
    """``F x 0e + V x 1o + V x 2e + ...`` (natural parity: ``(-1)^l``)."""
    parts = [f"{num_features}x0e"]
    parts += [f"{num_vectors}x{ell}{'e' if ell % 2 == 0 else 'o'}" for ell in range(1, l_max + 1)]
    return _e3nn().Irreps("+".join(parts))


def _component_to_irrep(irreps) -> np.ndarray:
    """For every component of an ``irreps`` array, the index of its irrep copy (so that one
    weight per copy, ``w[..., index]``, scales a whole vector or tensor alike)."""
    return np.concatenate(
        [np.repeat(np.arange(mul), ir.dim) + offset for (mul, ir), offset in _offsets(irreps)]
    ).astype(np.int32)


def _offsets(irreps):
    offset = 0
    for mul, ir in irreps:
        yield (mul, ir), offset
        offset += mul


class _Interaction(eqx.Module):
    """One convolution layer:
    ``h_i <- gate(W_self[s_i] h_i + W_out sum_j R(r_ij) (W_in h)_j (x) Y(r_ij))``
    (plus ``h_i`` when the irreps agree)."""

    radial: MLP  # radial features -> one weight per tensor-product output copy
    linear_in: eqx.Module  # e3nn_jax.equinox.Linear
    linear_out: eqx.Module
    self_interaction: eqx.Module  # indexed by species
    irreps_in: object = eqx.field(static=True)  # e3nn_jax.Irreps
    irreps_message: object = eqx.field(static=True)
    irreps_out: object = eqx.field(static=True)


@eqx.filter_jit
def _build_networks(
    key,
    *,
    num_species,
    num_features,
    num_vectors,
    l_max,
    num_interactions,
    num_basis,
    radial_width,
    activation,
    dtype,
):
    """Species embedding, interaction layers and readout with their initial weights."""
    keys = jax.random.split(key, 2 + num_interactions)
    embedding = jax.random.normal(keys[0], (num_species, num_features), dtype)
    hidden = _hidden_irreps(num_features, num_vectors, l_max)
    irreps_in = _e3nn().Irreps(f"{num_features}x0e")
    layers = []
    for k in range(num_interactions):
        layers.append(
            _layer(
                irreps_in,
                hidden,
                l_max,
                num_species,
                num_basis,
                radial_width,
                activation,
                keys[2 + k],
                dtype,
            )
        )
        irreps_in = hidden
    readout = MLP(num_features, 1, radial_width, 1, activation, key=keys[1], dtype=dtype)
    return embedding, tuple(layers), readout


def _layer(
    irreps_in, hidden, l_max, num_species, num_basis, radial_width, activation, key, dtype
) -> _Interaction:
    e3nn = _e3nn()
    from e3nn_jax.equinox import Linear

    keys = jax.random.split(key, 4)
    sh = e3nn.Irreps.spherical_harmonics(l_max)
    message = jax.eval_shape(  # the product's irreps, without computing it
        lambda: e3nn.tensor_product(
            e3nn.zeros(irreps_in, dtype=dtype), e3nn.zeros(sh, dtype=dtype), filter_ir_out=hidden
        )
    ).irreps
    num_gates = hidden.num_irreps - hidden.count("0e")
    gate_in = e3nn.Irreps(f"{hidden.count('0e') + num_gates}x0e") + hidden.filter(drop="0e")
    linear = dict(input_dtype=dtype, force_irreps_out=True)
    return _Interaction(
        radial=MLP(
            num_basis, message.num_irreps, radial_width, 1, activation, key=keys[0], dtype=dtype
        ),
        linear_in=Linear(irreps_in=irreps_in, irreps_out=irreps_in, key=keys[1], **linear),
        linear_out=Linear(irreps_in=message.regroup(), irreps_out=gate_in, key=keys[2], **linear),
        self_interaction=Linear(
            irreps_in=irreps_in,
            irreps_out=gate_in,
            linear_type="mixed",  # weights: one-hot species (strict dtype promotion)
            weights_dim=num_species,
            key=keys[3],
            **linear,
        ),
        irreps_in=irreps_in,
        irreps_message=message,
        irreps_out=hidden,
    )


class EquivariantPotential(AbstractManyBodyEnergy):
    """A NequIP-style E(3)-equivariant neural potential (Batzner et al. 2022) on e3nn-jax.

    Each atom starts from a learned embedding of its species (``num_features`` scalars).
    Each of ``num_interactions`` layers convolves over the neighbours within ``cutoff``,

    .. math::
        m_i = \\frac{1}{\\sqrt{n_{avg}}} \\sum_{j:\\, r_{ij} < r_c}
              R(r_{ij}) \\, (W_{in} h)_j \\otimes Y(\\hat r_{ij}),
        \\qquad
        h_i \\leftarrow \\mathrm{gate}\\big(W_{self}[s_i] h_i + W_{out} m_i\\big) \\; (+\\, h_i),

    with real spherical harmonics ``Y`` of the bond direction up to ``l_max``, a
    tensor product ``(x)`` kept to the irreps ``0e, 1o, 2e, ...`` (natural parity), one learned
    radial weight per output path and channel, ``R(r) = u(r / r_c) MLP(B(r / r_c))`` (radial
    features ``B``, a `BesselBasis` by default, times the smooth envelope ``u``, so every
    message fades to zero with its derivative at the cut-off), equivariant linear maps
    ``W`` (``W_self`` per species) and a gated nonlinearity (SiLU on scalars, sigmoid gates
    on the higher irreps). Hidden features are ``num_features x 0e + num_vectors x 1o
    (+ num_vectors x 2e)``. The energy is

    .. math::
        U = \\sum_i \\big(\\mathrm{shift}_{s_i} + \\mathrm{scale}_{s_i}\\,
            \\mathrm{MLP}_{out}(h_i^{0e})\\big),

    invariant under rotations, reflections, translations and permutations of like atoms;
    forces (``-grad``) and the virial (`virial`, so stress for `ase_calculator`) are
    equivariant and come from one gradient with respect to the bond vectors. Units are
    those of the training data (eV and Angstrom in metal units).

    Neighbours come from a per-atom table of at most ``max_neighbors`` entries built from
    any MD neighbour list (cell windows or all pairs); a configuration with more, or an
    overflowed list, gives NaN energies and forces, never silently wrong ones. The cost is
    proportional to ``N * max_neighbors``: size it a little above the densest environment
    (fcc within 4 Angstrom of Cu: 18 neighbours at rest).

    Parameters
    ----------
    cutoff
        Cut-off radius ``r_c`` (length, static), default 4.0.
    key
        PRNG key for the initial weights.
    num_features
        Scalar channels ``0e`` of the hidden features (static), default 16.
    num_vectors
        Channels of each higher irrep (``1o``, ``2e``) (static), default 8.
    l_max
        Highest degree of the spherical harmonics and features (static, 1 or 2), default 1
        (on a CPU, ``l_max=2`` costs about three times as much per step).
    num_interactions
        Number of convolution layers (static), default 2.
    max_neighbors
        Capacity of the per-atom neighbour table (static), default 32.
    num_neighbors
        ``n_avg``, the typical number of neighbours the message sum is divided by the
        square root of (static), default 16.
    basis, envelope
        Radial features and cut-off function, defaults ``BesselBasis(8)`` and
        ``PolynomialEnvelope(6)``.
    radial_width
        Hidden units of the radial MLPs and of the readout (static), default 32.
    activation
        Scalar nonlinearity of the gates' scalars, radial MLPs and readout, default
        `jax.nn.silu` (smooth, so forces are smooth).
    energy_shift, energy_scale
        Per-atom energy shift and scale (energy units): a float or one value per species.
        They are trainable leaves; initialise them from the data (mean and spread of the
        energy per atom) for faster training. Defaults 0 and 1.
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
    >>> positions, box = md.lattice("fcc", 2, lattice_constant=3.6)  # 32 Cu atoms
    >>> nbrs = md.neighbor_list(positions, box, cutoff=3.0)
    >>> model = md.EquivariantPotential(3.0, key=jax.random.key(0), num_features=8,
    ...                                 num_vectors=4, num_interactions=1, max_neighbors=16)
    >>> energy, forces = model.energy_and_forces(positions, nbrs, box)
    >>> bool(jax.numpy.max(jax.numpy.abs(forces)) < 1e-4)  # a perfect crystal: no force
    True
    """

    embedding: Float[Array, "species features"]
    interactions: tuple[_Interaction, ...]
    readout: MLP
    shift: Float[Array, " species"]
    scale: Float[Array, " species"]
    basis: AbstractRadialBasis
    envelope: AbstractEnvelope
    activation: Callable[[Array], Array] = eqx.field(static=True)
    cutoff: float = eqx.field(static=True)
    l_max: int = eqx.field(static=True)
    max_neighbors: int = eqx.field(static=True)
    num_neighbors: float = eqx.field(static=True)
    num_species: int = eqx.field(static=True)
    species: Int[Array, " N"] | None

    def __init__(
        self,
        cutoff: float = 4.0,
        *,
        key: PRNGKeyArray,
        num_features: int = 16,
        num_vectors: int = 8,
        l_max: int = 1,
        num_interactions: int = 2,
        max_neighbors: int = 32,
        num_neighbors: float = 16.0,
        basis: AbstractRadialBasis | None = None,
        envelope: AbstractEnvelope | None = None,
        radial_width: int = 32,
        activation: Callable[[Array], Array] = jax.nn.silu,
        energy_shift: float | Sequence[float] = 0.0,
        energy_scale: float | Sequence[float] = 1.0,
        species: Int[Array, " N"] | None = None,
        num_species: int | None = None,
        dtype=None,
    ):
        for argument, value in (
            ("num_features", num_features),
            ("num_vectors", num_vectors),
            ("num_interactions", num_interactions),
            ("radial_width", radial_width),
        ):
            _check_positive_int(_NAME, argument, value)
        if l_max not in (1, 2) or isinstance(l_max, bool):
            raise ConfigurationError(f"{_NAME}: l_max must be 1 or 2, got {l_max!r}")
        if not float(num_neighbors) > 0:
            raise ConfigurationError(
                f"{_NAME}: num_neighbors must be positive (the typical neighbour count, "
                f"e.g. 16), got {num_neighbors!r}"
            )
        setup = _radial_setup(_NAME, cutoff, basis, envelope, BesselBasis(8), species, num_species)
        self.cutoff, self.basis, self.envelope = setup.cutoff, setup.basis, setup.envelope
        self.species, self.num_species = setup.species, setup.num_species
        self.max_neighbors = check_max_neighbors(max_neighbors, _NAME)
        self.num_neighbors = float(num_neighbors)
        self.l_max = l_max
        self.activation = activation
        dtype = jnp.dtype(dtype or _default_float())
        self.shift = self._per_species("energy_shift", energy_shift, dtype)
        self.scale = self._per_species("energy_scale", energy_scale, dtype)

        # every weight drawn in one compiled program (eagerly, each random draw of a new
        # shape would compile on its own: seconds for a small model)
        self.embedding, self.interactions, self.readout = _build_networks(
            key,
            num_species=self.num_species,
            num_features=num_features,
            num_vectors=num_vectors,
            l_max=l_max,
            num_interactions=num_interactions,
            num_basis=self.basis.num_basis,
            radial_width=radial_width,
            activation=activation,
            dtype=dtype,
        )

    def _per_species(self, argument: str, value, dtype) -> Array:
        values = np.asarray(value, dtype=float)
        if values.ndim == 0:
            values = np.full(self.num_species, float(values))
        if values.shape != (self.num_species,) or not np.all(np.isfinite(values)):
            raise ConfigurationError(
                f"{_NAME}: {argument} must be a finite float or one value per species "
                f"({self.num_species}), got {value!r}"
            )
        return jnp.asarray(values, dtype)

    def local_energy(
        self,
        d: Float[Array, "... 3"],
        mask: Bool[Array, "..."],
        owner: Int[Array, "..."],
        other: Int[Array, "..."],
        species: Int[Array, " N"],
    ) -> Float[Array, " N"]:
        """Per-atom energies from the ``(N, M, 3)`` neighbour table of bond vectors
        ``d = r_other - r_owner``."""
        _check_dtype(_NAME, self.embedding.dtype, d)
        e3nn = _e3nn()
        r = jnp.sqrt(jnp.sum(d * d, axis=-1))
        x = jnp.where(mask, r / self.cutoff, 0.5)
        radial_features = self.basis(x)
        envelope = jnp.where(mask, self.envelope(x), 0.0)[..., None]  # zero past the cut-off
        sh = e3nn.Irreps.spherical_harmonics(self.l_max)
        harmonics = e3nn.spherical_harmonics(sh, d, normalize=True, normalization="component")
        h = e3nn.IrrepsArray(self.interactions[0].irreps_in, self.embedding[species])
        norm = 1.0 / np.sqrt(self.num_neighbors)
        one_hot = jax.nn.one_hot(species, self.num_species, dtype=d.dtype)
        for layer in self.interactions:
            neighbours = layer.linear_in(h)[other]  # (N, M, irreps_in)
            products = e3nn.tensor_product(
                neighbours, harmonics, filter_ir_out=layer.irreps_out
            ).array
            weights = _dense(layer.radial, radial_features) * envelope
            expand = _component_to_irrep(layer.irreps_message)
            message = norm * jnp.sum(products * weights[..., expand], axis=-2)
            message = e3nn.IrrepsArray(layer.irreps_message, message).regroup()
            update = layer.linear_out(message) + layer.self_interaction(one_hot, h)
            update = e3nn.gate(update, even_act=self.activation)
            h = update + h if layer.irreps_in == layer.irreps_out else update
        out = _dense(self.readout, h.filter(keep="0e").array)[:, 0]
        return self.shift[species] + self.scale[species] * out
