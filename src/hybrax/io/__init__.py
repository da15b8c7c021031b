"""Input and output: orbax checkpoints of any pytree, model states as analysis-ready
xarray datasets (physical fields, coordinates, CF attributes) in netCDF or zarr, and
trajectory datasets of any pytree in zarr.

orbax, xarray, zarr and h5netcdf are imported only when these functions are first used.
"""

from ._checkpoint import Checkpointer, restore_checkpoint, save_checkpoint
from ._dataset import from_xarray, load_dataset, model_attrs, save_dataset, to_xarray
from ._fields import FieldSpec, from_dataset, register_fields, to_dataset
from ._model_files import load_model, save_model
from ._store import load_states, open_states, rollout_to_zarr, save_states

__all__ = [
    "Checkpointer",
    "FieldSpec",
    "from_dataset",
    "from_xarray",
    "load_dataset",
    "load_model",
    "load_states",
    "model_attrs",
    "open_states",
    "register_fields",
    "restore_checkpoint",
    "rollout_to_zarr",
    "save_checkpoint",
    "save_dataset",
    "save_model",
    "save_states",
    "to_dataset",
    "to_xarray",
]
