"""Training of the two learned models of ``fv-learned-interpolation``: the same curriculum
of unrolls through the coarse finite-volume solver for both."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from hybrax.fluids import FlowState
from hybrax.hybrid import (
    Batches,
    Checkpoints,
    Curriculum,
    FitResult,
    Progress,
    UnrolledLoss,
    fit,
    trainable_filter,
)

from .model import plain_stepper
from .settings import FVSettings

__all__ = ["network_scales", "train_model", "velocity_only"]


def velocity_only(state: FlowState):
    """What the loss compares: the face velocities (the reference has no pressure)."""
    return (state.u, state.v)


def _loss(unroll: int) -> UnrolledLoss:
    return UnrolledLoss(unroll, checkpoint="sqrt", observe=velocity_only)


def network_scales(data: FlowState, settings: FVSettings) -> tuple[float, float]:
    """``(velocity_scale, output_scale)`` from the training data (every 10th state): the
    standard deviation of the face velocities, and the root-mean-square error of one plain
    coarse step times the grid spacing (the size of a stream-function correction)."""
    sub = jax.tree.map(lambda x: x[:, ::10], data)
    velocity_scale = float(jnp.std(jnp.stack([sub.u[..., :-1, :], sub.v[..., :-1]])))
    plain = plain_stepper(settings, 1)
    before = jax.tree.map(lambda x: x[:, :-1:10], data)
    after = jax.tree.map(lambda x: x[:, 1::10], data)
    stepped = _step_each(plain, before)
    error = jnp.sqrt(
        0.5 * (jnp.mean((stepped.u - after.u) ** 2) + jnp.mean((stepped.v - after.v) ** 2))
    )
    spacing = float(plain.dynamics.grid.spacing[0])
    return velocity_scale, float(error) * spacing


@eqx.filter_jit
def _step_each(stepper, states: FlowState) -> FlowState:
    return jax.vmap(jax.vmap(stepper.step))(states)


def train_model(
    model,
    trainable,
    data: FlowState,
    settings: FVSettings,
    key: PRNGKeyArray,
    *,
    progress: bool = False,
    checkpoints: Checkpoints | None = None,
) -> FitResult:
    """Train the network inside ``model`` (a stepper on the coarse grid) through the
    solver: `hybrax.hybrid.fit` with a `hybrax.hybrid.Curriculum` over
    ``settings.stages`` of `hybrax.hybrid.UnrolledLoss` (``checkpoint="sqrt"``, velocities
    compared), Adam with gradient clipping at norm 1 and a cosine-decayed learning rate per
    stage. ``trainable`` picks the network out of the model (``model -> network``).

    Returns
    -------
    FitResult
        ``model`` is the trained stepper.
    """
    import optax

    def optimizer(num_steps: int):
        schedule = optax.cosine_decay_schedule(settings.learning_rate, max(num_steps, 1), 0.1)
        return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))

    return fit(
        model,
        Curriculum(settings.stages, loss=_loss, window_stride=settings.window_stride),
        Batches(data, settings.batch_size, key=key),
        optimizer,
        trainable=trainable_filter(model, trainable),
        checkpoints=checkpoints,
        callbacks=[Progress()] if progress else [],
    )
