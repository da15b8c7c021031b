"""`FieldSpec`: the static description of a model state as physical fields."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from hybrax.core import ConfigurationError

__all__ = ["FieldSpec"]


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """What a model's state looks like as physical fields (static description).

    Parameters
    ----------
    variables
        ``{name: (dims, attrs)}`` of every field `to_fields` may return, for one state;
        ``attrs`` are CF attributes (``units``, ``long_name``, ``standard_name``).
    prognostic
        Names of the variables that determine the state (read by ``from_fields``); the
        others are diagnostics (e.g. velocity derived from vorticity).
    coords
        ``{name: (dims, values, attrs)}`` coordinates in physical units (e.g. ``x`` in m).
    time_units
        Units of the model time (``"s"``, ``"year"``, ``"1"`` for nondimensional time).
    attrs
        Further dataset attributes (e.g. the unit system).
    optional
        Variables that determine the state when present (e.g. a thermostat's variables);
        ``from_fields`` gets them only if the dataset has them.

    Examples
    --------
    >>> spec = FieldSpec({"u": (("x",), {"units": "m s-1"})}, prognostic=("u",))
    >>> spec.prognostic
    ('u',)
    """

    variables: Mapping[str, tuple[tuple[str, ...], Mapping[str, Any]]]
    prognostic: tuple[str, ...]
    coords: Mapping[str, tuple[tuple[str, ...], Any, Mapping[str, Any]]] = dataclasses.field(
        default_factory=dict
    )
    time_units: str = "1"
    attrs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    optional: tuple[str, ...] = ()

    def __post_init__(self):
        unknown = [n for n in (*self.prognostic, *self.optional) if n not in self.variables]
        if unknown:
            raise ConfigurationError(
                f"FieldSpec: prognostic names {unknown} are not among the variables "
                f"{sorted(self.variables)}"
            )
