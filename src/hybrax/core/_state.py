"""State records and the time convention shared by every integrator.

A state is a pytree, normally a small `equinox.Module` record. When the record has a
``time`` field, integrators read it to pass ``t`` to the dynamics and advance it by exactly
``dt`` each step; every other floating leaf is integrated. Records without ``time`` are
treated as autonomous (``t = 0``).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PyTree, Shaped

__all__ = [
    "ODEState",
    "get_time",
    "is_inexact_array",
    "mul",
    "scalar_like",
    "time_or_zero",
    "with_time",
]


class ODEState(eqx.Module):
    """State of a finite-dimensional ODE: a vector ``u`` and the model time.

    Parameters
    ----------
    u
        The state vector, shape ``(n,)`` (any floating dtype).
    time
        Model time (scalar, same floating dtype as ``u``); defaults to 0.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> state = ODEState(jnp.zeros(3))
    >>> state.time.dtype == state.u.dtype
    True
    """

    u: Shaped[Array, " n"]
    time: Float[Array, ""]

    def __init__(self, u: ArrayLike, time: ArrayLike | None = None):
        self.u = jnp.asarray(u)
        dtype = self.u.dtype if jnp.issubdtype(self.u.dtype, jnp.inexact) else None
        if dtype is not None and jnp.issubdtype(dtype, jnp.complexfloating):
            dtype = jnp.finfo(dtype).dtype
        self.time = jnp.asarray(0 if time is None else time, dtype=dtype)


def get_time(state: PyTree) -> Array | None:
    """The state's ``time`` leaf, or ``None`` for a record without one."""
    return getattr(state, "time", None)


def with_time(state: PyTree, time: ArrayLike) -> PyTree:
    """A copy of ``state`` whose ``time`` leaf is ``time`` (cast to the leaf's dtype)."""
    old = get_time(state)
    if old is None:
        return state
    old = jnp.asarray(old)
    return eqx.tree_at(lambda s: s.time, state, jnp.asarray(time, dtype=old.dtype))


def time_or_zero(state: PyTree) -> Array:
    """The state's ``time`` leaf, or 0 for a record without one (autonomous states)."""
    t = get_time(state)
    return jnp.zeros(()) if t is None else jnp.asarray(t)


def scalar_like(value: ArrayLike, leaf: Array) -> ArrayLike:
    """``value`` in ``leaf``'s dtype; Python numbers stay weakly typed (no promotion)."""
    if isinstance(value, (int, float)):
        return value
    return jnp.asarray(value).astype(jnp.result_type(leaf))


def is_inexact_array(x) -> bool:
    """Whether ``x`` is a floating or complex array (the leaves integrators advance)."""
    return eqx.is_array(x) and jnp.issubdtype(x.dtype, jnp.inexact)


def tree_lincomb(base: PyTree, coeffs: tuple, trees: tuple, scale: ArrayLike = 1.0) -> PyTree:
    """``base + scale * sum_i coeffs[i] * trees[i]`` leafwise, skipping zero coefficients.

    ``coeffs`` are Python numbers (Butcher-tableau entries), so the expression stays in the
    leaves' dtype under strict promotion.
    """
    pairs = [(c, t) for c, t in zip(coeffs, trees, strict=True) if c != 0]
    if not pairs:
        return base

    def leaf(b, *ks):
        if not is_inexact_array(b):
            return b
        acc = sum(c * k for (c, _), k in zip(pairs, ks, strict=True))
        return b + scalar_like(scale, b) * acc

    return jax.tree.map(leaf, base, *(t for _, t in pairs))


def mul(coefficient: ArrayLike, x: Array) -> Array:
    """``coefficient * x`` in ``x``'s precision, with a real coefficient times a complex ``x``
    done as two real products (no promotion of the coefficient to complex)."""
    coefficient = jnp.asarray(coefficient)
    x_complex = jnp.issubdtype(x.dtype, jnp.complexfloating)
    if jnp.issubdtype(coefficient.dtype, jnp.complexfloating) or not x_complex:
        return coefficient.astype(x.dtype) * x
    c = coefficient.astype(jnp.finfo(x.dtype).dtype)
    return jax.lax.complex(c * x.real, c * x.imag)


def complex_dtype(dtype) -> jnp.dtype:
    """The complex dtype of the same precision as ``dtype`` (real or complex)."""
    dtype = jnp.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return dtype
    return jnp.dtype(jnp.complex128) if jnp.finfo(dtype).bits == 64 else jnp.dtype(jnp.complex64)
