"""Climate toy models: Lorenz-63/96 (one- and two-scale), two-layer quasi-geostrophic flow,
rotating shallow water, energy-balance models."""

from hybrax.core import AB3State, AdamsBashforth3, Filtered  # re-exported from core

from ._albedo import ConstantAlbedo, IceAlbedo
from ._diagnostics import isotropic_spectrum
from ._ebm import BudykoSellers, EBMState, EnergyBalance0D
from ._ebm_equilibrium import HysteresisSweep, hysteresis_sweep, stable_steady_state
from ._lorenz import Lorenz63, Lorenz96, TwoScaleLorenz96, TwoScaleState
from ._qg import QGFlow, TwoLayerQG
from ._qg_closures import BackscatterBiharmonic, Smagorinsky, ZannaBolton2020
from ._qg_filtering import (
    AbstractSpectralCoarsener,
    GaussianSpectralCoarsener,
    SharpSpectralCoarsener,
)
from ._qg_metrics import qg_distances, qg_similarities, wasserstein_distance
from ._shallow_water import (
    AbstractShallowWaterForcing,
    HeightRelaxation,
    ShallowWater,
    ShallowWaterState,
)

__all__ = [
    "AB3State",
    "AbstractShallowWaterForcing",
    "AbstractSpectralCoarsener",
    "AdamsBashforth3",
    "BackscatterBiharmonic",
    "BudykoSellers",
    "ConstantAlbedo",
    "EBMState",
    "EnergyBalance0D",
    "Filtered",
    "GaussianSpectralCoarsener",
    "HeightRelaxation",
    "HysteresisSweep",
    "IceAlbedo",
    "Lorenz63",
    "Lorenz96",
    "QGFlow",
    "ShallowWater",
    "ShallowWaterState",
    "SharpSpectralCoarsener",
    "Smagorinsky",
    "TwoLayerQG",
    "TwoScaleLorenz96",
    "TwoScaleState",
    "ZannaBolton2020",
    "hysteresis_sweep",
    "isotropic_spectrum",
    "qg_distances",
    "qg_similarities",
    "stable_steady_state",
    "wasserstein_distance",
]
