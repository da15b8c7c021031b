"""One process of the multi-process test (run by tests/parallel/test_multiprocess.py).

Usage: python multiprocess_worker.py PROCESS_ID NUM_PROCESSES PORT OUT_JSON

With NUM_PROCESSES=1 it runs the same computation in a single process (the reference).
Each process sees 8 // NUM_PROCESSES CPU devices; the mesh spans all 8.
"""

import json
import os
import sys

process_id, num_processes, port, out_path = (
    int(sys.argv[1]),
    int(sys.argv[2]),
    int(sys.argv[3]),
    sys.argv[4],
)
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={8 // num_processes}"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
from jax.experimental import multihost_utils  # noqa: E402

import hybrax  # noqa: E402
from hybrax.parallel import initialize, make_mesh, sharded_rollout  # noqa: E402

if num_processes > 1:
    info = initialize(f"localhost:{port}", num_processes=num_processes, process_id=process_id)
    assert info["process_count"] == num_processes, info

mesh = make_mesh()
assert mesh.size == 8, mesh

# 1. A sharded ensemble rollout: 16 Lorenz-96 members split over 8 devices in 2 processes.
model = hybrax.climate.Lorenz96(num_variables=40, forcing=8.0)
keys = jax.random.split(jax.random.key(0), 16)
states = jax.vmap(lambda k: model.initial_state(k, dtype=jnp.float64))(keys)
final, energy = sharded_rollout(
    hybrax.RK4(model, 0.01),
    states,
    200,
    mesh,
    save_every=50,
    observe=lambda s: 0.5 * jnp.sum(s.u**2),
)
assert final.u.sharding.spec == jax.sharding.PartitionSpec("batch"), final.u.sharding
final_u = multihost_utils.process_allgather(final.u, tiled=True)
energy = multihost_utils.process_allgather(energy, tiled=True)

# 2. Data-parallel training steps: an MLP closure term fitted to the L96 advection.
x = jax.random.normal(jax.random.key(1), (64, 40), jnp.float64) * 3 + 2
targets = jax.vmap(lambda u: model.nonlinear(hybrax.ODEState(u), 0.0).u)(x)
net = hybrax.nn.MLP(40, 40, 32, 2, key=jax.random.key(2), dtype=jnp.float64)
result = hybrax.hybrid.fit(
    net,
    hybrax.hybrid.RegressionLoss(),
    hybrax.hybrid.Batches((x, targets), 16),
    optax.adam(1e-3),
    steps=5,
    sharding=hybrax.hybrid.DataParallel(mesh),
)
losses = [entry["loss"] for entry in result.history["train"]]

if process_id == 0:
    with open(out_path, "w") as f:
        json.dump(
            {
                "final_u": jnp.asarray(final_u).tolist(),
                "energy": jnp.asarray(energy).tolist(),
                "losses": losses,
                "process_count": jax.process_count(),
                "devices": len(jax.devices()),
            },
            f,
        )
if num_processes > 1:
    multihost_utils.sync_global_devices("done")
print(f"process {process_id} done")
