"""Model states written to netCDF (h5netcdf) or zarr as physical fields, and read back.

`save_states` writes one dataset (`to_dataset`) to a ``.nc`` file through h5netcdf (which
needs only h5py, not the netCDF-C library) or to a zarr store; `load_states` gives the
model's states back; `rollout_to_zarr` runs `hybrax.rollout` in chunks and appends each
chunk along ``time``, so a trajectory longer than memory streams to disk. An existing path
is never replaced unless ``overwrite=True``.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from jaxtyping import PyTree

from hybrax.core import AbstractStepper, ConfigurationError, OverwriteError, rollout

from ._fields import _xarray, from_dataset, to_dataset

__all__ = ["load_states", "open_states", "rollout_to_zarr", "save_states"]

_NETCDF = (".nc", ".nc4", ".netcdf", ".h5")


def _format(path: Path, format: str | None, who: str) -> str:
    if format is None:
        format = "netcdf" if path.suffix.lower() in _NETCDF else "zarr"
    if format not in ("netcdf", "zarr"):
        raise ConfigurationError(
            f"{who}: format must be 'netcdf', 'zarr' or None (from the suffix: .nc is "
            f"netCDF, anything else zarr), got {format!r}"
        )
    return format


def _as_path(path, who: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigurationError(
            f"{who}: path must be a str or pathlib.Path, got {type(path).__name__}"
        )
    return Path(path)


def _target(path, overwrite, who: str) -> Path:
    path = _as_path(path, who)
    if not isinstance(overwrite, bool):
        raise ConfigurationError(f"{who}: overwrite must be True or False, got {overwrite!r}")
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise OverwriteError(
                f"{who}: {os.fspath(path)!r} exists; refusing to overwrite it. Choose another "
                "path, delete it, or pass overwrite=True"
            )
        if not _written_by_hybrax(path):
            raise OverwriteError(
                f"{who}: {os.fspath(path)!r} was not written by hybrax.io (no 'hybrax_fields' "
                "attribute); refusing to replace it even with overwrite=True"
            )
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return path


def _written_by_hybrax(path: Path) -> bool:
    """Whether ``path`` is a netCDF file or zarr store that save_states/rollout_to_zarr wrote
    (its dataset carries the ``hybrax_fields`` attribute): only those may be replaced."""
    try:
        xr = _xarray()
        if path.is_dir():
            dataset = xr.open_zarr(os.fspath(path))
        else:
            dataset = xr.open_dataset(path, engine="h5netcdf")
        with dataset:
            return "hybrax_fields" in dataset.attrs
    except Exception:  # unreadable as a dataset: not ours
        return False


def _write(dataset, path: Path, format: str, who: str) -> None:
    try:
        if format == "netcdf":
            _require("h5netcdf", "netCDF files")
            dataset.to_netcdf(path, engine="h5netcdf", invalid_netcdf=False)
        else:
            _require("zarr", "zarr stores")
            _to_zarr(dataset, path, mode="w-")
    except OSError as error:
        raise ConfigurationError(
            f"{who}: cannot write {os.fspath(path)!r} ({type(error).__name__}: {error}); pass a "
            "path in a writable folder"
        ) from error


def _require(module: str, what: str) -> None:
    try:
        __import__(module)
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise ImportError(f"{what} need {module}: pip install 'hybrax[io]'") from error


def save_states(
    path: str | os.PathLike,
    model: Any,
    states: PyTree,
    times: Any = None,
    *,
    format: str | None = None,
    overwrite: bool = False,
    attrs: Mapping[str, Any] | None = None,
) -> None:
    """Write a state or a trajectory as physical fields to netCDF or zarr.

    Parameters
    ----------
    path
        ``*.nc`` (netCDF-4 through h5netcdf) or a zarr store (any other name, e.g.
        ``run.zarr``).
    model, states, times, attrs
        As for `to_dataset`.
    format
        ``"netcdf"``, ``"zarr"`` or ``None`` (from the suffix).
    overwrite
        Replace an existing ``path`` (default False: `hybrax.OverwriteError` naming it).

    Examples
    --------
    >>> import tempfile, hybrax
    >>> model = hybrax.climate.Lorenz96(8)
    >>> stepper = hybrax.RK4(model, 0.01)
    >>> _, trajectory = hybrax.rollout(stepper, model.initial_state(), 20, save_every=10)
    >>> path = tempfile.mkdtemp() + "/l96.nc"
    >>> save_states(path, stepper, trajectory)
    >>> back = load_states(path, stepper)
    >>> bool((back.u == trajectory.u).all())
    True
    """
    dataset = to_dataset(model, states, times, attrs=attrs)
    format = _format(_as_path(path, "save_states"), format, "save_states")
    target = _target(path, overwrite, "save_states")
    _write(dataset, target, format, "save_states")


def open_states(path: str | os.PathLike, *, format: str | None = None):
    """The dataset at ``path`` (netCDF or zarr), times left as model-time numbers."""
    return _open(path, format, "open_states")


def _open(path, format, caller: str):
    xr = _xarray()
    path = _as_path(path, caller)
    if not path.exists():
        raise ConfigurationError(f"{caller}: {os.fspath(path)!r} does not exist")
    format = _format(path, format, caller)
    options = {"decode_times": False, "decode_timedelta": False}
    if format == "netcdf":
        return xr.open_dataset(path, engine="h5netcdf", **options).load()
    return xr.open_zarr(os.fspath(path), **options).load()


def load_states(path: str | os.PathLike, model: Any, *, format: str | None = None) -> PyTree:
    """The model's states from a file written by `save_states` or `rollout_to_zarr`.

    See `save_states` for an example; `from_dataset` for the checks.
    """
    return from_dataset(model, _open(path, format, "load_states"))


def rollout_to_zarr(
    path: str | os.PathLike,
    stepper: AbstractStepper,
    state: PyTree,
    n_steps: int,
    *,
    save_every: int = 1,
    chunk_size: int = 64,
    model: Any = None,
    include_initial: bool = True,
    overwrite: bool = False,
    attrs: Mapping[str, Any] | None = None,
    **rollout_options,
) -> PyTree:
    """Run ``stepper`` for ``n_steps`` and stream the saved states to a zarr store.

    The run is `hybrax.rollout` in pieces of ``chunk_size`` saved states each; each piece is
    converted (`to_dataset`) and appended along ``time``, so at most one piece is in memory
    (the zarr chunks along time hold ``chunk_size`` states). The run continues from each
    piece's final carry, so the states equal one long rollout's.

    Parameters
    ----------
    path
        The zarr store to create (`hybrax.OverwriteError` if it exists, unless
        ``overwrite=True``).
    stepper, state, n_steps, save_every
        As for `hybrax.rollout` (``save_every`` must divide ``n_steps``).
    chunk_size
        Saved states per piece (and per zarr chunk along time).
    model
        What goes into the attributes and picks the converter (default: ``stepper``).
    include_initial
        Also store the initial state (default True), so ``time`` starts at the start.
    rollout_options
        Passed on to `hybrax.rollout` (e.g. ``check_finite``, ``progress``).

    Returns
    -------
    The final carry (pass it back to continue the run).

    Examples
    --------
    >>> import tempfile, hybrax
    >>> model = hybrax.climate.Lorenz96(8)
    >>> stepper = hybrax.RK4(model, 0.01)
    >>> path = tempfile.mkdtemp() + "/l96.zarr"
    >>> final = rollout_to_zarr(path, stepper, model.initial_state(), 100, save_every=10,
    ...     chunk_size=4)
    >>> load_states(path, stepper).u.shape
    (11, 8)
    """
    for name, value in (
        ("n_steps", n_steps),
        ("save_every", save_every),
        ("chunk_size", chunk_size),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigurationError(
                f"rollout_to_zarr: {name} must be a positive int, got {value!r}"
            )
    if n_steps % save_every:
        raise ConfigurationError(
            f"rollout_to_zarr: save_every={save_every} does not divide n_steps={n_steps}"
        )
    if "observe" in rollout_options:
        raise ConfigurationError("rollout_to_zarr stores model states; observe is not supported")
    _require("zarr", "zarr stores")
    model = stepper if model is None else model
    path = _target(path, overwrite, "rollout_to_zarr")
    total = n_steps // save_every
    carry, written = state, 0
    if include_initial:
        initial = stepper.state_of(stepper.init(state))
        _append(to_dataset(model, initial, attrs=attrs).expand_dims("time"), path, chunk_size, 0)
        written = 1
    done = 0
    while done < total:
        count = min(chunk_size, total - done)
        carry, trajectory = rollout(
            stepper, carry, count * save_every, save_every=save_every, **rollout_options
        )
        _append(to_dataset(model, trajectory, attrs=attrs), path, chunk_size, written)
        written += count
        done += count
    return carry


def _append(dataset, path: Path, chunk_size: int, written: int) -> None:
    if written == 0:
        encoding = {
            name: {"chunks": (chunk_size, *variable.shape[1:])}
            for name, variable in dataset.variables.items()
            if "time" in variable.dims and variable.dims[0] == "time"
        }
        encoding["time"] = {"chunks": (chunk_size,)}
        _to_zarr(dataset, path, mode="w-", encoding=encoding)
    else:
        _to_zarr(dataset, path, append_dim="time")


def _to_zarr(dataset, path: Path, **options) -> None:
    """xarray's zarr writer with consolidated metadata (so ``xr.open_zarr(path)`` reads it
    without a warning), without zarr's note that zarr v3 does not standardise it yet."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        dataset.to_zarr(os.fspath(path), consolidated=True, **options)
