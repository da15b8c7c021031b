"""Orbax checkpoints of pytrees: round trips, keys, items, mismatches."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.io import Checkpointer, restore_checkpoint, save_checkpoint


def net(seed, width=8):
    return hybrax.nn.MLP(3, 2, width, 1, key=jax.random.key(seed, impl="rbg"))


def test_module_round_trip_is_exact(tmp_path):
    model = hybrax.RK4(hybrax.hybrid.Closure(hybrax.climate.Lorenz96(8, 19.5), net(0)), 0.01)
    save_checkpoint(tmp_path, model)
    template = hybrax.RK4(hybrax.hybrid.Closure(hybrax.climate.Lorenz96(8, 1.0), net(1)), 0.01)
    restored = restore_checkpoint(tmp_path, like=template)
    assert type(restored) is type(model)
    for a, b in zip(jax.tree.leaves(model), jax.tree.leaves(restored), strict=True):
        np.testing.assert_array_equal(a, b)
        assert jnp.result_type(a) == jnp.result_type(b)
    x = jnp.ones(3)
    np.testing.assert_array_equal(restored.dynamics.net(x), model.dynamics.net(x))


def test_keys_items_and_metadata(tmp_path):
    tree = {
        "model": net(0),
        "loop": {"step": jnp.asarray(7, jnp.int32), "key": jax.random.key(3)},
        "empty": (None, "static"),
    }
    with Checkpointer(tmp_path, max_to_keep=2) as checkpoints:
        for step in (1, 2, 3):
            checkpoints.save(step, tree, metadata={"note": f"step {step}"})
        assert checkpoints.all_steps() == [2, 3] and checkpoints.latest_step == 3
        restored, metadata = checkpoints.restore(tree)
        assert metadata == {"note": "step 3"}
        assert jax.random.key_impl(restored["loop"]["key"]) == jax.random.key_impl(
            tree["loop"]["key"]
        )
        np.testing.assert_array_equal(
            jax.random.key_data(restored["loop"]["key"]), jax.random.key_data(tree["loop"]["key"])
        )
        only_model, _ = checkpoints.restore({"model": net(5)}, step=2)
        assert set(only_model) == {"model"}
        np.testing.assert_array_equal(
            only_model["model"].layers[0].weight, tree["model"].layers[0].weight
        )


def test_restore_under_jit_use(tmp_path):
    """A restored module works in jitted, vmapped and differentiated code."""
    save_checkpoint(tmp_path, net(0))
    restored = restore_checkpoint(tmp_path, like=net(1))
    xs = jnp.ones((4, 3))
    out = eqx.filter_jit(lambda n, x: jax.vmap(n)(x))(restored, xs)
    grads = eqx.filter_grad(lambda n: jnp.sum(jax.vmap(n)(xs)))(restored)
    assert out.shape == (4, 2) and jnp.any(grads.layers[0].weight != 0)


def test_mismatches_are_explained(tmp_path):
    save_checkpoint(tmp_path / "a", net(0))
    with pytest.raises(
        ValueError, match=r"array 0 has shape \(8, 3\) but the template's has \(9, 3\)"
    ):
        restore_checkpoint(tmp_path / "a", like=net(0, width=9))
    with pytest.raises(ValueError, match="holds 4 arrays but the template has 8"):
        restore_checkpoint(tmp_path / "a", like=[net(0), net(1)])
    with pytest.raises(ValueError, match=r"has no item 'model'; it holds \['arrays'\]"):
        restore_checkpoint(tmp_path / "a", like={"model": net(0)})
    with pytest.raises(FileNotFoundError, match="no checkpoint for step 5"):
        restore_checkpoint(tmp_path / "a", like=net(0), step=5)
    with pytest.raises(FileNotFoundError, match="no checkpoint in"):
        restore_checkpoint(tmp_path / "empty", like=net(0))
