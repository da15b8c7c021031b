"""`simulate_batch`: `simulate` for a `SystemBatch`, every system stepped at once under
`jax.vmap`, with batch-wide neighbour-list regrowth."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Key, PyTree, UInt32

from hybrax.core import (
    ConfigurationError,
    InstabilityError,
    NonFiniteStateError,
    concrete_or_none,
)

from ._barostats import MartynaTobiasKlein
from ._batch import SystemBatch, _box
from ._batch_forces import (
    _update_all,
    bind_species,
    check_batch_energy,
    check_batch_inputs,
    check_batch_species,
    grown_template,
)
from ._batch_thermostats import SUPPORTED, PaddedLangevinBAOAB, pad_stepper
from ._integrators import AbstractMDStepper
from ._masked_list import MaskedNeighborList
from ._neighbors import retry_with_grown_list
from ._simulate import NeighborListOverflowWarning, _run_chunk, check_run_arguments
from ._space import PeriodicBox
from ._state import MDState
from ._thermostats import NoseHooverChain
from ._triclinic import TriclinicBox

__all__ = ["simulate_batch"]

StepperFactory = Callable[[PeriodicBox | TriclinicBox, Array], AbstractMDStepper]


def simulate_batch(
    make_stepper: StepperFactory,
    batch: SystemBatch,
    neighbors: MaskedNeighborList,
    n_steps: int,
    *,
    state: MDState | None = None,
    key: Key[Array, "*systems"] | UInt32[Array, "*systems 2"] | None = None,
    chunk_size: int = 1000,
    save_every: int | None = None,
    observe: Callable[[MDState], PyTree] | None = None,
    check_finite: bool = True,
    max_regrowths: int = 8,
) -> tuple[MDState, PyTree]:
    """Run ``n_steps`` MD steps of every system of ``batch`` at once (one `jax.vmap` over
    systems inside each compiled chunk), as `hybrax.md.simulate` runs one system.

    Each system has its own box and masses, so the integrator is made per system by
    ``make_stepper(box, masses)`` (a function, not a stepper: the box and masses are the
    batch's, and a stepper built once for one box would carry the wrong ones); any
    parameters it closes over (the energy's epsilon, ``dt``) are shared and differentiable.

    Ensembles: `VelocityVerlet` (NVE), `LangevinBAOAB` and `NoseHooverChain` (NVT),
    `MartynaTobiasKlein` (NPT: each system's box follows its own pressure; the boxes are in
    ``final.barostat``, e.g. ``jnp.prod(final.barostat.lengths, axis=-1)`` the volumes).
    Padding atoms keep zero velocity: they feel no force, Langevin's noise is switched off
    for them, and a chain's velocity scaling leaves them at rest; they never move, except
    with the box under NPT. A `NoseHooverChain` (and MTK's chains) counts each system's own
    ``3 n_b - 3`` degrees of freedom (``n_b`` real atoms; leave its ``degrees_of_freedom``
    None: that field is one static number per stepper, so the per-system count is taken
    from ``batch.mask``), so each system follows the trajectory it has alone with the
    default count. Each Langevin system draws its noise from its own key (``key``), the
    same numbers it draws alone with ``stepper.init(..., key=keys[b])``.

    Neighbour lists: when any system's list overflows during a chunk, the lists of the
    whole batch are rebuilt with more room (the capacity is shared because the shapes of a
    vmapped batch must match) from the chunk's starting positions, and the chunk is re-run
    for every system; results equal an overflow-free run (a `NeighborListOverflowWarning`
    is issued once). A blow-up or a NaN in any system raises, naming the system and step.

    Padding costs: every system does the pair work of ``N`` (the largest) atoms, so for
    systems of very different sizes several batches of similar sizes run faster (256
    systems of 32-108 atoms on one CPU core, ``benchmarks/md_batch.py``: one padded batch
    0.93 s for 50 steps, one batch per size 0.30 s, a Python loop of `simulate` 0.55 s,
    jax-md vmapped per size 2.4 s).

    Parameters
    ----------
    make_stepper
        ``(box, masses: (N,) array) -> AbstractMDStepper`` for one system (``box`` a
        `PeriodicBox`, or a `TriclinicBox` in a triclinic batch),
        e.g. ``lambda box, m: md.VelocityVerlet(md.LennardJones(), box, dt=0.005,
        masses=m)`` or ``lambda box, m: md.NoseHooverChain(lj, box, dt=0.005,
        temperature=1.0, masses=m)``. Called under `jax.vmap`; it must return a
        `VelocityVerlet`, `LangevinBAOAB`, `NoseHooverChain` or `MartynaTobiasKlein`.
    batch
        The systems (`SystemBatch`); their positions and velocities start the run unless
        ``state`` is given.
    neighbors
        Their lists, from `hybrax.md.batch_neighbor_list`.
    n_steps
        Steps to run.
    state
        Continue from this stacked state (the first output of an earlier call) instead of
        starting from ``batch`` (its own lists are then used; ``neighbors`` is only
        checked).
    key
        PRNG keys for `LangevinBAOAB` (required then, unless ``state`` is given): one key
        (``jax.random.key(0)``, split into one per system with ``jax.random.split(key,
        B)``) or ``B`` keys, one per system. Other steppers keep it in the state unused.
    chunk_size, save_every, observe, check_finite, max_regrowths
        As in `hybrax.md.simulate`; ``observe`` sees one system's `MDState` (padded).

    Returns
    -------
    final, trajectory
        The final states stacked along a leading system axis (``final.positions`` is
        ``(B, N, 3)``; `SystemBatch.replace` puts them back in a batch) and the saved
        observables with leading axes ``(B, n_steps // save_every)`` (None if nothing is
        saved).

    Raises
    ------
    hybrax.ConfigurationError
        A stepper of another kind (the message lists the supported ones), a
        `NoseHooverChain` or `MartynaTobiasKlein` with ``degrees_of_freedom`` set or a system
        of one atom under it,
        Langevin without ``key``, keys of the wrong shape, ``key`` together with ``state``.
    hybrax.InstabilityError, hybrax.NonFiniteStateError
        A system blew up (the message names the system and the step).
    hybrax.NeighborListError
        The lists kept overflowing after ``max_regrowths`` rebuilds.

    Examples
    --------
    >>> import jax, hybrax.md as md
    >>> a, box_a = md.lattice("fcc", 2, density=0.8442)
    >>> b, box_b = md.lattice("fcc", 3, density=0.8442)
    >>> va = md.maxwell_boltzmann(jax.random.key(0), 32, temperature=1.0)
    >>> vb = md.maxwell_boltzmann(jax.random.key(1), 108, temperature=1.0)
    >>> batch = md.SystemBatch.from_systems([(a, box_a, va), (b, box_b, vb)])
    >>> nbrs = md.batch_neighbor_list(batch, cutoff=1.5)
    >>> lj = md.LennardJones(cutoff=1.5)
    >>> final, energies = md.simulate_batch(
    ...     lambda box, m: md.VelocityVerlet(lj, box, dt=0.005, masses=m), batch, nbrs, 20,
    ...     chunk_size=20, save_every=10, observe=lambda s: s.potential_energy)
    >>> energies.shape
    (2, 2)
    >>> final, _ = md.simulate_batch(
    ...     lambda box, m: md.LangevinBAOAB(lj, box, dt=0.005, temperature=1.0, masses=m),
    ...     batch, nbrs, 20, chunk_size=20, key=jax.random.key(2))
    >>> bool((final.positions[0, 32:] == batch.positions[0, 32:]).all())  # padding stays put
    True

    NPT: each system's box follows its own pressure.

    >>> import jax.numpy as jnp
    >>> final, volumes = md.simulate_batch(
    ...     lambda box, m: md.MartynaTobiasKlein(lj, box, dt=0.005, temperature=1.0,
    ...         pressure=1.0, tau_barostat=1.0, masses=m),
    ...     batch, nbrs, 20, chunk_size=20, save_every=10,
    ...     observe=lambda s: jnp.prod(s.barostat.lengths))
    >>> volumes.shape
    (2, 2)
    """
    if not callable(make_stepper) or isinstance(make_stepper, AbstractMDStepper):
        raise ConfigurationError(
            "simulate_batch: make_stepper must be a function (box, masses) -> stepper, e.g. "
            "lambda box, m: hybrax.md.VelocityVerlet(energy, box, dt=0.005, masses=m) (each "
            f"system has its own box and masses), got {type(make_stepper).__name__}"
        )
    check_batch_inputs(batch, neighbors, "simulate_batch")
    check_run_arguments(n_steps, chunk_size, save_every, observe, max_regrowths)
    steppers = _make_steppers(make_stepper, batch)
    # system 0's energy (the steppers are stacked) against the whole batch's species
    first = jax.tree.map(lambda x: x[0] if eqx.is_array(x) else x, steppers.energy)
    check_batch_species(first, batch, "simulate_batch")
    if state is None:
        keys = _system_keys(key, batch.num_systems)
        if keys is None and isinstance(steppers, PaddedLangevinBAOAB):
            raise ConfigurationError(
                "simulate_batch: LangevinBAOAB is stochastic and needs key=: one key "
                "(jax.random.key(0), split into one per system) or one key per system "
                f"(jax.random.split(jax.random.key(0), {batch.num_systems}))"
            )
        state = _init_states(steppers, batch.positions, batch.velocities, neighbors, keys)
    elif key is not None:
        raise ConfigurationError(
            "simulate_batch: got both state and key; a continued state carries its own keys "
            "(pass key only when starting from the batch, state=None)"
        )
    elif not isinstance(state, MDState) or state.positions.shape != batch.positions.shape:
        raise ConfigurationError(
            "simulate_batch: state must be the stacked MDState returned by an earlier "
            f"simulate_batch on this batch (positions {batch.positions.shape})"
        )
    warned = False

    def rebuild(start: MDState, lists: MaskedNeighborList) -> MDState:
        nonlocal warned
        template = grown_template(lists, start.positions[0], batch.geometry[0])
        grown = MaskedNeighborList(
            _update_all(template, start.positions, batch.geometry), batch.mask
        )
        if not warned:
            warnings.warn(
                "hybrax.md.simulate_batch: a system's neighbour list overflowed; rebuilt the "
                f"lists of the whole batch ({grown.slots_per_atom} slots per atom, shared) and "
                "re-ran the chunk. Further rebuilds happen silently.",
                NeighborListOverflowWarning,
                stacklevel=4,
            )
            warned = True
        return _refresh(steppers, start, grown)

    if bool(jnp.any(state.neighbors.overflow)):
        state = rebuild(state, state.neighbors)
    saved = []
    done = 0
    while done < n_steps:
        length = min(chunk_size, n_steps - done)

        def attempt(start: MDState, length=length):
            final, trajectory, events = _batch_chunk(
                steppers, start, length=length, save_every=save_every, observe=observe
            )
            overflow, unstable, nonfinite = (np.asarray(x) for x in events[:3])
            if not check_finite:
                nonfinite = np.zeros_like(nonfinite)
            # per system: the first event; the batch re-runs if any system overflowed first
            firsts = np.where(
                (overflow > 0)
                & ((unstable == 0) | (overflow <= unstable))
                & ((nonfinite == 0) | (overflow <= nonfinite)),
                1,
                0,
            )
            outcome = (final, trajectory, unstable, nonfinite, np.asarray(events[3]))
            return outcome, bool(np.any(firsts))

        state, outcome = retry_with_grown_list(
            attempt,
            lambda start, outcome: rebuild(start, outcome[0].neighbors),
            state,
            max_regrowths=max_regrowths,
            message=(
                f"hybrax.md.simulate_batch: the neighbour lists still overflowed after "
                f"{max_regrowths} rebuilds in steps {done + 1} to {done + length}; some system "
                "may be collapsing or exploding (check dt and the initial states)"
            ),
        )
        final, trajectory, unstable, nonfinite, moved = outcome
        _raise_first_event(unstable, nonfinite, moved, done, n_steps)
        state = final
        if trajectory is not None:
            saved.append(trajectory)
        done += length
    if not saved:
        return state, None
    return state, jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=1), *saved)


def _raise_first_event(unstable, nonfinite, moved, done: int, n_steps: int) -> None:
    big = np.iinfo(np.int64).max
    unstable, nonfinite = np.asarray(unstable, np.int64), np.asarray(nonfinite, np.int64)
    u = np.where(unstable > 0, unstable, big)
    f = np.where(nonfinite > 0, nonfinite, big)
    if np.min(u) == big and np.min(f) == big:
        return
    if np.min(u) <= np.min(f):
        b = int(np.argmin(u))
        raise InstabilityError(
            f"hybrax.md.simulate_batch: system {b} blew up at step {done + int(u[b])} of "
            f"{n_steps}: an atom moved {float(moved[b]):.3g} sigma in one step, more than the "
            "instability limit, although the state is still finite. The time step is too "
            "large for these forces: try a smaller dt (0.005 is usual for Lennard-Jones), or "
            "start closer to equilibrium (hybrax.md.minimize)."
        )
    b = int(np.argmin(f))
    raise NonFiniteStateError(
        f"hybrax.md.simulate_batch: system {b} became NaN or inf at step "
        f"{done + int(f[b])} of {n_steps}. Usually the time step is too large for the forces "
        "(try a smaller dt) or particles started too close; minimise first "
        "(hybrax.md.minimize)."
    )


def _make_steppers(make_stepper, batch: SystemBatch):
    num_atoms = concrete_or_none(jnp.sum(batch.mask, axis=1))

    def one(geometry, masses, species, mask):
        stepper = make_stepper(_box(geometry), masses)
        if not isinstance(stepper, AbstractMDStepper):
            raise ConfigurationError(
                "simulate_batch: make_stepper(box, masses) must return a hybrax.md stepper "
                f"({SUPPORTED}), got {type(stepper).__name__}"
            )
        chained = isinstance(stepper, (NoseHooverChain, MartynaTobiasKlein))
        if chained and num_atoms is not None and min(num_atoms) < 2:
            b = int(np.argmin(num_atoms))
            raise ConfigurationError(
                f"simulate_batch: system {b} has {int(num_atoms[b])} atom; a "
                f"{type(stepper).__name__} "
                "needs at least 2 (3 n - 3 >= 1 degrees of freedom): run it with "
                "VelocityVerlet or LangevinBAOAB, or leave it out of the batch"
            )
        check_batch_energy(stepper.energy, "simulate_batch")
        stepper = dataclasses.replace(stepper, on_overflow="flag")
        energy = bind_species(stepper.energy, species)
        return pad_stepper(eqx.tree_at(lambda s: s.energy, stepper, energy), mask)

    return eqx.filter_vmap(one)(batch.geometry, batch.masses, batch.species, batch.mask)


def _system_keys(key, num_systems: int):
    """``key`` as ``(B,)`` typed keys: one key split into ``B``, or ``B`` keys as given."""
    if key is None:
        return None
    legacy = isinstance(key, (jax.Array, np.ndarray)) and key.dtype == np.uint32
    if legacy and key.shape[-1:] == (2,):
        key = jax.random.wrap_key_data(jnp.asarray(key))
    if not isinstance(key, jax.Array) or not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        raise ConfigurationError(
            "simulate_batch: key must be a jax.random.key(...) or one key per system "
            f"(jax.random.split(key, {num_systems})), got {type(key).__name__}"
            + (f" of dtype {key.dtype}" if hasattr(key, "dtype") else "")
        )
    if key.ndim == 0:
        return jax.random.split(key, num_systems)
    if key.shape != (num_systems,):
        raise ConfigurationError(
            f"simulate_batch: key must be one key or {num_systems} keys (one per system), got "
            f"keys of shape {key.shape}"
        )
    return key


@eqx.filter_jit
def _init_states(steppers, positions, velocities, neighbors, keys) -> MDState:
    return eqx.filter_vmap(lambda st, p, v, nb, k: st.init(p, v, nb, k))(
        steppers, positions, velocities, neighbors, keys
    )


@eqx.filter_jit
def _refresh(steppers, start: MDState, grown: MaskedNeighborList) -> MDState:
    """``start`` with the grown lists (updated at its positions); what the stepper
    recomputes with a new list (energy and forces, in the state's box:
    `AbstractMDStepper._reevaluated`) is taken for the systems whose starting list had
    overflowed (their values were NaN) and kept for the others."""

    def one(stepper, s, nbrs):
        fresh = stepper._reevaluated(s, nbrs)
        bad = s.neighbors.overflow

        def pick(new, old):
            return jnp.where(bad, new, old) if eqx.is_inexact_array(new) else new

        kept = jax.tree.map(
            pick, dataclasses.replace(fresh, neighbors=None), dataclasses.replace(s, neighbors=None)
        )
        return dataclasses.replace(kept, neighbors=fresh.neighbors)

    return eqx.filter_vmap(one)(steppers, start, grown)


@eqx.filter_jit
def _batch_chunk(steppers, states, *, length, save_every, observe):
    return eqx.filter_vmap(
        lambda st, s: _run_chunk(st, s, length=length, save_every=save_every, observe=observe)
    )(steppers, states)
