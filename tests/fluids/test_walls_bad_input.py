"""Bad input to the wall-bounded solver's public pieces (issue 13's "Bad input" bullets):
the pressure Poisson solves, the shedding diagnostics and the spectral solvers' entry
points raise errors naming the argument, what was given and what would be right; a
Poisson solve that misses its tolerance raises with its iterations and residual, never
returns a partial answer; a diagnostic never returns NaN for a signal without a period."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.errors import ConfigurationError
from hybrax.fluids import (
    Boundaries,
    Cylinder,
    IncompressibleNavierStokes,
    Inflow,
    NavierStokes2D,
    NavierStokes3D,
    Outflow,
    ProjectedRK,
    Rectangle,
    Sphere,
    Wall,
    dominant_frequency,
    pressure_at,
    solve_poisson,
    solve_poisson_krylov,
    vorticity_correlation,
)
from hybrax.grids import StaggeredGrid

NAN = float("nan")
GRID = StaggeredGrid((8, 8))
WALLS = Boundaries(Wall(), Wall(), Wall(), Wall())


def _rhs(dtype=jnp.float64):
    """A consistent right-hand side for the closed box: cos(pi x) cos(pi y), zero mean."""
    x, y = GRID.cell_centres(dtype)
    return jnp.cos(jnp.pi * x) * jnp.cos(jnp.pi * y)


def _weights(blocked: float = 0.5):
    """Face weights with a softened patch (a weighted, non-trivial Krylov problem)."""
    wu = jnp.ones(GRID.face_shape(0)).at[3:5, 3:5].set(blocked)
    return wu, jnp.ones(GRID.face_shape(1))


@pytest.mark.parametrize("solve", [solve_poisson, solve_poisson_krylov])
@pytest.mark.parametrize(
    "args, match",
    [
        (
            (jnp.ones((7, 8)), GRID, WALLS),
            r"rhs must have the grid's cell shape \(8, 8\).*\(7, 8\)",
        ),
        ((jnp.full((8, 8), NAN), GRID, WALLS), "rhs must be finite.*64 of 64"),
        ((jnp.ones((8, 8)), (8, 8), WALLS), "grid must be a hybrax.grids.StaggeredGrid.*tuple"),
        ((jnp.ones((8, 8)), GRID, "walls"), "boundaries must be hybrax.fluids.Boundaries.*str"),
        (
            (jnp.ones((8, 8, 8)), StaggeredGrid((8, 8, 8)), WALLS),
            "a 3-D grid needs 6 sides.*got 4",
        ),
    ],
)
def test_poisson_solves_name_bad_problems(solve, args, match):
    """Before: shape and grid mismatches died in zip() or a broadcast deep inside JAX, a
    NaN rhs came back as a NaN field. (An integer rhs, which came back as an integer zero
    field, is now refused too; under the test suite's jaxtyping hook the annotation
    rejects it first, so it is not parametrised here.)"""
    with pytest.raises(ConfigurationError, match=match):
        solve(*args)


@pytest.mark.parametrize(
    "options, match",
    [
        ({"rtol": 0.0}, "rtol must be positive and finite, got 0.0"),
        ({"rtol": NAN}, "rtol must be positive and finite, got nan"),
        ({"rtol": -1.0}, "rtol must be positive"),
        ({"rtol": 2.0}, r"rtol is a relative residual and must lie in \(0, 1\), got 2.0"),
        ({"max_steps": 0}, "max_steps must be a positive int.*got 0"),
        ({"max_steps": -1}, "max_steps must be a positive int.*got -1"),
    ],
)
def test_krylov_settings_are_checked(options, match):
    """Before: rtol=nan and max_steps=-1 returned a zero field as if solved; rtol=-1 was
    lineax's anonymous ValueError."""
    with pytest.raises(ConfigurationError, match=match):
        solve_poisson_krylov(_rhs(), GRID, WALLS, **options)


@pytest.mark.parametrize(
    "weights, match",
    [
        ((jnp.full(GRID.face_shape(0), NAN), jnp.ones(GRID.face_shape(1))), r"weights\[0\].*nan"),
        ((jnp.ones(GRID.face_shape(0)), -jnp.ones(GRID.face_shape(1))), r"weights\[1\].*-1.0"),
        ((jnp.ones(GRID.face_shape(0)),), "face weights of shapes"),
    ],
)
def test_krylov_weights_are_checked(weights, match):
    """Before: NaN weights gave a zero field, reported as converged."""
    with pytest.raises(ConfigurationError, match=match):
        solve_poisson_krylov(_rhs(), GRID, WALLS, weights)


def test_krylov_that_misses_its_tolerance_reports_iterations_and_residual():
    """One conjugate-gradient step cannot solve the weighted problem: the error says how
    far it got. The same solve with room converges (the equation holds)."""
    with pytest.raises(
        ConfigurationError,
        match=r"did not reach rtol=1e-10: after 1 of max_steps=1 iterations the relative "
        r"residual is \d",
    ):
        solve_poisson_krylov(_rhs(), GRID, WALLS, _weights(), rtol=1e-10, max_steps=1)


@pytest.mark.slow
def test_traced_krylov_that_misses_its_tolerance_raises_at_run_time():
    """The model's path (inside jit): the run-time error carries the same advice."""
    solve = eqx.filter_jit(
        lambda r: solve_poisson_krylov(r, GRID, WALLS, _weights(), rtol=1e-10, max_steps=1)
    )
    with pytest.raises(eqx.EquinoxRuntimeError, match="did not reach rtol=1e-10 within"):
        jax.block_until_ready(solve(_rhs()))


def test_krylov_with_an_inconsistent_weighted_rhs_raises():
    """A uniform source in a closed box has no solution; CG stopped at once on the zero
    preconditioned residual and returned phi = 0 as converged (the equation missed by
    100%). (Integer signals and a non-int max_steps are refused too; under the suite's
    jaxtyping hook the annotations reject them first.)"""
    with pytest.raises(ConfigurationError, match="relative residual is 1"):
        solve_poisson_krylov(jnp.ones((8, 8)), GRID, WALLS, _weights())


@pytest.mark.parametrize("method", ["crossings", "fft"])
@pytest.mark.parametrize(
    "signal, match",
    [
        (jnp.ones(64), "no measurable period"),  # constant
        (jnp.linspace(-1.0, 1.0, 64), "no measurable period"),  # one crossing, no period
        (jnp.full(64, NAN), "signal must be finite"),
    ],
)
def test_dominant_frequency_never_returns_nan_or_noise(method, signal, match):
    """Before: NaN (crossings), 1.0 (the FFT's noise peak of a constant), inf (int)."""
    if method == "fft" and "measurable" in match and signal[0] != signal[1]:
        return  # a ramp has a spectral peak (its lowest mode): only the crossing count fails
    with pytest.raises(ConfigurationError, match=match):
        dominant_frequency(signal, 0.01, method)


def test_dominant_frequency_traced_signal_without_period_raises_at_run_time():
    frequency = eqx.filter_jit(dominant_frequency)
    t = jnp.arange(400.0) * 0.01
    assert float(frequency(jnp.sin(2 * jnp.pi * 2.0 * t), 0.01)) == pytest.approx(2.0, rel=1e-3)
    with pytest.raises(eqx.EquinoxRuntimeError, match="no measurable period"):
        jax.block_until_ready(frequency(jnp.ones(400), 0.01))


def test_spectral_entry_points_refuse_non_finite_fields():
    """Before: NaN vorticity became a NaN state; NaN velocity was reported as a wrong
    mean flow."""
    model = NavierStokes2D(16)
    with pytest.raises(ConfigurationError, match=r"vorticity must be finite.*256 of 256"):
        model.state_from_vorticity(jnp.full((16, 16), NAN))
    with pytest.raises(ConfigurationError, match="from_velocity: velocity must be finite"):
        model.from_velocity(jnp.zeros((2, 16, 16)).at[0, 3, 4].set(NAN))
    model3 = NavierStokes3D(8)
    with pytest.raises(ConfigurationError, match=r"velocity must be finite.*1 of 1536"):
        model3.state_from_velocity(jnp.zeros((3, 8, 8, 8)).at[1, 2, 3, 4].set(np.inf))


def test_correlation_with_a_zero_field_raises():
    """0 / 0 gave NaN, indistinguishable from a forecast that blew up (which keeps its
    NaN: `decorrelation_time` reads that as decorrelated)."""
    ones = jnp.ones((16, 16))
    with pytest.raises(ConfigurationError, match="a field is zero everywhere"):
        vorticity_correlation(jnp.zeros((16, 16)), ones)
    assert np.isnan(float(vorticity_correlation(jnp.full((16, 16), NAN), ones)))
    assert float(vorticity_correlation(ones, 2 * ones)) == pytest.approx(1.0)


# -- the solver itself: time step, inflow direction, bodies that leave no flow -----------
def _cavity():
    return IncompressibleNavierStokes.lid_driven_cavity(8, 100.0)


def test_time_step_beyond_the_stability_limit_raises_before_the_run():
    """dt = 1 on an 8-cell cavity with a unit lid is a Courant number of 8: the run used to
    return finite garbage (u up to 2.45 after two steps)."""
    model = _cavity()
    state = model.initial_state()
    with pytest.raises(ConfigurationError, match=r"Courant number 8 .* use dt <= 0\.1875"):
        hybrax.rollout(ProjectedRK(model, 1.0), state, 2)

    @jax.jit
    def traced(dt):
        return hybrax.rollout(ProjectedRK(model, dt), state, 2)[0].u

    with pytest.raises(Exception, match=r"Courant number above 1\.5"):
        jax.block_until_ready(traced(1.0))
    assert np.all(np.isfinite(traced(0.05)))  # Courant 0.4 runs
    assert ProjectedRK(model, 1.0, max_courant=None).max_courant is None  # no check
    with pytest.raises(ConfigurationError, match="max_courant must be a positive number"):
        ProjectedRK(model, 0.01, max_courant=0.0)


def test_inflow_that_points_out_of_the_domain_is_refused():
    grid = StaggeredGrid((16, 8), (2.0, 1.0))
    with pytest.raises(ConfigurationError, match="out of the domain"):
        IncompressibleNavierStokes(grid, Boundaries(Inflow(-1.0), Outflow(), Wall(), Wall()), 0.1)
    with pytest.raises(ConfigurationError, match="out of the domain"):
        IncompressibleNavierStokes.dfg_cylinder(8, max_inflow=-1.0)
    # into the domain from the high side is a negative velocity, and is accepted
    IncompressibleNavierStokes(grid, Boundaries(Outflow(), Inflow(-1.0), Wall(), Wall()), 0.1)


def test_bodies_that_leave_no_flow_are_refused():
    box = StaggeredGrid((16, 16))
    with pytest.raises(ConfigurationError, match="covers the whole domain"):
        IncompressibleNavierStokes(
            box, WALLS, 0.01, obstacle=Cylinder(jnp.array([0.5, 0.5]), 5.0, 0.06)
        )
    channel = StaggeredGrid((32, 16), (2.0, 1.0))
    sides = Boundaries(Inflow(1.0), Outflow(), Wall(), Wall())
    wall_to_wall = Rectangle(jnp.array([1.0, 0.5]), jnp.array([0.2, 2.0]), 0.06)
    with pytest.raises(ConfigurationError, match="closes the domain between the Inflow"):
        IncompressibleNavierStokes(channel, sides, 0.01, obstacle=wall_to_wall)
    with_gap = Rectangle(jnp.array([1.0, 0.4]), jnp.array([0.2, 0.6]), 0.06)
    IncompressibleNavierStokes(channel, sides, 0.01, obstacle=with_gap)
    # a path that leaves through a periodic side and comes back is a path
    periodic_y = Boundaries(Inflow(1.0), Outflow(), *Boundaries.periodic(2).sides(1))
    low_and_high = Rectangle(jnp.array([1.0, 0.5]), jnp.array([0.2, 0.7]), 0.06)
    IncompressibleNavierStokes(channel, periodic_y, 0.01, obstacle=low_and_high)


def test_preset_arguments_without_a_meaning_are_refused():
    model = _cavity()
    with pytest.raises(ConfigurationError, match="u holds 72 NaN"):
        model.initial_state(jnp.full((9, 8), NAN))
    with pytest.raises(ConfigurationError, match="viscosity is 0"):
        IncompressibleNavierStokes.channel(viscosity=0.0).poiseuille_profile(0.5)
    with pytest.raises(ConfigurationError, match="forcing_wavenumber 5 needs at least 10"):
        IncompressibleNavierStokes.kolmogorov(8, forcing_wavenumber=5)
    IncompressibleNavierStokes.kolmogorov(8, forcing_wavenumber=4)  # the Nyquist mode is kept


def test_pressure_at_a_point_outside_the_domain_raises():
    model = IncompressibleNavierStokes.dfg_cylinder(8)
    state = model.initial_state()
    with pytest.raises(ConfigurationError, match=r"pressure_at: x = 5 is not a point"):
        pressure_at(model, state, 5.0, 0.2)
    with pytest.raises(ConfigurationError, match=r"y = nan is not a point .* between 0 and 0.41"):
        pressure_at(model, state, 0.15, NAN)
    assert np.isfinite(float(pressure_at(model, state, 0.15, 0.2)))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Cylinder((0.5, 0.5), 0.1, 10.0), r"Cylinder: width .* smaller than the radius"),
        (lambda: Sphere((0.5, 0.5, 0.5), 0.1, 0.1), r"Sphere: width .* smaller than the radius"),
        (
            lambda: Rectangle((0.5, 0.5), (0.4, 0.05), 0.03),
            r"Rectangle: width .* half the shortest side \(0.025\), got 0.03",
        ),
    ],
)
def test_a_smoothing_band_as_thick_as_the_body_is_refused(make, match):
    """Before: the mask, solid only deeper than ``width`` inside, was nowhere solid: the
    body became a porous smear and the run went on."""
    with pytest.raises(ConfigurationError, match=match):
        make()
    Cylinder((0.5, 0.5), 0.1, 0.09)  # thinner than the body: accepted


def test_drag_lift_reference_scales_are_checked():
    """Before: length 0 gave inf coefficients, a negative or NaN speed finite numbers."""
    model = IncompressibleNavierStokes.dfg_cylinder(8)
    state = model.initial_state()
    for velocity, length, name in ((0.2, 0.0, "length"), (-0.2, 0.1, "velocity"),
                                   (NAN, 0.1, "velocity")):  # fmt: skip
        with pytest.raises(ConfigurationError, match=f"{name} .* must be one positive finite"):
            hybrax.fluids.drag_lift_coefficients(model, state, 0.01, velocity, length)


def test_state_dtype_must_be_one_float_type():
    """Before: a float16 state died in XLA's FFT ("RFFT input must be float32 or
    float64"); mixed float32/float64 fields were silently promoted."""
    model = _cavity()
    with pytest.raises(ConfigurationError, match=r"one floating dtype.*float16"):
        model.initial_state(dtype=jnp.float16)
    state = model.initial_state(dtype=jnp.float32)
    mixed = eqx.tree_at(lambda s: s.pressure, state, state.pressure.astype(jnp.float64))
    with pytest.raises(ConfigurationError, match=r"one floating dtype.*float32.*float64"):
        model.check_state(mixed)
