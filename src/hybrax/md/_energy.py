"""Energy modules: anything that maps positions to a potential energy; they add up."""

from __future__ import annotations

import abc

import equinox as eqx
import jax
from jaxtyping import Array, Float

from ._neighbors import AbstractNeighborList
from ._space import AbstractBox

__all__ = ["AbstractEnergy", "SumEnergy"]


class AbstractEnergy(eqx.Module):
    """A potential energy ``U(positions)`` in reduced LJ units (epsilon).

    Subclasses implement ``energy(positions, neighbors, box)``; forces default to
    ``-jax.grad(energy)`` and pair potentials override them with the exact analytic pair
    forces (the same derivative, without autodiff through the neighbour gathers). Physical
    parameters are array leaves, so ``jax.grad`` of anything computed from the energy
    reaches them. Energies add: ``LennardJones() + HarmonicBonds(...)`` is a `SumEnergy`.

    ``neighbors`` is a `AbstractNeighborList` (pair terms need one; bonded terms ignore it).
    """

    @abc.abstractmethod
    def energy(
        self,
        positions: Float[Array, "N 3"],
        neighbors: AbstractNeighborList | None,
        box: AbstractBox,
    ) -> Float[Array, ""]:
        """Total potential energy (epsilon)."""

    def forces(
        self,
        positions: Float[Array, "N 3"],
        neighbors: AbstractNeighborList | None,
        box: AbstractBox,
    ) -> Float[Array, "N 3"]:
        """Forces ``-dU/dr`` (epsilon / sigma), shape ``(N, 3)``."""
        return -jax.grad(self.energy)(positions, neighbors, box)

    def energy_and_forces(
        self,
        positions: Float[Array, "N 3"],
        neighbors: AbstractNeighborList | None,
        box: AbstractBox,
    ) -> tuple[Float[Array, ""], Float[Array, "N 3"]]:
        """Energy and forces together (one pass where the term allows it)."""
        energy, grad = jax.value_and_grad(self.energy)(positions, neighbors, box)
        return energy, -grad

    @property
    def required_cutoff(self) -> float | None:
        """Largest interaction range this term needs from a neighbour list (None: none)."""
        return None

    def __add__(self, other: AbstractEnergy) -> SumEnergy:
        if not isinstance(other, AbstractEnergy):
            return NotImplemented
        left = self.terms if isinstance(self, SumEnergy) else (self,)
        right = other.terms if isinstance(other, SumEnergy) else (other,)
        return SumEnergy(left + right)


class SumEnergy(AbstractEnergy):
    """The sum of several energy terms (what ``a + b`` builds).

    Parameters
    ----------
    terms
        The energies to add (a tuple of `AbstractEnergy`).

    Examples
    --------
    >>> import hybrax.md as md
    >>> total = md.LennardJones() + md.Morse(cutoff=2.5)
    >>> len(total.terms)
    2
    """

    terms: tuple[AbstractEnergy, ...]

    def __check_init__(self):
        for term in self.terms:
            if not isinstance(term, AbstractEnergy):
                raise TypeError(
                    f"SumEnergy terms must be energy modules, got {type(term).__name__}"
                )

    def energy(self, positions, neighbors, box):
        return sum(term.energy(positions, neighbors, box) for term in self.terms)

    def forces(self, positions, neighbors, box):
        return sum(term.forces(positions, neighbors, box) for term in self.terms)

    def energy_and_forces(self, positions, neighbors, box):
        parts = [term.energy_and_forces(positions, neighbors, box) for term in self.terms]
        return sum(p[0] for p in parts), sum(p[1] for p in parts)

    @property
    def required_cutoff(self) -> float | None:
        cutoffs = [t.required_cutoff for t in self.terms if t.required_cutoff is not None]
        return max(cutoffs) if cutoffs else None
