"""Learned potentials of the ``lj-neural-potential`` workflow."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from hybrax.md import LabelledFrames, NeuralPairPotential, SchNetPotential
from hybrax.nn import BesselBasis

from .settings import FULL, LJSettings

__all__ = ["new_pair_potential", "new_schnet_potential"]


def new_pair_potential(key: PRNGKeyArray, settings: LJSettings = FULL) -> NeuralPairPotential:
    """A freshly initialised `hybrax.md.NeuralPairPotential` of the experiment's size, with
    the repulsive prior of radius ``settings.core_radius`` (none if 0)."""
    return NeuralPairPotential(
        settings.cutoff,
        key=key,
        basis=BesselBasis(settings.num_basis),
        width_size=settings.width,
        depth=settings.depth,
        num_knots=settings.num_knots,
        core_radius=settings.core_radius or None,
        dtype=jnp.zeros(()).dtype,
    )


def new_schnet_potential(
    key: PRNGKeyArray, data: LabelledFrames, settings: LJSettings = FULL
) -> SchNetPotential:
    """A freshly initialised `hybrax.md.SchNetPotential`, its per-atom energy shift set to
    the mean reference energy per atom of ``data``."""
    per_atom = data.energies / data.positions.shape[1]
    return SchNetPotential(
        settings.cutoff,
        key=key,
        num_features=settings.schnet_features,
        num_interactions=settings.schnet_interactions,
        energy_shift=float(jnp.mean(per_atom)),
        dtype=jnp.zeros(()).dtype,
    )
