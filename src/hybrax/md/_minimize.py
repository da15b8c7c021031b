"""FIRE energy minimisation (Bitzek et al., Phys. Rev. Lett. 97, 170201, 2006)."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, ArrayLike, Float, Int

from hybrax.core import (
    AbstractStepper,
    ConfigurationError,
    NonFiniteStateError,
    concrete_or_none,
    time_step,
)

from ._energy import AbstractEnergy
from ._neighbors import AbstractNeighborList, _check_positions_shape, _static_length
from ._space import AbstractBox

__all__ = ["FIRE", "FIREState", "MinimizeResult", "minimize"]


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _optional_dt_max(value):
    return None if value is None else time_step(value, "dt_max")


class FIREState(eqx.Module):
    """State of a FIRE minimisation: MD variables plus the adaptive ``dt`` and mixing
    ``alpha``, and the number of steps since the power ``F . v`` was last negative."""

    positions: Float[Array, "N 3"]
    velocities: Float[Array, "N 3"]
    forces: Float[Array, "N 3"]
    potential_energy: Float[Array, ""]
    neighbors: AbstractNeighborList | None
    dt: Float[Array, ""]
    alpha: Float[Array, ""]
    steps_since_negative: Int[Array, ""]


class FIRE(AbstractStepper):
    """Fast inertial relaxation engine: damped MD that steers velocities along the force.

    Each step is a velocity-Verlet step with unit masses followed by the FIRE mixing
    ``v <- (1 - alpha) v + alpha |v| F / |F|``; while the power ``P = F . v`` stays positive
    for more than ``n_min`` steps the step grows (``dt * f_inc`` up to ``dt_max``) and
    ``alpha`` shrinks (``* f_alpha``); when ``P <= 0`` velocities are zeroed, ``dt`` is cut
    (``* f_dec``) and ``alpha`` reset. ``dt`` here is the initial step.

    Parameters
    ----------
    energy, box
        What to minimise, and where.
    dt
        Initial step (tau), default 0.005; ``dt_max`` default 10 times that.
    n_min, f_inc, f_dec, alpha_start, f_alpha
        Bitzek et al.'s constants (defaults 5, 1.1, 0.5, 0.1, 0.99).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import hybrax.md as md
    >>> positions = jnp.array([[0.0, 0.0, 0.0], [1.5, 0.0, 0.0]])
    >>> nbrs = md.DenseNeighborList.build(positions, md.FreeSpace(), cutoff=2.5)
    >>> result = md.minimize(md.LennardJones(cutoff=2.5), positions, md.FreeSpace(), nbrs)
    >>> round(float(jnp.linalg.norm(result.positions[1] - result.positions[0])), 4)
    1.1225
    """

    energy: AbstractEnergy
    box: AbstractBox
    dt: Array = eqx.field(default=0.005, converter=time_step)
    dt_max: Array | None = eqx.field(default=None, converter=_optional_dt_max)
    n_min: int = eqx.field(static=True, default=5)
    f_inc: float = eqx.field(static=True, default=1.1)
    f_dec: float = eqx.field(static=True, default=0.5)
    alpha_start: float = eqx.field(static=True, default=0.1)
    f_alpha: float = eqx.field(static=True, default=0.99)

    def __check_init__(self):
        if not isinstance(self.energy, AbstractEnergy):
            raise ConfigurationError(
                f"FIRE: energy must be a hybrax.md energy (e.g. hybrax.md.LennardJones()), got "
                f"{self.energy!r}"
            )
        if not isinstance(self.box, AbstractBox):
            raise ConfigurationError(
                f"FIRE: box must be a hybrax.md.PeriodicBox or FreeSpace, got {self.box!r}"
            )
        if not _is_int(self.n_min) or self.n_min < 0:
            raise ConfigurationError(f"FIRE: n_min must be an int >= 0, got {self.n_min!r}")
        rules = {
            "f_inc": (lambda x: x >= 1.0, ">= 1 (the step grows while the power is positive)"),
            "f_dec": (lambda x: 0.0 < x < 1.0, "in (0, 1) (the step shrinks after an uphill move)"),
            "alpha_start": (lambda x: 0.0 < x <= 1.0, "in (0, 1]"),
            "f_alpha": (lambda x: 0.0 < x <= 1.0, "in (0, 1]"),
        }
        for name, (ok, rule) in rules.items():
            value = _static_length(getattr(self, name), name, positive=True, example=rule)
            if not ok(value):
                raise ConfigurationError(f"FIRE: {name} must be {rule}, got {value!r}")

    def init(
        self,
        positions: Float[Array, "N 3"] | FIREState,
        neighbors: AbstractNeighborList | None = None,
    ) -> FIREState:
        """Start from rest at ``positions``; given a `FIREState` (alone), return it unchanged
        (``init`` is idempotent, so `hybrax.rollout` may start from either)."""
        if isinstance(positions, FIREState):
            if neighbors is not None:
                raise ConfigurationError(
                    "FIRE.init got a state that is already initialised and also neighbors; "
                    "pass either positions (with neighbors) or a state alone"
                )
            return positions
        positions = jnp.asarray(positions)
        _check_positions_shape(positions)
        if neighbors is not None:
            neighbors = neighbors.update(positions, self.box)
        energy, forces = self.energy.energy_and_forces(positions, neighbors, self.box)
        dtype = positions.dtype
        return FIREState(
            positions,
            jnp.zeros_like(positions),
            forces,
            energy,
            neighbors,
            jnp.asarray(self.dt, dtype),
            jnp.asarray(self.alpha_start, dtype),
            jnp.zeros((), jnp.int32),
        )

    def step(self, state: FIREState) -> FIREState:
        x, v, dt = state.positions, state.velocities, state.dt
        dt_max = (
            10.0 * jnp.asarray(self.dt).astype(x.dtype)
            if self.dt_max is None
            else (jnp.asarray(self.dt_max).astype(x.dtype))
        )
        v = v + 0.5 * dt * state.forces
        x = self.box.shift(x, dt * v)
        neighbors = state.neighbors
        if neighbors is not None:
            neighbors = neighbors.maybe_update(x, self.box)
        energy, forces = self.energy.energy_and_forces(x, neighbors, self.box)
        v = v + 0.5 * dt * forces
        power = jnp.sum(forces * v)
        v_norm = jnp.sqrt(jnp.sum(v * v))
        f_norm = jnp.sqrt(jnp.sum(forces * forces))
        alpha = state.alpha
        safe = jnp.where(f_norm > 0, f_norm, 1.0)
        v = (1.0 - alpha) * v + alpha * v_norm * forces / safe
        positive = power > 0
        count = jnp.where(positive, state.steps_since_negative + 1, 0)
        accelerate = positive & (count > self.n_min)
        dt = jnp.where(accelerate, jnp.minimum(dt * self.f_inc, dt_max), dt)
        dt = jnp.where(positive, dt, dt * self.f_dec)
        alpha = jnp.where(accelerate, alpha * self.f_alpha, alpha)
        alpha = jnp.where(positive, alpha, jnp.asarray(self.alpha_start, alpha.dtype))
        v = jnp.where(positive, v, jnp.zeros_like(v))
        return FIREState(x, v, forces, energy, neighbors, dt, alpha, count)


class MinimizeResult(eqx.Module):
    """Outcome of `minimize`: final positions, energy, largest force component, number of
    steps and whether ``max |F| <= force_tolerance`` was reached."""

    positions: Float[Array, "N 3"]
    potential_energy: Float[Array, ""]
    max_force: Float[Array, ""]
    num_steps: Int[Array, ""]
    converged: Array
    neighbors: AbstractNeighborList | None


def minimize(
    energy: AbstractEnergy,
    positions: Float[Array, "N 3"],
    box: AbstractBox,
    neighbors: AbstractNeighborList | None = None,
    *,
    force_tolerance: float = 1e-6,
    max_steps: int = 10_000,
    dt: ArrayLike = 0.005,
    require_convergence: bool = True,
) -> MinimizeResult:
    """Relax ``positions`` to a local energy minimum with `FIRE` (jit-compatible).

    Runs FIRE steps in a `jax.lax.while_loop` until the largest force component is at most
    ``force_tolerance`` (epsilon / sigma) or ``max_steps`` steps were taken. (Reverse-mode
    gradients cannot pass through the while loop; use the implicit function theorem or a
    fixed number of `FIRE` steps with `hybrax.rollout` for that.)

    Parameters
    ----------
    energy, positions, box, neighbors
        What to minimise, where, and a neighbour list for pair terms (or None).
    force_tolerance
        Convergence threshold on ``max |F_i,a|``.
    max_steps
        Step budget.
    dt
        FIRE's initial step.
    require_convergence
        If True (default), missing ``force_tolerance`` within ``max_steps`` raises a
        `hybrax.ConfigurationError` with the steps taken and the largest force left; if
        False the result comes back with ``converged`` False (a fixed budget of relaxation
        steps). Non-finite positions or energy always raise `hybrax.NonFiniteStateError`.
        Under an outer `jax.jit` both are run-time errors.

    Returns
    -------
    MinimizeResult
    """
    if isinstance(max_steps, bool) or not _is_int(max_steps) or max_steps < 0:
        raise ConfigurationError(f"max_steps must be an int >= 0, got {max_steps!r}")
    force_tolerance = _static_length(
        force_tolerance, "force_tolerance", positive=False, example="force_tolerance=1e-6"
    )
    if neighbors is not None and not isinstance(neighbors, AbstractNeighborList):
        raise ConfigurationError(
            "neighbors must be a hybrax.md neighbour list (hybrax.md.neighbor_list) or None, "
            f"got {type(neighbors).__name__}"
        )
    if not isinstance(require_convergence, (bool, np.bool_)):
        raise ConfigurationError(
            f"require_convergence must be True or False, got {require_convergence!r}"
        )
    fire = FIRE(energy, box, dt=dt)
    result = _minimize(fire, positions, neighbors, force_tolerance, int(max_steps))
    largest = concrete_or_none(result.max_force)
    energy_value = concrete_or_none(result.potential_energy)
    if largest is None or energy_value is None:  # traced: the same checks at run time
        final = eqx.error_if(
            result.positions,
            ~(jnp.isfinite(result.max_force) & jnp.isfinite(result.potential_energy)),
            "NonFiniteStateError: hybrax.md.minimize: the energy or forces became non-finite "
            "(overlapping atoms, or a dt too large for the forces)",
        )
        if require_convergence:
            final = eqx.error_if(
                final,
                ~result.converged,
                "hybrax.md.minimize: force_tolerance not reached within max_steps; raise "
                "max_steps or pass require_convergence=False",
            )
        return eqx.tree_at(lambda r: r.positions, result, final)
    if not (np.isfinite(largest) and np.isfinite(energy_value)):
        raise NonFiniteStateError(
            f"minimize: the energy or forces became non-finite (energy {float(energy_value)}, "
            f"largest force {float(largest)}) after {int(result.num_steps)} FIRE steps; "
            "overlapping atoms or a dt too large for the forces (try dt=0.001)"
        )
    if require_convergence and not bool(result.converged):
        raise ConfigurationError(
            f"minimize: the largest force component is {float(largest):.3g} after "
            f"max_steps={int(max_steps)} FIRE steps, above force_tolerance="
            f"{float(force_tolerance):g}; raise max_steps, loosen force_tolerance, or pass "
            "require_convergence=False to take the unconverged result"
        )
    return result


@eqx.filter_jit
def _minimize(fire, positions, neighbors, force_tolerance, max_steps):
    state = fire.init(positions, neighbors)
    tol = jnp.asarray(force_tolerance, state.positions.dtype)

    def max_force(s):
        return jnp.max(jnp.abs(s.forces))

    def cond(carry):
        s, n = carry
        return (max_force(s) > tol) & (n < max_steps)

    def body(carry):
        s, n = carry
        return fire.step(s), n + 1

    state, steps = lax.while_loop(cond, body, (state, jnp.zeros((), jnp.int32)))
    f = max_force(state)
    final = state.positions
    if state.neighbors is not None:
        final = eqx.error_if(
            final,
            state.neighbors.overflow,
            "NeighborListError: hybrax.md.minimize: neighbour-list overflow (the configuration "
            "changed too much for the list's capacity, or the list was built for another "
            "box); rebuild it with neighbors.grow(positions, box) and minimise again",
        )
    return MinimizeResult(final, state.potential_energy, f, steps, f <= tol, state.neighbors)
