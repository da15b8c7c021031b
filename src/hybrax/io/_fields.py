"""Model states as analysis-ready `xarray.Dataset` s: physical fields, coordinates, CF attributes.

The protocol: a *field converter* says, for one kind of model, which physical fields its
state holds (`FieldSpec`: dimensions, coordinates in physical units, CF attributes) and
how to go from one state to those fields (`to_fields`) and back (`from_fields`).
`to_dataset` / `from_dataset` find the converter of a model (walking into steppers and
wrappers through their ``stepper`` / ``dynamics`` attributes) and add the leading time
(and ensemble) axes. io imports no domain package: the converters of hybrax's own models
(`_converters_*.py`) are registered by their public names and call the models' own
conversion methods (``model.vorticity(state)``, ``model.state_from_pv(q)`` ...); a user's
dynamics either defines ``field_spec()``, ``to_fields(state)`` and
``from_fields(fields, time)`` methods or is registered with `register_fields`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PyTree

from hybrax.core import ConfigurationError, DataMismatchError

from ._dataset import model_attrs
from ._field_spec import FieldSpec

__all__ = ["FieldSpec", "from_dataset", "register_fields", "to_dataset"]

_CONVERTER_ATTR = "hybrax_fields"
_LEADING = {0: (), 1: ("time",), 2: ("member", "time")}


@dataclasses.dataclass(frozen=True)
class _Converter:
    name: str
    spec: Callable[[Any], FieldSpec]
    to_fields: Callable[[Any, Any], dict]
    from_fields: Callable[[Any, dict, Any], Any]


_REGISTRY: dict[Any, _Converter] = {}
_BUILTINS_REGISTERED: list[bool] = []


def _register_builtins() -> None:
    """Register the converters of hybrax's own models (once; user registrations win)."""
    if _BUILTINS_REGISTERED:
        return
    from . import _converters_climate, _converters_fluids, _converters_md

    for module in (_converters_fluids, _converters_climate, _converters_md):
        for name, spec, to_fields, from_fields in module.CONVERTERS:
            _REGISTRY.setdefault(name, _Converter(name, spec, to_fields, from_fields))
    _BUILTINS_REGISTERED.append(True)


def register_fields(
    target: type | str,
    spec: Callable[[Any], FieldSpec],
    to_fields: Callable[[Any, Any], Mapping[str, Any]],
    from_fields: Callable[[Any, Mapping[str, Any], Any], Any],
) -> None:
    """Teach `to_dataset` / `from_dataset` a kind of model.

    Parameters
    ----------
    target
        The model class, or its public dotted name (``"mypackage.MyModel"``; for hybrax
        classes the package path, e.g. ``"hybrax.fluids.NavierStokes2D"``). Subclasses
        are covered too.
    spec
        ``spec(model) -> FieldSpec``.
    to_fields
        ``to_fields(model, state) -> {name: array}`` for one state (it is `jax.vmap` ped
        over a trajectory's time axis); physical fields with the spec's dims.
    from_fields
        ``from_fields(model, fields, time) -> state`` for one state, the inverse.

    Examples
    --------
    >>> import jax.numpy as jnp, hybrax
    >>> class Decay(hybrax.AbstractDynamics):
    ...     def tendency(self, state, t):
    ...         return hybrax.ODEState(-state.u, 1.0)
    >>> register_fields(Decay,
    ...     lambda model: FieldSpec({"amount": (("box",), {"units": "kg"})}, ("amount",)),
    ...     lambda model, state: {"amount": state.u},
    ...     lambda model, fields, time: hybrax.ODEState(fields["amount"], time))
    >>> to_dataset(Decay(), hybrax.ODEState(jnp.ones(3)))["amount"].attrs["units"]
    'kg'
    """
    if not (isinstance(target, type) or (isinstance(target, str) and target)):
        raise ConfigurationError(
            f"register_fields: target must be a class or its dotted name, got {target!r}"
        )
    for label, fn in (("spec", spec), ("to_fields", to_fields), ("from_fields", from_fields)):
        if not callable(fn):
            raise ConfigurationError(
                f"register_fields: {label} must be callable, got {type(fn).__name__}"
            )
    name = target if isinstance(target, str) else _public_name(target)
    _REGISTRY[target] = _Converter(name, spec, to_fields, from_fields)


def _public_name(cls: type) -> str:
    """``hybrax.fluids.NavierStokes2D`` for a class defined in ``hybrax.fluids._x``."""
    parts = cls.__module__.split(".")
    public = [p for p in parts if not p.startswith("_")]
    return ".".join([*public, cls.__qualname__])


def _method_converter(obj) -> _Converter | None:
    if all(callable(getattr(obj, m, None)) for m in ("field_spec", "to_fields", "from_fields")):
        return _Converter(
            _public_name(type(obj)),
            lambda model: model.field_spec(),
            lambda model, state: model.to_fields(state),
            lambda model, fields, time: model.from_fields(fields, time),
        )
    return None


def _lookup(obj) -> _Converter | None:
    converter = _method_converter(obj)
    if converter is not None:
        return converter
    for cls in type(obj).__mro__:
        for key in (cls, _public_name(cls), f"{cls.__module__}.{cls.__qualname__}"):
            if key in _REGISTRY:
                return _REGISTRY[key]
    return None


def _find(model, who: str):
    """``(converter, the part of model it converts)``, walking into steppers and wrappers."""
    _register_builtins()
    seen, obj = [], model
    for _ in range(16):
        converter = _lookup(obj)
        if converter is not None:
            return converter, obj
        seen.append(type(obj).__name__)
        inner = next((getattr(obj, a) for a in ("dynamics", "stepper") if hasattr(obj, a)), None)
        if inner is None:
            break
        obj = inner
    raise ConfigurationError(
        f"{who}: no field converter for model {' -> '.join(seen)}; give the dynamics "
        "field_spec()/to_fields(state)/from_fields(fields, time) methods or call "
        "hybrax.io.register_fields for its class (or export its states as a plain pytree "
        "with hybrax.io.to_xarray)"
    )


def _netcdf_value(value):
    """An attribute value netCDF and zarr both accept (numbers, strings, 1-D numeric)."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, float, str, np.integer, np.floating)):
        return value
    if isinstance(value, (list, tuple)) and value:
        array = np.asarray(value)
        if array.ndim == 1 and array.dtype.kind in "iuf":
            return array
    return json.dumps(value)


def _dataset_attrs(model, converter: _Converter, spec: FieldSpec, attrs) -> dict:
    out: dict[str, Any] = {
        "Conventions": "CF-1.10",
        "source": f"hybrax {_version()}",
        _CONVERTER_ATTR: converter.name,
    }
    out.update(spec.attrs)
    out.update({k: v for k, v in model_attrs(model).items() if v is not None})
    if attrs is not None:
        if not isinstance(attrs, Mapping):
            raise ConfigurationError(f"to_dataset: attrs must be a dict, got {type(attrs)}")
        out.update(attrs)
    return {key: _netcdf_value(value) for key, value in out.items()}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hybrax")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def _xarray():
    try:
        import xarray
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise ImportError("hybrax.io datasets need xarray: pip install 'hybrax[io]'") from error
    return xarray


@eqx.filter_jit
def _convert(fn: Callable, model, depth: int, *args):
    """``fn(model, *args)`` vmapped over ``depth`` leading axes, compiled once (the
    conversions are many small FFTs and reshapes: eager dispatch would cost more)."""

    def one(*one_args):
        out = fn(model, *one_args)
        return dict(out) if isinstance(out, Mapping) else out

    for _ in range(depth):
        one = jax.vmap(one)
    return one(*args)


def to_dataset(model: Any, states: PyTree, times: Any = None, *, attrs: Mapping | None = None):
    """The physical fields of a state, or of a trajectory of states, as an `xarray.Dataset`.

    Spectral states are transformed to the grid (vorticity, PV per layer, velocity ...),
    staggered fields get their own face coordinates, and every variable and coordinate
    carries CF attributes (``units``, ``long_name``, ``standard_name`` where CF has one).
    The model's parameters (`model_attrs`) and the converter's name are dataset attributes,
    and `from_dataset` gives the states back.

    Parameters
    ----------
    model
        The model that made the states: a dynamics, or a stepper / hybrid wrapping one
        (its parameters, ``dt`` included, go into the attributes).
    states
        One state (scalar ``time``), a trajectory stacked along a leading axis (as from
        `hybrax.rollout`; dimension ``time``), or an ensemble of trajectories (two leading
        axes: ``member``, ``time``).
    times
        Times of the states (model time units); default: the states' own ``time``.
    attrs
        Further attributes (numbers, strings, numeric lists; others are JSON-encoded).

    Returns
    -------
    xarray.Dataset
        With a ``time`` coordinate (0-d for one state).

    Examples
    --------
    >>> import jax.numpy as jnp, hybrax
    >>> model = hybrax.fluids.NavierStokes2D(16, viscosity=1e-3)
    >>> stepper = hybrax.ETDRK4(model, 0.05)
    >>> _, trajectory = hybrax.rollout(stepper, model.initial_state(), 4, save_every=2)
    >>> ds = to_dataset(stepper, trajectory)
    >>> ds["vorticity"].dims, ds["vorticity"].attrs["long_name"], ds["x"].size
    (('time', 'x', 'y'), 'relative vorticity (dv/dx - du/dy)', 16)
    >>> back = from_dataset(stepper, ds)  # the spectral states again, to round-off
    >>> bool(jnp.allclose(back.field_hat, trajectory.field_hat, atol=1e-5))
    True
    """
    xr = _xarray()
    converter, part = _find(model, "to_dataset")
    spec = converter.spec(part)
    state_time = getattr(states, "time", None)
    if state_time is None:
        raise ConfigurationError(
            f"to_dataset: the states ({type(states).__name__}) have no `time`; pass a state "
            "record of the model (or a trajectory of them from hybrax.rollout)"
        )
    depth = np.ndim(state_time)
    if depth not in _LEADING:
        raise ConfigurationError(
            f"to_dataset: states.time has shape {np.shape(state_time)}; expected one state "
            "(scalar time), a trajectory (time,) or an ensemble (member, time)"
        )
    leading = _LEADING[depth]
    fields = _convert(converter.to_fields, part, depth, states)
    unknown = sorted(set(fields) - set(spec.variables))
    if unknown:
        raise ConfigurationError(
            f"to_dataset: {converter.name}'s to_fields returned {unknown}, which its "
            f"FieldSpec does not list ({sorted(spec.variables)})"
        )
    variables = {}
    for name, value in fields.items():
        dims, var_attrs = spec.variables[name]
        value = np.asarray(value)
        if value.ndim != depth + len(dims):
            raise ConfigurationError(
                f"to_dataset: field `{name}` has shape {value.shape[depth:]} per state but its "
                f"FieldSpec dims are {dims}"
            )
        variables[name] = (leading + tuple(dims), value, dict(var_attrs))
    time_values = _times(state_time if times is None else times, np.shape(state_time), depth)
    coords = {
        name: (dims, np.asarray(values), dict(a)) for name, (dims, values, a) in spec.coords.items()
    }
    time_attrs = {"standard_name": "time", "long_name": "model time", "units": spec.time_units}
    coords["time"] = (("time",) if depth else (), time_values, time_attrs)
    dataset = xr.Dataset(
        variables, coords=coords, attrs=_dataset_attrs(model, converter, spec, attrs)
    )
    if "time" in dataset.dims:
        dataset["time"].attrs.setdefault("axis", "T")
    return dataset


def _times(times, shape, depth) -> np.ndarray:
    values = np.asarray(times)
    if values.dtype.kind not in "iuf" or values.shape != shape:
        raise ConfigurationError(
            f"to_dataset: times must be real numbers of shape {shape} (one per state), got "
            f"{values.dtype}{values.shape}"
        )
    if depth == 2:
        if not np.array_equal(values, np.broadcast_to(values[:1], values.shape)):
            raise ConfigurationError(
                "to_dataset: the members of an ensemble must share their times (saved at the "
                "same steps); export them one by one otherwise"
            )
        values = values[0]
    return values


def from_dataset(model: Any, dataset) -> PyTree:
    """The model's states back from a dataset written by `to_dataset` (round trip to round-off).

    Only the prognostic fields are read (diagnostics such as velocity are ignored); the
    times come from the ``time`` coordinate. The result has the dataset's leading axes
    (``member``, ``time``), like the states that were exported.

    Raises `hybrax.DataMismatchError` (naming what differs) when the dataset was written for
    another kind of model, lacks a field, or its grid has other sizes than ``model``'s.

    Examples
    --------
    >>> import jax.numpy as jnp, hybrax
    >>> model = hybrax.climate.TwoLayerQG.eddy(num_points=16)
    >>> state = model.initial_state()
    >>> back = from_dataset(model, to_dataset(model, state))
    >>> bool(jnp.allclose(back.field_hat, state.field_hat, atol=1e-12))
    True
    """
    if not (hasattr(dataset, "data_vars") and hasattr(dataset, "coords")):
        raise ConfigurationError(
            f"from_dataset: dataset must be an xarray.Dataset (from to_dataset or "
            f"load_states), got {type(dataset).__name__}"
        )
    converter, part = _find(model, "from_dataset")
    stored = dataset.attrs.get(_CONVERTER_ATTR)
    if stored is not None and stored != converter.name:
        raise DataMismatchError(
            f"from_dataset: the dataset holds {stored} fields (attribute {_CONVERTER_ATTR}) "
            f"but the model is a {converter.name}; pass the model that wrote it"
        )
    spec = converter.spec(part)
    if "time" not in dataset.coords:
        raise DataMismatchError("from_dataset: the dataset has no `time` coordinate")
    leading = ("member", "time") if "member" in dataset.dims else ("time",)
    leading = leading if "time" in dataset.dims else ()
    fields = {}
    for name in (*spec.prognostic, *spec.optional):
        if name not in dataset.data_vars:
            if name in spec.optional:
                continue
            raise DataMismatchError(
                f"from_dataset: the dataset has no variable `{name}` needed for a "
                f"{converter.name} state; it has {sorted(dataset.data_vars)}"
            )
        dims = tuple(leading) + tuple(spec.variables[name][0])
        variable = dataset[name]
        if set(variable.dims) != set(dims):
            raise DataMismatchError(
                f"from_dataset: variable `{name}` has dims {variable.dims}, expected {dims}"
            )
        variable = variable.transpose(*dims)
        for dim in spec.variables[name][0]:
            if dim in spec.coords and dataset.sizes[dim] != np.size(spec.coords[dim][1]):
                raise DataMismatchError(
                    f"from_dataset: `{name}` has {dataset.sizes[dim]} points along {dim} but "
                    f"the model has {np.size(spec.coords[dim][1])}; pass a model of the size "
                    "the data were written with"
                )
        fields[name] = jnp.asarray(variable.values)
    time = jnp.asarray(dataset["time"].values)
    if len(leading) == 2:
        time = jnp.broadcast_to(time, (dataset.sizes["member"], dataset.sizes["time"]))
    return _convert(converter.from_fields, part, len(leading), fields, time)
