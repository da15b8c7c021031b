"""Workflow ``lorenz96``: simulate Lorenz-96, plot it, measure its climate and chaos."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import hybrax
from hybrax.climate import Lorenz96

from . import _plotting
from ._registry import register_workflow


@register_workflow(
    "lorenz96",
    "Lorenz-96 (K=40, F=8): Hovmoller plot, climate statistics, Lyapunov exponents",
)
def run(
    out_dir: Path,
    *,
    steps: int | None = None,
    quick: bool = False,
    progress: bool = True,
    num_variables: int = 40,
    forcing: float = 8.0,
    dt: float = 0.01,
    seed: int = 0,
) -> dict[str, Any]:
    """Simulate one-scale Lorenz-96 with RK4 and write ``hovmoller.png`` and
    ``diagnostics.json`` (mean, standard deviation, energy, leading Lyapunov exponents,
    error-doubling time, wall times) to ``out_dir``.

    Parameters
    ----------
    out_dir
        Output folder (must exist).
    steps
        Number of RK4 steps after spin-up (default 50,000, or 5,000 with ``quick``).
    quick
        Small run for CI.
    progress
        Progress bars.
    num_variables, forcing, dt, seed
        Model size ``K``, forcing ``F``, time step and random seed.
    """
    n_steps = steps or (5_000 if quick else 50_000)
    save_every = 5 if n_steps % 5 == 0 else 1
    model = Lorenz96(num_variables=num_variables, forcing=forcing)
    stepper = hybrax.RK4(model, dt)
    state = model.initial_state(jax.random.key(seed), dtype=jnp.float32)

    start = time.perf_counter()
    state, _ = hybrax.rollout(stepper, state, 1_000, save_every=None)  # spin-up, 10 units
    final, trajectory = hybrax.rollout(
        stepper, state, n_steps, save_every=save_every, progress=progress, check_finite=True
    )
    x = np.asarray(jax.block_until_ready(trajectory.u))
    simulate_seconds = time.perf_counter() - start

    lyapunov_steps = min(n_steps, 20_000) // 10 * 10
    start = time.perf_counter()
    exponents = hybrax.lyapunov_spectrum(
        stepper,
        final,
        lyapunov_steps,
        k=3,
        reorthonormalize_every=10,
        discard_steps=min(1_000, lyapunov_steps // 2) // 10 * 10,
        progress=progress,
    )
    exponents = np.asarray(exponents, dtype=float)
    lyapunov_seconds = time.perf_counter() - start

    times = np.asarray(trajectory.time)
    shown = min(len(x), round(20 / (dt * save_every)))  # the last 20 time units
    fig, ax = _plotting.figure(figsize=(7, 5))
    _plotting.hovmoller(ax, x[-shown:], times[-shown:], label="X_k")
    ax.set_title(f"Lorenz-96, K={num_variables}, F={forcing}")
    plot_path = _plotting.save(fig, out_dir / "hovmoller.png")

    metrics = {
        "model": {"name": "Lorenz96", "num_variables": num_variables, "forcing": forcing},
        "integrator": {"name": "RK4", "dt": dt, "steps": n_steps, "spin_up_steps": 1_000},
        "mean": float(x.mean()),
        "std": float(x.std()),
        "mean_energy": float(0.5 * np.mean(np.sum(x**2, axis=-1))),
        "lyapunov_exponents": exponents.tolist(),
        "lyapunov_steps": lyapunov_steps,
        "error_doubling_time": float(np.log(2) / exponents[0]) if exponents[0] > 0 else None,
        "simulate_seconds": simulate_seconds,
        "simulate_steps_per_second": (n_steps + 1_000) / simulate_seconds,
        "lyapunov_seconds": lyapunov_seconds,
        "files": [plot_path.name, "diagnostics.json"],
    }
    with open(out_dir / "diagnostics.json", "w") as f:
        json.dump(metrics, f, indent=1)
    return metrics
