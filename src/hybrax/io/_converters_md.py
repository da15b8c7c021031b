"""Field converter of the molecular-dynamics steppers (registered by name).

Per-atom arrays get the dimensions ``atom`` and ``spatial``; reduced Lennard-Jones units
are written as CF units ``"1"`` with the reduced unit in ``reduced_units``. The neighbour
list is a cache, not stored: states read back have ``neighbors=None`` (rebuild it with
`hybrax.md.neighbor_list`). A stochastic integrator's PRNG key is stored as its raw key
data (``key_data``) and a Nosé–Hoover chain's variables as ``thermostat_*``.
"""

from __future__ import annotations

import jax

from ._converter_tools import cf, state_class
from ._field_spec import FieldSpec

_ATOMS = ("atom", "spatial")

CONVERTERS: list = []  # (public class name, spec, to_fields, from_fields)


def _reduced(unit: str, long_name: str) -> dict:
    return cf("1", long_name, reduced_units=unit)


def _md_spec(model) -> FieldSpec:
    return FieldSpec(
        {
            "positions": (_ATOMS, _reduced("sigma", "atom positions")),
            "velocities": (_ATOMS, _reduced("sigma/tau", "atom velocities")),
            "forces": (_ATOMS, _reduced("epsilon/sigma", "forces on the atoms")),
            "potential_energy": ((), _reduced("epsilon", "potential energy")),
            "key_data": (("key_word",), cf("1", "raw data of the integrator's PRNG key")),
            "thermostat_positions": (("chain",), _reduced("1", "Nose-Hoover chain positions")),
            "thermostat_velocities": (
                ("chain",),
                _reduced("1/tau", "Nose-Hoover chain velocities"),
            ),
        },
        prognostic=("positions", "velocities", "forces", "potential_energy"),
        optional=("key_data", "thermostat_positions", "thermostat_velocities"),
        attrs={"units_system": "reduced Lennard-Jones units (sigma, epsilon, m, tau)"},
    )


def _md_to(model, state) -> dict:
    fields = {
        "positions": state.positions,
        "velocities": state.velocities,
        "forces": state.forces,
        "potential_energy": state.potential_energy,
    }
    if state.key is not None:
        fields["key_data"] = jax.random.key_data(state.key)
    if state.thermostat is not None:
        fields["thermostat_positions"] = state.thermostat.positions
        fields["thermostat_velocities"] = state.thermostat.velocities
    return fields


def _md_from(model, fields, time):
    key = fields.get("key_data")
    thermostat = None
    if "thermostat_positions" in fields:
        chain = state_class(model, "NoseHooverChainState")
        thermostat = chain(fields["thermostat_positions"], fields["thermostat_velocities"])
    return state_class(model, "MDState")(
        fields["positions"],
        fields["velocities"],
        fields["forces"],
        fields["potential_energy"],
        neighbors=None,
        key=None if key is None else jax.random.wrap_key_data(key),
        time=time,
        thermostat=thermostat,
    )


CONVERTERS.append(("hybrax.md.AbstractMDStepper", _md_spec, _md_to, _md_from))
