"""Model states as xarray Datasets of physical fields: every domain's round trip, coordinates
in physical units, CF attributes, trajectories and ensembles, wrappers, custom models."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
import hybrax.md as md
from hybrax.io import FieldSpec, from_dataset, register_fields, to_dataset

xr = pytest.importorskip("xarray")


def _sin(grid, dtype=jnp.float64):
    """A smooth real field on a grid (all axes), mean zero."""
    coords = grid.coordinates(dtype)
    return sum(jnp.sin((i + 1) * c + 0.3 * i) for i, c in enumerate(coords))


def _md(thermostat: bool):
    positions, box = md.lattice("fcc", 3, density=0.8442)
    nbrs = md.neighbor_list(positions, box, cutoff=2.5, skin=0.3)
    energy = md.LennardJones(cutoff=2.5)
    if thermostat:
        stepper = md.NoseHooverChain(energy, box, dt=0.005, temperature=1.0)
        return stepper, stepper.init(positions, None, nbrs)
    stepper = md.LangevinBAOAB(energy, box, dt=0.005, temperature=1.0, friction=1.0)
    return stepper, stepper.init(positions, None, nbrs, key=jax.random.key(1))


def _case(name):
    """(model, one state, {variable: expected dims}) for each kind of model."""
    fluids, climate, grids = hybrax.fluids, hybrax.climate, hybrax.grids
    if name == "navier_stokes_2d":
        model = fluids.NavierStokes2D(16, viscosity=1e-3)
        return model, model.initial_state(), {"vorticity": ("x", "y"), "u": ("x", "y")}
    if name == "navier_stokes_3d":
        model = fluids.NavierStokes3D.taylor_green(8, reynolds_number=100.0)
        return model, model.taylor_green_state(), {"w": ("x", "y", "z")}
    if name == "burgers":
        model = fluids.Burgers(16)
        return model, model.state_from_field(_sin(model.grid)), {"u": ("x",)}
    if name == "kuramoto_sivashinsky":
        model = fluids.KuramotoSivashinsky(grids.Grid(16, 22.0))
        return model, model.initial_state(), {"u": ("x",)}
    if name == "kuramoto_sivashinsky_2d":
        model = fluids.KuramotoSivashinsky2D(grids.Grid((8, 8), 10.0))
        return model, model.initial_state(jax.random.key(0)), {"u": ("x", "y")}
    if name == "advection_diffusion":
        model = fluids.AdvectionDiffusion(grids.Grid((8, 8, 8)))
        return model, model.state_from_field(_sin(model.grid)), {"concentration": ("x", "y", "z")}
    if name == "incompressible":
        model = fluids.IncompressibleNavierStokes.lid_driven_cavity(6, reynolds_number=100.0)
        key_u, key_v = jax.random.split(jax.random.key(0))
        u, v = jax.random.normal(key_u, (7, 6)), jax.random.normal(key_v, (6, 7))
        state = fluids.FlowState(u, v, jnp.ones((6, 6)), jnp.asarray(0.5))
        return model, state, {"u": ("x_face", "y"), "v": ("x", "y_face"), "pressure": ("x", "y")}
    if name == "two_layer_qg":
        model = climate.TwoLayerQG.eddy(num_points=16)
        return model, model.initial_state(), {"pv": ("layer", "y", "x"), "u": ("layer", "y", "x")}
    if name == "shallow_water":
        model = climate.ShallowWater(8)
        state = model.vortex_state(amplitude=-20.0, radius=4e5)
        return model, state, {"u": ("x_face", "y"), "eta": ("x", "y")}
    if name == "lorenz63":
        model = climate.Lorenz63()
        return model, model.initial_state(jax.random.key(0)), {"x": (), "z": ()}
    if name == "lorenz96":
        model = climate.Lorenz96(8)
        return model, model.initial_state(), {"x": ("k",)}
    if name == "two_scale_lorenz96":
        model = climate.TwoScaleLorenz96(4, 3)
        return model, model.initial_state(jax.random.key(0)), {"y": ("k", "j")}
    if name == "energy_balance_0d":
        model = climate.EnergyBalance0D()
        return model, model.initial_state(), {"temperature": ()}
    if name == "budyko_sellers":
        model = climate.BudykoSellers(num_points=8)
        return model, model.initial_state(10.0), {"temperature": ("latitude",)}
    if name in ("md_langevin", "md_nose_hoover"):
        stepper, state = _md(name == "md_nose_hoover")
        state = eqx.tree_at(lambda s: s.neighbors, state, None)  # a cache, not stored
        return stepper, state, {"positions": ("atom", "spatial"), "potential_energy": ()}
    raise AssertionError(name)


CASES = [
    "navier_stokes_2d",
    "navier_stokes_3d",
    "burgers",
    "kuramoto_sivashinsky",
    "kuramoto_sivashinsky_2d",
    "advection_diffusion",
    "incompressible",
    "two_layer_qg",
    "shallow_water",
    "lorenz63",
    "lorenz96",
    "two_scale_lorenz96",
    "energy_balance_0d",
    "budyko_sellers",
    "md_langevin",
    "md_nose_hoover",
]


def _assert_same_state(back, state):
    """Equal leaves; spectral and other inexact leaves to round-off of their magnitude."""
    leaves_back, leaves = jax.tree.leaves(back), jax.tree.leaves(state)
    assert len(leaves_back) == len(leaves)
    for a, b in zip(leaves_back, leaves, strict=True):
        if jnp.issubdtype(b.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        assert a.dtype == b.dtype and a.shape == b.shape
        scale = float(jnp.max(jnp.abs(b))) if b.size else 0.0
        eps = float(jnp.finfo(b.dtype).eps) if jnp.issubdtype(b.dtype, jnp.inexact) else 0.0
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=64 * eps * scale)


@pytest.mark.parametrize("name", CASES)
def test_round_trip_and_cf_attributes(name):
    model, state, expected = _case(name)
    ds = to_dataset(model, state)
    for variable, dims in expected.items():
        assert ds[variable].dims == dims
        assert ds[variable].dtype.kind == "f"  # physical fields are real
    for variable in [*ds.data_vars, *ds.coords]:
        attrs = ds[variable].attrs
        assert attrs["units"] and attrs["long_name"], variable
    assert ds["time"].attrs["standard_name"] == "time" and ds["time"].ndim == 0
    assert ds.attrs["Conventions"].startswith("CF-")
    assert ds.attrs["model.class"] == type(model).__name__
    _assert_same_state(from_dataset(model, ds), state)


def test_coordinates_in_physical_units():
    qg = hybrax.climate.TwoLayerQG.eddy(num_points=16, domain_length=8e5)
    ds = to_dataset(qg, qg.initial_state())
    assert ds["x"].attrs["units"] == "m" and ds["time"].attrs["units"] == "s"
    np.testing.assert_allclose(np.diff(ds["x"].values), 8e5 / 16)
    assert ds["layer"].values.tolist() == [1, 2]
    np.testing.assert_allclose(ds["layer_depth"].sum(), np.sum(qg.layer_depths))
    assert ds["u"].attrs["standard_name"] == "eastward_sea_water_velocity"
    assert ds.attrs["model.deformation_radius"] == pytest.approx(15000.0)
    np.testing.assert_allclose(ds["pv"].values, qg.pv(qg.initial_state()))

    water = hybrax.climate.ShallowWater(8, domain_length=8e5)
    ds = to_dataset(water, water.rest_state())
    np.testing.assert_allclose(ds["x"].values, (np.arange(8) + 0.5) * 1e5)  # centres
    np.testing.assert_allclose(ds["x_face"].values, np.arange(8) * 1e5)  # west faces

    ebm = hybrax.climate.BudykoSellers(num_points=8)
    ds = to_dataset(ebm, ebm.initial_state())
    assert ds["latitude"].attrs["standard_name"] == "latitude"
    assert ds["latitude"].attrs["units"] == "degrees_north"
    np.testing.assert_allclose(ds["latitude"].values, ebm.latitude(jnp.float64), atol=1e-9)
    assert ds["temperature"].attrs["standard_name"] == "surface_temperature"
    assert ds["time"].attrs["units"] == "year"


def test_trajectory_gets_a_time_dimension():
    model = hybrax.fluids.NavierStokes2D(16, viscosity=1e-3)
    stepper = hybrax.ETDRK4(model, 0.05)
    _, trajectory = hybrax.rollout(stepper, model.initial_state(), 6, save_every=2)
    ds = to_dataset(stepper, trajectory)
    assert ds["vorticity"].dims == ("time", "x", "y") and ds["vorticity"].dtype == np.float32
    np.testing.assert_allclose(ds["time"].values, [0.1, 0.2, 0.3], rtol=1e-6)
    assert ds.attrs["model.dt"] == pytest.approx(0.05)  # the stepper's parameters too
    np.testing.assert_allclose(ds["vorticity"].values, jax.vmap(model.vorticity)(trajectory))
    velocity = jax.vmap(model.velocity)(trajectory)
    np.testing.assert_allclose(ds["v"].values, velocity[:, 1])
    _assert_same_state(from_dataset(stepper, ds), trajectory)
    # explicit times replace the states' own
    ds = to_dataset(stepper, trajectory, times=np.array([1.0, 2.0, 3.0]))
    assert ds["time"].values.tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(hybrax.ConfigurationError, match="times must be"):
        to_dataset(stepper, trajectory, times=np.zeros(2))


def test_ensemble_of_trajectories_has_member_and_time():
    model = hybrax.climate.Lorenz96(8)
    stepper = hybrax.RK4(model, 0.01)
    starts = jax.vmap(model.initial_state)(jax.random.split(jax.random.key(0), 3))
    run = jax.vmap(lambda s: hybrax.rollout(stepper, s, 4, save_every=2)[1])
    trajectories = run(starts)
    ds = to_dataset(stepper, trajectories)
    assert ds["x"].dims == ("member", "time", "k") and ds.sizes["time"] == 2
    _assert_same_state(from_dataset(stepper, ds), trajectories)
    shifted = hybrax.ODEState(trajectories.u, trajectories.time + jnp.arange(3.0)[:, None])
    with pytest.raises(hybrax.ConfigurationError, match="share their times"):
        to_dataset(stepper, shifted)


def test_wrapped_models_are_found():
    qg = hybrax.climate.TwoLayerQG.eddy(num_points=16)
    stepper = qg.pyqg_stepper(3600.0)  # Filtered(AdamsBashforth3(...))
    ds = to_dataset(stepper, qg.initial_state())
    assert ds.attrs["hybrax_fields"] == "hybrax.climate.TwoLayerQG"
    model = hybrax.climate.Lorenz96(8)
    closure = hybrax.hybrid.Closure(model, lambda u: jnp.zeros_like(u))
    corrected = hybrax.hybrid.Corrected(hybrax.RK4(closure, 0.01), lambda u: jnp.zeros_like(u))
    assert list(to_dataset(corrected, model.initial_state()).data_vars) == ["x"]


class _Decay(hybrax.AbstractDynamics):
    rate: float = 1.0

    def tendency(self, state, t):
        return hybrax.ODEState(-self.rate * state.u, jnp.ones_like(state.time))

    def field_spec(self):
        return FieldSpec({"mass": (("box",), {"units": "kg", "long_name": "mass"})}, ("mass",))

    def to_fields(self, state):
        return {"mass": state.u}

    def from_fields(self, fields, time):
        return hybrax.ODEState(fields["mass"], time)


class _Unknown(hybrax.AbstractDynamics):
    def tendency(self, state, t):
        return state


def test_user_models_by_methods_or_registration(wrong_type):
    state = hybrax.ODEState(jnp.arange(3.0))
    ds = to_dataset(hybrax.RK4(_Decay(), 0.1), state)
    assert ds["mass"].attrs["units"] == "kg" and ds.attrs["model.dynamics.rate"] == 1.0
    _assert_same_state(from_dataset(_Decay(), ds), state)

    with pytest.raises(
        hybrax.ConfigurationError, match="no field converter for model RK4 -> _Unknown"
    ):
        to_dataset(hybrax.RK4(_Unknown(), 0.1), state)
    register_fields(
        _Unknown,
        lambda model: FieldSpec({"u": (("i",), {"units": "1", "long_name": "u"})}, ("u",)),
        lambda model, s: {"u": s.u},
        lambda model, fields, time: hybrax.ODEState(fields["u"], time),
    )
    _assert_same_state(from_dataset(_Unknown(), to_dataset(_Unknown(), state)), state)
    with wrong_type("to_fields", hybrax.ConfigurationError, "to_fields must be callable"):
        register_fields(_Unknown, lambda model: None, None, lambda *a: None)


def test_mismatches_are_named():
    l96 = hybrax.climate.Lorenz96(8)
    ds = to_dataset(l96, l96.initial_state())
    with pytest.raises(hybrax.DataMismatchError, match="8 points along k but the model has 16"):
        from_dataset(hybrax.climate.Lorenz96(16), ds)
    with pytest.raises(hybrax.DataMismatchError, match=r"holds hybrax\.climate\.Lorenz96 fields"):
        from_dataset(hybrax.fluids.Burgers(8), ds)
    with pytest.raises(hybrax.DataMismatchError, match="no variable `x`"):
        from_dataset(l96, ds.drop_vars("x"))
    with pytest.raises(hybrax.ConfigurationError, match=r"must be an xarray\.Dataset"):
        from_dataset(l96, {"x": np.zeros(8)})
    with pytest.raises(hybrax.ConfigurationError, match="have no `time`"):
        to_dataset(l96, {"u": jnp.zeros(8)})
