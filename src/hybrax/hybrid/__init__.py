"""Hybrid physics–ML models and their training.

Wrappers that fill the Dynamics and Stepper roles, so `hybrax.rollout`, `jax.grad`,
`jax.vmap` and checkpoints work on them unchanged:

- `Corrected(stepper, net)`: a solver step followed by a learned correction;
- `Closure(dynamics, net)` / `SemilinearClosure`: physics tendency plus a learned term
  (`FrozenClosure`: that term evaluated once per step, held over the stages);
- `Emulator(net, dt)`: a purely neural stepper.

Data (`generate_trajectories`, `sliding_windows`, `block_average`), losses (`OneStepLoss`,
`UnrolledLoss`, `PushforwardLoss`, `RegressionLoss`) and the optax trainer `fit`, configured
by objects: `Batches` (batch size and data order), `Checkpoints` (orbax, exact resume),
`DataParallel` (a device mesh), callbacks (`Evaluate`, `History`, `Progress`) and a
`Curriculum` of growing unrolls in place of a loss.
"""

from ._batches import Batches
from ._curriculum import Curriculum
from ._data import block_average, generate_trajectories, sliding_windows
from ._fit_metrics import JsonLines, Metrics, TensorBoard
from ._fit_options import (
    AbstractCallback,
    Checkpoints,
    DataParallel,
    Evaluate,
    FitResult,
    History,
    Progress,
)
from ._losses import OneStepLoss, PushforwardLoss, RegressionLoss, UnrolledLoss, without_time
from ._train import NonFiniteLossError, fit, trainable_filter
from ._wrappers import Closure, Corrected, Emulator, FrozenClosure, SemilinearClosure

__all__ = [
    "AbstractCallback",
    "Batches",
    "Checkpoints",
    "Closure",
    "Corrected",
    "Curriculum",
    "DataParallel",
    "Emulator",
    "Evaluate",
    "FitResult",
    "FrozenClosure",
    "History",
    "JsonLines",
    "Metrics",
    "NonFiniteLossError",
    "OneStepLoss",
    "Progress",
    "PushforwardLoss",
    "RegressionLoss",
    "SemilinearClosure",
    "TensorBoard",
    "UnrolledLoss",
    "block_average",
    "fit",
    "generate_trajectories",
    "sliding_windows",
    "trainable_filter",
    "without_time",
]
