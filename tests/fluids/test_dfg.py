"""DFG flow around a cylinder (Schafer & Turek 1996): the 2D-1 preset's drag, lift and
pressure drop, the control-volume force's independence of its box, and the 2D-2 preset."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.fluids import (
    IncompressibleNavierStokes,
    ProjectedRK,
    drag_lift_coefficients,
    penalization_force,
    pressure_difference,
    strouhal_number,
)

REFERENCE = {"c_D": 5.5795, "c_L": 0.0106, "dp": 0.1175}


def _run_2d1(cells: int, t_end: float, immersed_boundary: str = "brinkman"):
    """The final state and the one a step before it (a single compiled rollout)."""
    model = IncompressibleNavierStokes.dfg_cylinder(cells, immersed_boundary=immersed_boundary)
    h = model.grid.spacing[1]
    dt = min(0.25 * h / 0.3, 0.2 * h**2 / 1e-3)  # Courant 0.25, diffusion number <= 0.8
    _, y = model.grid.u_points()
    start = model.initial_state(u=4 * 0.3 * y * (0.41 - y) / 0.41**2)  # Poiseuille start
    stepper = ProjectedRK(model, dt)
    final, states = jax.jit(lambda s: hybrax.rollout(stepper, s, int(t_end / dt)))(start)
    before = jax.tree.map(lambda leaf: leaf[-2], states)
    return model, before, final, dt


@pytest.mark.slow
def test_dfg_2d1_drag_lift_and_pressure_drop(full_size):
    """Measured with this code from a Poiseuille start (t = 3; at 96 cells t = 6 gives the
    same digits), central advection:

    ======  ========  =======  ========
    cells   c_D       c_L      dp
    ======  ========  =======  ========
    12 *    4.882     1.44     0.0806
    96      5.4064    0.0249   0.1137
    192     5.4880    0.0083   0.1160
    ref     5.5795    0.0106   0.1175
    ======  ========  =======  ========

    Drag and pressure drop within 2% at 192 cells, converging about linearly in the cell
    size (-3.1% and -3.3% at 96); the lift, a small difference of large pressure forces,
    within 0.005 (absolute) at 192 cells. (* 12 cells, 1.5 per radius, t = 1: the default
    run, loose bands.)"""
    cells = 192 if full_size else 12
    model, before, final, dt = _run_2d1(cells, 3.0 if full_size else 1.0)
    c_drag, c_lift = drag_lift_coefficients(model, final, dt, 0.2, 0.1, previous=before)
    dp = pressure_difference(model, final, (0.15, 0.2), (0.25, 0.2))
    assert float(jnp.max(jnp.abs(model.divergence(final)))) < 1e-9
    if full_size:
        assert abs(float(c_drag) / REFERENCE["c_D"] - 1) < 0.02
        assert abs(float(c_lift) - REFERENCE["c_L"]) < 0.005
        assert abs(float(dp) / REFERENCE["dp"] - 1) < 0.02
    else:  # 12 cells: a staircase body of a few faces: a loose band
        assert 0.7 * REFERENCE["c_D"] < float(c_drag) < 2 * REFERENCE["c_D"]
        assert abs(float(c_lift)) < float(c_drag)
        assert 0.5 * REFERENCE["dp"] < float(dp) < 1.5 * REFERENCE["dp"]
    # the control-volume force telescopes to fluxes through its box's boundary: boxes 3 and
    # 6 cells past the surface agree, with the momentum change in the box subtracted
    near = penalization_force(model, final, dt, previous=before, margin=3.0)
    far = penalization_force(model, final, dt, previous=before, margin=6.0)
    np.testing.assert_allclose(near[0], far[0], rtol=2e-3)
    np.testing.assert_allclose(near[1], far[1], atol=5e-3 * float(near[0]))


@pytest.mark.slow
def test_dfg_2d1_direct_forcing(full_size):
    """The same run with ``immersed_boundary="direct_forcing"`` (interpolated forcing,
    `pressure_at` extrapolating the surface pressure from the fluid); full size only
    (about 15 min of CPU at 192 cells).

    ======  ==============  ========================  ========
    cells   c_D             c_L                       dp
    ======  ==============  ========================  ========
    48      5.6399 (+1.1%)  0.0988 (steady)           0.1151
    82 *    5.6011 (+0.4%)  0.0123 (t=3), 0.0135 (s)  0.1144
    96      5.6035 (+0.4%)  0.0041 (t=3), 0.0051 (6)  0.1159
    192     5.5819 (+0.04%) 0.0116 (t=3), 0.0132 (s)  0.1175
    ref     5.5795          0.0106                    0.1175
    ======  ==============  ========================  ========

    (s): steady; 82 cells to t = 16 (steady from t = 6 on), 192 cells from the 96-cell
    state at t = 6 prolonged, 2 s more (the lift still swings 0.0104, 0.0131, 0.0138,
    0.0132 at 0.5 s intervals, converging to about 0.0134). At t = 3 from the Poiseuille
    start the lift is still in a damped transient (82 cells: 0.0123 there, 0.0135 steady),
    so the 0.0116 this test measures at 192 cells is not the converged value.
    * 82 cells: the cylinder's centre on a grid line (0.2 = 40 h), the discrete body
    symmetric about y = 0.2; elsewhere it is not, and the lift depends far more steeply
    on where the grid cuts the body than the flow does: at 48 cells moving the centre
    within one cell (y = 0.2 + a h, a = -0.5, -0.3, ..., 0.5, t = 5) gives c_L +0.110,
    -0.056, +0.106, -0.060, -0.105, +0.077 (Brinkman: -0.062, +0.086, +0.075, +0.023,
    -0.131, -0.069), against a physical change of about 0.02 over the cell; finer, direct
    forcing gives -0.056, -0.006, +0.044, +0.139, +0.134 at a = -0.30, -0.26, -0.22,
    -0.18, -0.14: steep (about 70x the physical slope) between role changes of faces,
    and a jump at one. Drag and
    pressure drop are within 0.4% and 2.6% from 82 cells on (0.04%, 0.02% at 192); the
    steady lift is not within 2% at any of these resolutions (+27% at 82, about +26% at
    192).

    ``immersed_boundary="image_point"`` (each forced face from the quadratic along the
    surface normal through zero on the surface and image points 2 and 3 cells out), as
    first written (every forced face fully forced, three fixed-point sweeps):

    ======  ==============  ========================  ========
    cells   c_D             c_L                       dp
    ======  ==============  ========================  ========
    48      5.6551 (+1.4%)  0.0754 (a = 0, steady)    -
    96      5.5948 (+0.27%) 0.0030 (t=3), 0.0043 (6)  0.1151
    192     5.5849 (+0.10%) 0.0109 (+2.5%, see below) 0.1169
    ref     5.5795          0.0106                    0.1175
    ======  ==============  ========================  ========

    96 cells from the Poiseuille start, the lift still swinging (0.0030, 0.0056, 0.0043
    at t = 3, 4.5, 6); 192 cells from that state prolonged (bilinear), then 3.5 s more:
    c_L 0.00957, 0.01093, 0.01112, 0.01085, 0.01077, 0.01086, 0.01090 at t = 6.5, 7, ...,
    9.5 (settling at about 0.0109, +2-3%; c_D and dp steady to 1e-5). At 48 cells the
    lift's sub-cell scan (a = -0.5, -0.4, ..., 0.5, t = 5) gives +0.064, -0.015, -0.014,
    +0.046, +0.027, +0.075, -0.042, -0.059, -0.012, -0.014, +0.039: a range of 0.13
    against 0.21 with grid-line interpolation. Between role changes of faces the lift
    now moves about as the flow does (its derivative with respect to the centre, the
    roles held: +0.051 and -0.076 per cell at a = -0.22 and 0.1; physically about 0.02);
    what remains are jumps where a free face becomes forced (the interpolation error a
    cell from the surface: 10% of the near-wall velocity with a linear rule through one
    image point 1.5 cells out, the 48-cell range then 0.18) and the least-squares closure
    of the cut cells' divergence (it moves the forced values by 10-20%). Extending the
    profile to the faces inside the body (ghost values) made the scan wider (0.27).

    The rule now (`image_point_forcing`): a face whose inside neighbour lies less than half
    a cell deep is forced only in proportion to that depth, one sweep per forcing (the
    same steady states to 5 digits as three):

    ======  ==============  ========================  ==============
    cells   c_D             c_L                       dp
    ======  ==============  ========================  ==============
    48      5.62 .. 5.68    -0.038 .. +0.056 (scan)   0.1140 .. 0.1162
    96      5.5869 (+0.13%) 0.0017 (t = 7 .. 9)       0.1146 (-2.5%)
    128     5.5886 (+0.16%) 0.0103 (-2.7%)            0.1146 (-2.4%)
    192     5.5780 (-0.03%) 0.0111 (+4.5%)            0.1166 (-0.8%)
    ref     5.5795          0.0106                    0.1175
    ======  ==============  ========================  ==============

    (96 and 192 cells from the first rule's steady states, 3 s and 2 s more; the 192-cell
    lift 0.01086, 0.01108, 0.01112, 0.01107 at 0.5 s intervals; 128 cells from the 96-cell
    state prolonged, 5 s, the lift's swings decaying to 0.01036, 0.01028, 0.01031.) The
    48-cell scan's lift range shrank from 0.134 to 0.095, but its drag's widened (0.036
    to 0.062). With biquadratic image interpolation on top (48 cells: lift -0.033 ..
    +0.050, drag 5.60 .. 5.67) the 192-cell state settles at c_D 5.5777, c_L 0.0103
    (-2.7%), dp 0.1165. So at 192 cells the steady lift lands anywhere in about 0.0103 ..
    0.0111 (+-4%) depending on details of the forcing that are all second order, and at
    96 cells it spreads wider still (the first rule with the centre moved by -0.5, -0.25,
    0.25, 0.5 cells: 0.022, 0.022, 0.012, -0.0004 two seconds after the move, not yet
    settled; 0.0043 unmoved): the error is the grid cut of the body, not a resolution
    trend, and no variant tried is reliably within 2% on these grids (on grids of 41 k
    cells, where the body is symmetric, the lift converges: see
    `test_dfg_2d1_image_point_on_a_symmetric_grid`). The force measurement is not the
    cause: the momentum flux, pressure and viscous stress through circles 3, 4, 6 and 8
    cells out agree with the control-volume lift (0.01073 .. 0.01079 against 0.01090
    at 192 cells; 0.0041 .. 0.0050 against 0.0043 at 96; the 48-cell scan's values to
    +-0.002). Tried and worse at 48 cells: no closure of the cut cells (lift -0.092 ..
    0.113), a closure that corrects mostly the faces inside the body
    (-0.089 .. 0.109)."""
    if not full_size:
        pytest.skip("192 cells across, about 15 min of CPU: runs with --runslow")
    model, before, final, dt = _run_2d1(192, 3.0, "direct_forcing")
    c_drag, c_lift = drag_lift_coefficients(model, final, dt, 0.2, 0.1, previous=before)
    dp = pressure_difference(model, final, (0.15, 0.2), (0.25, 0.2))
    fluid = ~model.closed_cells(final.u.dtype)
    assert float(jnp.max(jnp.abs(jnp.where(fluid, model.divergence(final), 0)))) < 1e-9
    assert abs(float(c_drag) / REFERENCE["c_D"] - 1) < 0.01
    # +0.0010 measured at t = 3, a transient: the steady value is about 0.0134 (+0.0028)
    assert abs(float(c_lift) - REFERENCE["c_L"]) < 0.004
    assert abs(float(dp) / REFERENCE["dp"] - 1) < 0.02


def test_dfg_2d1_image_point_on_a_symmetric_grid(full_size):
    """DFG 2D-1 with ``immersed_boundary="image_point"`` on grids of ``41 k`` cells across
    the channel: the cylinder's centre (0.2, 0.2) falls on a grid line, so the discrete
    body and its forcing stencils are mirror-symmetric about y = 0.2 and the grid's cut of
    the body adds no lift; the lift is then the flow's own asymmetry (the channel's
    walls), and it converges. Steady values from a Poiseuille start (t = 8; the lift's
    damped transient is below 0.5% from t = 6 on), this code, float64:

    =====  ===============  ================  ================
    cells  c_D              c_L               dp
    =====  ===============  ================  ================
    41     5.6286 (+0.88%)  0.01342 (+27%)    0.11664 (-0.73%)
    82     5.5815 (+0.04%)  0.010615 (+0.1%)  0.11422 (-2.8%)
    123    5.5756 (-0.07%)  0.010543 (-0.5%)  0.11523 (-1.9%)
    164    5.5762 (-0.06%)  0.010573 (-0.3%)  0.11615 (-1.1%)
    ref    5.5795           0.0106            0.1175
    =====  ===============  ================  ================

    On grids that cut the body asymmetrically the same forcing's steady lift lands
    anywhere in 0.0103 .. 0.0111 at 192 cells (see `test_dfg_2d1_direct_forcing`), and
    Brinkman penalisation's staircase gives 0.0051 at 82 cells even on this grid. The
    pressure drop, the difference of two surface pressures extrapolated from the fluid,
    converges more slowly than the forces. The steady lift carries an O(dt) error of the
    forcing's splitting (82 cells: 0.01062, 0.01045, 0.01038 at dt = 4.2e-3, 6.25e-3,
    7.5e-3; drag and dp move by 0.05%), so the time step stays at Courant 0.25 and
    diffusion number 0.8. The default run is 82 cells (about 50 s of
    CPU): drag and lift within 2% (drag 0.5%), the pressure drop within 3.5%; full size
    (164 cells, about 20 min) all three within 2%."""
    cells = 164 if full_size else 82
    model = IncompressibleNavierStokes.dfg_cylinder(cells, immersed_boundary="image_point")
    assert 0.2 / model.grid.spacing[1] == pytest.approx(cells * 20 / 41)  # on a grid line
    h = model.grid.spacing[1]
    dt = min(0.25 * h / 0.3, 0.2 * h**2 / 1e-3)
    _, y = model.grid.u_points()
    start = model.initial_state(u=4 * 0.3 * y * (0.41 - y) / 0.41**2)
    stepper = ProjectedRK(model, dt)

    @jax.jit
    def steady(state):
        before, _ = hybrax.rollout(stepper, state, round(8.0 / dt), save_every=None)
        return before, stepper.step(before)

    before, final = steady(start)
    c_drag, c_lift = drag_lift_coefficients(model, final, dt, 0.2, 0.1, previous=before)
    dp = pressure_difference(model, final, (0.15, 0.2), (0.25, 0.2))
    assert abs(float(c_drag) / REFERENCE["c_D"] - 1) < (0.02 if full_size else 0.005)
    assert abs(float(c_lift) / REFERENCE["c_L"] - 1) < 0.02
    assert abs(float(dp) / REFERENCE["dp"] - 1) < (0.02 if full_size else 0.035)
    fluid = ~model.closed_cells(final.u.dtype)
    assert float(jnp.max(jnp.abs(jnp.where(fluid, model.divergence(final), 0)))) < 1e-9


@pytest.mark.slow
def test_dfg_2d2_strouhal_drag_and_lift(full_size):
    """DFG 2D-2 (Re 100, periodic shedding) from rest, the last 3 s of 10 s: Strouhal
    number from the lift, max c_D and max c_L (forces with the momentum change).

    ======  ======  ========  ========
    cells   St      max c_D   max c_L
    ======  ======  ========  ========
    24      0.283   3.53      -0.23 *
    48      0.308   3.075     0.60
    96      0.304   3.274     1.005
    ref     0.30    3.23      1.0
    ======  ======  ========  ========

    All three within 3% at 96 cells. (* 24 cells, 2.4 per radius: the street forms but the
    staircase body's asymmetry shifts the lift to -1.7 .. -0.23; the default run, loose
    bands.)

    With ``immersed_boundary="direct_forcing"`` (not tested here):

    ======  ======  ========  ================
    cells   St      max c_D   c_L range
    ======  ======  ========  ================
    41 *    0.2935  3.025     -0.281 .. 0.264
    48      0.2985  3.112     -0.211 .. 0.743
    82 *    0.3058  3.044     -0.649 .. 0.619
    96      0.3049  3.105     max 0.733
    ======  ======  ========  ================

    With ``immersed_boundary="image_point"``: 48 cells St 0.2951, max c_D 3.254, c_L
    -0.364 .. 0.821 (a wider swing than grid-line forcing's, still off-centre); with its
    blended forcing (`image_point_forcing`, now) St 0.2959, max c_D 3.268, c_L -0.443 ..
    0.829.

    (* the centre on a grid line, the discrete body symmetric about y = 0.2.) The lift's
    offset at 48 and 96 cells is the grid-cut error of the 2D-1 lift (see
    `test_dfg_2d1_direct_forcing`) at Re 100: with the body symmetric on the grid the
    swing is centred; the step itself has no up-down bias
    (test_direct_forcing.py::test_step_commutes_with_the_mirror_image). The swing stays
    too small (0.63 at 82 cells against 1.0) and max c_D low (-5.8%): the least-squares
    closure of the cut cells' divergence damps it (left out at 48 cells: -0.38 .. 0.96,
    but max c_D +9% from the unclosed mass sources; quadratic instead of linear
    interpolation: -0.25 .. 0.76). Brinkman stays the default."""
    cells, t_end = (96, 10.0) if full_size else (24, 8.0)
    model = IncompressibleNavierStokes.dfg_cylinder(cells, case="2D-2")
    dt = 0.3 * model.grid.spacing[1] / 1.5
    stepper = ProjectedRK(model, dt)
    every = 5

    def coefficients(state):
        after = stepper.step(state)
        return jnp.stack(drag_lift_coefficients(model, after, dt, 1.0, 0.1, previous=state))

    n = int(t_end / dt) // every * every
    run = jax.jit(lambda s: hybrax.rollout(stepper, s, n, save_every=every, observe=coefficients))
    _, history = run(model.initial_state())
    late = np.asarray(history)[-int(3.0 / (every * dt)) :]
    st = float(strouhal_number(jnp.asarray(late[:, 1]), every * dt, 0.1, 1.0))
    if full_size:
        assert abs(st / 0.30 - 1) < 0.03
        assert abs(late[:, 0].max() / 3.23 - 1) < 0.03
        assert abs(late[:, 1].max() / 1.0 - 1) < 0.03
    else:
        assert abs(st / 0.30 - 1) < 0.1
        assert abs(late[:, 0].max() / 3.23 - 1) < 0.2
        assert 0.5 < late[:, 1].max() - late[:, 1].min() < 3.0  # the lift oscillates


def test_dfg_presets():
    steady = IncompressibleNavierStokes.dfg_cylinder(8)
    shedding = IncompressibleNavierStokes.dfg_cylinder(8, case="2D-2")
    assert steady.grid.num_points == (43, 8)
    mean = float(jnp.mean(shedding.boundaries.left.profile))
    np.testing.assert_allclose(mean, 1.0, rtol=0.03)  # Re = 1 * 0.1 / 1e-3 = 100
    np.testing.assert_allclose(
        float(jnp.mean(steady.boundaries.left.profile)), 0.2, rtol=0.03
    )  # Re 20
    with pytest.raises(hybrax.ConfigurationError, match="case"):
        IncompressibleNavierStokes.dfg_cylinder(8, case="3D-1")


def test_unsteady_force_needs_the_momentum_change():
    """In the start-up of the 2D-2 flow (accelerating around the body) the control-volume
    force depends on its box unless the fluid's momentum change in the box is counted
    (``previous``); with it, boxes 3 and 6 cells past the surface agree."""
    model = IncompressibleNavierStokes.dfg_cylinder(16, case="2D-2")
    dt = 0.3 * model.grid.spacing[1] / 1.5
    stepper = ProjectedRK(model, dt)

    @jax.jit
    def coefficients(start):
        before, _ = hybrax.rollout(stepper, start, 40)
        after = stepper.step(before)
        forces = [
            jnp.stack(penalization_force(model, after, dt, previous=p, margin=m)) * 20
            for p, m in ((before, 3.0), (before, 6.0), (None, 3.0), (None, 6.0), (before, 4.0))
        ]
        return forces, jnp.stack(drag_lift_coefficients(model, after, dt, 1.0, 0.1, before))

    (near, far, steady_near, steady_far, default), both = coefficients(model.initial_state())
    np.testing.assert_allclose(near, far, atol=0.02 * abs(near[0]))
    assert abs(steady_near[0] - steady_far[0]) > 4 * abs(near[0] - far[0])  # 0.107 vs 0.018
    np.testing.assert_allclose(both, default, rtol=1e-6)  # drag_lift_coefficients: margin 4
