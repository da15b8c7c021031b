"""Trajectory datasets in zarr through xarray, with the generating model as attributes."""

import shutil

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


def test_dataset_errors(tmp_path, wrong_type):
    error = hybrax.ConfigurationError
    with pytest.raises(error, match="empty dataset"):
        to_xarray({})
    with pytest.raises(error, match="fewer axes than the leading dims"):
        to_xarray({"a": jnp.zeros(3)})
    dataset = to_xarray({"a": jnp.zeros((2, 3))})
    with pytest.raises(hybrax.DataMismatchError, match=r"no variable\(s\) \['b'\]"):
        from_xarray(dataset, {"b": jnp.zeros(())})
    with pytest.raises(error, match="no zarr store"):
        load_dataset(tmp_path / "missing.zarr")
    with pytest.raises(error, match="attrs must be JSON-serialisable"):
        save_dataset(tmp_path / "bad.zarr", {"a": jnp.zeros((2, 3))}, attrs={"f": object()})
    with pytest.raises(error, match=r"dataset must be an xarray\.Dataset"):
        from_xarray({"a": jnp.zeros((2, 3))}, {"a": jnp.zeros(3)})
    with pytest.raises(error, match="leading_dims must be a sequence of names"):
        to_xarray({"a": jnp.zeros((2, 3))}, leading_dims="time")
    with wrong_type("path", error, r"path must be a str or pathlib\.Path"):
        save_dataset(3, {"a": jnp.zeros((2, 3))})


def test_clear_errors_for_paths_and_leading_dims(tmp_path):
    """Probe row 87: mismatched leading dims, an unwritable path, a plain file."""
    with pytest.raises(hybrax.ConfigurationError, match=r"`a` has \(2, 3\) and `b` has \(2, 4\)"):
        save_dataset(tmp_path / "x.zarr", {"a": jnp.zeros((2, 3)), "b": jnp.zeros((2, 4))})
    with pytest.raises(hybrax.ConfigurationError, match="cannot write path='/proc/"):
        save_dataset("/proc/hybrax.zarr", {"a": jnp.zeros((2, 3))})
    plain = tmp_path / "plain.txt"
    plain.write_text("not zarr")
    with pytest.raises(hybrax.ConfigurationError, match="is a file, not a zarr store"):
        load_dataset(plain)
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(hybrax.CorruptedDataError, match="cannot be read as a zarr dataset"):
        load_dataset(folder)


def test_save_never_replaces_what_it_did_not_write(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(hybrax.OverwriteError, match="not a dataset written by save_dataset"):
        save_dataset(mine, {"a": jnp.zeros((2, 3))})
    assert (mine / "notes.txt").read_text() == "keep me"
    save_dataset(tmp_path / "d.zarr", {"a": jnp.zeros((2, 3))})
    save_dataset(tmp_path / "d.zarr", {"a": jnp.ones((2, 3))})  # its own store: replaced
    np.testing.assert_array_equal(load_dataset(tmp_path / "d.zarr")["a"], 1.0)


def test_altered_values_fail_the_checksum(tmp_path):
    """Values changed in place (well-formed zarr, other numbers) are detected."""
    import zarr

    path = tmp_path / "d.zarr"
    data = {"a": jnp.arange(24.0).reshape(2, 3, 4), "b": jnp.full((2, 3), jnp.nan)}
    save_dataset(path, data)
    back, _ = load_dataset(path, like={"a": jnp.zeros(4), "b": jnp.zeros(())})
    np.testing.assert_array_equal(back["a"], data["a"])
    array = zarr.open_array(str(path / "a"), mode="r+")
    array[0, 0, 0] = 99.0
    with pytest.raises(hybrax.CorruptedDataError, match=r"d.zarr: variable `a` fails its"):
        load_dataset(path)


def test_flipped_chunk_bytes_never_load_silently(tmp_path, generated):
    """Probe row 88: flipping 4 bytes of a chunk file either raises CorruptedDataError
    naming the store or leaves the values bit-identical, never changes them silently."""
    model, _, data = generated
    reference = tmp_path / "ref.zarr"
    save_dataset(reference, data)
    chunks = sorted(
        p.relative_to(reference) for p in reference.rglob("*") if p.is_file() and "c" in p.parts
    )
    assert chunks
    detected = 0
    for index, rel in enumerate(chunks):
        size = (reference / rel).stat().st_size
        for offset in sorted({0, size // 3, size // 2, max(size - 6, 0)}):
            case = tmp_path / f"{index}_{offset}.zarr"
            shutil.copytree(reference, case)
            raw = bytearray((case / rel).read_bytes())
            raw[offset : offset + 4] = bytes(b ^ 0xFF for b in raw[offset : offset + 4])
            (case / rel).write_bytes(bytes(raw))
            try:
                back, _ = load_dataset(case, like=model.initial_state())
            except hybrax.CorruptedDataError as error:
                assert str(case) in str(error)
                detected += 1
                continue
            for a, b in zip(jax.tree.leaves(data), jax.tree.leaves(back), strict=True):
                np.testing.assert_array_equal(a, b)
    assert detected > 0


def test_load_compares_shapes_and_generating_parameters(tmp_path):
    """Probe rows 84-85: K=8 data loaded into a K=40 state, F=20 data for an F=8 model."""
    truth = hybrax.climate.Lorenz96(8, 20.0)
    stepper = hybrax.RK4(truth, 0.01)
    sample = lambda k: truth.initial_state(k, dtype=jnp.float64)  # noqa: E731
    data = hybrax.hybrid.generate_trajectories(stepper, sample, jax.random.key(0), 2, 4)
    path = tmp_path / "l96.zarr"
    save_dataset(path, data, model=stepper)
    with pytest.raises(
        hybrax.DataMismatchError, match=r"`u` holds \(8,\) per entry.*like's `u` has shape \(40,\)"
    ):
        load_dataset(path, like=hybrax.climate.Lorenz96(40).initial_state())
    wrong = hybrax.climate.Lorenz96(8, 8.0)
    net = hybrax.nn.MLP(8, 8, 4, 1, key=jax.random.key(0, impl="rbg"))
    for model in (wrong, hybrax.RK4(wrong, 0.01), hybrax.hybrid.Closure(wrong, net)):
        with pytest.raises(
            hybrax.DataMismatchError,
            match=r"Lorenz96.forcing = 20.0 .*but the model has Lorenz96.forcing = 8.0.*check=Fa",
        ):
            load_dataset(path, like=truth.initial_state(), model=model)
        back, _ = load_dataset(path, like=truth.initial_state(), model=model, check=False)
        assert back.u.shape == (2, 5, 8)
    # the matching model, also with another time step or wrapped, passes
    for model in (truth, hybrax.RK4(truth, 0.02), hybrax.hybrid.Closure(truth, net)):
        load_dataset(path, like=truth.initial_state(), model=model)
