"""Device meshes and sharded ensembles on JAX's own sharding machinery."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import PyTree

from hybrax.core import AbstractStepper, rollout

__all__ = [
    "batch_sharding",
    "make_mesh",
    "replicate",
    "shard_batch",
    "sharded_rollout",
]

BATCH = "batch"


def make_mesh(
    num_devices: int | None = None,
    axis_names: str | Sequence[str] = BATCH,
    *,
    shape: Sequence[int] | None = None,
    devices: Sequence[jax.Device] | None = None,
) -> Mesh:
    """A device mesh over ``num_devices`` devices (default: all, across all processes).

    Parameters
    ----------
    num_devices
        How many devices to use (the first ones of ``devices`` or `jax.devices`).
    axis_names
        One name for a 1-D mesh (default ``"batch"``), or several with ``shape``.
    shape
        Mesh shape for several axes, e.g. ``(2, 4)`` with names ``("data", "space")``.
    devices
        Devices to use (default `jax.devices`, which spans every process).

    Examples
    --------
    >>> mesh = make_mesh(1)
    >>> dict(mesh.shape)
    {'batch': 1}
    """
    devices = list(jax.devices() if devices is None else devices)
    num_devices = len(devices) if num_devices is None else num_devices
    if not 1 <= num_devices <= len(devices):
        raise ValueError(
            f"num_devices must be between 1 and the {len(devices)} available devices, "
            f"got {num_devices}"
        )
    names = (axis_names,) if isinstance(axis_names, str) else tuple(axis_names)
    shape = (num_devices,) if shape is None else tuple(shape)
    if len(shape) != len(names) or int(np.prod(shape)) != num_devices:
        raise ValueError(
            f"mesh shape {shape} must have one entry per axis name {names} and multiply "
            f"to num_devices={num_devices}"
        )
    return Mesh(np.asarray(devices[:num_devices]).reshape(shape), names)


def batch_sharding(mesh: Mesh, axis: str = BATCH) -> NamedSharding:
    """Sharding that splits an array's leading axis over the mesh axis ``axis``."""
    if axis not in mesh.axis_names:
        raise ValueError(f"mesh has axes {mesh.axis_names}, not {axis!r}")
    return NamedSharding(mesh, PartitionSpec(axis))


def _check_divisible(tree: PyTree, size: int, axis: str) -> None:
    for leaf in jax.tree.leaves(tree):
        if eqx.is_array(leaf) and (leaf.ndim == 0 or leaf.shape[0] % size):
            raise ValueError(
                f"every array must have a leading (ensemble) axis divisible by the {size} "
                f"devices of mesh axis {axis!r}; got shape {leaf.shape}. Pad the ensemble "
                f"or choose a mesh size that divides it."
            )


def shard_batch(tree: PyTree, mesh: Mesh, axis: str = BATCH) -> PyTree:
    """Place every array leaf of ``tree`` with its leading axis split over ``axis``.

    Each device then holds ``members / mesh.shape[axis]`` ensemble members; jitted code on
    the result runs where the data is, and XLA keeps the split through elementwise work,
    scans and vmapped solvers.
    """
    _check_divisible(tree, mesh.shape[axis], axis)
    sharding = batch_sharding(mesh, axis)
    return jax.tree.map(lambda x: jax.device_put(x, sharding) if eqx.is_array(x) else x, tree)


def replicate(tree: PyTree, mesh: Mesh) -> PyTree:
    """Copy every array leaf of ``tree`` to all devices of ``mesh`` (e.g. parameters)."""
    sharding = NamedSharding(mesh, PartitionSpec())
    return jax.tree.map(lambda x: jax.device_put(x, sharding) if eqx.is_array(x) else x, tree)


def sharded_rollout(
    stepper: AbstractStepper,
    states: PyTree,
    n_steps: int,
    mesh: Mesh,
    *,
    axis: str = BATCH,
    **rollout_kwargs,
) -> tuple[PyTree, PyTree]:
    """`hybrax.rollout` of an ensemble whose members are split over the mesh axis ``axis``.

    ``states`` has a leading ensemble axis (as `jax.vmap` expects). Members stay on their
    devices for the whole loop: the inputs are sharded, the outputs are constrained to the
    same split, and the stepper is replicated, so no device ever gathers the ensemble.

    Examples
    --------
    >>> import jax, hybrax
    >>> from hybrax.parallel import make_mesh, sharded_rollout
    >>> model = hybrax.climate.Lorenz96()
    >>> states = jax.vmap(model.initial_state)(jax.random.split(jax.random.key(0), 8))
    >>> final, _ = sharded_rollout(hybrax.RK4(model, 0.01), states, 100, make_mesh(1),
    ...                            save_every=None)
    """
    states = shard_batch(states, mesh, axis)
    stepper = replicate(stepper, mesh)
    return _sharded(stepper, states, n_steps, batch_sharding(mesh, axis), rollout_kwargs)


def _sharded(stepper, states, n_steps, sharding, kwargs):
    kwargs = dict(kwargs)
    observe: Callable | None = kwargs.pop("observe", None)

    @eqx.filter_jit
    def run(stepper, states):
        out = jax.vmap(lambda s: rollout(stepper, s, n_steps, observe=observe, **kwargs))(states)
        return jax.tree.map(
            lambda x: jax.lax.with_sharding_constraint(x, sharding) if eqx.is_array(x) else x,
            out,
        )

    return run(stepper, states)
