"""Field converters of the climate models (registered by name: io imports no domain package).

SI units for the QG and shallow-water models, °C and years for the energy-balance models,
nondimensional Lorenz models.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from hybrax.core import ODEState

from ._converter_tools import NONDIMENSIONAL, axis_coords, cf, grid_coords, state_class
from ._field_spec import FieldSpec

# ------------------------------------------------------------------ two-layer QG

CONVERTERS: list = []  # (public class name, spec, to_fields, from_fields)


def _qg_spec(model) -> FieldSpec:
    dims = ("layer", "y", "x")
    coords = grid_coords(model.grid, ("y", "x"), "m")
    coords["layer"] = (("layer",), np.array([1, 2]), cf("1", "layer (1 = upper)"))
    depths = np.asarray(model.layer_depths, dtype=float)
    coords["layer_depth"] = (("layer",), depths, cf("m", "layer thickness"))
    return FieldSpec(
        {
            "pv": (dims, cf("s-1", "potential vorticity anomaly")),
            "streamfunction": (dims, cf("m2 s-1", "streamfunction")),
            "u": (dims, cf("m s-1", "eddy eastward velocity", "eastward_sea_water_velocity")),
            "v": (dims, cf("m s-1", "eddy northward velocity", "northward_sea_water_velocity")),
        },
        prognostic=("pv",),
        coords=coords,
        time_units="s",
    )


def _qg_to(model, state) -> dict:
    flow = model.flow(state)
    return {"pv": flow.q, "streamfunction": model.streamfunction(state), "u": flow.u, "v": flow.v}


CONVERTERS.append(
    (
        "hybrax.climate.TwoLayerQG",
        _qg_spec,
        _qg_to,
        lambda model, fields, time: model.state_from_pv(fields["pv"], time),
    )
)

# -------------------------------------------------------------- shallow water (C-grid)


def _shallow_water_spec(model) -> FieldSpec:
    shape, lengths = model.grid.shape, model.grid.domain_length
    coords = axis_coords(("x", "y"), shape, lengths, "m", offset=0.5)
    coords |= axis_coords(("x_face", "y_face"), shape, lengths, "m", label=" of cell faces")
    return FieldSpec(
        {
            "u": (("x_face", "y"), cf("m s-1", "x-velocity on the west faces")),
            "v": (("x", "y_face"), cf("m s-1", "y-velocity on the south faces")),
            "eta": (("x", "y"), cf("m", "free-surface height anomaly h - H")),
            "vorticity": (("x_face", "y_face"), cf("s-1", "relative vorticity at the corners")),
        },
        prognostic=("u", "v", "eta"),
        coords=coords,
        time_units="s",
    )


def _shallow_water_from(model, fields, time):
    state = state_class(model, "ShallowWaterState")
    return state(fields["u"], fields["v"], fields["eta"], time)


CONVERTERS.append(
    (
        "hybrax.climate.ShallowWater",
        _shallow_water_spec,
        lambda model, s: {"u": s.u, "v": s.v, "eta": s.eta, "vorticity": model.vorticity(s)},
        _shallow_water_from,
    )
)

# ------------------------------------------------------------------------ Lorenz


def _lorenz63_spec(model) -> FieldSpec:
    return FieldSpec(
        {name: ((), cf("1", f"Lorenz-63 {name}")) for name in "xyz"},
        prognostic=("x", "y", "z"),
        attrs=NONDIMENSIONAL,
    )


CONVERTERS.append(
    (
        "hybrax.climate.Lorenz63",
        _lorenz63_spec,
        lambda model, state: {"x": state.u[0], "y": state.u[1], "z": state.u[2]},
        lambda model, f, time: ODEState(jnp.stack([f["x"], f["y"], f["z"]]), time),
    )
)


def _sites(name: str, count: int, long_name: str) -> dict:
    return {name: ((name,), np.arange(count), cf("1", long_name))}


def _lorenz96_spec(model) -> FieldSpec:
    return FieldSpec(
        {"x": (("k",), cf("1", "Lorenz-96 variable X_k"))},
        prognostic=("x",),
        coords=_sites("k", model.num_variables, "site"),
        attrs=NONDIMENSIONAL,
    )


CONVERTERS.append(
    (
        "hybrax.climate.Lorenz96",
        _lorenz96_spec,
        lambda model, state: {"x": state.u},
        lambda model, fields, time: ODEState(fields["x"], time),
    )
)


def _two_scale_spec(model) -> FieldSpec:
    coords = _sites("k", model.num_slow, "slow site")
    coords |= _sites("j", model.num_fast_per_slow, "fast variable within a slow site")
    return FieldSpec(
        {
            "x": (("k",), cf("1", "slow variable X_k")),
            "y": (("k", "j"), cf("1", "fast variable Y_jk")),
        },
        prognostic=("x", "y"),
        coords=coords,
        attrs=NONDIMENSIONAL,
    )


def _two_scale_from(model, fields, time):
    return state_class(model, "TwoScaleState")(fields["x"], fields["y"], time)


CONVERTERS.append(
    (
        "hybrax.climate.TwoScaleLorenz96",
        _two_scale_spec,
        lambda model, state: {"x": state.x, "y": state.y},
        _two_scale_from,
    )
)

# ------------------------------------------------------------------ energy balance

_TEMPERATURE = cf("degC", "surface temperature", "surface_temperature")


def _ebm_from(model, fields, time):
    return state_class(model, "EBMState")(fields["temperature"], time)


CONVERTERS.append(
    (
        "hybrax.climate.EnergyBalance0D",
        lambda model: FieldSpec(
            {"temperature": ((), _TEMPERATURE)}, prognostic=("temperature",), time_units="year"
        ),
        lambda model, state: {"temperature": state.temperature},
        _ebm_from,
    )
)


def _budyko_spec(model) -> FieldSpec:
    coords = {
        "latitude": (
            ("latitude",),
            np.degrees(np.arcsin(np.asarray(model.sin_latitude(), dtype=float))),
            cf("degrees_north", "latitude of the cell centre", "latitude"),
        ),
    }
    return FieldSpec(
        {"temperature": (("latitude",), _TEMPERATURE)},
        prognostic=("temperature",),
        coords=coords,
        time_units="year",
    )


CONVERTERS.append(
    (
        "hybrax.climate.BudykoSellers",
        _budyko_spec,
        lambda model, state: {"temperature": state.temperature},
        _ebm_from,
    )
)
