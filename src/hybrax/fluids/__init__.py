"""Spectral fluid solvers: 2D Navier–Stokes (vorticity form), Burgers, Kuramoto–Sivashinsky
(1D and 2D) and advection–diffusion, with initial conditions and flow diagnostics.

Every model is an `hybrax.AbstractSemilinearDynamics` on a `hybrax.grids.Grid` whose state
is a `hybrax.grids.SpectralState`; step it with `hybrax.ETDRK4` or
`hybrax.CrankNicolsonRK4` and loop with `hybrax.rollout`.
"""

from ._advection_diffusion import AdvectionDiffusion
from ._boundaries import AbstractBoundary, Boundaries, FreeSlip, Inflow, Outflow, Periodic, Wall
from ._burgers import Burgers
from ._dealiasing import AbstractDealiasing, SmoothFilter, TwoThirdsRule
from ._decorrelation import decorrelation_time
from ._forcing import AbstractForcing, FieldForcing, KolmogorovForcing
from ._fv_advection import (
    AbstractInterpolation,
    CentralInterpolation,
    UpwindInterpolation,
    VanLeerInterpolation,
)
from ._fv_diagnostics import (
    divergence_norm,
    drag_lift_coefficients,
    pressure_at,
    pressure_difference,
    staggered_vorticity,
    stream_function,
    wall_shear_stress,
)
from ._incompressible import FlowState, IncompressibleNavierStokes, ProjectedRK
from ._initial_conditions import random_vorticity, taylor_green_vorticity
from ._kuramoto_sivashinsky import KuramotoSivashinsky, KuramotoSivashinsky2D
from ._learned_interpolation import (
    BoundInterpolation,
    FusedLearnedInterpolation,
    LearnedInterpolation,
)
from ._navier_stokes import NavierStokes2D
from ._navier_stokes3d import NavierStokes3D
from ._observables import (
    energy_spectrum,
    enstrophy,
    kinetic_energy,
    velocity_from_vorticity,
    vorticity_correlation,
)
from ._obstacles import (
    AbstractObstacle,
    Cylinder,
    MaskObstacle,
    Rectangle,
    Sphere,
    penalization_force,
)
from ._poisson import solve_poisson, solve_poisson_krylov
from ._shedding import dominant_frequency, strouhal_number
from ._vorticity import vorticity_from_velocity

__all__ = [
    "AbstractBoundary",
    "AbstractDealiasing",
    "AbstractForcing",
    "AbstractInterpolation",
    "AbstractObstacle",
    "AdvectionDiffusion",
    "BoundInterpolation",
    "Boundaries",
    "Burgers",
    "CentralInterpolation",
    "Cylinder",
    "FieldForcing",
    "FlowState",
    "FreeSlip",
    "FusedLearnedInterpolation",
    "IncompressibleNavierStokes",
    "Inflow",
    "KolmogorovForcing",
    "KuramotoSivashinsky",
    "KuramotoSivashinsky2D",
    "LearnedInterpolation",
    "MaskObstacle",
    "NavierStokes2D",
    "NavierStokes3D",
    "Outflow",
    "Periodic",
    "ProjectedRK",
    "Rectangle",
    "SmoothFilter",
    "Sphere",
    "TwoThirdsRule",
    "UpwindInterpolation",
    "VanLeerInterpolation",
    "Wall",
    "decorrelation_time",
    "divergence_norm",
    "dominant_frequency",
    "drag_lift_coefficients",
    "energy_spectrum",
    "enstrophy",
    "kinetic_energy",
    "penalization_force",
    "pressure_at",
    "pressure_difference",
    "random_vorticity",
    "solve_poisson",
    "solve_poisson_krylov",
    "staggered_vorticity",
    "stream_function",
    "strouhal_number",
    "taylor_green_vorticity",
    "velocity_from_vorticity",
    "vorticity_correlation",
    "vorticity_from_velocity",
    "wall_shear_stress",
]
