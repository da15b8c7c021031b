"""Settings of the ``fv-learned-interpolation`` workflow."""

from __future__ import annotations

import dataclasses

from hybrax.fluids import IncompressibleNavierStokes, NavierStokes2D

from .._kolmogorov import FINEST, KolmogorovSettings

__all__ = ["FACTORS", "FULL", "LEARNED", "MODEL_NAMES", "QUICK", "FVSettings"]

MODEL_NAMES = ("plain_1x", "plain_2x", "plain_4x", "interpolation_1x", "correction_1x")
LEARNED = ("interpolation_1x", "correction_1x")
INTERPOLATION_CALLS = ("per_step", "per_stage", "per_flux")
FACTORS = {name: int(name[-2]) for name in MODEL_NAMES}  # grid vs coarse


@dataclasses.dataclass(frozen=True)
class FVSettings(KolmogorovSettings):
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

    scheme: str = "central"
    courant: float = 0.5
    reference_courant: float = 1.0
    train_time: float = 15.0
    test_spacing: float = 4.0
    horizon: float = 8.0
    num_layers: int = 3
    stencil_size: int = 4
    interpolation_calls: str = "per_step"
    stages: tuple[tuple[int, int], ...] = ((4, 300), (8, 250), (16, 200), (32, 150))
    batch_size: int = 4
    timing_time: float = 1.0

    def validate(self) -> None:
        super().validate()
        self.require(
            "reference_factor",
            self.reference_factor % FINEST == 0,
            f"a multiple of {FINEST} (the reference is face-averaged onto every plain grid)",
        )
        self.require("scheme", self.scheme in ("central", "upwind"), "'central' or 'upwind'")
        self.require("stencil_size", self.stencil_size in (2, 4), "2 or 4")
        self.require(
            "interpolation_calls",
            self.interpolation_calls in INTERPOLATION_CALLS,
            " or ".join(repr(c) for c in INTERPOLATION_CALLS),
        )

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
        return self.spectral_model(self.reference_factor)


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
