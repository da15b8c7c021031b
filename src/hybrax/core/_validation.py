"""Trace-time checks that turn wrong input into messages saying what would be right."""

from __future__ import annotations

import jax.numpy as jnp

from ._errors import ConfigurationError

__all__ = ["check_field"]


def check_field(name: str, value, shape: tuple[int, ...], *, model: str, complex_ok=False) -> None:
    """Raise `hybrax.ConfigurationError` unless ``value`` is a floating array of ``shape``."""
    actual = tuple(jnp.shape(value))
    if actual != tuple(shape):
        hint = ""
        if len(actual) > len(shape) and actual[-len(shape) :] == tuple(shape):
            hint = "; for an ensemble use jax.vmap over the leading axis"
        raise ConfigurationError(
            f"{model}: {name} must have shape {tuple(shape)}, got {actual}{hint}"
        )
    dtype = jnp.result_type(value)
    kinds = (jnp.floating, jnp.complexfloating) if complex_ok else (jnp.floating,)
    if not any(jnp.issubdtype(dtype, kind) for kind in kinds):
        wanted = "a floating (or complex)" if complex_ok else "a floating"
        raise ConfigurationError(
            f"{model}: {name} must have {wanted} dtype such as float32 or float64, "
            f"got {dtype}; convert with .astype(jnp.float32)"
        )
