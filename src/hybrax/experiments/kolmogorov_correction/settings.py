"""Settings of the ``kolmogorov-correction`` workflow."""

from __future__ import annotations

import dataclasses

from hybrax.fluids import NavierStokes2D

from .._kolmogorov import FINEST, KolmogorovSettings

__all__ = ["FACTORS", "FULL", "HYBRIDS", "MODEL_NAMES", "QUICK", "CorrectionSettings"]

MODEL_NAMES = ("plain_1x", "plain_2x", "plain_4x", "hybrid_1x", "tendency_1x")
FACTORS = {"plain_1x": 1, "plain_2x": 2, "plain_4x": FINEST, "hybrid_1x": 1, "tendency_1x": 1}
HYBRIDS = ("hybrid_1x", "tendency_1x")  # the learned models (grid vs coarse above)


@dataclasses.dataclass(frozen=True)
class CorrectionSettings(KolmogorovSettings):
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

    phase_channels: bool = True
    velocity_inputs: bool = True
    tendency_hidden_channels: int = 8
    tendency_num_layers: int = 4
    tendency_per_stage: bool = False

    def validate(self) -> None:
        super().validate()
        self.require_positive("tendency_hidden_channels", "tendency_num_layers")

    def model(self, factor: int = 1) -> NavierStokes2D:
        """The Kolmogorov flow at ``factor`` times the coarse resolution."""
        return self.spectral_model(factor)


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
