"""Climate toy models: Lorenz-63/96 (one- and two-scale), energy-balance models."""

from ._ebm import (
    BudykoSellers,
    ConstantAlbedo,
    EBMState,
    EnergyBalance0D,
    HysteresisSweep,
    IceAlbedo,
    hysteresis_sweep,
    steady_state,
)
from ._lorenz import Lorenz63, Lorenz96, TwoScaleLorenz96, TwoScaleState

__all__ = [
    "BudykoSellers",
    "ConstantAlbedo",
    "EBMState",
    "EnergyBalance0D",
    "HysteresisSweep",
    "IceAlbedo",
    "Lorenz63",
    "Lorenz96",
    "TwoScaleLorenz96",
    "TwoScaleState",
    "hysteresis_sweep",
    "steady_state",
]
