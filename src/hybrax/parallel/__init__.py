"""Scaling out on JAX's own runtime: device meshes, sharded ensembles, multi-process runs."""

from ._distributed import initialize, is_initialized
from ._mesh import batch_sharding, make_mesh, replicate, shard_batch, sharded_rollout

__all__ = [
    "batch_sharding",
    "initialize",
    "is_initialized",
    "make_mesh",
    "replicate",
    "shard_batch",
    "sharded_rollout",
]
