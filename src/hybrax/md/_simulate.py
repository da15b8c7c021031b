"""`simulate`: the chunked MD driver that regrows overflowing neighbour lists."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import PyTree
from tqdm.auto import tqdm

from hybrax.core import NonFiniteStateError, rollout

from ._integrators import AbstractMDStepper
from ._state import MDState

__all__ = ["NeighborListOverflowWarning", "simulate"]


class NeighborListOverflowWarning(UserWarning):
    """The neighbour list outgrew its capacity; `simulate` regrew it and re-ran a chunk."""


def simulate(
    stepper: AbstractMDStepper,
    state: MDState,
    n_steps: int,
    *,
    chunk_size: int = 1000,
    save_every: int | None = None,
    observe: Callable[[MDState], PyTree] | None = None,
    check_finite: bool = True,
    progress: bool = True,
    max_regrowths: int = 8,
) -> tuple[MDState, PyTree]:
    """Run ``n_steps`` MD steps in jitted chunks, never letting a neighbour list overflow.

    Each chunk is one compiled `hybrax.rollout` with the stepper in ``on_overflow="flag"``
    mode. After each chunk the driver looks at ``state.neighbors.overflow``; if set, it
    regrows the list (`NeighborList.grow`, sized from the largest need seen during the
    chunk), rebuilds it at the chunk's starting positions, re-runs that chunk and warns once
    (`NeighborListOverflowWarning`). Results are those of an overflow-free run.

    Parameters
    ----------
    stepper
        Any `AbstractMDStepper`.
    state
        Initial state (from ``stepper.init``).
    n_steps
        Total number of steps.
    chunk_size
        Steps per compiled chunk (the last chunk may be shorter). Overflow is checked per
        chunk, so a regrowth re-runs at most this many steps.
    save_every
        Keep ``observe(state)`` every ``save_every`` steps (must divide ``chunk_size`` and
        ``n_steps``); None keeps nothing.
    observe
        What to keep (default: the whole state; prefer a few scalars).
    check_finite
        Raise `hybrax.NonFiniteStateError` if positions, velocities, forces or energy
        become NaN/inf (checked after each chunk; the message names the chunk's steps).
    progress
        Show a tqdm bar over steps.
    max_regrowths
        Give up (RuntimeError) after this many regrowths of one chunk.

    Returns
    -------
    final, trajectory
        The final state and the saved observables stacked along a leading axis (None when
        nothing is saved).

    Examples
    --------
    >>> import jax, hybrax.md as md
    >>> positions, box = md.lattice("fcc", 6, density=0.8442)
    >>> nbrs = md.neighbor_list(positions, box, cutoff=2.5)
    >>> stepper = md.VelocityVerlet(md.LennardJones(), box, dt=0.005)
    >>> v = md.maxwell_boltzmann(jax.random.key(0), positions.shape[0], 3.0)
    >>> final, energy = md.simulate(stepper, stepper.init(positions, v, nbrs), 200,
    ...     chunk_size=100, save_every=10, observe=lambda s: s.potential_energy,
    ...     progress=False)
    """
    if not isinstance(stepper, AbstractMDStepper):
        raise ValueError(f"simulate needs an MD stepper, got {type(stepper).__name__}")
    if not isinstance(state, MDState):
        raise ValueError(
            f"simulate needs an MDState (from stepper.init(...)), got {type(state).__name__}"
        )
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 0:
        raise ValueError(f"n_steps must be a non-negative int, got {n_steps!r}")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    if save_every is not None and (chunk_size % save_every or n_steps % save_every):
        raise ValueError(
            f"save_every={save_every} must divide both chunk_size={chunk_size} and "
            f"n_steps={n_steps}"
        )
    flagging = dataclasses.replace(stepper, on_overflow="flag")
    saved = []
    warned = False
    done = 0
    bar = tqdm(total=n_steps, desc="hybrax.md", disable=not progress, leave=False)
    try:
        while done < n_steps:
            length = min(chunk_size, n_steps - done)
            for _attempt in range(max_regrowths + 1):
                # (rollout's own check_finite cannot carry PRNG-key leaves through
                # equinox.branched_error_if, so finiteness is checked per chunk here)
                final, trajectory = rollout(
                    flagging, state, length, save_every=save_every, observe=observe
                )
                neighbors = final.neighbors
                if neighbors is None or not bool(neighbors.overflow):
                    break
                grown = neighbors.grow(state.positions, stepper.box)
                if not warned:
                    warnings.warn(
                        "hybrax.md.simulate: the neighbour list overflowed (capacity "
                        f"{state.neighbors.slots_per_atom} slots per atom); regrew it to "
                        f"{grown.slots_per_atom} and re-ran the chunk. Further regrowths "
                        "happen silently.",
                        NeighborListOverflowWarning,
                        stacklevel=2,
                    )
                    warned = True
                state = dataclasses.replace(state, neighbors=grown)
            else:
                raise RuntimeError(
                    f"simulate: the neighbour list still overflowed after {max_regrowths} "
                    "regrowths; the system may be collapsing or exploding"
                )
            if check_finite and not _finite(final):
                raise NonFiniteStateError(
                    f"hybrax.md.simulate: the state became NaN or inf between steps {done} and "
                    f"{done + length}. Usually the time step is too large for the forces "
                    "(try a smaller dt) or particles started too close; minimise first "
                    "(hybrax.md.minimize)."
                )
            state = final
            if trajectory is not None:
                saved.append(trajectory)
            done += length
            bar.update(length)
    finally:
        bar.close()
    if not saved:
        return state, None
    stacked = jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=0), *saved)
    return state, stacked


def _finite(state: MDState) -> bool:
    leaves = (state.positions, state.velocities, state.forces, state.potential_energy)
    return all(bool(jnp.all(jnp.isfinite(x))) for x in leaves)
