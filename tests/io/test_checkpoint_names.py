"""Checkpoints that stand alone: arrays named by their paths (plain orbax restores them
without a hybrax template), the model's description stored, differing leaves named."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.io import restore_checkpoint, save_checkpoint

ocp = pytest.importorskip("orbax.checkpoint")


def _model(forcing=8.0, dt=0.005):
    return hybrax.RK4(hybrax.climate.Lorenz96(8, forcing=forcing), dt=dt)


def test_plain_orbax_reads_named_arrays_and_the_description(tmp_path):
    net = hybrax.nn.MLP(2, 1, 8, 1, key=jax.random.key(0))
    save_checkpoint(tmp_path, {"model": _model(9.5), "net": net})
    arrays = ocp.StandardCheckpointer().restore(tmp_path / "0" / "net")  # no template
    np.testing.assert_array_equal(arrays["layers"]["0"]["weight"], net.layers[0].weight)
    model = ocp.StandardCheckpointer().restore(tmp_path / "0" / "model")
    np.testing.assert_array_equal(model["dynamics"]["forcing"], 9.5)
    stored = json.loads((tmp_path / "0" / "metadata" / "metadata").read_text())["__hybrax__"]
    description = stored["description"]["model"]
    assert description["tree.class"] == "RK4" and description["tree.dynamics.class"] == "Lorenz96"
    assert description["tree.dt"] == 0.005 and description["tree.dynamics.forcing"] == 9.5
    assert stored["format"] == 2
    back = restore_checkpoint(tmp_path, like={"model": _model(), "net": net})
    assert float(back["model"].dynamics.forcing) == 9.5  # arrays come from the checkpoint


def test_template_mismatch_names_the_differing_leaf(tmp_path):
    save_checkpoint(tmp_path, _model())
    with pytest.raises(hybrax.ConfigurationError, match=r"saved with dt = 0\.005.*dt = 0\.01"):
        restore_checkpoint(tmp_path, like=_model(dt=0.01))
    other = hybrax.RK4(hybrax.climate.Lorenz63(), 0.005)
    with pytest.raises(
        hybrax.ConfigurationError,
        match=r"only in the template: \['dynamics\.sigma', .*only in the checkpoint: "
        r"\['dynamics\.forcing'\]",
    ):
        restore_checkpoint(tmp_path, like=other)


def test_format_1_checkpoints_still_restore(tmp_path):
    """Checkpoints written before the arrays were named (a flat list) still read."""
    model = _model(7.0)
    manager = ocp.CheckpointManager(tmp_path, options=ocp.CheckpointManagerOptions(create=True))
    arrays = [jnp.asarray(7.0, _model().dynamics.forcing.dtype)]
    args = ocp.args.Composite(
        metadata=ocp.args.JsonSave({"__hybrax__": {"format": 1}}),
        arrays=ocp.args.StandardSave(arrays),
    )
    manager.save(0, args=args)
    manager.wait_until_finished()
    manager.close()
    back = restore_checkpoint(tmp_path, like=_model())
    assert float(back.dynamics.forcing) == float(model.dynamics.forcing)
