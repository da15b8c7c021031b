"""One-step, unrolled, pushforward and regression losses."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.climate import Lorenz96
from hybrax.hybrid import (
    OneStepLoss,
    PushforwardLoss,
    RegressionLoss,
    UnrolledLoss,
    generate_trajectories,
    sliding_windows,
)


@pytest.fixture(scope="module")
def windows():
    model = Lorenz96(num_variables=8, forcing=20.0)
    stepper = hybrax.RK4(model, 0.01)
    sample = lambda k: model.initial_state(k, dtype=jnp.float64)  # noqa: E731
    data = generate_trajectories(stepper, sample, jax.random.key(0), 3, 30, spin_up_steps=300)
    return sliding_windows(data, length=9, stride=4)


def stepper(forcing):
    return hybrax.RK4(Lorenz96(8, forcing), 0.01)


def test_the_generating_model_has_zero_loss(windows):
    exact = stepper(20.0)
    for loss in (
        OneStepLoss(),
        UnrolledLoss(8),
        UnrolledLoss(8, checkpoint="sqrt"),
        PushforwardLoss(5, 3),
    ):
        assert float(loss(exact, windows)) < 1e-20


def test_unrolled_loss_matches_a_direct_computation(windows):
    model = stepper(19.0)
    value = UnrolledLoss(3)(model, windows)
    errors = []
    for i in range(windows.u.shape[0]):
        state = hybrax.ODEState(windows.u[i, 0], windows.time[i, 0])
        for k in range(1, 4):
            state = model.step(state)
            errors.append(np.mean((state.u - windows.u[i, k]) ** 2))
    np.testing.assert_allclose(value, np.mean(errors), rtol=1e-12)
    np.testing.assert_allclose(OneStepLoss()(model, windows), np.mean(errors[::3]), rtol=1e-12)


def test_gradients_with_and_without_checkpointing_agree(windows):
    def grad(loss):
        return eqx.filter_grad(lambda m: loss(m, windows))(stepper(19.0)).dynamics.forcing

    plain = grad(UnrolledLoss(8))
    np.testing.assert_allclose(grad(UnrolledLoss(8, checkpoint="sqrt")), plain, rtol=1e-12)
    np.testing.assert_allclose(grad(UnrolledLoss(8, checkpoint=2)), plain, rtol=1e-12)
    assert plain < 0  # a larger forcing (towards the truth, 20) lowers the loss


def test_pushforward_gradient_ignores_the_warmup(windows):
    """The gradient equals that of an unrolled loss started from the (frozen) warm state."""
    model = stepper(19.0)
    warm, k = 4, 2
    value, grads = eqx.filter_value_and_grad(PushforwardLoss(warm, k))(model, windows)

    def from_frozen_start(m):
        start = jax.vmap(lambda s: hybrax.rollout(model, s, warm, save_every=None)[0])(
            jax.tree.map(lambda x: x[:, 0], windows)
        )
        shifted = jax.tree.map(
            lambda s, w: jnp.concatenate([s[:, None], w[:, warm + 1 :]], 1), start, windows
        )
        return UnrolledLoss(k)(m, shifted)

    ref_value, ref_grads = eqx.filter_value_and_grad(from_frozen_start)(model)
    np.testing.assert_allclose(value, ref_value, rtol=1e-12)
    np.testing.assert_allclose(grads.dynamics.forcing, ref_grads.dynamics.forcing, rtol=1e-10)


def test_loss_under_jit_and_vmap_over_models(windows):
    forcings = jnp.array([18.0, 19.0, 20.0])
    values = eqx.filter_jit(jax.vmap(lambda f: UnrolledLoss(4)(stepper(f), windows)))(forcings)
    assert values[0] > values[1] > values[2] >= 0


def test_regression_loss():
    net = hybrax.nn.MLP(2, 1, 4, 1, key=jax.random.key(0, impl="rbg"))
    x = jnp.asarray(np.random.default_rng(0).standard_normal((10, 2)))
    y = jnp.zeros((10, 1))
    np.testing.assert_allclose(
        RegressionLoss(scale=2.0)(net, (x, y)), jnp.mean(jax.vmap(net)(x) ** 2) / 2
    )
    with pytest.raises(
        ValueError, match=r"outputs have shapes \[\(10, 1\)\].*targets have \[\(10, 2\)\]"
    ):
        RegressionLoss()(net, (x, jnp.zeros((10, 2))))
    with pytest.raises(ValueError, match=r"expects batch = \(inputs, targets\)"):
        RegressionLoss()(net, x)


def test_loss_errors(windows):
    with pytest.raises(ValueError, match=r"needs windows of at least 12 states.*got windows of 9"):
        UnrolledLoss(11)(stepper(20.0), windows)
    with pytest.raises(ValueError, match="num_steps must be an int >= 1"):
        UnrolledLoss(0)
    with pytest.raises(ValueError, match="sliding_windows"):
        OneStepLoss()(stepper(20.0), hybrax.ODEState(jnp.zeros(8)))


@pytest.fixture(scope="module")
def every_fifth():
    """Windows of L96 states saved every 5 steps of dt=0.01: 0.05 time units apart."""
    model = Lorenz96(num_variables=8, forcing=8.0)
    sample = lambda k: model.initial_state(k, dtype=jnp.float64)  # noqa: E731
    data = generate_trajectories(
        hybrax.RK4(model, 0.01), sample, jax.random.key(1), 2, 30, save_every=5
    )
    return sliding_windows(data, length=4)


@pytest.mark.parametrize(
    "loss", [OneStepLoss(), UnrolledLoss(3), PushforwardLoss(1, 2)], ids=lambda x: type(x).__name__
)
def test_time_spacing_of_the_data_must_be_the_model_dt(loss, every_fifth):
    """Probe row 65: data saved every 5 model steps used with the per-step model trained
    silently against targets 5x farther ahead; now a DataMismatchError names both
    spacings and the fix, eagerly, under jit (run-time check) and in fit (before training)."""
    import optax

    name = type(loss).__name__
    per_step = stepper(8.0)
    with pytest.raises(
        hybrax.DataMismatchError,
        match=rf"{name}: .* 0.05 time units apart .*dt=0.01.*5x.*save_ev",
    ):
        loss(per_step, every_fifth)
    with pytest.raises(eqx.EquinoxRuntimeError, match=r"DataMismatchError: .*time` spacing"):
        eqx.filter_jit(loss)(per_step, every_fifth)
    with pytest.raises(hybrax.DataMismatchError, match=rf"{name}: .* 0.05 time units apart"):
        hybrax.hybrid.fit(per_step, loss, every_fifth, optax.sgd(1e-3), steps=2)
    # a model stepping the data's spacing (also through a wrapper) is fine, eager and jitted
    coarse = hybrax.RK4(Lorenz96(8, 8.0), 0.05)
    assert np.isfinite(float(loss(coarse, every_fifth)))
    assert np.isfinite(float(eqx.filter_jit(loss)(coarse, every_fifth)))


def test_fine_truth_saved_at_the_coarse_dt_is_accepted():
    """A truth at dt=0.005 saved every 2 steps matches a coarse model at dt=0.01."""
    model = Lorenz96(num_variables=8, forcing=20.0)
    sample = lambda k: model.initial_state(k, dtype=jnp.float64)  # noqa: E731
    data = generate_trajectories(
        hybrax.RK4(model, 0.005), sample, jax.random.key(2), 2, 20, save_every=2
    )
    windows = sliding_windows(data, length=3)
    assert float(UnrolledLoss(2)(stepper(20.0), windows)) < 1e-6


def test_loss_constructor_errors(wrong_type):
    error = hybrax.ConfigurationError
    with wrong_type("observe", error, "observe must be a function"):
        UnrolledLoss(2, observe="u")
    with wrong_type("checkpoint", error, "checkpoint must be None, 'sqrt' or an int >= 1"):
        UnrolledLoss(2, checkpoint="full")
    with pytest.raises(error, match="checkpoint must be None"):
        PushforwardLoss(1, 1, checkpoint=0)
    with pytest.raises(error, match="num_warmup must be an int >= 0"):
        PushforwardLoss(-1)
    with pytest.raises(error, match="num_steps must be an int >= 1"):
        UnrolledLoss(True)
    for scale in (0.0, -1.0, float("nan")):
        with pytest.raises(error, match="scale must be a positive, finite number"):
            RegressionLoss(scale=scale)
    for scale in ("1", None):
        with wrong_type("scale", error, "scale must be a positive, finite number"):
            RegressionLoss(scale=scale)
