"""Workflow ``lorenz96-closure``: learning the sub-grid term of two-scale Lorenz-96.

Truth: the two-scale Lorenz-96 model (K=8 slow ``X``, J=32 fast ``Y`` per slow variable,
F=20, h=1, b=10, c=10; Wilks 2005, Arnold et al. 2013), RK4 at ``dt = 0.005``. Coarse
model: the one-scale Lorenz-96 in ``X`` alone plus a closure ``U(X)`` standing in for the
coupling term ``-(h c / b) sum_j Y_{j,k}``, RK4 at ``dt = 0.01``. Four coarse models:

``no_closure``
    ``U = 0``.
``polynomial``
    Wilks (2005): a cubic ``U(X_k) = a_0 + a_1 X_k + a_2 X_k^2 + a_3 X_k^3``, least squares
    on the true coupling term over the training states (one fit shared by all ``k``).
``neural_offline``
    A local network ``U_k = MLP(X_{k-2}, ..., X_{k+2})`` shared across ``k``, regressed on
    the same coupling-term data (`hybrax.hybrid.RegressionLoss`).
``neural_online``
    The same network, started from the offline one and trained through the coarse RK4
    solver on truth ``X`` trajectories (`hybrax.hybrid.UnrolledLoss`, short unrolls).

Metrics (``OUT/metrics.json``)::

    {"forecast_rmse": {model: {"0.5": rmse, "1.0": rmse}},   # by lead time (model units)
     "pdf_hellinger": {model: distance}}

``forecast_rmse`` is the root-mean-square error of ``X`` over all ``k`` and all forecasts
(300 at full size, 100 in ``--quick``) started from truth states on the attractor, taken
2 time units apart from the long truth runs that no model is trained on;
``pdf_hellinger`` is the Hellinger distance ``sqrt(1 - sum_i sqrt(p_i q_i))`` between
histograms of ``X`` in long runs of the model and of the truth (0: identical, 1: disjoint).
``OUT/run_info.json`` holds the settings, wall times, training histories and the Hellinger
distance between two independent truth ensembles (the sampling noise of that metric);
``forecast_rmse.png`` and ``pdf.png`` are the plots.

The pieces (`make_truth_data`, `forecast_windows`, `fit_polynomial`, `LocalClosureNet`,
`train_offline`, `train_online`, `evaluate`) are public so the notebook can run them step by step.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

import hybrax
from hybrax.climate import Lorenz96, TwoScaleLorenz96
from hybrax.core import ODEState
from hybrax.experiments._registry import register_workflow
from hybrax.hybrid import (
    Closure,
    FitResult,
    RegressionLoss,
    UnrolledLoss,
    fit,
    generate_trajectories,
    sliding_windows,
    trainable_filter,
)
from hybrax.nn import MLP

__all__ = [
    "MODEL_NAMES",
    "ClosureSettings",
    "LocalClosureNet",
    "PolynomialClosure",
    "TruthData",
    "coarse_stepper",
    "comparison_table",
    "evaluate",
    "fit_polynomial",
    "forecast_windows",
    "hellinger_distance",
    "make_truth_data",
    "run",
    "train_offline",
    "train_online",
]

MODEL_NAMES = ("no_closure", "polynomial", "neural_offline", "neural_online")


@dataclasses.dataclass(frozen=True)
class ClosureSettings:
    """Sizes of the experiment (times in model time units).

    The defaults are the full run (a few minutes on a 2-core CPU); `QUICK` is the CI size.
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

    @property
    def save_every(self) -> int:
        """Truth steps per coarse step."""
        ratio = self.coarse_dt / self.truth_dt
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise ValueError(
                f"coarse_dt={self.coarse_dt} must be a whole multiple of truth_dt={self.truth_dt}"
            )
        return round(ratio)


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


def truth_model() -> TwoScaleLorenz96:
    """The two-scale Lorenz-96 truth: K=8, J=32, F=20, h=1, b=10, c=10."""
    return TwoScaleLorenz96(8, 32, forcing=20.0, coupling=1.0, amplitude_ratio=10.0,
                            time_scale_ratio=10.0)  # fmt: skip


def coarse_stepper(closure: Any | None, settings: ClosureSettings = FULL) -> hybrax.RK4:
    """RK4 for the one-scale Lorenz-96 in ``X`` (K=8, F=20), with ``closure`` (a network
    ``X -> U``) added to its tendency through `hybrax.hybrid.Closure`, or without one."""
    model = Lorenz96(num_variables=8, forcing=20.0)
    dynamics = model if closure is None else Closure(model, closure)
    return hybrax.RK4(dynamics, settings.coarse_dt)


class TruthData(eqx.Module):
    """Truth ``X`` and coupling term ``U`` sampled every coarse step.

    ``x`` and ``u`` have shape ``(members, times, K)``; ``time`` ``(members, times)``.
    """

    x: Float[Array, " members times K"]
    u: Float[Array, " members times K"]
    time: Float[Array, " members times"]

    def states(self) -> ODEState:
        """``X`` as one-scale `ODEState` trajectories (for losses and forecasts)."""
        return ODEState(self.x, self.time)


def make_truth_data(
    key: PRNGKeyArray, members: int, duration: float, settings: ClosureSettings = FULL
) -> TruthData:
    """Run the two-scale truth from random states: spin-up, then ``duration`` time units.

    All members are advanced together (vmapped, jitted); ``X`` and the coupling term are
    kept every coarse step, starting right after spin-up.
    """
    model = truth_model()
    stepper = hybrax.RK4(model, settings.truth_dt)
    dtype = jnp.zeros(()).dtype
    coarse_steps = round(duration / settings.coarse_dt)

    def observe(state):
        return TruthData(state.x, model.coupling_tendency(state.x, state.y), state.time)

    return generate_trajectories(
        stepper,
        lambda k: model.initial_state(k, dtype=dtype),
        key,
        n=members,
        n_steps=coarse_steps * settings.save_every,
        save_every=settings.save_every,
        spin_up_steps=round(settings.spin_up_time / settings.truth_dt),
        observe=observe,
    )


class PolynomialClosure(eqx.Module):
    """``U(X_k) = sum_i a_i X_k^i`` applied at every site (Wilks 2005).

    Parameters
    ----------
    coefficients
        ``(a_0, ..., a_degree)``.
    """

    coefficients: Float[Array, " degree_plus_one"]

    def __call__(self, x: Float[Array, " K"]) -> Float[Array, " K"]:
        c = self.coefficients.astype(x.dtype)
        return jnp.polyval(c[::-1], x)


def fit_polynomial(x: Array, u: Array, degree: int = 3) -> PolynomialClosure:
    """Least-squares fit of ``u ~ sum_i a_i x^i`` over all samples (any matching shapes).

    Solved on the host in float64 (`numpy.polynomial.polynomial.polyfit`, which rescales
    ``x``): the monomial design matrix is too ill-conditioned for a float32 solve.
    """
    xs = np.asarray(x, dtype=np.float64).ravel()
    us = np.asarray(u, dtype=np.float64).ravel()
    if xs.size != us.size or xs.size <= degree:
        raise ValueError(
            f"fit_polynomial: need matching x and u with more than {degree} samples, got "
            f"{xs.size} and {us.size}"
        )
    coefficients = np.polynomial.polynomial.polyfit(xs, us, degree)
    return PolynomialClosure(jnp.asarray(coefficients, dtype=jnp.result_type(x)))


class LocalClosureNet(eqx.Module):
    """A local closure ``U_k = m_u + s_u MLP((X_{k-r..k+r} - m_x) / s_x)`` shared across k.

    The MLP sees each site's periodic neighbourhood of ``2 r + 1`` values; the fixed
    normalisation constants (data means and standard deviations) are static, not trained.

    Parameters
    ----------
    mlp
        A `hybrax.nn.MLP` with ``in_size = 2 r + 1`` and ``out_size = 1``.
    x_mean, x_std, u_mean, u_std
        Normalisation constants.
    """

    mlp: MLP
    x_mean: float = eqx.field(static=True)
    x_std: float = eqx.field(static=True)
    u_mean: float = eqx.field(static=True)
    u_std: float = eqx.field(static=True)

    @property
    def radius(self) -> int:
        return (self.mlp.in_size - 1) // 2

    @classmethod
    def build(cls, x: Array, u: Array, settings: ClosureSettings, key: PRNGKeyArray):
        """A freshly initialised net normalised with the statistics of ``x`` and ``u``."""
        mlp = MLP(2 * settings.stencil_radius + 1, 1, settings.width, settings.depth,
                  activation=jnp.tanh, key=key)  # fmt: skip
        return cls(mlp, float(jnp.mean(x)), float(jnp.std(x)), float(jnp.mean(u)),
                   float(jnp.std(u)))  # fmt: skip

    def __call__(self, x: Float[Array, " K"]) -> Float[Array, " K"]:
        r = self.radius
        stencil = jnp.stack([jnp.roll(x, -offset) for offset in range(-r, r + 1)], axis=-1)
        h = (stencil - self.x_mean) / self.x_std
        layers = self.mlp.layers
        for layer in layers[:-1]:  # the MLP applied to all K stencils as one matrix product
            h = self.mlp.activation(h @ layer.weight.T + layer.bias)
        out = (h @ layers[-1].weight.T + layers[-1].bias)[..., 0]
        return self.u_mean + self.u_std * out


def train_offline(
    net: LocalClosureNet,
    data: TruthData,
    settings: ClosureSettings,
    key: PRNGKeyArray,
    *,
    num_steps: int | None = None,
    progress: bool = False,
) -> FitResult:
    """Regress the closure on the true coupling term: inputs are whole ``X`` vectors,
    targets the coupling terms at the same instant (``a priori`` / offline learning)."""
    import optax

    steps = settings.offline_steps if num_steps is None else num_steps
    inputs = data.x.reshape(-1, data.x.shape[-1])
    targets = data.u.reshape(-1, data.u.shape[-1])
    schedule = optax.cosine_decay_schedule(settings.offline_learning_rate, max(steps, 1), 0.02)
    return fit(
        net,
        RegressionLoss(scale=float(jnp.var(targets))),
        (inputs, targets),
        optax.adam(schedule),
        steps,
        batch_size=min(settings.offline_batch, inputs.shape[0]),
        key=key,
        progress=progress,
    )


def train_online(
    net: Any,
    data: TruthData,
    settings: ClosureSettings,
    key: PRNGKeyArray,
    *,
    num_steps: int | None = None,
    progress: bool = False,
    checkpoint_dir: str | Path | None = None,
) -> FitResult:
    """Train the closure through the coarse RK4 solver against truth ``X`` trajectories.

    Windows of ``online_unroll + 1`` truth states; the loss is the mean squared error of
    ``X`` along an ``online_unroll``-step coarse rollout (`hybrax.hybrid.UnrolledLoss`),
    differentiated through every RK4 stage. Only the network is trained (F stays 20).
    Returns the fit result; its ``model`` is the whole coarse stepper.
    """
    import optax

    steps = settings.online_steps if num_steps is None else num_steps
    stepper = coarse_stepper(net, settings)
    windows = sliding_windows(data.states(), settings.online_unroll + 1, stride=5)
    schedule = optax.cosine_decay_schedule(settings.online_learning_rate, max(steps, 1), 0.05)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))
    return fit(
        stepper,
        UnrolledLoss(settings.online_unroll),
        windows,
        optimizer,
        steps,
        batch_size=min(settings.online_batch, windows.u.shape[0]),
        key=key,
        trainable=trainable_filter(stepper, lambda s: s.dynamics.net),
        checkpoint_dir=checkpoint_dir,
        progress=progress,
    )


def forecast_windows(truth: TruthData, settings: ClosureSettings = FULL) -> TruthData:
    """``num_forecasts`` truth segments (start state + the longest lead) for forecast tests.

    Cut from long truth runs (e.g. the climate ensemble, which no model is trained on):
    segment starts are ``forecast_spacing`` time units apart within a run, then
    ``num_forecasts`` of them are taken evenly spread over all runs.
    """
    horizon = round(max(settings.leads) / settings.coarse_dt)
    spacing = max(1, round(settings.forecast_spacing / settings.coarse_dt))
    windows = sliding_windows(truth, horizon + 1, stride=spacing)
    available = windows.x.shape[0]
    if available < settings.num_forecasts:
        raise ValueError(
            f"forecast_windows: the truth runs give {available} segments "
            f"{settings.forecast_spacing} time units apart, fewer than num_forecasts="
            f"{settings.num_forecasts}; lengthen the runs or lower num_forecasts"
        )
    pick = np.linspace(0, available - 1, settings.num_forecasts).round().astype(int)
    return jax.tree.map(lambda x: x[pick], windows)


def hellinger_distance(samples_p: ArrayLike, samples_q: ArrayLike, bins: ArrayLike) -> float:
    """Hellinger distance ``sqrt(1 - sum_i sqrt(p_i q_i))`` between the histograms of two
    sample sets on the given bin edges (samples outside the edges count in no bin, so a
    model that leaves the truth's range is penalised)."""
    p, _ = np.histogram(np.asarray(samples_p).ravel(), bins=np.asarray(bins))
    q, _ = np.histogram(np.asarray(samples_q).ravel(), bins=np.asarray(bins))
    n_p, n_q = np.asarray(samples_p).size, np.asarray(samples_q).size
    if n_p == 0 or n_q == 0:
        raise ValueError("hellinger_distance: empty sample set")
    overlap = np.sum(np.sqrt((p / n_p) * (q / n_q)))
    return float(np.sqrt(max(0.0, 1.0 - overlap)))


def evaluate(
    closures: dict[str, Any],
    forecast_truth: TruthData,
    climate_truth: TruthData,
    settings: ClosureSettings,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Forecast RMSE by lead and Hellinger distance of the ``X`` PDF for each closure.

    ``forecast_truth``: truth ``X`` from the forecast start (index 0) every coarse step up
    to the longest lead (see `forecast_windows`); ``climate_truth``: long truth runs, whose
    first states start the models' long runs (the first 10 % of every run is discarded as
    spin-up).

    Returns ``(metrics, curves)``: the metrics dict of ``metrics.json`` and the RMSE-vs-lead
    curves and samples used for the plots.
    """
    lead_steps = [round(lead / settings.coarse_dt) for lead in settings.leads]
    horizon = max(lead_steps)
    x0 = ODEState(forecast_truth.x[:, 0], forecast_truth.time[:, 0])
    truth_x = forecast_truth.x[:, 1 : horizon + 1]
    climate_steps = climate_truth.x.shape[1] - 1
    discard = climate_steps // 10
    truth_samples = np.asarray(climate_truth.x[:, 1 + discard :])
    lo, hi = float(truth_samples.min()), float(truth_samples.max())
    pad = 0.05 * (hi - lo)
    bins = np.linspace(lo - pad, hi + pad, settings.histogram_bins + 1)
    start = ODEState(climate_truth.x[:, 0], climate_truth.time[:, 0])

    metrics: dict[str, Any] = {"forecast_rmse": {}, "pdf_hellinger": {}}
    curves: dict[str, Any] = {"lead_times": (np.arange(1, horizon + 1) * settings.coarse_dt)}
    curves["bins"], curves["truth_samples"] = bins, truth_samples
    for name, closure in closures.items():
        stepper = coarse_stepper(closure, settings)
        forecasts, climate = _forecast_and_climate(stepper, x0, horizon, start, climate_steps)
        rmse = np.sqrt(np.mean((np.asarray(forecasts) - np.asarray(truth_x)) ** 2, axis=(0, 2)))
        metrics["forecast_rmse"][name] = {
            f"{lead:.1f}": _finite_or_none(rmse[steps - 1])
            for lead, steps in zip(settings.leads, lead_steps, strict=True)
        }
        samples = np.asarray(climate)[:, discard:]
        finite = np.isfinite(samples).all()
        metrics["pdf_hellinger"][name] = (
            hellinger_distance(samples, truth_samples, bins) if finite else 1.0
        )
        curves[name] = {"rmse": rmse, "samples": samples}
    return metrics, curves


@eqx.filter_jit
def _forecast_and_climate(stepper, x0: ODEState, horizon: int, start: ODEState, n_steps: int):
    """Forecasts from ``x0`` (batched) and long runs from ``start`` (batched), one jit."""

    def run(state, length):
        return hybrax.rollout(stepper, state, length, observe=lambda s: s.u)[1]

    forecasts = jax.vmap(lambda s: run(s, horizon))(x0)
    climate = jax.vmap(lambda s: run(s, n_steps))(start)
    return forecasts, climate


def _finite_or_none(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


@register_workflow(
    "lorenz96-closure",
    "two-scale Lorenz-96: no closure vs cubic polynomial vs neural closures (offline, online)",
)
def run(
    out_dir: Path, *, steps: int | None = None, quick: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Run the whole comparison and write ``metrics.json``, ``run_info.json`` and plots.

    Parameters
    ----------
    out_dir
        Output folder.
    steps
        Overrides the number of optimizer steps of the online training.
    quick
        The small CI configuration (`QUICK`).
    progress
        Show progress bars.
    """
    settings = QUICK if quick else FULL
    if steps is not None:
        settings = dataclasses.replace(settings, online_steps=int(steps))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def lap(name: str, t0: float) -> float:
        timings[name] = round(time.perf_counter() - t0, 2)
        _say(progress, f"{name}: {timings[name]:.1f} s")
        return time.perf_counter()

    keys = jax.random.split(jax.random.key(settings.seed), 7)
    t0 = time.perf_counter()
    train = make_truth_data(keys[0], settings.num_train_trajectories, settings.train_time, settings)
    climate_truth = make_truth_data(
        keys[2], settings.num_climate_members, settings.climate_time, settings
    )
    forecast_truth = forecast_windows(climate_truth, settings)
    jax.block_until_ready((train, forecast_truth, climate_truth))
    t0 = lap("truth_data", t0)

    polynomial = fit_polynomial(train.x, train.u)
    t0 = lap("polynomial_fit", t0)

    net = LocalClosureNet.build(train.x, train.u, settings, keys[3])
    offline = train_offline(net, train, settings, keys[4], progress=progress)
    t0 = lap("offline_training", t0)
    online = train_online(offline.model, train, settings, keys[5], progress=progress)
    t0 = lap("online_training", t0)

    closures = {
        "no_closure": None,
        "polynomial": polynomial,
        "neural_offline": offline.model,
        "neural_online": online.model.dynamics.net,
    }
    metrics, curves = evaluate(closures, forecast_truth, climate_truth, settings)
    # Sampling noise of the PDF metric: a second, independent truth ensemble of the same size.
    other_truth = make_truth_data(
        keys[6], settings.num_climate_members, settings.climate_time, settings
    )
    discard = other_truth.x.shape[1] // 10
    noise_floor = hellinger_distance(
        other_truth.x[:, 1 + discard :], curves["truth_samples"], curves["bins"]
    )
    t0 = lap("evaluation", t0)
    _plot(curves, out_dir)
    lap("plots", t0)
    timings["total"] = round(time.perf_counter() - started, 2)

    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    info = {
        "settings": dataclasses.asdict(settings),
        "quick": quick,
        "dtype": str(jnp.zeros(()).dtype),
        "wall_time_s": timings,
        "pdf_hellinger_truth_vs_truth": noise_floor,
        "polynomial_coefficients": [float(c) for c in polynomial.coefficients],
        "offline_history": _thin(offline.history["train"]),
        "online_history": _thin(online.history["train"]),
    }
    (out_dir / "run_info.json").write_text(json.dumps(info, indent=1))
    _say(True, comparison_table(metrics, settings))
    _say(True, f"(Hellinger distance between two independent truth ensembles: {noise_floor:.4f})")
    return metrics


def _thin(entries: list[dict], keep: int = 200) -> list[dict]:
    stride = max(1, len(entries) // keep)
    return entries[::stride]


def comparison_table(metrics: dict, settings: ClosureSettings) -> str:
    """The metrics as a text table: one row per model, RMSE by lead and Hellinger."""
    leads = [f"{lead:.1f}" for lead in settings.leads]
    header = f"{'model':<16}" + "".join(f"{'RMSE @' + lead:>12}" for lead in leads)
    header += f"{'Hellinger':>12}"
    lines = [header, "-" * len(header)]
    for name in metrics["forecast_rmse"]:
        rmse = metrics["forecast_rmse"][name]
        cells = "".join(
            f"{rmse[lead]:>12.4f}" if rmse[lead] is not None else f"{'nan':>12}" for lead in leads
        )
        lines.append(f"{name:<16}{cells}{metrics['pdf_hellinger'][name]:>12.4f}")
    return "\n".join(lines)


def _say(enabled: bool, message: str) -> None:
    if enabled:
        print(message, flush=True)


def _plot(curves: dict, out_dir: Path) -> None:
    from matplotlib.figure import Figure

    lead_times = curves["lead_times"]
    fig = Figure(figsize=(5.5, 4))
    ax = fig.add_subplot()
    for name in MODEL_NAMES:
        if name in curves:
            ax.plot(lead_times, curves[name]["rmse"], label=name)
    ax.set_yscale("log")
    ax.set_xlabel("lead time (model time units)")
    ax.set_ylabel("RMSE of X")
    ax.set_title("two-scale Lorenz-96: forecast error")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "forecast_rmse.png", dpi=120)

    bins = curves["bins"]
    centres = 0.5 * (bins[1:] + bins[:-1])
    fig = Figure(figsize=(5.5, 4))
    ax = fig.add_subplot()
    density = lambda s: np.histogram(np.ravel(s), bins=bins, density=True)[0]  # noqa: E731
    ax.plot(centres, density(curves["truth_samples"]), "k", lw=2.5, label="truth")
    for name in MODEL_NAMES:
        if name in curves and np.isfinite(curves[name]["samples"]).all():
            ax.plot(centres, density(curves[name]["samples"]), label=name)
    ax.set_xlabel("X")
    ax.set_ylabel("probability density")
    ax.set_title("long-run distribution of X")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "pdf.png", dpi=120)
