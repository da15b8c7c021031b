"""Wall time of model rollouts, as the workflows measure their cost."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax

import hybrax

__all__ = ["fastest_rollout_seconds"]


def fastest_rollout_seconds(
    runs: Mapping[str, tuple[Any, Any, int]], *, rounds: int = 3, check_finite: bool = True
) -> dict[str, float]:
    """Seconds of one rollout of each model: the minimum over ``rounds`` interleaved rounds.

    ``runs`` maps a name to ``(stepper, start, n_steps)``: ``n_steps`` steps from ``start``
    in one jitted `hybrax.rollout` without saving (the network, if any, included).
    Compilation is excluded (one call first), and every model is timed once per round, so
    load from other processes hits all alike.
    """
    calls = {}
    for name, (stepper, state, n_steps) in runs.items():
        run_it = eqx.filter_jit(
            lambda s, x, n=n_steps: hybrax.rollout(
                s, x, n, save_every=None, check_finite=check_finite
            )[0]
        )
        jax.block_until_ready(run_it(stepper, state))
        calls[name] = (run_it, stepper, state)
    best = {name: math.inf for name in calls}
    for _ in range(rounds):
        for name, (run_it, stepper, state) in calls.items():
            t0 = time.perf_counter()
            jax.block_until_ready(run_it(stepper, state))
            best[name] = min(best[name], time.perf_counter() - t0)
    return best
