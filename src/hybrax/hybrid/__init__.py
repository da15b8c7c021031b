"""Hybrid physics–ML models and their training.

Wrappers that fill the Dynamics and Stepper roles, so `hybrax.rollout`, `jax.grad`,
`jax.vmap` and checkpoints work on them unchanged:

- `Corrected(stepper, net)`: a solver step followed by a learned correction;
- `Closure(dynamics, net)` / `SemilinearClosure`: physics tendency plus a learned term;
- `Emulator(net, dt)`: a purely neural stepper.

Data (`generate_trajectories`, `sliding_windows`, `block_average`), losses (`OneStepLoss`,
`UnrolledLoss`, `PushforwardLoss`, `RegressionLoss`) and the optax trainer `fit` (orbax
checkpoints, exact resume, data-parallel over a device mesh).
"""

from ._curriculum import fit_curriculum
from ._data import block_average, generate_trajectories, sliding_windows
from ._losses import OneStepLoss, PushforwardLoss, RegressionLoss, UnrolledLoss, without_time
from ._train import FitResult, NonFiniteLossError, fit, trainable_filter
from ._wrappers import Closure, Corrected, Emulator, SemilinearClosure

__all__ = [
    "Closure",
    "Corrected",
    "Emulator",
    "FitResult",
    "NonFiniteLossError",
    "OneStepLoss",
    "PushforwardLoss",
    "RegressionLoss",
    "SemilinearClosure",
    "UnrolledLoss",
    "block_average",
    "fit",
    "fit_curriculum",
    "generate_trajectories",
    "sliding_windows",
    "trainable_filter",
    "without_time",
]
