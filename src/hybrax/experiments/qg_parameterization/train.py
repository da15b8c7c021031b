"""Training of the ``qg-parameterization`` CNN: offline on the sub-grid forcing, then online
through the coarse solver."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from hybrax.climate._qg import _constants
from hybrax.grids import SpectralState
from hybrax.hybrid import Batches, FitResult, RegressionLoss, UnrolledLoss, fit, trainable_filter

from .data import ReferenceData
from .model import CNNParameterization, cnn_of, flow_features
from .settings import QGParameterizationSettings

__all__ = ["ScaledPV", "network_scales", "train_offline", "train_online"]


def _optimizer(learning_rate: float, num_steps: int):
    import optax

    schedule = optax.cosine_decay_schedule(learning_rate, max(num_steps, 1), 0.05)
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))


def _first_flows(data: ReferenceData, settings, configuration):
    model = settings.model(configuration, settings.coarse_points)
    first = jax.tree.map(lambda x: x[:, 0], data.windows)
    return jax.vmap(model.flow)(first)


def network_scales(
    data: ReferenceData, settings: QGParameterizationSettings, configuration: str
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(input_scales, output_scales)`` of `CNNParameterization`: the standard deviation of
    every input field (`flow_features`) and of the forcing of each layer (1/s^2) over the
    training samples."""
    flows = _first_flows(data, settings, configuration)
    fields = jax.vmap(lambda f: flow_features(f, settings.velocity_inputs))(flows)
    inputs = tuple(float(v) for v in jnp.std(fields, axis=(0, 2, 3)))
    outputs = tuple(float(v) for v in jnp.std(data.forcing, axis=(0, 2, 3)))
    return inputs, outputs


def train_offline(
    cnn: CNNParameterization,
    data: ReferenceData,
    settings: QGParameterizationSettings,
    configuration: str,
    key: PRNGKeyArray,
) -> FitResult:
    """Fit the CNN to the filtered sub-grid forcing (the offline, a priori approach of Ross
    et al. 2023): `hybrax.hybrid.RegressionLoss` on ``(normalised inputs, forcing /
    output_scales)`` of every training sample, ``offline_steps`` Adam steps (cosine-decayed
    ``offline_learning_rate``, clipping at norm 1). ``model`` of the result is the CNN."""
    flows = _first_flows(data, settings, configuration)
    inputs = jax.vmap(cnn.normalised_inputs)(flows)
    targets = data.forcing / jnp.asarray(cnn.output_scales, data.forcing.dtype)[:, None, None]
    result = fit(
        cnn.net,
        RegressionLoss(),
        Batches((inputs, targets.astype(inputs.dtype)), settings.offline_batch, key=key),
        _optimizer(settings.offline_learning_rate, settings.offline_steps),
        steps=settings.offline_steps,
    )
    return dataclasses.replace(result, model=eqx.tree_at(lambda c: c.net, cnn, result.model))


class ScaledPV(eqx.Module):
    """What the online loss compares: the PV of each layer on the modes the coarse model's
    small-scale filter leaves untouched (``kappa <= 0.65 pi``, see
    `hybrax.climate.TwoLayerQG.apply_filter`), over a per-layer scale (so both layers count
    alike), from a coarse state.

    The band matters: the coarse model filters its state every step while the filtered
    reference is filtered once, so on the filtered modes the two differ whatever the
    parameterisation does; a loss there teaches the network to fight the filter, which
    injects energy at the grid scale and blows the model up."""

    grid: object = eqx.field(static=True)
    scales: tuple[float, float] = eqx.field(static=True)

    def __call__(self, state: SpectralState) -> Float[Array, "2 ny nx"]:
        field_hat = state.field_hat
        band = _constants(self.grid, np.dtype(field_hat.real.dtype))[3] == 0
        q = self.grid.irfft(jnp.where(band, field_hat, 0), norm="forward")
        return q / jnp.asarray(self.scales, q.dtype)[:, None, None]


def train_online(
    cnn: CNNParameterization,
    data: ReferenceData,
    settings: QGParameterizationSettings,
    configuration: str,
    key: PRNGKeyArray,
) -> FitResult:
    """Train the CNN through the coarse solver (online, a posteriori): from each training
    sample's filtered state the parameterised coarse model runs ``unroll_steps`` steps and
    `hybrax.hybrid.UnrolledLoss` compares its PV (`ScaledPV`) with the filtered reference at
    every step, differentiated through every step (``checkpoint="sqrt"``). Starts from
    ``cnn`` (the offline weights); ``online_steps`` Adam steps. ``model`` of the result is
    the coarse stepper; `cnn_of` gives its CNN."""
    stepper = settings.coarse_stepper(configuration, cnn)
    model = settings.model(configuration, settings.coarse_points)
    q = model.grid.irfft(data.windows.field_hat[:, 0], norm="forward")
    scales = tuple(float(v) for v in jnp.std(q, axis=(0, 2, 3)))
    loss = UnrolledLoss(
        settings.unroll_steps, checkpoint="sqrt", observe=ScaledPV(model.grid, scales)
    )
    return fit(
        stepper,
        loss,
        Batches(data.windows, settings.online_batch, key=key),
        _optimizer(settings.online_learning_rate, settings.online_steps),
        steps=settings.online_steps,
        trainable=trainable_filter(stepper, lambda s: cnn_of(s).net),
    )
