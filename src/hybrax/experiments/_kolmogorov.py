"""What the two Kolmogorov-flow workflows (``kolmogorov-correction`` and
``fv-learned-interpolation``) share: the flow and training settings, and the reference
runs cut into training trajectories and held-out forecasts.

Both compare plain solvers at 1x, 2x and 4x a coarse grid and learned models at 1x against
a pseudo-spectral reference at ``reference_factor`` x, on Kochkov et al.'s Kolmogorov flow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

import hybrax
from hybrax.fluids import KolmogorovForcing, NavierStokes2D, decorrelation_time
from hybrax.grids import Grid, cfl_time_step
from hybrax.hybrid import generate_trajectories

from ._settings import WorkflowSettings

__all__ = [
    "FINEST",
    "KolmogorovSettings",
    "decorrelation_times",
    "reference_forecasts",
    "reference_trajectories",
]

FINEST = 4  # the finest plain model, 4x the coarse grid; the forecasts start on it


@dataclasses.dataclass(frozen=True)
class KolmogorovSettings(WorkflowSettings):
    """The fields, checks and derived sizes both Kolmogorov workflows share (times in model
    time units); each workflow's settings add their own and document them all.

    The flow is `hybrax.fluids.NavierStokes2D.kolmogorov`'s: ``viscosity``, ``drag``,
    ``forcing_amplitude`` ``sin(forcing_wavenumber y)``; Re 1000 by default. Every model
    grid steps ``dt = courant * dx / max_velocity``; the reference (pseudo-spectral, at
    ``reference_factor`` x) at ``reference_courant``, so that ``reference_factor * courant
    / reference_courant`` reference steps make one coarse step.

    Examples
    --------
    >>> from hybrax.experiments import KolmogorovSettings
    >>> s = KolmogorovSettings()
    >>> s.grid(2).shape, s.reference_substeps, s.steps(1.0)
    ((64, 64), 32, 18)
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
    stages: tuple[tuple[int, int], ...] = ((4, 400), (16, 800), (32, 500))
    batch_size: int = 8
    learning_rate: float = 2e-3
    window_stride: int = 1
    timing_time: float = 2.0
    seed: int = 0
    dtype: str | None = None

    def validate(self) -> None:
        self.require(
            "coarse_points",
            self.coarse_points >= 8 and self.coarse_points % 2 == 0,
            "even and at least 8, e.g. 32",
        )
        self.require(
            "reference_factor",
            self.reference_factor >= FINEST,
            f"at least {FINEST} (the reference must be as fine as the finest plain model)",
        )
        self.require_positive("viscosity", "max_velocity", "courant", "train_time", "horizon")
        self.require_positive("reference_courant", "forcing_wavenumber")
        substeps = self.reference_factor * self.courant / self.reference_courant
        self.require(
            "reference_courant",
            substeps >= 1 and abs(substeps - round(substeps)) < 1e-9,
            f"such that reference_factor * courant / reference_courant is a whole number "
            f"(it is {substeps:g}), e.g. {self.courant / 4:g}",
        )
        self.require_positive("num_train_trajectories", "num_test_trajectories", "test_starts")
        self.require_positive("test_spacing", "hidden_channels", "num_layers", "batch_size")
        self.require_positive("learning_rate", "window_stride", "timing_time")
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

    def grid(self, factor: int = 1) -> Grid:
        """The periodic grid at ``factor`` times the coarse resolution."""
        return Grid((self.coarse_points * factor,) * 2)

    def spectral_model(self, factor: int) -> NavierStokes2D:
        """The pseudo-spectral Kolmogorov flow at ``factor`` times the coarse resolution."""
        return NavierStokes2D(
            self.grid(factor),
            viscosity=self.viscosity,
            drag=self.drag,
            forcing=KolmogorovForcing(self.forcing_amplitude, self.forcing_wavenumber),
        )

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


def _random_start(settings: KolmogorovSettings) -> Callable[[PRNGKeyArray], Any]:
    """A random reference start (`NavierStokes2D.initial_state`, speed ``max_velocity``)."""
    model = settings.spectral_model(settings.reference_factor)
    dtype = settings.real_dtype()

    def sample(key):
        return model.initial_state(key, max_velocity=settings.max_velocity, dtype=dtype)

    return sample


def reference_trajectories(
    key: PRNGKeyArray, settings: KolmogorovSettings, stepper, observe: Callable[[Any], Any]
):
    """Training data: ``num_train_trajectories`` random starts spun up ``spin_up_time`` at
    the reference resolution with ``stepper``, then ``train_time`` kept through
    ``observe`` once every coarse step, all members at once
    (`hybrax.hybrid.generate_trajectories`); leading axes ``(members, times)``."""
    f = settings.reference_substeps
    return generate_trajectories(
        stepper,
        _random_start(settings),
        key,
        n=settings.num_train_trajectories,
        n_steps=settings.steps(settings.train_time) * f,
        save_every=f,
        spin_up_steps=settings.steps(settings.spin_up_time) * f,
        observe=observe,
    )


def reference_forecasts(
    key: PRNGKeyArray,
    settings: KolmogorovSettings,
    stepper,
    start: Callable[[Any], Any],
    observe: Callable[[Any], Any],
    *,
    spacing: int,
    horizon: int,
    count: int,
):
    """Held-out forecasts: ``(starts, targets)``.

    Each of ``num_test_trajectories`` random starts is spun up for ``spin_up_time`` with
    the reference ``stepper``, then run on; every ``spacing`` coarse steps its state,
    through ``start``, starts a forecast (``count`` of them), and ``observe`` keeps the
    reference every coarse step for ``horizon`` coarse steps after each start. Trace it
    under `jax.jit` (the members run under `jax.vmap`).

    Returns
    -------
    starts, targets
        Pytrees with leading axes ``(forecasts,)`` and ``(forecasts, horizon)``,
        ``forecasts = num_test_trajectories * count``.
    """
    f = settings.reference_substeps
    sample = _random_start(settings)

    def segment(state, _):
        first = start(state)
        state, saved = hybrax.rollout(stepper, state, spacing * f, save_every=f, observe=observe)
        return state, (first, saved)

    def member(member_key):
        spin_up = settings.steps(settings.spin_up_time) * f
        state, _ = hybrax.rollout(stepper, sample(member_key), spin_up, save_every=None)
        state, (starts, saved) = jax.lax.scan(segment, state, None, length=count)
        saved = jax.tree.map(lambda x: x.reshape(count * spacing, *x.shape[2:]), saved)
        if horizon > spacing:
            _, tail = hybrax.rollout(
                stepper, state, (horizon - spacing) * f, save_every=f, observe=observe
            )
            saved = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), saved, tail)
        index = jnp.arange(count)[:, None] * spacing + jnp.arange(horizon)[None, :]
        return starts, jax.tree.map(lambda x: x[index], saved)

    keys = jax.random.split(key, settings.num_test_trajectories)
    starts, targets = jax.vmap(member)(keys)
    flat = lambda tree: jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), tree)  # noqa: E731
    return flat(starts), flat(targets)


def decorrelation_times(
    correlations: dict[str, np.ndarray], settings: KolmogorovSettings
) -> tuple[np.ndarray, dict[str, float], list[str], dict[str, list[float]]]:
    """``(times, decorrelation, censored, per_forecast)``: the saved times, each model's
    decorrelation time of the mean correlation (`hybrax.fluids.decorrelation_time` at
    ``threshold``), the models never decorrelated within the horizon, and the
    decorrelation time of every single forecast.

    ``correlations`` maps each model to its ``(forecasts, horizon_steps)`` correlations,
    one per coarse step.

    Examples
    --------
    >>> import numpy as np
    >>> from hybrax.experiments import KolmogorovSettings, decorrelation_times
    >>> s = KolmogorovSettings()
    >>> c = np.linspace(1.0, 0.5, 20)[None, :].repeat(2, axis=0)  # 2 forecasts
    >>> times, t, censored, per = decorrelation_times({"model": c}, s)
    >>> round(t["model"] / s.time_step(1), 2), censored  # in coarse steps
    (2.9, [])
    """
    steps = next(iter(correlations.values())).shape[1]
    times = np.arange(1, steps + 1) * settings.time_step(1)
    decorrelation, censored, per_forecast = {}, [], {}
    for name, c in correlations.items():
        decorrelation[name], cut = decorrelation_time(times, c.mean(axis=0), settings.threshold)
        if cut:
            censored.append(name)
        per_forecast[name] = [decorrelation_time(times, ci, settings.threshold)[0] for ci in c]
    return times, decorrelation, censored, per_forecast
