"""Field converters of the fluid models (registered by name: io imports no domain package).

Each converter calls the model's own conversions (``model.vorticity``,
``model.state_from_vorticity``, ``model.field`` ...), so the physics stays in the domain.
The fluid models are nondimensional: CF units ``"1"``.
"""

from __future__ import annotations

import jax.numpy as jnp

from ._converter_tools import NONDIMENSIONAL, axis_coords, cf, grid_coords, state_class
from ._field_spec import FieldSpec

_AXES = {1: ("x",), 2: ("x", "y"), 3: ("x", "y", "z")}

CONVERTERS: list = []  # (public class name, spec, to_fields, from_fields)


def _ns2d_spec(model) -> FieldSpec:
    dims = _AXES[2]
    return FieldSpec(
        {
            "vorticity": (dims, cf("1", "relative vorticity (dv/dx - du/dy)")),
            "u": (dims, cf("1", "x-component of velocity")),
            "v": (dims, cf("1", "y-component of velocity")),
        },
        prognostic=("vorticity",),
        coords=grid_coords(model.grid, dims, "1"),
        attrs=NONDIMENSIONAL,
    )


def _ns2d_to(model, state) -> dict:
    velocity = model.velocity(state)
    return {"vorticity": model.vorticity(state), "u": velocity[0], "v": velocity[1]}


CONVERTERS.append(
    (
        "hybrax.fluids.NavierStokes2D",
        _ns2d_spec,
        _ns2d_to,
        lambda model, fields, time: model.state_from_vorticity(fields["vorticity"], time),
    )
)


def _ns3d_spec(model) -> FieldSpec:
    dims = _AXES[3]
    return FieldSpec(
        {
            c: (dims, cf("1", f"{c}: {x}-component of velocity"))
            for c, x in (("u", "x"), ("v", "y"), ("w", "z"))
        },
        prognostic=("u", "v", "w"),
        coords=grid_coords(model.grid, dims, "1"),
        attrs=NONDIMENSIONAL,
    )


def _ns3d_to(model, state) -> dict:
    velocity = model.velocity(state)
    return {"u": velocity[0], "v": velocity[1], "w": velocity[2]}


CONVERTERS.append(
    (
        "hybrax.fluids.NavierStokes3D",
        _ns3d_spec,
        _ns3d_to,
        lambda model, f, time: model.state_from_velocity(jnp.stack([f["u"], f["v"], f["w"]]), time),
    )
)


def _scalar_field(name: str, long_name: str):
    """A converter for a model whose state is one scalar field (`field`/`state_from_field`)."""

    def spec(model) -> FieldSpec:
        dims = _AXES[model.grid.ndim]
        return FieldSpec(
            {name: (dims, cf("1", long_name))},
            prognostic=(name,),
            coords=grid_coords(model.grid, dims, "1"),
            attrs=NONDIMENSIONAL,
        )

    return (
        spec,
        lambda model, state: {name: model.field(state)},
        lambda model, fields, time: model.state_from_field(fields[name], time),
    )


_KS = "Kuramoto-Sivashinsky u"
CONVERTERS.append(("hybrax.fluids.Burgers", *_scalar_field("u", "velocity")))
CONVERTERS.append(("hybrax.fluids.KuramotoSivashinsky", *_scalar_field("u", _KS)))
CONVERTERS.append(("hybrax.fluids.KuramotoSivashinsky2D", *_scalar_field("u", _KS)))
CONVERTERS.append(("hybrax.fluids.AdvectionDiffusion", *_scalar_field("concentration", "tracer")))


def _staggered_spec(model) -> FieldSpec:
    grid = model.grid
    (nx, ny), lengths = grid.num_points, grid.domain_length
    coords = axis_coords(("x", "y"), (nx, ny), lengths, "1", offset=0.5)
    # the faces include both walls: nx + 1 of them, i dx for i = 0 ... nx
    face_lengths = (lengths[0] * (nx + 1) / nx, lengths[1] * (ny + 1) / ny)
    faces = (nx + 1, ny + 1)
    coords |= axis_coords(("x_face", "y_face"), faces, face_lengths, "1", label=" of cell faces")
    return FieldSpec(
        {
            "u": (("x_face", "y"), cf("1", "x-component of velocity on the x-faces")),
            "v": (("x", "y_face"), cf("1", "y-component of velocity on the y-faces")),
            "pressure": (("x", "y"), cf("1", "kinematic pressure p / rho at cell centres")),
        },
        prognostic=("u", "v", "pressure"),
        coords=coords,
        attrs=NONDIMENSIONAL,
    )


def _staggered_from(model, fields, time):
    flow_state = state_class(model, "FlowState")
    return flow_state(fields["u"], fields["v"], fields["pressure"], time)


CONVERTERS.append(
    (
        "hybrax.fluids.IncompressibleNavierStokes",
        _staggered_spec,
        lambda model, state: {"u": state.u, "v": state.v, "pressure": state.pressure},
        _staggered_from,
    )
)
