"""How a hybrid wrapper feeds a state to its network and puts the output back.

By default the network sees the state's one floating field other than ``time`` (``u`` of an
`ODEState`, or the state itself when it is a bare array) and its output is added to (or, for
emulators, replaces) that field. Anything else is given by two functions:
``to_input(state) -> network input`` and ``from_output(target, output) -> record``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PyTree

from hybrax.core import AbstractDynamics, AbstractStepper, ConfigurationError

ToInput = Callable[[PyTree], Any]
FromOutput = Callable[[PyTree, Any], PyTree]


def field_name(state: PyTree, who: str) -> str | None:
    """The name of the record's single non-``time`` floating field (``None`` for an array)."""
    if eqx.is_array(state):
        return None
    if not dataclasses.is_dataclass(state):
        raise ConfigurationError(
            f"{who}: cannot tell which part of a {type(state).__name__} the network sees; "
            "pass to_input=(state -> network input) and from_output=(record, output -> record)"
        )
    names = [
        f.name
        for f in dataclasses.fields(state)
        if f.name != "time" and _is_inexact(getattr(state, f.name, None))
    ]
    if len(names) != 1:
        found = ", ".join(names) or "none"
        raise ConfigurationError(
            f"{who}: the default maps need a state with exactly one floating field besides "
            f"time, but {type(state).__name__} has {len(names)} ({found}); pass "
            "to_input=(state -> network input) and from_output=(record, output -> record) "
            "to say which part the network sees and how its output is used"
        )
    return names[0]


def network_input(state: PyTree, to_input: ToInput | None, net: Any, who: str) -> Any:
    """The network's input, with a trace-time check that its dtype fits the network."""
    if to_input is not None:
        x = to_input(state)
        where = "to_input(state)"
    else:
        name = field_name(state, who)
        x = state if name is None else getattr(state, name)
        where = "the state" if name is None else f"the state field `{name}`"
    check_network_dtype(who, net, x, where)
    return x


def add_output(target: PyTree, output: Array, who: str, what: str) -> PyTree:
    """``target`` with ``output`` added to its single floating field (shape-checked)."""
    name = field_name(target, who)
    field = target if name is None else getattr(target, name)
    _check_output_shape(who, output, field, name, what)
    new = field + jnp.asarray(output).astype(field.dtype)
    return new if name is None else eqx.tree_at(lambda s: getattr(s, name), target, new)


def replace_output(target: PyTree, output: Array, who: str, what: str) -> PyTree:
    """``target`` with its single floating field replaced by ``output`` (shape-checked)."""
    name = field_name(target, who)
    field = target if name is None else getattr(target, name)
    _check_output_shape(who, output, field, name, what)
    new = jnp.asarray(output).astype(field.dtype)
    return new if name is None else eqx.tree_at(lambda s: getattr(s, name), target, new)


def check_same_structure(who: str, result: PyTree, reference: PyTree, what: str) -> None:
    """Raise `ConfigurationError` unless ``result`` has the structure, shapes and dtypes of
    ``reference`` (so it can be carried through `hybrax.rollout`'s loop)."""
    ref_struct = jax.tree.structure(reference)
    res_struct = jax.tree.structure(result)
    if ref_struct != res_struct:
        raise ConfigurationError(
            f"{who}: from_output must return a record like {what} "
            f"({type(reference).__name__}), got {type(result).__name__} with a different "
            f"structure:\n  expected {ref_struct}\n  got      {res_struct}"
        )
    for (path, a), b in zip(
        jax.tree_util.tree_leaves_with_path(reference), jax.tree.leaves(result), strict=True
    ):
        if jnp.shape(a) != jnp.shape(b) or jnp.result_type(a) != jnp.result_type(b):
            where = jax.tree_util.keystr(path, simple=True, separator=".")
            raise ConfigurationError(
                f"{who}: from_output returned `{where}` with shape {jnp.shape(b)} and dtype "
                f"{jnp.result_type(b)}, but {what} has shape {jnp.shape(a)} and dtype "
                f"{jnp.result_type(a)} there"
            )


def check_network_dtype(who: str, net: Any, x: Any, where: str) -> None:
    """Trace-time check that the network's parameters and its input share a dtype."""
    if not eqx.is_array(x):
        return
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise ConfigurationError(
            f"{who}: {where} is complex ({x.dtype}), which networks do not take; pass "
            "to_input= giving a real input (e.g. the field in physical space, or real and "
            "imaginary parts as channels) and from_output= mapping the output back"
        )
    dtypes = {leaf.dtype for leaf in jax.tree.leaves(eqx.filter(net, _is_inexact))}
    if len(dtypes) == 1 and jnp.issubdtype(x.dtype, jnp.floating):
        (param_dtype,) = dtypes
        if param_dtype != x.dtype:
            raise ConfigurationError(
                f"{who}: the network's parameters are {param_dtype} but {where} is "
                f"{x.dtype}; build the network with dtype=jnp.{x.dtype} (or cast the state "
                f"to {param_dtype})"
            )


def _check_output_shape(who: str, output: Any, field: Array, name: str | None, what: str):
    if not (eqx.is_array(output) or isinstance(output, (float, np.ndarray, np.generic))):
        raise ConfigurationError(
            f"{who}: the network returned a {type(output).__name__}, not one array; the "
            f"default maps add or write a single array into the {what}. Return one array "
            "(e.g. out[0] of a tuple), or pass from_output=(record, output -> record) to say "
            "how the output is used"
        )
    shape, expected = jnp.shape(output), jnp.shape(field)
    if shape != expected:
        where = f"the {what} field `{name}`" if name else f"the {what}"
        hint = ""
        if len(shape) == len(expected) + 1 and 1 in (shape[0], shape[-1]):
            hint = " (drop the channel axis, e.g. from_output=... or a net ending in [0])"
        raise ConfigurationError(
            f"{who}: the network returned shape {shape} but {where} has shape "
            f"{expected}; make the output match{hint}, or pass from_output= to map it"
        )
    if not jnp.issubdtype(jnp.result_type(output), jnp.inexact):
        raise ConfigurationError(
            f"{who}: the network returned dtype {jnp.result_type(output)}; a floating "
            "output is needed"
        )


def _is_inexact(x) -> bool:
    return eqx.is_array(x) and jnp.issubdtype(x.dtype, jnp.inexact)


def check_wrapper_parts(who: str, net: Any, to_input: Any, from_output: Any) -> None:
    """Constructor checks shared by the hybrid wrappers (network and maps)."""
    if net is None or not callable(net):
        raise ConfigurationError(
            f"{who}: net must be a callable network (e.g. hybrax.nn.MLP(...) or an equinox "
            f"module with __call__), got {_describe(net)}"
        )
    if isinstance(net, type):
        raise ConfigurationError(
            f"{who}: net must be a network instance, got the class {net.__name__}; construct "
            "it first, e.g. hybrax.nn.MLP(8, 8, 32, 2, key=jax.random.key(0))"
        )
    for name, value in (("to_input", to_input), ("from_output", from_output)):
        if value is not None and not callable(value):
            raise ConfigurationError(
                f"{who}: {name} must be None or a function, got {_describe(value)}"
            )


def check_part(who: str, name: str, value: Any, kind: type) -> None:
    """Raise unless ``value`` is an instance of ``kind`` (AbstractStepper/AbstractDynamics)."""
    if isinstance(value, kind):
        return
    if kind is AbstractStepper:
        fix = "pass a stepper such as hybrax.RK4(model, dt=0.01)"
        if isinstance(value, AbstractDynamics):
            fix = "wrap the model in an integrator: hybrax.RK4(model, dt=0.01)"
    else:
        fix = "pass a model (an AbstractDynamics) such as hybrax.climate.Lorenz96()"
        if isinstance(value, AbstractStepper):
            fix = "pass the model itself, not a stepper (e.g. stepper.dynamics)"
    raise ConfigurationError(
        f"{who}: {name} must be a hybrax.{kind.__name__}, got {_describe(value)}; {fix}"
    )


def _describe(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, type):
        return f"the class {value.__name__}"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"
