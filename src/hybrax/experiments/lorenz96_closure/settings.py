"""Settings of the ``lorenz96-closure`` workflow."""

from __future__ import annotations

import dataclasses

from .._settings import WorkflowSettings

__all__ = ["FULL", "QUICK", "ClosureSettings"]


@dataclasses.dataclass(frozen=True)
class ClosureSettings(WorkflowSettings):
    """Sizes of the experiment (times in model time units).

    The defaults are the full run (a few minutes on a 2-core CPU); `QUICK` is the CI size.

    Attributes
    ----------
    truth_dt, coarse_dt
        RK4 steps of the two-scale truth and of the coarse models (a whole multiple).
    spin_up_time
        Truth time discarded from every random start.
    num_train_trajectories, train_time
        Truth runs the closures are trained on, and their length.
    num_forecasts, forecast_spacing, leads
        Forecasts cut from the climate runs ``forecast_spacing`` apart; RMSE at ``leads``.
    num_climate_members, climate_time
        Long truth and model runs for the PDF of ``X``.
    stencil_radius, width, depth
        The local network: ``2 r + 1`` inputs, hidden width and layers.
    offline_steps, offline_batch, offline_learning_rate
        Regression on the coupling term.
    online_steps, online_unroll, online_batch, online_learning_rate
        Training through the coarse solver on ``online_unroll``-step windows.
    histogram_bins
        Bins of the PDF.
    seed
        PRNG seed of everything random.
    """

    truth_dt: float = 0.005
    coarse_dt: float = 0.01
    spin_up_time: float = 10.0
    num_train_trajectories: int = 8
    train_time: float = 50.0
    num_forecasts: int = 300
    forecast_spacing: float = 2.0
    leads: tuple[float, ...] = (0.5, 1.0)
    num_climate_members: int = 48
    climate_time: float = 100.0
    stencil_radius: int = 2
    width: int = 32
    depth: int = 2
    offline_steps: int = 2000
    offline_batch: int = 64
    offline_learning_rate: float = 3e-3
    online_steps: int = 2000
    online_unroll: int = 20
    online_batch: int = 32
    online_learning_rate: float = 1e-3
    histogram_bins: int = 50
    seed: int = 0

    def validate(self) -> None:
        self.require_positive("truth_dt", "coarse_dt", "train_time", "forecast_spacing")
        self.require_positive("num_train_trajectories", "num_forecasts", "num_climate_members")
        self.require_positive("climate_time", "width", "depth", "offline_batch", "online_batch")
        self.require_positive("offline_learning_rate", "online_learning_rate", "histogram_bins")
        self.require_positive("online_unroll")
        self.require_nonnegative("spin_up_time", "stencil_radius", "offline_steps", "online_steps")
        ratio = self.coarse_dt / self.truth_dt
        self.require(
            "coarse_dt",
            abs(ratio - round(ratio)) <= 1e-9 and round(ratio) >= 1,
            f"a whole multiple of truth_dt={self.truth_dt}",
        )
        self.require("leads", bool(self.leads) and min(self.leads) > 0, "positive lead times")
        for lead in self.leads:
            self.require("leads", self.steps(lead) >= 1, f"at least coarse_dt={self.coarse_dt}")
        train_states = self.steps(self.train_time) + 1
        self.require(
            "online_unroll",
            self.online_unroll + 1 <= train_states,
            f"shorter than the {train_states - 1} coarse steps of train_time={self.train_time}",
        )
        horizon = self.steps(max(self.leads))
        spacing = max(1, self.steps(self.forecast_spacing))
        per_run = max(0, (self.steps(self.climate_time) - horizon) // spacing + 1)
        self.require(
            "num_forecasts",
            self.num_forecasts <= per_run * self.num_climate_members,
            f"at most the {per_run * self.num_climate_members} segments "
            f"{self.forecast_spacing} time units apart in the climate runs (lengthen "
            "climate_time or add members)",
        )

    def steps(self, duration: float) -> int:
        """Coarse steps in ``duration`` time units (rounded)."""
        return round(duration / self.coarse_dt)

    @property
    def save_every(self) -> int:
        """Truth steps per coarse step."""
        return round(self.coarse_dt / self.truth_dt)


FULL = ClosureSettings()
QUICK = ClosureSettings(
    num_train_trajectories=4,
    train_time=20.0,
    num_forecasts=100,
    num_climate_members=8,
    climate_time=30.0,
    offline_steps=600,
    online_steps=200,
    online_unroll=10,
)
