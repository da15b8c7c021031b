"""Incompressible Navier–Stokes by finite volumes on a 2-D or 3-D staggered (MAC) grid."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, ArrayLike, Float
from scipy import ndimage

from hybrax.core import (
    AbstractDynamics,
    AbstractStepper,
    ConfigurationError,
    check_dynamics,
    concrete_or_none,
    parameter,
    scalar_like,
    time_or_zero,
)
from hybrax.grids import StaggeredGrid

from . import _periodic_fv as periodic_fv
from ._boundaries import (
    Boundaries,
    Inflow,
    Outflow,
    Periodic,
    Wall,
    apply_normal,
    convective_rate,
    first_tangential_axis,
    fixed_normal_mask,
    pad_normal,
    pad_tangential,
)
from ._central_adjoint import central_rates
from ._direct_forcing import closed_cells, constrained_faces, impose_body, surface_normals
from ._fv_advection import (
    AbstractInterpolation,
    CentralInterpolation,
    UpwindInterpolation,
    VanLeerInterpolation,
    as_interpolation,
)
from ._learned_interpolation import BoundInterpolation, FusedLearnedInterpolation
from ._obstacles import AbstractObstacle, Cylinder
from ._poisson import divergence, pressure_gradient, solve_poisson, solve_poisson_krylov
from ._tvd_adjoint import tvd_rates

__all__ = ["FlowState", "IncompressibleNavierStokes", "ProjectedRK"]

PRESSURE_SOLVERS = ("direct", "krylov")
IMMERSED_BOUNDARIES = ("brinkman", "direct_forcing", "image_point")


class FlowState(eqx.Module):
    """Velocity and pressure on a staggered grid.

    Attributes
    ----------
    u
        x-velocity on the x-faces, shape ``(nx + 1, ny(, nz))`` (length/time).
    v
        y-velocity on the y-faces, shape ``(nx, ny + 1(, nz))``.
    pressure
        Kinematic pressure ``p / rho`` at cell centres, shape ``(nx, ny(, nz))``, from the
        last projection.
    time
        Model time, shape ``()``.
    w
        z-velocity on the z-faces, shape ``(nx, ny, nz + 1)``, on 3-D grids; ``None`` in 2-D.
    """

    u: Float[Array, "..."]
    v: Float[Array, "..."]
    pressure: Float[Array, "..."]
    time: Float[Array, ""]
    w: Float[Array, "..."] | None = None

    @property
    def velocity(self) -> tuple[Array, ...]:
        """The face velocities ``(u, v)`` or ``(u, v, w)``."""
        return (self.u, self.v) if self.w is None else (self.u, self.v, self.w)

    def with_velocity(self, velocity, pressure=None, time=None) -> "FlowState":
        """A state with the face velocities ``velocity`` (2 or 3 components) and, if given,
        a new pressure and time."""
        w = velocity[2] if len(velocity) == 3 else None
        return FlowState(
            velocity[0],
            velocity[1],
            self.pressure if pressure is None else pressure,
            self.time if time is None else time,
            w,
        )


class IncompressibleNavierStokes(AbstractDynamics):
    """``du/dt + (u . grad) u = -grad p + nu lap u``, ``div u = 0``, on a MAC grid.

    `tendency` returns the advective and viscous terms (no pressure); `project` removes the
    divergence (a Poisson solve) and sets the boundary faces. Step it with `ProjectedRK`,
    which projects after every stage. Advection is conservative (flux form) with face values
    from ``scheme``: ``"central"`` (second order, non-dissipative), ``"upwind"`` (first
    order) or ``"van_leer"`` (second order TVD, MUSCL with the van Leer limiter).

    Parameters
    ----------
    grid
        The `hybrax.grids.StaggeredGrid`.
    boundaries
        `hybrax.fluids.Boundaries`, one condition per side.
    viscosity
        Kinematic viscosity ``nu`` (length^2/time), non-negative; a differentiable leaf.
    scheme
        Face reconstruction of the advective flux: a name (``"central"``, default;
        ``"upwind"``; ``"van_leer"``) or any `hybrax.fluids.AbstractInterpolation`, e.g. a
        trainable `hybrax.fluids.LearnedInterpolation` (a pytree node: its leaves are
        differentiable). Stored as the module.
    forcing
        Body force along +x (length/time^2), a differentiable leaf, default 0: a number
        (uniform, e.g. a mean pressure gradient ``-dp/dx``) or a field on the x-faces,
        shape ``grid.face_shape(0)`` (e.g. the Kolmogorov force ``sin(4 y)`` of
        `kolmogorov`).
    obstacle
        An immersed `hybrax.fluids.AbstractObstacle` (e.g. `Cylinder`, `Sphere` in 3-D), or
        ``None``. It is imposed by Brinkman penalisation ``-chi u / permeability``,
        integrated implicitly by `ProjectedRK` after every stage.
    permeability
        Penalisation time scale ``eta`` (time units), positive, default 1e-3.
    pressure_solver
        How `project` solves the pressure Poisson problem (static): ``"direct"`` (default,
        fast transforms, exact to round-off; `hybrax.fluids.solve_poisson`) or ``"krylov"``
        (conjugate gradients preconditioned by the direct solve,
        `hybrax.fluids.solve_poisson_krylov`, relative tolerance 1e-5 in float32 and 1e-10
        in float64; raises when it misses the tolerance). Both are differentiated
        implicitly (an adjoint solve).
    drag
        Linear drag ``-drag u`` on every velocity component (1/time), non-negative, a
        differentiable leaf, default 0 (bottom friction of 2-D turbulence).
    immersed_boundary
        How the obstacle is imposed (static): ``"brinkman"`` (default; the penalisation
        above, a staircase of blocked faces, first order in the cell size),
        ``"direct_forcing"`` (Fadlun et al. 2000: faces inside the body are zero, fluid
        faces next to it take the value interpolated linearly between the surface and
        the next fluid face along each grid line, corrected by a few conjugate-gradient
        steps so the cut cells carry no mass source; the forced values are set against
        the last pressure's gradient, so the projection keeps them in steady flow. The
        cut cells, `closed_cells`, are left out of the projection, and `pressure_at`
        extrapolates the surface pressure from the fluid. About 2x the cost of a step,
        DFG numbers in `dfg_cylinder`), or ``"image_point"`` (the same, but each forced
        face takes the value of the quadratic along the surface normal through zero on
        the surface and two image points 2 and 3 cells out in the fluid, interpolated
        from the fluid's faces (Tseng & Ferziger 2003; Balaras 2004), a face only partly
        forced while its inside neighbour lies less than half a cell deep: the forcing
        moves smoothly with the body, so the forces' sub-cell dependence on the body's
        position is smaller). ``permeability`` is unused with either.
    hand_written_backward
        Reverse-mode derivatives (`jax.grad`, `jax.vjp`) of the tendency with a built-in
        scheme (``"central"``, ``"upwind"``, ``"van_leer"``; not a subclass), on a grid with
        a non-periodic side or an obstacle and with ``immersed_boundary="brinkman"``, use a
        hand-written backward pass (static, default True): equal to autodiff to round-off
        (at the van Leer limiter's kinks, ties included, the same one-sided derivative),
        3-4x cheaper (a gradient through 100 SSP-RK3 steps of the 256² cavity, in units of
        the forward's time: central 3.6x -> 2.4x, van Leer 3.1x -> 1.7x; the DFG cylinder
        with van Leer 4.4x -> 2.8x; `benchmarks/fluids_walls.py`). Forward-mode derivatives
        (`jax.jvp`, `jax.linearize`, `jax.jacfwd`) cannot pass through it and raise
        ``TypeError: can't apply forward-mode autodiff (jvp) to a custom_vjp function``: set
        False for those (`hybrax.lyapunov_spectrum` does so itself).

    Examples
    --------
    >>> import hybrax
    >>> from hybrax.fluids import IncompressibleNavierStokes, ProjectedRK
    >>> model = IncompressibleNavierStokes.lid_driven_cavity(16, reynolds_number=100.0)
    >>> state = model.initial_state()
    >>> final, _ = hybrax.rollout(ProjectedRK(model, dt=0.01), state, 10)
    >>> final.u.shape
    (17, 16)
    """

    grid: StaggeredGrid
    boundaries: Boundaries
    viscosity: Array = parameter("viscosity", nonnegative=True, scalar=True)
    scheme: AbstractInterpolation = eqx.field(default="central", converter=as_interpolation)
    forcing: Array = parameter("forcing", default=0.0)
    obstacle: AbstractObstacle | None = None
    permeability: Array = parameter("permeability", default=1e-3, positive=True, scalar=True)
    pressure_solver: str = eqx.field(static=True, default="direct")
    drag: Array = parameter("drag", default=0.0, nonnegative=True, scalar=True)
    immersed_boundary: str = eqx.field(static=True, default="brinkman")
    hand_written_backward: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        if not isinstance(self.grid, StaggeredGrid):
            raise ConfigurationError(
                f"grid must be a hybrax.grids.StaggeredGrid, got {type(self.grid).__name__}"
            )
        if not isinstance(self.boundaries, Boundaries):
            raise ConfigurationError(
                "boundaries must be hybrax.fluids.Boundaries(left, right, bottom, top), got "
                f"{type(self.boundaries).__name__}"
            )
        if self.pressure_solver not in PRESSURE_SOLVERS:
            raise ConfigurationError(
                f"pressure_solver must be one of {PRESSURE_SOLVERS}, got {self.pressure_solver!r}"
            )
        if not isinstance(self.hand_written_backward, bool):
            raise ConfigurationError(
                f"hand_written_backward must be True or False, got {self.hand_written_backward!r}"
            )
        if self.immersed_boundary not in IMMERSED_BOUNDARIES:
            raise ConfigurationError(
                f"immersed_boundary must be one of {IMMERSED_BOUNDARIES}, got "
                f"{self.immersed_boundary!r}"
            )
        self.boundaries.check_grid(self.grid)
        if jnp.ndim(self.forcing) != 0 and jnp.shape(self.forcing) != self.grid.face_shape(0):
            raise ConfigurationError(
                f"forcing must be a number or a field on the x-faces of shape "
                f"{self.grid.face_shape(0)}, got shape {jnp.shape(self.forcing)}"
            )
        sides = [side for axis in range(self.grid.ndim) for side in self.boundaries.sides(axis)]
        if self.scheme.periodic_only and not all(_periodic(side) for side in sides):
            kinds = ", ".join(type(side).__name__ for side in sides)
            raise ConfigurationError(
                f"scheme: {type(self.scheme).__name__} needs every side periodic, got "
                f"({kinds}); use LearnedInterpolation (one network call per flux) with walls"
            )
        _check_net_inflow(self.grid, self.boundaries)
        if self.obstacle is not None:
            self.obstacle.check_grid(self.grid)
            _check_obstacle_seen(self.obstacle, self.grid)
            _check_obstacle_clear_of_inflow(self.obstacle, self.grid, self.boundaries)
            _check_path_to_outflow(self.obstacle, self.grid, self.boundaries)

    @classmethod
    def lid_driven_cavity(
        cls,
        num_points: int = 32,
        reynolds_number: ArrayLike = 100.0,
        *,
        lid_velocity=1.0,
        scheme: str | AbstractInterpolation = "central",
    ) -> "IncompressibleNavierStokes":
        """The unit square with a lid sliding along +x at ``lid_velocity`` (top wall) and
        fixed walls elsewhere; ``viscosity = lid_velocity / reynolds_number`` (Ghia, Ghia &
        Shin 1982 set-up). ``lid_velocity`` is a differentiable leaf."""
        grid = StaggeredGrid((num_points, num_points), (1.0, 1.0))
        walls = Boundaries(Wall(), Wall(), Wall(), Wall(velocity=lid_velocity))
        return cls(grid, walls, jnp.asarray(lid_velocity) / reynolds_number, scheme)

    @classmethod
    def channel(
        cls,
        num_points=(8, 32),
        domain_length=None,
        *,
        viscosity=1.0,
        forcing=8.0,
        scheme: str | AbstractInterpolation = "central",
    ) -> "IncompressibleNavierStokes":
        """Plane Poiseuille channel: periodic in x (and z, given three ``num_points``),
        no-slip walls at ``y = 0, Ly``, driven by the body force ``forcing``. Steady state
        ``u = forcing y (Ly - y) / (2 viscosity)`` (see `poiseuille_profile`). The domain
        is the unit square (cube) unless ``domain_length`` says otherwise."""
        grid = StaggeredGrid(num_points, domain_length)
        spanwise = (Periodic(), Periodic()) if grid.ndim == 3 else ()
        sides = Boundaries(Periodic(), Periodic(), Wall(), Wall(), *spanwise)
        return cls(grid, sides, viscosity, scheme, forcing)

    @classmethod
    def taylor_green(
        cls,
        num_points: int = 32,
        reynolds_number: ArrayLike = 100.0,
        *,
        ndim: int = 3,
        scheme: str | AbstractInterpolation = "central",
    ) -> "IncompressibleNavierStokes":
        """The periodic box ``[0, 2 pi]^ndim`` with ``viscosity = 1 / reynolds_number``
        (``U = L = 1``) for the Taylor–Green vortex (Brachet et al. 1983; 3-D at Re 1600
        is the high-order CFD workshop case) and, from any divergence-free start, decaying
        periodic turbulence. Start from `taylor_green_state`."""
        if ndim not in (2, 3):
            raise ConfigurationError(f"taylor_green: ndim must be 2 or 3, got {ndim!r}")
        grid = StaggeredGrid((num_points,) * ndim, (2 * np.pi,) * ndim)
        viscosity = 1.0 / jnp.asarray(reynolds_number)
        return cls(grid, Boundaries.periodic(ndim), viscosity, scheme)

    @classmethod
    def kolmogorov(
        cls,
        num_points: int = 32,
        *,
        viscosity=1e-3,
        drag=0.1,
        forcing_amplitude=1.0,
        forcing_wavenumber: int = 4,
        scheme: str | AbstractInterpolation = "central",
    ) -> "IncompressibleNavierStokes":
        """Kolmogorov flow (forced 2-D turbulence) in the periodic box ``[0, 2 pi]^2``:
        body force ``forcing_amplitude sin(forcing_wavenumber y)`` along x on the x-faces,
        linear ``drag``, ``viscosity`` (defaults: Re 1000, drag 0.1, ``sin(4 y)``: Kochkov
        et al. 2021, the same flow as `hybrax.fluids.NavierStokes2D.kolmogorov`). Laminar
        steady state ``u = A sin(k y) / (viscosity k^2 + drag)``. ``forcing_amplitude``,
        ``viscosity`` and ``drag`` are differentiable leaves."""
        k = forcing_wavenumber
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigurationError(f"forcing_wavenumber must be an int >= 1, got {k!r}")
        if isinstance(num_points, int) and 2 * k > num_points:
            raise ConfigurationError(
                f"forcing_wavenumber {k} needs at least {2 * k} points per side (with fewer, "
                f"sin({k} y) aliases to a lower wavenumber on the grid), got num_points="
                f"{num_points}; use num_points >= {2 * k} or a smaller wavenumber"
            )
        grid = StaggeredGrid((num_points, num_points), (2 * np.pi, 2 * np.pi))
        _, y = grid.face_points(0)
        forcing = jnp.asarray(forcing_amplitude) * jnp.sin(k * y)
        periodic = Boundaries.periodic(2)
        return cls(grid, periodic, viscosity, scheme, forcing, drag=drag)

    def taylor_green_state(self, dtype=None) -> FlowState:
        """The Taylor–Green vortex sampled on the faces: 2-D ``u = sin x cos y``,
        ``v = -cos x sin y``; 3-D ``u = sin x cos y cos z``, ``v = -cos x sin y cos z``,
        ``w = 0`` (needs a periodic box of side ``2 pi``, as `taylor_green` builds)."""
        box = all(isinstance(side, Periodic) for a in range(self.grid.ndim)
                  for side in self.boundaries.sides(a))  # fmt: skip
        if not box or not np.allclose(self.grid.domain_length, 2 * np.pi):
            raise ConfigurationError(
                "taylor_green_state: needs a periodic box of side 2 pi "
                "(IncompressibleNavierStokes.taylor_green)"
            )
        dtype = dtype or jnp.result_type(float)
        x, y, *z = self.grid.face_points(0, dtype)
        u = jnp.sin(x) * jnp.cos(y) * (jnp.cos(z[0]) if z else 1.0)
        x, y, *z = self.grid.face_points(1, dtype)
        v = -jnp.cos(x) * jnp.sin(y) * (jnp.cos(z[0]) if z else 1.0)
        w = jnp.zeros(self.grid.face_shape(2), dtype) if z else None
        return self.initial_state(u, v, dtype, w=w)

    def kinetic_energy(self, state: FlowState) -> Float[Array, ""]:
        """Mean kinetic energy per unit mass ``<|u|^2> / 2`` (length^2/time^2): each
        component's square averaged over its faces (a periodic axis's duplicate last face
        left out), summed."""
        total = jnp.zeros((), state.u.dtype)
        for axis, q in enumerate(state.velocity):
            if _periodic(self.boundaries.sides(axis)[0]):
                q = lax.slice_in_dim(q, 0, q.shape[axis] - 1, axis=axis)
            total = total + 0.5 * jnp.mean(q * q)
        return total

    @classmethod
    def dfg_cylinder(
        cls,
        num_points: int = 32,
        *,
        case: str = "2D-1",
        max_inflow=None,
        viscosity=1e-3,
        scheme: str | AbstractInterpolation = "central",
        permeability=1e-4,
        immersed_boundary: str = "brinkman",
    ) -> "IncompressibleNavierStokes":
        """Flow around a cylinder, the DFG benchmarks of Schafer & Turek (1996): channel
        2.2 x 0.41 (m), cylinder of diameter 0.1 centred at (0.2, 0.2), parabolic inflow
        on the left, outflow on the right, walls above and below, viscosity 1e-3 (m^2/s).

        ``case="2D-1"``: peak inflow 0.3 (mean 0.2, Re 20), steady; reference c_D 5.5795,
        c_L 0.0106, pressure drop p(0.15, 0.2) - p(0.25, 0.2) = 0.1175. ``case="2D-2"``:
        peak 1.5 (mean 1, Re 100), periodic shedding; reference max c_D 3.23, max c_L 1.0,
        Strouhal 0.30. ``max_inflow`` overrides the case's peak speed. ``num_points`` cells
        across the channel (square cells). The cylinder is a `Cylinder` whose mask spans
        half a cell inside its surface.

        Measured (tests/fluids/test_dfg.py, central advection, the default: van Leer's
        limiter damps the wake, max c_D of 2D-2 +7% at 96 cells against +1.4%):

        ====  =====  ==========================  ======================================
        case  cells  result                      reference
        ====  =====  ==========================  ======================================
        2D-1  96     c_D -3.1%, dp -3.3%         c_D 5.5795, c_L 0.0106, dp 0.1175
        2D-1  192    c_D -1.6%, dp -1.3%, c_L    (t = 3 from a Poiseuille start)
                     0.0083
        2D-2  48     St +2.6%, max c_D -4.8%     St 0.30, max c_D 3.23, max c_L 1.0
        2D-2  96     St +1.5%, max c_D +1.4%,    (the last 3 of 10 s from rest; forces
                     max c_L +0.5%               with ``previous``, see
                                                 `drag_lift_coefficients`)
        ====  =====  ==========================  ======================================

        The errors fall about linearly with the cell size (a penalised body is a staircase
        of blocked faces), so coarser grids than these give the flow's features, not the
        benchmark's digits.

        ``immersed_boundary="direct_forcing"`` (about 4.4x the CPU time of a Brinkman step
        at 96 cells, float64: the cut cells' conjugate gradients): steady 2D-1 c_D +0.43%,
        dp -1.4%, c_L 0.0051 at 96 cells; c_D +0.04%, dp -0.02%, c_L about 0.0134 (+26%)
        at 192 (tests/fluids/test_dfg.py; at t = 3 the lift is still in a transient). The
        lift depends steeply on where the grid cuts the body (at 48 cells it ranges over
        -0.10 .. +0.11 as the centre moves within a cell), and in 2D-2 the swing comes out
        off-centre (-0.21 .. 0.74 at 48 cells) and, with the body symmetric on the grid
        (82 cells, centre on a grid line), centred but too small (-0.65 .. 0.62, max c_D
        -5.8%); Brinkman penalisation stays the default.

        ``immersed_boundary="image_point"`` (forced values along the surface normal, a
        face blended in as its grid-line neighbour sinks into the body; about 4.2x the CPU
        time of a Brinkman step at 96 cells, float64, one core, was 7.4x with three sweeps
        and no blending): the 48-cell lift ranges over -0.038 .. +0.056 as the centre moves
        within a cell (unblended -0.059 .. +0.075, direct forcing -0.10 .. +0.11); 2D-1 at
        96 cells c_D +0.13%, dp -2.5%, c_L 0.0017; at 192 cells (steady) c_D -0.03%, dp
        -0.8%, c_L 0.0111 (+4.5%; unblended 0.0109, +2.8%); 2D-2 at 48 cells St -1.4%, max
        c_D +1.2%, c_L -0.44 .. 0.83 (tests/fluids/test_dfg.py). On such grids the lift
        depends on where the grid cuts the body by about +-4% at 192 cells and far more at
        96, whichever second-order variant of the forcing is used.

        **For the 2D-1 lift, take ``num_points`` a multiple of 41**: the centre
        (0.2, 0.2) then falls on a grid line, the discrete body and its forcing are
        mirror-symmetric about y = 0.2, and the grid's cut adds no lift. With
        ``immersed_boundary="image_point"`` (steady, from a Poiseuille start to t = 8,
        ``dt`` at Courant 0.25 and diffusion number 0.8: the steady lift carries an O(dt)
        error of the forcing's splitting, -1.6% at 1.5x that ``dt``):

        =====  ========  ========  ========
        cells  c_D       c_L       dp
        =====  ========  ========  ========
        41     +0.88%    +27%      -0.73%
        82     +0.04%    +0.1%     -2.8%
        123    -0.07%    -0.5%     -1.9%
        164    -0.06%    -0.3%     -1.1%
        =====  ========  ========  ========

        (tests/fluids/test_dfg.py::test_dfg_2d1_image_point_on_a_symmetric_grid; Brinkman
        gives c_L 0.0051 at 82 cells even on this grid.) Brinkman stays the default (within
        3% on 2D-2 at 96 cells, at a quarter of the cost).
        """
        peaks = {"2D-1": 0.3, "2D-2": 1.5}
        if case not in peaks:
            raise ConfigurationError(f"case must be one of {tuple(peaks)}, got {case!r}")
        peak = peaks[case] if max_inflow is None else max_inflow
        height = 0.41
        grid = StaggeredGrid((round(2.2 / height * num_points), num_points), (2.2, height))
        y = jnp.asarray(grid.centres_1d(1))
        profile = 4 * jnp.asarray(peak) * y * (height - y) / height**2
        sides = Boundaries(Inflow(profile), Outflow(), Wall(), Wall())
        # (the band half a cell, and thinner than the radius on grids of 5 cells or fewer)
        body = Cylinder(jnp.array([0.2, 0.2]), 0.05, min(grid.spacing[1] / 2, 0.04))
        return cls(
            grid,
            sides,
            viscosity,
            scheme,
            obstacle=body,
            permeability=permeability,
            immersed_boundary=immersed_boundary,
        )

    def poiseuille_profile(self, y: ArrayLike) -> Array:
        """The laminar channel profile ``forcing y (Ly - y) / (2 viscosity)`` at heights y."""
        height = self.grid.domain_length[1]
        viscosity = concrete_or_none(self.viscosity)
        if viscosity is not None and np.any(np.asarray(viscosity) == 0):
            raise ConfigurationError(
                "poiseuille_profile: the viscosity is 0, so a forced channel has no steady "
                "laminar profile (it accelerates for ever); give a positive viscosity"
            )
        y = jnp.asarray(y)
        return (
            scalar_like(self.forcing, y) * y * (height - y) / (2 * scalar_like(self.viscosity, y))
        )

    def check_state(self, state: FlowState) -> None:
        if not isinstance(state, FlowState):
            raise ConfigurationError(
                f"state must be a hybrax.fluids.FlowState, got {type(state).__name__}"
            )
        ndim = self.grid.ndim
        if (state.w is None) != (ndim == 2):
            raise ConfigurationError(
                f"state: a {ndim}-D grid needs "
                + ("w, the z-velocity" if ndim == 3 else "no w (w=None)")
                + f", got w={'None' if state.w is None else jnp.shape(state.w)}"
            )
        shapes = (*(self.grid.face_shape(a) for a in range(ndim)), self.grid.cell_shape)
        got = tuple(jnp.shape(q) for q in (*state.velocity, state.pressure))
        if got != shapes:
            names = "(u, v, pressure)" if ndim == 2 else "(u, v, w, pressure)"
            raise ConfigurationError(
                f"state: {names} must have shapes {shapes} on this grid, got {got}"
            )
        dtypes = tuple(jnp.result_type(q) for q in (*state.velocity, state.pressure))
        if len(set(dtypes)) > 1 or dtypes[0] not in (jnp.float32, jnp.float64):
            raise ConfigurationError(
                "state: the velocities and pressure must share one floating dtype, float32 or "
                f"float64 (the fast pressure solve's transforms), got {[str(d) for d in dtypes]}"
                "; e.g. model.initial_state(dtype=jnp.float32)"
            )

    def initial_state(self, u=None, v=None, dtype=None, *, w=None) -> FlowState:
        """A state from face velocities (default: at rest; ``w`` on 3-D grids), with
        boundary faces set and the divergence projected out."""
        dtype = dtype or jnp.result_type(float)
        given = (u, v, w)[: self.grid.ndim]
        velocity = tuple(
            jnp.zeros(self.grid.face_shape(a), dtype) if q is None else jnp.asarray(q, dtype)
            for a, q in enumerate(given)
        )
        pressure = jnp.zeros(self.grid.cell_shape, dtype)
        w_state = velocity[2] if self.grid.ndim == 3 else None
        if self.grid.ndim == 2 and w is not None:
            raise ConfigurationError("initial_state: w is the z-velocity of a 3-D grid")
        state = FlowState(velocity[0], velocity[1], pressure, jnp.zeros((), dtype), w_state)
        self.check_state(state)
        for name, q in zip("uvw", velocity, strict=False):
            value = concrete_or_none(q)
            if value is not None and not np.all(np.isfinite(value)):
                raise ConfigurationError(
                    f"initial_state: {name} holds {int(np.sum(~np.isfinite(value)))} NaN or "
                    "infinite values; give finite face velocities"
                )
        return self.project(state, 1.0)

    # -- operators -----------------------------------------------------------------------
    def _momentum(
        self, velocity: tuple[Array, ...], axis: int, scheme: AbstractInterpolation
    ) -> Array:
        """Advection + diffusion tendency of the velocity component along ``axis`` (on the
        faces normal to ``axis``), from all components ``velocity``, with the face
        reconstruction ``scheme`` (``self.scheme`` bound to ``velocity``)."""
        along = velocity[axis]
        h = self.grid.spacing[axis]
        lo, hi = self.boundaries.sides(axis)
        q_n = pad_normal(along, axis, lo, hi)  # along its own axis
        n = along.shape[axis]

        def take(x, ax, start, stop):
            return lax.slice_in_dim(x, start, x.shape[ax] + stop, axis=ax)

        # flux along own axis at cell centres -1..n-1 (n + 1 interfaces)
        carrier = 0.5 * (take(q_n, axis, 1, -2) + take(q_n, axis, 2, -1))
        flux = carrier * scheme.interpolate(q_n, carrier, axis, axis)
        advection = (take(flux, axis, 1, 0) - take(flux, axis, 0, -1)) / h
        second = (take(q_n, axis, 1, -3) - 2 * along + take(q_n, axis, 3, -1)) / h**2
        for other in range(self.grid.ndim):
            if other == axis:
                continue
            k = self.grid.spacing[other]
            q_t = pad_tangential(along, other, *self.boundaries.sides(other), component=axis)
            # flux across at edges: the other component averaged onto this component's nodes
            c_pad = pad_tangential(velocity[other], axis, lo, hi, component=other)
            carrier_t = 0.5 * (take(c_pad, axis, 1, -2) + take(c_pad, axis, 2, -1))
            flux_t = carrier_t * scheme.interpolate(q_t, carrier_t, other, axis)
            advection = advection + (take(flux_t, other, 1, 0) - take(flux_t, other, 0, -1)) / k
            second = second + (take(q_t, other, 1, -3) - 2 * along + take(q_t, other, 3, -1)) / k**2
        nu = scalar_like(self.viscosity, along)
        rate = nu * second - advection - scalar_like(self.drag, along) * along
        if axis == 0:
            rate = rate + scalar_like(self.forcing, along)
        mask = fixed_normal_mask(n, lo, hi).astype(along.dtype)
        shape = [1] * along.ndim
        shape[axis] = n
        return rate * mask.reshape(shape) + convective_rate(along, axis, h, lo, hi)

    def _advection_diffusion(self, velocity: tuple[Array, ...]) -> tuple[Array, ...]:
        """Every component's `_momentum` (the general path; differentiated by autodiff,
        and the reference of `central_rates`' backward pass)."""
        scheme = self.scheme.bind(velocity)
        return tuple(self._momentum(velocity, a, scheme) for a in range(len(velocity)))

    def tendency(self, state: FlowState, t: ArrayLike) -> FlowState:
        """Advection and diffusion of the face velocities (pressure excluded; zero on
        boundary faces that the boundary conditions set, the convective condition's rate on
        convective outflow faces)."""
        velocity = state.velocity
        name = self._periodic_scheme
        # the built-in classes themselves (a subclass may change the face values)
        hand_written = {
            CentralInterpolation: central_rates,
            UpwindInterpolation: tvd_rates,
            VanLeerInterpolation: tvd_rates,
        }.get(type(self.scheme))
        if name is not None:  # the same stencils by periodic shifts
            like, corrections = state.u, None
            if name == "learned":  # a network's stencil corrections on a polynomial base
                bound = self.scheme.bind(velocity)
                name, corrections = bound.base, bound.coefficients
            rates = periodic_fv.momentum_rates(
                velocity,
                self.grid.spacing,
                scalar_like(self.viscosity, like),
                scalar_like(self.drag, like),
                scalar_like(self.forcing, like),
                name,
                corrections,
            )
        elif (
            self.hand_written_backward
            and self.immersed_boundary == "brinkman"
            and hand_written is not None
        ):
            rates = hand_written((velocity, self))
        else:
            rates = self._advection_diffusion(velocity)
        zero = jnp.zeros_like(state.pressure)
        return state.with_velocity(rates, zero, jnp.zeros_like(state.time))

    @property
    def _periodic_direct(self) -> bool:
        """Every side periodic, no obstacle, the direct pressure solve: the projection's
        fast path (`_periodic_fv.project`)."""
        sides = [side for axis in range(self.grid.ndim) for side in self.boundaries.sides(axis)]
        return (
            all(isinstance(side, Periodic) for side in sides)
            and self.obstacle is None
            and self.pressure_solver == "direct"
        )

    @property
    def _periodic_scheme(self) -> str | None:
        """The built-in scheme's name under `_periodic_direct` (the class itself, not a
        subclass, so a user's scheme keeps the general path), or "learned" for a
        `FusedLearnedInterpolation` (bound or not): the tendency's fast path
        (`_periodic_fv.momentum_rates`); None otherwise."""
        names = {CentralInterpolation: "central", UpwindInterpolation: "upwind"}
        names[VanLeerInterpolation] = "van_leer"
        names[FusedLearnedInterpolation] = names[BoundInterpolation] = "learned"
        return names.get(type(self.scheme)) if self._periodic_direct else None

    def apply_boundaries(self, state: FlowState) -> FlowState:
        """``state`` with the boundary faces' normal velocities set (walls 0, inflow profile,
        zero-gradient outflow copies the adjacent face, convective outflow keeps its advanced
        value, periodic copies)."""
        velocity = tuple(
            apply_normal(q, axis, *self.boundaries.sides(axis))
            for axis, q in enumerate(state.velocity)
        )
        return state.with_velocity(velocity)

    def project(self, state: FlowState, dt: ArrayLike) -> FlowState:
        """Set the boundary faces, then remove the divergence: solve ``lap phi = div u``
        (pressure Poisson problem; Neumann on walls and inflow, zero on outflow, periodic)
        and subtract ``grad phi``. The stored pressure is ``phi / dt``."""
        if self._periodic_direct:  # the same solve, divergence and gradient by shifts
            velocity, phi = periodic_fv.project(state.velocity, self.grid.spacing)
            return state.with_velocity(velocity, phi / scalar_like(dt, phi))
        state = self.apply_boundaries(state)
        rhs = divergence(*state.velocity, grid=self.grid)
        if self.obstacle is not None and self.immersed_boundary != "brinkman":
            rhs = jnp.where(self.closed_cells(rhs.dtype), 0, rhs)
        phi = self.solve_pressure(rhs)
        gradients = pressure_gradient(phi, self.grid, self.boundaries)
        velocity = []
        for axis, (q, g) in enumerate(zip(state.velocity, gradients, strict=True)):
            lo, hi = self.boundaries.sides(axis)
            q = q - g
            velocity.append(apply_normal(q, axis, lo, hi) if _periodic(lo) else q)
        return state.with_velocity(tuple(velocity), phi / scalar_like(dt, phi))

    def solve_pressure(self, rhs: Float[Array, "..."]) -> Float[Array, "..."]:
        """``phi`` with ``laplacian(phi) = rhs`` (the projection's Poisson problem) by the
        model's ``pressure_solver``."""
        if self.pressure_solver == "krylov":
            rtol = 1e-5 if rhs.dtype == jnp.float32 else 1e-10
            return solve_poisson_krylov(rhs, self.grid, self.boundaries, rtol=rtol)
        return solve_poisson(rhs, self.grid, self.boundaries)

    def obstacle_masks(self, dtype) -> tuple[Array, ...]:
        """Smoothed solid fractions on the faces of each axis (zeros without obstacle)."""
        axes = range(self.grid.ndim)
        if self.obstacle is None:
            return tuple(jnp.zeros(self.grid.face_shape(a), dtype) for a in axes)
        return tuple(self.obstacle.mask(*self.grid.face_points(a, dtype)) for a in axes)

    def penalize(self, state: FlowState, dt: ArrayLike) -> FlowState:
        """Implicit Brinkman step ``u <- u / (1 + dt chi / eta)`` (identity without
        obstacle)."""
        if self.obstacle is None:
            return state
        if self.immersed_boundary != "brinkman":
            # forced values are what the faces must hold after the projection, which will
            # subtract dt grad p: add the last pressure's gradient back (an incremental
            # pressure), so that a steady flow keeps them exactly
            h = scalar_like(dt, state.u)
            gradients = pressure_gradient(state.pressure, self.grid, self.boundaries)
            shifted = tuple(q - h * g for q, g in zip(state.velocity, gradients, strict=True))
            dtype = state.u.dtype
            geometry = None
            if self.immersed_boundary == "image_point":
                points = tuple(self.grid.face_points(a, dtype) for a in range(self.grid.ndim))
                geometry = tuple((surface_normals(self.obstacle, p), p) for p in points)
            distances = self._face_distances(dtype)
            forced = impose_body(shifted, distances, self.grid.spacing, geometry)
            velocity = tuple(q + h * g for q, g in zip(forced, gradients, strict=True))
            return state.with_velocity(velocity)
        rate = scalar_like(dt, state.u) / jnp.asarray(self.permeability, state.u.dtype)
        chis = self.obstacle_masks(state.u.dtype)
        velocity = tuple(q / (1 + rate * chi) for q, chi in zip(state.velocity, chis, strict=True))
        return state.with_velocity(velocity)

    def closed_cells(self, dtype=None) -> Array:
        """True on the cells all of whose faces the direct forcing sets (inside the body or
        cut by its surface: their divergence is the forcing's, and the projection leaves
        them alone); False everywhere without obstacle or with Brinkman penalisation."""
        if self.obstacle is None or self.immersed_boundary == "brinkman":
            return jnp.zeros(self.grid.cell_shape, bool)
        dtype = dtype or jnp.result_type(float)
        return closed_cells(tuple(constrained_faces(d) for d in self._face_distances(dtype)))

    def _face_distances(self, dtype) -> tuple[Array, ...]:
        return tuple(
            self.obstacle.signed_distance(*self.grid.face_points(axis, dtype))
            for axis in range(self.grid.ndim)
        )

    def divergence(self, state: FlowState) -> Float[Array, "..."]:
        """Cell-centred divergence of the velocity (1/time)."""
        return divergence(*state.velocity, grid=self.grid)

    def courant_number(self, state: FlowState, dt: ArrayLike) -> Array:
        """The stability number of an explicit step: the larger of the advective Courant
        number ``dt (U/dx + V/dy (+ W/dz))`` and the diffusion number
        ``dt nu (2/dx^2 + 2/dy^2 (+ 2/dz^2))``. ``U``, ``V``, ``W`` are the largest speeds
        along each axis in the state or imposed by the boundaries (a sliding lid, an inflow
        profile), so a flow started at rest is judged by the speeds that will drive it.
        `ProjectedRK` with three stages is stable up to about 1 on both (central
        advection; upwind and van Leer alike)."""
        dtype = state.u.dtype
        speeds = [jnp.max(jnp.abs(q)) for q in state.velocity]
        for normal in range(self.grid.ndim):
            for side in self.boundaries.sides(normal):
                if isinstance(side, Wall):  # tangential speed, along the first tangential axis
                    axis = first_tangential_axis(normal)
                    wall = jnp.abs(jnp.asarray(side.velocity, dtype))
                    speeds[axis] = jnp.maximum(speeds[axis], wall)
                if isinstance(side, Inflow):  # normal speed
                    inflow = jnp.max(jnp.abs(jnp.asarray(side.profile, dtype)))
                    speeds[normal] = jnp.maximum(speeds[normal], inflow)
        spacing = self.grid.spacing
        advective = dt * sum(speed / h for speed, h in zip(speeds, spacing, strict=True))
        diffusive = dt * scalar_like(self.viscosity, state.u) * sum(2 / h**2 for h in spacing)
        return jnp.maximum(advective, diffusive)


def _periodic(side) -> bool:
    return isinstance(side, Periodic)


_SIDE_NAMES = (("left", "right"), ("bottom", "top"), ("front", "back"))


_TRACED = (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError)


def _check_net_inflow(grid: StaggeredGrid, boundaries) -> None:
    """Without an `Outflow` side the prescribed inflow profiles must carry zero net volume
    flux (an incompressible flow in a closed box cannot gain volume; the pressure
    problem has no solution). Checked when the profiles are concrete."""
    sides = [
        (axis, end, side)
        for axis in range(grid.ndim)
        for end, side in enumerate(boundaries.sides(axis))
    ]
    outflow = any(isinstance(side, Outflow) for _, _, side in sides)
    fluxes = {}
    for axis, end, side in sides:
        if not isinstance(side, Inflow):
            continue
        area = float(np.prod([h for a, h in enumerate(grid.spacing) if a != axis]))
        across = tuple(n for a, n in enumerate(grid.num_points) if a != axis)
        try:
            profile = np.broadcast_to(np.asarray(side.profile, np.float64), across)
        except _TRACED:
            return  # traced (inside jit / grad): checked where the profile is concrete
        sign = 1 if end == 0 else -1  # into the domain
        fluxes[_SIDE_NAMES[axis][end]] = sign * float(np.sum(profile)) * area
    net = sum(fluxes.values())
    if outflow:
        if fluxes and net < -1e-6 * sum(abs(f) for f in fluxes.values()):
            listed = ", ".join(f"{name} {flux:+.4g}" for name, flux in fluxes.items())
            raise ConfigurationError(
                f"boundaries: the Inflow sides carry a net volume flux of {net:+.4g} per unit "
                f"time out of the domain ({listed}), so the Outflow side would have to draw "
                "fluid in; an inflow profile is the velocity along the axis, positive into "
                "the domain on a low side (left, bottom) and negative on a high side"
            )
        return
    if fluxes and abs(net) > 1e-6 * max(sum(abs(f) for f in fluxes.values()), 1e-300):
        listed = ", ".join(f"{name} {flux:+.4g}" for name, flux in fluxes.items())
        raise ConfigurationError(
            f"boundaries: the Inflow sides bring a net volume flux of {net:+.4g} per unit time "
            f"into the domain ({listed}) and no side lets fluid out; an incompressible flow "
            "needs zero net flux: add an Outflow side or balance the profiles"
        )


def _check_obstacle_seen(obstacle, grid: StaggeredGrid) -> None:
    """A body whose solid fraction is zero on every face (outside the domain, or thinner
    than the band the mask needs between faces) would silently leave the flow without
    it; one that covers every face leaves no fluid. Checked when the body is concrete."""
    try:
        masks = [np.asarray(obstacle.mask(*grid.face_points(a))) for a in range(grid.ndim)]
    except _TRACED:
        return
    largest = max(float(np.max(m)) for m in masks)
    smallest = min(float(np.min(m)) for m in masks)
    if smallest >= 0.5:
        raise ConfigurationError(
            f"obstacle: the {type(obstacle).__name__} covers the whole domain "
            f"{tuple(grid.domain_length)} (solid fraction at least {smallest:.2f} on every "
            "face), so no fluid is left; make it smaller than the domain"
        )
    if largest == 0.0:
        raise ConfigurationError(
            f"obstacle: the {type(obstacle).__name__} covers no face of the grid (solid "
            f"fraction 0 everywhere): it lies outside the domain {tuple(grid.domain_length)} or "
            f"is too small for cells of size {tuple(float(h) for h in grid.spacing)}; move it "
            "inside or refine the grid"
        )


def _check_obstacle_clear_of_inflow(obstacle, grid: StaggeredGrid, boundaries) -> None:
    """An obstacle whose solid fraction reaches an inflow side's faces (or the next faces
    inward) would swallow the prescribed inflow; checked when the body is concrete."""
    for axis in range(grid.ndim):
        points = grid.face_points(axis)
        for end, side in enumerate(boundaries.sides(axis)):
            if not isinstance(side, Inflow):
                continue
            rows = (0, 1) if end == 0 else (-1, -2)  # the side's faces and the next inward
            try:
                solid = np.maximum(
                    *(np.asarray(obstacle.mask(*(jnp.take(c, r, axis) for c in points)))
                      for r in rows)
                )  # fmt: skip
            except _TRACED:
                return  # traced (inside jit / grad): the body's position is not known now
            if np.max(solid) > 0:
                where = np.unravel_index(int(np.argmax(solid)), solid.shape)
                numpy_points = [np.asarray(c) for c in points]
                at = ", ".join(
                    f"{'xyz'[a]} = {float(np.take(numpy_points[a], rows[0], axis)[where]):.4g}"
                    for a in range(grid.ndim)
                    if a != axis
                )
                raise ConfigurationError(
                    f"obstacle: the body cuts the inflow on the {_SIDE_NAMES[axis][end]} side "
                    f"(solid fraction {float(solid[where]):.2f} within one cell of it at {at}); "
                    "an inflow must enter fluid: move the body at least one cell away from "
                    "that side"
                )


def _check_path_to_outflow(obstacle, grid: StaggeredGrid, boundaries) -> None:
    """With an `Inflow` and an `Outflow` side, the fluid cells (solid fraction below 1/2
    at the centre) must connect them: a body that closes the channel leaves the inflow
    nowhere to go. Checked when the body is concrete; periodic axes wrap."""
    ends = [
        (axis, end, side)
        for axis in range(grid.ndim)
        for end, side in enumerate(boundaries.sides(axis))
        if isinstance(side, (Inflow, Outflow))
    ]
    kinds = {type(side) for *_, side in ends}
    if not (Inflow in kinds and Outflow in kinds):
        return
    try:
        fluid = np.asarray(obstacle.mask(*grid.cell_centres())) < 0.5
    except _TRACED:
        return
    copies = fluid
    for axis in range(grid.ndim):  # two copies along periodic axes join paths that wrap
        if isinstance(boundaries.sides(axis)[0], Periodic):
            copies = np.concatenate([copies, copies], axis=axis)
    labels, _ = ndimage.label(copies)

    def reached(kind):
        found = set()
        for axis, end, side in ends:
            if isinstance(side, kind):
                layer = np.take(labels, 0 if end == 0 else -1, axis=axis)
                found |= set(np.unique(layer[layer > 0]).tolist())
        return found

    if not reached(Inflow) & reached(Outflow):
        raise ConfigurationError(
            f"obstacle: the {type(obstacle).__name__} closes the domain between the Inflow "
            "and the Outflow sides (no path of fluid cells, solid fraction below 1/2, joins "
            "them), so the inflow has nowhere to go; leave a gap at least one cell wide or "
            "refine the grid"
        )


class ProjectedRK(AbstractStepper):
    """Strong-stability-preserving Runge–Kutta with a pressure projection after every
    stage (Shu–Osher form): ``stages`` 1 (forward Euler), 2 (Heun / SSP-RK2) or 3
    (SSP-RK3, default). Every stage is divergence-free to round-off.

    Parameters
    ----------
    dynamics
        An `IncompressibleNavierStokes`.
    dt
        Time step (model time units), positive.
    stages
        Number of stages and order (static), 1, 2 or 3.
    freeze_scheme
        Bind the model's face reconstruction (`AbstractInterpolation.bind`) once per step,
        at the step's initial state, and hold it over the stages (static; default False:
        bound at every stage). For `FusedLearnedInterpolation` this evaluates the network
        once per step instead of once per stage; the stencil weights then lag the stages'
        velocity by up to one step (a first-order-in-time error in the weights, which
        training through the stepper absorbs). Built-in schemes are unaffected.
    checkpoint_tendency
        Recompute each stage's tendency in the backward pass instead of storing its
        intermediates (static; default True). The forward pass is unchanged. For a
        tendency that JAX differentiates (a learned or user-written scheme,
        ``hand_written_backward=False``, an immersed boundary other than Brinkman's) a
        gradient through many steps costs less, because storing and reading back the
        advection's intermediates costs more than computing them again (100 steps,
        float32, one core, `benchmarks/fluids_walls.py --parts gradient`, van Leer before
        it had a hand-written backward pass: lid-driven cavity at 256² 5.11x -> 3.08x the
        forward's time, DFG 2D-2 cylinder at 96 cells 6.19x -> 4.23x; XLA's scratch memory
        2.56 GB -> 190 MB and 1.82 GB -> 140 MB). The built-in schemes' hand-written
        backward passes store nothing to recompute, and the option changes neither their
        time (central 2.15x / 2.19x and 2.50x / 2.58x; van Leer 1.67x / 1.64x and 2.82x /
        2.86x) nor their memory. A learned scheme bound at every stage
        (``freeze_scheme=False``) runs its network again in the backward pass.
    max_courant
        The largest stability number (`IncompressibleNavierStokes.courant_number`:
        advective Courant number or diffusion number, judged with the boundaries' lid and
        inflow speeds) accepted for a run's initial state (static; default 1.5, a guard
        against a ``dt`` far too large rather than a guarantee: the three-stage scheme's
        linear limits in these measures are about 1.7 for central advection and 1.26 for
        diffusion). `hybrax.rollout` checks it before the run (`hybrax.check_time_step`):
        a concrete state beyond it raises `hybrax.ConfigurationError` naming the largest
        stable ``dt``; under `jax.jit` the check raises when the run executes. A flow that
        speeds up later and blows up is caught by the rollout's finiteness check. ``None``
        turns the check off.

    Examples
    --------
    >>> import hybrax
    >>> from hybrax.fluids import IncompressibleNavierStokes, ProjectedRK
    >>> model = IncompressibleNavierStokes.lid_driven_cavity(16, 100.0)
    >>> final, _ = hybrax.rollout(ProjectedRK(model, 0.01), model.initial_state(), 10)
    >>> hybrax.rollout(ProjectedRK(model, 0.5), model.initial_state(), 10)
    Traceback (most recent call last):
    ...
    hybrax.core._errors.ConfigurationError: ProjectedRK over IncompressibleNavierStokes...
    """

    dynamics: IncompressibleNavierStokes
    dt: ArrayLike
    stages: int = eqx.field(static=True, default=3)
    freeze_scheme: bool = eqx.field(static=True, default=False)
    checkpoint_tendency: bool = eqx.field(static=True, default=True)
    max_courant: float | None = eqx.field(static=True, default=1.5)
    _weights: ClassVar = {1: (), 2: ((0.5, 0.5),), 3: ((0.75, 0.25), (1 / 3, 2 / 3))}

    def __check_init__(self):
        check_dynamics(self.dynamics, "ProjectedRK")
        if not isinstance(self.dynamics, IncompressibleNavierStokes):
            raise ConfigurationError(
                "ProjectedRK: dynamics must be a hybrax.fluids.IncompressibleNavierStokes, "
                f"got {type(self.dynamics).__name__}"
            )
        if self.stages not in (1, 2, 3):
            raise ConfigurationError(f"stages must be 1, 2 or 3, got {self.stages!r}")
        limit = self.max_courant
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0
        ):
            raise ConfigurationError(
                f"max_courant must be a positive number or None (no check), got {limit!r}"
            )

    @property
    def order(self) -> int:
        return self.stages

    def step(self, state: FlowState) -> FlowState:
        model = self.dynamics
        model.check_state(state)
        if self.freeze_scheme:
            bound = model.scheme.bind(state.velocity)
            model = eqx.tree_at(lambda m: m.scheme, model, bound)
        t0 = time_or_zero(state)
        h = scalar_like(self.dt, state.u)

        tendency = model.tendency
        if self.checkpoint_tendency:
            tendency = jax.checkpoint(lambda s, t: model.tendency(s, t))

        def euler(s, t):
            k = tendency(s, t)
            advanced = tuple(q + h * r for q, r in zip(s.velocity, k.velocity, strict=True))
            return model.penalize(s.with_velocity(advanced), h)

        y = model.project(euler(state, t0), h)
        offsets = {2: (1.0,), 3: (1.0, 0.5)}.get(self.stages, ())
        for (a, b), c in zip(self._weights[self.stages], offsets, strict=True):
            e = euler(y, t0 + c * h)
            combo = tuple(
                a * q0 + b * q1 for q0, q1 in zip(state.velocity, e.velocity, strict=True)
            )
            y = model.project(state.with_velocity(combo, e.pressure), b * h)
        return y.with_velocity(y.velocity, time=(t0 + h).astype(state.time.dtype))
