"""Settings of the ``kolmogorov-correction`` workflow."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

import hybrax
from hybrax.fluids import NavierStokes2D
from hybrax.grids import Grid, cfl_time_step

from .._settings import WorkflowSettings

__all__ = ["FACTORS", "FULL", "HYBRIDS", "MODEL_NAMES", "QUICK", "CorrectionSettings"]

MODEL_NAMES = ("plain_1x", "plain_2x", "plain_4x", "hybrid_1x", "tendency_1x")
FACTORS = {"plain_1x": 1, "plain_2x": 2, "plain_4x": 4, "hybrid_1x": 1, "tendency_1x": 1}
HYBRIDS = ("hybrid_1x", "tendency_1x")  # the learned models (grid vs coarse above)


@dataclasses.dataclass(frozen=True)
class CorrectionSettings(WorkflowSettings):
    """Sizes and hyper-parameters of the experiment (times in model time units).

    The defaults are the full run; `QUICK` is the CI size.

    Attributes
    ----------
    coarse_points
        Points per axis of the coarse grid (the hybrid's and ``plain_1x``'s).
    reference_factor
        Resolution of the reference relative to the coarse grid.
    viscosity, drag, forcing_amplitude, forcing_wavenumber
        The Kolmogorov flow (`hybrax.fluids.NavierStokes2D.kolmogorov`); Re = 1000 by default.
    max_velocity, courant
        Every model grid (plain and hybrid) steps at ``dt = courant * dx / max_velocity``.
        ``max_velocity`` is a bound, about twice the flow's largest speed, so Courant 2
        here is about 1 in the flow: the plain solvers' decorrelation times at Courant 0.5,
        1 and 2 agree to three digits (ETDRK4 integrates the viscous term exactly), so the
        default is the cheapest of them and no model pays for a needlessly small step
        (at Courant 3 the 32² solver blows up within a few steps).
    reference_courant
        Courant number of the reference run (a smaller step, so the reference's own time
        error stays far below every model's); ``reference_factor * courant /
        reference_courant`` fine steps make one coarse step and must be a whole number.
    spin_up_time
        Reference time discarded from each random start (the transient to turbulence).
    num_train_trajectories, train_time
        Independent reference runs for training, and their length after spin-up.
    num_test_trajectories, test_starts, test_spacing, horizon
        Independent reference runs for evaluation; each gives ``test_starts`` forecasts
        starting ``test_spacing`` apart, followed for ``horizon``.
    threshold
        Correlation below which a forecast counts as decorrelated.
    hidden_channels, num_layers, kernel_size, phase_channels, velocity_inputs
        The CNN: channels, convolutions, kernel width; with ``phase_channels`` it also sees
        ``cos`` and ``sin`` of the forcing phase ``4 y`` (the flow is not homogeneous in
        ``y``); with ``velocity_inputs`` it sees ``u`` and ``v`` besides the vorticity.
        ``hidden_channels`` and ``num_layers`` are the post-step correction's
        (``hybrid_1x``).
    tendency_hidden_channels, tendency_num_layers, tendency_per_stage
        The spectral correction of the nonlinear term (``tendency_1x``): the same CNN
        with these channels and convolutions, evaluated at every ETDRK4 stage with
        ``tendency_per_stage``, otherwise once per step (`hybrax.hybrid.FrozenClosure`).
    stages
        Training curriculum: ``(unroll_steps, optimizer_steps)`` pairs, run in order
        (`hybrax.hybrid.Curriculum`).
    batch_size, learning_rate, window_stride
        Windows per optimizer step, peak Adam learning rate (cosine decay per stage),
        offset in coarse steps between consecutive training windows.
    timing_time
        Simulated time of each wall-time measurement.
    seed
        PRNG seed of everything random.
    dtype
        Real dtype of the states and the network (``None``: JAX's default float).
    """

    coarse_points: int = 32
    reference_factor: int = 8
    viscosity: float = 1e-3
    drag: float = 0.1
    forcing_amplitude: float = 1.0
    forcing_wavenumber: int = 4
    max_velocity: float = 7.0
    courant: float = 2.0
    reference_courant: float = 0.5
    spin_up_time: float = 10.0
    num_train_trajectories: int = 2
    train_time: float = 30.0
    num_test_trajectories: int = 3
    test_starts: int = 3
    test_spacing: float = 5.0
    horizon: float = 12.0
    threshold: float = 0.95
    hidden_channels: int = 8
    num_layers: int = 6
    kernel_size: int = 3
    phase_channels: bool = True
    velocity_inputs: bool = True
    tendency_hidden_channels: int = 8
    tendency_num_layers: int = 4
    tendency_per_stage: bool = False
    stages: tuple[tuple[int, int], ...] = ((4, 400), (16, 800), (32, 500))
    batch_size: int = 8
    learning_rate: float = 2e-3
    window_stride: int = 1
    timing_time: float = 2.0
    seed: int = 0
    dtype: str | None = None

    def validate(self) -> None:
        finest = max(FACTORS.values())
        self.require(
            "coarse_points",
            self.coarse_points >= 8 and self.coarse_points % 2 == 0,
            "even and at least 8, e.g. 32",
        )
        self.require(
            "reference_factor",
            self.reference_factor >= finest,
            f"at least {finest} (the reference must be as fine as the finest plain model)",
        )
        self.require_positive("viscosity", "max_velocity", "courant", "train_time", "horizon")
        self.require_positive("reference_courant")
        substeps = self.reference_factor * self.courant / self.reference_courant
        self.require(
            "reference_courant",
            substeps >= 1 and abs(substeps - round(substeps)) < 1e-9,
            f"such that reference_factor * courant / reference_courant is a whole number "
            f"(it is {substeps:g}), e.g. {self.courant / 4:g}",
        )
        self.require_positive("num_train_trajectories", "num_test_trajectories", "test_starts")
        self.require_positive("test_spacing", "hidden_channels", "num_layers", "batch_size")
        self.require_positive("tendency_hidden_channels", "tendency_num_layers")
        self.require_positive("learning_rate", "window_stride", "timing_time", "forcing_wavenumber")
        self.require_nonnegative("drag", "spin_up_time")
        self.require("kernel_size", self.kernel_size % 2 == 1, "odd, e.g. 3")
        self.require("threshold", 0 < self.threshold < 1, "between 0 and 1, e.g. 0.95")
        dtypes = (None, "float32", "float64")
        self.require("dtype", self.dtype in dtypes, "None, 'float32' or 'float64'")
        for name in ("test_spacing", "horizon"):
            self.require(name, self.steps(getattr(self, name)) >= 1, "at least one coarse step")
        saved = self.steps(self.train_time) + 1
        self.require(
            "stages",
            len(self.stages) > 0
            and all(k >= 1 and n >= 0 and k + 1 <= saved for k, n in self.stages),
            f"(unroll_steps >= 1, optimizer_steps >= 0) pairs with unrolls shorter than the "
            f"{saved - 1} coarse steps of train_time",
        )

    def real_dtype(self) -> jnp.dtype:
        """The states' real dtype."""
        return jnp.dtype(self.dtype) if self.dtype is not None else jnp.zeros(()).dtype

    def model(self, factor: int = 1) -> NavierStokes2D:
        """The Kolmogorov flow at ``factor`` times the coarse resolution."""
        return NavierStokes2D(
            Grid((self.coarse_points * factor,) * 2),
            viscosity=self.viscosity,
            drag=self.drag,
            forcing=hybrax.fluids.KolmogorovForcing(
                self.forcing_amplitude, self.forcing_wavenumber
            ),
        )

    def grid(self, factor: int = 1) -> Grid:
        """The grid at ``factor`` times the coarse resolution."""
        return Grid((self.coarse_points * factor,) * 2)

    def time_step(self, factor: int = 1) -> float:
        """``dt`` at ``factor`` times the coarse resolution (Courant ``courant``)."""
        return cfl_time_step(self.grid(factor), self.max_velocity, self.courant)

    def reference_time_step(self) -> float:
        """``dt`` of the reference (``reference_factor`` x, Courant ``reference_courant``)."""
        grid = self.grid(self.reference_factor)
        return cfl_time_step(grid, self.max_velocity, self.reference_courant)

    @property
    def reference_substeps(self) -> int:
        """Reference steps per coarse step."""
        return round(self.reference_factor * self.courant / self.reference_courant)

    def steps(self, duration: float) -> int:
        """Coarse steps in ``duration`` time units (rounded)."""
        return round(duration / self.time_step(1))


FULL = CorrectionSettings()
QUICK = CorrectionSettings(
    coarse_points=16,
    spin_up_time=8.0,
    num_train_trajectories=2,
    train_time=12.0,
    num_test_trajectories=2,
    test_starts=2,
    test_spacing=3.0,
    horizon=3.0,
    stages=((4, 300), (16, 300)),
    window_stride=4,
    timing_time=1.0,
)
