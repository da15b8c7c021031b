"""Shared helpers of the networks: input checks, dtypes and key handling."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array

from ..core import ConfigurationError


def default_float():
    """The default floating dtype (float64 when ``jax_enable_x64`` is on, else float32)."""
    return jnp.zeros(()).dtype


def check_spatial_dims(name: str, num_spatial_dims: int) -> None:
    if num_spatial_dims not in (1, 2):
        raise ConfigurationError(
            f"{name}: num_spatial_dims must be 1 or 2 (channels-first fields "
            f"(channels, nx) or (channels, nx, ny)), got {num_spatial_dims!r}"
        )


def check_positive_int(name: str, argument: str, value, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{name}: {argument} must be an int >= {minimum}, got {value!r}")


def check_field_input(name: str, x: Array, in_channels: int, num_spatial_dims: int) -> None:
    """Trace-time check of a channels-first input ``(in_channels, *spatial)``."""
    shape = tuple(jnp.shape(x))
    expected = f"(in_channels={in_channels}, " + ", ".join(
        f"n{axis}" for axis in "xyz"[:num_spatial_dims]
    )
    expected += ")"
    if len(shape) != num_spatial_dims + 1:
        hint = ""
        if len(shape) == num_spatial_dims:
            hint = "; add a channel axis with x[None]"
        elif len(shape) == num_spatial_dims + 2:
            hint = "; for a batch use jax.vmap over the leading axis"
        raise ConfigurationError(f"{name} expects an input of shape {expected}, got {shape}{hint}")
    if shape[0] != in_channels:
        raise ConfigurationError(
            f"{name} expects {in_channels} input channel(s) on the first axis "
            f"(channels-first {expected}), got shape {shape}"
        )
    if not jnp.issubdtype(jnp.result_type(x), jnp.floating):
        raise ConfigurationError(
            f"{name} expects a real floating input, got dtype {jnp.result_type(x)}; "
            "convert with .astype(jnp.float32) (complex fields: pass real and imaginary "
            "parts as channels)"
        )


def identity(x: Array) -> Array:
    """The identity (a named function, so modules holding it compare and hash stably)."""
    return x
