"""Settings of the ``fv-learned-interpolation`` workflow."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

import hybrax
from hybrax.fluids import IncompressibleNavierStokes, NavierStokes2D
from hybrax.grids import Grid, cfl_time_step

from .._settings import WorkflowSettings

__all__ = ["FACTORS", "FULL", "LEARNED", "MODEL_NAMES", "QUICK", "FVSettings"]

MODEL_NAMES = ("plain_1x", "plain_2x", "plain_4x", "interpolation_1x", "correction_1x")
LEARNED = ("interpolation_1x", "correction_1x")
INTERPOLATION_CALLS = ("per_step", "per_stage", "per_flux")
FACTORS = {name: int(name[-2]) for name in MODEL_NAMES}  # grid vs coarse


@dataclasses.dataclass(frozen=True)
class FVSettings(WorkflowSettings):
    """Sizes and hyper-parameters of the experiment (times in model time units).

    The defaults are the full run; `QUICK` is the CI size. The flow is the one of the
    ``kolmogorov-correction`` workflow (Re 1000, ``sin(4 y)`` forcing, drag 0.1, 32²
    coarse grid), so its numbers can be read side by side.

    Attributes
    ----------
    coarse_points
        Cells per axis of the coarse finite-volume grid (the learned models' and
        ``plain_1x``'s).
    reference_factor
        Resolution of the pseudo-spectral reference relative to the coarse grid.
    viscosity, drag, forcing_amplitude, forcing_wavenumber
        The Kolmogorov flow (`hybrax.fluids.IncompressibleNavierStokes.kolmogorov`, and
        `hybrax.fluids.NavierStokes2D.kolmogorov` for the reference).
    scheme
        Face reconstruction of the plain solvers and the base stencil of the learned
        interpolation (``"central"`` or ``"upwind"``).
    max_velocity, courant
        Every finite-volume grid steps ``dt = courant * dx / max_velocity`` (SSP-RK3 with a
        projection per stage, `hybrax.fluids.ProjectedRK`); ``max_velocity`` bounds the
        flow's speed (about twice its largest speed).
    reference_courant
        Courant number of the reference (`hybrax.ETDRK4`, pseudo-spectral);
        ``reference_factor * courant / reference_courant`` reference steps make one coarse
        step and must be a whole number.
    spin_up_time
        Reference time discarded from each random start.
    num_train_trajectories, train_time
        Independent reference runs for training and their length after spin-up.
    num_test_trajectories, test_starts, test_spacing, horizon
        Independent reference runs for evaluation; each gives ``test_starts`` forecasts
        ``test_spacing`` apart, followed for ``horizon``.
    threshold
        Correlation below which a forecast counts as decorrelated.
    hidden_channels, num_layers, kernel_size
        The CNNs of both learned models (`hybrax.nn.PeriodicCNN`; similar parameter counts).
    stencil_size
        Points of the learned interpolation stencil (2 or 4).
    interpolation_calls
        How often the learned interpolation's network runs: ``"per_step"`` (default: one
        `hybrax.fluids.FusedLearnedInterpolation` call for all fluxes per time step, held
        over the Runge–Kutta stages, ``ProjectedRK(freeze_scheme=True)``),
        ``"per_stage"`` (the fused network once per stage) or ``"per_flux"``
        (`hybrax.fluids.LearnedInterpolation`: one call per flux and stage, 12 per step).
    stages
        Training curriculum, ``(unroll_steps, optimizer_steps)`` pairs, the same for both
        learned models (`hybrax.hybrid.Curriculum`).
    batch_size, learning_rate, window_stride
        Windows per optimizer step, peak Adam learning rate (cosine decay per stage),
        offset in coarse steps between training windows.
    timing_time
        Simulated time of each wall-time measurement.
    seed
        PRNG seed.
    dtype
        Real dtype of states and networks (``None``: JAX's default float).
    """

    coarse_points: int = 32
    reference_factor: int = 8
    viscosity: float = 1e-3
    drag: float = 0.1
    forcing_amplitude: float = 1.0
    forcing_wavenumber: int = 4
    scheme: str = "central"
    max_velocity: float = 7.0
    courant: float = 0.5
    reference_courant: float = 1.0
    spin_up_time: float = 10.0
    num_train_trajectories: int = 2
    train_time: float = 15.0
    num_test_trajectories: int = 3
    test_starts: int = 3
    test_spacing: float = 4.0
    horizon: float = 8.0
    threshold: float = 0.95
    hidden_channels: int = 8
    num_layers: int = 3
    kernel_size: int = 3
    stencil_size: int = 4
    interpolation_calls: str = "per_step"
    stages: tuple[tuple[int, int], ...] = ((4, 300), (8, 250), (16, 200), (32, 150))
    batch_size: int = 4
    learning_rate: float = 2e-3
    window_stride: int = 1
    timing_time: float = 1.0
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
            self.reference_factor >= finest and self.reference_factor % finest == 0,
            f"a multiple of {finest} (the reference must be as fine as the finest plain model)",
        )
        self.require_positive("viscosity", "max_velocity", "courant", "train_time", "horizon")
        self.require_positive("reference_courant", "forcing_wavenumber")
        substeps = self.reference_factor * self.courant / self.reference_courant
        self.require(
            "reference_courant",
            substeps >= 1 and abs(substeps - round(substeps)) < 1e-9,
            f"such that reference_factor * courant / reference_courant is a whole number "
            f"(it is {substeps:g})",
        )
        self.require_positive("num_train_trajectories", "num_test_trajectories", "test_starts")
        self.require_positive("test_spacing", "hidden_channels", "num_layers", "batch_size")
        self.require_positive("learning_rate", "window_stride", "timing_time")
        self.require_nonnegative("drag", "spin_up_time")
        self.require("scheme", self.scheme in ("central", "upwind"), "'central' or 'upwind'")
        self.require("stencil_size", self.stencil_size in (2, 4), "2 or 4")
        self.require(
            "interpolation_calls",
            self.interpolation_calls in INTERPOLATION_CALLS,
            " or ".join(repr(c) for c in INTERPOLATION_CALLS),
        )
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

    def model(self, factor: int = 1, scheme=None) -> IncompressibleNavierStokes:
        """The finite-volume Kolmogorov flow at ``factor`` times the coarse resolution, with
        face reconstruction ``scheme`` (default ``settings.scheme``)."""
        return IncompressibleNavierStokes.kolmogorov(
            self.coarse_points * factor,
            viscosity=self.viscosity,
            drag=self.drag,
            forcing_amplitude=self.forcing_amplitude,
            forcing_wavenumber=self.forcing_wavenumber,
            scheme=self.scheme if scheme is None else scheme,
        )

    def reference_model(self) -> NavierStokes2D:
        """The pseudo-spectral reference flow at ``reference_factor`` x."""
        return NavierStokes2D(
            Grid((self.coarse_points * self.reference_factor,) * 2),
            viscosity=self.viscosity,
            drag=self.drag,
            forcing=hybrax.fluids.KolmogorovForcing(
                self.forcing_amplitude, self.forcing_wavenumber
            ),
        )

    def time_step(self, factor: int = 1) -> float:
        """``dt`` of the finite-volume grid at ``factor`` times the coarse resolution."""
        return cfl_time_step(
            Grid((self.coarse_points * factor,) * 2), self.max_velocity, self.courant
        )

    def reference_time_step(self) -> float:
        """``dt`` of the reference."""
        grid = Grid((self.coarse_points * self.reference_factor,) * 2)
        return cfl_time_step(grid, self.max_velocity, self.reference_courant)

    @property
    def reference_substeps(self) -> int:
        """Reference steps per coarse step."""
        return round(self.reference_factor * self.courant / self.reference_courant)

    def steps(self, duration: float) -> int:
        """Coarse steps in ``duration`` time units (rounded)."""
        return round(duration / self.time_step(1))


FULL = FVSettings()
QUICK = FVSettings(
    coarse_points=16,
    reference_factor=4,
    spin_up_time=8.0,
    num_train_trajectories=2,
    train_time=6.0,
    num_test_trajectories=2,
    test_starts=2,
    test_spacing=2.0,
    horizon=2.0,
    hidden_channels=4,
    num_layers=2,
    stages=((4, 60),),
    window_stride=4,
    timing_time=0.5,
)
