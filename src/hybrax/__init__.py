"""hybrax: differentiable physics in JAX, where solvers and neural networks compose.

Everything is an `equinox.Module`. A *Dynamics* gives ``tendency(state, t)``; a *Stepper*
advances ``step(state)`` by its own ``dt``; `rollout` is the one time loop.

>>> import hybrax
>>> model = hybrax.climate.Lorenz96(num_variables=40, forcing=8.0)
>>> final, traj = hybrax.rollout(hybrax.RK4(model, dt=0.01), model.initial_state(), 500)
"""

from importlib.metadata import PackageNotFoundError, version

from . import climate, core, errors, fluids, grids, hybrid, io, md, nn, parallel
from .core import (
    ETDRK1,
    ETDRK2,
    ETDRK3,
    ETDRK4,
    RK4,
    SSPRK3,
    AB3State,
    AbstractDynamics,
    AbstractExplicitRK,
    AbstractSemilinearDynamics,
    AbstractStepper,
    AbstractStepperWrapper,
    AdamsBashforth3,
    CheckpointError,
    ConfigurationError,
    CorruptedDataError,
    CrankNicolsonRK4,
    DataMismatchError,
    DiffraxStepper,
    ETDCoefficients,
    ETDRK4Coefficients,
    Euler,
    Filtered,
    Heun,
    HybraxError,
    InstabilityError,
    MixedPrecision,
    NeighborListError,
    NonFiniteLossError,
    NonFiniteStateError,
    ODEState,
    OverwriteError,
    check_time_step,
    courant_number,
    etdrk4_coefficients,
    get_time,
    lyapunov_spectrum,
    max_time_step,
    rollout,
    steady_state,
    with_time,
)

try:
    __version__ = version("hybrax")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "ETDRK1",
    "ETDRK2",
    "ETDRK3",
    "ETDRK4",
    "RK4",
    "SSPRK3",
    "AB3State",
    "AbstractDynamics",
    "AbstractExplicitRK",
    "AbstractSemilinearDynamics",
    "AbstractStepper",
    "AbstractStepperWrapper",
    "AdamsBashforth3",
    "CheckpointError",
    "ConfigurationError",
    "CorruptedDataError",
    "CrankNicolsonRK4",
    "DataMismatchError",
    "DiffraxStepper",
    "ETDCoefficients",
    "ETDRK4Coefficients",
    "Euler",
    "Filtered",
    "Heun",
    "HybraxError",
    "InstabilityError",
    "MixedPrecision",
    "NeighborListError",
    "NonFiniteLossError",
    "NonFiniteStateError",
    "ODEState",
    "OverwriteError",
    "check_time_step",
    "climate",
    "core",
    "courant_number",
    "errors",
    "etdrk4_coefficients",
    "fluids",
    "get_time",
    "grids",
    "hybrid",
    "io",
    "lyapunov_spectrum",
    "max_time_step",
    "md",
    "nn",
    "parallel",
    "rollout",
    "steady_state",
    "with_time",
]
