"""`fit` with optax optimizers that need extra `update` arguments (value, grad, value_fn)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from hybrax.hybrid import fit


class Linear(eqx.Module):
    w: jax.Array

    def __call__(self, x):
        return x @ self.w


def least_squares(model, batch):
    x, y = batch
    return jnp.mean((model(x) - y) ** 2)


@pytest.fixture(scope="module")
def problem():
    key_x, key_noise = jax.random.split(jax.random.key(1))
    x = jax.random.normal(key_x, (32, 3), jnp.float64)
    w_true = jnp.array([1.5, -2.0, 0.5])
    y = x @ w_true + 0.01 * jax.random.normal(key_noise, (32,), jnp.float64)
    w_best = np.linalg.lstsq(np.asarray(x), np.asarray(y), rcond=None)[0]
    return (x, y), w_best, float(least_squares(Linear(jnp.asarray(w_best)), (x, y)))


@pytest.mark.parametrize(
    "name, optimizer, steps, rtol",
    [
        # backtracking line search: it calls value_fn like the default zoom search, and
        # compiles in a third of the time
        (
            "lbfgs",
            optax.lbfgs(
                memory_size=3,
                linesearch=optax.scale_by_backtracking_linesearch(
                    max_backtracking_steps=15, store_grad=True
                ),
            ),
            20,
            1e-6,
        ),
        (
            "reduce_on_plateau",
            optax.chain(optax.sgd(0.3), optax.contrib.reduce_on_plateau(patience=5, factor=0.5)),
            100,
            1e-3,
        ),
    ],
)
def test_extra_args_optimizers_converge_on_least_squares(problem, name, optimizer, steps, rtol):
    """optax.lbfgs (value, grad, value_fn) and contrib.reduce_on_plateau (value) run in
    `fit` and reach the least-squares solution."""
    data, w_best, best = problem
    result = fit(Linear(jnp.zeros(3)), least_squares, data, optimizer, steps=steps)
    np.testing.assert_allclose(result.model.w, w_best, rtol=rtol, atol=rtol)
    assert result.history["train"][-1]["loss"] == pytest.approx(best, rel=10 * rtol)
    assert result.history["train"][0]["loss"] > 100 * best


def test_reduce_on_plateau_lowers_the_scale(problem):
    """The plateau scheduler sees the loss: its learning-rate scale drops once the loss
    stalls (with a too-large rate the loss bounces and stops improving)."""
    data, _, _ = problem
    plateau = optax.contrib.reduce_on_plateau(patience=3, factor=0.5)
    optimizer = optax.chain(optax.sgd(0.9), plateau)
    result = fit(Linear(jnp.zeros(3)), least_squares, data, optimizer, steps=60)
    assert float(result.opt_state[1].scale) < 1.0
