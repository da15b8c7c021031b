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


def test_two_layer_qg_state_matches_rk4():
    """The QG state (complex PV per layer) through diffrax's Tsit5 equals hybrax's RK4 with a
    4x smaller step, after the flow has changed measurably."""
    model = hybrax.climate.TwoLayerQG.eddy(16)
    state = model.initial_state(jax.random.key(0), dtype=jnp.float64)
    hour = 3600.0
    reference, _ = hybrax.rollout(hybrax.RK4(model, hour / 4), state, 4 * 48, save_every=None)
    final, _ = hybrax.rollout(
        hybrax.DiffraxStepper(model, hour, solver=diffrax.Tsit5()), state, 48, save_every=None
    )
    assert final.field_hat.dtype == state.field_hat.dtype
    scale = float(jnp.max(jnp.abs(reference.field_hat)))
    assert float(jnp.max(jnp.abs(final.field_hat - reference.field_hat))) < 1e-8 * scale
    assert float(jnp.max(jnp.abs(final.field_hat - state.field_hat))) > 1e-3 * scale


@pytest.mark.slow
def test_implicit_solver_on_a_complex_state(kolmogorov, full_size):
    """An implicit diffrax solver (Kvaerno3, adaptive; Newton on the real view of the complex
    state) agrees with ETDRK4. Compiling it takes ~30 s here, so --runslow only."""
    if not full_size:
        pytest.skip("compiling an implicit solver takes ~30 s: --runslow")
    model, state, reference = kolmogorov
    controller = diffrax.PIDController(rtol=1e-8, atol=1e-8)
    stepper = hybrax.DiffraxStepper(
        model, DT, solver=diffrax.Kvaerno3(), stepsize_controller=controller
    )
    final, _ = hybrax.rollout(stepper, state, STEPS, save_every=None)
    got, want = model.vorticity(final), model.vorticity(reference)
    assert float(jnp.max(jnp.abs(got - want)) / jnp.max(jnp.abs(want))) < 1e-6
