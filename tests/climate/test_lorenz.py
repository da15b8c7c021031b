"""Lorenz-63/96 against literature statistics and Lyapunov exponents; bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax import ODEState
from hybrax.climate import Lorenz63, Lorenz96, TwoScaleLorenz96, TwoScaleState
from hybrax.errors import ConfigurationError


@pytest.mark.slow
def test_lorenz63_largest_lyapunov_exponent(full_size):
    """Reference 0.9056 (Sprott 2003; float64 RK4 long runs here: 0.9051)."""
    model = Lorenz63()
    stepper = hybrax.RK4(model, 0.01)
    state, _ = hybrax.rollout(
        stepper, model.initial_state(dtype=jnp.float64), 5000, save_every=None
    )
    n_steps = 200_000 if full_size else 100_000
    exponents = hybrax.lyapunov_spectrum(stepper, state, n_steps, k=1, discard_steps=1000)
    assert abs(float(exponents[0]) - 0.906) < 0.05, exponents


@pytest.mark.slow
def test_lorenz96_climate_statistics(full_size):
    """K=40, F=8: mean 2.34 and standard deviation 3.64 of X_k (each within 5%)."""
    model = Lorenz96(num_variables=40, forcing=8.0)
    stepper = hybrax.RK4(model, 0.01)
    members = 8
    keys = jax.random.split(jax.random.key(0), members)
    start = jax.vmap(lambda k: model.initial_state(k, dtype=jnp.float64))(keys)
    # chunks of 2000 steps: one compiled ensemble rollout for the spin-up and the statistics
    run = jax.jit(jax.vmap(lambda s: hybrax.rollout(stepper, s, 2000, save_every=5)))
    state, _ = run(start)  # spin-up
    chunks = []
    for _ in range(50 if full_size else 12):  # 100_000 or 24_000 steps
        state, x = run(state)
        chunks.append(x.u)
    u = jnp.concatenate(chunks, axis=1)
    mean, std = float(jnp.mean(u)), float(jnp.std(u))
    assert abs(mean - 2.34) < 0.05 * 2.34, mean
    assert abs(std - 3.6) < 0.05 * 3.6, std


@pytest.mark.slow
def test_lorenz96_largest_lyapunov_exponent(full_size):
    """K=40, F=8: reference about 1.69 per time unit (float64 RK4 long runs: 1.688)."""
    model = Lorenz96(num_variables=40, forcing=8.0)
    stepper = hybrax.RK4(model, 0.01)
    state, _ = hybrax.rollout(
        stepper, model.initial_state(dtype=jnp.float64), 2000, save_every=None
    )
    n_steps = 100_000 if full_size else 30_000
    exponents = hybrax.lyapunov_spectrum(
        stepper, state, n_steps, k=2, reorthonormalize_every=5, discard_steps=1000
    )
    assert abs(float(exponents[0]) - 1.69) < 0.1, exponents
    assert exponents[1] < exponents[0]


def test_lorenz96_conserves_energy_without_forcing_and_damping():
    """The advection term conserves sum X_k^2: check through the nonlinear part."""
    model = Lorenz96(num_variables=36, forcing=0.0)
    x = jax.random.normal(jax.random.key(1), (36,), jnp.float64)
    advection = model.nonlinear(ODEState(x), 0.0).u
    assert abs(float(jnp.dot(x, advection))) < 1e-12


def test_two_scale_matches_explicit_formula():
    model = TwoScaleLorenz96(num_slow=4, num_fast_per_slow=3)
    key_x, key_y = jax.random.split(jax.random.key(2))
    x = jax.random.normal(key_x, (4,), jnp.float64)
    y = jax.random.normal(key_y, (4, 3), jnp.float64)
    out = jax.jit(lambda s: model.tendency(s, 0.0))(TwoScaleState(x, y))  # eager: many ops
    h, b, c, forcing = 1.0, 10.0, 10.0, 20.0
    ring = np.asarray(y).reshape(-1)
    n = ring.size
    expected_y = np.array(
        [
            -c * b * ring[(i + 1) % n] * (ring[(i + 2) % n] - ring[i - 1])
            - c * ring[i]
            + h * c / b * x[i // 3]
            for i in range(n)
        ]
    ).reshape(4, 3)
    expected_x = np.array(
        [
            -x[k - 1] * (x[k - 2] - x[(k + 1) % 4]) - x[k] + forcing - h * c / b * y[k].sum()
            for k in range(4)
        ]
    )
    np.testing.assert_allclose(out.x, expected_x, rtol=1e-12)
    np.testing.assert_allclose(out.y, expected_y, rtol=1e-12)


def test_two_scale_etdrk4_and_rk4_converge_to_the_same_solution():
    model = TwoScaleLorenz96()
    state = model.initial_state(jax.random.key(0), dtype=jnp.float64)

    def run(method, s, dt, chunks=1):  # chunks of 200 steps, dt traced: one compilation
        for _ in range(chunks):
            s, _ = hybrax.rollout(method(model, jnp.asarray(dt)), s, 200, save_every=None)
        return s

    state = run(hybrax.RK4, state, 0.001, chunks=5)
    reference = run(hybrax.RK4, state, 1e-4, chunks=5)
    for method in (hybrax.RK4, hybrax.ETDRK4):
        final = run(method, state, 5e-4)
        np.testing.assert_allclose(final.x, reference.x, atol=1e-5)
        np.testing.assert_allclose(final.y, reference.y, atol=1e-4)


@pytest.mark.parametrize("model", [Lorenz63(), Lorenz96(num_variables=8)], ids=["l63", "l96"])
def test_wrong_shape_and_dtype_are_rejected(model, wrong_type):
    stepper = hybrax.RK4(model, 0.01)
    good = model.initial_state()
    n = good.u.shape[0]
    with pytest.raises(
        ConfigurationError, match=rf"state.u must have shape \({n},\), got \({n + 1},\)"
    ):
        stepper.step(ODEState(jnp.ones(n + 1)))
    with pytest.raises(ConfigurationError, match=r"for an ensemble use jax\.vmap"):
        stepper.step(ODEState(jnp.ones((5, n))))
    with pytest.raises(ConfigurationError, match=r"floating dtype.*got int32"):
        stepper.step(ODEState(jnp.ones(n, jnp.int32)))
    with wrong_type(
        "state", ConfigurationError, r"expects a ODEState state, got (ndarray|ArrayImpl)"
    ):
        stepper.step(jnp.ones(n))


def test_two_scale_shape_errors():
    model = TwoScaleLorenz96()
    stepper = hybrax.RK4(model, 0.001)
    with pytest.raises(
        ConfigurationError, match=r"state.y must have shape \(8, 32\), got \(8, 16\)"
    ):
        stepper.step(TwoScaleState(jnp.zeros(8), jnp.zeros((8, 16))))


def test_bad_sizes_are_rejected():
    with pytest.raises(ConfigurationError, match="num_variables >= 4"):
        Lorenz96(num_variables=3)
    with pytest.raises(ConfigurationError, match="num_slow"):
        TwoScaleLorenz96(num_slow=2)


def test_float32_stays_float32():
    model = Lorenz96()
    state = model.initial_state(dtype=jnp.float32)
    final, traj = hybrax.rollout(hybrax.RK4(model, 0.01), state, 20, save_every=10)
    assert final.u.dtype == jnp.float32 and final.time.dtype == jnp.float32
    assert traj.u.dtype == jnp.float32


def test_initial_states_share_one_signature(wrong_type):
    """initial_state(key=None, dtype=None) on every Lorenz model; a dtype passed where the
    key goes is a ConfigurationError that says to name it."""
    key = jax.random.key(1)
    for model in (Lorenz63(), Lorenz96(8), TwoScaleLorenz96(num_slow=4, num_fast_per_slow=3)):
        plain = model.initial_state(dtype=jnp.float64)
        noisy = model.initial_state(key, dtype=jnp.float64)
        assert jax.tree.leaves(plain)[0].dtype == jnp.float64
        assert not jnp.array_equal(jax.tree.leaves(plain)[0], jax.tree.leaves(noisy)[0])
        with wrong_type("key", ConfigurationError, "pass the dtype by name"):
            model.initial_state(jnp.float64)
    assert jnp.array_equal(Lorenz63().initial_state().u, jnp.ones(3))
