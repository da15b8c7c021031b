"""The contract (Dynamics, Stepper), integrators, the rollout loop and chaos diagnostics."""

from ._contract import AbstractDynamics, AbstractSemilinearDynamics, AbstractStepper
from ._diffrax_stepper import DiffraxStepper
from ._errors import (
    CheckpointError,
    ConfigurationError,
    CorruptedDataError,
    DataMismatchError,
    HybraxError,
    InstabilityError,
    NeighborListError,
    NonFiniteLossError,
    NonFiniteStateError,
    OverwriteError,
)
from ._etdrk4 import ETDRK4, ETDRK4Coefficients, etdrk4_coefficients
from ._explicit import RK4, SSPRK3, AbstractExplicitRK, Euler, Heun
from ._imex import CrankNicolsonRK4
from ._lyapunov import lyapunov_spectrum
from ._parameters import check_parameter, concrete_or_none, parameter, time_step
from ._precision import MixedPrecision, cast_floating
from ._progress import ProgressCallback
from ._rollout import rollout
from ._state import ODEState, get_time, with_time

__all__ = [
    "ETDRK4",
    "RK4",
    "SSPRK3",
    "AbstractDynamics",
    "AbstractExplicitRK",
    "AbstractSemilinearDynamics",
    "AbstractStepper",
    "CrankNicolsonRK4",
    "DiffraxStepper",
    "ETDRK4Coefficients",
    "Euler",
    "Heun",
    "MixedPrecision",
    "CheckpointError",
    "ConfigurationError",
    "CorruptedDataError",
    "DataMismatchError",
    "HybraxError",
    "InstabilityError",
    "NeighborListError",
    "NonFiniteLossError",
    "NonFiniteStateError",
    "OverwriteError",
    "ODEState",
    "ProgressCallback",
    "cast_floating",
    "check_parameter",
    "concrete_or_none",
    "etdrk4_coefficients",
    "get_time",
    "lyapunov_spectrum",
    "parameter",
    "rollout",
    "time_step",
    "with_time",
]
