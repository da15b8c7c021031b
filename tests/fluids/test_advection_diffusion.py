"""Advection–diffusion by a uniform flow: exact Fourier solution in 1D/2D/3D."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.errors import ConfigurationError
from hybrax.fluids import AdvectionDiffusion
from hybrax.grids import Grid


@pytest.mark.parametrize("shape", [(32,), (32, 16), (8, 8, 16)])
def test_exact_translation_and_decay(shape):
    grid = Grid(shape, 2 * np.pi)
    velocity = jnp.asarray([1.0, -0.5, 0.25][: grid.ndim])
    model = AdvectionDiffusion(grid, velocity=velocity, diffusivity=0.05)
    coords = grid.coordinates(jnp.float64)
    c0 = jnp.exp(sum(jnp.cos(c + i) for i, c in enumerate(coords)))
    t_end = 1.3
    final, _ = hybrax.rollout(
        hybrax.ETDRK4(model, 0.1), model.state_from_field(c0), 13, save_every=None
    )
    # exact: every Fourier mode is translated and damped
    k = grid.wavenumbers(jnp.float64)
    keep = jnp.asarray(grid._nyquist_mask(), jnp.float64)
    phase = sum(v * kk for v, kk in zip(velocity, k, strict=True)) * keep
    decay = -0.05 * grid.wavenumber_squared(jnp.float64) * t_end
    factor = jnp.exp(jax.lax.complex(decay, -phase * t_end))
    exact = grid.to_physical(grid.to_spectral(c0) * factor)
    np.testing.assert_allclose(model.field(final), exact, atol=1e-12)


def test_second_order_crank_nicolson_and_gradient(finite_difference):
    grid = Grid((32,))
    (x,) = grid.coordinates(jnp.float64)
    c0 = jnp.exp(jnp.sin(x))

    def solve(velocity, stepper_cls, n):
        model = AdvectionDiffusion(grid, velocity=jnp.stack([velocity]), diffusivity=0.1)
        out, _ = hybrax.rollout(
            stepper_cls(model, 1.0 / n), model.state_from_field(c0), n, save_every=None
        )
        return model.field(out)

    exact = solve(jnp.asarray(1.0), hybrax.ETDRK4, 1)
    errors = [
        float(jnp.max(jnp.abs(solve(jnp.asarray(1.0), hybrax.CrankNicolsonRK4, n) - exact)))
        for n in (20, 40)
    ]
    assert 3.6 < errors[0] / errors[1] < 4.4, errors
    loss = jax.jit(lambda v: jnp.sum(solve(v, hybrax.ETDRK4, 4) * jnp.cos(x)))
    np.testing.assert_allclose(
        jax.grad(loss)(jnp.asarray(1.0)), finite_difference(loss, jnp.asarray(1.0)), rtol=1e-8
    )


def test_bad_input():
    with pytest.raises(ConfigurationError, match=r"one component per grid axis, shape \(2,\)"):
        AdvectionDiffusion(Grid((8, 8)), velocity=jnp.ones(3))
    with pytest.raises(ConfigurationError, match="diffusivity must be a single number"):
        AdvectionDiffusion(Grid((8,)), diffusivity=jnp.ones(2))


def test_vmap_over_velocities():
    grid = Grid((16, 16))
    x, y = grid.coordinates(jnp.float64)
    c0 = jnp.exp(jnp.cos(x) * jnp.sin(y))

    def solve(velocity):
        model = AdvectionDiffusion(grid, velocity=velocity, diffusivity=0.01)
        out, _ = hybrax.rollout(
            hybrax.ETDRK4(model, 0.1), model.state_from_field(c0), 5, save_every=None
        )
        return model.field(out)

    velocities = jnp.array([[1.0, 0.0], [0.0, 2.0]])
    batched = jax.jit(jax.vmap(solve))(velocities)
    np.testing.assert_allclose(batched[1], solve(velocities[1]), atol=1e-13)
