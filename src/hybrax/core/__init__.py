"""The contract (Dynamics, Stepper), integrators, the rollout loop and chaos diagnostics."""

from ._contract import (
    AbstractDynamics,
    AbstractSemilinearDynamics,
    AbstractStepper,
    AbstractStepperWrapper,
    check_dynamics,
    check_stepper,
    check_tendency,
)
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
from ._etdrk import (
    ETDRK1,
    ETDRK2,
    ETDRK3,
    ETDRK4,
    ETDCoefficients,
    ETDRK4Coefficients,
    etdrk4_coefficients,
)
from ._explicit import RK4, SSPRK3, AbstractExplicitRK, Euler, Heun
from ._filtered import Filtered
from ._imex import CrankNicolsonRK4
from ._lyapunov import lyapunov_spectrum
from ._multistep import AB3State, AdamsBashforth3
from ._parameters import (
    check_dtype,
    check_float,
    check_parameter,
    concrete_or_none,
    parameter,
    time_step,
)
from ._precision import MixedPrecision, cast_floating
from ._progress import ProgressCallback, progress_bar
from ._rollout import Checkpoint, rollout
from ._semilinear import AbstractSemilinearStepper
from ._state import (
    ODEState,
    get_time,
    is_inexact_array,
    mul,
    scalar_like,
    time_or_zero,
    with_time,
)
from ._steady_state import steady_state
from ._time_step import check_time_step, courant_number, max_time_step
from ._validation import check_field

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
    "AbstractSemilinearStepper",
    "AbstractStepper",
    "AbstractStepperWrapper",
    "AdamsBashforth3",
    "Checkpoint",
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
    "ProgressCallback",
    "cast_floating",
    "check_dtype",
    "check_dynamics",
    "check_field",
    "check_float",
    "check_parameter",
    "check_stepper",
    "check_tendency",
    "check_time_step",
    "concrete_or_none",
    "courant_number",
    "etdrk4_coefficients",
    "get_time",
    "is_inexact_array",
    "lyapunov_spectrum",
    "max_time_step",
    "mul",
    "parameter",
    "progress_bar",
    "rollout",
    "scalar_like",
    "steady_state",
    "time_or_zero",
    "time_step",
    "with_time",
]
