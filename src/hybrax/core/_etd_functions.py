"""The per-mode functions of exponential time differencing (``e^z``, the phi functions and
Cox & Matthews' combinations of them), evaluated without cancellation near ``z = 0``."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from ._errors import ConfigurationError
from ._parameters import check_parameter
from ._state import complex_dtype

__all__ = ["ETD_FUNCTIONS", "check_contour", "etd_values"]

#: The functions an ETD scheme's coefficients are made of, ``z = L dt``; the first two are
#: used as they are, the others times ``dt``:
#:
#: - ``exp_full`` ``e^z``, ``exp_half`` ``e^{z/2}``;
#: - ``q`` ``phi_1(z/2) / 2 = (e^{z/2} - 1) / z``;
#: - ``phi1`` ``(e^z - 1) / z``, ``phi2`` ``(e^z - 1 - z) / z^2``;
#: - ``f1`` ``phi_1 - 3 phi_2 + 4 phi_3``, ``f2`` ``phi_2 - 2 phi_3``, ``f3`` ``4 phi_3 - phi_2``
#:   (Cox & Matthews 2002, whose closed forms are used as written: the sums of phi
#:   functions cancel for large ``|z|``),
#:
#: with ``phi_k(z) = sum_n z^n / (n + k)!``.
ETD_FUNCTIONS = ("exp_full", "exp_half", "q", "phi1", "phi2", "f1", "f2", "f3")
_UNSCALED = ("exp_full", "exp_half")

_SERIES_RADIUS = 2.0
_TAYLOR_TERMS = 28


def _series_coefficients() -> dict[str, np.ndarray]:
    """Taylor coefficients (of ``z^n``) of the ``dt``-scaled functions, over ``dt``."""
    n = np.arange(_TAYLOR_TERMS)
    inv = np.array([1 / math.factorial(int(m)) for m in range(_TAYLOR_TERMS + 3)])
    phi = {k: inv[n + k] for k in (1, 2, 3)}  # phi_k(z) = sum z^n / (n+k)!
    return {
        "q": 0.5 * phi[1] / 2.0**n,  # (1/2) phi_1(z/2)
        "phi1": phi[1],
        "phi2": phi[2],
        "f1": phi[1] - 3 * phi[2] + 4 * phi[3],
        "f2": phi[2] - 2 * phi[3],
        "f3": 4 * phi[3] - phi[2],
    }


_SERIES = _series_coefficients()


def _closed_forms(z: Array, names: tuple[str, ...]) -> dict[str, Array]:
    """The closed forms of the ``dt``-scaled functions in ``names`` (over ``dt``) at ``z``
    (exact away from 0, 0/0 at 0)."""
    e, e_half = jnp.exp(z), jnp.exp(z / 2)
    z3 = z**3
    forms = {
        "q": lambda: (e_half - 1) / z,
        "phi1": lambda: (e - 1) / z,
        "phi2": lambda: (e - 1 - z) / z**2,
        "f1": lambda: (-4 - z + e * (4 - 3 * z + z**2)) / z3,
        "f2": lambda: (2 + z + e * (z - 2)) / z3,
        "f3": lambda: (-4 - 3 * z - z**2 + e * (4 - z)) / z3,
    }
    return {name: forms[name]() for name in names}


def _series_or_closed(z: Array, names: tuple[str, ...]) -> dict[str, Array]:
    """The ``dt``-scaled functions over ``dt``: Taylor series (28 terms, Horner) for
    ``|z| < 2``, the closed forms elsewhere. Both branches get safe arguments (the series 0,
    the closed forms 2), so nothing overflows or divides by zero and gradients through
    `jnp.where` stay finite."""
    small = jnp.abs(z) < _SERIES_RADIUS
    zs = jnp.where(small, z, jnp.zeros_like(z))
    zc = jnp.where(small, jnp.full_like(z, _SERIES_RADIUS), z)

    def series(name):
        coefficients = _SERIES[name]
        total = jnp.full_like(zs, float(coefficients[-1]))
        for c in coefficients[-2::-1]:
            total = total * zs + float(c)
        return total

    closed = _closed_forms(zc, names)
    return {name: jnp.where(small, series(name), closed[name]) for name in names}


def _contour_means(z0: Array, names, num_points: int, radius: float, ctype) -> dict[str, Array]:
    """The ``dt``-scaled functions over ``dt`` as Kassam & Trefethen's contour averages:
    each closed form averaged over ``num_points`` points on a circle of ``radius`` around
    ``z0`` (complex)."""
    theta = (np.arange(1, num_points + 1) - 0.5) / num_points
    roots = jnp.asarray(radius * np.exp(2j * np.pi * theta), dtype=ctype)
    closed = _closed_forms(z0[..., None] + roots, names)
    return {name: jnp.mean(value, axis=-1) for name, value in closed.items()}


def check_contour(num_contour_points, radius) -> None:
    """Raise unless ``num_contour_points`` is ``None`` or an int >= 1 and ``radius`` > 0."""
    if num_contour_points is not None and (
        isinstance(num_contour_points, bool)
        or not isinstance(num_contour_points, int)
        or num_contour_points < 1
    ):
        raise ConfigurationError(
            f"num_contour_points must be None (series) or an int >= 1 (32 is accurate to "
            f"round-off), got {num_contour_points!r}"
        )
    check_parameter(radius, "radius", positive=True, scalar=True, example="radius=1.0")


def etd_values(
    linear: ArrayLike,
    dt: ArrayLike,
    names: tuple[str, ...],
    num_contour_points: int | None = None,
    radius: float = 1.0,
) -> dict[str, Array]:
    """The ETD functions ``names`` (from `ETD_FUNCTIONS`) at ``z = L dt``, the
    ``dt``-scaled ones times ``dt``.

    ``num_contour_points=None``: Taylor series where ``|z| < 2``, closed forms elsewhere;
    an int ``M``: the Kassam–Trefethen contour integral over ``M`` points on a circle of
    ``radius`` (Kassam & Trefethen, SIAM J. Sci. Comput. 26, 2005), the same values to
    round-off for ``M = 32`` in double precision, at ``M`` times the work. Real ``L``
    gives real values, complex ``L`` complex ones.
    """
    check_contour(num_contour_points, radius)
    unknown = [name for name in names if name not in ETD_FUNCTIONS]
    if unknown:
        raise ConfigurationError(f"unknown ETD functions {unknown}; known: {ETD_FUNCTIONS}")
    linear = jnp.asarray(linear)
    real_input = not jnp.issubdtype(linear.dtype, jnp.complexfloating)
    ctype = complex_dtype(linear.dtype)
    h = jnp.asarray(dt).astype(jnp.finfo(ctype).dtype)
    scaled = tuple(name for name in names if name not in _UNSCALED)
    if num_contour_points is None:
        z = linear * h.astype(linear.dtype)
        values = _series_or_closed(z, scaled)
    else:
        z = linear.astype(ctype) * h.astype(ctype)
        values = _contour_means(z, scaled, num_contour_points, radius, ctype)
    values |= {"exp_full": jnp.exp(z), "exp_half": jnp.exp(z / 2)}
    out = {}
    for name in names:
        value = values[name] if name in _UNSCALED else h.astype(values[name].dtype) * values[name]
        out[name] = value.real if real_input else value  # the contour's z is complex
    return out
