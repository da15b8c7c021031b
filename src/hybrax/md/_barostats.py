"""NPT molecular dynamics: the Martyna–Tobias–Klein barostat with Nosé–Hoover chains
(Martyna, Tobias & Klein 1994), integrated with the measure-preserving Trotter
factorisation of Tuckerman, Alejandre, López-Rendón, Jochim & Martyna (2006), in Cartesian
coordinates, for orthorhombic periodic boxes (isotropic or independent axes) and for triclinic
boxes with a fully flexible cell."""

from __future__ import annotations

import dataclasses
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, PRNGKeyArray

from hybrax.core import ConfigurationError, concrete_or_none, time_step

from . import _nose_hoover as nhc
from ._energy import AbstractEnergy, SumEnergy
from ._integrators import (
    AbstractMDStepper,
    OnOverflow,
    _checked,
    _max_displacement,
    _on_overflow,
    _scalar,
)
from ._neighbors import AbstractNeighborList
from ._pair import AbstractPairEnergy
from ._space import AbstractBox, PeriodicBox
from ._state import BarostatState, MDState
from ._stress import strain_gradients
from ._triclinic import TriclinicBox

__all__ = ["MartynaTobiasKlein", "TriclinicBarostatState"]

Couple = Literal["iso", "aniso", "full"]

# Voigt order of the six strain rates and virials of a fully flexible cell, and the
# (row, column) of each in the lower-triangular row-vector matrices used here
_VOIGT = ((0, 0), (1, 1), (2, 2), (2, 1), (2, 0), (1, 0))  # xx, yy, zz, yz, xz, xy
_ROWS = np.asarray([i for i, _ in _VOIGT])
_COLUMNS = np.asarray([j for _, j in _VOIGT])


def _couple(value) -> str:
    if value not in ("iso", "aniso", "full"):
        raise ConfigurationError(
            f'couple must be "iso" (one volume, cubic scaling), "aniso" (independent '
            f'orthorhombic axes) or "full" (a fully flexible triclinic cell), got {value!r}'
        )
    return value


class TriclinicBarostatState(BarostatState):
    """Barostat variables of a fully flexible NPT run (``couple="full"``): the evolving
    cell is LAMMPS's restricted triclinic box, rows ``a = (lx, 0, 0)``, ``b = (xy, ly, 0)``,
    ``c = (xz, yz, lz)`` (`hybrax.md.TriclinicBox.from_lammps`), held as the side
    ``lengths`` ``(lx, ly, lz)`` and the ``tilts`` ``(xy, xz, yz)`` (sigma), with the same
    for the cell of the last neighbour-list build (``reference_lengths``,
    ``reference_tilts``). The six strain rates ``velocities`` (1/tau) and the six
    components of the ``virial`` ``-dU/d strain`` (epsilon) are in Voigt order ``xx, yy,
    zz, yz, xz, xy``; the other fields are those of `BarostatState`."""

    tilts: Float[Array, "3"]
    reference_tilts: Float[Array, "3"]

    @property
    def cell(self) -> Float[Array, "3 3"]:
        """The cell matrix, lattice vectors as rows (lower triangular)."""
        return _cell(self.lengths, self.tilts)


def _cell(lengths: Array, tilts: Array) -> Array:
    """Lower-triangular cell (rows ``a, b, c``) from ``(lx, ly, lz)`` and ``(xy, xz, yz)``."""
    zero = jnp.zeros_like(lengths[0])
    lx, ly, lz = lengths
    xy, xz, yz = tilts
    return jnp.stack(
        [jnp.stack([lx, zero, zero]), jnp.stack([xy, ly, zero]), jnp.stack([xz, yz, lz])]
    )


def _lower(voigt: Array) -> Array:
    """The lower-triangular 3x3 matrix of six Voigt components (``xx, yy, zz, yz, xz, xy``
    at ``[0,0], [1,1], [2,2], [2,1], [2,0], [1,0]``)."""
    return jnp.zeros((3, 3), voigt.dtype).at[_ROWS, _COLUMNS].set(voigt)


def _voigt(matrix: Array) -> Array:
    """Six Voigt components of a (symmetric or lower-triangular) 3x3 matrix."""
    return matrix[_ROWS, _COLUMNS]


def _propagators(a: Array) -> tuple[Array, Array]:
    """``exp(a)`` and ``phi_1(a) = sum_k a^k / (k + 1)!`` of a 3x3 matrix: over a time
    ``h``, ``dx/dt = x A + b`` (rows) takes ``x`` to ``x exp(A h) + h b phi_1(A h)`` exactly.
    Taylor series of degree 12 at ``a / 8``, then three doublings (``exp(2a) = exp(a)^2``,
    ``phi_1(2a) = phi_1(a) (exp(a) + 1) / 2``): exact to rounding for ``|a| <~ 2``, far
    beyond a time step's strain (``|v_g dt|`` is about 1e-3), and a small fixed program."""
    identity = jnp.eye(3, dtype=a.dtype)
    doublings = 3
    scaled = a / 2.0**doublings
    exp, phi = identity, identity
    for k in range(12, 0, -1):  # Horner: phi = sum_k a^k / (k+1)!, exp = 1 + a phi
        phi = identity + scaled @ phi / (k + 1)
    exp = identity + scaled @ phi
    for _ in range(doublings):
        phi = 0.5 * phi @ (exp + identity)
        exp = exp @ exp
    return exp, phi


_FLIP = 0.6  # a tilt beyond this fraction of its side is flipped (LAMMPS: 0.5, "flip yes")


def _flipped(cell: Array) -> tuple[Array, Array]:
    """The same lattice with its tilts brought back within ``_FLIP`` of their sides (as
    LAMMPS's ``fix npt ... flip yes``): ``c -= round(yz / ly) b``, then ``c -= round(xz /
    lx) a`` and ``b -= round(xy / lx) a``, each only when the tilt exceeds ``_FLIP`` times
    the side (hysteresis: a flipped tilt lands near ``1 - _FLIP``, so it does not flip back
    at once). The strain rate ``v_g`` is unchanged (``d(M h)/dt = M h v_g`` for an integer
    ``M``), positions are re-wrapped, and the neighbour list rebuilt. Also whether it
    flipped."""

    def reduce(cell, row, column):
        ratio = cell[row, column] / cell[column, column]
        k = jnp.where(jnp.abs(ratio) > _FLIP, jnp.rint(ratio), 0.0)
        return cell.at[row].add(-k * cell[column]), k != 0

    cell, yz = reduce(cell, 2, 1)
    cell, xz = reduce(cell, 2, 0)
    cell, xy = reduce(cell, 1, 0)
    return cell, yz | xz | xy


def _tilted(box: TriclinicBox, cell: Array) -> TriclinicBox:
    """``box`` with another cell, without the constructor's run-time check (as
    `_resized`)."""
    return eqx.tree_at(lambda b: b.cell, box, cell)


def _sinhc(x: Array) -> Array:
    """``sinh(x) / x``, smooth through 0 (Taylor series below ``|x| = 0.1``)."""
    small = jnp.abs(x) < 0.1
    safe = jnp.where(small, 1.0, x)
    x2 = x * x
    series = 1.0 + x2 / 6.0 * (1.0 + x2 / 20.0 * (1.0 + x2 / 42.0 * (1.0 + x2 / 72.0)))
    return jnp.where(small, series, jnp.sinh(safe) / safe)


class MartynaTobiasKlein(AbstractMDStepper):
    """NPT molecular dynamics: the Martyna–Tobias–Klein (MTK) barostat with Nosé–Hoover
    chains on the particles and on the barostat, in Cartesian coordinates (orthorhombic
    periodic boxes; positions, velocities and forces in the lab frame).

    Equations of motion (MTK 1994; per box axis ``a``, strain rate ``v_g,a = d ln L_a / dt``,
    ``N_f`` degrees of freedom, chain velocities ``v_xi`` and ``v_eta``):

    .. math::
        \\dot r_{ia} = v_{ia} + v_{g,a} r_{ia}, \\qquad
        \\dot v_{ia} = F_{ia}/m_i - (v_{g,a} + \\mathrm{tr}\\, v_g / N_f) v_{ia}
            - v_{\\xi_1} v_{ia},

        W \\dot v_{g,a} = V (P_{aa} - P) + \\frac{1}{N_f} \\sum_i m_i |v_i|^2
            - W v_{\\eta_1} v_{g,a},

    with ``V P_aa = sum_i m_i v_ia^2 + W_aa``. The virial ``W_aa = -dU/d strain_aa`` is the
    derivative of the energy of the strained system (positions and box scaled), so it is
    right for any energy; pair energies under ``couple="iso"`` give its trace from their
    force pass at no extra cost, other terms (and per-axis strains) by forward-mode
    differentiation (``"aniso"`` costs about three times a force evaluation more).
    With ``couple="iso"`` the three axes share one ``v_g`` (cubic volume moves, driven by
    the trace); with ``"aniso"`` each axis moves with its own diagonal stress. Integrated
    with the reversible, measure-preserving Trotter factorisation of Tuckerman et al. (2006,
    J. Phys. A 39, 5629): chain half steps, barostat half kick, particle half kick, exact
    box and position drift, forces and virial, then the mirror image. The conserved
    quantity is `extended_energy`; the time averages of the kinetic temperature and of the
    pressure are ``temperature`` and ``pressure``.

    With ``couple="full"`` the cell is fully flexible (MTK 1994; LAMMPS ``fix npt ... tri``):
    a `TriclinicBox` in LAMMPS's restricted (lower-triangular) form, whose six strain
    rates (a lower-triangular ``v_g``, rows acting on row vectors) follow the full pressure
    tensor,

    .. math::
        \\dot r_i = v_i + r_i v_g, \\qquad \\dot h = h\\, v_g, \\qquad
        \\dot v_i = F_i/m_i - v_i (v_g + \\mathrm{tr}\\, v_g / N_f) - v_{\\xi_1} v_i,

        W \\dot v_{g,ab} = V (P_{ab} - P \\delta_{ab}) + \\delta_{ab} \\frac{1}{N_f}
            \\sum_i m_i |v_i|^2 - W v_{\\eta_1} v_{g,ab} \\quad (a \\ge b),

    with ``V P_ab = sum_i m_i v_ia v_ib + W_ab`` and the virial tensor ``W_ab`` from the
    derivative of the energy under a homogeneous deformation (`hybrax.md.stress`'s, one
    reverse pass with the forces). Keeping ``v_g`` and the cell lower triangular removes
    the cell's rotation, as LAMMPS does; the exact drifts and kicks of the same Trotter
    factorisation use 3x3 matrix exponentials. Forces, velocities and positions stay
    Cartesian (the lab frame). A tilt beyond 0.6 of its side is flipped to the same
    lattice's other cell (``b - a`` and so on, as LAMMPS's ``flip yes``; the list is
    rebuilt). A fluid has no restoring force on the cell's shape: its tilts and side
    ratios wander (the mean shear stress is zero), and a run long enough to squash the
    cell to less than twice the cut-off (plus skin, for a cell list) across some direction
    stops with a `hybrax.NeighborListError` (256 LJ atoms at T* 1.5, P* 1,
    ``tau_barostat=1``: half of eight runs within 30 tau).

    Sampled distribution (the Jacobian of a step, tests/md/test_barostat_measure.py): with
    ``couple="iso"`` MTK's, uniform in the volume; with ``"full"`` the measure on the cell
    is ``d lx d ly d lz d xy d xz d yz / (lx^2 ly)``, of degree 3 in the cell like ``dV``,
    so the volume distribution is the isotropic one whenever the configurational integral
    depends on the volume only (a dilute 27-atom gas, T* 1, P* 0.05: mean volume 557.4 +-
    0.8 full, 555.8 +- 1.2 iso, 556.8 from the second virial coefficient). The shapes are
    weighted as by LAMMPS's ``fix npt ... tri`` (the same equations), not as MTK's
    rotation-invariant ``d^9h det(h)^-2`` (``d^6h / (ly lz^2)`` on this cell), and
    uniformly in the logarithms of the side ratios (tilts held by the flips): hence the
    wandering. No finite-size effect of the shape on the density is resolved: LJ at T* 1.5,
    P* 1 (cut-off 2.5, shifted), 256 atoms: 0.5772 +- 0.0016 (full, four runs of 30 to 80
    tau) against 0.5759 +- 0.0012 (iso, seven runs); 500 atoms: 0.5760 +- 0.0018 against
    0.5786 +- 0.0026 (two runs of 30 tau each).

    Observables of a state: `extended_energy` (conserved), `instantaneous_pressure` and
    `pressure_tensor` (from the step's virial), `state_box` (its ``volume``).

    The box lives in the state (``state.barostat.lengths``; `state_box`). The neighbour list
    is rebuilt whenever atoms moved, in the box's scaled coordinates, far enough that a
    pair within the cut-off could have been missed, counting the box's shrinkage since the
    last build, and a box that its list no longer covers (e.g. shorter than twice the
    cut-off) raises a `hybrax.NeighborListError` at that step, never a stale list.
    `hybrax.md.simulate` regrows an overflowed list in the state's box (`state_box`). A list
    replaced from outside by hand is rebuilt in the state's box at the next step; if that
    box needs another cell grid than the one the list was built for, the run stops with a
    `hybrax.NeighborListError` (rebuild it with ``neighbors.grow(positions, state_box(state))``).
    `hybrax.rollout` is the plain way to run it.

    Parameters
    ----------
    energy, dt, masses, on_overflow, max_displacement
        As in `VelocityVerlet`.
    box
        The initial box (sigma): a `PeriodicBox` (``couple="iso"`` or ``"aniso"``), each
        side at least twice the energy's cut-off, or a lower-triangular `TriclinicBox`
        (``couple="full"``; `TriclinicBox.from_lammps`), as wide as twice the cut-off in
        every direction. Build the neighbour list in this box.
    temperature
        Target ``k_B T`` (epsilon), > 0; differentiable.
    pressure
        Target pressure ``P`` (epsilon / sigma^3), finite; differentiable. A negative
        target (tension: a stretched solid, a liquid below its vapour pressure) is allowed,
        as in LAMMPS's ``fix npt``.
    tau
        Particle thermostat period (tau), > 0, default 0.5 (100 steps of 0.005; LAMMPS's
        ``Tdamp`` advice); chain masses ``Q_1 = N_f kT tau^2``, ``Q_k = kT tau^2``.
    tau_barostat
        Barostat period (tau), > 0, default 5 (1000 steps of 0.005; LAMMPS's ``Pdamp``
        advice): barostat mass ``W = (N_f + 3) kT tau_barostat^2`` (divided by 3 per axis
        with ``couple="aniso"`` and per strain rate with ``"full"``), barostat chain
        masses ``n kT tau_barostat^2`` then ``kT tau_barostat^2`` (``n`` = 1, 3 or 6
        barostat degrees of freedom).
    chain_length
        Links per chain ``M`` (static), default 3, for both chains.
    couple
        ``"iso"`` (default: isotropic volume fluctuations), ``"aniso"`` (independent
        orthorhombic axes) or ``"full"`` (a fully flexible triclinic cell: six strain
        rates, the state's barostat a `TriclinicBarostatState`); static.
    degrees_of_freedom
        ``N_f`` (static); default ``3 N - 3`` (momentum conserved).

    Examples
    --------
    >>> import jax, hybrax, hybrax.md as md
    >>> positions, box = md.lattice("fcc", 3, density=0.8)
    >>> v = md.maxwell_boltzmann(jax.random.key(0), positions.shape[0], temperature=1.5)
    >>> stepper = md.MartynaTobiasKlein(md.LennardJones(cutoff=2.4), box, dt=0.005,
    ...     temperature=1.5, pressure=1.0, tau_barostat=1.0)
    >>> state = stepper.init(positions, v, md.neighbor_list(positions, box, 2.4))
    >>> final, volumes = hybrax.rollout(stepper, state, 20,
    ...     observe=lambda s: stepper.state_box(s).volume)
    >>> volumes.shape
    (20,)

    A fully flexible cell, started sheared:

    >>> side = float(box.lengths[0])
    >>> tilted = md.TriclinicBox.from_lammps(side, side, side, xy=0.5)
    >>> x = tilted.wrap(positions)
    >>> stepper = md.MartynaTobiasKlein(md.LennardJones(cutoff=2.4), tilted, dt=0.005,
    ...     temperature=1.5, pressure=1.0, tau_barostat=1.0, couple="full")
    >>> state = stepper.init(x, v, md.neighbor_list(x, tilted, 2.4))
    >>> final = hybrax.rollout(stepper, state, 20)[0]
    >>> stepper.state_box(final).cell.shape, final.barostat.velocities.shape
    ((3, 3), (6,))
    """

    energy: AbstractEnergy
    box: AbstractBox
    dt: Array = eqx.field(converter=time_step)
    temperature: Array = eqx.field(
        converter=_checked("temperature", positive=True, scalar=True, example="temperature=1.5")
    )
    pressure: Array = eqx.field(converter=_checked("pressure", scalar=True, example="pressure=1.0"))
    tau: Array = eqx.field(
        default=0.5, converter=_checked("tau", positive=True, scalar=True, example="tau=0.5")
    )
    tau_barostat: Array = eqx.field(
        default=5.0,
        converter=_checked("tau_barostat", positive=True, scalar=True, example="tau_barostat=5.0"),
    )
    chain_length: int = eqx.field(static=True, default=3)
    couple: Couple = eqx.field(static=True, default="iso", converter=_couple)
    degrees_of_freedom: int | None = eqx.field(static=True, default=None)
    masses: Array = eqx.field(
        default=1.0, converter=_checked("masses", positive=True, example="masses=1.0")
    )
    on_overflow: OnOverflow = eqx.field(static=True, default="raise", converter=_on_overflow)
    max_displacement: float | None = eqx.field(
        static=True, default=None, converter=_max_displacement
    )

    def __check_init__(self):
        cutoff = self.energy.required_cutoff if isinstance(self.energy, AbstractEnergy) else None
        if self.couple == "full":
            self._check_triclinic(cutoff)
            nhc.check_chain(self.chain_length, self.degrees_of_freedom)
            return
        if not isinstance(self.box, PeriodicBox):
            raise ConfigurationError(
                f'MartynaTobiasKlein: box must be a hybrax.md.PeriodicBox with couple="'
                f'{self.couple}" (NPT needs a volume; a TriclinicBox needs couple="full"), '
                f"got {type(self.box).__name__}"
            )
        lengths = concrete_or_none(self.box.lengths)
        if cutoff is not None and lengths is not None and np.any(lengths < 2.0 * cutoff):
            raise ConfigurationError(
                f"MartynaTobiasKlein: box sides {np.asarray(lengths).tolist()} are shorter "
                f"than twice the energy's cut-off {cutoff} (minimum image would miss periodic "
                "images); use a larger box (more atoms) or a shorter cut-off"
            )
        nhc.check_chain(self.chain_length, self.degrees_of_freedom)

    def _check_triclinic(self, cutoff) -> None:
        if not isinstance(self.box, TriclinicBox):
            raise ConfigurationError(
                'MartynaTobiasKlein: couple="full" (a fully flexible cell) needs box to be a '
                f"hybrax.md.TriclinicBox, got {type(self.box).__name__}; for an orthorhombic "
                "start use TriclinicBox.from_lammps(lx, ly, lz) (and build the neighbour list "
                "in it)"
            )
        cell = concrete_or_none(self.box.cell)
        if cell is None:
            return
        cell = np.asarray(cell, np.float64)
        upper = cell[np.triu_indices(3, 1)]
        if np.any(np.abs(upper) > 1e-12 * np.max(np.abs(cell))):
            raise ConfigurationError(
                'MartynaTobiasKlein: couple="full" needs the box\'s cell lower triangular '
                "(LAMMPS's restricted triclinic form: rows a = (lx, 0, 0), b = (xy, ly, 0), "
                f"c = (xz, yz, lz); TriclinicBox.from_lammps), got cell {cell.tolist()}; "
                "rotate the cell (and the positions and velocities) into that form first"
            )
        widths = np.asarray(concrete_or_none(self.box.perpendicular_widths), np.float64)
        if cutoff is not None and np.any(widths < 2.0 * cutoff):
            raise ConfigurationError(
                f"MartynaTobiasKlein: the box's perpendicular widths {widths.tolist()} are "
                f"smaller than twice the energy's cut-off {cutoff} (minimum image would miss "
                "periodic images); use a larger box (more atoms), less tilt or a shorter "
                "cut-off"
            )

    # ------------------------------------------------------------------ set-up
    @property
    def _axes(self) -> int:
        """Barostat degrees of freedom: 1 (iso), 3 (aniso) or 6 (full)."""
        return {"iso": 1, "aniso": 3, "full": 6}[self.couple]

    def _dof(self, positions) -> int:
        return nhc.particle_dof(self.degrees_of_freedom, positions)

    def _chain_masses(self, tau, dof, like: Array) -> Array:
        return nhc.chain_masses(self.temperature, tau, self.chain_length, dof, like)

    def barostat_mass(self, positions: Float[Array, "N 3"]) -> Array:
        """``W = (N_f + 3) kT tau_barostat^2`` (iso), a third of it per axis (aniso) and
        per strain rate (full) (epsilon tau^2)."""
        kT = _scalar(self.temperature, positions)
        tau = _scalar(self.tau_barostat, positions)
        return (self._dof(positions) + 3) * kT * tau * tau / min(self._axes, 3)

    def state_box(self, state: MDState) -> PeriodicBox | TriclinicBox:
        """The current box of an NPT state (a `TriclinicBox` with ``couple="full"``)."""
        baro = self._barostat(state)
        if self.couple == "full":
            return _tilted(self.box, baro.cell)
        return _resized(self.box, baro.lengths)

    def _reevaluated(self, state: MDState, neighbors: AbstractNeighborList | None) -> MDState:
        """``state`` with ``neighbors`` updated in its box and its energy, forces and virial
        recomputed (`hybrax.md.simulate`'s regrowth of an overflowed list): the list counts
        as built here, in this box."""
        self._barostat(state)
        return _refreshed(self, state, neighbors)

    def init(
        self,
        positions: Float[Array, "N 3"] | MDState,
        velocities: Float[Array, "N 3"] | None = None,
        neighbors: AbstractNeighborList | None = None,
        key: PRNGKeyArray | None = None,
    ) -> MDState:
        """As `AbstractMDStepper.init` (same checks), plus the barostat variables: the box
        (the stepper's ``box``), zero strain rate and chains, and the virial at
        ``positions``. Idempotent; a state from another stepper (NVE, NVT) gets the
        thermostat and barostat variables it lacks, in the stepper's ``box``."""
        state = super().init(positions, velocities, neighbors, key)
        x = state.positions
        if state.thermostat is None:
            state = eqx.tree_at(
                lambda s: s.thermostat,
                state,
                nhc.zero_chain(self.chain_length, x),
                is_leaf=lambda t: t is None,
            )
        if state.barostat is not None:
            return state
        if self.couple == "full":
            cell = self.box.cell.astype(x.dtype)
            virial = _virial(self.energy, x, state.neighbors, TriclinicBox(cell), 6)
            lengths, tilts = jnp.diagonal(cell), cell[(1, 2, 2), (0, 0, 1)]
            barostat = TriclinicBarostatState(
                lengths=lengths,
                velocities=jnp.zeros(6, x.dtype),
                virial=virial,
                reference_lengths=lengths,
                reference_fingerprint=_fingerprint(state.neighbors, x),
                chain=nhc.zero_chain(self.chain_length, x),
                tilts=tilts,
                reference_tilts=tilts,
            )
            return eqx.tree_at(lambda s: s.barostat, state, barostat, is_leaf=lambda t: t is None)
        lengths = self.box.lengths.astype(x.dtype)
        virial = _virial(self.energy, x, state.neighbors, PeriodicBox(lengths), self._axes)
        barostat = BarostatState(
            lengths,
            jnp.zeros(self._axes, x.dtype),
            virial,
            lengths,
            _fingerprint(state.neighbors, x),
            nhc.zero_chain(self.chain_length, x),
        )
        return eqx.tree_at(lambda s: s.barostat, state, barostat, is_leaf=lambda t: t is None)

    def _barostat(self, state: MDState) -> BarostatState:
        if state.barostat is None or state.thermostat is None:
            raise ConfigurationError(
                "MartynaTobiasKlein needs thermostat and barostat variables in the state: "
                "create it with this stepper's init(...)"
            )
        full = isinstance(state.barostat, TriclinicBarostatState)
        if state.barostat.velocities.shape != (self._axes,) or full != (self.couple == "full"):
            raise ConfigurationError(
                f"the state's barostat has {state.barostat.velocities.shape[0]} strain rates but "
                f'couple="{self.couple}" needs {self._axes}; start from positions with this '
                "stepper's init(...)"
            )
        return state.barostat

    # ------------------------------------------------------------------ stepping
    def _barostat_force(self, v, inv_m, virial, lengths, dof) -> Array:
        """``W dv_g/dt`` without the chain, per barostat degree of freedom: per axis
        ``sum_i m v_ia^2 + W_aa - P V + sum_i m |v_i|^2 / N_f``, or its sum over the axes
        (iso); per Voigt component ``sum_i m v_ia v_ib + W_ab`` plus that diagonal term
        (full)."""
        if self.couple == "full":
            kinetic = jnp.einsum("na,nb->ab", v / inv_m, v)
            pv = _scalar(self.pressure, v) * jnp.prod(lengths)
            isotropic = jnp.trace(kinetic) / dof - pv
            return _voigt(kinetic) + virial + jnp.where(np.arange(6) < 3, isotropic, 0.0)
        mv2 = jnp.sum(v * v / inv_m, axis=0)  # (3,) sum_i m v_ia^2
        per_dof = 3 // self._axes  # axes summed into one barostat degree of freedom
        kinetic = jnp.sum(mv2, keepdims=True) if self._axes == 1 else mv2
        pv = _scalar(self.pressure, v) * jnp.prod(lengths)
        return kinetic + virial + per_dof * (jnp.sum(mv2) / dof - pv)

    def _kick(self, v, forces, inv_m, vg, dof, h) -> Array:
        """Exact ``dv/dt = F/m - v gamma`` over ``h``, ``gamma = v_g + tr v_g / N_f``
        (diagonal, or a lower-triangular matrix with ``couple="full"``)."""
        if self.couple == "full":
            rates = _lower(vg)
            gamma = rates + jnp.trace(rates) / dof * jnp.eye(3, dtype=v.dtype)
            decay, phi = _propagators(-h * gamma)
            return v @ decay + h * (forces * inv_m) @ phi
        vg3 = jnp.broadcast_to(vg, (3,))
        gamma = vg3 + jnp.sum(vg3) / dof
        decay = jnp.exp(-0.5 * gamma * h)
        return v * decay * decay + h * forces * inv_m * decay * _sinhc(0.5 * gamma * h)

    def _drift(self, baro, x, v, vg, dt):
        """Exact drift of the box and of ``dr/dt = v + r v_g`` over ``dt``: the new box, its
        lengths and tilts (None unless ``couple="full"``), the positions wrapped into it,
        and whether the cell was flipped (`_flipped`)."""
        if self.couple == "full":
            growth, phi = _propagators(dt * _lower(vg))
            cell, flipped = _flipped(baro.cell @ growth)
            box = _tilted(self.box, cell)
            shape = jnp.diagonal(cell), cell[(1, 2, 2), (0, 0, 1)]
            return box, shape, box.shift(x @ growth, dt * v @ phi), flipped
        vg3 = jnp.broadcast_to(vg, (3,))
        growth = jnp.exp(dt * vg3)
        lengths = baro.lengths * growth
        box = _resized(self.box, lengths)
        x = box.shift(x * growth, dt * v * jnp.exp(0.5 * dt * vg3) * _sinhc(0.5 * dt * vg3))
        return box, (lengths, None), x, False

    def _rebuild_needed_cell(self, neighbors, x, cell, reference_cell) -> Array:
        """`_rebuild_needed` in a triclinic cell: atoms moved by ``D`` relative to the
        affine deformation since the last build (in fractional coordinates, measured in
        the current cell) with ``2 D`` more than ``s (cutoff + skin) - cutoff``, ``s`` the
        smallest singular value of ``inv(reference_cell) cell`` (the most a distance
        shrank under the deformation)."""
        reference = neighbors.reference_positions.astype(x.dtype) @ jnp.linalg.inv(reference_cell)
        d = x @ jnp.linalg.inv(cell) - reference
        d = (d - jnp.rint(d)) @ cell
        moved = jnp.sqrt(jnp.max(jnp.sum(d * d, axis=-1)))
        deformation = jnp.linalg.solve(reference_cell, cell)
        shrink = jnp.sqrt(jnp.min(jnp.linalg.eigvalsh(deformation @ deformation.T)))
        return 2.0 * moved > shrink * neighbors.list_radius - neighbors.cutoff

    def _rebuild_needed(self, neighbors, x, lengths, reference_lengths) -> Array:
        """Whether a pair within the cut-off may be missing from the list: atoms moved, in
        scaled coordinates measured in the current box, by ``D`` with ``2 D`` more than
        ``s (cutoff + skin) - cutoff`` (``s``: smallest ratio of a side to its length at the
        last build; ``skin`` at a fixed box)."""
        reference = neighbors.reference_positions.astype(x.dtype) / reference_lengths
        d = x / lengths - reference
        d = (d - jnp.rint(d)) * lengths
        moved = jnp.sqrt(jnp.max(jnp.sum(d * d, axis=-1)))
        shrink = jnp.min(lengths / reference_lengths)
        return 2.0 * moved > shrink * neighbors.list_radius - neighbors.cutoff

    def step(self, state: MDState) -> MDState:
        baro = self._barostat(state)
        x, v = state.positions, state.velocities
        dt = _scalar(self.dt, x)
        half = 0.5 * dt
        inv_m = self._inverse_mass(x)
        kT = _scalar(self.temperature, x)
        dof = self._dof(x)
        w = self.barostat_mass(x)
        q_particles = self._chain_masses(self.tau, dof, x)
        q_barostat = self._chain_masses(self.tau_barostat, self._axes, x)
        full = self.couple == "full"

        def thermostats(v, chain, vg, baro_chain):
            scale, baro_chain = nhc.chain_half_step(
                w * jnp.sum(vg * vg), baro_chain, q_barostat, self._axes, kT, dt
            )
            vg = vg * scale
            scale, chain = nhc.chain_half_step(
                jnp.sum(v * v / inv_m), chain, q_particles, dof, kT, dt
            )
            return v * scale, chain, vg, baro_chain

        v, chain, vg, baro_chain = thermostats(v, state.thermostat, baro.velocities, baro.chain)
        vg = vg + half * self._barostat_force(v, inv_m, baro.virial, baro.lengths, dof) / w
        v = self._kick(v, state.forces, inv_m, vg, dof, half)
        # exact drift of the box and of r' = v + v_g r over dt
        box, (lengths, tilts), x, flipped = self._drift(baro, x, v, vg, dt)
        neighbors, reference_lengths = state.neighbors, baro.reference_lengths
        reference_tilts = baro.reference_tilts if full else None
        fingerprint = baro.reference_fingerprint
        if neighbors is not None:
            # a list replaced since the last build here (hybrax.md.simulate's regrowth, or
            # by hand) was built in a box we do not know: rebuild it in this one
            replaced = _fingerprint(neighbors, x) != fingerprint
            if full:
                reference_cell = _cell(reference_lengths, reference_tilts)
                moved = self._rebuild_needed_cell(neighbors, x, box.cell, reference_cell)
            else:
                moved = self._rebuild_needed(neighbors, x, lengths, reference_lengths)
            rebuild = replaced | moved | flipped
            neighbors = lax.cond(rebuild, lambda n: n.update(x, box), lambda n: n, neighbors)
            reference_lengths = jnp.where(rebuild, lengths, reference_lengths)
            if full:
                reference_tilts = jnp.where(rebuild, tilts, reference_tilts)
            fingerprint = _fingerprint(neighbors, x)
            # a box the list no longer covers is an overflow (NaN energies, NeighborListError)
            lost = neighbors.overflow | ~neighbors.covers(box)
            neighbors = eqx.tree_at(lambda n: n.overflow, neighbors, lost)
        energy, forces, virial = _energy_forces_virial(self.energy, x, neighbors, box, self._axes)
        v = self._kick(v, forces, inv_m, vg, dof, half)
        vg = vg + half * self._barostat_force(v, inv_m, virial, lengths, dof) / w
        v, chain, vg, baro_chain = thermostats(v, chain, vg, baro_chain)
        barostat = BarostatState(lengths, vg, virial, reference_lengths, fingerprint, baro_chain)
        if full:
            barostat = TriclinicBarostatState(
                **{f.name: getattr(barostat, f.name) for f in dataclasses.fields(barostat)},
                tilts=tilts,
                reference_tilts=reference_tilts,
            )
        new = MDState(x, v, forces, energy, neighbors, state.key, state.time + dt, chain, barostat)
        return self._guard(new)

    # ------------------------------------------------------------------ observables
    def extended_energy(self, state: MDState) -> Array:
        """The conserved quantity (epsilon): kinetic + potential energy + ``P V`` + barostat
        kinetic energy ``W |v_g|^2 / 2`` + the energies of both chains."""
        baro = self._barostat(state)
        x, v = state.positions, state.velocities
        kT = _scalar(self.temperature, x)
        dof = self._dof(x)
        kinetic = 0.5 * jnp.sum(v * v / self._inverse_mass(x))
        barostat = 0.5 * self.barostat_mass(x) * jnp.sum(baro.velocities**2)
        pv = _scalar(self.pressure, x) * jnp.prod(baro.lengths)
        chains = nhc.chain_energy(state.thermostat, self._chain_masses(self.tau, dof, x), dof, kT)
        q_barostat = self._chain_masses(self.tau_barostat, self._axes, x)
        chains = chains + nhc.chain_energy(baro.chain, q_barostat, self._axes, kT)
        return kinetic + state.potential_energy + pv + barostat + chains

    def instantaneous_pressure(self, state: MDState) -> Array:
        """Virial pressure ``(2 KE + W) / (3 V)`` of the state (epsilon / sigma^3), from the
        virial the step already computed (equal to `hybrax.md.pressure` in `state_box`)."""
        baro = self._barostat(state)
        v = state.velocities
        mv2 = jnp.sum(v * v / self._inverse_mass(v))
        trace = jnp.sum(baro.virial[:3] if self.couple == "full" else baro.virial)
        return (mv2 + trace) / (3.0 * jnp.prod(baro.lengths))

    def pressure_tensor(self, state: MDState) -> Float[Array, "3"] | Float[Array, "3 3"]:
        """The pressure tensor ``(sum_i m v_ia v_ib + W_ab) / V`` (epsilon / sigma^3): its
        diagonal with ``couple="aniso"``, the symmetric 3x3 tensor with ``"full"`` (minus
        `hybrax.md.stress` with velocities; LAMMPS's pressure tensor); isotropic coupling
        keeps only the trace of the virial."""
        baro = self._barostat(state)
        if self._axes == 1:
            raise ConfigurationError(
                'pressure_tensor needs couple="aniso" or "full" (isotropic coupling keeps only '
                "the trace of the virial); use instantaneous_pressure"
            )
        v = state.velocities
        if self.couple == "full":
            kinetic = jnp.einsum("na,nb->ab", v / self._inverse_mass(v), v)
            virial = _lower(baro.virial)
            virial = virial + virial.T - jnp.diag(jnp.diagonal(virial))
            return (kinetic + virial) / jnp.prod(baro.lengths)
        mv2 = jnp.sum(v * v / self._inverse_mass(v), axis=0)
        return (mv2 + baro.virial) / jnp.prod(baro.lengths)


@eqx.filter_jit
def _refreshed(stepper: MartynaTobiasKlein, state: MDState, neighbors) -> MDState:
    x, baro = state.positions, state.barostat
    box = stepper.state_box(state)
    if neighbors is not None:
        neighbors = neighbors.update(x, box)
    energy, forces, virial = _energy_forces_virial(stepper.energy, x, neighbors, box, stepper._axes)
    refreshed = {"reference_tilts": baro.tilts} if stepper.couple == "full" else {}
    barostat = dataclasses.replace(
        baro,
        virial=virial,
        reference_lengths=baro.lengths,
        reference_fingerprint=_fingerprint(neighbors, x),
        **refreshed,
    )
    return dataclasses.replace(
        state, neighbors=neighbors, potential_energy=energy, forces=forces, barostat=barostat
    )


def _fingerprint(neighbors: AbstractNeighborList | None, like: Array) -> Array:
    """Sum of the list's reference positions: changes when the list is rebuilt."""
    if neighbors is None:
        return jnp.zeros((), like.dtype)
    return jnp.sum(neighbors.reference_positions).astype(like.dtype)


def _resized(box: PeriodicBox, lengths: Array) -> PeriodicBox:
    """``box`` with other side lengths, without the constructor's run-time check (it would
    fire on the NaN of an overflowed list before ``on_overflow="flag"`` reports it): the
    lengths are positive ones scaled by exponentials."""
    return eqx.tree_at(lambda b: b.lengths, box, lengths)


def _energy_forces_virial(energy, positions, neighbors, box, axes: int):
    """Energy, forces and the virial ``-dU/d strain``: summed over the axes (uniform
    strain, ``axes=1``, shape ``(1,)``), per axis (``axes=3``) or its six Voigt components
    (``axes=6``, a `TriclinicBox`). Pair terms under uniform strain take it from their
    force pass (``sum_pairs r.f``, no extra cost); other terms (and per-axis strains) by
    forward-mode differentiation of the strained energy; the full tensor by one reverse
    pass through the deformed energy with the forces (`hybrax.md.stress`'s derivative)."""
    if axes == 6:
        value, gradient, derivative = strain_gradients(energy, positions, box.cell, neighbors)
        return value, -gradient, -_voigt(derivative)
    terms = energy.terms if isinstance(energy, SumEnergy) else (energy,)
    lengths = box.lengths
    total, forces, virial = 0.0, jnp.zeros_like(positions), jnp.zeros(axes, positions.dtype)
    for term in terms:
        if axes == 1 and _fast_pair_term(term):

            def pair_terms(r2, species_i, species_j, term=term):
                (phi,), (weight,) = term._force_terms(r2, species_i, species_j)
                return (phi, r2 * weight), (weight,)

            (e, w), (f,) = term._neighbors(neighbors).pair_sums(
                positions,
                box,
                pair_terms,
                cutoff=term.cutoff,
                species=term.species,
                per_atom_scalars=False,
            )
            w = w[None]
        else:
            e, f = term.energy_and_forces(positions, neighbors, box)

            def strained(strain, term=term):
                scale = 1.0 + jnp.broadcast_to(strain, (3,))
                return term.energy(positions * scale, neighbors, _resized(box, lengths * scale))

            w = -jax.jacfwd(strained)(jnp.zeros(axes, positions.dtype))
        total, forces, virial = total + e, forces + f, virial + w
    return total, forces, virial


def _fast_pair_term(term) -> bool:
    """A pair energy whose forces come from the shared pair pass (not overridden)."""
    return (
        isinstance(term, AbstractPairEnergy)
        and type(term).energy_and_forces is AbstractPairEnergy.energy_and_forces
    )


@eqx.filter_jit
def _virial(energy, positions, neighbors, box, axes: int):
    return _energy_forces_virial(energy, positions, neighbors, box, axes)[2]
