"""`simulate`: the chunked MD driver that rebuilds overflowing neighbour lists and stops
blow-ups (finite or not) with an error naming the step."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import PyTree

from hybrax.core import (
    ConfigurationError,
    InstabilityError,
    NonFiniteStateError,
    concrete_or_none,
    progress_bar,
)

from ._integrators import AbstractMDStepper
from ._neighbors import retry_with_grown_list
from ._state import MDState

__all__ = ["NeighborListOverflowWarning", "simulate"]


class NeighborListOverflowWarning(UserWarning):
    """The neighbour list outgrew its capacity (or its box); `simulate` rebuilt it and re-ran
    a chunk."""


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
    """Run ``n_steps`` MD steps in jitted chunks, never letting a neighbour list overflow
    and never returning a blown-up state.

    Each chunk is one compiled `jax.lax.scan` with the stepper in ``on_overflow="flag"``
    mode, which carries out of the loop the first step at which the neighbour list
    overflowed, an atom moved farther than the stepper's instability limit
    (`AbstractMDStepper.displacement_limit`), or the state became NaN/inf. After each
    chunk the driver looks at them, in the order they happened:

    - an overflow (the list needed more room, or the box is one its cell grid no longer
      covers): it rebuilds the list (`AbstractNeighborList.grow`, sized from the largest need seen
      during the chunk, with a new grid if the box needs one) at the chunk's starting
      positions, in the state's box (`AbstractMDStepper.state_box`: an NPT run's current
      box), re-runs that chunk and warns once (`NeighborListOverflowWarning`). Results
      are those of an overflow-free run. A starting state whose list is already flagged
      (``stepper.init`` with ``on_overflow="flag"`` and a list built for another box) is
      rebuilt before the first step;
    - a finite blow-up: raises `hybrax.InstabilityError` naming the step and the fix;
    - NaN/inf (with ``check_finite``): raises `hybrax.NonFiniteStateError` naming the step.

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
        become NaN/inf, naming the first such step.
    progress
        Show a progress bar over steps (`hybrax.core.progress_bar`: off when the output is
        not a terminal).
    max_regrowths
        Give up (`hybrax.NeighborListError`) after this many regrowths of one chunk.

    Returns
    -------
    final, trajectory
        The final state and the saved observables stacked along a leading axis (None when
        nothing is saved).

    Raises
    ------
    hybrax.InstabilityError
        Some atom moved farther than the stepper's ``displacement_limit`` in one step:
        the time step is too large for the forces (the message names the step).
    hybrax.NonFiniteStateError
        The state became NaN or inf (the message names the step).
    hybrax.NeighborListError
        The list kept overflowing after ``max_regrowths`` rebuilds.

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
        raise ConfigurationError(
            f"simulate needs an MD stepper (e.g. hybrax.md.VelocityVerlet), got "
            f"{type(stepper).__name__}"
        )
    if not isinstance(state, MDState):
        raise ConfigurationError(
            f"simulate needs an MDState (from stepper.init(...)), got {type(state).__name__}"
        )
    check_run_arguments(n_steps, chunk_size, save_every, observe, max_regrowths)
    flagging = dataclasses.replace(stepper, on_overflow="flag")
    saved = []
    warned = False

    def rebuild(start: MDState, neighbors) -> MDState:
        nonlocal warned
        grown = neighbors.grow(start.positions, stepper.state_box(start))
        if not warned:
            warnings.warn(
                "hybrax.md.simulate: the neighbour list overflowed (it needed more than its "
                f"{start.neighbors.slots_per_atom} slots per atom, or the box changed beyond "
                f"what its cell grid covers); rebuilt it ({grown.slots_per_atom} slots per "
                "atom) and re-ran the chunk. Further rebuilds happen silently.",
                NeighborListOverflowWarning,
                stacklevel=5,
            )
            warned = True
        if not _flag(start.neighbors.overflow):  # its forces are right: keep them
            return dataclasses.replace(start, neighbors=grown)
        return stepper._reevaluated(start, grown)

    if state.neighbors is not None and _flag(state.neighbors.overflow):
        state = rebuild(state, state.neighbors)
    done = 0
    bar = progress_bar(
        total=n_steps, desc="hybrax.md", leave=False, **({} if progress else {"disable": True})
    )
    try:
        while done < n_steps:
            length = min(chunk_size, n_steps - done)

            def attempt(start: MDState, length=length):
                final, trajectory, events = _run_chunk(
                    flagging, start, length=length, save_every=save_every, observe=observe
                )
                overflow, unstable, nonfinite = (int(x) for x in events[:3])
                first = min(
                    (k for k in (overflow, unstable, nonfinite if check_finite else -1) if k > 0),
                    default=0,
                )
                outcome = (final, trajectory, first, overflow, unstable, nonfinite, events[3])
                return outcome, bool(first) and first == overflow

            state, outcome = retry_with_grown_list(
                attempt,
                lambda start, outcome: rebuild(start, outcome[0].neighbors),
                state,
                max_regrowths=max_regrowths,
                message=(
                    f"hybrax.md.simulate: the neighbour list still overflowed after "
                    f"{max_regrowths} rebuilds in steps {done + 1} to {done + length}; the "
                    "system may be collapsing or exploding (check dt and the initial state), "
                    "or, under a barostat, the box may have shrunk during these steps to less "
                    "than twice the list radius (cut-off + skin) across in some direction, "
                    "which no periodic neighbour list can cover (check the pressure target and "
                    "the barostat's time scale, or use a larger system)"
                ),
            )
            final, trajectory, first, _, unstable, nonfinite, moved = outcome
            moved = float(moved)
            if first and first == unstable:
                dt = float(jnp.max(jnp.asarray(stepper.dt)))
                limit = flagging.displacement_limit(state.neighbors)
                raise InstabilityError(
                    f"hybrax.md.simulate: the run blew up at step {done + unstable} of "
                    f"{n_steps}: an atom moved {moved:.3g} sigma in one step (speed "
                    f"{moved / dt:.3g} sigma/tau), more than the instability limit "
                    f"{limit:.3g} sigma, although the state is still finite. The time step "
                    f"dt={dt:g} is too large for these forces: try dt={dt / 10:g} or smaller "
                    "(0.005 is usual for Lennard-Jones), or start closer to equilibrium "
                    "(hybrax.md.minimize). The limit is the stepper's max_displacement."
                )
            if first and first == nonfinite:
                raise NonFiniteStateError(
                    f"hybrax.md.simulate: the state became NaN or inf at step "
                    f"{done + nonfinite} of {n_steps}. Usually the time step is too large "
                    "for the forces (try a smaller dt) or particles started too close; "
                    "minimise first (hybrax.md.minimize)."
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


def check_run_arguments(n_steps, chunk_size, save_every, observe, max_regrowths) -> None:
    """The checks of `simulate`'s (and `simulate_batch`'s) loop arguments."""
    for name, value, low in (
        ("n_steps", n_steps, 0),
        ("chunk_size", chunk_size, 1),
        ("max_regrowths", max_regrowths, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigurationError(f"{name} must be an int >= {low}, got {value!r}")
    if save_every is not None and (
        isinstance(save_every, bool)
        or not isinstance(save_every, int)
        or save_every < 1
        or chunk_size % save_every
        or n_steps % save_every
    ):
        raise ConfigurationError(
            f"save_every={save_every!r} must be a positive int that divides both "
            f"chunk_size={chunk_size} and n_steps={n_steps}"
        )
    if observe is not None and not callable(observe):
        raise ConfigurationError(f"observe must be a function of the state, got {observe!r}")


def _flag(value) -> bool:
    concrete = concrete_or_none(value)
    return bool(concrete) if concrete is not None else False


@eqx.filter_jit
def _run_chunk(stepper, state, *, length, save_every, observe):
    """``length`` steps in one scan; returns the final state, the saved observables and
    the first step (1-based, 0 if none) of an overflow, an instability and a non-finite
    state, with the distance moved at the first instability."""
    stepper = stepper.prepare()
    limit = stepper.displacement_limit(state.neighbors)
    observe_fn = (lambda s: s) if observe is None else observe
    interval = save_every if save_every is not None else length
    zero = jnp.zeros((), jnp.int32)

    def first(earlier, now, index):
        return jnp.where((earlier == 0) & now, index, earlier)

    def one_step(carry, _):
        s, index, overflow, unstable, nonfinite, moved = carry
        s = stepper.step(s)
        index = index + 1
        distance = stepper.step_displacement(s)
        if s.neighbors is not None:
            overflow = first(overflow, s.neighbors.overflow, index)
        moved = jnp.where((unstable == 0) & (distance > limit), distance, moved)
        unstable = first(unstable, distance > limit, index)
        leaves = (s.positions, s.velocities, s.forces, s.potential_energy)
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))
        nonfinite = first(nonfinite, ~finite, index)
        return (s, index, overflow, unstable, nonfinite, moved), None

    def one_interval(carry, _):
        carry, _ = lax.scan(one_step, carry, None, length=interval)
        return carry, (observe_fn(carry[0]) if save_every is not None else None)

    moved0 = jnp.zeros((), state.positions.dtype)
    carry = (state, zero, zero, zero, zero, moved0)
    carry, saved = lax.scan(one_interval, carry, None, length=length // interval)
    final, _, overflow, unstable, nonfinite, moved = carry
    return final, saved, (overflow, unstable, nonfinite, moved)
