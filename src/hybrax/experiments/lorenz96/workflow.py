"""The ``lorenz96`` run: simulate, measure climate and chaos, plot."""

from __future__ import annotations

import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import hybrax
from hybrax.climate import Lorenz96

from .. import _plotting
from .._registry import register_workflow
from .._workflow import Run
from .settings import FULL, QUICK, Lorenz96Settings

__all__ = ["run"]


@register_workflow(
    "lorenz96",
    "Lorenz-96 (K=40, F=8): Hovmoller plot, climate statistics, Lyapunov exponents",
    full=FULL,
    quick=QUICK,
)
def run(
    settings: Lorenz96Settings = FULL,
    out: str | os.PathLike | None = None,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Simulate one-scale Lorenz-96 with RK4; write ``metrics.json`` (mean, standard
    deviation, mean energy, leading Lyapunov exponents, error-doubling time),
    ``run_info.json`` (settings, wall times, speed) and ``hovmoller.png`` into the run
    folder ``out`` (default: a fresh ``runs/lorenz96-NNN``).
    """
    run = Run("lorenz96", settings, out, progress=progress, presets={"full": FULL, "quick": QUICK})
    s = settings
    model = Lorenz96(num_variables=s.num_variables, forcing=s.forcing)
    stepper = hybrax.RK4(model, s.dt)
    state = model.initial_state(jax.random.key(s.seed), dtype=jnp.dtype(s.dtype))

    with run.phase("simulate"):
        start = time.perf_counter()
        state, _ = hybrax.rollout(stepper, state, s.spin_up_steps, save_every=None)
        final, trajectory = hybrax.rollout(
            stepper, state, s.steps, save_every=s.save_every, progress=progress, check_finite=True
        )
        x = np.asarray(jax.block_until_ready(trajectory.u))
        simulate_seconds = time.perf_counter() - start
    with run.phase("lyapunov"):
        exponents = hybrax.lyapunov_spectrum(
            stepper,
            final,
            s.lyapunov_run_steps,
            k=s.num_exponents,
            reorthonormalize_every=s.reorthonormalize_every,
            discard_steps=s.lyapunov_discard,
            progress=progress,
        )
        exponents = np.asarray(exponents, dtype=float)

    with run.phase("plots"):
        times = np.asarray(trajectory.time)
        shown = min(len(x), round(s.plot_time / (s.dt * s.save_every)))
        fig, ax = _plotting.figure(figsize=(7, 5))
        _plotting.hovmoller(ax, x[-shown:], times[-shown:], label="X_k")
        ax.set_title(f"Lorenz-96, K={s.num_variables}, F={s.forcing}")
        run.save_figure(fig, "hovmoller.png")

    metrics = {
        "mean": float(x.mean()),
        "std": float(x.std()),
        "mean_energy": float(0.5 * np.mean(np.sum(x**2, axis=-1))),
        "lyapunov_exponents": exponents.tolist(),
        "error_doubling_time": float(np.log(2) / exponents[0]) if exponents[0] > 0 else None,
    }
    info = {
        "model": {"name": "Lorenz96", "num_variables": s.num_variables, "forcing": s.forcing},
        "integrator": {
            "name": "RK4",
            "dt": s.dt,
            "steps": s.steps,
            "spin_up_steps": s.spin_up_steps,
        },
        "lyapunov_steps": s.lyapunov_run_steps,
        "simulate_steps_per_second": (s.steps + s.spin_up_steps) / simulate_seconds,
    }
    summary = (
        f"Lorenz-96: mean {metrics['mean']:.3f}, std {metrics['std']:.3f}, Lyapunov "
        f"exponents {np.round(exponents, 3).tolist()}"
    )
    return run.finish(metrics, info, summary)
