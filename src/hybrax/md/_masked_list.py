"""`MaskedNeighborList`: a neighbour list in which only some atoms interact (the padding
of batched systems)."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from hybrax.core import ConfigurationError

from ._neighbors import AbstractNeighborList, Sums, _split
from ._space import AbstractBox

__all__ = ["MaskedNeighborList"]


class MaskedNeighborList(AbstractNeighborList):
    """A neighbour list in which only atoms with ``mask`` True interact.

    Wraps any `AbstractNeighborList` (``inner``): every pair that involves a masked-out
    atom is dropped from every pair sum (energies, forces, per-atom sums), so such atoms
    feel no force and add nothing. This is how a `SystemBatch` pads systems of different
    sizes to one shape. Building, updating and growing are those of ``inner``.

    Parameters
    ----------
    inner
        The neighbour list over all ``N`` atoms (real and padding).
    mask
        ``(N,)`` booleans, True for real atoms.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import hybrax.md as md
    >>> positions, box = md.lattice("fcc", 2, density=0.8442)
    >>> inner = md.DenseNeighborList.build(positions, box, cutoff=1.5)
    >>> mask = jnp.arange(32) < 30  # the last 2 atoms are ghosts
    >>> nbrs = md.MaskedNeighborList(inner, mask)
    >>> forces = md.LennardJones(cutoff=1.5).forces(positions, nbrs, box)
    >>> bool(jnp.all(forces[30:] == 0))
    True
    """

    inner: AbstractNeighborList
    mask: Bool[Array, "*batch N"]

    def __check_init__(self):
        if not isinstance(self.inner, AbstractNeighborList):
            raise ConfigurationError(
                "MaskedNeighborList: inner must be a hybrax.md neighbour list, got "
                f"{type(self.inner).__name__}"
            )
        if isinstance(self.inner, MaskedNeighborList):
            raise ConfigurationError("MaskedNeighborList: inner is already masked")
        if jnp.shape(self.mask)[-1:] != jnp.shape(self.inner.reference_positions)[-2:-1] or (
            jnp.result_type(self.mask) != jnp.bool_
        ):
            raise ConfigurationError(
                f"MaskedNeighborList: mask must be a boolean array of shape "
                f"({self.inner.num_atoms},) (one per atom of the list), got shape "
                f"{jnp.shape(self.mask)} and dtype {jnp.result_type(self.mask)}"
            )

    # the list's own state is the inner list's
    @property
    def reference_positions(self):
        return self.inner.reference_positions

    @property
    def overflow(self):
        return self.inner.overflow

    @property
    def num_builds(self):
        return self.inner.num_builds

    @property
    def cutoff(self) -> float:
        return self.inner.cutoff

    @property
    def skin(self) -> float:
        return self.inner.skin

    @property
    def block_size(self) -> int:
        return self.inner.block_size

    @property
    def slots_per_atom(self) -> int:
        return self.inner.slots_per_atom

    def covers(self, box: AbstractBox) -> Bool[Array, ""]:
        return self.inner.covers(box)

    def update(self, positions: Float[Array, "N 3"], box: AbstractBox) -> MaskedNeighborList:
        return MaskedNeighborList(self.inner.update(positions, box), self.mask)

    def maybe_update(self, positions: Float[Array, "N 3"], box: AbstractBox) -> MaskedNeighborList:
        return MaskedNeighborList(self.inner.maybe_update(positions, box), self.mask)

    def grow(
        self, positions: Float[Array, "N 3"], box: AbstractBox, factor: float = 1.15
    ) -> MaskedNeighborList:
        return MaskedNeighborList(self.inner.grow(positions, box, factor), self.mask)

    def with_needs_of(self, lists: AbstractNeighborList) -> MaskedNeighborList:
        inner = lists.inner if isinstance(lists, MaskedNeighborList) else lists
        return MaskedNeighborList(self.inner.with_needs_of(inner), self.mask)

    def _pass(self, positions, box, pair_fn, cutoff, species, sums: Sums):
        # the mask travels as the species code -1, which both kinds of list gather for the
        # second atom of every pair; the pair function sees the real species (or None)
        base = jnp.zeros(self.mask.shape, jnp.int32) if species is None else species
        code = jnp.where(self.mask, base.astype(jnp.int32), -1)
        cutoff_sq = cutoff * cutoff

        def masked(r2, species_i, species_j):
            keep = (species_i >= 0) & (species_j >= 0)
            r2 = jnp.where(keep, r2, cutoff_sq)  # finite values (and gradients) for dropped pairs
            if species is None:
                out = pair_fn(r2, None, None)
            else:
                out = pair_fn(r2, jnp.maximum(species_i, 0), jnp.maximum(species_j, 0))
            scalars, weights = _split(out, "pair_fn")
            return (
                tuple(jnp.where(keep, s, 0) for s in scalars),
                tuple(jnp.where(keep, w, 0) for w in weights),
            )

        return self.inner._pass(positions, box, masked, cutoff, code, sums)
