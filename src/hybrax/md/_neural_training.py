"""Training data and loss for MD potentials: reference-labelled frames and energy-and-force
matching (for `hybrax.hybrid.fit`)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, Scalar

from hybrax.core import ConfigurationError, concrete_or_none

from ._energy import AbstractEnergy
from ._neighbors import AbstractNeighborList, retry_with_grown_list
from ._space import AbstractBox

__all__ = ["EnergyForceLoss", "LabelledFrames", "label_frames"]


class LabelledFrames(eqx.Module):
    """Configurations with reference energies and forces, a leading ``frames`` axis on
    every leaf (what `hybrax.hybrid.fit` batches over).

    Parameters
    ----------
    positions
        ``(frames, N, 3)`` positions (sigma).
    neighbors
        One `hybrax.md` neighbour list per frame, stacked along the leading axis (built by
        `label_frames`).
    energies
        ``(frames,)`` potential energies (epsilon).
    forces
        ``(frames, N, 3)`` forces (epsilon / sigma).
    """

    positions: Float[Array, "frames N 3"]
    neighbors: AbstractNeighborList
    energies: Float[Array, " frames"]
    forces: Float[Array, "frames N 3"]

    def __check_init__(self):
        shape = tuple(jnp.shape(self.positions))
        if len(shape) != 3 or shape[2] != 3:
            raise ConfigurationError(
                f"LabelledFrames: positions must have shape (frames, N, 3), got {shape}"
            )
        check_labels("LabelledFrames", self.energies, self.forces, shape[:1], shape)

    @property
    def num_frames(self) -> int:
        return self.positions.shape[0]

    def __getitem__(self, index) -> "LabelledFrames":
        """The frames selected by ``index`` (a slice or an index array)."""
        return jax.tree.map(lambda x: x[index], self)


def check_labels(owner: str, energies, forces, energy_shape, force_shape) -> None:
    """Reference energies and forces of the expected shapes (one per frame or system; a
    ``(1,)`` array would otherwise broadcast against every prediction), floating, and
    finite where concrete."""
    labels = (("energies", energies, energy_shape), ("forces", forces, force_shape))
    for name, value, want in labels:
        got = tuple(jnp.shape(value))
        if got != tuple(want):
            raise ConfigurationError(
                f"{owner}: {name} must have shape {tuple(want)} (one per frame or system, "
                f"matching the positions), got {got}"
            )
        if not jnp.issubdtype(jnp.result_type(value), jnp.floating):
            raise ConfigurationError(
                f"{owner}: {name} must be floating point, got {jnp.result_type(value)}"
            )
        known = concrete_or_none(value)
        if known is not None and not np.all(np.isfinite(known)):
            index = tuple(np.argwhere(~np.isfinite(known))[0].tolist())
            raise ConfigurationError(
                f"{owner}: {name} must be finite, got {known[index].item()!r} at index {index}"
            )


def label_frames(
    reference: AbstractEnergy,
    positions: Float[Array, "frames N 3"],
    box: AbstractBox,
    neighbors: AbstractNeighborList,
) -> LabelledFrames:
    """Reference energies and forces of ``frames`` configurations, with a neighbour list
    per frame so that a loss never rebuilds one.

    ``neighbors`` is a template (built with `hybrax.md.neighbor_list` for one of the frames,
    with the cut-off the potentials to be trained need); it is rebuilt for every frame with
    its static capacities, grown first if some frame needs more room.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import hybrax.md as md
        >>> positions, box = md.lattice("fcc", 3, density=0.8442)
    >>> nbrs = md.neighbor_list(positions, box, cutoff=2.5)
    >>> data = md.label_frames(md.LennardJones(), jnp.stack([positions, positions]), box, nbrs)
    >>> data.forces.shape
    (2, 108, 3)
    """
    positions = jnp.asarray(positions)
    if positions.ndim != 3 or positions.shape[-1] != 3:
        raise ConfigurationError(
            f"label_frames: positions must be (frames, N, 3), got {positions.shape}"
        )
    if not isinstance(neighbors, AbstractNeighborList):
        raise ConfigurationError(
            "label_frames needs a neighbour list template: build one with "
            "hybrax.md.neighbor_list(positions[0], box, cutoff)"
        )
    if reference.required_cutoff is not None and reference.required_cutoff > neighbors.cutoff:
        raise ConfigurationError(
            f"label_frames: the reference energy needs cutoff {reference.required_cutoff}, the "
            f"neighbour list has {neighbors.cutoff}"
        )
    _, lists = retry_with_grown_list(
        lambda template: _overflowed(_frame_lists(template, positions, box)),
        lambda template, lists: template.with_needs_of(lists).grow(positions[0], box),
        neighbors,
        max_regrowths=5,
        message=(
            "label_frames: the neighbour list still overflowed after 5 rebuilds; some "
            "frames may hold collapsed or exploded configurations (check the positions)"
        ),
    )
    energies, forces = _frame_labels(reference, positions, lists, box)
    return LabelledFrames(positions, lists, energies, forces)


def _overflowed(lists: AbstractNeighborList) -> tuple[AbstractNeighborList, bool]:
    return lists, bool(jnp.any(lists.overflow))


@eqx.filter_jit
def _frame_lists(neighbors: AbstractNeighborList, positions, box):
    return jax.vmap(lambda p: neighbors.update(p, box))(positions)


@eqx.filter_jit
def _frame_labels(reference: AbstractEnergy, positions, lists, box):
    return lax.map(lambda a: reference.energy_and_forces(a[0], a[1], box), (positions, lists))


class EnergyForceLoss(eqx.Module):
    """Energy-and-force matching loss of a potential on `LabelledFrames`:

    .. math::
        L = w_E \\langle ((U(x) - U_{ref}) / N)^2 \\rangle
          + w_F \\langle |F(x) - F_{ref}|^2 / (3N) \\rangle,
        \\qquad F = -\\nabla U

    averaged over the frames of the batch (energy error per atom; force error per
    component). The model's forces come from its ``energy_and_forces`` (``-jax.grad`` of
    the energy, or the exact pair derivative for pair potentials), so training
    differentiates through the force. Use it with `hybrax.hybrid.fit` (``model`` may be a
    sum of energies, with ``trainable`` picking the learned term).

    Parameters
    ----------
    box
        The frames' box.
    energy_weight, force_weight
        ``w_E`` (1 / epsilon^2) and ``w_F`` (sigma^2 / epsilon^2), static; e.g. the inverse
        variances of the reference energy per atom and force component. Defaults 1.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import hybrax.md as md
    >>> positions, box = md.lattice("fcc", 3, density=0.8442)
    >>> nbrs = md.neighbor_list(positions, box, cutoff=2.5)
    >>> data = md.label_frames(md.LennardJones(), positions[None], box, nbrs)
    >>> net = md.NeuralPairPotential(2.5, key=jax.random.key(0))
    >>> float(md.EnergyForceLoss(box)(net, data)) > 0
    True
    """

    box: AbstractBox
    energy_weight: float = eqx.field(static=True, default=1.0)
    force_weight: float = eqx.field(static=True, default=1.0)

    def __call__(self, potential: AbstractEnergy, batch: LabelledFrames) -> Scalar:
        if not isinstance(batch, LabelledFrames):
            raise ConfigurationError(
                "EnergyForceLoss expects a LabelledFrames batch (from hybrax.md.label_frames), "
                f"got {type(batch).__name__}"
            )
        num_atoms = batch.positions.shape[-2]

        def one(positions, neighbors):
            return potential.energy_and_forces(positions, neighbors, self.box)

        energies, forces = jax.vmap(one)(batch.positions, batch.neighbors)
        energy_error = (energies - batch.energies) / num_atoms
        force_error = forces - batch.forces
        return self.energy_weight * jnp.mean(energy_error**2) + self.force_weight * jnp.mean(
            force_error**2
        )
