"""hybrax's error classes, in one place (see `hybrax.core` for where they are defined).

.. code-block:: text

    HybraxError
    ├── ConfigurationError (ValueError)            bad argument, parameter, shape or dtype
    │   └── DataMismatchError                      data made with other settings than the model
    ├── NonFiniteStateError (FloatingPointError)   NaN or inf in a simulated state
    ├── InstabilityError (FloatingPointError)      a finite but exploding simulation
    ├── NonFiniteLossError (FloatingPointError)    training met a NaN/inf loss or gradient
    ├── NeighborListError (RuntimeError)           a neighbour list that cannot be used
    ├── CorruptedDataError (OSError)               a checkpoint or dataset failed its checksum
    ├── CheckpointError (OSError)                  no usable checkpoint where one was expected
    └── OverwriteError (FileExistsError)           refusing to replace what hybrax did not write

>>> import hybrax
>>> issubclass(hybrax.errors.ConfigurationError, ValueError)
True
"""

from .core import (
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
