"""Input and output: orbax checkpoints of any pytree, trajectory datasets in zarr.

orbax, xarray and zarr are imported only when these functions are first used.
"""

from ._checkpoint import Checkpointer, restore_checkpoint, save_checkpoint
from ._dataset import from_xarray, load_dataset, model_attrs, save_dataset, to_xarray

__all__ = [
    "Checkpointer",
    "from_xarray",
    "load_dataset",
    "model_attrs",
    "restore_checkpoint",
    "save_checkpoint",
    "save_dataset",
    "to_xarray",
]
