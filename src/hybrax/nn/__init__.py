"""Neural networks as equinox modules: MLP, periodic CNN/ResNet/U-Net, FNO, Flax adapter.

Fields are channels first, ``(channels, *spatial)`` with one or two periodic spatial axes,
and carry no batch axis (use `jax.vmap`). Every network takes a ``key`` for its initial
weights and a ``dtype`` (default: JAX's default float) that must match its inputs.
"""

from ._cnn import PeriodicCNN, PeriodicConv, PeriodicResNet
from ._flax import FlaxModule, from_flax
from ._fno import FNO, SpectralConv
from ._mlp import MLP
from ._potentials import (
    AbstractEnvelope,
    AbstractRadialBasis,
    BesselBasis,
    CosineEnvelope,
    EnergyForceLoss,
    GaussianBasis,
    LabelledFrames,
    NeuralPairPotential,
    PolynomialEnvelope,
    SchNetPotential,
    label_frames,
)
from ._unet import PeriodicUNet

__all__ = [
    "FNO",
    "MLP",
    "AbstractEnvelope",
    "AbstractRadialBasis",
    "BesselBasis",
    "CosineEnvelope",
    "EnergyForceLoss",
    "FlaxModule",
    "GaussianBasis",
    "LabelledFrames",
    "NeuralPairPotential",
    "PeriodicCNN",
    "PeriodicConv",
    "PeriodicResNet",
    "PeriodicUNet",
    "PolynomialEnvelope",
    "SchNetPotential",
    "SpectralConv",
    "from_flax",
    "label_frames",
]
