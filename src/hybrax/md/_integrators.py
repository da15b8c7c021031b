"""MD integrators (Steppers): the shared `AbstractMDStepper` (checks at ``init``, run-time
guards) and NVE velocity Verlet. The thermostats are in ``_thermostats.py``."""

import abc
import dataclasses
import functools
from collections.abc import Sequence
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from equinox import AbstractVar
from jaxtyping import Array, Float, PRNGKeyArray

from hybrax.core import (
    AbstractStepper,
    ConfigurationError,
    NeighborListError,
    check_parameter,
    concrete_or_none,
    time_step,
)

from ._energy import AbstractEnergy
from ._neighbors import AbstractNeighborList, _check_inside, _check_positions_shape
from ._space import AbstractBox, PeriodicBox
from ._state import MDState, NoseHooverChainState

__all__ = ["AbstractMDStepper", "VelocityVerlet"]

OnOverflow = Literal["raise", "flag"]

_OVERFLOW = (
    "NeighborListError: hybrax.md neighbour-list overflow. A rebuilt list needed more room "
    "than its static capacity, or the box changed so much that the list's static cell grid "
    "no longer reaches cutoff + skin, so some pairs would be missed and the forces would be "
    "wrong. Run with hybrax.md.simulate (it rebuilds the list and re-runs the chunk), or "
    "rebuild the list with state.neighbors.grow(state.positions, box) and start again."
)

_UNSTABLE = (
    "InstabilityError: hybrax.md: the simulation blew up at step {step} (counted from time "
    "0): an atom moved more than {limit:.3g} sigma in one step (speed x dt), although "
    "positions, velocities and forces are still finite. The time step is too large for "
    "these forces (try a smaller dt, e.g. dt=0.005 for Lennard-Jones), or the initial state "
    "is far from equilibrium (minimise first with hybrax.md.minimize)."
)


@dataclasses.dataclass(frozen=True)
class _GuardMessages(Sequence):
    """Run-time error messages of an MD step: index 0 is the neighbour-list overflow,
    index k >= 1 an instability at step k (formatted lazily, only when raised)."""

    limit: float
    total: int = 2**31 - 1

    def __len__(self) -> int:
        return self.total

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            raise TypeError("_GuardMessages cannot be sliced")
        index = int(index)
        return _OVERFLOW if index == 0 else _UNSTABLE.format(step=index, limit=self.limit)


def _checked(name: str, **constraints):
    """A converter applying `hybrax.core.check_parameter` to a field named ``name``."""
    return functools.partial(check_parameter, name=name, **constraints)


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _scalar(value, like: Array) -> Array:
    return jnp.asarray(value).astype(like.dtype)


def _on_overflow(value) -> str:
    if value not in ("raise", "flag"):
        raise ConfigurationError(f'on_overflow must be "raise" or "flag", got {value!r}')
    return value


def _max_displacement(value):
    if value is None:
        return None
    concrete = concrete_or_none(value)
    if (
        isinstance(value, (bool, np.bool_))
        or concrete is None
        or concrete.ndim
        or not np.issubdtype(concrete.dtype, np.number)
        or np.iscomplexobj(concrete)
        or np.isnan(concrete)
        or not concrete > 0
    ):
        raise ConfigurationError(
            "max_displacement must be None or a positive number (sigma; inf switches the "
            f"instability check off), got {value!r}"
        )
    return float(concrete)


class AbstractMDStepper(AbstractStepper):
    """A molecular-dynamics integrator over an energy in a box.

    Concrete steppers hold ``energy`` (an `AbstractEnergy`), ``box``, ``dt`` (tau; positive
    and finite), ``masses`` (positive; scalar or ``(N,)``, differentiable),
    ``on_overflow`` and ``max_displacement``.

    Two run-time checks guard every step (inside `jax.jit`, `jax.vmap` and
    `hybrax.rollout`, through `equinox.branched_error_if`):

    - a neighbour-list overflow (a rebuilt list needed more room than its static capacity,
      or the box is one its cell grid no longer covers), whose message starts with
      ``NeighborListError``;
    - a finite blow-up: some atom moved farther than ``max_displacement`` in one step
      (``max |v| dt``), whose message starts with ``InstabilityError`` and names the step.
      A time step 100 times too large gives speeds of 1e20 that stay finite; this catches
      it at the first steps. ``max_displacement`` defaults to the larger of the
      neighbour list's skin and half its cut-off (1 sigma without a list); pass
      ``float("inf")`` to switch the check off.

    ``on_overflow="raise"`` (the default) raises them; ``"flag"`` only records an overflow
    in ``state.neighbors.overflow`` and skips both raises: `hybrax.md.simulate` uses it, rebuilds
    overflowing lists and raises `hybrax.InstabilityError` itself, naming the step.

    The neighbour list in the state is rebuilt inside the step whenever an atom has moved
    more than half the skin (a `jax.lax.cond`, no host round trip).
    """

    energy: AbstractVar[AbstractEnergy]
    box: AbstractVar[AbstractBox]
    masses: AbstractVar[Array]
    on_overflow: AbstractVar[OnOverflow]
    max_displacement: AbstractVar[float | None]

    def __check_init__(self):
        if not isinstance(self.energy, AbstractEnergy):
            raise ConfigurationError(
                f"{type(self).__name__}: energy must be a hybrax.md energy (e.g. "
                f"hybrax.md.LennardJones()), got {self.energy!r}"
            )
        if not isinstance(self.box, AbstractBox):
            raise ConfigurationError(
                f"{type(self).__name__}: box must be a hybrax.md.PeriodicBox or FreeSpace, "
                f"got {self.box!r}"
            )
        if jnp.ndim(self.masses) > 1:
            raise ConfigurationError(
                f"{type(self).__name__}: masses must be a scalar or one value per atom (N,), "
                f"got shape {jnp.shape(self.masses)}"
            )

    @abc.abstractmethod
    def step(self, state: MDState) -> MDState:
        """Advance by ``dt``."""

    def displacement_limit(self, neighbors: AbstractNeighborList | None) -> float:
        """The largest distance an atom may move in one step before the run counts as
        unstable (sigma): ``max_displacement`` if given, else the larger of the list's
        skin and half its cut-off, or 1 sigma without a list."""
        if self.max_displacement is not None:
            return self.max_displacement
        if neighbors is None:
            return 1.0
        return max(neighbors.skin, 0.5 * neighbors.cutoff)

    def init(
        self,
        positions: Float[Array, "N 3"] | MDState,
        velocities: Float[Array, "N 3"] | None = None,
        neighbors: AbstractNeighborList | None = None,
        key: PRNGKeyArray | None = None,
    ) -> MDState:
        """The initial state: forces and energy at ``positions`` (velocities default 0).

        Checks the input and fails with a `hybrax.ConfigurationError` saying what is wrong:
        positions of the wrong shape or outside the periodic box, masses that do not match
        the atoms, overlapping atoms (infinite energy, or forces so large that the first
        step would throw an atom farther than the instability limit), velocities of the
        wrong shape or too fast for ``dt``, a neighbour list built for another system. A
        neighbour list that is too small for the positions or built for another box raises
        `hybrax.NeighborListError` (with ``on_overflow="flag"`` the state keeps the flag
        instead, and `hybrax.md.simulate` rebuilds the list).

        Idempotent: given an `MDState` (and nothing else) it returns that state unchanged,
        so ``stepper.init(stepper.init(x))`` is ``stepper.init(x)`` and `hybrax.rollout` can
        start from either positions' state or a running one.
        """
        if isinstance(positions, MDState):
            _reject_extra_arguments(
                type(self).__name__, velocities=velocities, neighbors=neighbors, key=key
            )
            return positions
        positions = jnp.asarray(positions)
        _check_positions_shape(positions)
        n = positions.shape[0]
        if isinstance(self.box, PeriodicBox):
            _check_inside(positions, self.box.lengths)
        masses = jnp.asarray(self.masses)
        if masses.ndim == 1 and masses.shape[0] != n:
            raise ConfigurationError(
                f"masses has shape {masses.shape} but there are {n} atoms: pass one mass per "
                f"atom, shape ({n},), or a single number"
            )
        velocities = jnp.zeros_like(positions) if velocities is None else jnp.asarray(velocities)
        if velocities.shape != positions.shape:
            raise ConfigurationError(
                f"velocities must have the positions' shape {positions.shape}, got "
                f"{velocities.shape}"
            )
        if not jnp.issubdtype(velocities.dtype, jnp.floating):
            raise ConfigurationError(
                f"velocities must be floating point, got dtype {velocities.dtype}"
            )
        concrete_v = concrete_or_none(velocities)
        if concrete_v is not None and not np.all(np.isfinite(concrete_v)):
            raise ConfigurationError("velocities contain NaN or inf")
        velocities = velocities.astype(positions.dtype)
        if neighbors is not None:
            if not isinstance(neighbors, AbstractNeighborList):
                raise ConfigurationError(
                    "neighbors must be a hybrax.md neighbour list (from hybrax.md.neighbor_list), "
                    f"got {type(neighbors).__name__}"
                )
            if neighbors.num_atoms != n:
                raise ConfigurationError(
                    f"the neighbour list was built for {neighbors.num_atoms} atoms, the "
                    f"positions have {n}"
                )
            cutoff = self.energy.required_cutoff
            if cutoff is not None and cutoff > neighbors.cutoff + 1e-12:
                raise ConfigurationError(
                    f"the energy needs pairs up to {cutoff} but the neighbour list was built "
                    f"for cutoff {neighbors.cutoff}; build it with cutoff={cutoff}"
                )
        elif self.energy.required_cutoff is not None:
            raise ConfigurationError(
                f"{type(self.energy).__name__} has pair terms and needs a neighbour list: "
                "pass neighbors=hybrax.md.neighbor_list(positions, box, cutoff)"
            )
        neighbors, energy, forces = _initial_evaluation(self.energy, self.box, positions, neighbors)
        overflowed = False
        if neighbors is not None:
            flag = concrete_or_none(neighbors.overflow)
            overflowed = bool(flag) if flag is not None else False  # traced: the step guards
            if overflowed and self.on_overflow == "raise":
                raise NeighborListError(_init_overflow_message(neighbors, self.box))
        if not overflowed:
            _check_finite_energy(energy, forces, positions, self.box)
            self._check_first_step(positions, velocities, forces, neighbors)
        return MDState(
            positions,
            velocities,
            forces,
            energy,
            neighbors,
            key,
            jnp.zeros((), positions.dtype),
            self._init_thermostat(positions),
        )

    def _check_first_step(self, positions, velocities, forces, neighbors) -> None:
        """Reject a start whose first step would move an atom beyond the instability limit:
        overlapping atoms (finite but huge forces) or velocities too fast for ``dt``."""
        values = [concrete_or_none(x) for x in (positions, velocities, forces, self.dt)]
        masses = concrete_or_none(self.masses)
        if any(v is None for v in values) or masses is None:
            return  # traced: the step's own guard catches a blow-up
        p, v, f, dt = values
        dt = float(np.max(dt))
        m = np.broadcast_to(np.asarray(masses, np.float64).reshape(-1), (p.shape[0],))
        limit = self.displacement_limit(neighbors)
        drift = dt * np.sqrt(np.sum(np.asarray(v, np.float64) ** 2, axis=-1))
        force = np.sqrt(np.sum(np.asarray(f, np.float64) ** 2, axis=-1))
        kick = 0.5 * dt * dt * force / m
        if np.max(kick) > limit:
            i = int(np.argmax(kick))
            d = np.asarray(p, np.float64) - np.asarray(p[i], np.float64)
            if isinstance(self.box, PeriodicBox):
                lengths = np.asarray(self.box.lengths, np.float64)
                d -= lengths * np.round(d / lengths)
            r = np.sqrt(np.sum(d * d, axis=-1))
            r[i] = np.inf
            j = int(np.argmin(r))
            raise ConfigurationError(
                f"particles overlap: atoms {min(i, j)} and {max(i, j)} are {r[j]:.3g} sigma "
                f"apart, and the force on atom {i} ({force[i]:.3g} epsilon/sigma) would move "
                f"it {kick[i]:.3g} sigma in the first step of dt={dt:g} (more than the "
                f"instability limit {limit:.3g} sigma). Start from a lattice "
                "(hybrax.md.lattice), relax a random packing (hybrax.md.random_packing), or "
                "minimise first with hybrax.md.minimize"
            )
        if np.max(drift) > limit:
            i = int(np.argmax(drift))
            raise ConfigurationError(
                f"velocities are too large for dt={dt:g}: atom {i} moves at speed "
                f"{drift[i] / dt:.3g} sigma/tau, {drift[i]:.3g} sigma per step (more than the "
                f"instability limit {limit:.3g} sigma). Use a smaller dt or draw velocities "
                "at the intended temperature (hybrax.md.maxwell_boltzmann)"
            )

    def _init_thermostat(self, positions) -> NoseHooverChainState | None:
        return None

    def state_box(self, state: MDState) -> AbstractBox:
        """The box ``state`` lives in (sigma): the stepper's ``box``; steppers whose box
        evolves with the state (`MartynaTobiasKlein`) return the state's. Neighbour lists
        for ``state`` are built, and its forces computed, in this box.

        Examples
        --------
        >>> import hybrax.md as md
        >>> positions, box = md.lattice("fcc", 3, density=0.8442)
        >>> stepper = md.VelocityVerlet(md.LennardJones(), box, dt=0.005)
        >>> state = stepper.init(positions, None, md.neighbor_list(positions, box, 2.5))
        >>> stepper.state_box(state) is box
        True
        """
        return self.box

    def _reevaluated(self, state: MDState, neighbors: AbstractNeighborList | None) -> MDState:
        """``state`` with ``neighbors`` (updated at its positions in `state_box`) and its
        energy and forces recomputed with them (`hybrax.md.simulate`'s regrowth of a list
        that has overflowed; a barostat also recomputes its virial)."""
        neighbors, energy, forces = _initial_evaluation(
            self.energy, self.state_box(state), state.positions, neighbors
        )
        return dataclasses.replace(
            state, neighbors=neighbors, potential_energy=energy, forces=forces
        )

    # helpers ------------------------------------------------------------------
    def _inverse_mass(self, like: Array) -> Array:
        m = jnp.asarray(self.masses).astype(like.dtype)
        return (1.0 / m)[..., None] if m.ndim == 1 else 1.0 / m

    def _evaluate(self, positions, neighbors):
        if neighbors is not None:
            neighbors = neighbors.maybe_update(positions, self.box)
        energy, forces = self.energy.energy_and_forces(positions, neighbors, self.box)
        return neighbors, energy, forces

    def step_displacement(self, state: MDState) -> Array:
        """``max |v| dt`` over atoms: how far the fastest atom moves per step (sigma)."""
        v = state.velocities
        dt = _scalar(self.dt, v)
        return dt * jnp.sqrt(jnp.max(jnp.sum(v * v, axis=-1)))

    def _guard(self, state: MDState) -> MDState:
        if self.on_overflow != "raise":
            return state
        limit = self.displacement_limit(state.neighbors)
        unstable = self.step_displacement(state) > limit
        overflow = jnp.zeros((), bool) if state.neighbors is None else state.neighbors.overflow
        dt = _scalar(self.dt, state.time)
        step = jnp.clip(jnp.round(state.time / dt), 1, 2**31 - 2).astype(jnp.int32)
        index = jnp.where(overflow, 0, step)
        positions = eqx.branched_error_if(
            state.positions, overflow | unstable, index, _GuardMessages(float(limit))
        )
        return eqx.tree_at(lambda s: s.positions, state, positions)

    def _key(self, state: MDState):
        if state.key is None:
            raise ConfigurationError(
                f"{type(self).__name__} is stochastic and needs a PRNG key in the state: "
                "create it with stepper.init(positions, velocities, neighbors, "
                "key=jax.random.key(0))"
            )
        return jax.random.split(state.key)


def _reject_extra_arguments(owner: str, **arguments) -> None:
    """``init(state, ...)`` with a state already built: extra arguments would be ignored."""
    given = sorted(name for name, value in arguments.items() if value is not None)
    if given:
        raise ConfigurationError(
            f"{owner}.init got a state that is already initialised and also "
            f"{', '.join(given)}; pass either positions (with {', '.join(given)}) or a state "
            "alone"
        )


def _init_overflow_message(neighbors: AbstractNeighborList, box: AbstractBox) -> str:
    covered = concrete_or_none(neighbors.covers(box))
    if covered is not None and not bool(covered):
        return (
            "the neighbour list was built for another box: its static cell grid no longer "
            f"reaches cutoff + skin = {neighbors.list_radius:g} sigma in this box (a box "
            "shorter than twice the cutoff, or one that shrank since the list was built). "
            "Rebuild it for this box with hybrax.md.neighbor_list(positions, box, cutoff) or "
            "neighbors.grow(positions, box)"
        )
    return (
        "the neighbour list is too small for these positions (overflow); build it from them "
        "with hybrax.md.neighbor_list(positions, box, cutoff) or neighbors.grow(positions, box)"
    )


@eqx.filter_jit
def _initial_evaluation(energy, box, positions, neighbors):
    if neighbors is not None:
        neighbors = neighbors.update(positions, box)
    e, f = energy.energy_and_forces(positions, neighbors, box)
    return neighbors, e, f


def _check_finite_energy(energy, forces, positions, box) -> None:
    e, f = concrete_or_none(energy), concrete_or_none(forces)
    if e is None or f is None:
        return
    e = float(e)
    if np.isfinite(e) and np.all(np.isfinite(f)):
        return
    p = np.asarray(positions, dtype=np.float64)
    if not np.all(np.isfinite(p)):
        raise ConfigurationError("positions contain NaN or inf")
    d = p[:, None, :] - p[None, :, :] if p.shape[0] <= 4096 else None
    detail = ""
    if d is not None:
        if isinstance(box, PeriodicBox):
            lengths = np.asarray(box.lengths, np.float64)
            d -= lengths * np.round(d / lengths)
        r = np.sqrt(np.sum(d * d, axis=-1))
        np.fill_diagonal(r, np.inf)
        i, j = np.unravel_index(np.argmin(r), r.shape)
        detail = f" (the closest pair is atoms {i} and {j} at distance {r[i, j]:.3g} sigma)"
    raise ConfigurationError(
        f"the initial potential energy is not finite ({e}): particles overlap{detail}, or "
        "a parameter of the energy is not finite. Start from a lattice (hybrax.md.lattice), "
        "relax a random packing (hybrax.md.random_packing), or minimise first with "
        "hybrax.md.minimize"
    )


class VelocityVerlet(AbstractMDStepper):
    """NVE molecular dynamics: velocity Verlet (symplectic, second order, time-reversible).

    .. math::
        v_{1/2} = v + \\frac{dt}{2m} F(x), \\quad x' = x + dt\\, v_{1/2}, \\quad
        v' = v_{1/2} + \\frac{dt}{2m} F(x')

    Conserves total momentum to round-off and total energy up to a bounded fluctuation of
    order ``dt^2`` (plus the drift caused by a discontinuous cut-off).

    Parameters
    ----------
    energy
        The potential (any `AbstractEnergy`).
    box
        `PeriodicBox` or `FreeSpace`.
    dt
        Time step (tau), positive and finite, e.g. 0.005 for LJ.
    masses
        Positive scalar or ``(N,)`` masses (m), default 1; differentiable.
    on_overflow
        ``"raise"`` (default) or ``"flag"`` (see `AbstractMDStepper`).
    max_displacement
        Instability limit (sigma): a step that moves some atom farther (``max |v| dt``)
        raises `hybrax.InstabilityError`. Default None: the larger of the neighbour list's
        skin and half its cut-off (1 sigma without a list); ``float("inf")`` disables it.

    Examples
    --------
    >>> import jax, hybrax
    >>> import hybrax.md as md
    >>> positions, box = md.lattice("fcc", (4, 4, 4), density=0.8442)
    >>> nbrs = md.neighbor_list(positions, box, cutoff=2.5)
    >>> stepper = md.VelocityVerlet(md.LennardJones(), box, dt=0.005)
    >>> v = md.maxwell_boltzmann(jax.random.key(0), positions.shape[0], temperature=1.0)
    >>> state = stepper.init(positions, v, nbrs)
    >>> final, energies = hybrax.rollout(stepper, state, 100, save_every=10,
    ...     observe=lambda s: md.total_energy(s, stepper.masses))
    """

    energy: AbstractEnergy
    box: AbstractBox
    dt: Array = eqx.field(converter=time_step)
    masses: Array = eqx.field(
        default=1.0, converter=_checked("masses", positive=True, example="masses=1.0")
    )
    on_overflow: OnOverflow = eqx.field(static=True, default="raise", converter=_on_overflow)
    max_displacement: float | None = eqx.field(
        static=True, default=None, converter=_max_displacement
    )

    def step(self, state: MDState) -> MDState:
        x, v = state.positions, state.velocities
        dt = _scalar(self.dt, x)
        inv_m = self._inverse_mass(x)
        v = v + 0.5 * dt * state.forces * inv_m
        x = self.box.shift(x, dt * v)
        neighbors, energy, forces = self._evaluate(x, state.neighbors)
        v = v + 0.5 * dt * forces * inv_m
        new = MDState(x, v, forces, energy, neighbors, state.key, state.time + dt, state.thermostat)
        return self._guard(new)
