"""The time loop: saving, observables, checkpointed gradients, non-finite detection."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax import ODEState


@pytest.fixture
def lorenz96():
    model = hybrax.climate.Lorenz96(num_variables=40, forcing=8.0)
    return model, hybrax.RK4(model, 0.01), model.initial_state(dtype=jnp.float64)


def test_saved_trajectory_matches_stepping_by_hand(lorenz96):
    _, stepper, state = lorenz96
    final, trajectory = hybrax.rollout(stepper, state, 12, save_every=4)
    by_hand = [state]
    for _ in range(12):
        by_hand.append(stepper.step(by_hand[-1]))
    np.testing.assert_allclose(trajectory.u, jnp.stack([by_hand[i].u for i in (4, 8, 12)]))
    np.testing.assert_allclose(trajectory.time, [0.04, 0.08, 0.12], rtol=1e-12)
    np.testing.assert_array_equal(final.u, trajectory.u[-1])


def test_observe_keeps_only_observables(lorenz96):
    _, stepper, state = lorenz96
    _, energy = hybrax.rollout(
        stepper, state, 100, save_every=10, observe=lambda s: 0.5 * jnp.sum(s.u**2)
    )
    _, full = hybrax.rollout(stepper, state, 100, save_every=10)
    assert energy.shape == (10,)
    np.testing.assert_allclose(energy, 0.5 * jnp.sum(full.u**2, axis=-1), rtol=1e-12)


def test_zero_steps_and_no_saving(lorenz96):
    _, stepper, state = lorenz96
    final, saved = hybrax.rollout(stepper, state, 0)
    np.testing.assert_array_equal(final.u, state.u)
    assert saved.u.shape == (0, 40)
    final, saved = hybrax.rollout(stepper, state, 7, save_every=None)
    assert saved is None and float(final.time) == pytest.approx(0.07)


def _loss(forcing, u0, checkpoint, n_steps=200, save_every=1):
    model = hybrax.climate.Lorenz96(num_variables=40, forcing=forcing)
    _, traj = hybrax.rollout(
        hybrax.RK4(model, 0.01),
        ODEState(u0),
        n_steps,
        save_every=save_every,
        observe=lambda s: s.u[0],
        checkpoint=checkpoint,
    )
    return jnp.mean(traj**2)


def test_gradient_matches_finite_differences(lorenz96, finite_difference):
    _, _, state = lorenz96
    forcing = jnp.asarray(8.0)
    g_forcing, g_state = jax.grad(_loss, argnums=(0, 1))(forcing, state.u, None)
    fd = finite_difference(lambda f: _loss(f, state.u, None), forcing)
    np.testing.assert_allclose(g_forcing, fd, rtol=1e-7)
    direction = jax.random.normal(jax.random.key(3), state.u.shape, jnp.float64)
    direction = direction / jnp.linalg.norm(direction)
    fd_dir = finite_difference(lambda u: _loss(forcing, u, None), state.u, direction, eps=1e-5)
    np.testing.assert_allclose(jnp.vdot(g_state, direction), fd_dir, rtol=1e-6)


@pytest.mark.parametrize("save_every", [1, 10, 200])
def test_checkpointed_gradients_equal_plain(lorenz96, save_every, full_size):
    """Every checkpoint setting gives the plain reverse-mode gradient. The plain gradient is
    computed once per ``save_every`` (not once per setting). By default: sqrt, every step,
    a block that divides neither 200 nor save_every (7) and one longer than the run (500);
    --runslow adds 30 (a block longer than save_every=10 that does not divide 200)."""
    _, _, state = lorenz96
    args = (jnp.asarray(8.0), state.u)
    plain = jax.grad(_loss, argnums=(0, 1))(*args, None, save_every=save_every)
    for checkpoint in ["sqrt", 1, 7, 30, 500] if full_size else ["sqrt", 1, 7, 500]:
        ckpt = jax.grad(_loss, argnums=(0, 1))(*args, checkpoint, save_every=save_every)
        for a, b in zip(plain, ckpt, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13, err_msg=str(checkpoint))


def _grad_temp_bytes(checkpoint, n_steps):
    model = hybrax.climate.Lorenz96(num_variables=40)
    state = model.initial_state(dtype=jnp.float32)

    def loss(forcing):
        m = hybrax.climate.Lorenz96(num_variables=40, forcing=forcing)
        final, _ = hybrax.rollout(
            hybrax.RK4(m, 0.01), state, n_steps, save_every=None, checkpoint=checkpoint
        )
        return jnp.sum(final.u**2)

    compiled = jax.jit(jax.grad(loss)).lower(jnp.float32(8.0)).compile()
    return compiled.memory_analysis().temp_size_in_bytes


def test_sqrt_checkpointing_bounds_gradient_memory():
    plain = _grad_temp_bytes(None, 4000)
    sqrt = _grad_temp_bytes("sqrt", 4000)
    # Plain reverse mode stores 4000 steps of RK4 intermediates; sqrt stores ~2 * 64.
    assert plain > 10 * sqrt, (plain, sqrt)
    # ... and grows like sqrt(n): 4x the steps, about 2x the memory.
    sqrt_16k = _grad_temp_bytes("sqrt", 16000)
    assert sqrt_16k < 3 * sqrt, (sqrt, sqrt_16k)


def test_check_finite_names_the_first_bad_step(lorenz96):
    model, _, state = lorenz96
    unstable = hybrax.RK4(model, 0.9)  # far beyond the stability limit
    with pytest.raises(
        hybrax.NonFiniteStateError, match=r"non-finite \(NaN or inf\) at step \d+ of 200"
    ):
        hybrax.rollout(unstable, state, 200, check_finite=True)
    # Under the user's own jit as well.
    run = jax.jit(lambda s: hybrax.rollout(unstable, s, 200, check_finite=True)[0])
    with pytest.raises(
        jax.errors.JaxRuntimeError, match=r"NonFiniteStateError: .*at step \d+ of 200"
    ):
        jax.block_until_ready(run(state))
    # And it is silent on a healthy run.
    final, _ = hybrax.rollout(hybrax.RK4(model, 0.01), state, 50, check_finite=True)
    assert bool(jnp.all(jnp.isfinite(final.u)))


def test_check_finite_reports_the_exact_step():
    class Blowup(hybrax.AbstractDynamics):
        def tendency(self, state, t):
            # finite until t passes 0.35, then infinite
            return ODEState(jnp.where(t > 0.35, jnp.inf, 1.0) * jnp.ones_like(state.u), t)

    stepper = hybrax.Euler(Blowup(), 0.1)
    with pytest.raises(hybrax.NonFiniteStateError, match="at step 5 of 10"):
        hybrax.rollout(stepper, ODEState(jnp.zeros(2)), 10, check_finite=True)


@pytest.mark.parametrize(
    ("kwargs", "message", "typed"),
    [
        ({"n_steps": 10, "save_every": 3}, "does not divide n_steps=10", None),
        ({"n_steps": -1}, "non-negative Python int", None),
        ({"n_steps": 2.5}, "non-negative Python int", "n_steps"),
        ({"n_steps": 10, "save_every": 0}, "save_every must be a positive int", None),
        ({"n_steps": 10, "checkpoint": "log"}, 'checkpoint must be None, "sqrt"', "checkpoint"),
        ({"n_steps": 10, "checkpoint": 0}, 'checkpoint must be None, "sqrt"', None),
    ],
)
def test_bad_rollout_arguments(lorenz96, kwargs, message, typed, wrong_type):
    """``typed``: the argument's annotation already rejects it (jaxtyping's checks, when on)."""
    _, stepper, state = lorenz96
    n = kwargs.pop("n_steps")
    if typed is None:
        raises = pytest.raises(hybrax.ConfigurationError, match=message)
    else:
        raises = wrong_type(typed, hybrax.ConfigurationError, message)
    with raises:
        hybrax.rollout(stepper, state, n, **kwargs)


def test_progress_bar_runs_on_a_terminal_and_stays_quiet_otherwise(lorenz96, monkeypatch):
    """progress=True draws a bar on a terminal; redirected output (not a TTY) gets none, so
    logs are not flooded (hybrax.core.progress_bar)."""
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    _, stepper, state = lorenz96
    for stream, shown in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr(sys, "stderr", stream)
        final, _ = hybrax.rollout(stepper, state, 200, save_every=2, progress=True)
        jax.block_until_ready(final)
        assert ("rollout" in stream.getvalue()) is shown


class NoisyDecay(hybrax.AbstractStepper):
    """A stochastic stepper whose state carries a typed PRNG key."""

    dt: float = 0.1

    def step(self, state):
        u, key = state
        key, sub = jax.random.split(key)
        return (u * 0.9 + 0.01 * jax.random.normal(sub, u.shape, u.dtype) + 1 / u[0], key)


def test_check_finite_with_a_prng_key_in_the_state():
    state = (jnp.ones(3), jax.random.key(0))
    final, _ = hybrax.rollout(NoisyDecay(), state, 20, save_every=None, check_finite=True)
    assert final[1].dtype == state[1].dtype
    with pytest.raises(hybrax.NonFiniteStateError, match="at step 1 of 5"):
        hybrax.rollout(NoisyDecay(), (jnp.zeros(3), jax.random.key(0)), 5, check_finite=True)
