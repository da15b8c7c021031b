"""Evaluation of the ``lj-neural-potential`` models: forces, NVE drift, g(r)."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, PRNGKeyArray

import hybrax.md as md
from hybrax.core import InstabilityError, NeighborListError, NonFiniteStateError
from hybrax.md import LabelledFrames

from .data import ReferenceData, positions, thermostat
from .settings import NVE_SAVE_EVERY, LJSettings

__all__ = [
    "evaluate_model",
    "force_rmse",
    "nve_drift",
    "nve_fluctuation",
    "predict",
    "rdf_l2",
    "rdf_of_frames",
    "rdf_of_run",
]

# A model's MD run that blows up (or collapses, overflowing its neighbour list) is a result,
# reported as missing, not a failure of the workflow.
_BLOW_UPS = (NonFiniteStateError, InstabilityError, NeighborListError, RuntimeError)


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
    every = NVE_SAVE_EVERY
    try:
        _, energies = md.simulate(
            stepper,
            start,
            settings.nve_steps,
            chunk_size=settings.nve_steps,
            save_every=every,
            observe=md.total_energy,
            progress=False,
        )
    except _BLOW_UPS:
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
    langevin = thermostat(energy, box, settings, settings.temperature)
    start = langevin.init(state.positions, state.velocities, state.neighbors, key=key)
    try:
        start, _ = md.simulate(
            langevin,
            start,
            settings.rdf_equilibration_steps,
            chunk_size=settings.rdf_equilibration_steps,
            progress=False,
        )
        _, frames = md.simulate(
            langevin,
            start,
            num_steps,
            chunk_size=num_steps,
            save_every=settings.rdf_every,
            observe=positions,
            progress=False,
        )
    except _BLOW_UPS:
        return None
    return rdf_of_frames(frames, box, settings)


def rdf_of_frames(
    frames: Float[Array, "frames N 3"], box: md.PeriodicBox, settings: LJSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Frame-averaged g(r) (``rdf_bins`` bins up to half the box): ``(r, g)``."""
    r_max = 0.5 * float(jnp.min(box.lengths)) - 1e-6
    r, g = _rdf_frames(frames, box, r_max, settings.rdf_bins)
    return np.asarray(r), np.asarray(g)


@eqx.filter_jit
def _rdf_frames(frames, box, r_max: float, num_bins: int):
    def one(p):
        return md.radial_distribution(p, box, r_max=r_max, num_bins=num_bins)

    r, g = lax.map(one, frames)
    return r[0], jnp.mean(g, axis=0)


def rdf_l2(r: np.ndarray, g_reference: np.ndarray, g: np.ndarray | None) -> float | None:
    """``sqrt(int (g - g_ref)^2 dr)`` on the common bins ``r`` (sigma^(1/2)); None if ``g``
    is missing (the run blew up)."""
    if g is None:
        return None
    width = float(r[1] - r[0])
    return float(np.sqrt(np.sum((np.asarray(g) - np.asarray(g_reference)) ** 2) * width))


def evaluate_model(
    name: str,
    potential: md.AbstractEnergy,
    data: ReferenceData,
    settings: LJSettings,
    g_reference: tuple[np.ndarray, np.ndarray],
    key: PRNGKeyArray,
    *,
    rdf_steps: int,
) -> dict[str, Any]:
    """Held-out forces and energies, NVE drift and g(r) of one trained model."""
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
