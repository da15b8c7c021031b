"""Batches of MD systems of different sizes: padded to a common atom count with a mask,
each with its own periodic box (all orthorhombic or all triclinic); kinetic observables over
the real atoms."""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from hybrax.core import ConfigurationError, concrete_or_none

from ._space import PeriodicBox
from ._triclinic import TriclinicBox

__all__ = ["SystemBatch"]

# R3 low-discrepancy sequence: where padding atoms sit (spread through the box, so a cell
# list's columns stay evenly filled; they never interact)
_R3 = np.array([0.8191725133961645, 0.6710436067037893, 0.5497004779019703])


class SystemBatch(eqx.Module):
    """``B`` periodic systems of different sizes padded to ``N`` atoms (the largest), for
    batched energies, forces, training labels and simulations (`hybrax.md.simulate_batch`).

    Padding atoms (``mask`` False) sit at fixed points inside their box, have zero
    velocity and unit mass, never interact (`MaskedNeighborList`), feel no force and are left
    out of the kinetic energy, the temperature and the degrees of freedom.

    The boxes are all `PeriodicBox` (orthorhombic) or all `TriclinicBox` (general periodic
    cells, ``cells`` set); one batch does not mix the two.

    Attributes
    ----------
    positions, velocities
        ``(B, N, 3)`` (sigma, sigma / tau).
    masses
        ``(B, N)`` (m); 1 for padding.
    mask
        ``(B, N)`` booleans, True for real atoms.
    lengths
        ``(B, 3)`` box sides (sigma): system ``b`` lives in ``PeriodicBox(lengths[b])``.
        For triclinic systems the perpendicular widths of each cell (the distances between
        opposite faces, what the cut-off must fit in twice).
    species
        ``(B, N)`` integer species (0 for padding), or None.
    cells
        ``(B, 3, 3)`` cell matrices, lattice vectors as rows (sigma), of triclinic systems:
        system ``b`` lives in ``TriclinicBox(cells[b])``; None for orthorhombic ones.

    Examples
    --------
    >>> import hybrax.md as md
    >>> small, small_box = md.lattice("fcc", 2, density=0.8442)
    >>> large, large_box = md.lattice("fcc", 3, density=0.8)
    >>> batch = md.SystemBatch.from_systems([(small, small_box), (large, large_box)])
    >>> batch.positions.shape, batch.num_atoms
    ((2, 108, 3), (32, 108))
    >>> [p.shape for p in batch.unpad(batch.positions)]
    [(32, 3), (108, 3)]

    Triclinic cells (the cubic box as a `TriclinicBox`, and a sheared one):

    >>> import jax.numpy as jnp
    >>> side = float(large_box.lengths[0])
    >>> tilted = md.TriclinicBox.from_lammps(side, side, side, xy=0.3 * side)
    >>> cube = md.TriclinicBox(small_box.lengths * jnp.eye(3))
    >>> triclinic = md.SystemBatch.from_systems([(small, cube), (large, tilted)])
    >>> triclinic.cells.shape, type(triclinic.boxes()[1]).__name__
    ((2, 3, 3), 'TriclinicBox')
    """

    positions: Float[Array, "B N 3"]
    velocities: Float[Array, "B N 3"]
    masses: Float[Array, "B N"]
    mask: Bool[Array, "B N"]
    lengths: Float[Array, "B 3"]
    species: Int[Array, "B N"] | None = None
    cells: Float[Array, "B 3 3"] | None = None

    def __check_init__(self):
        """Shapes that agree (B systems of N slots), a boolean mask, integer species; and,
        where the arrays are concrete, positive finite masses and box sides, finite
        positions and velocities, non-negative species. `from_systems` builds batches
        that pass; this catches batches assembled by hand."""
        where = "SystemBatch"
        shape = jnp.shape(self.positions)
        if len(shape) != 3 or shape[2] != 3:
            raise ConfigurationError(
                f"{where}: positions must have shape (B, N, 3), got {shape}; build batches "
                "with SystemBatch.from_systems"
            )
        b, n = shape[:2]
        expected = {
            "velocities": (self.velocities, (b, n, 3)),
            "masses": (self.masses, (b, n)),
            "mask": (self.mask, (b, n)),
            "lengths": (self.lengths, (b, 3)),
            "species": (self.species, (b, n)),
            "cells": (self.cells, (b, 3, 3)),
        }
        for name, (value, want) in expected.items():
            if value is not None and tuple(jnp.shape(value)) != want:
                raise ConfigurationError(
                    f"{where}: {name} must have shape {want} for positions of shape {shape}, "
                    f"got {tuple(jnp.shape(value))}"
                )
        if jnp.result_type(self.mask) != jnp.bool_:
            raise ConfigurationError(
                f"{where}: mask must be boolean (True for real atoms), got dtype "
                f"{jnp.result_type(self.mask)}"
            )
        if self.species is not None and not jnp.issubdtype(
            jnp.result_type(self.species), jnp.integer
        ):
            raise ConfigurationError(
                f"{where}: species must be integers, got dtype {jnp.result_type(self.species)}"
            )
        rules = (
            ("positions", self.positions, False),
            ("velocities", self.velocities, False),
            ("masses", self.masses, True),
            ("lengths", self.lengths, True),
        )
        for name, value, positive in rules:
            known = concrete_or_none(value)
            if known is None:
                continue
            bad = ~np.isfinite(known) | ((known <= 0) if positive else False)
            if np.any(bad):
                first = np.argwhere(bad)[0].tolist()
                rule = "positive and finite" if positive else "finite"
                raise ConfigurationError(
                    f"{where}: {name} must be {rule}, got {known[tuple(first)].item()!r} at index "
                    f"{tuple(first)}"
                )
        known = None if self.species is None else concrete_or_none(self.species)
        if known is not None and known.size and int(np.min(known)) < 0:
            raise ConfigurationError(
                f"{where}: species must be non-negative indices into the potential's "
                f"parameter matrices, got {int(np.min(known))}"
            )

    @classmethod
    def from_systems(cls, systems: Sequence[tuple]) -> SystemBatch:
        """Pad a list of systems to one batch.

        Parameters
        ----------
        systems
            A non-empty sequence of tuples ``(positions, box[, velocities[, masses[,
            species]]])``: ``(n_b, 3)`` positions (sigma), a `PeriodicBox` or a
            `TriclinicBox` (one kind for every system), ``(n_b, 3)`` velocities (default
            0), masses (scalar or ``(n_b,)``, default 1) and ``(n_b,)`` integer species
            (give them for every system or for none). All positions share one floating
            dtype; they are wrapped into their box.

        Raises
        ------
        hybrax.ConfigurationError
            An empty list, a system that is not such a tuple, positions that are not
            ``(n, 3)`` floats, a box that is neither a `PeriodicBox` nor a `TriclinicBox`,
            orthorhombic and triclinic boxes in one batch, mismatched shapes or dtypes; the
            message names the system's index.
        """
        if not isinstance(systems, Sequence) or isinstance(systems, (str, bytes)):
            raise ConfigurationError(
                "SystemBatch.from_systems: systems must be a list of (positions, box[, "
                f"velocities[, masses[, species]]]) tuples, got {type(systems).__name__}"
            )
        if len(systems) == 0:
            raise ConfigurationError(
                "SystemBatch.from_systems: got an empty list of systems; pass at least one "
                "(positions, box) tuple"
            )
        parsed = [_parse_system(index, system) for index, system in enumerate(systems)]
        dtypes = {p[0].dtype for p in parsed}
        if len(dtypes) > 1:
            raise ConfigurationError(
                "SystemBatch.from_systems: all systems need positions of one floating dtype, got "
                f"{sorted(str(d) for d in dtypes)}; convert them (e.g. .astype(jnp.float64))"
            )
        with_species = [p[4] is not None for p in parsed]
        if any(with_species) and not all(with_species):
            missing = with_species.index(False)
            raise ConfigurationError(
                f"SystemBatch.from_systems: system {missing} has no species but others do; "
                "give species for every system or for none"
            )
        triclinic = [isinstance(p[1], TriclinicBox) for p in parsed]
        if any(triclinic) and not all(triclinic):
            odd = triclinic.index(not triclinic[0])
            raise ConfigurationError(
                f"SystemBatch.from_systems: system 0 has a {type(parsed[0][1]).__name__} but "
                f"system {odd} a {type(parsed[odd][1]).__name__}; one batch holds boxes of one "
                "kind (give an orthorhombic system as TriclinicBox(lengths * jnp.eye(3)), or "
                "batch the two kinds separately)"
            )
        dtype = parsed[0][0].dtype
        n_max = max(p[0].shape[0] for p in parsed)
        positions, velocities, masses, mask, lengths, species = [], [], [], [], [], []
        cells = []
        for p, box, v, m, s in parsed:
            n, pad = p.shape[0], n_max - p.shape[0]
            ghosts = jnp.asarray(((np.arange(pad)[:, None] + 1) * _R3) % 1.0, dtype)
            if triclinic[0]:
                cell = jnp.asarray(box.cell).astype(dtype)
                cells.append(cell)
                box_lengths = TriclinicBox(cell).perpendicular_widths
                ghosts = ghosts @ cell
            else:
                box_lengths = jnp.asarray(box.lengths).astype(dtype)
                ghosts = ghosts * box_lengths
            positions.append(jnp.concatenate([box.wrap(p), ghosts]))
            velocities.append(jnp.concatenate([v, jnp.zeros((pad, 3), dtype)]))
            masses.append(jnp.concatenate([m, jnp.ones((pad,), dtype)]))
            mask.append(jnp.arange(n_max) < n)
            lengths.append(box_lengths)
            if s is not None:
                species.append(jnp.concatenate([s, jnp.zeros((pad,), s.dtype)]))
        return cls(
            jnp.stack(positions),
            jnp.stack(velocities),
            jnp.stack(masses),
            jnp.stack(mask),
            jnp.stack(lengths),
            jnp.stack(species) if species else None,
            jnp.stack(cells) if cells else None,
        )

    # ------------------------------------------------------------------ structure
    @property
    def num_systems(self) -> int:
        return self.positions.shape[0]

    @property
    def num_atoms(self) -> tuple[int, ...]:
        """Real atoms per system (host ints; needs a concrete mask)."""
        return tuple(int(k) for k in np.sum(np.asarray(self.mask), axis=1))

    @property
    def geometry(self) -> Float[Array, "B 3"] | Float[Array, "B 3 3"]:
        """What `jax.vmap` maps over to give each system its box: ``cells`` for triclinic
        systems, else ``lengths``."""
        return self.lengths if self.cells is None else self.cells

    @property
    def box(self) -> PeriodicBox | TriclinicBox:
        """The ``B`` boxes as one `PeriodicBox` with ``(B, 3)`` lengths, or one
        `TriclinicBox` with ``(B, 3, 3)`` cells (for `jax.vmap`)."""
        return _stacked_box(self.geometry)

    def boxes(self) -> list[PeriodicBox | TriclinicBox]:
        """Each system's `PeriodicBox` or `TriclinicBox`."""
        if self.cells is not None:
            return [TriclinicBox(self.cells[b]) for b in range(self.num_systems)]
        return [PeriodicBox(self.lengths[b]) for b in range(self.num_systems)]

    def unpad(self, values: Array) -> list[Array]:
        """Split ``(B, N, ...)`` per-atom values into each system's ``(n_b, ...)``."""
        return [values[b, :n] for b, n in enumerate(self.num_atoms)]

    def systems(self) -> list[tuple]:
        """Back to ``(positions, box, velocities, masses[, species])`` tuples, unpadded."""
        parts = [self.unpad(x) for x in (self.positions, self.velocities, self.masses)]
        out = []
        for b, box in enumerate(self.boxes()):
            system = (parts[0][b], box, parts[1][b], parts[2][b])
            if self.species is not None:
                system = (*system, self.species[b, : self.num_atoms[b]])
            out.append(system)
        return out

    def replace(self, positions: Array, velocities: Array) -> SystemBatch:
        """This batch with new ``(B, N, 3)`` positions and velocities (e.g. the final state
        of `hybrax.md.simulate_batch`)."""
        return eqx.tree_at(lambda s: (s.positions, s.velocities), self, (positions, velocities))

    # ------------------------------------------------------------------ observables
    def kinetic_energy(self, velocities: Float[Array, "B N 3"] | None = None) -> Array:
        """``(B,)`` kinetic energies ``sum_i m_i |v_i|^2 / 2`` over real atoms (epsilon);
        ``velocities`` default to the batch's."""
        v = self.velocities if velocities is None else velocities
        weight = jnp.where(self.mask, self.masses.astype(v.dtype), 0)
        return 0.5 * jnp.sum(weight[..., None] * v * v, axis=(1, 2))

    def temperature(self, velocities: Float[Array, "B N 3"] | None = None) -> Array:
        """``(B,)`` kinetic temperatures ``2 KE / (3 n_b - 3)`` (epsilon / k_B), as
        `hybrax.md.temperature` for each system alone."""
        ke = self.kinetic_energy(velocities)
        dof = 3 * jnp.sum(self.mask, axis=1) - 3
        return 2.0 * ke / dof.astype(ke.dtype)


def _stacked_box(geometry: Array) -> PeriodicBox | TriclinicBox:
    # a box whose leaf has a leading batch axis (what jax.vmap maps over)
    if geometry.ndim == 3:
        template = TriclinicBox(jnp.eye(3, dtype=geometry.dtype))
        return eqx.tree_at(lambda b: b.cell, template, geometry)
    template = PeriodicBox(jnp.ones(3, geometry.dtype))
    return eqx.tree_at(lambda b: b.lengths, template, geometry)


def _parse_system(index: int, system):
    where = f"SystemBatch.from_systems: system {index}"
    if not isinstance(system, (tuple, list)) or not 2 <= len(system) <= 5:
        raise ConfigurationError(
            f"{where} must be a tuple (positions, box[, velocities[, masses[, species]]]), "
            f"got {type(system).__name__}"
            + (f" of length {len(system)}" if isinstance(system, (tuple, list)) else "")
        )
    positions, box, velocities, masses, species = (*system, None, None, None)[:5]
    try:
        positions = jnp.asarray(positions)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(f"{where}: positions must be an (n, 3) array") from error
    if positions.ndim != 2 or positions.shape[1] != 3 or positions.shape[0] < 1:
        raise ConfigurationError(
            f"{where}: positions must have shape (n, 3) with n >= 1 (all systems are "
            f"three-dimensional), got {positions.shape}"
        )
    if not jnp.issubdtype(positions.dtype, jnp.floating):
        raise ConfigurationError(
            f"{where}: positions must be floating point, got dtype {positions.dtype}"
        )
    if not isinstance(box, (PeriodicBox, TriclinicBox)):
        raise ConfigurationError(
            f"{where}: box must be a hybrax.md.PeriodicBox or TriclinicBox, got "
            f"{type(box).__name__}"
        )
    n, dtype = positions.shape[0], positions.dtype
    concrete = concrete_or_none(positions)
    if concrete is not None and not np.all(np.isfinite(concrete)):
        raise ConfigurationError(f"{where}: positions contain NaN or inf")
    velocities = jnp.zeros_like(positions) if velocities is None else jnp.asarray(velocities)
    if velocities.shape != positions.shape or not jnp.issubdtype(velocities.dtype, jnp.floating):
        raise ConfigurationError(
            f"{where}: velocities must be floats of the positions' shape {positions.shape}, got "
            f"shape {velocities.shape} and dtype {velocities.dtype}"
        )
    concrete = concrete_or_none(velocities)
    if concrete is not None and not np.all(np.isfinite(concrete)):
        raise ConfigurationError(f"{where}: velocities contain NaN or inf")
    masses = jnp.ones((n,), dtype) if masses is None else jnp.asarray(masses)
    if masses.ndim == 0:
        masses = jnp.broadcast_to(masses, (n,))
    if masses.shape != (n,):
        raise ConfigurationError(
            f"{where}: masses must be a number or one per atom ({n},), got shape {masses.shape}"
        )
    concrete = concrete_or_none(masses)
    if concrete is not None and not np.all(np.isfinite(concrete) & (concrete > 0)):
        raise ConfigurationError(f"{where}: masses must be positive and finite")
    if species is not None:
        species = jnp.asarray(species)
        if species.shape != (n,) or not jnp.issubdtype(species.dtype, jnp.integer):
            raise ConfigurationError(
                f"{where}: species must be ({n},) integers, got shape {species.shape} and "
                f"dtype {species.dtype}"
            )
        concrete = concrete_or_none(species)
        if concrete is not None and concrete.size and int(np.min(concrete)) < 0:
            raise ConfigurationError(
                f"{where}: species must be non-negative indices (0, 1, ...) into the "
                f"potential's parameter matrices, got {int(np.min(concrete))}"
            )
        species = species.astype(jnp.int32)
    return positions, box, velocities.astype(dtype), masses.astype(dtype), species


def _box(geometry: Array) -> PeriodicBox | TriclinicBox:
    # inside vmap, one system's SystemBatch.geometry: (3,) lengths or a (3, 3) cell (checked
    # when the batch was built)
    if geometry.ndim == 2:
        template = TriclinicBox(jnp.eye(3, dtype=geometry.dtype))
        return eqx.tree_at(lambda b: b.cell, template, geometry)
    return eqx.tree_at(lambda b: b.lengths, PeriodicBox(1.0), geometry)
