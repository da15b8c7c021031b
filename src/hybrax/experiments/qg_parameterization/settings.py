"""Settings of the ``qg-parameterization`` workflow."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from hybrax.climate import TwoLayerQG

from .._settings import WorkflowSettings

__all__ = ["CONFIGURATIONS", "FULL", "MODEL_NAMES", "QUICK", "QGParameterizationSettings"]

CONFIGURATIONS = ("eddy", "jet")
MODEL_NAMES = (
    "none",
    "smagorinsky",
    "zanna_bolton",
    "backscatter_biharmonic",
    "cnn_offline",
    "cnn_online",
)
SPECTRAL_METRICS = (
    "spectral_diff_KEspec1",
    "spectral_diff_KEspec2",
    "spectral_diff_Ensspec1",
    "spectral_diff_Ensspec2",
)
HOURS, DAYS = 3600.0, 86400.0


@dataclasses.dataclass(frozen=True)
class QGParameterizationSettings(WorkflowSettings):
    """Sizes and hyper-parameters of the experiment (times in days unless named otherwise).

    The defaults are the full run (sized to fit about 30 minutes on 2 shared CPU cores: the
    eddy configuration took 13.6 min with the machine loaded about 3.5x, the 64² CNN's
    offline and online training and its evaluation runs being the costly parts); `QUICK`
    is the CI size.

    Attributes
    ----------
    configurations
        `hybrax.climate.TwoLayerQG` presets to run (``"eddy"``, ``"jet"``).
    models
        The models evaluated (a subset of `MODEL_NAMES` holding ``"none"``, the baseline
        of the spectral score); the CNN is trained in any case.
    reference_points, coarse_points
        Points per axis of the high-resolution reference and of the coarse model.
    time_step
        Coarse model step, s (pyqg's 3600 s at 64^2). The reference steps
        ``time_step * coarse_points / reference_points`` (the same Courant number).
    num_members
        Independent reference runs per configuration (random initial PV).
    spin_up_days
        Reference time discarded from each start, per configuration as
        ``(eddy, jet)`` (the jet's weak drag equilibrates slowly).
    num_samples, sample_interval_days
        Training samples per member and the reference time between them. Each sample
        holds the filtered coarse PV, its sub-grid forcing (offline target) and the filtered
        reference over the next ``unroll_steps`` coarse steps (online target).
    eval_days, eval_snapshots
        Length of the evaluation runs that follow the training samples (one per member,
        every model started from the filtered reference), and the number of equally spaced
        snapshots kept for the metrics (`hybrax.climate.qg_distances`).
    num_ending_steps
        Snapshots (from the end) pooled for the distribution distances.
    hidden_channels, num_layers, kernel_size, velocity_inputs
        The CNN (`CNNParameterization`): channels, convolutions, first-layer kernel width
        (the others are 3); with ``velocity_inputs`` it sees ``u, v`` besides ``q``.
    offline_steps, offline_batch, offline_learning_rate
        Offline training (MSE on the sub-grid forcing).
    unroll_steps, online_steps, online_batch, online_learning_rate
        Online training, from the offline weights: coarse steps unrolled through the solver,
        Adam steps, windows per step, peak learning rate (cosine decay).
    timing_days
        Simulated time of each cost measurement.
    seed
        PRNG seed of everything random.
    """

    configurations: tuple[str, ...] = CONFIGURATIONS
    models: tuple[str, ...] = MODEL_NAMES
    reference_points: int = 128
    coarse_points: int = 64
    time_step: float = 3600.0
    num_members: int = 2
    spin_up_days: tuple[float, float] = (1095.0, 2190.0)
    num_samples: int = 36
    sample_interval_days: float = 10.0
    eval_days: float = 365.0
    eval_snapshots: int = 73
    num_ending_steps: int = 20
    hidden_channels: int = 16
    num_layers: int = 3
    kernel_size: int = 3
    velocity_inputs: bool = True
    offline_steps: int = 300
    offline_batch: int = 16
    offline_learning_rate: float = 2e-3
    unroll_steps: int = 24
    online_steps: int = 50
    online_batch: int = 4
    online_learning_rate: float = 5e-4
    timing_days: float = 10.0
    seed: int = 0

    def validate(self) -> None:
        self.require(
            "configurations",
            len(self.configurations) > 0 and set(self.configurations) <= set(CONFIGURATIONS),
            f"a non-empty tuple of {CONFIGURATIONS}",
        )
        self.require(
            "models",
            "none" in self.models and set(self.models) <= set(MODEL_NAMES),
            f"a tuple of {MODEL_NAMES} holding 'none'",
        )
        self.require(
            "coarse_points",
            self.coarse_points >= 16 and self.coarse_points % 2 == 0,
            "even and at least 16, e.g. 64",
        )
        ratio = self.reference_points / self.coarse_points
        self.require(
            "reference_points",
            ratio >= 2 and ratio == int(ratio),
            f"a multiple (at least 2x) of coarse_points ({self.coarse_points}), e.g. 128",
        )
        self.require_positive(
            "time_step",
            "num_members",
            "num_samples",
            "sample_interval_days",
            "eval_days",
            "eval_snapshots",
            "num_ending_steps",
            "hidden_channels",
            "num_layers",
            "unroll_steps",
            "offline_batch",
            "online_batch",
            "offline_learning_rate",
            "online_learning_rate",
            "timing_days",
        )
        self.require_nonnegative("offline_steps", "online_steps")
        self.require("kernel_size", self.kernel_size % 2 == 1, "odd, e.g. 5")
        self.require(
            "spin_up_days", all(d >= 0 for d in self.spin_up_days), "non-negative (eddy, jet)"
        )
        self.require(
            "unroll_steps",
            self.unroll_steps <= self.steps(self.sample_interval_days),
            f"at most the coarse steps between samples ({self.steps(self.sample_interval_days)})",
        )
        per = self.steps(self.eval_days) / self.eval_snapshots
        self.require(
            "eval_snapshots",
            per >= 1 and per == int(per),
            f"a divisor of the coarse steps in eval_days ({self.steps(self.eval_days)})",
        )
        self.require(
            "num_ending_steps",
            self.num_ending_steps <= self.eval_snapshots,
            f"at most eval_snapshots ({self.eval_snapshots})",
        )

    # ------------------------------------------------------------------ derived
    @property
    def factor(self) -> int:
        """Reference points per coarse point along an axis (also reference steps per
        coarse step)."""
        return self.reference_points // self.coarse_points

    def steps(self, days: float) -> int:
        """Coarse steps in ``days`` (rounded)."""
        return round(days * DAYS / self.time_step)

    def spin_up(self, configuration: str) -> float:
        """Spin-up of ``configuration`` in days."""
        return self.spin_up_days[CONFIGURATIONS.index(configuration)]

    def model(self, configuration: str, points: int, parameterization=None) -> TwoLayerQG:
        """The `TwoLayerQG` preset ``configuration`` on ``points``^2."""
        preset = getattr(TwoLayerQG, configuration)
        return preset(points, parameterization=parameterization)

    def coarse_stepper(self, configuration: str, parameterization=None):
        """pyqg's AB3 stepper of the coarse model (with ``parameterization``)."""
        model = self.model(configuration, self.coarse_points, parameterization)
        return model.pyqg_stepper(jnp.float32(self.time_step))

    def reference_stepper(self, configuration: str):
        """pyqg's AB3 stepper of the reference model, ``time_step / factor``."""
        model = self.model(configuration, self.reference_points)
        return model.pyqg_stepper(jnp.float32(self.time_step / self.factor))


FULL = QGParameterizationSettings()
QUICK = QGParameterizationSettings(
    reference_points=64,
    coarse_points=32,
    time_step=7200.0,
    num_members=2,
    spin_up_days=(730.0, 1825.0),
    num_samples=16,
    sample_interval_days=10.0,
    eval_days=360.0,
    eval_snapshots=30,
    num_ending_steps=10,
    hidden_channels=8,
    num_layers=3,
    kernel_size=3,
    offline_steps=300,
    offline_batch=16,
    unroll_steps=16,
    online_steps=40,
    online_batch=4,
    timing_days=10.0,
)
