"""Datasets of trajectories as xarray, stored in zarr, with the generating model as attrs."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PyTree

from hybrax.core import ConfigurationError, CorruptedDataError, DataMismatchError, OverwriteError

__all__ = ["from_xarray", "load_dataset", "model_attrs", "save_dataset", "to_xarray"]

_HYBRAX_ATTR = "hybrax_leading_dims"
_CHECKSUM_ATTR = "hybrax_checksums"  # {variable: CRC-32 of its bytes}, written by save_dataset


def model_attrs(model: Any, prefix: str = "model") -> dict[str, Any]:
    """The parameters of a model (any equinox module) as flat JSON-friendly attributes.

    Scalar and small array leaves (physical parameters such as ``forcing``, ``dt``) and
    static int/float/str/bool fields (sizes such as ``num_slow``) are listed under dotted
    names, with ``{prefix}.class`` the class name; nested modules are walked (e.g. an `RK4`
    stepper gives ``model.class = "RK4"``, ``model.dt``, ``model.dynamics.class`` ...).
    Arrays with more than 64 elements (network weights) are left out.

    Examples
    --------
    >>> import hybrax
    >>> attrs = model_attrs(hybrax.RK4(hybrax.climate.Lorenz96(8, 20.0), dt=0.01))
    >>> attrs["model.class"], attrs["model.dynamics.forcing"], attrs["model.dt"]
    ('RK4', 20.0, 0.01)
    """
    if not isinstance(prefix, str) or not prefix:
        raise ConfigurationError(f"model_attrs: prefix must be a non-empty str, got {prefix!r}")
    attrs: dict[str, Any] = {}
    _walk(model, prefix, attrs, depth=0)
    return attrs


def _walk(obj: Any, name: str, attrs: dict, depth: int) -> None:
    if depth > 8:
        return
    if isinstance(obj, eqx.Module):
        attrs[f"{name}.class"] = type(obj).__name__
        for field in dataclasses.fields(obj):
            _walk(getattr(obj, field.name, None), f"{name}.{field.name}", attrs, depth + 1)
    elif isinstance(obj, (bool, int, float, str)):
        attrs[name] = obj
    elif eqx.is_array_like(obj) and not callable(obj):
        value = np.asarray(obj)
        if value.size <= 64 and value.dtype.kind in "biuf":
            if value.dtype.kind == "f" and value.dtype.itemsize < 8:
                # the shortest decimal that round-trips in the stored precision: a float32
                # 1e-3 is written 0.001, not 0.0010000000474974513
                shortest = [float(str(v)) for v in value.ravel()]
                value = np.asarray(shortest, np.float64).reshape(value.shape)
            attrs[name] = value.item() if value.ndim == 0 else value.tolist()
    elif isinstance(obj, (tuple, list)) and len(obj) <= 64:
        for i, item in enumerate(obj):
            _walk(item, f"{name}.{i}", attrs, depth + 1)


def _xarray():
    try:
        import xarray
        import zarr  # noqa: F401
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise ImportError(
            "hybrax.io datasets need xarray and zarr: pip install 'hybrax[io]'"
        ) from error
    return xarray


def _variable_names(tree: PyTree) -> list[str]:
    paths = [path for path, _ in jax.tree_util.tree_leaves_with_path(tree)]
    names = []
    for path in paths:
        name = jax.tree_util.keystr(path, simple=True, separator=".") if path else "data"
        names.append(re.sub(r"[^0-9A-Za-z_.]", "_", name))
    if len(set(names)) != len(names):
        raise ConfigurationError(
            f"to_xarray: leaf names collide: {names}; give the leaves distinct names"
        )
    return names


def to_xarray(
    tree: PyTree,
    *,
    leading_dims: Sequence[str] = ("sample", "time_index"),
    model: Any = None,
    attrs: Mapping[str, Any] | None = None,
):
    """An `xarray.Dataset` with one variable per array leaf of ``tree`` (any pytree).

    For a model's states use `hybrax.io.to_dataset` instead: it writes physical fields
    (vorticity, PV per layer, ... rather than spectral coefficients) with coordinates in
    physical units and CF attributes. `to_xarray` stays for arbitrary pytrees such as
    training data from `hybrax.hybrid.generate_trajectories` (`save_dataset`).

    Variables are named by their path in the tree (``x``, ``y``, ``time`` for a
    `hybrax.climate.TwoScaleState`; ``0.u`` for the first item of a tuple). Their leading
    axes get the names ``leading_dims`` (default: trajectory and saved step, as from
    `hybrax.hybrid.generate_trajectories`); further axes are ``{variable}_{i}``.

    Parameters
    ----------
    tree
        A pytree of arrays sharing their leading axes.
    leading_dims
        Names of the shared leading axes.
    model
        Optional generating model: its parameters go into the attrs (see `model_attrs`).
    attrs
        Further JSON-serialisable attributes (e.g. ``save_every``, the data's time step).

    Examples
    --------
    >>> import jax.numpy as jnp, hybrax
    >>> state = hybrax.ODEState(jnp.zeros((2, 5, 8)), jnp.zeros((2, 5)))
    >>> ds = to_xarray(state)
    >>> ds["u"].dims
    ('sample', 'time_index', 'u_0')
    """
    xr = _xarray()
    leaves = jax.tree.leaves(tree)
    if not leaves:
        raise ConfigurationError("to_xarray: the tree holds no arrays (empty dataset)")
    leading_dims = _check_leading_dims(leading_dims)
    if attrs is not None and not isinstance(attrs, Mapping):
        raise ConfigurationError(f"to_xarray: attrs must be a dict, got {type(attrs).__name__}")
    variables = {}
    leading_shape, first = None, None
    for name, leaf in zip(_variable_names(tree), leaves, strict=True):
        try:
            value = np.asarray(leaf)
        except Exception as error:
            raise ConfigurationError(
                f"to_xarray: `{name}` is not an array ({type(leaf).__name__})"
            ) from error
        if value.dtype == object:
            raise ConfigurationError(
                f"to_xarray: `{name}` is not a numeric array ({type(leaf).__name__})"
            )
        if value.ndim < len(leading_dims):
            raise ConfigurationError(
                f"to_xarray: `{name}` has shape {value.shape}, fewer axes than the leading "
                f"dims {leading_dims}; pass leading_dims matching the data"
            )
        lead = value.shape[: len(leading_dims)]
        if leading_shape is None:
            leading_shape, first = lead, name
        elif lead != leading_shape:
            raise ConfigurationError(
                f"to_xarray: the leading dims {leading_dims} must have the same sizes in every "
                f"leaf, but `{first}` has {leading_shape} and `{name}` has {lead}; pass "
                "leaves from one ensemble, or fewer leading_dims"
            )
        extra = tuple(
            f"{name.replace('.', '_')}_{i}" for i in range(value.ndim - len(leading_dims))
        )
        variables[name] = (leading_dims + extra, value)
    all_attrs = {_HYBRAX_ATTR: list(leading_dims)}
    if model is not None:
        all_attrs.update(model_attrs(model))
    if attrs:
        reserved = {_HYBRAX_ATTR, _CHECKSUM_ATTR} & set(attrs)
        if reserved:
            raise ConfigurationError(f"to_xarray: attrs may not use the names {sorted(reserved)}")
        all_attrs.update(dict(attrs))
    try:  # fail here, with the offending value, rather than in zarr
        json.dumps(all_attrs)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(
            f"to_xarray: attrs must be JSON-serialisable (numbers, strings, lists, dicts): {error}"
        ) from error
    return xr.Dataset(variables, attrs=all_attrs)


def _check_leading_dims(leading_dims) -> tuple[str, ...]:
    if isinstance(leading_dims, str) or not isinstance(leading_dims, Sequence):
        raise ConfigurationError(
            f"leading_dims must be a sequence of names such as ('sample', 'time_index'), got "
            f"{leading_dims!r}"
        )
    leading_dims = tuple(leading_dims)
    if not all(isinstance(d, str) and d for d in leading_dims) or len(set(leading_dims)) != len(
        leading_dims
    ):
        raise ConfigurationError(
            f"leading_dims must be distinct non-empty strings, got {leading_dims!r}"
        )
    return leading_dims


def from_xarray(dataset, like: PyTree) -> PyTree:
    """Rebuild a pytree shaped like ``like`` from a dataset written by `to_xarray`.

    ``like`` gives the structure (e.g. one state, ``model.initial_state()``); its leaves'
    values are ignored. The arrays come back with their leading axes and the stored dtypes.

    Examples
    --------
    >>> import jax.numpy as jnp, hybrax
    >>> state = hybrax.ODEState(jnp.ones((2, 5, 8)), jnp.zeros((2, 5)))
    >>> back = from_xarray(to_xarray(state), like=hybrax.ODEState(jnp.zeros(8)))
    >>> back.u.shape
    (2, 5, 8)
    """
    if not (hasattr(dataset, "variables") and hasattr(dataset, "data_vars")):
        raise ConfigurationError(
            f"from_xarray: dataset must be an xarray.Dataset (e.g. from to_xarray or "
            f"load_dataset), got {type(dataset).__name__}"
        )
    names = _variable_names(like)
    if not names:
        raise ConfigurationError("from_xarray: like holds no arrays; pass e.g. one state")
    missing = [name for name in names if name not in dataset.variables]
    if missing:
        raise DataMismatchError(
            f"from_xarray: the dataset has no variable(s) {missing} needed for a "
            f"{type(like).__name__}; it has {sorted(dataset.data_vars)}"
        )
    leading = len(dataset.attrs.get(_HYBRAX_ATTR, ())) or None
    for name, leaf in zip(names, jax.tree.leaves(like), strict=True):
        stored = tuple(dataset[name].shape)
        want = tuple(np.shape(leaf))
        lead = leading if leading is not None else len(stored) - len(want)
        if lead < 0 or stored[lead:] != want:
            raise DataMismatchError(
                f"from_xarray: variable `{name}` holds {stored[lead:] if lead >= 0 else stored} "
                f"per entry (stored shape {stored}) but like's `{name}` has shape {want}; "
                "pass a like built with the sizes the data were made with (e.g. "
                "model.initial_state() of a model of the same size)"
            )
    treedef = jax.tree.structure(like)
    return jax.tree.unflatten(treedef, [jnp.asarray(dataset[name].values) for name in names])


def save_dataset(
    path: str | os.PathLike,
    tree: PyTree,
    *,
    leading_dims: Sequence[str] = ("sample", "time_index"),
    model: Any = None,
    attrs: Mapping[str, Any] | None = None,
) -> None:
    """Write ``tree`` (e.g. trajectories) to a zarr store through xarray.

    See `to_xarray` for the layout; ``model``'s parameters and ``attrs`` are stored as the
    dataset's attributes, so the file says how it was made, and a CRC-32 checksum of every
    variable's bytes is stored too (`load_dataset` verifies it). An existing store written
    by `save_dataset` is replaced; any other existing file or folder at ``path`` is left
    alone and `hybrax.OverwriteError` is raised.

    Examples
    --------
    >>> import tempfile, jax, hybrax
    >>> model = hybrax.climate.Lorenz96(num_variables=8)
    >>> stepper = hybrax.RK4(model, 0.01)
    >>> data = hybrax.hybrid.generate_trajectories(stepper, model.initial_state,
    ...     jax.random.key(0), n=2, n_steps=20, save_every=10)
    >>> path = tempfile.mkdtemp() + "/l96.zarr"
    >>> save_dataset(path, data, model=stepper, attrs={"save_every": 10})
    >>> back, attrs = load_dataset(path, like=model.initial_state(), model=stepper)
    >>> back.u.shape, attrs["model.dynamics.class"]
    ((2, 3, 8), 'Lorenz96')
    """
    path = _check_path(path, "save_dataset")
    dataset = to_xarray(tree, leading_dims=leading_dims, model=model, attrs=attrs)
    dataset.attrs[_CHECKSUM_ATTR] = {
        name: _checksum(dataset[name].values) for name in dataset.data_vars
    }
    if path.exists() and not _is_our_store(path):
        raise OverwriteError(
            f"save_dataset: {path} exists and is not a dataset written by save_dataset; "
            "refusing to replace it. Choose another path (or delete it yourself)"
        )
    try:
        dataset.to_zarr(os.fspath(path), mode="w", consolidated=False)
    except OSError as error:
        raise ConfigurationError(
            f"save_dataset: cannot write path={os.fspath(path)!r} ({type(error).__name__}: "
            f"{error.strerror or error}); pass a path in a writable folder"
        ) from error


def load_dataset(
    path: str | os.PathLike, like: PyTree = None, *, model: Any = None, check: bool = True
):
    """Read a zarr store written by `save_dataset`, verifying its checksums.

    Returns ``(tree, attrs)`` with ``tree`` rebuilt in the structure of ``like``, or the
    `xarray.Dataset` itself (loaded into memory) when ``like`` is ``None``.

    Checks, each a `hybrax` error naming what differs:

    - every variable's CRC-32 against the one stored at save time (an altered or damaged
      store raises `hybrax.CorruptedDataError`; stores written without checksums, e.g.
      by ``to_xarray(...).to_zarr``, are read unchecked);
    - the per-entry shapes against ``like``'s leaves (`hybrax.DataMismatchError`);
    - with ``model`` given and ``check=True``: the physical parameters stored in the attrs
      (see `model_attrs`) against ``model``'s, wherever both have a part of the same class
      (e.g. the ``forcing`` of a `Lorenz96` inside an ``RK4``, a `Closure` or on its own).
      Floating parameters other than ``dt`` are compared (to 1e-5 relative); sizes are
      left to the shape check and time steps to the losses (which compare the data's
      time spacing with the model's ``dt``). A difference raises
      `hybrax.DataMismatchError`; pass ``check=False`` when it is intended (e.g. a coarse
      model whose closure should learn the missing forcing).
    """
    xr = _xarray()
    path = _check_path(path, "load_dataset")
    if not isinstance(check, bool):
        raise ConfigurationError(f"load_dataset: check must be True or False, got {check!r}")
    if not path.exists():
        raise ConfigurationError(f"load_dataset: path={os.fspath(path)!r}: no zarr store there")
    if not path.is_dir():
        raise ConfigurationError(
            f"load_dataset: path={os.fspath(path)!r} is a file, not a zarr store (a folder "
            "written by save_dataset)"
        )
    try:
        dataset = xr.open_zarr(os.fspath(path), consolidated=False).load()
    except Exception as error:  # zarr/numcodecs/JSON errors of a damaged or foreign store
        text = f"{type(error).__name__}: {error}".split("\n")[0][:300]
        raise CorruptedDataError(
            f"load_dataset: {path} cannot be read as a zarr dataset ({text}); it is damaged "
            "or was not written by save_dataset"
        ) from error
    checksums = dataset.attrs.pop(_CHECKSUM_ATTR, None)
    if checksums is not None:
        _verify(dataset, checksums, path)
    if model is not None and check:
        _compare_model(dataset.attrs, model, path)
    if like is None:
        return dataset
    try:
        tree = from_xarray(dataset, like)
    except DataMismatchError as error:
        raise DataMismatchError(f"load_dataset: {path}: {error}") from error
    return tree, dict(dataset.attrs)


def _check_path(path, who: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigurationError(
            f"{who}: path must be a str or pathlib.Path, got {type(path).__name__}"
        )
    return Path(path)


def _checksum(values) -> int:
    """CRC-32 of an array's bytes, with every NaN in its canonical form (zarr's fill-value
    decoding may rewrite NaN payloads)."""
    values = np.ascontiguousarray(values)
    if values.dtype.kind == "c":
        values = np.stack([values.real, values.imag], axis=-1)
    if values.dtype.kind == "f" and np.isnan(values).any():
        values = np.where(np.isnan(values), np.array(np.nan, values.dtype), values)
    return zlib.crc32(np.ascontiguousarray(values).tobytes())


def _is_our_store(path: Path) -> bool:
    """Whether ``path`` is a zarr group whose attributes say save_dataset wrote it."""
    for meta in (path / "zarr.json", path / ".zattrs"):
        try:
            text = meta.read_text()
        except OSError:
            continue
        if _HYBRAX_ATTR in text:
            return True
    return False


def _verify(dataset, checksums, path) -> None:
    if not isinstance(checksums, Mapping):
        raise CorruptedDataError(f"load_dataset: {path}: its checksum attribute is damaged")
    for name in dataset.data_vars:
        if name not in checksums:
            raise CorruptedDataError(
                f"load_dataset: {path}: variable `{name}` has no stored checksum (it was "
                "added or renamed after saving)"
            )
        actual = _checksum(dataset[name].values)
        if actual != checksums[name]:
            raise CorruptedDataError(
                f"load_dataset: {path}: variable `{name}` fails its checksum (CRC-32 "
                f"{actual:#010x}, stored {checksums[name]:#010x}); its chunk files were "
                "altered or damaged after they were written"
            )
    missing = sorted(set(checksums) - set(dataset.data_vars))
    if missing:
        raise CorruptedDataError(f"load_dataset: {path}: variables {missing} are missing")


def _nodes(attrs: Mapping[str, Any]) -> dict[str, str]:
    """``{prefix: class name}`` of every module recorded by `model_attrs`."""
    return {
        key[: -len(".class")]: value
        for key, value in attrs.items()
        if key.endswith(".class") and isinstance(value, str)
    }


def _floats(value) -> np.ndarray | None:
    """A float attribute (or list of floats) as an array; ``None`` for anything else."""
    if isinstance(value, bool) or isinstance(value, str):
        return None
    if isinstance(value, float):
        return np.asarray(value)
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in np.ravel(value))
    ):
        array = np.asarray(value, dtype=float)
        if any(isinstance(v, float) for v in np.ravel(value)):
            return array
    return None


def _compare_model(stored: Mapping[str, Any], model: Any, path) -> None:
    given = model_attrs(model)
    stored_nodes, given_nodes = _nodes(stored), _nodes(given)
    for given_prefix, cls in given_nodes.items():
        for stored_prefix, stored_cls in stored_nodes.items():
            if stored_cls != cls:
                continue
            for key, value in given.items():
                if not key.startswith(given_prefix + "."):
                    continue
                field = key[len(given_prefix) + 1 :]
                if "." in field or field == "dt":
                    continue
                mine = _floats(value)
                theirs = _floats(stored.get(f"{stored_prefix}.{field}"))
                if mine is None or theirs is None:
                    continue
                if mine.shape != theirs.shape or not np.allclose(
                    mine, theirs, rtol=1e-5, atol=0.0, equal_nan=True
                ):
                    raise DataMismatchError(
                        f"load_dataset: {path} was generated with {cls}.{field} = "
                        f"{stored[f'{stored_prefix}.{field}']} (attribute "
                        f"'{stored_prefix}.{field}'), but the model has {cls}.{field} = "
                        f"{value}. Load data made with this model's parameters, build the "
                        f"model with {field}={stored[f'{stored_prefix}.{field}']}, or pass "
                        "check=False if the difference is intended"
                    )
