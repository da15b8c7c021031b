"""One home for turning user values into checked parameters.

- `concrete_or_none` is the one "is this value known now?" test: the value as a NumPy array
  when it is concrete, ``None`` when it is traced under `jax.jit` / `jax.grad` / `jax.vmap`.
- `check_parameter` converts a physical parameter to an array leaf and rejects NaN, inf,
  complex, integer, boolean, string and out-of-range values with a `ConfigurationError`
  naming the parameter. A traced value is checked at run time through `equinox.error_if`
  (one fused comparison per construction, not per step).
- `parameter(name, ...)` is the `equinox.field` that applies it as a converter, and
  `time_step` is the check every stepper applies to ``dt``.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ._errors import ConfigurationError

__all__ = [
    "check_dtype",
    "check_float",
    "check_parameter",
    "concrete_or_none",
    "parameter",
    "time_step",
]


def concrete_or_none(value: Any) -> np.ndarray | None:
    """``value`` as a NumPy array if it is concrete, ``None`` if it is a JAX tracer (or
    holds one).

    Examples
    --------
    >>> import jax
    >>> concrete_or_none(2.0)
    array(2.)
    >>> jax.jit(lambda x: concrete_or_none(x) is None)(1.0)
    Array(True, dtype=bool)
    """
    if isinstance(value, jax.core.Tracer):
        return None
    try:
        return np.asarray(value)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return None


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_parameter(
    value: Any,
    name: str,
    *,
    positive: bool = False,
    nonnegative: bool = False,
    allow_complex: bool = False,
    scalar: bool = False,
    example: str | None = None,
) -> Array:
    """``value`` as a checked floating array leaf named ``name``.

    Rejected with a `ConfigurationError` naming ``name``: ``None``, strings and other
    non-numeric objects; booleans; integer *arrays* (a Python ``int`` such as ``8`` is
    read as the float ``8.0``); complex values unless ``allow_complex``; NaN or inf; values
    ``<= 0`` when ``positive`` or ``< 0`` when ``nonnegative``; more than one element when
    ``scalar`` (shape ``(1,)`` is accepted and read as a scalar). Traced values are checked
    when the computation runs, through `equinox.error_if`.

    Parameters
    ----------
    value
        What the user passed.
    name
        The parameter's name, as the user spells it (``"viscosity"``).
    positive, nonnegative
        Sign constraints.
    allow_complex
        Whether complex values are meaningful.
    scalar
        Whether exactly one value is expected.
    example
        A valid value to suggest in messages (e.g. ``"viscosity=1e-3"``).

    Examples
    --------
    >>> check_parameter(8, "forcing")  # JAX's default float: float32, float64 under x64
    Array(8., dtype=float..., weak_type=True)
    >>> check_parameter(float("nan"), "forcing")
    Traceback (most recent call last):
    ...
    hybrax.core._errors.ConfigurationError: forcing must be finite, got nan
    """
    hint = f"; pass e.g. {example}" if example else ""
    if value is None or isinstance(value, (str, bytes)):
        raise ConfigurationError(
            f"{name} must be a number or a floating array, got {value!r}{hint}"
        )
    if isinstance(value, (bool, np.bool_)):
        raise ConfigurationError(f"{name} must be a number, got the boolean {value!r}{hint}")
    if isinstance(value, numbers.Integral) and not isinstance(value, (np.ndarray, jax.Array)):
        value = float(value)
    try:
        array = jnp.asarray(value)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(
            f"{name} must be a number or a floating array, got {_describe(value)}{hint}"
        ) from error
    dtype = array.dtype
    if jnp.issubdtype(dtype, jnp.complexfloating) and not allow_complex:
        raise ConfigurationError(
            f"{name} must be real, got the complex value {_describe(value)}{hint}"
        )
    if not jnp.issubdtype(dtype, jnp.inexact):
        raise ConfigurationError(
            f"{name} must be floating point, got dtype {dtype} ({_describe(value)}); "
            f"pass a float such as 8.0 or convert with .astype(float){hint}"
        )
    if scalar:
        if array.size != 1:
            raise ConfigurationError(
                f"{name} must be a single number, got shape {array.shape}{hint}"
            )
        array = array.reshape(())
    if positive:
        rule, bad_fn = "positive and finite", lambda x, xp: ~(xp.isfinite(x) & (x > 0))
    elif nonnegative:
        rule, bad_fn = "non-negative and finite", lambda x, xp: ~(xp.isfinite(x) & (x >= 0))
    else:
        rule, bad_fn = "finite", lambda x, xp: ~xp.isfinite(x)
    # Concreteness of what the user passed, before any jnp operation: under jax.jit even
    # operations on constants are staged, so asking after them would defer every check.
    concrete = concrete_or_none(value)
    if concrete is None:
        message = f"{name} must be {rule}{hint}"
        return eqx.error_if(array, jnp.any(bad_fn(array, jnp)), message)
    concrete = np.asarray(concrete).reshape(np.shape(array))
    flags = np.asarray(bad_fn(concrete, np))
    if concrete.size and np.any(flags):
        bad = concrete[flags].ravel()
        shown = bad[0].item() if concrete.ndim else concrete.item()
        if isinstance(shown, float) and np.isfinite(shown):
            shown = float(f"{shown:.7g}")  # float32 values as the user typed them
        where = "" if concrete.ndim == 0 else f" (at {bad.size} of {concrete.size} entries)"
        raise ConfigurationError(f"{name} must be {rule}, got {shown!r}{where}{hint}")
    return array


def check_float(value: Any, name: str, **constraints: Any) -> float:
    """`check_parameter` for a single number that must be known now (it sets sizes,
    NumPy constants or messages): returns it as a Python float. A traced value is a
    `ConfigurationError`.

    Examples
    --------
    >>> check_float(2, "courant", positive=True)
    2.0
    """
    known = concrete_or_none(value)
    if known is None:
        raise ConfigurationError(
            f"{name} must be a concrete number here (not a value traced by jax.jit/grad/vmap)"
        )
    check_parameter(value, name, scalar=True, **constraints)
    return float(np.asarray(known).reshape(()))


def parameter(name: str, *, default: Any = dataclasses.MISSING, **constraints: Any):
    """An `equinox.field` holding a physical parameter checked by `check_parameter`
    (``default``: the field's default value, converted like a passed value).

    Examples
    --------
    >>> import equinox as eqx
    >>> class Decay(eqx.Module):
    ...     rate: jax.Array = parameter("rate", positive=True)
    >>> Decay(-1.0)
    Traceback (most recent call last):
    ...
    hybrax.core._errors.ConfigurationError: rate must be positive and finite, got -1.0
    """
    converter = functools.partial(check_parameter, name=name, **constraints)
    if default is dataclasses.MISSING:
        return eqx.field(converter=converter)
    return eqx.field(default=default, converter=converter)


def time_step(dt: Any, name: str = "dt") -> Array:
    """``dt`` checked as a time step: a real, positive, finite number (or array of them).

    Examples
    --------
    >>> time_step(0.01)  # JAX's default float: float32, float64 under x64
    Array(0.01, dtype=float..., weak_type=True)
    """
    return check_parameter(dt, name, positive=True, example=f"{name}=0.01 (in model time units)")


def check_dtype(dtype: Any, owner: str, *, name: str = "dtype", allowed: Any = None):
    """``dtype`` as a NumPy dtype if it is a real floating dtype (one of ``allowed`` when
    given), ``None`` for ``None``; anything else is a `ConfigurationError` naming
    ``owner``'s ``name`` argument.

    Examples
    --------
    >>> check_dtype("float32", "initial_state")
    dtype('float32')
    >>> check_dtype("int32", "initial_state")
    Traceback (most recent call last):
    ...
    hybrax.core._errors.ConfigurationError: initial_state: dtype must be a real floating ...
    """
    if dtype is None:
        return None
    try:
        resolved = np.dtype(dtype)
    except TypeError as error:
        raise ConfigurationError(
            f"{owner}: {name} must be a real floating dtype such as jnp.float32, got {dtype!r}"
        ) from error
    names = None if allowed is None else tuple(np.dtype(d).name for d in allowed)
    if not jnp.issubdtype(resolved, jnp.floating) or (names and resolved.name not in names):
        choices = " or ".join(f"jnp.{n}" for n in (names or ("float32", "float64")))
        raise ConfigurationError(
            f"{owner}: {name} must be a real floating dtype such as {choices}, got {resolved}"
        )
    return resolved
