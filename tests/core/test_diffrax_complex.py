"""`DiffraxStepper` on complex spectral states (viewed as real pairs for diffrax), against
hybrax's ETDRK4."""

import diffrax
import jax
import jax.numpy as jnp
import pytest

import hybrax
from hybrax.fluids import NavierStokes2D

DT, STEPS = 0.05, 4


@pytest.fixture(scope="module")
def kolmogorov():
    model = NavierStokes2D.kolmogorov(16, viscosity=0.05)
    state = model.initial_state(jax.random.key(0), dtype=jnp.float64)
    # ETDRK4 with a 10x smaller step: its error (~1e-10 here) is far below the checks'
    reference, _ = hybrax.rollout(hybrax.ETDRK4(model, DT / 10), state, 10 * STEPS,
                                  save_every=None)  # fmt: skip
    return model, state, reference


@pytest.mark.parametrize(
    "solver, options, tolerance",
    [
        (diffrax.Tsit5(), dict(num_substeps=2), 1e-6),  # 5th order, h = 0.025
        (
            diffrax.Dopri5(),
            dict(stepsize_controller=diffrax.PIDController(rtol=1e-9, atol=1e-9)),
            1e-7,
        ),
    ],
)
def test_complex_spectral_state_matches_etdrk4(kolmogorov, solver, options, tolerance):
    model, state, reference = kolmogorov
    stepper = hybrax.DiffraxStepper(model, DT, solver=solver, **options)
    final, _ = hybrax.rollout(stepper, state, STEPS, save_every=None)
    assert final.field_hat.dtype == state.field_hat.dtype  # complex in, complex out
    assert float(final.time) == pytest.approx(STEPS * DT)
    got, want = model.vorticity(final), model.vorticity(reference)
    error = float(jnp.max(jnp.abs(got - want)) / jnp.max(jnp.abs(want)))
    assert error < tolerance
    # and the flow did change over the run (so the agreement is not trivial)
    change = model.vorticity(state) - want
    assert float(jnp.max(jnp.abs(change)) / jnp.max(jnp.abs(want))) > 1e-2


# Real states (Lorenz-63/96 against RK4, fixed and adaptive) are covered by
# tests/core/test_integrators.py, which runs the same DiffraxStepper code path.
