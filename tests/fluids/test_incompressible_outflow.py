"""Convective outflow ``du/dt + U_c du/dn = 0``: the channel stays divergence-free, the
outflow flux equals the inflow flux, the outflow face moves at the convective rate; bad
speeds are rejected."""

import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.fluids import (
    Boundaries,
    IncompressibleNavierStokes,
    Inflow,
    Outflow,
    ProjectedRK,
    Wall,
)
from hybrax.grids import StaggeredGrid


def _channel(outflow):
    grid = StaggeredGrid((16, 6), (3.0, 1.0))
    y = jnp.asarray(grid.centres_1d(1))
    sides = Boundaries(Inflow(6 * y * (1 - y)), outflow, Wall(), Wall())
    return IncompressibleNavierStokes(grid, sides, 0.05)


def _run(model, steps=6):
    dy = model.grid.spacing[1]

    def observe(state):
        divergence = jnp.max(jnp.abs(model.divergence(state)))
        return divergence, (jnp.sum(state.u[0]) - jnp.sum(state.u[-1])) * dy

    stepper = ProjectedRK(model, 0.02, stages=1)
    return hybrax.rollout(stepper, model.initial_state(), steps, observe=observe)


@pytest.mark.filterwarnings("ignore:hybrax. the function .observe.:RuntimeWarning")
def test_convective_outflow_channel_is_divergence_free_and_conserves_mass():
    model = _channel(Outflow(convective_velocity=1.0))
    final, (divergence, flux_mismatch) = _run(model)
    assert float(jnp.max(divergence)) < 1e-11
    dy = model.grid.spacing[1]
    inflow = float(jnp.sum(final.u[0])) * dy
    assert inflow == pytest.approx(float(jnp.sum(model.boundaries.left.profile)) * dy, rel=1e-14)
    assert inflow == pytest.approx(1.0, rel=2e-2)  # the parabola's flux (midpoint rule)
    assert float(jnp.max(jnp.abs(flux_mismatch))) < 1e-13
    # the outflow face moves by -U_c du/dn; a zero-gradient outflow face is set, not moved
    dx = model.grid.spacing[0]
    expected = -1.0 * (final.u[-1] - final.u[-2]) / dx
    assert float(jnp.max(jnp.abs(expected))) > 1e-3
    np.testing.assert_allclose(model.tendency(final, 0.0).u[-1], expected, rtol=1e-12)
    plain = _channel(Outflow())
    assert float(jnp.max(jnp.abs(plain.tendency(final, 0.0).u[-1]))) == 0.0


def test_convective_velocity_must_be_a_nonnegative_speed():
    with pytest.raises(hybrax.ConfigurationError, match="convective_velocity"):
        Outflow(convective_velocity=-1.0)
    assert Outflow().convective_velocity is None
