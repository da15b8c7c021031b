"""Reference data of the ``lj-neural-potential`` workflow: Lennard-Jones MD, labelled."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

import hybrax.md as md
from hybrax.md import LabelledFrames, label_frames

from .settings import FULL, LJSettings

__all__ = ["ReferenceData", "make_reference_data", "reference_energy", "thermostat"]


def reference_energy(settings: LJSettings = FULL) -> md.LennardJones:
    """The reference: Lennard-Jones, truncated and shifted at ``settings.cutoff``."""
    return md.LennardJones(epsilon=1.0, sigma=1.0, cutoff=settings.cutoff)


def thermostat(energy, box, settings: LJSettings, temperature: float) -> md.LangevinBAOAB:
    """Langevin BAOAB with ``energy`` at ``temperature`` (the settings' ``dt``, friction)."""
    return md.LangevinBAOAB(
        energy, box, dt=settings.dt, temperature=temperature, friction=settings.friction
    )


class ReferenceData(eqx.Module):
    """Reference MD of the LJ liquid: labelled frames, split, and the final state.

    Attributes
    ----------
    train, held_out
        `hybrax.md.LabelledFrames` (positions, energies, forces, per-frame neighbour lists).
    box
        The periodic box.
    state
        The last `hybrax.md.MDState` of the production run (equilibrated liquid).
    """

    train: LabelledFrames
    held_out: LabelledFrames
    box: md.PeriodicBox
    state: md.MDState


def positions(state):
    """The positions of an MD state (an ``observe`` function)."""
    return state.positions


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
    start, box = md.lattice("fcc", cells, density=settings.density, dtype=dtype)
    velocity_key, noise_key = jax.random.split(key)
    n = start.shape[0]
    velocities = md.maxwell_boltzmann(velocity_key, n, settings.melt_temperature, dtype=dtype)
    neighbors = md.neighbor_list(start, box, cutoff=settings.cutoff, skin=settings.skin)
    energy = reference_energy(settings)
    melt = thermostat(energy, box, settings, settings.melt_temperature)
    state = melt.init(start, velocities, neighbors, key=noise_key)
    state, _ = md.simulate(
        melt, state, settings.melt_steps, chunk_size=settings.melt_steps, progress=False
    )
    liquid = thermostat(energy, box, settings, settings.temperature)
    state, _ = md.simulate(
        liquid,
        state,
        settings.equilibration_steps,
        chunk_size=settings.equilibration_steps,
        progress=False,
    )
    production = num_frames * settings.frame_spacing
    state, frames = md.simulate(
        liquid,
        state,
        production,
        chunk_size=production,
        save_every=settings.frame_spacing,
        observe=positions,
        progress=False,
    )
    labelled = label_frames(energy, frames, box, state.neighbors)
    num_held_out = max(1, round(settings.held_out_fraction * num_frames))
    split = num_frames - num_held_out
    return ReferenceData(labelled[:split], labelled[split:], box, state)
