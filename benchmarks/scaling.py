"""Scaling on 1, 2, 4, 8 host devices: sharded ensembles, data-parallel training, slab FFTs.

On this 2-core CPU machine the "devices" are XLA host-platform devices sharing two cores,
so the figures measure the overhead of sharding (partitioning, collectives, per-device
dispatch), not speed-up; on a GPU/TPU slice the same script measures real scaling. Every
call is waited for before the next is dispatched: host-platform collectives deadlock when
several executions are in flight on fewer cores than devices.

- ensemble rollout (Lorenz-96, K=40, RK4): weak scaling (128 members per device) and
  strong scaling (1,024 members in all), member-steps per second;
- data-parallel training (MLP regression, global batch 256): steps per second;
- distributed spectral step: a slab-decomposed rfft2 + irfft2 pair, one ETDRK4 step of
  Kolmogorov flow and one Adams–Bashforth-3 step of the two-layer QG model with the field
  split over the devices (`hybrax.parallel.distribute`), each vs the single-device version.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding, PartitionSpec

sys.path.insert(0, str(Path(__file__).parent))
import _harness as H

import hybrax
from hybrax.parallel import (
    SlabFFT,
    distribute,
    make_mesh,
    replicate,
    shard_batch,
    shard_fields,
)

DEVICE_COUNTS = (1, 2, 4, 8)


def ensemble_records(n_steps, repeat, members_per_device, total_members):
    model = hybrax.climate.Lorenz96(num_variables=40, forcing=8.0)
    stepper = hybrax.RK4(model, 0.01)
    run = jax.jit(jax.vmap(lambda s: hybrax.rollout(stepper, s, n_steps, save_every=None)[0]))
    records = []
    for mode, members_for in (
        ("weak", lambda d: members_per_device * d),
        ("strong", lambda d: total_members),
    ):
        for devices in DEVICE_COUNTS:
            members = members_for(devices)
            keys = jax.random.split(jax.random.key(0), members)
            states = jax.vmap(lambda k: model.initial_state(k, dtype=jnp.float32))(keys)
            states = shard_batch(states, make_mesh(devices))
            seconds = H.time_call(lambda states=states: H.block(run(states)), repeat=repeat)
            records.append(
                H.Record(
                    f"L96 ensemble {mode} ({members_for(1)} members on 1 device)",
                    f"{devices} device(s)",
                    "members_steps_per_s",
                    members * n_steps / seconds,
                    "member-steps/s",
                )
            )
    return records


def training_records(repeat, batch_size=256, width=128):
    x = jax.random.normal(jax.random.key(1), (batch_size, 40), jnp.float32)
    y = jnp.sin(x) * jnp.roll(x, 1, axis=-1)
    net = hybrax.nn.MLP(40, 40, width, 3, key=jax.random.key(2), dtype=jnp.float32)
    optimizer = optax.adam(1e-3)
    records = []
    for devices in DEVICE_COUNTS:
        mesh = make_mesh(devices)
        params = replicate(net, mesh)
        opt_state = replicate(optimizer.init(eqx.filter(net, eqx.is_inexact_array)), mesh)
        data = jax.device_put((x, y), NamedSharding(mesh, PartitionSpec("batch")))

        @eqx.filter_jit
        def update(params, opt_state, batch):
            def loss(model):
                return jnp.mean((jax.vmap(model)(batch[0]) - batch[1]) ** 2)

            value, grads = eqx.filter_value_and_grad(loss)(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return eqx.apply_updates(params, updates), opt_state, value

        def step(params=params, opt_state=opt_state, data=data, update=update):
            return H.block(update(params, opt_state, data)[2])

        seconds = H.time_call(step, repeat=repeat)
        records.append(
            H.Record(
                f"data-parallel MLP training (batch {batch_size})",
                f"{devices} device(s)",
                "steps_per_s",
                1 / seconds,
                "steps/s",
            )
        )
    return records


def fft_records(repeat, sizes):
    records = []
    for n in sizes:
        x = jax.random.normal(jax.random.key(3), (n, n), jnp.float32)
        single = jax.jit(lambda x: jnp.fft.irfft2(jnp.fft.rfft2(x), s=x.shape))
        seconds = H.time_call(lambda x=x, single=single: single(x), repeat=repeat)
        case = f"rfft2+irfft2 {n}x{n} f32"
        records.append(H.Record(case, "single device", "ms_per_pair", 1e3 * seconds, "ms"))
        for devices in DEVICE_COUNTS[1:]:
            mesh = make_mesh(devices)
            fft = SlabFFT(mesh, "batch", (n, n))
            xs = jax.device_put(x, NamedSharding(mesh, fft.spec(2)))
            pair = jax.jit(lambda x, fft=fft: fft.irfft2(fft.rfft2(x)))
            seconds = H.time_call(lambda xs=xs, pair=pair: H.block(pair(xs)), repeat=repeat)
            records.append(
                H.Record(case, f"slab {devices} devices", "ms_per_pair", 1e3 * seconds, "ms")
            )
    return records


def solver_records(repeat, n, n_steps=10):
    """ms per step of 2-D spectral solvers with the field on 1 device and split over 2-8."""
    flow = hybrax.fluids.NavierStokes2D.kolmogorov(n)
    qg = hybrax.climate.TwoLayerQG.eddy(n)
    cases = (
        (
            f"Kolmogorov {n}^2 ETDRK4 f32",
            flow,
            lambda m: hybrax.ETDRK4(m, 1e-3).prepare(),
            lambda m, stepper: m.initial_state(jax.random.key(4), dtype=jnp.float32),
        ),
        (
            f"QG eddy {n}^2 AB3 f32",
            qg,
            lambda m: m.pyqg_stepper(1800.0),
            lambda m, stepper: stepper.init(m.initial_state(jax.random.key(5), dtype=jnp.float32)),
        ),
    )
    records = []
    for case, model, make_stepper, make_state in cases:
        for devices in DEVICE_COUNTS:
            if devices == 1:
                m, label = model, "single device"
            else:
                m, label = distribute(model, make_mesh(devices, "space")), f"slab {devices} devices"
            stepper = make_stepper(m)
            state = make_state(m, stepper)
            if devices > 1:
                state = shard_fields(state, m)
            run = jax.jit(
                lambda s, stepper=stepper: hybrax.rollout(stepper, s, n_steps, save_every=None)[0]
            )
            seconds = H.time_call(lambda s=state, run=run: H.block(run(s)), repeat=repeat)
            records.append(H.Record(case, label, "ms_per_step", 1e3 * seconds / n_steps, "ms"))
    return records


def main(argv=None):
    args = H.parse_args(__doc__.splitlines()[0], argv)
    repeat = 3 if args.quick else 5
    records = ensemble_records(100 if args.quick else 500, repeat, 128, 1024)
    records += training_records(repeat)
    records += fft_records(repeat, (128,) if args.quick else (256, 512))
    records += solver_records(repeat, 64 if args.quick else 256)
    H.report(
        records,
        args.json,
        baseline={
            "members_steps_per_s": "1 device(s)",
            "steps_per_s": "1 device(s)",
            "ms_per_pair": "single device",
            "ms_per_step": "single device",
        },
    )
    H.write_environment(args.json)
    return records


if __name__ == "__main__":
    main()
