"""Workflow settings: a frozen dataclass of plain values, checked when made, overridable
from text (``hybrax run NAME --set key=value``)."""

from __future__ import annotations

import ast
import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any

from hybrax.core import ConfigurationError

__all__ = ["WorkflowSettings"]

_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


@dataclasses.dataclass(frozen=True)
class WorkflowSettings:
    """Base of every workflow's settings.

    A subclass is a frozen dataclass whose fields are plain values (``int``, ``float``,
    ``bool``, ``str``, ``None`` and tuples of them), each with a default: the full-size run.
    Every instance is checked when it is made, so a bad value fails before any work starts:
    each field must have its annotated type (an ``int`` is accepted, and stored as a
    ``float``, for a ``float`` field; floats must be finite), and the subclass's
    `validate` checks the ranges and the relations between fields, raising
    `hybrax.ConfigurationError` naming the setting.

    Examples
    --------
    >>> import dataclasses
    >>> @dataclasses.dataclass(frozen=True)
    ... class Demo(WorkflowSettings):
    ...     steps: int = 100
    ...     dt: float = 0.01
    ...     def validate(self):
    ...         self.require_positive("steps", "dt")
    >>> Demo().with_overrides({"steps": "20", "dt": "1e-3"})
    Demo(steps=20, dt=0.001)
    """

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value = _conform(getattr(self, field.name), hints[field.name], field.name)
            object.__setattr__(self, field.name, value)
        self.validate()

    def validate(self) -> None:
        """Check ranges and relations of the fields (override; raise
        `hybrax.ConfigurationError` naming the setting)."""

    # -- building ------------------------------------------------------------------------
    def replace(self, **changes: Any) -> WorkflowSettings:
        """A copy with some fields changed (checked like a new instance); unknown names
        raise `hybrax.ConfigurationError` listing the valid ones."""
        self._check_names(changes)
        return dataclasses.replace(self, **self._conformed(changes))

    def with_overrides(self, overrides: Mapping[str, str]) -> WorkflowSettings:
        """A copy with fields set from text, as given to ``--set key=value``: each value is
        read as its field's type (``true``/``false`` for booleans, ``none`` for an optional
        field, Python literals such as ``((4, 100), (16, 200))`` for tuples)."""
        self._check_names(overrides)
        hints = typing.get_type_hints(type(self))
        return self.replace(**{k: _parse(v, hints[k], k) for k, v in overrides.items()})

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> WorkflowSettings:
        """Settings from `as_dict` output (e.g. read back from ``run_info.json``)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**cls._conformed({k: v for k, v in values.items() if k in names}))

    def as_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def describe(cls) -> list[tuple[str, str, Any]]:
        """``(name, type, default)`` of every field."""
        hints = typing.get_type_hints(cls)
        return [(f.name, _type_name(hints[f.name]), f.default) for f in dataclasses.fields(cls)]

    # -- checks for `validate` -----------------------------------------------------------
    def require(self, name: str, ok: bool, expected: str) -> None:
        """Raise `hybrax.ConfigurationError` unless ``ok``: ``name`` should be ``expected``."""
        if not ok:
            raise ConfigurationError(
                f"{type(self).__name__}: setting {name} must be {expected}, "
                f"got {getattr(self, name)!r}"
            )

    def require_positive(self, *names: str) -> None:
        """Each named field is > 0."""
        for name in names:
            self.require(name, getattr(self, name) > 0, "positive")

    def require_nonnegative(self, *names: str) -> None:
        """Each named field is >= 0."""
        for name in names:
            self.require(name, getattr(self, name) >= 0, "zero or positive")

    @classmethod
    def _conformed(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        # before the dataclass's __init__, which a runtime type checker may guard
        hints = typing.get_type_hints(cls)
        return {k: _conform(v, hints[k], k) for k, v in values.items()}

    def _check_names(self, names) -> None:
        valid = [f.name for f in dataclasses.fields(self)]
        unknown = [name for name in names if name not in valid]
        if unknown:
            raise ConfigurationError(
                f"{type(self).__name__}: unknown setting {unknown[0]!r}; valid settings: "
                + ", ".join(valid)
            )


def _type_name(hint) -> str:
    return getattr(hint, "__name__", None) if isinstance(hint, type) else str(hint)


def _parse(text: str, hint, name: str):
    """``text`` read as a value of type ``hint`` (then checked by `_conform`)."""
    text = str(text).strip()
    options = typing.get_args(hint) if _is_union(hint) else (hint,)
    if type(None) in options and text.lower() == "none":
        return None
    if str in options:
        return text
    if bool in options:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if float in options:
            try:
                return float(text)  # inf, nan: rejected by _conform with a clear message
            except ValueError:
                pass
    raise ConfigurationError(
        f"cannot read {text!r} as setting {name} of type {_type_name(hint)}; "
        f"e.g. --set {name}={_example(hint)}"
    )


def _example(hint) -> str:
    options = typing.get_args(hint) if _is_union(hint) else (hint,)
    for kind, example in ((bool, "true"), (int, "10"), (float, "0.5"), (str, "float32")):
        if kind in options:
            return example
    return "'(1, 2)'"


def _is_union(hint) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _conform(value, hint, name: str):
    """``value`` checked against ``hint`` (int -> float for float fields, list -> tuple)."""
    if hint is Any:
        return value
    if _is_union(hint):
        for option in typing.get_args(hint):
            try:
                return _conform(value, option, name)
            except ConfigurationError:
                continue
        raise ConfigurationError(
            f"setting {name} must be of type {_type_name(hint)}, got {value!r}"
        )
    if hint is type(None):
        if value is None:
            return None
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigurationError(f"setting {name} must be finite, got {value!r}")
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif typing.get_origin(hint) is tuple:
        if isinstance(value, tuple | list):
            args = typing.get_args(hint)
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(_conform(v, args[0], name) for v in value)
            if len(args) == len(value):
                return tuple(_conform(v, a, name) for v, a in zip(value, args, strict=True))
    else:
        return value
    raise ConfigurationError(f"setting {name} must be of type {_type_name(hint)}, got {value!r}")
