"""MD integrators (Steppers): NVE velocity Verlet, Langevin BAOAB, Nosé–Hoover chain,
Brownian dynamics."""

import abc
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from equinox import AbstractVar
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from hybrax.core import AbstractStepper

from ._energy import AbstractEnergy
from ._neighbors import NeighborList, _check_inside, _check_positions_shape
from ._space import AbstractBox, PeriodicBox
from ._state import MDState, NoseHooverChainState

__all__ = [
    "AbstractMDStepper",
    "BrownianDynamics",
    "LangevinBAOAB",
    "NoseHooverChain",
    "VelocityVerlet",
]

OnOverflow = Literal["raise", "flag"]

_OVERFLOW = (
    "hybrax.md: neighbour-list overflow. A rebuilt list needed more room than its static "
    "capacity, so some pairs would be missed and the forces would be wrong. Run with "
    "hybrax.md.simulate (it grows the list and re-runs the chunk), or rebuild the list with "
    "state.neighbors.grow(state.positions, box) and start again."
)


def _scalar(value, like: Array) -> Array:
    return jnp.asarray(value).astype(like.dtype)


class AbstractMDStepper(AbstractStepper):
    """A molecular-dynamics integrator over an energy in a box.

    Concrete steppers hold ``energy`` (an `AbstractEnergy`), ``box``, ``dt`` (tau),
    ``masses`` (scalar or ``(N,)``, differentiable) and ``on_overflow``: ``"raise"`` (the
    default: a neighbour-list overflow raises at run time, also inside `jax.jit` and
    `hybrax.rollout`) or ``"flag"`` (the overflow is only recorded in
    ``state.neighbors.overflow``; `hybrax.md.simulate` uses this and regrows the list).

    The neighbour list in the state is rebuilt inside the step whenever an atom has moved
    more than half the skin (a `jax.lax.cond`, no host round trip).
    """

    energy: AbstractVar[AbstractEnergy]
    box: AbstractVar[AbstractBox]
    masses: AbstractVar[Array]
    on_overflow: AbstractVar[OnOverflow]

    @abc.abstractmethod
    def step(self, state: MDState) -> MDState:
        """Advance by ``dt``."""

    def init(
        self,
        positions: Float[Array, "N 3"],
        velocities: Float[Array, "N 3"] | None = None,
        neighbors: NeighborList | None = None,
        key: PRNGKeyArray | None = None,
    ) -> MDState:
        """The initial state: forces and energy at ``positions`` (velocities default 0).

        Checks the input and fails with a message saying what is wrong: positions of the
        wrong shape or outside the periodic box, overlapping atoms (infinite energy),
        velocities of the wrong shape, a neighbour list built for another system.
        """
        positions = jnp.asarray(positions)
        _check_positions_shape(positions)
        if isinstance(self.box, PeriodicBox):
            _check_inside(positions, self.box.lengths)
        velocities = jnp.zeros_like(positions) if velocities is None else jnp.asarray(velocities)
        if velocities.shape != positions.shape:
            raise ValueError(
                f"velocities must have the positions' shape {positions.shape}, got "
                f"{velocities.shape}"
            )
        velocities = velocities.astype(positions.dtype)
        if neighbors is not None:
            if neighbors.num_atoms != positions.shape[0]:
                raise ValueError(
                    f"the neighbour list was built for {neighbors.num_atoms} atoms, the "
                    f"positions have {positions.shape[0]}"
                )
            cutoff = self.energy.required_cutoff
            if cutoff is not None and cutoff > neighbors.cutoff + 1e-12:
                raise ValueError(
                    f"the energy needs pairs up to {cutoff} but the neighbour list was built "
                    f"for cutoff {neighbors.cutoff}; build it with cutoff={cutoff}"
                )
        elif self.energy.required_cutoff is not None:
            raise ValueError(
                f"{type(self.energy).__name__} has pair terms and needs a neighbour list: "
                "pass neighbors=hybrax.md.neighbor_list(positions, box, cutoff)"
            )
        neighbors, energy, forces = _initial_evaluation(self.energy, self.box, positions, neighbors)
        if neighbors is not None:
            try:
                overflowed = bool(neighbors.overflow)
            except jax.errors.ConcretizationTypeError:
                overflowed = False  # traced (init under vmap/jit): the step's guard catches it
            if overflowed:
                raise ValueError(
                    "the neighbour list is too small for these positions (overflow); build it "
                    "from them with hybrax.md.neighbor_list(positions, box, cutoff) or "
                    "neighbors.grow(positions, box)"
                )
        _check_finite_energy(energy, forces, positions, self.box)
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

    def _init_thermostat(self, positions) -> NoseHooverChainState | None:
        return None

    # helpers ------------------------------------------------------------------
    def _inverse_mass(self, like: Array) -> Array:
        m = jnp.asarray(self.masses).astype(like.dtype)
        return (1.0 / m)[..., None] if m.ndim == 1 else 1.0 / m

    def _evaluate(self, positions, neighbors):
        if neighbors is not None:
            neighbors = neighbors.maybe_update(positions, self.box)
        energy, forces = self.energy.energy_and_forces(positions, neighbors, self.box)
        return neighbors, energy, forces

    def _guard(self, state: MDState) -> MDState:
        if self.on_overflow == "raise" and state.neighbors is not None:
            positions = eqx.error_if(state.positions, state.neighbors.overflow, _OVERFLOW)
            state = eqx.tree_at(lambda s: s.positions, state, positions)
        return state

    def _key(self, state: MDState):
        if state.key is None:
            raise ValueError(
                f"{type(self).__name__} is stochastic and needs a PRNG key in the state: "
                "create it with stepper.init(positions, velocities, neighbors, "
                "key=jax.random.key(0))"
            )
        return jax.random.split(state.key)


@eqx.filter_jit
def _initial_evaluation(energy, box, positions, neighbors):
    if neighbors is not None:
        neighbors = neighbors.update(positions, box)
    e, f = energy.energy_and_forces(positions, neighbors, box)
    return neighbors, e, f


def _check_finite_energy(energy, forces, positions, box) -> None:
    import numpy as np

    try:
        e = float(energy)
        f = np.asarray(forces)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return
    if np.isfinite(e) and np.all(np.isfinite(f)):
        return
    p = np.asarray(positions, dtype=np.float64)
    d = p[:, None, :] - p[None, :, :] if p.shape[0] <= 4096 else None
    detail = ""
    if d is not None:
        if isinstance(box, PeriodicBox):
            lengths = np.asarray(box.lengths, np.float64)
            d -= lengths * np.round(d / lengths)
        r = np.sqrt(np.sum(d * d, axis=-1))
        np.fill_diagonal(r, np.inf)
        i, j = np.unravel_index(np.argmin(r), r.shape)
        detail = f"; the closest pair is atoms {i} and {j} at distance {r[i, j]:.3g} sigma"
    raise ValueError(
        f"the initial potential energy is not finite ({e}): particles overlap{detail}. "
        "Start from a lattice (hybrax.md.lattice), relax a random packing "
        "(hybrax.md.random_packing), or minimise first with hybrax.md.minimize"
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
        Time step (tau), e.g. 0.005 for LJ.
    masses
        Scalar or ``(N,)`` masses (m), default 1; differentiable.
    on_overflow
        ``"raise"`` (default) or ``"flag"`` (see `AbstractMDStepper`).

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
    dt: ArrayLike
    masses: Array = eqx.field(converter=jnp.asarray, default=1.0)
    on_overflow: OnOverflow = eqx.field(static=True, default="raise")

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


class LangevinBAOAB(AbstractMDStepper):
    """NVT Langevin dynamics with the BAOAB splitting (Leimkuhler & Matthews 2013).

    .. math::
        dv = \\frac{F}{m} dt - \\gamma v\\, dt + \\sqrt{2 \\gamma k_B T / m}\\, dW

    B: half kick, A: half drift, O: exact Ornstein–Uhlenbeck velocity update
    ``v <- c v + sqrt((1 - c^2) kT / m) xi`` with ``c = exp(-gamma dt)``, A, force, B.
    Configurational averages are accurate to second order in ``dt``. The random numbers
    come from ``state.key`` (split every step), so runs are reproducible.

    Parameters
    ----------
    energy, box, dt, masses, on_overflow
        As in `VelocityVerlet`.
    temperature
        Target ``k_B T`` (epsilon); differentiable.
    friction
        ``gamma`` (1/tau), default 1; differentiable.

    Examples
    --------
    >>> import jax, hybrax.md as md
    >>> positions, box = md.lattice("fcc", (4, 4, 4), density=0.8442)
    >>> stepper = md.LangevinBAOAB(md.LennardJones(), box, dt=0.005, temperature=1.5)
    >>> state = stepper.init(positions, None, md.neighbor_list(positions, box, 2.5),
    ...     key=jax.random.key(0))
    """

    energy: AbstractEnergy
    box: AbstractBox
    dt: ArrayLike
    temperature: Array = eqx.field(converter=jnp.asarray)
    friction: Array = eqx.field(converter=jnp.asarray, default=1.0)
    masses: Array = eqx.field(converter=jnp.asarray, default=1.0)
    on_overflow: OnOverflow = eqx.field(static=True, default="raise")

    def step(self, state: MDState) -> MDState:
        x, v = state.positions, state.velocities
        key, noise_key = self._key(state)
        dt = _scalar(self.dt, x)
        inv_m = self._inverse_mass(x)
        kT = _scalar(self.temperature, x)
        c = jnp.exp(-_scalar(self.friction, x) * dt)
        v = v + 0.5 * dt * state.forces * inv_m
        x = self.box.shift(x, 0.5 * dt * v)
        noise = jax.random.normal(noise_key, v.shape, v.dtype)
        v = c * v + jnp.sqrt((1.0 - c * c) * kT * inv_m) * noise
        x = self.box.shift(x, 0.5 * dt * v)
        neighbors, energy, forces = self._evaluate(x, state.neighbors)
        v = v + 0.5 * dt * forces * inv_m
        new = MDState(x, v, forces, energy, neighbors, key, state.time + dt, state.thermostat)
        return self._guard(new)


class NoseHooverChain(AbstractMDStepper):
    """NVT molecular dynamics with a Nosé–Hoover chain thermostat (Martyna, Klein &
    Tuckerman 1992), integrated with the Trotter splitting of Martyna et al. (1996):
    a thermostat half step, velocity Verlet, another thermostat half step.

    Deterministic; the extended energy `nose_hoover_energy` is conserved, and the kinetic
    temperature fluctuates around ``temperature`` with relaxation time about ``tau``.

    Parameters
    ----------
    energy, box, dt, masses, on_overflow
        As in `VelocityVerlet`.
    temperature
        Target ``k_B T`` (epsilon); differentiable.
    tau
        Thermostat period (tau), default ``100 dt``-ish values such as 0.5; differentiable.
    chain_length
        Number of links ``M`` (static), default 3.
    degrees_of_freedom
        ``N_f`` (static); default ``3 N - 3`` (momentum conserved).

    Examples
    --------
    >>> import hybrax.md as md
    >>> positions, box = md.lattice("fcc", (4, 4, 4), density=0.8442)
    >>> stepper = md.NoseHooverChain(md.LennardJones(), box, dt=0.005, temperature=1.5,
    ...     tau=0.5)
    """

    energy: AbstractEnergy
    box: AbstractBox
    dt: ArrayLike
    temperature: Array = eqx.field(converter=jnp.asarray)
    tau: Array = eqx.field(converter=jnp.asarray, default=0.5)
    chain_length: int = eqx.field(static=True, default=3)
    degrees_of_freedom: int | None = eqx.field(static=True, default=None)
    masses: Array = eqx.field(converter=jnp.asarray, default=1.0)
    on_overflow: OnOverflow = eqx.field(static=True, default="raise")

    def __check_init__(self):
        if not (isinstance(self.chain_length, int) and self.chain_length >= 1):
            raise ValueError(f"chain_length must be an int >= 1, got {self.chain_length!r}")

    def _init_thermostat(self, positions):
        zeros = jnp.zeros(self.chain_length, positions.dtype)
        return NoseHooverChainState(zeros, zeros)

    def _dof(self, positions) -> int:
        if self.degrees_of_freedom is not None:
            return self.degrees_of_freedom
        return 3 * positions.shape[0] - 3

    def chain_masses(self, positions: Array) -> Array:
        """Thermostat masses ``Q_1 = N_f kT tau^2``, ``Q_k = kT tau^2``."""
        kT = _scalar(self.temperature, positions)
        tau = _scalar(self.tau, positions)
        q = jnp.full(self.chain_length, 1.0, positions.dtype) * kT * tau * tau
        return q.at[0].multiply(self._dof(positions))

    def _half_step(self, v, chain: NoseHooverChainState, inv_m, dt):
        """Propagate the chain and scale velocities over ``dt / 2``."""
        m = self.chain_length
        kT = _scalar(self.temperature, v)
        q = self.chain_masses(v)
        dof = self._dof(v)
        xi, vxi = chain.positions, chain.velocities
        kinetic2 = jnp.sum(v * v / inv_m)  # sum m v^2
        quarter, eighth = 0.25 * dt, 0.125 * dt

        def force(k, vxi, kinetic2):
            if k == 0:
                return (kinetic2 - dof * kT) / q[0]
            return (q[k - 1] * vxi[k - 1] ** 2 - kT) / q[k]

        vxi = vxi.at[m - 1].add(quarter * force(m - 1, vxi, kinetic2))
        for k in range(m - 2, -1, -1):
            scale = jnp.exp(-eighth * vxi[k + 1])
            vxi = vxi.at[k].set(vxi[k] * scale)
            vxi = vxi.at[k].add(quarter * force(k, vxi, kinetic2))
            vxi = vxi.at[k].set(vxi[k] * scale)
        xi = xi + 0.5 * dt * vxi
        scale = jnp.exp(-0.5 * dt * vxi[0])
        v = v * scale
        kinetic2 = kinetic2 * scale * scale
        for k in range(m - 1):
            scale = jnp.exp(-eighth * vxi[k + 1])
            vxi = vxi.at[k].set(vxi[k] * scale)
            vxi = vxi.at[k].add(quarter * force(k, vxi, kinetic2))
            vxi = vxi.at[k].set(vxi[k] * scale)
        vxi = vxi.at[m - 1].add(quarter * force(m - 1, vxi, kinetic2))
        return v, NoseHooverChainState(xi, vxi)

    def step(self, state: MDState) -> MDState:
        if state.thermostat is None:
            raise ValueError(
                "NoseHooverChain needs thermostat variables in the state: create it with "
                "this stepper's init(...)"
            )
        x = state.positions
        dt = _scalar(self.dt, x)
        inv_m = self._inverse_mass(x)
        v, chain = self._half_step(state.velocities, state.thermostat, inv_m, dt)
        v = v + 0.5 * dt * state.forces * inv_m
        x = self.box.shift(x, dt * v)
        neighbors, energy, forces = self._evaluate(x, state.neighbors)
        v = v + 0.5 * dt * forces * inv_m
        v, chain = self._half_step(v, chain, inv_m, dt)
        new = MDState(x, v, forces, energy, neighbors, state.key, state.time + dt, chain)
        return self._guard(new)

    def extended_energy(self, state: MDState) -> Array:
        """The conserved quantity: kinetic + potential + thermostat energy (epsilon)."""
        x = state.positions
        kT = _scalar(self.temperature, x)
        q = self.chain_masses(x)
        inv_m = self._inverse_mass(x)
        kinetic = 0.5 * jnp.sum(state.velocities**2 / inv_m)
        chain = state.thermostat
        thermo = 0.5 * jnp.sum(q * chain.velocities**2)
        thermo = thermo + self._dof(x) * kT * chain.positions[0]
        thermo = thermo + kT * jnp.sum(chain.positions[1:])
        return kinetic + state.potential_energy + thermo


class BrownianDynamics(AbstractMDStepper):
    """Overdamped Langevin (Brownian) dynamics, Euler–Maruyama.

    .. math::
        x' = x + \\frac{dt}{\\gamma m} F(x) + \\sqrt{\\frac{2 k_B T\\, dt}{\\gamma m}}\\,\\xi

    The diffusion coefficient of a free particle is ``D = kT / (gamma m)``; the stationary
    distribution is Boltzmann's ``exp(-U / kT)`` (to first order in ``dt``). Velocities
    are not used; the state keeps the last displacement divided by ``dt``.

    Parameters
    ----------
    energy, box, dt, masses, on_overflow
        As in `VelocityVerlet`.
    temperature
        ``k_B T`` (epsilon); differentiable.
    friction
        ``gamma`` (1/tau), default 1; differentiable.

    Examples
    --------
    >>> import jax, hybrax.md as md
    >>> positions, box = md.lattice("sc", (6, 6, 6), density=0.3)
    >>> stepper = md.BrownianDynamics(md.SoftSphere(), box, dt=1e-3, temperature=1.0)
    """

    energy: AbstractEnergy
    box: AbstractBox
    dt: ArrayLike
    temperature: Array = eqx.field(converter=jnp.asarray)
    friction: Array = eqx.field(converter=jnp.asarray, default=1.0)
    masses: Array = eqx.field(converter=jnp.asarray, default=1.0)
    on_overflow: OnOverflow = eqx.field(static=True, default="raise")

    def step(self, state: MDState) -> MDState:
        x = state.positions
        key, noise_key = self._key(state)
        dt = _scalar(self.dt, x)
        mobility = self._inverse_mass(x) / _scalar(self.friction, x)
        kT = _scalar(self.temperature, x)
        noise = jax.random.normal(noise_key, x.shape, x.dtype)
        dx = dt * mobility * state.forces + jnp.sqrt(2.0 * kT * dt * mobility) * noise
        x = self.box.shift(x, dx)
        neighbors, energy, forces = self._evaluate(x, state.neighbors)
        new = MDState(x, dx / dt, forces, energy, neighbors, key, state.time + dt, state.thermostat)
        return self._guard(new)
