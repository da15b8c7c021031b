"""Trajectory datasets in zarr through xarray, with the generating model as attributes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.io import from_xarray, load_dataset, model_attrs, save_dataset, to_xarray


@pytest.fixture(scope="module")
def generated():
    model = hybrax.climate.TwoScaleLorenz96()
    stepper = hybrax.RK4(model, 0.005)
    sample = lambda k: model.initial_state(k, dtype=jnp.float64)  # noqa: E731
    data = hybrax.hybrid.generate_trajectories(
        stepper, sample, jax.random.key(0), n=3, n_steps=20, save_every=10
    )
    return model, stepper, data


def test_zarr_round_trip_with_model_attributes(tmp_path, generated):
    model, stepper, data = generated
    path = tmp_path / "two_scale.zarr"
    save_dataset(path, data, model=stepper, attrs={"save_every": 10, "note": "test"})
    back, attrs = load_dataset(path, like=model.initial_state())
    for a, b in zip(jax.tree.leaves(data), jax.tree.leaves(back), strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    assert attrs["model.class"] == "RK4"
    assert attrs["model.dt"] == 0.005
    assert attrs["model.dynamics.class"] == "TwoScaleLorenz96"
    assert attrs["model.dynamics.forcing"] == 20.0
    assert attrs["model.dynamics.num_fast_per_slow"] == 32
    assert attrs["save_every"] == 10 and attrs["note"] == "test"
    dataset = load_dataset(path)
    assert dataset["y"].dims == ("sample", "time_index", "y_0", "y_1")
    assert dataset["x"].shape == (3, 3, 8)


def test_tuples_and_custom_dims(tmp_path):
    tree = (hybrax.ODEState(jnp.ones((4, 5)), jnp.zeros(4)), jnp.arange(8.0).reshape(4, 2))
    dataset = to_xarray(tree, leading_dims=("time",))
    assert sorted(dataset.data_vars) == ["0.time", "0.u", "1"]
    like = (hybrax.ODEState(jnp.zeros(5)), jnp.zeros(2))
    back = from_xarray(dataset, like)
    np.testing.assert_array_equal(back[1], tree[1])
    save_dataset(tmp_path / "t.zarr", tree, leading_dims=("time",))
    again, _ = load_dataset(tmp_path / "t.zarr", like=like)
    np.testing.assert_array_equal(again[0].u, tree[0].u)


def test_model_attrs_skip_network_weights():
    net = hybrax.nn.MLP(8, 8, 16, 1, key=jax.random.key(0, impl="rbg"))
    closure = hybrax.hybrid.Closure(hybrax.climate.Lorenz96(8, 18.0), net)
    attrs = model_attrs(closure)
    assert attrs["model.dynamics.forcing"] == 18.0
    assert attrs["model.net.class"] == "MLP"
    assert not any("weight" in key for key in attrs)  # 128 numbers: left out


def test_dataset_errors(tmp_path):
    with pytest.raises(ValueError, match="empty dataset"):
        to_xarray({})
    with pytest.raises(ValueError, match="fewer axes than the leading dims"):
        to_xarray({"a": jnp.zeros(3)})
    dataset = to_xarray({"a": jnp.zeros((2, 3))})
    with pytest.raises(ValueError, match=r"no variable\(s\) \['b'\]"):
        from_xarray(dataset, {"b": jnp.zeros(())})
    with pytest.raises(FileNotFoundError, match="no zarr store"):
        load_dataset(tmp_path / "missing.zarr")
    with pytest.raises(TypeError):
        save_dataset(tmp_path / "bad.zarr", {"a": jnp.zeros((2, 3))}, attrs={"f": object()})
