"""Training of the ``kolmogorov-correction`` hybrid: scales, then a curriculum of unrolls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from hybrax.grids import SpectralState
from hybrax.hybrid import (
    Batches,
    Checkpoints,
    Curriculum,
    FitResult,
    Progress,
    fit,
    trainable_filter,
)

from .model import FlowFeatures, VorticityCorrection, hybrid_stepper, network_of, plain_stepper
from .settings import CorrectionSettings

__all__ = ["network_scales", "train_correction"]


def network_scales(
    data: SpectralState, settings: CorrectionSettings
) -> tuple[tuple[float, ...], float]:
    """``(input_scales, output_scale)`` of `VorticityCorrection` from the training data:
    the standard deviations of the input fields (`FlowFeatures`) and the root-mean-square
    error of one plain coarse step, both on every 10th saved state."""
    grid = settings.grid(1)
    features = FlowFeatures(grid, settings.velocity_inputs)
    sub = jax.tree.map(lambda x: x[:, ::10].reshape(-1, *x.shape[2:]), data)
    fields = jax.vmap(features)(sub)
    input_scales = tuple(float(v) for v in jnp.std(fields, axis=(0, 2, 3)))
    plain = plain_stepper(settings, 1)
    before = jax.tree.map(lambda x: x[:, :-1:10], data)
    after = data.field_hat[:, 1::10]
    stepped = _step_each(plain, before).field_hat
    residual = grid.to_physical(stepped - after)
    return input_scales, float(jnp.sqrt(jnp.mean(residual**2)))


@eqx.filter_jit
def _step_each(stepper, states: SpectralState) -> SpectralState:
    return jax.vmap(jax.vmap(stepper.step))(states)


def train_correction(
    net: VorticityCorrection,
    data: SpectralState,
    settings: CorrectionSettings,
    key: PRNGKeyArray,
    *,
    progress: bool = False,
    checkpoints: Checkpoints | None = None,
    stepper: Callable[[Any, CorrectionSettings], Any] = hybrid_stepper,
) -> FitResult:
    """Train the correction through the coarse solver, one curriculum stage at a time.

    `hybrax.hybrid.fit` with a `hybrax.hybrid.Curriculum` over ``settings.stages``: stage
    ``(k, n)`` runs ``n`` Adam steps (gradient clipping at norm 1, learning rate
    cosine-decayed over the stage) on `hybrax.hybrid.UnrolledLoss` with ``k`` unrolled
    hybrid steps, on windows of ``data`` ``window_stride`` apart, differentiated through
    every solver stage and correction. Only the network is trained. With ``checkpoints``
    (a `hybrax.hybrid.Checkpoints`) every stage checkpoints into its own sub-folder and a
    repeated call resumes where it stopped.

    Returns
    -------
    FitResult
        ``model`` is the trained hybrid stepper (its ``net`` the network); ``history``
        holds every stage's losses (entries carry their stage's ``unroll``).
    """
    import optax

    def optimizer(num_steps: int):
        schedule = optax.cosine_decay_schedule(settings.learning_rate, max(num_steps, 1), 0.1)
        return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))

    model = stepper(net, settings)
    return fit(
        model,
        Curriculum(settings.stages, window_stride=settings.window_stride),
        Batches(data, settings.batch_size, key=key),
        optimizer,
        trainable=trainable_filter(model, network_of),
        checkpoints=checkpoints,
        callbacks=[Progress()] if progress else [],
    )
