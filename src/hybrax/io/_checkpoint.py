"""Orbax checkpoints of any pytree (equinox modules included): arrays out, template in."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PyTree

__all__ = ["Checkpointer", "restore_checkpoint", "save_checkpoint"]


class Checkpointer:
    """Numbered checkpoints of a pytree in one directory, written with orbax.

    Only the array leaves are written (PRNG key arrays as their raw key data, so they
    restore as keys); everything else — the module classes, static fields, activation
    functions — comes from a *template* at restore time: an object of the same structure,
    e.g. a freshly initialised model. A JSON-serialisable ``metadata`` dict may be stored
    alongside (the trainer keeps its metrics history there).

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

        self.directory = Path(directory).absolute()
        self.directory.mkdir(parents=True, exist_ok=True)
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
        a subset of them (e.g. only ``"model"`` of a training checkpoint).
        """
        import orbax.checkpoint as ocp

        arrays = {name: _arrays_of(t) for name, t in _items(tree).items()}
        # items without arrays (e.g. the state of plain SGD) need nothing on disk
        items = {name: ocp.args.StandardSave(a) for name, a in arrays.items() if a}
        args = ocp.args.Composite(metadata=ocp.args.JsonSave(dict(metadata or {})), **items)
        self._manager.save(int(step), args=args, force=True)
        self._manager.wait_until_finished()

    def restore(self, like: PyTree, step: int | None = None) -> tuple[PyTree, dict]:
        """Read checkpoint ``step`` (default: the latest) into the structure of ``like``.

        Returns the restored tree (non-array parts from ``like``, arrays from disk, placed
        with ``like``'s shardings) and the stored metadata. When ``tree`` was saved as a
        dict, ``like`` may be a dict with a subset of its keys. Raises `FileNotFoundError` if
        there is no checkpoint and `ValueError` if the stored arrays do not fit ``like``.
        """
        import orbax.checkpoint as ocp

        if step is None:
            step = self.latest_step
            if step is None:
                raise FileNotFoundError(f"no checkpoint in {self.directory}")
        elif step not in self.all_steps():
            raise FileNotFoundError(
                f"no checkpoint for step {step} in {self.directory}; saved: {self.all_steps()}"
            )
        step_dir = self.directory / str(step)
        saved_items = sorted(
            p.name for p in step_dir.iterdir() if p.is_dir() and p.name != "metadata"
        )
        wanted = _items(like)
        args = {}
        for name, template in wanted.items():
            if not _arrays_of(template):
                continue
            if name not in saved_items:
                raise ValueError(
                    f"checkpoint {step_dir} has no item {name!r}; it holds {saved_items}"
                )
            arrays = _arrays_of(template)
            saved = ocp.StandardCheckpointHandler().metadata(step_dir / name)
            _check_compatible(arrays, saved, step_dir, name)
            args[name] = ocp.args.StandardRestore(jax.tree.map(_abstract, arrays))
        restored = self._manager.restore(
            int(step), args=ocp.args.Composite(metadata=ocp.args.JsonRestore(), **args)
        )
        trees = {name: _fill(wanted[name], restored.get(name, [])) for name in wanted}
        tree = trees if _is_dict_of_items(like) else trees[_SINGLE]
        return tree, dict(restored["metadata"] or {})

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
    """Save the arrays of ``tree`` as checkpoint ``step`` under ``directory`` (orbax).

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
    """Restore checkpoint ``step`` (default: the latest) into the structure of ``like``."""
    with Checkpointer(directory) as checkpointer:
        tree, _ = checkpointer.restore(like, step)
    return tree


_SINGLE = "arrays"


def _is_dict_of_items(tree: PyTree) -> bool:
    return isinstance(tree, Mapping) and bool(tree) and all(isinstance(k, str) for k in tree)


def _items(tree: PyTree) -> dict[str, PyTree]:
    """Top-level items: a dict's entries, or the whole tree as one item."""
    if _is_dict_of_items(tree):
        if "metadata" in tree:
            raise ValueError("checkpoint items may not be called 'metadata' (reserved)")
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


def _check_compatible(template: list, stored, where: Path, name: str) -> None:
    if stored is None:
        return
    stored = list(stored)
    if name != _SINGLE:
        where = f"{where} (item {name!r})"
    if len(stored) != len(template):
        raise ValueError(
            f"checkpoint {where} holds {len(stored)} arrays but the template has "
            f"{len(template)}; restore into an object built like the one saved (same "
            "network sizes and the same trainable parts)"
        )
    for i, (want, have) in enumerate(zip(template, stored, strict=True)):
        shape = tuple(getattr(have, "shape", ()) or ())
        if shape != tuple(np.shape(want)):
            raise ValueError(
                f"checkpoint {where}: array {i} has shape {shape} but the template's has "
                f"{tuple(np.shape(want))}; restore into an object built like the one saved"
            )
