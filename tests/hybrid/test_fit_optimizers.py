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


def _all_optimizers() -> list[str]:
    """Every optimizer factory of optax and optax.contrib (first argument
    ``learning_rate``; ``polyak_sgd`` takes ``max_learning_rate``), found by introspection so
    a new optax release is covered without editing this list."""
    import inspect

    import optax.contrib

    names = []
    for prefix, module in (("", optax), ("contrib.", optax.contrib)):
        for name in sorted(dir(module)):
            f = getattr(module, name)
            if name.startswith(("_", "scale_by")) or not inspect.isfunction(f):
                continue
            first = next(iter(inspect.signature(f).parameters), None)
            if first == "learning_rate" or name == "polyak_sgd":
                names.append(prefix + name)
    return names


# dpsgd needs per-example gradients, galore matrices; sophia wants the loss as `obj_fn`, a
# keyword that optax's line searches (lbfgs) reject, so fit passes it only as `value_fn`
_NOT_APPLICABLE = {"contrib.dpsgd", "contrib.galore", "contrib.sophia"}
# learning-rate-free or relative-step methods that start with tiny steps: 40 steps of a
# least-squares problem are not enough for them to move much, so they only must not diverge
_SLOW_STARTERS = {
    "adadelta", "adafactor", "fromage", "contrib.dadapt_adamw", "contrib.dog",
    "contrib.dowg", "contrib.prodigy",
}  # fmt: skip
# the default (reduced) run: one of each family, and every optimizer that needs extra
# update arguments (value, value_fn / obj_fn); --runslow runs them all
_REDUCED = {
    "adam", "sgd", "polyak_sgd", "adafactor", "lion", "rprop", "noisy_sgd",
    "contrib.momo", "contrib.momo_adam", "contrib.prodigy", "contrib.schedule_free_adamw",
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in _all_optimizers() if n not in _NOT_APPLICABLE])
def test_every_optax_optimizer_runs_in_fit(problem, name, full_size):
    """Each optax / optax.contrib optimizer trains in a short `fit`: the loss stays finite and
    does not grow, and falls by 10% or more except for the slow starters."""
    import optax.contrib

    if not full_size and name not in _REDUCED:
        pytest.skip("reduced run: a representative subset (all of them with --runslow)")
    module, short = (optax.contrib, name[8:]) if name.startswith("contrib.") else (optax, name)
    factory = getattr(module, short)
    kwargs = {"max_learning_rate": 0.1} if short == "polyak_sgd" else {"learning_rate": 0.05}
    if short == "noisy_sgd":
        kwargs["key"] = jax.random.key(0)
    data, _, _ = problem
    result = fit(Linear(jnp.zeros(3)), least_squares, data, factory(**kwargs), steps=40)
    first, last = result.history["train"][0]["loss"], result.history["train"][-1]["loss"]
    assert np.isfinite(last) and np.all(np.isfinite(result.model.w))
    assert last <= first * (1 + 1e-12), (first, last)
    if name not in _SLOW_STARTERS:
        assert last < 0.9 * first, (first, last)
