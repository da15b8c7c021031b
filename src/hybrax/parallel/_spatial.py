"""Spectral solvers with their fields split over devices (domain decomposition)."""

from __future__ import annotations

import equinox as eqx
import jax
from jax.sharding import Mesh
from jaxtyping import PyTree

from hybrax.grids import Grid

from ._fft import SlabFFT

__all__ = ["distribute", "shard_fields"]


def _is_grid(x) -> bool:
    return isinstance(x, Grid)


def distribute(model: PyTree, mesh: Mesh, axis: str = "space") -> PyTree:
    """``model`` with every 2-D `hybrax.grids.Grid` in it transforming through a
    `SlabFFT` over mesh axis ``axis``.

    Works for any solver that does its FFTs through its grid (``grid.rfft`` /
    ``grid.irfft`` / ``to_spectral`` / ``to_physical``): `hybrax.fluids.NavierStokes2D`
    and its presets, 2-D Kuramoto–Sivashinsky, the two-layer QG model. Put the state on
    the mesh with `shard_fields`; inside `jax.jit` the pointwise spectral work then runs
    on each device's slab and only the transposes inside the FFTs communicate.

    Examples
    --------
    >>> import hybrax
    >>> from hybrax.parallel import distribute, make_mesh, shard_fields
    >>> mesh = make_mesh(1, "space")
    >>> model = distribute(hybrax.fluids.NavierStokes2D.kolmogorov(32), mesh)
    >>> state = shard_fields(model.initial_state(), model)
    >>> final, _ = hybrax.rollout(hybrax.ETDRK4(model, 0.05), state, 4, save_every=None)
    """
    if axis not in mesh.axis_names:
        raise ValueError(f"mesh has axes {mesh.axis_names}, not {axis!r}")
    grids = [g for g in jax.tree.leaves(model, is_leaf=_is_grid) if _is_grid(g)]
    if not grids:
        raise ValueError(f"distribute: no hybrax.grids.Grid found in {type(model).__name__}")

    def swap(node):
        if not _is_grid(node):
            return node
        if node.ndim != 2:
            raise ValueError(f"distribute: only 2-D grids can be split, got shape {node.shape}")
        return node.with_transform(SlabFFT(mesh, axis, node.shape))

    return jax.tree.map(swap, model, is_leaf=_is_grid)


def shard_fields(tree: PyTree, model: PyTree) -> PyTree:
    """Place the grid-shaped array leaves of ``tree`` (fields ``(..., nx, ny)`` and spectra
    ``(..., nx, ny // 2 + 1)``) split along ``x`` on the mesh of ``model``'s distributed
    grid; other leaves (time, scalars) are replicated."""
    plans = [
        g.transform
        for g in jax.tree.leaves(model, is_leaf=_is_grid)
        if _is_grid(g) and isinstance(g.transform, SlabFFT)
    ]
    if not plans:
        raise ValueError("shard_fields: the model has no distributed grid; call distribute first")
    plan = plans[0]
    shapes = {plan.shape, (plan.shape[0], plan.half)}

    def place(x):
        if not eqx.is_array(x):
            return x
        if x.ndim >= 2 and tuple(x.shape[-2:]) in shapes:
            return jax.device_put(x, plan.sharding(x.ndim))
        return jax.device_put(
            x, jax.sharding.NamedSharding(plan.mesh, jax.sharding.PartitionSpec())
        )

    return jax.tree.map(place, tree)
