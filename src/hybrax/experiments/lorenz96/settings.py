"""Settings of the ``lorenz96`` workflow."""

from __future__ import annotations

import dataclasses

from .._settings import WorkflowSettings

__all__ = ["FULL", "QUICK", "Lorenz96Settings"]


@dataclasses.dataclass(frozen=True)
class Lorenz96Settings(WorkflowSettings):
    """Sizes of the ``lorenz96`` run (times in steps of ``dt``). Defaults: the full run.

    Attributes
    ----------
    num_variables, forcing
        Lorenz-96 size ``K`` and forcing ``F``.
    dt
        RK4 time step (model time units).
    steps, spin_up_steps
        Saved steps after a discarded spin-up.
    lyapunov_steps
        Steps of the Lyapunov-spectrum run (at most ``steps`` are used), with
        ``num_exponents`` exponents, re-orthonormalised every ``reorthonormalize_every``
        steps after at most ``lyapunov_discard_steps`` discarded ones.
    plot_time
        Time shown in the Hovmöller plot (the end of the run).
    seed, dtype
        Random start and the states' float dtype.
    """

    num_variables: int = 40
    forcing: float = 8.0
    dt: float = 0.01
    steps: int = 50_000
    spin_up_steps: int = 1_000
    lyapunov_steps: int = 20_000
    num_exponents: int = 3
    reorthonormalize_every: int = 10
    lyapunov_discard_steps: int = 1_000
    plot_time: float = 20.0
    seed: int = 0
    dtype: str = "float32"

    def validate(self) -> None:
        self.require("num_variables", self.num_variables >= 4, "at least 4")
        self.require_positive("dt", "plot_time", "reorthonormalize_every", "lyapunov_steps")
        self.require_nonnegative("spin_up_steps", "lyapunov_discard_steps")
        every = self.reorthonormalize_every
        self.require(
            "steps",
            self.steps >= every,
            f"at least reorthonormalize_every={every} (the Lyapunov run needs one "
            "re-orthonormalisation)",
        )
        self.require(
            "num_exponents", 1 <= self.num_exponents <= self.num_variables, "in 1..num_variables"
        )
        self.require("dtype", self.dtype in ("float32", "float64"), "'float32' or 'float64'")

    @property
    def save_every(self) -> int:
        """Steps between saved states (5 when it divides ``steps``)."""
        return 5 if self.steps % 5 == 0 else 1

    @property
    def lyapunov_run_steps(self) -> int:
        """Steps of the Lyapunov run: ``min(steps, lyapunov_steps)``, whole blocks."""
        every = self.reorthonormalize_every
        return min(self.steps, self.lyapunov_steps) // every * every

    @property
    def lyapunov_discard(self) -> int:
        """Discarded steps of the Lyapunov run (whole blocks, at most half of it)."""
        every = self.reorthonormalize_every
        return min(self.lyapunov_discard_steps, self.lyapunov_run_steps // 2) // every * every


FULL = Lorenz96Settings()
QUICK = Lorenz96Settings(steps=5_000)
