"""Orbax checkpoints of any pytree (equinox modules included): named arrays out, template in."""

from __future__ import annotations

import json
import os
import warnings
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PyTree

from hybrax.core import CheckpointError, ConfigurationError, CorruptedDataError

__all__ = ["Checkpointer", "restore_checkpoint", "save_checkpoint"]


class Checkpointer:
    """Numbered checkpoints of a pytree in one directory, written with orbax.

    Only the array leaves are written (PRNG key arrays as their raw key data, so they
    restore as keys); everything else — the module classes, static fields, activation
    functions — comes from a *template* at restore time: an object of the same structure,
    e.g. a freshly initialised model. A JSON-serialisable ``metadata`` dict may be stored
    alongside (the trainer keeps its metrics history there).

    The arrays are stored as a nested dict named by their paths in the tree (``layers`` /
    ``0`` / ``weight``; ``dynamics`` / ``forcing``), so plain orbax
    (``ocp.StandardCheckpointer().restore(path / "0" / "arrays")``) reads them without a
    hybrax template, and the metadata records the tree's classes and parameters
    (`model_attrs`, under ``__hybrax__.description``). A template that differs from the
    checkpoint is an error naming the differing leaves (array leaves present on one side
    only, shapes, dtypes, or a plain-number field such as a float ``dt`` with another
    value), never a silent choice. Checkpoints of the earlier flat-list layout still
    restore.

    Every array is stored with a CRC-32 checksum of its bytes (computed on the host at
    save time, kept in the checkpoint's metadata) and verified at restore: a truncated,
    altered or unreadable checkpoint raises `hybrax.CorruptedDataError` naming it, an
    incomplete one (e.g. an empty step folder) `hybrax.CheckpointError`. ``restore(...,
    fallback=True)`` instead moves it aside (renamed ``{step}.corrupt``) with a warning and
    returns the newest intact checkpoint.

    Parameters
    ----------
    directory
        Where the numbered checkpoint folders go (created if needed).
    max_to_keep
        Keep only this many most recent checkpoints (``None``: keep all).

    Examples
    --------
    >>> import tempfile, jax, hybrax
    >>> net = hybrax.nn.MLP(2, 1, 8, 1, key=jax.random.key(0))
    >>> with hybrax.io.Checkpointer(tempfile.mkdtemp()) as checkpoints:
    ...     checkpoints.save(10, net, metadata={"loss": 0.1})
    ...     restored, metadata = checkpoints.restore(net)
    >>> checkpoints.latest_step, metadata["loss"]
    (10, 0.1)
    """

    def __init__(self, directory: str | os.PathLike, max_to_keep: int | None = None):
        import orbax.checkpoint as ocp

        self.directory = _writable_directory(directory, "directory")
        if max_to_keep is not None and (
            isinstance(max_to_keep, bool) or not isinstance(max_to_keep, int) or max_to_keep < 1
        ):
            raise ConfigurationError(
                f"Checkpointer: max_to_keep must be None (keep all) or an int >= 1, got "
                f"{max_to_keep!r}"
            )
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    @property
    def latest_step(self) -> int | None:
        """The newest saved step, or ``None`` when the directory holds none."""
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        """All saved steps, oldest first."""
        return sorted(self._manager.all_steps())

    def save(self, step: int, tree: PyTree, *, metadata: Mapping[str, Any] | None = None):
        """Write the arrays of ``tree`` (and ``metadata``) as checkpoint ``step``; blocks
        until the files are complete.

        A dict with string keys is stored as one item per key, so `restore` can later read
        a subset of them (e.g. only ``"model"`` of a training checkpoint). ``step`` is an
        int >= 0 that is not saved yet.
        """
        import orbax.checkpoint as ocp

        step = _check_step(step)
        meta = _check_metadata(metadata)
        arrays = {name: _arrays_of(t) for name, t in _items(tree).items()}
        arrays = {name: a for name, a in arrays.items() if a}
        if step in self.all_steps():
            raise CheckpointError(
                f"checkpoint step {step} already exists in {self.directory} "
                f"(saved: {self.all_steps()}); save under a new step or in another directory"
            )
        meta[_RESERVED] = {
            "format": 2,
            "checksums": {name: [_checksum(x) for x in a] for name, a in arrays.items()},
            "config": {name: _config_of(t) for name, t in _items(tree).items()},
            "description": {name: _describe(t) for name, t in _items(tree).items()},
        }
        # items without arrays (e.g. the state of plain SGD) need nothing on disk; the
        # arrays are stored as a nested dict named by their paths in the tree, so plain
        # orbax restores them without a template
        items = {
            name: ocp.args.StandardSave(_nest(_array_paths(_items(tree)[name]), a))
            for name, a in arrays.items()
        }
        args = ocp.args.Composite(metadata=ocp.args.JsonSave(meta), **items)
        try:
            self._manager.save(step, args=args, force=True)
            self._manager.wait_until_finished()
        except OSError as error:
            raise CheckpointError(
                f"could not write checkpoint step {step} in {self.directory}: {_brief(error)}"
            ) from error

    def restore(
        self, like: PyTree, step: int | None = None, *, fallback: bool = False
    ) -> tuple[PyTree, dict]:
        """Read checkpoint ``step`` (default: the latest) into the structure of ``like``.

        Returns the restored tree (non-array parts from ``like``, arrays from disk, placed
        with ``like``'s shardings) and the stored metadata. When ``tree`` was saved as a
        dict, ``like`` may be a dict with a subset of its keys.

        Raises `hybrax.CheckpointError` if there is no (complete) checkpoint,
        `hybrax.CorruptedDataError` if its files are damaged or an array fails its
        checksum, and `hybrax.ConfigurationError` if the stored arrays (number, shapes,
        dtypes) do not fit ``like``. With ``fallback=True`` and ``step=None``, a damaged
        or incomplete checkpoint is renamed ``{step}.corrupt`` with a warning and the next
        older one is tried.
        """
        steps = self.all_steps()
        if step is None:
            if not steps:
                raise CheckpointError(f"no checkpoint in {self.directory}")
            candidates = steps[::-1] if fallback else steps[-1:]
        else:
            step = _check_step(step)
            if step not in steps:
                raise CheckpointError(
                    f"no checkpoint for step {step} in {self.directory}; saved: {steps}"
                )
            candidates = [step]
        failures = []
        for candidate in candidates:
            try:
                return self._restore_step(like, candidate)
            except (CorruptedDataError, CheckpointError) as error:
                if not fallback or step is not None:
                    raise
                moved = self._set_aside(candidate)
                failures.append(f"{candidate}: {error}")
                warnings.warn(
                    f"{error}. Moved it to {moved} and falling back to an older checkpoint.",
                    stacklevel=2,
                )
        raise CheckpointError(
            f"no intact checkpoint in {self.directory}; every one failed:\n  "
            + "\n  ".join(failures)
        )

    def _restore_step(self, like: PyTree, step: int) -> tuple[PyTree, dict]:
        import orbax.checkpoint as ocp

        step_dir = self.directory / str(step)
        if not (step_dir / "_CHECKPOINT_METADATA").is_file():
            raise CheckpointError(
                f"checkpoint {step_dir} is incomplete (no _CHECKPOINT_METADATA file): it was "
                "not finished writing or was damaged"
            )
        saved_items = sorted(
            p.name for p in step_dir.iterdir() if p.is_dir() and p.name != "metadata"
        )
        wanted = _items(like)
        args = {}
        for name, template in wanted.items():
            arrays = _arrays_of(template)
            if not arrays:
                continue
            if name not in saved_items:
                raise ConfigurationError(
                    f"checkpoint {step_dir} has no item {name!r}; it holds {saved_items}"
                )
            try:
                saved = ocp.StandardCheckpointHandler().metadata(step_dir / name)
            except Exception as error:  # orbax/TensorStore/JSON failures of a damaged file
                raise CorruptedDataError(
                    f"checkpoint {step_dir} (item {name!r}) is damaged: its array metadata "
                    f"cannot be read ({_brief(error)})"
                ) from error
            saved = getattr(saved, "tree", saved)  # orbax's TreeMetadata wraps the tree
            paths = _array_paths(template)
            _check_compatible(arrays, paths, saved, step_dir, name)
            abstract = [_abstract(x) for x in arrays]
            named = isinstance(saved, Mapping)  # format 2; format 1 stored a flat list
            args[name] = ocp.args.StandardRestore(_nest(paths, abstract) if named else abstract)
        if not (step_dir / "metadata").is_dir():
            raise CheckpointError(
                f"checkpoint {step_dir} is incomplete: its metadata item is missing"
            )
        try:
            restored = self._manager.restore(
                step, args=ocp.args.Composite(metadata=ocp.args.JsonRestore(), **args)
            )
        except Exception as error:  # TensorStore, zarr and JSON errors of damaged files
            raise CorruptedDataError(
                f"checkpoint {step_dir} is damaged and cannot be read: {_brief(error)}"
            ) from error
        metadata = restored["metadata"]
        if metadata is not None and not isinstance(metadata, Mapping):
            raise CorruptedDataError(f"checkpoint {step_dir}: its metadata is not a JSON object")
        metadata = dict(metadata or {})
        reserved = metadata.pop(_RESERVED, None) or {}
        restored = {
            name: _unnest(value, _array_paths(wanted[name])) if name in args else value
            for name, value in restored.items()
        }
        checksums = reserved.get("checksums", {})
        for name in args:
            _verify(restored[name], checksums.get(name), _array_paths(wanted[name]), step_dir)
        for name, template in wanted.items():
            _compare_config(template, reserved.get("config", {}).get(name), step_dir, name)
        trees = {name: _fill(wanted[name], restored.get(name, [])) for name in wanted}
        tree = trees if _is_dict_of_items(like) else trees[_SINGLE]
        return tree, metadata

    def _set_aside(self, step: int) -> Path:
        """Rename a damaged step folder to ``{step}.corrupt`` (kept for inspection)."""
        source = self.directory / str(step)
        target = self.directory / f"{step}.corrupt"
        i = 1
        while target.exists():
            target = self.directory / f"{step}.corrupt{i}"
            i += 1
        source.rename(target)
        self._manager.reload()
        return target

    def close(self) -> None:
        """Finish pending writes and release the directory."""
        self._manager.close()

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def save_checkpoint(
    directory: str | os.PathLike,
    tree: PyTree,
    *,
    step: int = 0,
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """Save the arrays of ``tree`` as checkpoint ``step`` (an int >= 0, new in this
    directory) under ``directory`` (orbax), with a CRC-32 checksum of every array.

    Examples
    --------
    >>> import tempfile, jax, hybrax
    >>> net = hybrax.nn.MLP(2, 1, 8, 1, key=jax.random.key(0))
    >>> path = tempfile.mkdtemp()
    >>> hybrax.io.save_checkpoint(path, net)
    >>> restored = hybrax.io.restore_checkpoint(path, like=net)
    """
    with Checkpointer(directory) as checkpointer:
        checkpointer.save(step, tree, metadata=metadata)


def restore_checkpoint(
    directory: str | os.PathLike, like: PyTree, *, step: int | None = None
) -> PyTree:
    """Restore checkpoint ``step`` (default: the latest) into the structure of ``like``.

    See `Checkpointer.restore` for the checks (checksums, shapes, dtypes, plain-number
    fields) and the errors."""
    if isinstance(directory, (str, os.PathLike)) and not Path(directory).is_dir():
        raise CheckpointError(f"no checkpoint in {Path(directory).absolute()} (no such folder)")
    with Checkpointer(directory) as checkpointer:
        tree, _ = checkpointer.restore(like, step)
    return tree


_SINGLE = "arrays"
_RESERVED = "__hybrax__"  # metadata key holding the checksums


def _is_dict_of_items(tree: PyTree) -> bool:
    return isinstance(tree, Mapping) and bool(tree) and all(isinstance(k, str) for k in tree)


def _items(tree: PyTree) -> dict[str, PyTree]:
    """Top-level items: a dict's entries, or the whole tree as one item."""
    if _is_dict_of_items(tree):
        if "metadata" in tree:
            raise ConfigurationError(
                "checkpoint items may not be called 'metadata' (reserved); rename that key"
            )
        return dict(tree)
    return {_SINGLE: tree}


def _is_key(x) -> bool:
    return eqx.is_array(x) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _arrays_of(tree: PyTree) -> list:
    """The array leaves of ``tree`` in order (keys as raw key data)."""
    leaves = jax.tree.leaves(eqx.filter(tree, eqx.is_array))
    return [jax.random.key_data(x) if _is_key(x) else x for x in leaves]


def _fill(like: PyTree, arrays: list) -> PyTree:
    """``like`` with its array leaves replaced by ``arrays`` (keys rewrapped)."""
    dynamic, static = eqx.partition(like, eqx.is_array)
    old, treedef = jax.tree.flatten(dynamic)
    new = [
        jax.random.wrap_key_data(a, impl=jax.random.key_impl(o)) if _is_key(o) else a
        for o, a in zip(old, arrays, strict=True)
    ]
    return eqx.combine(jax.tree.unflatten(treedef, new), static)


def _abstract(x) -> jax.ShapeDtypeStruct:
    sharding = getattr(x, "sharding", None)
    return jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x), sharding=sharding)


def _check_compatible(template: list, paths: list, stored, where: Path, name: str) -> None:
    if stored is None:
        return
    if name != _SINGLE:
        where = f"{where} (item {name!r})"
    if isinstance(stored, Mapping):  # format 2: arrays named by their paths
        stored_paths = _nested_paths(stored)
        missing = [p for p in paths if p not in stored_paths]
        extra = [p for p in stored_paths if p not in set(paths)]
        if missing or extra:
            raise ConfigurationError(
                f"checkpoint {where} and the template differ: array leaves only in the "
                f"template: {missing[:8]}, only in the checkpoint: {extra[:8]}; restore into "
                "an object built like the one saved (same network sizes, same trainable parts)"
            )
        stored = _unnest(stored, paths)
    try:
        stored = list(stored)
    except TypeError:
        return
    if len(stored) != len(template):
        raise ConfigurationError(
            f"checkpoint {where} holds {len(stored)} arrays but the template has "
            f"{len(template)}; restore into an object built like the one saved (same "
            "network sizes and the same trainable parts)"
        )
    for i, (want, have, path) in enumerate(zip(template, stored, paths, strict=True)):
        shape = tuple(getattr(have, "shape", ()) or ())
        if shape != tuple(np.shape(want)):
            raise ConfigurationError(
                f"checkpoint {where}: array {i} ({path}) has shape {shape} but the "
                f"template's has {tuple(np.shape(want))}; restore into an object built like "
                "the one saved"
            )
        dtype = getattr(have, "dtype", None)
        if dtype is not None and np.dtype(dtype) != np.dtype(jnp.result_type(want)):
            raise ConfigurationError(
                f"checkpoint {where}: array {i} ({path}) is stored as {np.dtype(dtype)} but "
                f"the template's is {np.dtype(jnp.result_type(want))}; restore into a template "
                f"of the saved dtype (e.g. build it with dtype=jnp.{np.dtype(dtype)}) and cast "
                "the restored model afterwards if you mean to"
            )


def _nest(paths: list[str], values: list) -> dict:
    """``{"layers": {"0": {"weight": ...}}}`` from the paths ``layers.0.weight`` ..."""
    out: dict = {}
    for path, value in zip(paths, values, strict=True):
        node, parts = out, path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _nested_paths(tree: Mapping, prefix: str = "") -> list[str]:
    out = []
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        out.extend(_nested_paths(value, path) if isinstance(value, Mapping) else [path])
    return out


def _unnest(tree, paths: list[str]) -> list:
    """The values at ``paths`` of a nested dict, in order (a list is returned as it is)."""
    if not isinstance(tree, Mapping):
        return list(tree)
    out = []
    for path in paths:
        node = tree
        for part in path.split("."):
            node = node[part]
        out.append(node)
    return out


def _describe(tree: PyTree) -> dict[str, Any]:
    """Classes and parameters of ``tree`` (`model_attrs`), so a checkpoint says what it holds."""
    from ._dataset import model_attrs

    try:
        return model_attrs(tree, prefix="tree")
    except Exception:  # pragma: no cover - a description is a courtesy, never a failure
        return {}


def _config_of(tree: PyTree) -> dict[str, Any]:
    """The plain Python numbers and strings among ``tree``'s leaves (e.g. a float ``dt``),
    by path: they are not arrays, so they are not written, but they must match at restore."""
    config = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if isinstance(leaf, (bool, int, float, str)) and not eqx.is_array(leaf):
            config[jax.tree_util.keystr(path, simple=True, separator=".") or "<root>"] = leaf
    return config


def _compare_config(template: PyTree, stored, step_dir: Path, name: str) -> None:
    """Raise if a plain-number leaf of the template differs from the value saved with it
    (the template's value would otherwise silently replace the saved one)."""
    if not isinstance(stored, Mapping):
        return
    where = f"{step_dir}" if name == _SINGLE else f"{step_dir} (item {name!r})"
    for path, value in _config_of(template).items():
        if path not in stored:
            continue
        saved = stored[path]
        same = saved == value
        if isinstance(saved, float) and isinstance(value, (int, float)):
            same = np.isclose(saved, value, rtol=1e-12, atol=0.0, equal_nan=True)
        if not same or (type(saved) is bool and type(value) is not bool):
            raise ConfigurationError(
                f"checkpoint {where} was saved with {path} = {saved!r}, but the template "
                f"has {path} = {value!r}; this value is not an array, so it comes from the "
                f"template: build the template with {path.split('.')[-1]}={saved!r} (or "
                "save a new checkpoint if the change is intended)"
            )


def _array_paths(tree: PyTree) -> list[str]:
    """Readable paths of the array leaves of ``tree`` (in `_arrays_of` order)."""
    dynamic = eqx.filter(tree, eqx.is_array)
    return [
        jax.tree_util.keystr(path, simple=True, separator=".") or "<root>"
        for path, _ in jax.tree_util.tree_leaves_with_path(dynamic)
    ]


def _checksum(x) -> int | None:
    """CRC-32 of an array's bytes (``None`` for arrays not fully held by this process)."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return None
    return zlib.crc32(np.ascontiguousarray(jax.device_get(x)).tobytes())


def _verify(arrays, checksums, paths: list, step_dir: Path) -> None:
    """Compare restored arrays with their stored checksums (none stored: nothing to do)."""
    if checksums is None:
        return
    arrays = list(arrays)
    if len(checksums) != len(arrays):
        raise CorruptedDataError(
            f"checkpoint {step_dir}: {len(arrays)} arrays were read but {len(checksums)} "
            "checksums are stored; the checkpoint is damaged"
        )
    for i, (array, expected, path) in enumerate(zip(arrays, checksums, paths, strict=True)):
        if expected is None:
            continue
        actual = _checksum(array)
        if actual is not None and actual != expected:
            raise CorruptedDataError(
                f"checkpoint {step_dir}: array {i} ({path}) fails its checksum (CRC-32 "
                f"{actual:#010x}, stored {expected:#010x}); its files were altered or damaged "
                "after they were written"
            )


def _brief(error: BaseException) -> str:
    """The first line of a third-party error, without TensorStore's spec dump."""
    text = f"{type(error).__name__}: {error}".split("\n")[0]
    text = text.split(" [tensorstore_spec")[0].split(" [source locations")[0]
    return text if len(text) <= 300 else text[:297] + "..."


def _check_step(step) -> int:
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ConfigurationError(
            f"checkpoint step must be an int >= 0, got {step!r}; pass e.g. step=100"
        )
    return int(step)


def _check_metadata(metadata) -> dict:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ConfigurationError(
            f"checkpoint metadata must be a dict, got {type(metadata).__name__}"
        )
    metadata = dict(metadata)
    if _RESERVED in metadata:
        raise ConfigurationError(f"checkpoint metadata may not use the key {_RESERVED!r}")
    try:
        json.dumps(metadata, allow_nan=True)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(
            f"checkpoint metadata must be JSON-serialisable (numbers, strings, lists, dicts): "
            f"{error}"
        ) from error
    return metadata


def _writable_directory(directory, name: str) -> Path:
    """``directory`` as an absolute path to an existing, writable folder (created if
    needed), or a `ConfigurationError` naming ``name``."""
    if not isinstance(directory, (str, os.PathLike)):
        raise ConfigurationError(
            f"{name} must be a path (str or pathlib.Path), got {type(directory).__name__}"
        )
    path = Path(directory).absolute()
    if path.exists() and not path.is_dir():
        raise ConfigurationError(
            f"{name}={os.fspath(directory)!r} is a file, not a folder; pass a folder path "
            "for the checkpoints (it is created if needed)"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigurationError(
            f"{name}={os.fspath(directory)!r} cannot be created ({_brief(error)}); pass a "
            "folder in a writable location"
        ) from error
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigurationError(
            f"{name}={os.fspath(directory)!r} is not writable; pass a folder in a writable location"
        )
    return path
