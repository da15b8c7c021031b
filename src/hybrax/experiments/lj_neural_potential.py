"""Workflow ``lj-neural-potential``: a neural pair potential learned from Lennard-Jones MD.

Reference: the Lennard-Jones liquid (truncated and shifted at 2.5 sigma) at the LAMMPS
``in.lj`` density 0.8442 and temperature 1.2 (reduced units). An fcc crystal (500 atoms at
full size, 108 in ``--quick``) is melted and equilibrated with Langevin BAOAB (dt 0.005,
friction 1), then frames are taken every ``frame_spacing`` steps (1 tau at full size) along
a production run; the last 20 % of the frames are held out. Each frame is labelled with the
reference energy and forces.

Model: `hybrax.nn.NeuralPairPotential` (16 Bessel functions, polynomial envelope, an MLP of
two hidden layers of 32 silu units, evaluated through a 1,024-knot cubic Hermite table of
the network), trained with `hybrax.hybrid.fit` on the energy-and-force loss
`hybrax.nn.EnergyForceLoss` (forces are ``-grad`` of the network energy). With
``message_passing=True`` (the full run) a `hybrax.nn.SchNetPotential` is trained and
evaluated the same way on a 108-atom system at the same state point (its pair sums cost
too much at 500 atoms on a CPU; see its docstring).

Metrics (``OUT/metrics.json``)::

    {"force_rmse": {model: rmse},            # held-out frames, per force component
     "nve_drift": {"reference": d, model: d},
     "rdf_l2": {"reference": l2, model: l2}}

``force_rmse`` is in epsilon / sigma (compare with the reference force scale, the RMS force
component, in ``run_info.json``). ``nve_drift`` is the relative drift of the total energy over
``nve_steps`` velocity-Verlet steps (dt 0.005) from the same equilibrated state: the change
of a straight-line fit to ``E(t)`` over the run divided by ``|E(0)|``; ``"reference"`` is
Lennard-Jones itself in the same setting. ``rdf_l2`` is the L2 distance
``sqrt(int_0^r_max (g(r) - g_ref(r))^2 dr)`` (sigma^(1/2)) between the g(r) of a Langevin run
with the model and the reference g(r) of the production frames; ``"reference"`` is an
independent Lennard-Jones run of the same length (the sampling noise of the metric).
``OUT/run_info.json`` holds settings, wall times, data statistics and training histories;
``force_parity.png``, ``rdf.png``, ``pair_potential.png`` and ``nve_energy.png`` are the
plots.

The pieces (`make_reference_data`, `train_potential`, `predict`, `force_rmse`, `nve_drift`,
`rdf_of_run`, `rdf_l2`) are public so the notebook can run them step by step.
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
from jax import lax
from jaxtyping import Array, Float, PRNGKeyArray

import hybrax.md as md
from hybrax.core import NonFiniteStateError
from hybrax.experiments._registry import register_workflow
from hybrax.hybrid import FitResult, fit
from hybrax.nn import (
    BesselBasis,
    EnergyForceLoss,
    LabelledFrames,
    NeuralPairPotential,
    SchNetPotential,
    label_frames,
)

__all__ = [
    "FULL",
    "QUICK",
    "LJSettings",
    "ReferenceData",
    "comparison_table",
    "force_rmse",
    "make_reference_data",
    "new_pair_potential",
    "new_schnet_potential",
    "nve_drift",
    "nve_fluctuation",
    "predict",
    "rdf_l2",
    "rdf_of_frames",
    "rdf_of_run",
    "run",
    "train_potential",
]


@dataclasses.dataclass(frozen=True)
class LJSettings:
    """Sizes of the experiment (reduced LJ units; times in steps of ``dt``).

    The defaults are the full run; `QUICK` is the CI size.
    """

    cells: int = 5  # fcc unit cells per side: 4 * cells**3 atoms
    density: float = 0.8442
    temperature: float = 1.2
    melt_temperature: float = 3.0
    cutoff: float = 2.5
    skin: float = 0.3
    dt: float = 0.005
    friction: float = 1.0
    melt_steps: int = 2000
    equilibration_steps: int = 4000
    num_frames: int = 200
    frame_spacing: int = 200
    held_out_fraction: float = 0.2
    num_basis: int = 16
    width: int = 32
    depth: int = 2
    num_knots: int = 1024
    train_steps: int = 3000
    batch_frames: int = 4
    learning_rate: float = 2e-2
    energy_weight: float = 5.0  # relative to the force term
    nve_steps: int = 5000
    rdf_equilibration_steps: int = 2000
    rdf_steps: int = 10000
    rdf_every: int = 100
    rdf_bins: int = 100
    message_passing: bool = True
    schnet_cells: int = 3
    schnet_num_frames: int = 60
    schnet_features: int = 16
    schnet_interactions: int = 2
    schnet_train_steps: int = 1500
    schnet_batch_frames: int = 2
    schnet_learning_rate: float = 2e-3
    schnet_rdf_steps: int = 4000
    seed: int = 0

    @property
    def num_atoms(self) -> int:
        return 4 * self.cells**3


FULL = LJSettings()
QUICK = LJSettings(
    cells=3,
    melt_steps=1000,
    equilibration_steps=1000,
    num_frames=40,
    frame_spacing=100,
    train_steps=1000,
    nve_steps=1000,
    rdf_equilibration_steps=500,
    rdf_steps=3000,
    rdf_every=50,
    rdf_bins=50,
    message_passing=False,
)


def reference_energy(settings: LJSettings = FULL) -> md.LennardJones:
    """The reference: Lennard-Jones, truncated and shifted at ``settings.cutoff``."""
    return md.LennardJones(epsilon=1.0, sigma=1.0, cutoff=settings.cutoff)


class ReferenceData(eqx.Module):
    """Reference MD of the LJ liquid: labelled frames, split, and the final state.

    Attributes
    ----------
    train, held_out
        `hybrax.nn.LabelledFrames` (positions, energies, forces, per-frame neighbour lists).
    box
        The periodic box.
    state
        The last `hybrax.md.MDState` of the production run (equilibrated liquid).
    """

    train: LabelledFrames
    held_out: LabelledFrames
    box: md.PeriodicBox
    state: md.MDState


def _positions(state):
    return state.positions


def _total_energy(state):
    return md.total_energy(state)


def _thermostat(energy, box, settings: LJSettings, temperature: float) -> md.LangevinBAOAB:
    return md.LangevinBAOAB(
        energy, box, dt=settings.dt, temperature=temperature, friction=settings.friction
    )


def make_reference_data(
    key: PRNGKeyArray,
    settings: LJSettings = FULL,
    *,
    cells: int | None = None,
    num_frames: int | None = None,
) -> ReferenceData:
    """Melt an fcc crystal, equilibrate the liquid, and label frames of a production run.

    Langevin BAOAB with the reference LJ throughout: ``melt_steps`` at
    ``melt_temperature``, ``equilibration_steps`` at ``temperature``, then ``num_frames``
    frames ``frame_spacing`` steps apart. The last ``held_out_fraction`` of the frames (a
    contiguous stretch of time) are held out. ``cells`` and ``num_frames`` override the
    settings (the message-passing model uses a smaller system).
    """
    cells = settings.cells if cells is None else cells
    num_frames = settings.num_frames if num_frames is None else num_frames
    dtype = jnp.zeros(()).dtype
    positions, box = md.lattice("fcc", cells, density=settings.density, dtype=dtype)
    velocity_key, noise_key = jax.random.split(key)
    n = positions.shape[0]
    velocities = md.maxwell_boltzmann(velocity_key, n, settings.melt_temperature, dtype=dtype)
    neighbors = md.neighbor_list(positions, box, cutoff=settings.cutoff, skin=settings.skin)
    energy = reference_energy(settings)
    melt = _thermostat(energy, box, settings, settings.melt_temperature)
    state = melt.init(positions, velocities, neighbors, key=noise_key)
    state, _ = md.simulate(
        melt, state, settings.melt_steps, chunk_size=settings.melt_steps, progress=False
    )
    thermostat = _thermostat(energy, box, settings, settings.temperature)
    state, _ = md.simulate(
        thermostat,
        state,
        settings.equilibration_steps,
        chunk_size=settings.equilibration_steps,
        progress=False,
    )
    production = num_frames * settings.frame_spacing
    state, frames = md.simulate(
        thermostat,
        state,
        production,
        chunk_size=production,
        save_every=settings.frame_spacing,
        observe=_positions,
        progress=False,
    )
    labelled = label_frames(energy, frames, box, state.neighbors)
    num_held_out = max(1, round(settings.held_out_fraction * num_frames))
    split = num_frames - num_held_out
    return ReferenceData(labelled[:split], labelled[split:], box, state)


def new_pair_potential(key: PRNGKeyArray, settings: LJSettings = FULL) -> NeuralPairPotential:
    """A freshly initialised `hybrax.nn.NeuralPairPotential` of the experiment's size."""
    return NeuralPairPotential(
        settings.cutoff,
        key=key,
        basis=BesselBasis(settings.num_basis),
        width_size=settings.width,
        depth=settings.depth,
        num_knots=settings.num_knots,
        dtype=jnp.zeros(()).dtype,
    )


def new_schnet_potential(
    key: PRNGKeyArray, data: LabelledFrames, settings: LJSettings = FULL
) -> SchNetPotential:
    """A freshly initialised `hybrax.nn.SchNetPotential`, its per-atom energy shift set to
    the mean reference energy per atom of ``data``."""
    per_atom = data.energies / data.positions.shape[1]
    return SchNetPotential(
        settings.cutoff,
        key=key,
        num_features=settings.schnet_features,
        num_interactions=settings.schnet_interactions,
        energy_shift=float(jnp.mean(per_atom)),
        dtype=jnp.zeros(()).dtype,
    )


def train_potential(
    potential: md.AbstractEnergy,
    data: LabelledFrames,
    box: md.PeriodicBox,
    key: PRNGKeyArray,
    *,
    num_steps: int,
    batch_frames: int,
    learning_rate: float,
    energy_weight: float = 1.0,
    progress: bool = False,
    trainable: Any = eqx.is_inexact_array,
) -> FitResult:
    """Fit ``potential`` to the energies and forces of ``data`` with `hybrax.hybrid.fit`.

    The loss is `hybrax.nn.EnergyForceLoss` with both terms divided by the variance of the
    reference force components (``energy_weight`` scales the energy-per-atom term relative to
    the force term); Adam with a cosine-decayed learning rate and gradient clipping.
    """
    import optax

    force_variance = float(jnp.var(data.forces))
    loss = EnergyForceLoss(
        box, energy_weight=energy_weight / force_variance, force_weight=1.0 / force_variance
    )
    schedule = optax.cosine_decay_schedule(learning_rate, max(num_steps, 1), 0.02)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))
    return fit(
        potential,
        loss,
        data,
        optimizer,
        num_steps,
        batch_size=min(batch_frames, data.num_frames),
        key=key,
        trainable=trainable,
        progress=progress,
    )


@eqx.filter_jit
def predict(
    potential: md.AbstractEnergy, data: LabelledFrames, box: md.AbstractBox
) -> tuple[Float[Array, " frames"], Float[Array, "frames N 3"]]:
    """Energies and forces of ``potential`` on every frame of ``data`` (one frame at a time)."""
    return lax.map(
        lambda a: potential.energy_and_forces(a[0], a[1], box), (data.positions, data.neighbors)
    )


def force_rmse(predicted: Array, reference: Array) -> float:
    """Root-mean-square error over all force components (epsilon / sigma)."""
    return float(jnp.sqrt(jnp.mean((predicted - reference) ** 2)))


def nve_drift(
    energy: md.AbstractEnergy, state: md.MDState, box: md.PeriodicBox, settings: LJSettings
) -> tuple[float | None, np.ndarray]:
    """Relative total-energy drift of ``nve_steps`` velocity-Verlet steps from ``state``.

    Returns ``(drift, energies)``: the change over the run of a least-squares line through
    the total energy (sampled every 10 steps) divided by ``|E(0)|`` (None if the run blew
    up), and those energies with the start first. The start is left out of the fit: the
    total energy of velocity Verlet settles within a step onto the level of its shadow
    Hamiltonian and then fluctuates about it (see `nve_fluctuation`).
    """
    stepper = md.VelocityVerlet(energy, box, dt=settings.dt)
    start = stepper.init(state.positions, state.velocities, state.neighbors)
    every = 10
    try:
        _, energies = md.simulate(
            stepper,
            start,
            settings.nve_steps,
            chunk_size=settings.nve_steps,
            save_every=every,
            observe=_total_energy,
            progress=False,
        )
    except (NonFiniteStateError, RuntimeError):  # blew up, or collapsed (list overflow)
        return None, np.full(settings.nve_steps // every + 1, np.nan)
    trace = np.concatenate([[float(md.total_energy(start))], np.asarray(energies, np.float64)])
    time_axis = np.arange(trace.size) * every * settings.dt
    slope = np.polyfit(time_axis[1:], trace[1:], 1)[0]
    return float(slope * time_axis[-1] / abs(trace[0])), trace


def nve_fluctuation(trace: np.ndarray) -> float | None:
    """Standard deviation of the total energy along an NVE run divided by ``|E(0)|`` (the
    scale below which a measured drift is noise)."""
    if not np.all(np.isfinite(trace)):
        return None
    return float(np.std(trace[1:]) / abs(trace[0]))


def rdf_of_run(
    energy: md.AbstractEnergy,
    state: md.MDState,
    box: md.PeriodicBox,
    settings: LJSettings,
    key: PRNGKeyArray,
    *,
    num_steps: int | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """g(r) of a Langevin run with ``energy`` at the experiment's temperature from ``state``:
    ``rdf_equilibration_steps`` discarded, then a frame every ``rdf_every`` steps over
    ``num_steps`` (default ``rdf_steps``). Returns ``(r, g)``, or None if the run blew up."""
    num_steps = settings.rdf_steps if num_steps is None else num_steps
    thermostat = _thermostat(energy, box, settings, settings.temperature)
    start = thermostat.init(state.positions, state.velocities, state.neighbors, key=key)
    try:
        start, _ = md.simulate(
            thermostat,
            start,
            settings.rdf_equilibration_steps,
            chunk_size=settings.rdf_equilibration_steps,
            progress=False,
        )
        _, frames = md.simulate(
            thermostat,
            start,
            num_steps,
            chunk_size=num_steps,
            save_every=settings.rdf_every,
            observe=_positions,
            progress=False,
        )
    except (NonFiniteStateError, RuntimeError):  # blew up, or collapsed (list overflow)
        return None
    return rdf_of_frames(frames, box, settings)


def rdf_of_frames(
    frames: Float[Array, "frames N 3"], box: md.PeriodicBox, settings: LJSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Frame-averaged g(r) (``rdf_bins`` bins up to half the box): ``(r, g)``."""
    r_max = _r_max(box)
    r, g = _rdf_frames(frames, box, r_max, settings.rdf_bins)
    return np.asarray(r), np.asarray(g)


@eqx.filter_jit
def _rdf_frames(frames, box, r_max: float, num_bins: int):
    def one(p):
        return md.radial_distribution(p, box, r_max=r_max, num_bins=num_bins)

    r, g = lax.map(one, frames)
    return r[0], jnp.mean(g, axis=0)


def _r_max(box: md.PeriodicBox) -> float:
    return 0.5 * float(jnp.min(box.lengths)) - 1e-6


def rdf_l2(r: np.ndarray, g_reference: np.ndarray, g: np.ndarray | None) -> float | None:
    """``sqrt(int (g - g_ref)^2 dr)`` on the common bins ``r`` (sigma^(1/2)); None if ``g``
    is missing (the run blew up)."""
    if g is None:
        return None
    width = float(r[1] - r[0])
    return float(np.sqrt(np.sum((np.asarray(g) - np.asarray(g_reference)) ** 2) * width))


def _finite_or_none(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _evaluate_model(
    name, potential, data: ReferenceData, settings, g_reference, key, *, rdf_steps
) -> dict[str, Any]:
    """Held-out forces, NVE drift and g(r) of one trained model."""
    energies, forces = predict(potential, data.held_out, data.box)
    drift, trace = nve_drift(potential, data.state, data.box, settings)
    rdf = rdf_of_run(potential, data.state, data.box, settings, key, num_steps=rdf_steps)
    r, g = (None, None) if rdf is None else rdf
    return {
        "name": name,
        "force_rmse": force_rmse(forces, data.held_out.forces),
        "energy_rmse_per_atom": float(
            jnp.sqrt(jnp.mean(((energies - data.held_out.energies) / forces.shape[1]) ** 2))
        ),
        "forces": np.asarray(forces),
        "nve_drift": drift,
        "nve_trace": trace,
        "r": r,
        "g": g,
        "rdf_l2": rdf_l2(*g_reference, g),
    }


@register_workflow(
    "lj-neural-potential",
    "neural pair potential (and SchNet) fitted to LJ liquid energies and forces: force RMSE, "
    "NVE drift, g(r)",
)
def run(
    out_dir: Path, *, steps: int | None = None, quick: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Run the whole experiment and write ``metrics.json``, ``run_info.json`` and plots.

    Parameters
    ----------
    out_dir
        Output folder.
    steps
        Overrides the number of training steps of the pair potential.
    quick
        The small CI configuration (`QUICK`).
    progress
        Show progress bars and timings.
    """
    settings = QUICK if quick else FULL
    if steps is not None:
        settings = dataclasses.replace(settings, train_steps=int(steps))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def lap(name: str, t0: float) -> float:
        timings[name] = round(time.perf_counter() - t0, 2)
        _say(progress, f"{name}: {timings[name]:.1f} s")
        return time.perf_counter()

    keys = jax.random.split(jax.random.key(settings.seed), 10)
    t0 = time.perf_counter()
    data = make_reference_data(keys[0], settings)
    t0 = lap("reference_md", t0)
    g_reference = rdf_of_frames(
        jnp.concatenate([data.train.positions, data.held_out.positions]), data.box, settings
    )
    rerun = rdf_of_run(reference_energy(settings), data.state, data.box, settings, keys[1])
    reference_drift, reference_trace = nve_drift(
        reference_energy(settings), data.state, data.box, settings
    )
    t0 = lap("reference_nve_and_rdf", t0)

    pair = train_potential(
        new_pair_potential(keys[2], settings),
        data.train,
        data.box,
        keys[3],
        num_steps=settings.train_steps,
        batch_frames=settings.batch_frames,
        learning_rate=settings.learning_rate,
        energy_weight=settings.energy_weight,
        progress=progress,
    )
    timings["pair_training_fit_wall_time"] = round(pair.wall_time, 2)
    t0 = lap("pair_training", t0)
    results = [
        _evaluate_model(
            "neural_pair",
            pair.model,
            data,
            settings,
            g_reference,
            keys[4],
            rdf_steps=settings.rdf_steps,
        )
    ]
    t0 = lap("pair_evaluation", t0)

    schnet_info: dict[str, Any] = {}
    if settings.message_passing:
        small = make_reference_data(
            keys[5], settings, cells=settings.schnet_cells, num_frames=settings.schnet_num_frames
        )
        g_small = rdf_of_frames(
            jnp.concatenate([small.train.positions, small.held_out.positions]), small.box, settings
        )
        small_rerun = rdf_of_run(
            reference_energy(settings),
            small.state,
            small.box,
            settings,
            keys[6],
            num_steps=settings.schnet_rdf_steps,
        )
        small_drift, _ = nve_drift(reference_energy(settings), small.state, small.box, settings)
        t0 = lap("schnet_reference_md", t0)
        schnet = train_potential(
            new_schnet_potential(keys[7], small.train, settings),
            small.train,
            small.box,
            keys[8],
            num_steps=settings.schnet_train_steps,
            batch_frames=settings.schnet_batch_frames,
            learning_rate=settings.schnet_learning_rate,
            energy_weight=settings.energy_weight,
            progress=progress,
        )
        timings["schnet_training_fit_wall_time"] = round(schnet.wall_time, 2)
        t0 = lap("schnet_training", t0)
        results.append(
            _evaluate_model(
                "schnet",
                schnet.model,
                small,
                settings,
                g_small,
                keys[9],
                rdf_steps=settings.schnet_rdf_steps,
            )
        )
        t0 = lap("schnet_evaluation", t0)
        schnet_info = {
            "num_atoms": small.state.positions.shape[0],
            "reference_nve_drift": small_drift,
            "reference_rdf_l2": rdf_l2(*g_small, None if small_rerun is None else small_rerun[1]),
            "force_scale": float(jnp.sqrt(jnp.mean(small.held_out.forces**2))),
            "history": _thin(schnet.history["train"]),
        }

    metrics: dict[str, Any] = {
        "force_rmse": {res["name"]: _finite_or_none(res["force_rmse"]) for res in results},
        "nve_drift": {"reference": _finite_or_none(reference_drift)},
        "rdf_l2": {
            "reference": rdf_l2(*g_reference, None if rerun is None else rerun[1]),
        },
    }
    for res in results:
        metrics["nve_drift"][res["name"]] = _finite_or_none(res["nve_drift"])
        metrics["rdf_l2"][res["name"]] = _finite_or_none(res["rdf_l2"])

    _plot(out_dir, data, settings, pair.model, results, g_reference, rerun, reference_trace)
    lap("plots", t0)
    timings["total"] = round(time.perf_counter() - started, 2)

    held_out_forces = data.held_out.forces
    info = {
        "settings": dataclasses.asdict(settings),
        "quick": quick,
        "dtype": str(jnp.zeros(()).dtype),
        "num_atoms": settings.num_atoms,
        "neighbor_list_mode": data.state.neighbors.mode,
        "num_train_frames": data.train.num_frames,
        "num_held_out_frames": data.held_out.num_frames,
        "force_scale": float(jnp.sqrt(jnp.mean(held_out_forces**2))),
        "energy_per_atom_mean": float(jnp.mean(data.train.energies) / settings.num_atoms),
        "energy_rmse_per_atom": {res["name"]: res["energy_rmse_per_atom"] for res in results},
        "nve_fluctuation": {
            "reference": nve_fluctuation(reference_trace),
            **{res["name"]: nve_fluctuation(res["nve_trace"]) for res in results},
        },
        "kinetic_temperature_final": float(md.temperature(data.state.velocities)),
        "wall_time_s": timings,
        "pair_history": _thin(pair.history["train"]),
        "message_passing": schnet_info,
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    (out_dir / "run_info.json").write_text(json.dumps(info, indent=1))
    _say(True, comparison_table(metrics, info))
    return metrics


def comparison_table(metrics: dict, info: dict) -> str:
    """The metrics as a text table: one row per potential."""
    header = f"{'potential':<14}{'force RMSE':>12}{'NVE drift':>12}{'g(r) L2':>10}"
    lines = [header, "-" * len(header)]

    def cell(value, fmt, width):
        return f"{'-':>{width}}" if value is None else f"{value:>{width}{fmt}}"

    names = ["reference"] + [n for n in metrics["force_rmse"]]
    for name in names:
        lines.append(
            f"{name:<14}"
            + cell(metrics["force_rmse"].get(name), ".4f", 12)
            + cell(metrics["nve_drift"].get(name), ".2e", 12)
            + cell(metrics["rdf_l2"].get(name), ".4f", 10)
        )
    lines.append(
        f"(reference force scale: RMS component {info['force_scale']:.3f} epsilon/sigma; "
        f"{info['num_atoms']} atoms for the pair potential)"
    )
    mp = info.get("message_passing") or {}
    if mp:
        lines.append(
            f"(schnet: {mp['num_atoms']} atoms, force scale {mp['force_scale']:.3f}; LJ on that "
            f"system: NVE drift {mp['reference_nve_drift']:.2e}, g(r) L2 "
            f"{mp['reference_rdf_l2']:.4f})"
        )
    return "\n".join(lines)


def _thin(entries: list[dict], keep: int = 200) -> list[dict]:
    stride = max(1, len(entries) // keep)
    return entries[::stride]


def _say(enabled: bool, message: str) -> None:
    if enabled:
        print(message, flush=True)


def _plot(out_dir, data, settings, pair_model, results, g_reference, rerun, reference_trace):
    from matplotlib.figure import Figure

    pair = results[0]
    reference = np.asarray(data.held_out.forces).ravel()
    predicted = pair["forces"].ravel()
    pick = np.random.default_rng(0).permutation(reference.size)[:20000]
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.add_subplot()
    ax.plot(reference[pick], predicted[pick], ".", ms=1.5, alpha=0.4)
    limit = float(np.max(np.abs(reference)))
    ax.plot([-limit, limit], [-limit, limit], "k--", lw=1)
    ax.set_xlabel("Lennard-Jones force component (epsilon/sigma)")
    ax.set_ylabel("neural pair potential force")
    ax.set_title(f"held-out frames: RMSE {pair['force_rmse']:.3g}")
    fig.tight_layout()
    fig.savefig(out_dir / "force_parity.png", dpi=120)

    r, g = g_reference
    fig = Figure(figsize=(5.5, 4))
    ax = fig.add_subplot()
    ax.plot(r, g, "k", lw=2.5, label="Lennard-Jones (reference frames)")
    if rerun is not None:
        ax.plot(rerun[0], rerun[1], "k:", label="Lennard-Jones (independent run)")
    if pair["g"] is not None:
        ax.plot(pair["r"], pair["g"], "C1--", label="neural pair potential")
    ax.set_xlabel("r (sigma)")
    ax.set_ylabel("g(r)")
    ax.set_title(f"rho {settings.density}, T {settings.temperature}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "rdf.png", dpi=120)

    distances = jnp.linspace(0.85, settings.cutoff + 0.2, 400).astype(jnp.zeros(()).dtype)
    lj = reference_energy(settings)
    true_u = jnp.where(distances < settings.cutoff, lj.pair_energy(distances**2, None, None), 0.0)
    learned_u = pair_model.pair_potential(distances)
    near = np.asarray(data.train.positions[0])
    fig = Figure(figsize=(5.5, 4))
    ax = fig.add_subplot()
    ax.plot(distances, true_u, "k", lw=2.5, label="Lennard-Jones (shifted)")
    ax.plot(distances, learned_u, "C1--", label="learned")
    ax.axvline(settings.cutoff, color="0.6", lw=0.8)
    ax.set_ylim(-1.3, 2.0)
    ax.set_xlabel("r (sigma)")
    ax.set_ylabel("u(r) (epsilon)")
    ax.set_title(f"pair potential ({near.shape[0]} atoms, {data.train.num_frames} frames)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "pair_potential.png", dpi=120)

    fig = Figure(figsize=(5.5, 4))
    ax = fig.add_subplot()
    time_axis = np.arange(len(reference_trace)) * 10 * settings.dt
    n = settings.num_atoms
    ax.plot(time_axis, (reference_trace - reference_trace[0]) / n, "k", label="Lennard-Jones")
    trace = pair["nve_trace"]
    ax.plot(time_axis, (trace - trace[0]) / n, "C1", label="neural pair potential")
    ax.set_xlabel("time (tau)")
    ax.set_ylabel("E(t) - E(0) per atom (epsilon)")
    ax.set_title("NVE, velocity Verlet, dt 0.005")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "nve_energy.png", dpi=120)
