"""Neural networks as equinox modules: MLP, periodic CNN/ResNet/U-Net, FNO, radial features,
Flax adapter.

Domain free: nn imports no domain package (md, fluids, climate). Models that need a
domain live in it and build on nn: the neural MD potentials are `hybrax.md.NeuralPairPotential`
and `hybrax.md.SchNetPotential`.

Fields are channels first, ``(channels, *spatial)`` with one or two periodic spatial axes,
and carry no batch axis (use `jax.vmap`). Every network takes a ``key`` for its initial
weights and a ``dtype`` (default: JAX's default float) that must match its inputs.
"""

from ._cnn import PeriodicCNN, PeriodicConv, PeriodicResNet
from ._flax import FlaxModule, from_flax
from ._fno import FNO, SpectralConv
from ._mlp import MLP
from ._radial import (
    AbstractEnvelope,
    AbstractRadialBasis,
    BesselBasis,
    CosineEnvelope,
    GaussianBasis,
    PolynomialEnvelope,
)
from ._unet import PeriodicUNet

__all__ = [
    "FNO",
    "MLP",
    "AbstractEnvelope",
    "AbstractRadialBasis",
    "BesselBasis",
    "CosineEnvelope",
    "FlaxModule",
    "GaussianBasis",
    "PeriodicCNN",
    "PeriodicConv",
    "PeriodicResNet",
    "PeriodicUNet",
    "PolynomialEnvelope",
    "SpectralConv",
    "from_flax",
]
