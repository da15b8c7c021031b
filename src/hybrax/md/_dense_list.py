"""The all-pairs neighbour "list": every pair, O(N^2), for small systems and free space."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float, Int

from ._neighbors import (
    AbstractNeighborList,
    Sums,
    _block_size,
    _blocks,
    _check_positions_shape,
    _checked_build_inputs,
    _pad,
    _split,
)
from ._space import AbstractBox, PeriodicBox
from ._triclinic import TriclinicBox

__all__ = ["DenseNeighborList"]


class DenseNeighborList(AbstractNeighborList):
    """All pairs within ``cutoff`` of each other, each seen from both sides: O(N^2) work,
    no capacities, never overflows by crowding. The right list for small systems (a few
    hundred atoms, where it is faster than cell windows) and the only one in free space.

    Build it with `DenseNeighborList.build` (or let `hybrax.md.neighbor_list` choose);
    ``update`` only records the positions (there is nothing to rebuild) and flags a periodic
    box shorter than twice the cutoff.

    Examples
    --------
    >>> import hybrax.md as md
    >>> positions, box = md.lattice("fcc", 3, density=0.8442)
    >>> nbrs = md.DenseNeighborList.build(positions, box, cutoff=2.5)
    >>> nbrs.slots_per_atom
    108
    """

    reference_positions: Float[Array, "N 3"]
    overflow: Bool[Array, ""]
    num_builds: Int[Array, ""]
    cutoff: float = eqx.field(static=True)
    skin: float = eqx.field(static=True)
    block_size: int = eqx.field(static=True)

    @classmethod
    def build(
        cls,
        positions: Float[Array, "N 3"],
        box: AbstractBox,
        cutoff: float,
        *,
        skin: float = 0.3,
    ) -> DenseNeighborList:
        """An all-pairs list for ``positions`` in ``box`` (a `PeriodicBox` or `TriclinicBox`
        at least twice the cutoff wide in every direction, or `FreeSpace`); ``cutoff`` and
        ``skin`` in sigma, as for `hybrax.md.neighbor_list`."""
        positions, cutoff, skin, _ = _checked_build_inputs(positions, box, cutoff, skin)
        n = positions.shape[0]
        return cls(
            reference_positions=positions,
            overflow=jnp.zeros((), bool),
            num_builds=jnp.ones((), jnp.int32),
            cutoff=cutoff,
            skin=skin,
            block_size=_block_size(n, n),
        )

    @property
    def slots_per_atom(self) -> int:
        return self.num_atoms

    def covers(self, box: AbstractBox) -> Bool[Array, ""]:
        """True in free space and in a periodic box at least twice the cutoff wide (for a
        `TriclinicBox`: its perpendicular widths)."""
        if isinstance(box, TriclinicBox):
            return ~jnp.any(box.perpendicular_widths < 2.0 * self.cutoff)
        if not isinstance(box, PeriodicBox):
            return jnp.ones((), bool)
        return ~jnp.any(jnp.asarray(box.lengths) < 2.0 * self.cutoff)

    def update(self, positions: Float[Array, "N 3"], box: AbstractBox) -> DenseNeighborList:
        _check_positions_shape(positions, self.num_atoms)
        lost = ~self.covers(box)
        return eqx.tree_at(
            lambda n: (n.reference_positions, n.overflow, n.num_builds),
            self,
            (positions, self.overflow | lost, self.num_builds + 1),
        )

    def maybe_update(self, positions: Float[Array, "N 3"], box: AbstractBox) -> DenseNeighborList:
        return self  # all pairs: nothing to rebuild

    def grow(
        self, positions: Float[Array, "N 3"], box: AbstractBox, factor: float = 1.15
    ) -> DenseNeighborList:
        """A fresh all-pairs list for ``positions`` in ``box`` (``factor`` is unused: an
        all-pairs list has no capacities)."""
        return DenseNeighborList.build(positions, box, self.cutoff, skin=self.skin)

    def with_needs_of(self, lists: AbstractNeighborList) -> DenseNeighborList:
        return self

    def _pass(self, positions, box, pair_fn, cutoff, species, sums: Sums):
        """All pairs, each seen from both sides (so totals are half the per-atom sums)."""
        n = self.num_atoms
        dtype = positions.dtype
        periodic = isinstance(box, PeriodicBox)
        lengths = box.lengths.astype(dtype) if periodic else None
        triclinic = isinstance(box, TriclinicBox)
        if triclinic:  # minimum image in fractional coordinates
            cell, reciprocal = box.cell.astype(dtype), box.reciprocal.astype(dtype)
        block, num_blocks, pad = _blocks(n, self.block_size)
        cutoff_sq = cutoff * cutoff
        others = jnp.arange(n, dtype=jnp.int32)

        def per_block(args):
            x, rows, si = args
            d = []
            for k in range(3):
                dk = x[:, k : k + 1] - positions[None, :, k]
                if periodic:
                    dk = dk - lengths[k] * jnp.rint(dk / lengths[k])
                d.append(dk)
            if triclinic:
                s = [sum(d[m] * reciprocal[m, k] for m in range(3)) for k in range(3)]
                s = [sk - jnp.rint(sk) for sk in s]
                d = [sum(s[m] * cell[m, k] for m in range(3)) for k in range(3)]
            r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
            mask = (rows[:, None] != others[None, :]) & (rows[:, None] < n) & (r2 < cutoff_sq)
            r2_safe = jnp.where(mask, r2, cutoff_sq)
            sj = None if species is None else jnp.broadcast_to(species[None, :], r2.shape)
            scalars, weights = _split(
                pair_fn(r2_safe, None if si is None else si[:, None], sj), "pair_fn"
            )
            s_out = tuple(jnp.sum(jnp.where(mask, s, 0), axis=1) for s in scalars)
            v_out = tuple(
                jnp.stack([jnp.sum(jnp.where(mask, w, 0) * dk, axis=1) for dk in d], axis=-1)
                for w in weights
            )
            return s_out, v_out

        xs = (
            _pad(positions, pad).reshape(num_blocks, block, 3),
            jnp.arange(num_blocks * block, dtype=jnp.int32).reshape(num_blocks, block),
            None if species is None else _pad(species, pad).reshape(num_blocks, block),
        )
        s_out, v_out = lax.map(per_block, xs)
        scalars = tuple(s.reshape(-1)[:n] for s in s_out)
        vectors = tuple(v.reshape(-1, 3)[:n] for v in v_out)
        # every pair was seen twice (from i and from j): half the sum is the sum over i < j
        if sums is Sums.TOTALS:
            return tuple(0.5 * jnp.sum(s) for s in scalars)
        if sums is Sums.TOTALS_AND_VECTORS:
            return tuple(0.5 * jnp.sum(s) for s in scalars), vectors
        return scalars, vectors
