"""Training data of systems of different sizes: reference energies and forces of a
`SystemBatch`, and the energy-and-force matching loss over them (for `hybrax.hybrid.fit`)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Scalar

from hybrax.core import ConfigurationError

from ._batch import SystemBatch
from ._batch_forces import batch_energy_and_forces, check_batch_energy, check_batch_inputs
from ._energy import AbstractEnergy
from ._masked_list import MaskedNeighborList
from ._neural_training import check_labels

__all__ = ["BatchEnergyForceLoss", "LabelledSystems", "label_systems"]


class LabelledSystems(eqx.Module):
    """Systems of different sizes with reference energies and forces; every leaf has a
    leading ``B`` (system) axis, so `hybrax.hybrid.fit` can draw minibatches of systems.

    Attributes
    ----------
    batch
        The `SystemBatch` (padded positions, mask, boxes, species).
    neighbors
        Its lists from `hybrax.md.batch_neighbor_list`.
    energies
        ``(B,)`` reference potential energies (epsilon).
    forces
        ``(B, N, 3)`` reference forces (epsilon / sigma), zero for padding atoms.
    """

    batch: SystemBatch
    neighbors: MaskedNeighborList
    energies: Float[Array, " B"]
    forces: Float[Array, "B N 3"]

    def __check_init__(self):
        b, n = jnp.shape(self.batch.mask)
        check_labels("LabelledSystems", self.energies, self.forces, (b,), (b, n, 3))

    @property
    def num_systems(self) -> int:
        return self.energies.shape[0]

    def __getitem__(self, index) -> LabelledSystems:
        """The systems selected by ``index`` (a slice or an index array)."""
        return jax.tree.map(lambda x: x[index], self)


def label_systems(
    reference: AbstractEnergy, batch: SystemBatch, neighbors: MaskedNeighborList
) -> LabelledSystems:
    """Label every system of ``batch`` with ``reference``'s energy and forces
    (`hybrax.md.batch_energy_and_forces`): the training set for a potential fitted on
    structures of different sizes with `BatchEnergyForceLoss`.

    Examples
    --------
    >>> import hybrax.md as md
    >>> a, box_a = md.lattice("fcc", 2, density=0.8442)
    >>> b, box_b = md.lattice("fcc", 3, density=0.8442)
    >>> batch = md.SystemBatch.from_systems([(a, box_a), (b[:90], box_b)])
    >>> nbrs = md.batch_neighbor_list(batch, cutoff=1.5)
    >>> data = md.label_systems(md.LennardJones(cutoff=1.5), batch, nbrs)
    >>> data.forces.shape
    (2, 90, 3)
    """
    energies, forces = batch_energy_and_forces(reference, batch, neighbors)
    return LabelledSystems(batch, neighbors, energies, forces)


class BatchEnergyForceLoss(eqx.Module):
    """Energy-and-force matching loss of a potential on `LabelledSystems` of different
    sizes: the mean over systems of `hybrax.md.EnergyForceLoss` of each system alone,

    .. math::
        L = \\frac{1}{B} \\sum_b \\Big[ w_E \\big((U_b - U_b^{ref}) / n_b\\big)^2
          + w_F \\frac{1}{3 n_b} \\sum_{i \\le n_b} |F_{bi} - F_{bi}^{ref}|^2 \\Big]

    (energy error per atom, force error per component, over each system's ``n_b`` real
    atoms; padding counts nowhere). Each system uses its own box. ``potential`` is a pair
    energy or a sum of them (e.g. a `NeuralPairPotential`; many-body energies are refused).

    Parameters
    ----------
    energy_weight, force_weight
        ``w_E`` (1 / epsilon^2) and ``w_F`` (sigma^2 / epsilon^2), static. Defaults 1.

    Examples
    --------
    >>> import jax, hybrax.md as md
    >>> a, box_a = md.lattice("fcc", 2, density=0.8442)
    >>> b, box_b = md.lattice("fcc", 3, density=0.8442)
    >>> batch = md.SystemBatch.from_systems([(a, box_a), (b[:90], box_b)])
    >>> nbrs = md.batch_neighbor_list(batch, cutoff=1.5)
    >>> data = md.label_systems(md.LennardJones(cutoff=1.5), batch, nbrs)
    >>> float(md.BatchEnergyForceLoss()(md.LennardJones(cutoff=1.5), data))
    0.0
    """

    energy_weight: float = eqx.field(static=True, default=1.0)
    force_weight: float = eqx.field(static=True, default=1.0)

    def __call__(self, potential: AbstractEnergy, data: LabelledSystems) -> Scalar:
        if not isinstance(data, LabelledSystems):
            raise ConfigurationError(
                "BatchEnergyForceLoss expects LabelledSystems (from hybrax.md.label_systems), "
                f"got {type(data).__name__}"
            )
        check_batch_energy(potential, "BatchEnergyForceLoss")
        check_batch_inputs(data.batch, data.neighbors, "BatchEnergyForceLoss")
        energies, forces = batch_energy_and_forces(potential, data.batch, data.neighbors)
        counts = jnp.sum(data.batch.mask, axis=1).astype(energies.dtype)
        energy_error = (energies - data.energies) / counts
        force_error = jnp.sum((forces - data.forces) ** 2, axis=(1, 2)) / (3 * counts)
        per_system = self.energy_weight * energy_error**2 + self.force_weight * force_error
        return jnp.mean(per_system)
