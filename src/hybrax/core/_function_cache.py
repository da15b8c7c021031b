"""Equal functions as equal static arguments, so a fresh ``lambda`` does not recompile.

`equinox.filter_jit` caches compiled code on its static arguments, and Python functions
compare by identity: ``rollout(..., observe=lambda s: s.u.mean())`` inside a loop made a
new function, a new compilation and a new cache entry (growing memory) on every call.
`cached_function` wraps a plain function in a key made of what determines its behaviour:
its code, defaults, globals and closure values. Hashable closure values compare by value
(and type); others (arrays, modules) by identity, and a warning says once how to avoid the
recompilation when a fresh one of those is seen.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Callable
from typing import Any

import jax

__all__ = ["cached_function"]

_IDENTITY_SEEN: dict[Any, int] = {}
_WARNED = False


class _ByIdentity:
    """A closure value compared by identity (it is not hashable)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, _ByIdentity) and other.value is self.value

    def __hash__(self):
        return id(self.value)


class _Traced(Exception):
    """A closure holds a tracer of an enclosing transformation: do not cache."""


def _value_key(value: Any, depth: int) -> tuple[Any, bool]:
    """(key, uses_identity) for one closure cell or default value."""
    if isinstance(value, jax.core.Tracer):
        raise _Traced
    if isinstance(value, types.FunctionType) and depth < 4:
        return _function_key(value, depth + 1)
    try:
        hash(value)
    except TypeError:
        return (type(value), _ByIdentity(value)), True
    return (type(value), value), False


def _function_key(fn: types.FunctionType, depth: int = 0) -> tuple[Any, bool]:
    parts: list[Any] = [fn.__code__, id(fn.__globals__)]
    identity = False
    cells = []
    for cell in fn.__closure__ or ():
        try:
            contents = cell.cell_contents
        except ValueError:  # an empty cell (a name assigned later)
            contents = _ByIdentity(cell)
        key, used = _value_key(contents, depth)
        cells.append(key)
        identity |= used
    defaults = []
    for value in (*(fn.__defaults__ or ()), *sorted((fn.__kwdefaults__ or {}).items())):
        key, used = _value_key(value, depth)
        defaults.append(key)
        identity |= used
    parts += [tuple(cells), tuple(defaults)]
    return tuple(parts), identity


class _CachedFunction:
    """``fn`` compared and hashed by `_function_key`."""

    __slots__ = ("__name__", "fn", "key")

    def __init__(self, fn: types.FunctionType, key):
        self.fn = fn
        self.key = key
        self.__name__ = getattr(fn, "__name__", "function")

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def __eq__(self, other):
        return isinstance(other, _CachedFunction) and other.key == self.key

    def __hash__(self):
        return hash(self.key)


def _structure(key):
    """``key`` with identity-compared values replaced by their type."""
    if isinstance(key, _ByIdentity):
        return type(key.value)
    if isinstance(key, tuple):
        return tuple(_structure(k) for k in key)
    return key


def cached_function(fn: Callable) -> Callable:
    """``fn`` wrapped so that equal functions (same code, defaults, globals and closure
    values) are equal static arguments of `equinox.filter_jit`. Objects that are not plain
    functions (modules, bound methods, partials) are returned unchanged."""
    global _WARNED
    if not isinstance(fn, types.FunctionType):
        return fn
    try:
        key, identity = _function_key(fn)
        hash(key)
    except (TypeError, _Traced):
        return fn
    if identity and not _WARNED:
        structure = _structure(key)
        ids = hash(key)
        previous = _IDENTITY_SEEN.setdefault(structure, ids)
        if previous != ids:
            _WARNED = True
            warnings.warn(
                f"hybrax: the function {fn.__name__!r} passed as observe captures a value that "
                "cannot be compared (an array or a module) and was a different object than in "
                "an earlier call, so the rollout is compiled again. Define the function once "
                "outside the loop, or capture the same object each time.",
                RuntimeWarning,
                stacklevel=3,
            )
    return _CachedFunction(fn, key)
