"""hybrax's error vocabulary: one small hierarchy, documented here, used everywhere.

Every error hybrax raises on purpose is a `HybraxError`, so ``except hybrax.HybraxError``
catches them all; each is also an instance of the built-in exception a Python user would
expect (a bad argument is a `ValueError`, a corrupted file an `OSError`, a blow-up a
`FloatingPointError`), so existing ``except ValueError`` code keeps working.

::

    HybraxError
    ├── ConfigurationError (ValueError)       bad argument, parameter, shape or dtype
    │   └── DataMismatchError                 data made with other settings than the model
    ├── NonFiniteStateError (FloatingPointError)   NaN or inf in a simulated state
    ├── InstabilityError (FloatingPointError)      a finite but exploding simulation
    ├── NonFiniteLossError (FloatingPointError)    training produced a NaN/inf loss or gradient
    ├── NeighborListError (RuntimeError)           a neighbour list that cannot be used
    ├── CorruptedDataError (OSError)               a checkpoint or dataset failed its checksum
    ├── CheckpointError (OSError)                  no usable checkpoint where one was expected
    └── OverwriteError (FileExistsError)           refusing to replace a file hybrax did not write

Configuration errors are raised at trace time (when the Python values are known). Run-time
trouble inside `jax.jit` is raised through `equinox.error_if` (an
`equinox.EquinoxRuntimeError`, or `jax.errors.JaxRuntimeError` under plain `jax.jit`) with a
message that starts with the hybrax error's name; where hybrax drives the loop from Python
(`rollout` called with concrete inputs, `md.simulate`, `hybrid.fit`) it raises the class
above.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

__all__ = [
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
]


class HybraxError(Exception):
    """Base class of every error hybrax raises on purpose."""


class ConfigurationError(HybraxError, ValueError):
    """A bad argument: wrong value, type, shape or dtype. The message names the argument,
    what was given and what would be right."""


class DataMismatchError(ConfigurationError):
    """Data generated with settings (time spacing, parameters, shapes) that differ from the
    model it is used with."""


class NonFiniteStateError(HybraxError, FloatingPointError):
    """A simulation produced NaN or inf; the message names the first bad step."""


class InstabilityError(HybraxError, FloatingPointError):
    """A simulation that stays finite but has blown up (e.g. an atom moving farther than the
    neighbour-list skin in one step, or an energy jump): the time step or the parameters are
    unphysical."""


class NonFiniteLossError(HybraxError, FloatingPointError):
    """Training met a non-finite loss or gradient.

    Attributes
    ----------
    step
        The optimizer step (0-based) whose loss or gradient was non-finite.
    result
        The training result restored from the newest parameters whose loss and gradients
        were finite (a `hybrax.hybrid.FitResult`), or ``None``.
    """

    def __init__(self, message: str, step: int | None = None, result=None):
        super().__init__(message)
        self.step = step
        self.result = result


class NeighborListError(HybraxError, RuntimeError):
    """A neighbour list that cannot give correct pairs (overflow, or a box it no longer
    covers) where it cannot be rebuilt automatically."""


class CorruptedDataError(HybraxError, OSError):
    """A stored array failed its checksum, or a stored file is truncated or unreadable."""


class CheckpointError(HybraxError, OSError):
    """No usable checkpoint where one was asked for (missing, empty or unreadable)."""


class OverwriteError(HybraxError, FileExistsError):
    """hybrax refuses to replace or delete a file or folder it did not write."""


@dataclasses.dataclass(frozen=True)
class StepMessages(Sequence):
    """Lazily formatted messages ``template.format(step=i + 1, total=total)`` for
    ``equinox.branched_error_if``: one per step, built only when an error is raised."""

    template: str
    total: int

    def __len__(self) -> int:
        return self.total

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.total))]
        return self.template.format(step=int(index) + 1, total=self.total)
