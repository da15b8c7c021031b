"""Climate toy models: Lorenz-63/96 (one- and two-scale), two-layer quasi-geostrophic flow,
rotating shallow water, energy-balance models."""

from hybrax.core import AB3State, AdamsBashforth3, Filtered  # re-exported from core

from ._albedo import ConstantAlbedo, IceAlbedo
from ._diagnostics import isotropic_spectrum
from ._ebm import BudykoSellers, EBMState, EnergyBalance0D
from ._ebm_equilibrium import HysteresisSweep, hysteresis_sweep, stable_steady_state
from ._lorenz import Lorenz63, Lorenz96, TwoScaleLorenz96, TwoScaleState
from ._qg import QGFlow, TwoLayerQG
from ._shallow_water import (
    AbstractShallowWaterForcing,
    HeightRelaxation,
    ShallowWater,
    ShallowWaterState,
)

__all__ = [
    "AB3State",
    "AbstractShallowWaterForcing",
    "AdamsBashforth3",
    "BudykoSellers",
    "ConstantAlbedo",
    "EBMState",
    "EnergyBalance0D",
    "Filtered",
    "HeightRelaxation",
    "HysteresisSweep",
    "IceAlbedo",
    "Lorenz63",
    "Lorenz96",
    "QGFlow",
    "ShallowWater",
    "ShallowWaterState",
    "TwoLayerQG",
    "TwoScaleLorenz96",
    "TwoScaleState",
    "hysteresis_sweep",
    "isotropic_spectrum",
    "stable_steady_state",
]
