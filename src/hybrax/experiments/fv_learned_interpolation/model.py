"""The models of the ``fv-learned-interpolation`` workflow.

All run the finite-volume Kolmogorov flow (`hybrax.fluids.IncompressibleNavierStokes`,
`hybrax.fluids.ProjectedRK`) on a periodic staggered grid:

- ``plain_{1,2,4}x``: the plain solver (``settings.scheme``) at 1, 2, 4 times the coarse
  resolution;
- ``interpolation_1x``: learned interpolation (Kochkov et al. 2021): the advective face
  values come from a CNN correcting a polynomial stencil with weights that sum to one; by
  default one call of `hybrax.fluids.FusedLearnedInterpolation` gives every flux's stencil
  and is held over the step's Runge–Kutta stages (``settings.interpolation_calls``);
- ``correction_1x``: learned correction (`hybrax.hybrid.Corrected`): after every plain
  coarse step a CNN (`StreamCorrection`) sees the cell-centred velocity
  (`CentredVelocity`) and returns a stream-function increment at the cell corners, whose
  staggered curl is added to the face velocities (`AddStreamCorrection`), so the corrected
  state stays discretely divergence-free.

Both CNNs are `hybrax.nn.PeriodicCNN` of the same width and depth, their last layer zero at
the start (each learned model starts as ``plain_1x``).
"""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

import hybrax
from hybrax.core import ConfigurationError
from hybrax.fluids import FlowState, FusedLearnedInterpolation, LearnedInterpolation, ProjectedRK
from hybrax.hybrid import Corrected
from hybrax.nn import PeriodicCNN

from .settings import FVSettings

__all__ = [
    "AddStreamCorrection",
    "CentredVelocity",
    "StreamCorrection",
    "correction_stepper",
    "interpolation_network",
    "interpolation_stepper",
    "parameter_count",
    "plain_stepper",
    "reference_stepper",
]


def plain_stepper(settings: FVSettings, factor: int = 1, scheme=None) -> ProjectedRK:
    """SSP-RK3 with projections for the finite-volume flow at ``factor`` x the coarse grid."""
    return ProjectedRK(settings.model(factor, scheme), settings.time_step(factor))


def reference_stepper(settings: FVSettings) -> hybrax.ETDRK4:
    """The pseudo-spectral reference (`hybrax.ETDRK4` at ``reference_factor`` x)."""
    return hybrax.ETDRK4(settings.reference_model(), settings.reference_time_step())


def _zero_last(cnn: PeriodicCNN) -> PeriodicCNN:
    return eqx.tree_at(
        lambda c: (c.layers[-1].conv.weight, c.layers[-1].conv.bias), cnn, replace_fn=jnp.zeros_like
    )


def interpolation_network(
    settings: FVSettings, key: PRNGKeyArray, velocity_scale: float = 1.0
) -> LearnedInterpolation | FusedLearnedInterpolation:
    """A fresh learned interpolation for ``settings`` (zero correction: the scheme starts as
    the plain ``settings.scheme``): `hybrax.fluids.FusedLearnedInterpolation` (one network
    for all fluxes, its input the face velocities divided by ``velocity_scale``) unless
    ``settings.interpolation_calls`` is ``"per_flux"`` (`hybrax.fluids.LearnedInterpolation`)."""
    s = settings.stencil_size
    fused = settings.interpolation_calls != "per_flux"
    cnn = PeriodicCNN(
        2,
        2 if fused else s + 1,
        4 * (s - 1) if fused else s - 1,
        settings.hidden_channels,
        settings.num_layers,
        settings.kernel_size,
        key=key,
        dtype=settings.real_dtype(),
    )
    if fused:
        return FusedLearnedInterpolation(_zero_last(cnn), s, settings.scheme, float(velocity_scale))
    return LearnedInterpolation(_zero_last(cnn), s, settings.scheme)


def interpolation_stepper(
    scheme: LearnedInterpolation | FusedLearnedInterpolation, settings: FVSettings
) -> ProjectedRK:
    """The coarse solver with the learned interpolation ``scheme`` as its face
    reconstruction; the scheme is bound once per step when ``settings.interpolation_calls``
    is ``"per_step"``."""
    return ProjectedRK(
        settings.model(1, scheme),
        settings.time_step(1),
        freeze_scheme=settings.interpolation_calls == "per_step",
    )


def _periodic_velocity(state: FlowState) -> tuple[Array, Array]:
    """``(u, v)`` without the duplicate periodic last face, each ``(nx, ny)``."""
    return state.u[:-1], state.v[:, :-1]


class CentredVelocity(eqx.Module):
    """``to_input`` of the learned correction: ``u`` and ``v`` averaged to the cell centres,
    divided by ``scale``, as channels ``(2, nx, ny)``, plus ``cos`` and ``sin`` of the
    forcing phase ``k y`` (the flow is not homogeneous in ``y``): 4 channels.

    Parameters
    ----------
    scale
        Velocity scale (static; the reference's velocity standard deviation).
    forcing_wavenumber
        ``k`` of the forcing phase (static).
    """

    scale: float = eqx.field(static=True)
    forcing_wavenumber: int = eqx.field(static=True)

    def __call__(self, state: FlowState) -> Float[Array, "4 nx ny"]:
        u, v = _periodic_velocity(state)
        uc = 0.5 * (u + jnp.roll(u, -1, axis=0))
        vc = 0.5 * (v + jnp.roll(v, -1, axis=1))
        nx, ny = u.shape
        phase = 2 * math.pi * self.forcing_wavenumber * (np.arange(ny) + 0.5) / ny
        waves = np.broadcast_to(np.stack([np.cos(phase), np.sin(phase)])[:, None, :], (2, nx, ny))
        return jnp.concatenate(
            [jnp.stack([uc, vc]) / self.scale, jnp.asarray(waves, u.dtype)], axis=0
        )


class AddStreamCorrection(eqx.Module):
    """``from_output`` of the learned correction: add the staggered curl of a stream
    function ``psi`` at the cell corners, ``du = d psi / dy``, ``dv = -d psi / dx``
    (differences across each face), to the face velocities. The increment is discretely
    divergence-free, so the corrected state is too (up to round-off).

    Parameters
    ----------
    spacing
        ``(dx, dy)`` of the coarse grid (static).
    """

    spacing: tuple[float, float] = eqx.field(static=True)

    def __call__(self, state: FlowState, psi: Float[Array, "nx ny"]) -> FlowState:
        dx, dy = self.spacing
        u, v = _periodic_velocity(state)
        psi = psi.astype(u.dtype)
        u = u + (jnp.roll(psi, -1, axis=1) - psi) / dy
        v = v - (jnp.roll(psi, -1, axis=0) - psi) / dx
        u = jnp.concatenate([u, u[:1]], axis=0)
        v = jnp.concatenate([v, v[:, :1]], axis=1)
        return state.with_velocity((u, v))


class StreamCorrection(eqx.Module):
    """The correction network: ``output_scale * cnn(features)[0]``, a stream-function
    increment at the cell corners (length^2/time), from the 4 channels of
    `CentredVelocity`.

    Parameters
    ----------
    cnn
        A `hybrax.nn.PeriodicCNN`, 4 input channels, 1 output channel.
    output_scale
        Scale of the output (static): the root-mean-square one-step velocity error of the
        plain coarse solver times the grid spacing.
    """

    cnn: PeriodicCNN
    output_scale: float = eqx.field(static=True)

    def __check_init__(self):
        if self.cnn.layers[0].in_channels != 4:
            raise ConfigurationError(
                f"StreamCorrection: the CNN must take 4 input channels (u, v, cos ky, sin ky), "
                f"got {self.cnn.layers[0].in_channels}"
            )

    @classmethod
    def build(cls, settings: FVSettings, output_scale: float, key: PRNGKeyArray):
        """A fresh network (last layer zero: the hybrid starts as the plain solver)."""
        cnn = PeriodicCNN(
            2,
            4,
            1,
            settings.hidden_channels,
            settings.num_layers,
            settings.kernel_size,
            key=key,
            dtype=settings.real_dtype(),
        )
        return cls(_zero_last(cnn), float(output_scale))

    def __call__(self, features: Float[Array, "4 nx ny"]) -> Float[Array, "nx ny"]:
        return self.output_scale * self.cnn(features)[0]


def correction_stepper(net: Any, settings: FVSettings, velocity_scale: float) -> Corrected:
    """The plain coarse step followed by ``net``'s stream-function correction."""
    dx, dy = settings.model(1).grid.spacing
    return Corrected(
        plain_stepper(settings, 1),
        net,
        to_input=CentredVelocity(float(velocity_scale), settings.forcing_wavenumber),
        from_output=AddStreamCorrection((float(dx), float(dy))),
    )


def parameter_count(tree: Any) -> int:
    """Number of array entries (trainable parameters) of a network."""
    import jax

    return int(sum(x.size for x in jax.tree.leaves(eqx.filter(tree, eqx.is_array))))
