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
)

REFERENCE = {"c_D": 5.5795, "c_L": 0.0106, "dp": 0.1175}


def _run_2d1(cells: int, t_end: float):
    """The final state and the one a step before it (a single compiled rollout)."""
    model = IncompressibleNavierStokes.dfg_cylinder(cells)
    dt = 0.25 * model.grid.spacing[1] / 0.3
    _, y = model.grid.u_points()
    start = model.initial_state(u=4 * 0.3 * y * (0.41 - y) / 0.41**2)  # Poiseuille start
    stepper = ProjectedRK(model, dt)
    final, states = jax.jit(lambda s: hybrax.rollout(stepper, s, int(t_end / dt)))(start)
    before = jax.tree.map(lambda leaf: leaf[-2], states)
    return model, before, final, dt


@pytest.mark.slow
def test_dfg_2d1_drag_lift_and_pressure_drop(full_size):
    """Measured with this code from a Poiseuille start (t = 3, converged to 0.3%):

    ======  ========  =======  ========
    cells   c_D       c_L      dp
    ======  ========  =======  ========
    24      5.757     -0.72    0.0945
    48      5.565     0.17     0.1123
    96 *    5.617     -0.0097  0.1088
    ref     5.5795    0.0106   0.1175
    ======  ========  =======  ========

    Drag within 0.3% and pressure drop within 5% at 48 cells; the lift is dominated by the
    asymmetric staircase of blocked faces (the cylinder sits 0.01 below the channel's
    centre line) and is only bounded loosely. (* t = 2, still falling by 0.1 per unit
    time: about 5.6 when settled. The pressure drop does not improve from 48 to 96.)"""
    cells = 48 if full_size else 12
    model, before, final, dt = _run_2d1(cells, 3.0 if full_size else 1.0)
    c_drag, c_lift = drag_lift_coefficients(model, final, dt, 0.2, 0.1)
    dp = pressure_difference(model, final, (0.15, 0.2), (0.25, 0.2))
    assert float(jnp.max(jnp.abs(model.divergence(final)))) < 1e-9
    if full_size:
        assert abs(float(c_drag) / REFERENCE["c_D"] - 1) < 0.02
        assert abs(float(c_lift)) < 0.3
        assert abs(float(dp) / REFERENCE["dp"] - 1) < 0.06
    else:  # 12 cells: 2.9 cells per diameter, a staircase body: a loose band
        assert 0.7 * REFERENCE["c_D"] < float(c_drag) < 2 * REFERENCE["c_D"]  # measured 7.89
        assert abs(float(c_lift)) < float(c_drag)
        assert 0.5 * REFERENCE["dp"] < float(dp) < 1.5 * REFERENCE["dp"]
    # the control-volume force telescopes to fluxes through its box's boundary: boxes 3 and
    # 6 cells past the surface agree, with the momentum change in the box subtracted
    near = penalization_force(model, final, dt, previous=before, margin=3.0)
    far = penalization_force(model, final, dt, previous=before, margin=6.0)
    np.testing.assert_allclose(near[0], far[0], rtol=2e-3)
    np.testing.assert_allclose(near[1], far[1], atol=5e-3 * float(near[0]))


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
