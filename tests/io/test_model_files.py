"""`save_model` / `load_model`: models rebuilt from their JSON description and named arrays
alone (no template, no pickle)."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.io import load_model, save_model


def _models():
    net = hybrax.nn.MLP(3, 3, 8, 2, key=jax.random.key(0))
    return {
        "rk4_lorenz96": hybrax.RK4(hybrax.climate.Lorenz96(8, 20.0), dt=0.01),
        "etdrk4_kolmogorov": hybrax.ETDRK4(hybrax.fluids.NavierStokes2D.kolmogorov(16), 0.01),
        "qg_with_closure": hybrax.climate.TwoLayerQG.eddy(
            16, parameterization=hybrax.climate.Smagorinsky(0.1)
        ),
        "mlp": net,
        "lennard_jones": hybrax.md.LennardJones(epsilon=0.8, cutoff=2.5),
        "float32_burgers": hybrax.ETDRK4(
            hybrax.fluids.Burgers(hybrax.grids.Grid(32), viscosity=jnp.float32(0.1)), 0.01
        ),
    }


@pytest.mark.parametrize("name", sorted(_models()))
def test_round_trip_gives_the_same_model(tmp_path, name):
    model = _models()[name]
    back = load_model(save_model(tmp_path / name, model))
    assert type(back) is type(model)
    assert bool(eqx.tree_equal(model, back))  # same structure, static fields and arrays
    for a, b in zip(jax.tree.leaves(model), jax.tree.leaves(back), strict=True):
        if isinstance(a, jax.Array):  # same dtypes, weak types included (promotion rules)
            assert (a.dtype, a.weak_type) == (b.dtype, b.weak_type)


def test_loaded_stepper_steps_like_the_original(tmp_path):
    stepper = _models()["rk4_lorenz96"]
    state = stepper.dynamics.initial_state(jax.random.key(1))
    back = load_model(save_model(tmp_path / "l96", stepper))
    np.testing.assert_array_equal(back.step(state).u, stepper.step(state).u)


def test_description_is_plain_json_and_arrays_plain_npz(tmp_path):
    folder = save_model(tmp_path / "net", _models()["mlp"])
    description = json.loads((folder / "model.json").read_text())
    assert description["format"] == "hybrax-model/1"
    assert description["model"]["class"].endswith(":MLP")
    with np.load(folder / "arrays.npz", allow_pickle=False) as arrays:
        assert len(arrays.files) > 0 and all(k.startswith("model") for k in arrays.files)


def test_refuses_to_overwrite_and_to_replace_foreign_folders(tmp_path):
    model = _models()["lennard_jones"]
    folder = save_model(tmp_path / "lj", model)
    with pytest.raises(hybrax.OverwriteError, match="overwrite=True"):
        save_model(folder, model)
    save_model(folder, hybrax.md.LennardJones(epsilon=0.5, cutoff=2.5), overwrite=True)
    assert float(load_model(folder).epsilon) == 0.5
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(hybrax.OverwriteError, match="not a folder written by save_model"):
        save_model(foreign, model, overwrite=True)
    assert (foreign / "keep.txt").read_text() == "mine"


def test_lambdas_and_bad_files_are_named(tmp_path):
    net = eqx.nn.MLP(2, 2, 4, 1, activation=lambda x: x, key=jax.random.key(0))
    with pytest.raises(hybrax.ConfigurationError, match=r"model\.activation.*lambda"):
        save_model(tmp_path / "bad", net)
    assert not (tmp_path / "bad").exists()
    with pytest.raises(hybrax.ConfigurationError, match=r"holds no model\.json"):
        load_model(tmp_path)
    folder = save_model(tmp_path / "ok", _models()["lennard_jones"])
    (folder / "model.json").write_text("{not json")
    with pytest.raises(hybrax.CorruptedDataError, match="cannot read"):
        load_model(folder)
    (folder / "model.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(hybrax.CorruptedDataError, match="hybrax-model/1"):
        load_model(folder)
