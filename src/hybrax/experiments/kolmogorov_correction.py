"""Workflow ``kolmogorov-correction``: a learned correction for a coarse Kolmogorov-flow solver.

The forced 2D turbulence of Kochkov et al. (2021): `hybrax.fluids.KolmogorovFlow` on
``[0, 2 pi]^2`` with vorticity forcing ``-4 cos(4 y)``, drag 0.1 and viscosity ``1e-3``
(Re = 1000), pseudo-spectral, `hybrax.ETDRK4` at Courant number 0.5 for speed 7 on every
grid (so ``dt`` halves when the resolution doubles).

Reference
    The same equations at ``reference_factor`` (8) times the coarse resolution (256² for
    the default 32² coarse grid), coarse-grained exactly by Fourier truncation
    (`hybrax.grids.resample`) to the modes the coarse solver resolves: its 2/3-rule band
    ``|n_x|, |n_y| < N / 3`` (`coarse_grain`). Every comparison below is made on that band.
Models
    ``plain_1x``, ``plain_2x``, ``plain_4x``: the plain solver at 1, 2 and 4 times the
    coarse resolution, each started from the reference coarse-grained to its own band.
    ``hybrid_1x``: the coarse solver followed, after every step, by a learned correction
    (`hybrax.hybrid.Corrected`): a periodic CNN (`hybrax.nn.PeriodicCNN`) sees the
    vorticity in physical space and its output, transformed back and restricted to the
    band, is added to the spectral state (`PhysicalVorticity`, `AddVorticityCorrection`,
    `VorticityCorrection`). It is trained through the solver (`hybrax.hybrid.UnrolledLoss`,
    gradient through every ETDRK4 stage) on windows of reference trajectories, with a
    curriculum of growing unroll lengths (`CorrectionSettings.stages`).

Metrics (``OUT/metrics.json``)::

    {"decorrelation_time": {model: time},        # model time units
     "seconds_per_time_unit": {model: seconds}}  # wall time of one trajectory

``decorrelation_time`` is the first time at which the vorticity correlation with the
reference (`hybrax.fluids.vorticity_correlation` on the coarse band), averaged over the
held-out forecasts, falls below ``threshold`` (0.95; linear interpolation between saved
steps). The forecasts start from independent reference runs that no model was trained on,
``test_spacing`` apart. A model still above the threshold at the end of the ``horizon`` is
reported at the horizon and listed under ``censored`` in ``run_info.json``.
``seconds_per_time_unit`` is the wall time of one jitted trajectory (compilation excluded),
the minimum over interleaved rounds on this machine.

``OUT/run_info.json`` holds the settings, the wall time of every phase, the training
history, the number of training windows and held-out forecasts, per-forecast decorrelation
times and the mean correlation curves. Plots: ``correlation.png`` (mean correlation against
time), ``vorticity.png`` (snapshots of the reference and the 1x models), ``spectrum.png``
(energy spectra at the end of the forecasts). ``OUT/correction.eqx`` holds the trained
network's weights (`equinox.tree_serialise_leaves`).

The pieces are public so the notebook (``notebooks/kolmogorov_correction.ipynb``) and the
mixed-precision benchmark can use them one by one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Complex, Float, PRNGKeyArray

import hybrax
from hybrax.experiments._registry import register_workflow
from hybrax.fluids import (
    NavierStokes2D,
    energy_spectrum,
    velocity_from_vorticity,
    vorticity_correlation,
)
from hybrax.grids import Grid, SpectralState, cfl_time_step, resample
from hybrax.hybrid import (
    Corrected,
    FitResult,
    UnrolledLoss,
    fit,
    generate_trajectories,
    sliding_windows,
    trainable_filter,
)
from hybrax.nn import PeriodicCNN

__all__ = [
    "MODEL_NAMES",
    "AddVorticityCorrection",
    "CorrectionSettings",
    "FlowFeatures",
    "ForecastData",
    "SavedRun",
    "VorticityCorrection",
    "coarse_grain",
    "comparison_table",
    "correlation_curves",
    "decorrelation_time",
    "hybrid_stepper",
    "load_run",
    "make_forecast_data",
    "make_training_data",
    "plain_stepper",
    "run",
    "seconds_per_time_unit",
    "train_correction",
]

MODEL_NAMES = ("plain_1x", "plain_2x", "plain_4x", "hybrid_1x")
_FACTORS = {"plain_1x": 1, "plain_2x": 2, "plain_4x": 4, "hybrid_1x": 1}


@dataclasses.dataclass(frozen=True)
class CorrectionSettings:
    """Sizes and hyper-parameters of the experiment (times in model time units).

    The defaults are the full run; `QUICK` is the CI size.

    Attributes
    ----------
    coarse_points
        Points per axis of the coarse grid (the hybrid's and ``plain_1x``'s).
    reference_factor
        Resolution of the reference relative to the coarse grid.
    viscosity, drag, forcing_amplitude, forcing_wavenumber
        The Kolmogorov flow (`hybrax.fluids.KolmogorovFlow`); Re = 1000 by default.
    max_velocity, courant
        Every grid steps at ``dt = courant * dx / max_velocity``.
    spin_up_time
        Reference time discarded from each random start (the transient to turbulence).
    num_train_trajectories, train_time
        Independent reference runs for training, and their length after spin-up.
    num_test_trajectories, test_starts, test_spacing, horizon
        Independent reference runs for evaluation; each gives ``test_starts`` forecasts
        starting ``test_spacing`` apart, followed for ``horizon``.
    threshold
        Correlation below which a forecast counts as decorrelated.
    hidden_channels, num_layers, kernel_size, phase_channels
        The CNN: channels, convolutions, kernel width; with ``phase_channels`` it also sees
        ``cos`` and ``sin`` of the forcing phase ``4 y`` (the flow is not homogeneous in
        ``y``).
    stages
        Training curriculum: ``(unroll_steps, optimizer_steps)`` pairs, run in order.
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
    courant: float = 0.5
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
    stages: tuple[tuple[int, int], ...] = ((4, 500), (16, 1000), (32, 600))
    batch_size: int = 8
    learning_rate: float = 2e-3
    window_stride: int = 4
    timing_time: float = 2.0
    seed: int = 0
    dtype: str | None = None

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
    timing_time=1.0,
)


def coarse_grain(
    field_hat: Complex[Array, "*batch nx ny_half"], source: Grid, target: Grid
) -> Complex[Array, "*batch mx my_half"]:
    """Spectral coarse-graining onto ``target``'s resolved band.

    Fourier truncation to ``target`` (`hybrax.grids.resample`, exact: the L2 projection)
    followed by ``target``'s 2/3-rule mask, so the result holds exactly the modes a
    pseudo-spectral solver on ``target`` evolves nonlinearly (``|n_i| < N_i / 3``).
    Coarse-graining in steps (256² -> 128² -> 32²) gives the same result as in one.

    Examples
    --------
    >>> import jax
    >>> from hybrax.grids import Grid
    >>> from hybrax.fluids import random_vorticity
    >>> fine, coarse = Grid((64, 64)), Grid((16, 16))
    >>> w_hat = fine.to_spectral(random_vorticity(fine, jax.random.key(0)))
    >>> coarse_grain(w_hat, fine, coarse).shape
    (16, 9)
    """
    out = resample(field_hat, source, target)
    mask = target.dealias_mask(out.real.dtype)
    return jax.lax.complex(mask * out.real, mask * out.imag)


class FlowFeatures(eqx.Module):
    """``to_input`` of the hybrid: the state's vorticity on the grid points, and optionally
    the velocity, as channels ``(w)`` or ``(w, u, v)``, shape ``(channels, nx, ny)``.

    The velocity ``u = d psi / dy, v = -d psi / dx`` (``nabla^2 psi = -w``) is computed
    spectrally in the state's precision (`hybrax.fluids.velocity_from_vorticity`).

    Parameters
    ----------
    grid
        The coarse grid (static structure).
    velocity
        Include ``u`` and ``v`` (static).
    """

    grid: Grid
    velocity: bool = eqx.field(static=True, default=False)

    @property
    def num_channels(self) -> int:
        """Channels of the features: 1, or 3 with the velocity."""
        return 3 if self.velocity else 1

    def __call__(self, state: SpectralState) -> Float[Array, "channels nx ny"]:
        w = self.grid.to_physical(state.field_hat)[None]
        if not self.velocity:
            return w
        return jnp.concatenate([w, velocity_from_vorticity(self.grid, state.field_hat)])


class AddVorticityCorrection(eqx.Module):
    """``from_output`` of the hybrid: add a physical vorticity correction to the state.

    The correction is transformed to Fourier space and restricted to the solver's 2/3-rule
    band without the mean mode, so the corrected state stays band-limited with zero mean
    vorticity (as the reference coarse-grained by `coarse_grain` is).

    Parameters
    ----------
    grid
        The coarse grid (static structure).
    """

    grid: Grid

    def __call__(self, state: SpectralState, correction: Float[Array, "nx ny"]) -> SpectralState:
        real = state.field_hat.real.dtype
        c_hat = self.grid.to_spectral(correction.astype(real))
        mask = np.asarray(self.grid._np_dealias_mask(), dtype=real)
        mask[0, 0] = 0
        mask = jnp.asarray(mask)
        c_hat = jax.lax.complex(mask * c_hat.real, mask * c_hat.imag)
        return SpectralState(state.field_hat + c_hat, state.time)


class VorticityCorrection(eqx.Module):
    """The correction network: ``output_scale * cnn([x_c / input_scales[c], cos 4y, sin 4y])``.

    A periodic CNN on the flow's physical fields ``x`` (channels first, shape
    ``(channels, *grid.shape)``, see `FlowFeatures`), each channel divided by a fixed scale
    (static, not trained: the reference fields' standard deviations); the output, one
    vorticity increment of shape ``grid.shape``, is multiplied by ``output_scale`` (the
    root-mean-square error of one plain coarse step), so the network works with numbers of
    order one. With ``forcing_wavenumber`` set, the forcing phase (``cos`` and ``sin`` of
    ``k y``) enters as two constant channels: the flow is not homogeneous in ``y``.

    Parameters
    ----------
    cnn
        A `hybrax.nn.PeriodicCNN` with ``len(input_scales)`` (+ 2 with the phase) input
        channels and 1 output channel.
    grid
        The coarse grid (static structure).
    input_scales
        One scale per input field.
    output_scale
        Scale of the output.
    forcing_wavenumber
        Forcing wavenumber for the phase channels, or ``None``.
    """

    cnn: PeriodicCNN
    grid: Grid
    input_scales: tuple[float, ...] = eqx.field(static=True)
    output_scale: float = eqx.field(static=True)
    forcing_wavenumber: int | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        expected = len(self.input_scales) + (0 if self.forcing_wavenumber is None else 2)
        if self.cnn.layers[0].in_channels != expected:
            raise ValueError(
                f"VorticityCorrection: the CNN takes {self.cnn.layers[0].in_channels} input "
                f"channels but needs {expected} ({len(self.input_scales)} fields"
                + (" and the two forcing-phase channels)" if self.forcing_wavenumber else ")")
            )

    @property
    def dtype(self):
        """The parameters' dtype."""
        return self.cnn.dtype

    @classmethod
    def build(
        cls,
        settings: CorrectionSettings,
        input_scales: tuple[float, ...],
        output_scale: float,
        key: PRNGKeyArray,
    ) -> VorticityCorrection:
        """A fresh network for ``settings`` whose last layer is zero (so the hybrid starts
        as the plain solver). ``input_scales`` has one entry per field of `FlowFeatures`
        (1, or 3 with ``settings.velocity_inputs``)."""
        input_scales = tuple(float(v) for v in input_scales)
        fields = 3 if settings.velocity_inputs else 1
        if len(input_scales) != fields:
            raise ValueError(
                f"VorticityCorrection.build: input_scales needs one scale per input field "
                f"({fields}: the vorticity{' and the velocity' if fields == 3 else ''}), got "
                f"{len(input_scales)}"
            )
        cnn = PeriodicCNN(
            2,
            len(input_scales) + (2 if settings.phase_channels else 0),
            1,
            settings.hidden_channels,
            settings.num_layers,
            settings.kernel_size,
            key=key,
            dtype=settings.real_dtype(),
        )
        cnn = eqx.tree_at(
            lambda c: (c.layers[-1].conv.weight, c.layers[-1].conv.bias),
            cnn,
            replace_fn=jnp.zeros_like,
        )
        wavenumber = settings.forcing_wavenumber if settings.phase_channels else None
        return cls(cnn, settings.grid(1), input_scales, float(output_scale), wavenumber)

    def __call__(self, fields: Float[Array, "channels nx ny"]) -> Float[Array, "nx ny"]:
        expected = (len(self.input_scales), *self.grid.shape)
        if fields.shape != expected:
            raise ValueError(
                f"VorticityCorrection: expects fields of shape {expected} (channels first, "
                f"see FlowFeatures), got {fields.shape}"
            )
        scales = np.asarray(self.input_scales).reshape(-1, 1, 1)
        channels = [fields / jnp.asarray(scales, fields.dtype)]
        if self.forcing_wavenumber is not None:
            nx, ny = self.grid.shape
            phase = 2 * math.pi * self.forcing_wavenumber * np.arange(ny) / ny
            waves = np.stack([np.cos(phase), np.sin(phase)])[:, None, :]
            channels.append(jnp.asarray(np.broadcast_to(waves, (2, nx, ny)), fields.dtype))
        return self.output_scale * self.cnn(jnp.concatenate(channels))[0]


def plain_stepper(settings: CorrectionSettings, factor: int = 1) -> hybrax.ETDRK4:
    """ETDRK4 for the Kolmogorov flow at ``factor`` times the coarse resolution."""
    return hybrax.ETDRK4(settings.model(factor), settings.time_step(factor))


def hybrid_stepper(net: Any, settings: CorrectionSettings) -> Corrected:
    """The coarse ETDRK4 step followed by ``net``'s vorticity correction."""
    grid = settings.grid(1)
    return Corrected(
        plain_stepper(settings, 1),
        net,
        to_input=FlowFeatures(grid, settings.velocity_inputs),
        from_output=AddVorticityCorrection(grid),
    )


def _reference_stepper(settings: CorrectionSettings) -> hybrax.ETDRK4:
    return plain_stepper(settings, settings.reference_factor)


def _random_start(settings: CorrectionSettings):
    model = settings.model(settings.reference_factor)
    dtype = settings.real_dtype()

    def sample(key):
        return model.initial_state(key, max_velocity=settings.max_velocity, dtype=dtype)

    return sample


def _band_observer(settings: CorrectionSettings, factor: int):
    source, target = settings.grid(factor), settings.grid(1)

    def observe(state: SpectralState) -> SpectralState:
        return SpectralState(coarse_grain(state.field_hat, source, target), state.time)

    return observe


def make_training_data(key: PRNGKeyArray, settings: CorrectionSettings = FULL) -> SpectralState:
    """Reference trajectories on the coarse band, one state every coarse step.

    ``num_train_trajectories`` random starts (`hybrax.fluids.random_vorticity`, peak
    wavenumber 4, speed 7) are spun up for ``spin_up_time`` at the reference resolution,
    then run for ``train_time``; every ``reference_factor`` fine steps (one coarse ``dt``)
    the state is coarse-grained (`coarse_grain`) and kept. All members run at once
    (`hybrax.hybrid.generate_trajectories`).

    Returns
    -------
    A `SpectralState` whose ``field_hat`` has shape ``(members, times, N, N // 2 + 1)`` and
    ``time`` ``(members, times)``.
    """
    f = settings.reference_factor
    return generate_trajectories(
        _reference_stepper(settings),
        _random_start(settings),
        key,
        n=settings.num_train_trajectories,
        n_steps=settings.steps(settings.train_time) * f,
        save_every=f,
        spin_up_steps=settings.steps(settings.spin_up_time) * f,
        observe=_band_observer(settings, f),
    )


class ForecastData(eqx.Module):
    """Held-out reference forecasts.

    Attributes
    ----------
    starts
        Initial states on the band of the finest plain model (4x), one per forecast:
        ``field_hat`` ``(forecasts, 4N, 2N + 1)``, ``time`` ``(forecasts,)``.
    targets
        The reference on the coarse band every coarse step after each start, up to the
        horizon: ``field_hat`` ``(forecasts, horizon_steps, N, N // 2 + 1)``.
    """

    starts: SpectralState
    targets: SpectralState


def make_forecast_data(key: PRNGKeyArray, settings: CorrectionSettings = FULL) -> ForecastData:
    """Reference runs no model is trained on, cut into forecasts.

    Each of ``num_test_trajectories`` random starts is spun up, then run for about
    ``(test_starts - 1) * test_spacing + horizon``; the states ``test_spacing`` apart start
    the forecasts (kept on the 4x band, from which the coarser models' starts follow by
    `coarse_grain`) and the reference's coarse band is kept every coarse step after each
    start for ``horizon`` time units.
    """
    f = settings.reference_factor
    finest = max(_FACTORS.values())
    if finest > f:
        raise ValueError(
            f"make_forecast_data: the reference ({f}x) must be at least as fine as the "
            f"finest plain model ({finest}x); use reference_factor >= {finest}"
        )
    spacing, horizon = settings.steps(settings.test_spacing), settings.steps(settings.horizon)
    count = settings.test_starts
    if spacing < 1 or horizon < 1 or count < 1:
        raise ValueError(
            "make_forecast_data: test_spacing and horizon must be at least one coarse step "
            f"and test_starts >= 1, got {settings.test_spacing}, {settings.horizon}, {count}"
        )
    return _forecast_data(key, settings, spacing, horizon, count)


@eqx.filter_jit
def _forecast_data(key, settings, spacing: int, horizon: int, count: int) -> ForecastData:
    f = settings.reference_factor
    finest = max(_FACTORS.values())
    stepper = _reference_stepper(settings)
    band = _band_observer(settings, f)
    fine_grid, start_grid = settings.grid(f), settings.grid(finest)
    sample = _random_start(settings)

    def segment(state, _):
        start = SpectralState(coarse_grain(state.field_hat, fine_grid, start_grid), state.time)
        state, saved = hybrax.rollout(stepper, state, spacing * f, save_every=f, observe=band)
        return state, (start, saved)

    def member(member_key):
        state, _ = hybrax.rollout(
            stepper,
            sample(member_key),
            settings.steps(settings.spin_up_time) * f,
            save_every=None,
        )
        state, (starts, saved) = jax.lax.scan(segment, state, None, length=count)
        saved = jax.tree.map(lambda x: x.reshape(count * spacing, *x.shape[2:]), saved)
        if horizon > spacing:
            _, tail = hybrax.rollout(
                stepper, state, (horizon - spacing) * f, save_every=f, observe=band
            )
            saved = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), saved, tail)
        index = jnp.arange(count)[:, None] * spacing + jnp.arange(horizon)[None, :]
        return starts, jax.tree.map(lambda x: x[index], saved)

    keys = jax.random.split(key, settings.num_test_trajectories)
    starts, targets = jax.vmap(member)(keys)
    flat = lambda tree: jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), tree)  # noqa: E731
    return ForecastData(flat(starts), flat(targets))


def _scales(data: SpectralState, settings: CorrectionSettings) -> tuple[tuple[float, ...], float]:
    """(input_scales, output_scale) of the network from the training data: the standard
    deviations of the input fields and the RMS error of one plain coarse step (on a
    subsample of the data)."""
    grid = settings.grid(1)
    features = FlowFeatures(grid, settings.velocity_inputs)
    sub = jax.tree.map(lambda x: x[:, ::10].reshape(-1, *x.shape[2:]), data)
    fields = jax.vmap(features)(sub)
    input_scales = tuple(float(v) for v in jnp.std(fields, axis=(0, 2, 3)))
    plain = plain_stepper(settings, 1)
    before = jax.tree.map(lambda x: x[:, :-1:10], data)
    after = data.field_hat[:, 1::10]
    stepped = _step_each(plain, before).field_hat
    residual = grid.to_physical(stepped - after)
    return input_scales, float(jnp.sqrt(jnp.mean(residual**2)))


@eqx.filter_jit
def _step_each(stepper, states: SpectralState) -> SpectralState:
    return jax.vmap(jax.vmap(stepper.step))(states)


def train_correction(
    net: VorticityCorrection,
    data: SpectralState,
    settings: CorrectionSettings,
    key: PRNGKeyArray,
    *,
    steps: int | None = None,
    progress: bool = False,
    checkpoint_dir: str | Path | None = None,
) -> FitResult:
    """Train the correction through the coarse solver, one curriculum stage at a time.

    Stage ``(k, n)`` of ``settings.stages`` runs ``n`` Adam steps (gradient clipping at
    norm 1, cosine-decayed learning rate) on `hybrax.hybrid.UnrolledLoss` with ``k``
    unrolled hybrid steps: the mean squared error of the spectral vorticity along the
    unroll against the reference windows (`hybrax.hybrid.sliding_windows` of ``data``,
    ``window_stride`` apart), differentiated through every solver stage and correction.
    Only the network is trained. ``steps`` overrides every stage's ``n``.

    With ``checkpoint_dir``, every stage checkpoints into its own sub-folder (orbax,
    `hybrax.hybrid.fit`) and a repeated call resumes where it stopped.

    Returns
    -------
    FitResult
        ``model`` is the trained hybrid stepper (its ``net`` the network); ``history``
        holds every stage's losses (entries carry their stage's ``unroll``), ``step`` and
        ``wall_time`` are totals.
    """
    import optax

    model = hybrid_stepper(net, settings)
    history: dict[str, list] = {"train": [], "eval": []}
    total_steps, wall, opt_state = 0, 0.0, None
    for index, (unroll, stage_steps) in enumerate(settings.stages):
        stage_steps = stage_steps if steps is None else steps
        windows = sliding_windows(data, unroll + 1, stride=settings.window_stride)
        schedule = optax.cosine_decay_schedule(settings.learning_rate, max(stage_steps, 1), 0.1)
        optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))
        folder = None
        if checkpoint_dir is not None:
            folder = Path(checkpoint_dir) / f"stage{index}_unroll{unroll}"
        result = fit(
            model,
            UnrolledLoss(unroll),
            windows,
            optimizer,
            stage_steps,
            batch_size=min(settings.batch_size, windows.field_hat.shape[0]),
            key=jax.random.fold_in(key, index),
            trainable=trainable_filter(model, lambda m: m.net),
            checkpoint_dir=folder,
            progress=progress,
        )
        model, opt_state = result.model, result.opt_state
        for entry in result.history["train"]:
            history["train"].append(
                {**entry, "step": total_steps + entry["step"], "unroll": unroll}
            )
        total_steps += result.step
        wall += result.wall_time
    return FitResult(model, opt_state, total_steps, history, wall)


def _start_on(starts: SpectralState, settings: CorrectionSettings, factor: int) -> SpectralState:
    finest = max(_FACTORS.values())
    field = coarse_grain(starts.field_hat, settings.grid(finest), settings.grid(factor))
    return SpectralState(field, starts.time)


def correlation_curves(
    models: dict[str, tuple[Any, int]],
    data: ForecastData,
    settings: CorrectionSettings,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Vorticity correlation with the reference along every held-out forecast.

    Parameters
    ----------
    models
        ``name -> (stepper, factor)``: a stepper on the grid ``factor`` times the coarse
        one, stepping ``time_step(factor)``.
    data
        The held-out forecasts (`make_forecast_data`).
    settings
        The experiment's settings.

    Returns
    -------
    correlations, trajectories
        ``name -> array (forecasts, horizon_steps)``: the correlation on the coarse band
        after every coarse step; and ``name -> array (forecasts, horizon_steps, N,
        N // 2 + 1)``: the forecasts' coarse-band spectral vorticity at those steps.
    """
    grid = settings.grid(1)
    horizon = data.targets.field_hat.shape[1]
    truth = grid.to_physical(data.targets.field_hat)
    correlations, trajectories = {}, {}
    for name, (stepper, factor) in models.items():
        saved = _forecast(
            stepper, _start_on(data.starts, settings, factor), settings, horizon, factor
        )
        predicted = grid.to_physical(saved)
        correlations[name] = np.asarray(vorticity_correlation(predicted, truth))
        trajectories[name] = np.asarray(saved)
    return correlations, trajectories


@eqx.filter_jit
def _forecast(stepper, starts: SpectralState, settings, horizon: int, factor: int):
    observe = _band_observer(settings, factor)

    def one(state):
        saved = hybrax.rollout(
            stepper, state, horizon * factor, save_every=factor, observe=observe
        )[1]
        return saved.field_hat

    return jax.vmap(one)(starts)


def decorrelation_time(
    times: Float[np.ndarray, " steps"],
    correlation: Float[np.ndarray, " steps"],
    threshold: float = 0.95,
) -> tuple[float, bool]:
    """First time at which ``correlation`` falls below ``threshold``.

    Linear interpolation between the last saved time above and the first below (and
    between ``(0, 1)`` and the first save). A non-finite correlation counts as below.

    Returns
    -------
    time, censored
        The crossing time, or ``times[-1]`` with ``censored=True`` if the curve never falls
        below within the saved times.

    Examples
    --------
    >>> import numpy as np
    >>> decorrelation_time(np.array([1.0, 2.0, 3.0]), np.array([0.99, 0.97, 0.93]))
    (2.5, False)
    """
    times = np.asarray(times, dtype=float)
    correlation = np.asarray(correlation, dtype=float)
    if times.shape != correlation.shape or times.ndim != 1 or times.size == 0:
        raise ValueError(
            f"decorrelation_time: times and correlation must be matching non-empty 1D "
            f"arrays, got shapes {times.shape} and {correlation.shape}"
        )
    below = ~(correlation >= threshold)
    if not below.any():
        return float(times[-1]), True
    i = int(np.argmax(below))
    t_prev, c_prev = (0.0, 1.0) if i == 0 else (times[i - 1], correlation[i - 1])
    c_now = correlation[i]
    if not np.isfinite(c_now) or c_prev == c_now:
        return float(times[i]), False
    fraction = (c_prev - threshold) / (c_prev - c_now)
    return float(t_prev + fraction * (times[i] - t_prev)), False


def seconds_per_time_unit(
    models: dict[str, tuple[Any, int]],
    start: SpectralState,
    settings: CorrectionSettings,
    *,
    rounds: int = 3,
) -> dict[str, float]:
    """Wall time per simulated time unit of one trajectory of each model.

    Each model runs ``timing_time`` from ``start`` (a single state on the 4x band,
    coarse-grained to the model's grid) in one jitted `hybrax.rollout` without saving;
    compilation is excluded, and the minimum over ``rounds`` interleaved rounds is kept
    (every model timed once per round, so load from other processes hits all alike).
    """
    calls = {}
    for name, (stepper, factor) in models.items():
        n_steps = max(1, round(settings.timing_time / settings.time_step(factor)))
        state = _start_on(start, settings, factor)
        run_it = eqx.filter_jit(lambda s, x, n=n_steps: hybrax.rollout(s, x, n, save_every=None)[0])
        jax.block_until_ready(run_it(stepper, state))
        calls[name] = (run_it, stepper, state, n_steps * settings.time_step(factor))
    best = {name: math.inf for name in calls}
    for _ in range(rounds):
        for name, (run_it, stepper, state, simulated) in calls.items():
            t0 = time.perf_counter()
            jax.block_until_ready(run_it(stepper, state))
            best[name] = min(best[name], (time.perf_counter() - t0) / simulated)
    return best


def comparison_table(metrics: dict, censored: tuple[str, ...] = ()) -> str:
    """The metrics as a text table: decorrelation time, cost, and both relative to
    ``plain_1x`` / ``plain_2x``.

    ``censored`` names the models whose decorrelation time is only a lower bound (shown as
    ``>= t``).
    """
    decor, cost = metrics["decorrelation_time"], metrics["seconds_per_time_unit"]
    header = (
        f"{'model':<11}{'decorrelation':>15}{'vs plain_1x':>13}{'s / time unit':>15}"
        f"{'vs plain_2x':>13}"
    )
    lines = [header, "-" * len(header)]
    for name in decor:
        bound = ">=" if name in censored else ""
        ratio = decor[name] / decor["plain_1x"] if decor.get("plain_1x") else math.nan
        cost_ratio = cost[name] / cost["plain_2x"] if cost.get("plain_2x") else math.nan
        lines.append(
            f"{name:<11}{bound + f'{decor[name]:.3f}':>15}{ratio:>12.2f}x"
            f"{cost[name]:>15.4g}{cost_ratio:>12.2f}x"
        )
    return "\n".join(lines)


@register_workflow(
    "kolmogorov-correction",
    "Kolmogorov flow (Re 1000): CNN-corrected coarse solver vs plain solvers at 1x, 2x, 4x",
)
def run(
    out_dir: Path, *, steps: int | None = None, quick: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Run the whole comparison; write ``metrics.json``, ``run_info.json``, plots, weights.

    Parameters
    ----------
    out_dir
        Output folder. Training checkpoints go to ``out_dir/checkpoints``: a repeated run
        with the same settings resumes from them (other settings start afresh).
    steps
        Overrides the optimizer steps of every training stage.
    quick
        The small CI configuration (`QUICK`).
    progress
        Show progress bars and phase timings.
    """
    settings = QUICK if quick else FULL
    return run_experiment(settings, out_dir, steps=steps, progress=progress, quick=quick)


def run_experiment(
    settings: CorrectionSettings,
    out_dir: Path,
    *,
    steps: int | None = None,
    progress: bool = True,
    quick: bool = False,
) -> dict[str, Any]:
    """`run` with explicit settings (see `CorrectionSettings`)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    t0 = started

    def lap(name: str) -> None:
        nonlocal t0
        timings[name] = round(time.perf_counter() - t0, 2)
        _say(progress, f"{name}: {timings[name]:.1f} s")
        t0 = time.perf_counter()

    keys = jax.random.split(jax.random.key(settings.seed), 4)
    train = jax.block_until_ready(make_training_data(keys[0], settings))
    lap("training_data")
    test = jax.block_until_ready(make_forecast_data(keys[1], settings))
    lap("forecast_data")

    input_scales, output_scale = _scales(train, settings)
    net = VorticityCorrection.build(settings, input_scales, output_scale, keys[2])
    checkpoints = _checkpoint_folder(out_dir / "checkpoints", settings, steps, progress)
    trained = train_correction(
        net, train, settings, keys[3], steps=steps, progress=progress, checkpoint_dir=checkpoints
    )
    hybrid = trained.model
    lap("training")

    models = {
        name: (plain_stepper(settings, _FACTORS[name]), _FACTORS[name])
        for name in MODEL_NAMES
        if name != "hybrid_1x"
    }
    models["hybrid_1x"] = (hybrid, 1)
    correlations, trajectories = correlation_curves(models, test, settings)
    times = np.arange(1, test.targets.field_hat.shape[1] + 1) * settings.time_step(1)
    decorrelation, censored, per_forecast = {}, [], {}
    for name, c in correlations.items():
        decorrelation[name], cut = decorrelation_time(times, c.mean(axis=0), settings.threshold)
        if cut:
            censored.append(name)
        per_forecast[name] = [decorrelation_time(times, ci, settings.threshold)[0] for ci in c]
    lap("evaluation")

    first = jax.tree.map(lambda x: x[0], test.starts)
    cost = seconds_per_time_unit(models, first, settings)
    reference_cost = seconds_per_time_unit(
        {"reference": (_reference_stepper(settings), settings.reference_factor)},
        first,
        dataclasses.replace(settings, timing_time=settings.timing_time / 4),
        rounds=1,
    )["reference"]
    lap("timing")

    metrics = {
        "decorrelation_time": {name: decorrelation[name] for name in MODEL_NAMES},
        "seconds_per_time_unit": {name: cost[name] for name in MODEL_NAMES},
    }
    _plot(settings, times, correlations, test, trajectories, out_dir)
    eqx.tree_serialise_leaves(out_dir / "correction.eqx", hybrid.net)
    _save_reference(out_dir / "reference_data.npz", train, test)
    lap("plots")
    timings["total"] = round(time.perf_counter() - started, 2)

    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    info = {
        "settings": dataclasses.asdict(settings),
        "quick": quick,
        "dtype": str(settings.real_dtype()),
        "grids": {name: settings.coarse_points * _FACTORS[name] for name in MODEL_NAMES},
        "reference_grid": settings.coarse_points * settings.reference_factor,
        "time_steps": {name: settings.time_step(_FACTORS[name]) for name in MODEL_NAMES},
        "wall_time_s": timings,
        "training_wall_time_s": round(trained.wall_time, 2),
        "optimizer_steps": trained.step,
        "num_training_windows": {
            str(k): int(sliding_windows(train, k + 1, settings.window_stride).time.shape[0])
            for k, _ in settings.stages
        },
        "num_forecasts": int(test.starts.time.shape[0]),
        "censored": censored,
        "decorrelation_time_per_forecast": per_forecast,
        "reference_seconds_per_time_unit": reference_cost,
        "network_scales": {"inputs": input_scales, "output": output_scale},
        "network_parameters": int(
            sum(x.size for x in jax.tree.leaves(eqx.filter(hybrid.net, eqx.is_array)))
        ),
        "mean_correlation": {
            "times": times[:: max(1, len(times) // 200)].tolist(),
            **{
                name: c.mean(axis=0)[:: max(1, len(times) // 200)].tolist()
                for name, c in correlations.items()
            },
        },
        "training_history": _thin(trained.history["train"]),
    }
    (out_dir / "run_info.json").write_text(json.dumps(info, indent=1))
    _say(True, comparison_table(metrics, tuple(censored)))
    _say(
        True,
        f"({info['num_forecasts']} held-out forecasts; training {trained.step} steps in "
        f"{trained.wall_time:.0f} s; reference {settings.reference_factor}x costs "
        f"{reference_cost:.3g} s per time unit)",
    )
    return metrics


def _checkpoint_folder(folder: Path, settings, steps, progress: bool) -> Path:
    """The training checkpoint folder: kept (training resumes) if it was written by a run
    with the same settings and step override, emptied otherwise."""
    stamp = json.dumps(
        {
            "settings": dataclasses.asdict(settings),
            "steps": steps,
            "dtype": str(settings.real_dtype()),
        },
        sort_keys=True,
    )
    marker = folder / "settings.json"
    if folder.exists() and (not marker.exists() or marker.read_text() != stamp):
        _say(progress, f"{folder} holds checkpoints of other settings: starting afresh")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(stamp)
    return folder


def _save_reference(path: Path, train: SpectralState, test: ForecastData) -> None:
    np.savez_compressed(
        path,
        train_field_hat=np.asarray(train.field_hat),
        train_time=np.asarray(train.time),
        starts_field_hat=np.asarray(test.starts.field_hat),
        starts_time=np.asarray(test.starts.time),
        targets_field_hat=np.asarray(test.targets.field_hat),
        targets_time=np.asarray(test.targets.time),
    )


@dataclasses.dataclass
class SavedRun:
    """A finished run read back by `load_run`.

    Attributes
    ----------
    settings
        The run's `CorrectionSettings`.
    net
        The trained `VorticityCorrection` (build the hybrid with `hybrid_stepper`).
    training_data
        The reference training trajectories (as from `make_training_data`).
    forecast_data
        The held-out forecasts (as from `make_forecast_data`).
    metrics
        The run's ``metrics.json``.
    run_info
        The run's ``run_info.json``.
    """

    settings: CorrectionSettings
    net: VorticityCorrection
    training_data: SpectralState
    forecast_data: ForecastData
    metrics: dict[str, Any]
    run_info: dict[str, Any]


def load_run(out_dir: str | Path) -> SavedRun:
    """Read a finished run's settings, trained network and reference data from ``out_dir``
    (``run_info.json``, ``correction.eqx``, ``reference_data.npz``, ``metrics.json``), e.g.
    to evaluate the trained correction under another precision policy."""
    out_dir = Path(out_dir)
    missing = [
        name
        for name in ("run_info.json", "correction.eqx", "reference_data.npz", "metrics.json")
        if not (out_dir / name).exists()
    ]
    if missing:
        raise FileNotFoundError(
            f"load_run: {out_dir} is not a finished kolmogorov-correction run (missing "
            f"{', '.join(missing)}); run `hybrax run kolmogorov-correction --out {out_dir}`"
        )
    info = json.loads((out_dir / "run_info.json").read_text())
    fields = dict(info["settings"])
    fields["stages"] = tuple(tuple(stage) for stage in fields["stages"])
    if fields.get("dtype") is None:  # the run used the default dtype: say which it was
        fields["dtype"] = info["dtype"]
    settings = CorrectionSettings(**fields)
    scales = info["network_scales"]
    like = VorticityCorrection.build(
        settings, tuple(scales["inputs"]), scales["output"], jax.random.key(0)
    )
    net = eqx.tree_deserialise_leaves(out_dir / "correction.eqx", like)
    with np.load(out_dir / "reference_data.npz") as data:
        arrays = {name: jnp.asarray(data[name]) for name in data.files}
    state = lambda prefix: SpectralState(arrays[f"{prefix}_field_hat"], arrays[f"{prefix}_time"])  # noqa: E731
    return SavedRun(
        settings,
        net,
        state("train"),
        ForecastData(state("starts"), state("targets")),
        json.loads((out_dir / "metrics.json").read_text()),
        info,
    )


def _thin(entries: list[dict], keep: int = 300) -> list[dict]:
    stride = max(1, len(entries) // keep)
    return entries[::stride]


def _say(enabled: bool, message: str) -> None:
    if enabled:
        print(message, flush=True)


def _plot(settings, times, correlations, test: ForecastData, trajectories, out_dir: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for name in MODEL_NAMES:
        ax.plot(times, correlations[name].mean(axis=0), label=name)
    ax.axhline(settings.threshold, color="k", lw=0.8, ls="--")
    ax.set_xlabel("time (model units)")
    ax.set_ylabel("vorticity correlation with reference")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Kolmogorov flow, {settings.coarse_points}² coarse grid")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "correlation.png", dpi=120)

    grid = settings.grid(1)
    horizon = test.targets.field_hat.shape[1]
    picks = sorted({max(0, horizon // 8 - 1), horizon // 3, horizon - 1})
    rows = {"reference": test.targets.field_hat[0]}
    for name in ("plain_1x", "plain_2x", "hybrid_1x"):
        rows[name] = trajectories[name][0]
    fig = Figure(figsize=(3 * len(picks), 2.8 * len(rows)))
    limit = float(np.max(np.abs(grid.to_physical(test.targets.field_hat[0, 0]))))
    for r, (name, fields) in enumerate(rows.items()):
        for c, i in enumerate(picks):
            ax = fig.add_subplot(len(rows), len(picks), r * len(picks) + c + 1)
            field = np.asarray(grid.to_physical(jnp.asarray(fields[i])))
            ax.imshow(
                field.T,
                origin="lower",
                cmap="RdBu_r",
                vmin=-limit,
                vmax=limit,
                extent=(0, 2 * np.pi, 0, 2 * np.pi),
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"t = {times[i]:.2f}")
            if c == 0:
                ax.set_ylabel(name)
    fig.tight_layout()
    fig.savefig(out_dir / "vorticity.png", dpi=100)

    fig = Figure(figsize=(5.5, 4))
    ax = fig.add_subplot()
    k, e = energy_spectrum(grid, jnp.asarray(test.targets.field_hat[:, -1]))
    band = slice(1, settings.coarse_points // 3 + 1)
    ax.loglog(np.asarray(k)[band], np.asarray(e).mean(axis=0)[band], "k", lw=2.5, label="reference")
    for name in MODEL_NAMES:
        _, e = energy_spectrum(grid, jnp.asarray(trajectories[name][:, -1]))
        ax.loglog(np.asarray(k)[band], np.asarray(e).mean(axis=0)[band], label=name)
    ax.set_xlabel("wavenumber k")
    ax.set_ylabel("E(k)")
    ax.set_title(f"energy spectra at t = {times[-1]:.1f} (coarse band)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "spectrum.png", dpi=120)
