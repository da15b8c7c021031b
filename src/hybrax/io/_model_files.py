"""Models as files that stand alone: `save_model` writes a JSON description of any equinox
model (classes, static fields, parameters) and its arrays by name; `load_model` rebuilds it
from the files alone, without a template and without pickle."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import types
import zipfile
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from hybrax.core import ConfigurationError, CorruptedDataError, OverwriteError

__all__ = ["load_model", "save_model"]

_FORMAT = "hybrax-model/1"
_DESCRIPTION, _ARRAYS = "model.json", "arrays.npz"


def save_model(path: str | os.PathLike, model: Any, *, overwrite: bool = False) -> Path:
    """Write ``model`` (any equinox module: a stepper, a dynamics, a hybrid with its network)
    to the folder ``path``: ``model.json`` describes it (each class by import path, static
    fields and plain values, every array by name) and ``arrays.npz`` holds the arrays under
    those names (readable with ``numpy.load`` alone). `load_model` rebuilds it.

    Functions in the model (activations such as ``jax.nn.gelu``) are stored by import path;
    a lambda or a local function cannot be, and is an error naming where it sits.

    Parameters
    ----------
    path
        A folder that does not exist yet (``overwrite=True`` replaces one written before).
    model
        The model.
    overwrite
        Replace an existing folder (default: refuse with `hybrax.OverwriteError`).

    Returns
    -------
    The folder.

    Examples
    --------
    >>> import tempfile, os, hybrax
    >>> stepper = hybrax.RK4(hybrax.climate.Lorenz96(8, 20.0), dt=0.01)
    >>> folder = save_model(os.path.join(tempfile.mkdtemp(), "l96"), stepper)
    >>> back = load_model(folder)
    >>> type(back).__name__, float(back.dynamics.forcing), back.dt
    ('RK4', 20.0, 0.01)
    """
    if not isinstance(overwrite, bool):
        raise ConfigurationError(f"save_model: overwrite must be True or False, got {overwrite!r}")
    folder = _folder(path, "save_model")
    arrays: dict[str, np.ndarray] = {}
    description = {"format": _FORMAT, "model": _encode(model, "model", arrays)}
    if folder.exists():
        if not overwrite:
            raise OverwriteError(
                f"save_model: {os.fspath(folder)!r} exists; refusing to overwrite it. Choose "
                "another path, or pass overwrite=True"
            )
        _check_ours(folder)
        for name in (_DESCRIPTION, _ARRAYS):
            (folder / name).unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / _ARRAYS, **arrays)
    (folder / _DESCRIPTION).write_text(json.dumps(description, indent=1))
    return folder


def load_model(path: str | os.PathLike) -> Any:
    """The model `save_model` wrote to the folder ``path``, rebuilt from its description
    and arrays (no template, no pickle). Classes and functions are imported by the paths
    stored in ``model.json``, so their modules must be importable.

    Raises `hybrax.CorruptedDataError` when the files are unreadable or inconsistent.
    See `save_model` for an example.
    """
    folder = _folder(path, "load_model")
    if not (folder / _DESCRIPTION).is_file():
        raise ConfigurationError(
            f"load_model: {os.fspath(folder)!r} holds no {_DESCRIPTION}; it was not written "
            "by hybrax.io.save_model"
        )
    try:
        description = json.loads((folder / _DESCRIPTION).read_text())
        with np.load(folder / _ARRAYS, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise CorruptedDataError(
            f"load_model: cannot read {os.fspath(folder)!r}: {error}"
        ) from error
    if not isinstance(description, dict) or description.get("format") != _FORMAT:
        raise CorruptedDataError(
            f"load_model: {os.fspath(folder / _DESCRIPTION)!r} is not a {_FORMAT} description"
        )
    return _decode(description["model"], arrays, "model")


def _folder(path, who: str) -> Path:
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ConfigurationError(
            f"{who}: path must be a non-empty str or os.PathLike, got {path!r}"
        )
    return Path(path)


def _check_ours(folder: Path) -> None:
    """Only a folder save_model wrote (its two files and nothing else) may be replaced."""
    names = {p.name for p in folder.iterdir()} if folder.is_dir() else None
    if names is None or not names <= {_DESCRIPTION, _ARRAYS}:
        raise OverwriteError(
            f"save_model: {os.fspath(folder)!r} is not a folder written by save_model; "
            "refusing to replace it"
        )


def _import_path(obj) -> str:
    return f"{obj.__module__}:{obj.__qualname__}"


def _resolve(spec: str, where: str):
    module, _, qualname = spec.partition(":")
    try:
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as error:
        raise CorruptedDataError(
            f"load_model: {where}: cannot import {spec!r} ({error})"
        ) from error
    return obj


def _encode(obj: Any, where: str, arrays: dict) -> Any:
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, float)) and not isinstance(obj, bool):
        return {"float": obj} if isinstance(obj, float) and not np.isfinite(obj) else obj
    if isinstance(obj, (jax.Array, np.ndarray, np.generic)):
        if isinstance(obj, jax.Array) and jnp.issubdtype(obj.dtype, jax.dtypes.prng_key):
            arrays[where] = np.asarray(jax.random.key_data(obj))
            return {"key": where, "impl": str(jax.random.key_impl(obj))}
        arrays[where] = np.asarray(obj)
        weak = bool(getattr(obj, "weak_type", False))  # a Python-scalar-like parameter
        return {"array": where, "jax": isinstance(obj, jax.Array), "weak": weak}
    if isinstance(obj, np.dtype) or (isinstance(obj, type) and issubclass(obj, np.generic)):
        return {"dtype": np.dtype(obj).name}
    if isinstance(obj, (tuple, list)):
        items = [_encode(v, f"{where}[{i}]", arrays) for i, v in enumerate(obj)]
        return {"tuple" if isinstance(obj, tuple) else "list": items}
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise ConfigurationError(f"save_model: {where} is a dict with non-str keys")
        return {"dict": {k: _encode(v, f"{where}[{k!r}]", arrays) for k, v in obj.items()}}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {
            f.name: _encode(getattr(obj, f.name), f"{where}.{f.name}", arrays)
            for f in dataclasses.fields(obj)
            if hasattr(obj, f.name)
        }
        return {"class": _import_path(type(obj)), "fields": fields}
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType)) or callable(obj):
        spec = _import_path(obj) if hasattr(obj, "__qualname__") else None
        if spec is None or "<" in spec or _resolve_quietly(spec) is not obj:
            raise ConfigurationError(
                f"save_model: {where} is {obj!r}, which cannot be found again by import path "
                "(a lambda or local function); use a module-level function"
            )
        return {"function": spec}
    raise ConfigurationError(f"save_model: {where} is a {type(obj).__name__}, not storable")


def _resolve_quietly(spec: str):
    try:
        return _resolve(spec, "")
    except CorruptedDataError:
        return None


def _decode(node: Any, arrays: dict, where: str) -> Any:
    if node is None or isinstance(node, (bool, str, int, float)):
        return node
    if not isinstance(node, dict) or len(node) == 0:
        raise CorruptedDataError(f"load_model: {where}: unreadable entry {node!r}")
    if "float" in node:
        return float(node["float"])
    if "array" in node or "key" in node:
        name = node.get("array", node.get("key"))
        if name not in arrays:
            raise CorruptedDataError(f"load_model: {where}: array {name!r} missing")
        if "key" in node:
            return jax.random.wrap_key_data(jnp.asarray(arrays[name]), impl=node["impl"])
        value = arrays[name]
        if not node.get("jax", True):
            return np.asarray(value)
        if node.get("weak") and value.ndim == 0:
            weak = jnp.asarray(value.item())  # weakly typed, as the saved parameter was
            if weak.dtype == value.dtype:
                return weak
        return jnp.asarray(value)
    if "dtype" in node:
        return jnp.dtype(node["dtype"])
    if "tuple" in node or "list" in node:
        items = [
            _decode(v, arrays, f"{where}[{i}]") for i, v in enumerate(next(iter(node.values())))
        ]
        return tuple(items) if "tuple" in node else items
    if "dict" in node:
        return {k: _decode(v, arrays, f"{where}[{k!r}]") for k, v in node["dict"].items()}
    if "function" in node:
        return _resolve(node["function"], where)
    if "class" in node:
        cls = _resolve(node["class"], where)
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise CorruptedDataError(f"load_model: {where}: {node['class']!r} is not a dataclass")
        obj = object.__new__(cls)
        for name, value in node["fields"].items():
            object.__setattr__(obj, name, _decode(value, arrays, f"{where}.{name}"))
        if isinstance(obj, eqx.Module):
            _check_complete(obj, cls, where)
        return obj
    raise CorruptedDataError(f"load_model: {where}: unknown entry {sorted(node)}")


def _check_complete(obj, cls, where: str) -> None:
    missing = [f.name for f in dataclasses.fields(cls) if not hasattr(obj, f.name)]
    if missing:
        raise CorruptedDataError(f"load_model: {where}: fields {missing} of {cls.__name__} missing")
