"""Training of the ``lorenz96-closure`` networks: offline regression, online through RK4."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from hybrax.hybrid import (
    Batches,
    Checkpoints,
    FitResult,
    Progress,
    RegressionLoss,
    UnrolledLoss,
    fit,
    sliding_windows,
    trainable_filter,
)

from .data import TruthData
from .model import LocalClosureNet, coarse_stepper
from .settings import ClosureSettings

__all__ = ["train_offline", "train_online"]


def train_offline(
    net: LocalClosureNet,
    data: TruthData,
    settings: ClosureSettings,
    key: PRNGKeyArray,
    *,
    progress: bool = False,
) -> FitResult:
    """Regress the closure on the true coupling term: inputs are whole ``X`` vectors,
    targets the coupling terms at the same instant (*a priori* / offline learning);
    ``offline_steps`` Adam steps with a cosine-decayed learning rate."""
    import optax

    steps = settings.offline_steps
    inputs = data.x.reshape(-1, data.x.shape[-1])
    targets = data.u.reshape(-1, data.u.shape[-1])
    schedule = optax.cosine_decay_schedule(settings.offline_learning_rate, max(steps, 1), 0.02)
    return fit(
        net,
        RegressionLoss(scale=float(jnp.var(targets))),
        Batches((inputs, targets), min(settings.offline_batch, inputs.shape[0]), key=key),
        optax.adam(schedule),
        steps=steps,
        callbacks=[Progress()] if progress else [],
    )


def train_online(
    net: Any,
    data: TruthData,
    settings: ClosureSettings,
    key: PRNGKeyArray,
    *,
    progress: bool = False,
    checkpoints: Checkpoints | None = None,
) -> FitResult:
    """Train the closure through the coarse RK4 solver against truth ``X`` trajectories.

    Windows of ``online_unroll + 1`` truth states; the loss is the mean squared error of
    ``X`` along an ``online_unroll``-step coarse rollout (`hybrax.hybrid.UnrolledLoss`),
    differentiated through every RK4 stage; ``online_steps`` steps of clipped Adam. Only
    the network is trained (F stays 20). Returns the fit result; its ``model`` is the whole
    coarse stepper. With ``checkpoints`` (a `hybrax.hybrid.Checkpoints`) it checkpoints and
    resumes.
    """
    import optax

    steps = settings.online_steps
    stepper = coarse_stepper(net, settings)
    windows = sliding_windows(data.states(), settings.online_unroll + 1, stride=5)
    schedule = optax.cosine_decay_schedule(settings.online_learning_rate, max(steps, 1), 0.05)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))
    return fit(
        stepper,
        UnrolledLoss(settings.online_unroll),
        Batches(windows, min(settings.online_batch, windows.u.shape[0]), key=key),
        optimizer,
        steps=steps,
        trainable=trainable_filter(stepper, lambda s: s.dynamics.net),
        checkpoints=checkpoints,
        callbacks=[Progress()] if progress else [],
    )
