"""The parameterisations of the ``qg-parameterization`` workflow: the CNN and the baselines."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from hybrax.climate import (
    BackscatterBiharmonic,
    QGFlow,
    Smagorinsky,
    TwoLayerQG,
    ZannaBolton2020,
)
from hybrax.core import ConfigurationError
from hybrax.nn import PeriodicCNN

from .settings import QGParameterizationSettings

__all__ = ["CNNParameterization", "baselines", "flow_features"]


def flow_features(flow: QGFlow, velocity: bool) -> Float[Array, "channels ny nx"]:
    """The CNN's input fields from a coarse `hybrax.climate.QGFlow`: ``(q_1, q_2)`` (1/s) and,
    with ``velocity``, ``(u_1, u_2, v_1, v_2)`` (m/s, eddy velocities), shape
    ``(2 or 6, ny, nx)``."""
    fields = (flow.q, flow.u, flow.v) if velocity else (flow.q,)
    return jnp.concatenate(fields)


class CNNParameterization(eqx.Module):
    """A periodic CNN predicting the sub-grid PV forcing of both layers of a coarse
    `hybrax.climate.TwoLayerQG`, used as its ``parameterization=``.

    ``S = output_scales * net(features / input_scales)``: the input fields (`flow_features`)
    are divided by fixed per-channel scales (their standard deviations in the training
    data), and the network's two output channels multiplied by fixed per-layer scales (the
    standard deviations of the filtered forcing, 1/s^2). Only ``net`` is trained; the scales
    are static. Returned on the grid, shape ``(2, ny, nx)``, 1/s^2.

    Parameters
    ----------
    net
        A `hybrax.nn.PeriodicCNN` with ``len(input_scales)`` input and 2 output channels.
    input_scales, output_scales
        Per-channel scales (tuples of floats).
    velocity_inputs
        Whether the inputs include the velocities (see `flow_features`).

    Examples
    --------
    >>> import jax, hybrax
    >>> from hybrax.climate import TwoLayerQG
    >>> from hybrax.experiments.qg_parameterization import CNNParameterization
    >>> closure = CNNParameterization.build(
    ...     (1e-5, 1e-6), (1e-12, 1e-13), hidden_channels=4, num_layers=2, kernel_size=3,
    ...     velocity_inputs=False, key=jax.random.key(0))
    >>> model = TwoLayerQG.eddy(16, parameterization=closure)
    >>> closure(model.flow(model.initial_state()), model).shape
    (2, 16, 16)
    """

    net: PeriodicCNN
    input_scales: tuple[float, ...] = eqx.field(static=True)
    output_scales: tuple[float, ...] = eqx.field(static=True)
    velocity_inputs: bool = eqx.field(static=True)

    @classmethod
    def build(
        cls,
        input_scales: tuple[float, ...],
        output_scales: tuple[float, ...],
        *,
        hidden_channels: int,
        num_layers: int,
        kernel_size: int,
        velocity_inputs: bool,
        key: PRNGKeyArray,
        dtype=jnp.float32,
    ) -> CNNParameterization:
        """A fresh network (first layer ``kernel_size`` wide, the others 3; parameters in
        ``dtype``), its last layer scaled down by 10 so that the untrained closure starts
        near zero."""
        expected = 6 if velocity_inputs else 2
        if len(input_scales) != expected or len(output_scales) != 2:
            raise ConfigurationError(
                f"CNNParameterization.build: input_scales needs {expected} entries and "
                f"output_scales 2, got {len(input_scales)} and {len(output_scales)}"
            )
        kernels = (kernel_size,) + (3,) * (num_layers - 1)
        net = PeriodicCNN(
            2, expected, 2, hidden_channels, num_layers, kernels, key=key, dtype=dtype
        )
        last = net.layers[-1].conv
        net = eqx.tree_at(
            lambda n: (n.layers[-1].conv.weight, n.layers[-1].conv.bias),
            net,
            (last.weight / 10, last.bias * 0),
        )
        return cls(net, tuple(map(float, input_scales)), tuple(map(float, output_scales)),
                   velocity_inputs)  # fmt: skip

    def normalised_inputs(self, flow: QGFlow) -> Float[Array, "channels ny nx"]:
        """The network's input: `flow_features` over ``input_scales``, in the net's dtype."""
        fields = flow_features(flow, self.velocity_inputs)
        scales = jnp.asarray(self.input_scales, fields.dtype)[:, None, None]
        return (fields / scales).astype(self.net.dtype)

    def __call__(self, flow: QGFlow, model: TwoLayerQG) -> Float[Array, "2 ny nx"]:
        out = self.net(self.normalised_inputs(flow)).astype(flow.q.dtype)
        return out * jnp.asarray(self.output_scales, flow.q.dtype)[:, None, None]


def baselines() -> dict[str, eqx.Module | None]:
    """The physics baselines of Ross et al. (2023), pyqg's defaults: no parameterisation,
    `hybrax.climate.Smagorinsky` (``C_S = 0.15``), `hybrax.climate.ZannaBolton2020`
    (``kappa_BC = -46761284 m^2``) and `hybrax.climate.BackscatterBiharmonic` (0.08, 0.99)."""
    return {
        "none": None,
        "smagorinsky": Smagorinsky(0.15),
        "zanna_bolton": ZannaBolton2020(),
        "backscatter_biharmonic": BackscatterBiharmonic(),
    }


def cnn_of(stepper) -> CNNParameterization:
    """The CNN inside a coarse stepper (``Filtered(AdamsBashforth3(model))``)."""
    return stepper.stepper.dynamics.parameterization


def with_cnn(settings: QGParameterizationSettings, configuration: str, cnn) -> object:
    """The coarse stepper with ``cnn`` as its parameterisation."""
    return settings.coarse_stepper(configuration, cnn)
