"""Scaling out on JAX's own runtime: device meshes, sharded ensembles, distributed FFTs,
multi-process runs."""

from ._distributed import initialize, is_initialized
from ._fft import SlabFFT
from ._fft3d import SlabFFT3D
from ._mesh import batch_sharding, make_mesh, replicate, shard_batch, sharded_rollout
from ._spatial import distribute, shard_fields

__all__ = [
    "SlabFFT",
    "SlabFFT3D",
    "batch_sharding",
    "distribute",
    "initialize",
    "is_initialized",
    "make_mesh",
    "replicate",
    "shard_batch",
    "shard_fields",
    "sharded_rollout",
]
