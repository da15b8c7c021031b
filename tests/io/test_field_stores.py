"""Model states in netCDF (h5netcdf) and zarr: write, read back, stream a long trajectory in
chunks, never overwrite unless asked."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.io import load_states, open_states, rollout_to_zarr, save_states, to_dataset

xr = pytest.importorskip("xarray")
pytest.importorskip("zarr")
pytest.importorskip("h5netcdf")


@pytest.fixture(scope="module")
def kolmogorov():
    model = hybrax.fluids.NavierStokes2D(16, viscosity=1e-2)
    stepper = hybrax.ETDRK4(model, 0.05)
    _, trajectory = hybrax.rollout(stepper, model.initial_state(), 4, save_every=2)
    return model, stepper, trajectory


@pytest.mark.parametrize("name", ["run.nc", "run.zarr"])
def test_write_and_read_back(tmp_path, kolmogorov, name):
    model, stepper, trajectory = kolmogorov
    path = tmp_path / name
    save_states(path, stepper, trajectory, attrs={"experiment": "test", "flag": True})
    back = load_states(path, stepper)
    assert back.field_hat.dtype == trajectory.field_hat.dtype == jnp.complex64
    np.testing.assert_allclose(back.field_hat, trajectory.field_hat, atol=1e-5)
    np.testing.assert_array_equal(back.time, trajectory.time)
    # a plain xarray reader sees physical fields with units and the model's parameters
    engine = "h5netcdf" if name.endswith(".nc") else "zarr"
    ds = xr.open_dataset(path, engine=engine)
    assert ds["vorticity"].dims == ("time", "x", "y")
    assert ds["u"].attrs["units"] == "1" and ds["x"].attrs["axis"] == "X"
    assert ds.attrs["model.dynamics.class"] == "NavierStokes2D"
    assert ds.attrs["experiment"] == "test" and ds.attrs["flag"] == 1
    np.testing.assert_allclose(ds["vorticity"].values, jax.vmap(model.vorticity)(trajectory))


def test_netcdf_of_md_state_with_key(tmp_path):
    md = hybrax.md
    positions, box = md.lattice("fcc", 3, density=0.8442)
    nbrs = md.neighbor_list(positions, box, cutoff=2.5, skin=0.3)
    stepper = md.LangevinBAOAB(md.LennardJones(cutoff=2.5), box, dt=0.005, temperature=1.0)
    state = stepper.init(positions, None, nbrs, key=jax.random.key(3))
    save_states(tmp_path / "md.nc", stepper, state)
    back = load_states(tmp_path / "md.nc", stepper)
    np.testing.assert_array_equal(back.positions, state.positions)
    np.testing.assert_array_equal(jax.random.key_data(back.key), jax.random.key_data(state.key))
    assert back.neighbors is None


def test_rollout_streams_to_zarr_in_chunks(tmp_path):
    # AdamsBashforth3 carries its history: the pieces continue from the carry, so the
    # streamed trajectory is exactly one long rollout's
    model = hybrax.climate.Lorenz96(8)
    stepper = hybrax.AdamsBashforth3(model, 0.01)
    state = model.initial_state(jax.random.key(0), dtype=jnp.float64)
    path = tmp_path / "l96.zarr"
    final = rollout_to_zarr(path, stepper, state, 14, save_every=2, chunk_size=3)
    reference_final, reference = hybrax.rollout(stepper, state, 14, save_every=2)
    ds = open_states(path)
    assert ds.sizes["time"] == 8  # the initial state and 7 saved ones, in 3 pieces
    assert ds["x"].encoding["chunks"][0] == 3
    np.testing.assert_allclose(ds["time"].values, 0.01 * np.arange(0, 15, 2), rtol=1e-12)
    back = load_states(path, stepper)
    np.testing.assert_array_equal(back.u[1:], reference.u)
    np.testing.assert_array_equal(back.u[0], state.u)
    np.testing.assert_array_equal(stepper.state_of(final).u, stepper.state_of(reference_final).u)
    with pytest.raises(hybrax.OverwriteError, match=r"l96\.zarr"):
        rollout_to_zarr(path, stepper, state, 2)


def test_spectral_trajectory_streams_to_round_off(tmp_path, kolmogorov):
    model, stepper, _ = kolmogorov
    state = model.initial_state()
    rollout_to_zarr(tmp_path / "k.zarr", stepper, state, 4, save_every=2, chunk_size=1)
    _, reference = hybrax.rollout(stepper, state, 4, save_every=2)
    back = load_states(tmp_path / "k.zarr", stepper)
    scale = float(jnp.max(jnp.abs(reference.field_hat)))
    np.testing.assert_allclose(back.field_hat[1:], reference.field_hat, atol=1e-6 * scale)


def test_refuses_to_overwrite(tmp_path, kolmogorov):
    _, stepper, trajectory = kolmogorov
    for name in ("a.nc", "a.zarr"):
        path = tmp_path / name
        save_states(path, stepper, trajectory)
        with pytest.raises(hybrax.OverwriteError, match=re.escape(f"{name}' exists")):
            save_states(path, stepper, trajectory)
        save_states(path, stepper, jax.tree.map(lambda x: x[:1], trajectory), overwrite=True)
        assert load_states(path, stepper).time.shape == (1,)
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    with pytest.raises(hybrax.OverwriteError, match=r"notes\.txt"):
        save_states(precious, stepper, trajectory, format="zarr")
    assert precious.read_text() == "keep me"


def test_bad_arguments(tmp_path, kolmogorov, wrong_type):
    model, stepper, trajectory = kolmogorov
    with pytest.raises(hybrax.ConfigurationError, match="format must be"):
        save_states(tmp_path / "x", stepper, trajectory, format="hdf")
    with wrong_type("path", hybrax.ConfigurationError, "path must be"):
        save_states(3, stepper, trajectory)
    with pytest.raises(hybrax.ConfigurationError, match="does not exist"):
        load_states(tmp_path / "missing.nc", stepper)
    with pytest.raises(hybrax.ConfigurationError, match="chunk_size must be a positive int"):
        rollout_to_zarr(tmp_path / "r.zarr", stepper, model.initial_state(), 4, chunk_size=0)
    with pytest.raises(hybrax.ConfigurationError, match="does not divide"):
        rollout_to_zarr(tmp_path / "r.zarr", stepper, model.initial_state(), 5, save_every=2)
    assert not (tmp_path / "r.zarr").exists()
    assert to_dataset(stepper, trajectory).attrs["hybrax_fields"] == "hybrax.fluids.NavierStokes2D"


def test_overwrite_true_never_replaces_a_path_hybrax_did_not_write(tmp_path):
    """overwrite=True replaces only a store hybrax.io wrote; a user's file is left alone."""
    model = hybrax.climate.Lorenz96(8, 8.0)
    state = model.initial_state(jax.random.key(0))
    foreign = tmp_path / "notes.nc"
    foreign.write_text("my notes")
    with pytest.raises(hybrax.OverwriteError, match="not written by hybrax"):
        hybrax.io.save_states(foreign, hybrax.RK4(model, 0.01), state, overwrite=True)
    assert foreign.read_text() == "my notes"
