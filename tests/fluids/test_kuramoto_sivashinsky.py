"""Kuramoto–Sivashinsky 1D (chaos, Lyapunov exponent) and 2D (linear rates, nonlinearity)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.errors import ConfigurationError
from hybrax.fluids import KuramotoSivashinsky, KuramotoSivashinsky2D
from hybrax.grids import Grid, SpectralState


class PhysicalSpace(hybrax.AbstractStepper):
    """The same stepper seen on the real grid values ``u`` (an `ODEState`).

    `hybrax.lyapunov_spectrum` flattens the state into one vector; a `SpectralState`
    (complex coefficients plus a real time) does not flatten under strict dtype promotion,
    and complex tangent vectors would be orthonormalised as complex ones.
    """

    inner: hybrax.AbstractStepper

    @property
    def dt(self):
        return self.inner.dt

    def prepare(self):
        return PhysicalSpace(self.inner.prepare())

    def step(self, state):
        grid = self.inner.dynamics.grid
        out = self.inner.step(SpectralState(grid.to_spectral(state.u), state.time))
        return hybrax.ODEState(grid.to_physical(out.field_hat), out.time)


@pytest.mark.slow
def test_largest_lyapunov_exponent_at_l22(full_size):
    """L = 22, 64 points, ETDRK4 dt = 0.25: the leading exponent is near the literature
    values 0.043 (Ding et al. 2016; Pathak et al. 2018) - 0.048 (Cvitanović et al. 2010).
    The running average converges slowly (seed-to-seed spread ~0.005 over 2,000 time
    units), hence the band."""
    model = KuramotoSivashinsky(Grid((64,), 22.0))
    stepper = hybrax.ETDRK4(model, 0.25)
    state = model.initial_state(jax.random.key(1), dtype=jnp.float64)
    state, _ = hybrax.rollout(stepper, state, 1000, save_every=None)  # 250 time units
    n_steps = 80_000 if full_size else 8_000
    exponents = hybrax.lyapunov_spectrum(
        PhysicalSpace(stepper),
        hybrax.ODEState(model.field(state), state.time),
        n_steps,
        k=2,
        reorthonormalize_every=4,
        discard_steps=400,
    )
    assert 0.035 < float(exponents[0]) < 0.06, exponents
    # the second is the neutral direction of translation symmetry: zero
    assert abs(float(exponents[1])) < 0.01, exponents


def test_chaotic_attractor_is_bounded_and_conserves_the_mean():
    model = KuramotoSivashinsky(64)
    state = model.initial_state(jax.random.key(0), dtype=jnp.float64)
    final, u = hybrax.rollout(
        hybrax.ETDRK4(model, 0.25), state, 2000, save_every=20, observe=model.field
    )
    std = jnp.std(u[50:], axis=1)
    assert jnp.all(jnp.isfinite(u)) and 0.8 < float(std.mean()) < 2.0, std
    np.testing.assert_allclose(final.field_hat[0], state.field_hat[0], atol=1e-13)
    # nearby trajectories separate (chaos): a 1e-8 perturbation grows by orders of magnitude
    perturbed = SpectralState(final.field_hat.at[1].add(1e-8), final.time)
    a, _ = hybrax.rollout(hybrax.ETDRK4(model, 0.25), final, 800, save_every=None)
    b, _ = hybrax.rollout(hybrax.ETDRK4(model, 0.25), perturbed, 800, save_every=None)
    assert jnp.max(jnp.abs(model.field(a) - model.field(b))) > 1e-4


def test_ks2d_linear_growth_rates_and_nonlinear_term():
    model = KuramotoSivashinsky2D(Grid((32, 32), 8 * np.pi))
    x, y = model.grid.coordinates(jnp.float64)
    # a tiny single mode evolves with rate |k|^2 - |k|^4 (k = 0.75 grows, 1.25 decays)
    for m, expected in ((3, 0.75**2 - 0.75**4), (5, 1.25**2 - 1.25**4)):
        k = 2 * np.pi * m / model.grid.domain_length[0]
        u = 1e-9 * jnp.cos(k * x)
        final, _ = hybrax.rollout(
            hybrax.ETDRK4(model, 0.1), model.state_from_field(u), 20, save_every=None
        )
        rate = np.log(float(jnp.max(jnp.abs(model.field(final)))) / 1e-9) / 2.0
        np.testing.assert_allclose(rate, expected, rtol=1e-6)
    # N(u) = -|grad u|^2 / 2 for a resolved trigonometric field
    u = jnp.sin(0.5 * x) * jnp.cos(0.25 * y)
    ux, uy = (
        0.5 * jnp.cos(0.5 * x) * jnp.cos(0.25 * y),
        -0.25 * jnp.sin(0.5 * x) * jnp.sin(0.25 * y),
    )
    n = model.field(model.nonlinear(model.state_from_field(u), 0.0))
    np.testing.assert_allclose(n, -0.5 * (ux**2 + uy**2), atol=1e-14)


def test_ks2d_saturates_and_works_under_vmap_grad(finite_difference):
    model = KuramotoSivashinsky2D(32)
    states = jax.vmap(lambda k: model.initial_state(k))(jax.random.split(jax.random.key(0), 2))
    final, _ = jax.jit(
        jax.vmap(lambda s: hybrax.rollout(hybrax.ETDRK4(model, 0.1), s, 400, save_every=None))
    )(states)
    u = jax.vmap(model.field)(final)
    fluctuation = jnp.std(u, axis=(1, 2))
    assert jnp.all(jnp.isfinite(u)) and jnp.all((fluctuation > 0.5) & (fluctuation < 10))

    state = model.initial_state(jax.random.key(3), dtype=jnp.float64)

    @jax.jit
    def loss(scale):
        s = SpectralState(state.field_hat * scale.astype(state.field_hat.dtype))
        out, _ = hybrax.rollout(hybrax.ETDRK4(model, 0.1), s, 10, save_every=None)
        return jnp.sum(model.field(out) ** 2)

    np.testing.assert_allclose(
        jax.grad(loss)(jnp.asarray(1.0)), finite_difference(loss, jnp.asarray(1.0)), rtol=1e-7
    )


def test_bad_input():
    with pytest.raises(ConfigurationError, match="1D grid"):
        KuramotoSivashinsky(Grid((8, 8)))
    with pytest.raises(ConfigurationError, match="2D grid"):
        KuramotoSivashinsky2D(Grid((8,)))
    with pytest.raises(ConfigurationError, match=r"spectral shape \(33,\)"):
        hybrax.ETDRK4(KuramotoSivashinsky(64), 0.25).step(
            SpectralState(jnp.zeros(17, jnp.complex64))
        )


def test_ks1d_under_jit_vmap_grad(finite_difference):
    model = KuramotoSivashinsky(64)
    stepper = hybrax.ETDRK4(model, 0.25)
    states = jax.vmap(lambda k: model.initial_state(k, dtype=jnp.float64))(
        jax.random.split(jax.random.key(0), 3)
    )
    run = jax.jit(jax.vmap(lambda s: hybrax.rollout(stepper, s, 40, save_every=None)[0]))
    batched = run(states)
    single, _ = hybrax.rollout(stepper, jax.tree.map(lambda x: x[2], states), 40, save_every=None)
    np.testing.assert_allclose(batched.field_hat[2], single.field_hat, atol=1e-12)

    @jax.jit
    def loss(scale):
        s = SpectralState(states.field_hat[0] * scale.astype(jnp.complex128))
        out, _ = hybrax.rollout(stepper, s, 20, save_every=None)
        return jnp.sum(model.field(out) ** 2)

    np.testing.assert_allclose(
        jax.grad(loss)(jnp.asarray(1.0)), finite_difference(loss, jnp.asarray(1.0)), rtol=1e-7
    )
