"""Multi-process start-up on `jax.distributed` (CPU via gloo, GPU/TPU natively)."""

from __future__ import annotations

import os

import jax

__all__ = ["initialize", "is_initialized"]

_STATE = {"initialized": False}


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    local_device_ids: list[int] | None = None,
    cpu_collectives: str = "gloo",
) -> dict:
    """Join a multi-process JAX run; afterwards `jax.devices()` lists every process's devices.

    Call it once per process, before any other JAX work. Three ways to say where the
    coordinator is:

    - explicitly: ``initialize("10.0.0.1:1234", num_processes=4, process_id=rank)``;
    - environment variables ``HYBRAX_COORDINATOR``, ``HYBRAX_NUM_PROCESSES``,
      ``HYBRAX_PROCESS_ID`` (handy for hand-started processes);
    - a SLURM job (``srun``): no arguments; JAX reads ``SLURM_*`` itself.

    On CPU, collectives between processes go through gloo (``cpu_collectives``).

    Returns
    -------
    dict with ``process_index``, ``process_count``, ``local_devices`` and ``devices``.

    Examples
    --------
    Two processes on one machine, each with 4 CPU devices (run each line in its own shell,
    with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``)::

        hybrax.parallel.initialize("localhost:12355", num_processes=2, process_id=0)
        hybrax.parallel.initialize("localhost:12355", num_processes=2, process_id=1)
    """
    if _STATE["initialized"]:
        raise RuntimeError("hybrax.parallel.initialize was already called in this process")
    env = os.environ
    coordinator_address = coordinator_address or env.get("HYBRAX_COORDINATOR")
    if num_processes is None and "HYBRAX_NUM_PROCESSES" in env:
        num_processes = int(env["HYBRAX_NUM_PROCESSES"])
    if process_id is None and "HYBRAX_PROCESS_ID" in env:
        process_id = int(env["HYBRAX_PROCESS_ID"])
    explicit = (coordinator_address, num_processes, process_id)
    if any(v is not None for v in explicit) and any(v is None for v in explicit):
        raise ValueError(
            "give all of coordinator_address ('host:port'), num_processes and process_id "
            f"(or none of them, inside a SLURM job); got {explicit}"
        )
    if num_processes is not None and not 0 <= process_id < num_processes:
        raise ValueError(f"process_id must be in [0, {num_processes}), got {process_id}")
    if coordinator_address is None and "SLURM_JOB_ID" not in env:
        raise ValueError(
            "no coordinator: pass coordinator_address/num_processes/process_id, set "
            "HYBRAX_COORDINATOR/HYBRAX_NUM_PROCESSES/HYBRAX_PROCESS_ID, or run under SLURM"
        )
    jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        local_device_ids=local_device_ids,
    )
    _STATE["initialized"] = True
    return {
        "process_index": jax.process_index(),
        "process_count": jax.process_count(),
        "local_devices": [str(d) for d in jax.local_devices()],
        "devices": [str(d) for d in jax.devices()],
    }


def is_initialized() -> bool:
    """Whether `initialize` has run in this process."""
    return _STATE["initialized"]
