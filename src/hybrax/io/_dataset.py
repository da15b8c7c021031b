"""Datasets of trajectories as xarray, stored in zarr, with the generating model as attrs."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PyTree

__all__ = ["from_xarray", "load_dataset", "model_attrs", "save_dataset", "to_xarray"]

_HYBRAX_ATTR = "hybrax_leading_dims"


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
        raise ValueError(f"to_xarray: leaf names collide: {names}")
    return names


def to_xarray(
    tree: PyTree,
    *,
    leading_dims: Sequence[str] = ("sample", "time_index"),
    model: Any = None,
    attrs: Mapping[str, Any] | None = None,
):
    """An `xarray.Dataset` with one variable per array leaf of ``tree``.

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
        raise ValueError("to_xarray: the tree holds no arrays (empty dataset)")
    leading_dims = tuple(leading_dims)
    variables = {}
    for name, leaf in zip(_variable_names(tree), leaves, strict=True):
        value = np.asarray(leaf)
        if value.ndim < len(leading_dims):
            raise ValueError(
                f"to_xarray: `{name}` has shape {value.shape}, fewer axes than the leading "
                f"dims {leading_dims}; pass leading_dims matching the data"
            )
        extra = tuple(
            f"{name.replace('.', '_')}_{i}" for i in range(value.ndim - len(leading_dims))
        )
        variables[name] = (leading_dims + extra, value)
    all_attrs = {_HYBRAX_ATTR: list(leading_dims)}
    if model is not None:
        all_attrs.update(model_attrs(model))
    if attrs:
        all_attrs.update(dict(attrs))
    json.dumps(all_attrs)  # fail here, with the offending value, rather than in zarr
    return xr.Dataset(variables, attrs=all_attrs)


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
    names = _variable_names(like)
    missing = [name for name in names if name not in dataset.variables]
    if missing:
        raise ValueError(
            f"from_xarray: the dataset has no variable(s) {missing} needed for a "
            f"{type(like).__name__}; it has {sorted(dataset.data_vars)}"
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
    dataset's attributes, so the file says how it was made. Overwrites ``path``.

    Examples
    --------
    >>> import tempfile, jax, hybrax
    >>> model = hybrax.climate.Lorenz96(num_variables=8)
    >>> stepper = hybrax.RK4(model, 0.01)
    >>> data = hybrax.hybrid.generate_trajectories(stepper, model.initial_state,
    ...     jax.random.key(0), n=2, n_steps=20, save_every=10)
    >>> path = tempfile.mkdtemp() + "/l96.zarr"
    >>> save_dataset(path, data, model=stepper, attrs={"save_every": 10})
    >>> back, attrs = load_dataset(path, like=model.initial_state())
    >>> back.u.shape, attrs["model.dynamics.class"]
    ((2, 3, 8), 'Lorenz96')
    """
    dataset = to_xarray(tree, leading_dims=leading_dims, model=model, attrs=attrs)
    dataset.to_zarr(os.fspath(path), mode="w", consolidated=False)


def load_dataset(path: str | os.PathLike, like: PyTree = None):
    """Read a zarr store written by `save_dataset`.

    Returns ``(tree, attrs)`` with ``tree`` rebuilt in the structure of ``like``, or the
    `xarray.Dataset` itself (loaded into memory) when ``like`` is ``None``.
    """
    xr = _xarray()
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_dataset: no zarr store at {path}")
    dataset = xr.open_zarr(os.fspath(path), consolidated=False).load()
    if like is None:
        return dataset
    return from_xarray(dataset, like), dict(dataset.attrs)
