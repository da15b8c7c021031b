"""Training of the ``lj-neural-potential`` models on energies and forces."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

import hybrax.md as md
from hybrax.hybrid import Batches, FitResult, Progress, fit
from hybrax.md import EnergyForceLoss, LabelledFrames

__all__ = ["train_potential"]


def train_potential(
    potential: md.AbstractEnergy,
    data: LabelledFrames,
    box: md.PeriodicBox,
    key: PRNGKeyArray,
    *,
    num_steps: int,
    batch_frames: int,
    learning_rate: float,
    energy_weight: float = 1.0,
    progress: bool = False,
    trainable: Any = eqx.is_inexact_array,
) -> FitResult:
    """Fit ``potential`` to the energies and forces of ``data`` with `hybrax.hybrid.fit`.

    The loss is `hybrax.md.EnergyForceLoss` with both terms divided by the variance of the
    reference force components (``energy_weight`` scales the energy-per-atom term relative to
    the force term); Adam with a cosine-decayed learning rate and gradient clipping.
    """
    import optax

    force_variance = float(jnp.var(data.forces))
    loss = EnergyForceLoss(
        box, energy_weight=energy_weight / force_variance, force_weight=1.0 / force_variance
    )
    schedule = optax.cosine_decay_schedule(learning_rate, max(num_steps, 1), 0.02)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))
    return fit(
        potential,
        loss,
        Batches(data, min(batch_frames, data.num_frames), key=key),
        optimizer,
        steps=num_steps,
        trainable=trainable,
        callbacks=[Progress()] if progress else [],
    )
